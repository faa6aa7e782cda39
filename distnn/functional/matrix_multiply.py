"""``matmul``: the batched matrix product (numpy's 1-D promotion rules), forward and backward.

Split out of :mod:`distnn.functional.elementwise`, which still exports ``MatMul`` and ``matmul``.
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .matmul_errors import refuse_matmul

__all__ = ["Bmm", "MatMul", "matmul"]


def _f_only(x):
    """A 2-D operand stored transposed (e.g. ``W.T``): F-contiguous but not C-contiguous."""
    return x.ndim == 2 and x.flags.f_contiguous and not x.flags.c_contiguous


_TORCH_NODES = {(2, 2): "MmBackward0", (2, 1): "MvBackward0", (1, 1): "DotBackward0"}


class MatMul(Function):
    """Batched matrix product with numpy's 1-D promotion rules."""
    autocast = "lower"  # under distnn.autocast: the matmul family runs in the lower dtype

    reads = ((1,), (0,))
    supports_complex, conj_saved = True, ("a", "b")  # (complex: grad @ b^H, a^H @ grad)

    def torch_name_of_call(self) -> str:
        # PyTorch's matmul is one node for these; with batch dims or a vector on the left it records a
        # reshape or squeeze on top of the product, where distnn records one node (it keeps its own name)
        return _TORCH_NODES.get((self.a_ndim, self.b_ndim), "MatMulBackward")

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0 or a.dtype != b.dtype or a.shape[-1] != (b.shape[-2] if b.ndim > 1
                                                                                else b.shape[0]):
            refuse_matmul(a, b, *self.needs_input_grad)  # (PyTorch's refusal, in its kernel's words)
        na, nb = self.needs_input_grad
        self.a = a if nb else None
        self.b = b if na else None
        self.a_ndim, self.b_ndim = a.ndim, b.ndim
        # A transposed 2-D operand (x @ W.T) gets its gradient in the same layout,
        # so the Transpose node hands W a C-contiguous array and nothing is copied.
        self.a_t = na and _f_only(a)
        self.b_t = nb and _f_only(b)
        try:
            out = a @ b
        except ValueError:  # (batch dims that do not broadcast)
            refuse_matmul(a, b, *self.needs_input_grad)
            raise
        if out.ndim > 2 and not out.flags.c_contiguous:
            # (numpy lays the batch dims out in its operands' memory order; PyTorch's batched product is row-major
            # whatever its operands' layout, and is_contiguous(), stride() and view() tell them apart)
            out = get_array_module(out).ascontiguousarray(out)
        return out

    def backward(self, g):
        xp = get_array_module(g)
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        if self.a_t and g.ndim == 2 and b.ndim == 2:
            return (b @ g.T).T, (xp.swapaxes(a, -1, -2) @ g if nb else None)
        if self.b_t and g.ndim == 2 and a.ndim == 2:
            return (g @ b.T if na else None), (g.T @ a).T
        if self.a_ndim == 1 and self.b_ndim == 1:  # inner product: g is 0-d
            return (g * b if na else None), (g * a if nb else None)
        # Promote 1-D operands to matrices, as the forward did implicitly.
        if self.a_ndim == 1:
            g = xp.expand_dims(g, -2)
            a = a[None, :] if a is not None else None
        if self.b_ndim == 1:
            g = xp.expand_dims(g, -1)
            b = b[:, None] if b is not None else None
        ga = gb = None
        if na:
            ga = g @ xp.swapaxes(b, -1, -2)
            if self.a_ndim == 1:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if nb:
            gb = xp.swapaxes(a, -1, -2) @ g
            if self.b_ndim == 1:
                gb = gb.reshape(gb.shape[:-1])
        return ga, gb



class Bmm(MatMul):
    """``torch.bmm``: a batch of products, one PyTorch node (its ``matmul`` of 3-D tensors records two)."""

    torch_name, torch_name_of_call = "BmmBackward0", None

def matmul(a, b, *, out=None):
    """``torch.matmul``: the matrix product with numpy's 1-D promotion and batch broadcasting; ``out``: PyTorch's
    rules (:mod:`.matmul_out`)."""
    if out is not None:
        from .matmul_out import matmul_into_out

        return matmul_into_out(matmul, a, b, out)
    from distnn.autograd import tensor_operators

    sparse = tensor_operators._sparse_type
    if type(a) is sparse or type(b) is sparse:  # (distnn.sparse.products.matmul: as torch.matmul)
        from distnn.sparse.products import matmul as sparse_matmul

        return sparse_matmul(a, b)
    return MatMul.apply(a, b)
