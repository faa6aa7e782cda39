"""``copy_``'s graph node, PyTorch's ``CopyBackwards``: the tensor written takes ``src``'s values (cast to its
dtype, broadcast to its shape); its old value gets a zero gradient, ``src`` the gradient cast back to ``src``'s
dtype (a complex gradient to a real ``src``: its real part) and, where ``src`` was broadcast, summed over the
broadcast dims in that dtype (the engine's reduction, after the cast: PyTorch's order, which a float16 or float32
``src`` under a float64 tensor can tell from the other).
"""
from __future__ import annotations

from distnn.backend import device_of, get_array_module, to_device

from .function import Function

__all__ = ["CopyBackwards", "cast_gradient"]


def cast_gradient(g, dtype):
    """``g`` in ``dtype`` (a complex ``g`` into a real dtype: its real part, as PyTorch's gradient of a
    real-to-complex step). Also item assignment's, where PyTorch copies the value in with ``copy_``."""
    if g.dtype == dtype:
        return g
    if g.dtype.kind == "c" and dtype.kind != "c":
        g = g.real
    return g.astype(dtype)


class CopyBackwards(Function):
    """``dst.copy_(src)`` recorded: forward returns ``values`` (``src`` already cast and moved, broadcast to
    ``dst``'s shape) as a fresh array; see the module docstring for the gradients."""

    torch_name = "torch::autograd::CopyBackwards"
    saves_tensors = False  # (PyTorch's saves only src's dtype and device)
    supports_complex = True  # (no operand read: the gradients are casts of g, right for complex as written)

    def forward(self, dst, src, values=None):
        self.dst_dtype, self.src_dtype = dst.dtype, src.dtype
        self.src_device = device_of(src)
        return get_array_module(values).array(values, copy=True)

    def backward(self, g):
        need_dst, need_src = self.needs_input_grad
        g = cast_gradient(g, self.dst_dtype)  # (the gradient of dst's dtype PyTorch's engine hands the node)
        g_dst = get_array_module(g).zeros_like(g) if need_dst else None
        g_src = None
        if need_src:
            g_src = cast_gradient(g, self.src_dtype)
            if device_of(g_src) != self.src_device:
                g_src = to_device(g_src, self.src_device)
        return g_dst, g_src
