"""How an activation with PyTorch's ``inplace=`` argument runs (relu, elu, silu, hardtanh, dropout...): one mechanism
for every one of them, :func:`apply_activation`.

Out of place, or on an array: ``fn.apply`` on the input. In place (``inplace=True`` on a Tensor): the input itself
becomes the result and is returned; its memory is overwritten when no graph records, and while recording it takes the
result's graph node, as ``x += y`` (``Tensor._take_inplace``: refused, before anything is written, on a leaf that
requires grad, as PyTorch's). The node is the class's own (as PyTorch's, ``silu_``, ``hardtanh_``, ``threshold_``...
keep the input as their out-of-place ops do: the write copies it first, and pack_hook gets that copy, once), or
``fn.in_place_form``'s where PyTorch's in-place op saves something else (``leaky_relu_``, ``elu_``, ``celu_``,
``rrelu_`` keep their result: pack_hook gets the tensor itself). The node is packed after the write
(``inplace.deferring``).

Both class attributes default on ``Function`` (None: the class's own node; None). ``fn.float_kernel``: the name of
PyTorch's kernel of an activation that computes in floats only (silu, elu, leaky_relu...), which refuses an integer or
bool input, in or out of place, with PyTorch's error (:func:`refuse_integers`).
"""
from __future__ import annotations

from distnn.autograd import inplace as _inplace
from distnn.autograd.tensor import Tensor


def refuse_integers(kernel, x):
    """PyTorch's refusal of an integer or bool ``x`` by the float-only kernel ``kernel`` (``"silu"``):
    ``NotImplementedError: "silu_cpu" not implemented for 'Long'``."""
    raw = x.data if isinstance(x, Tensor) else x
    dtype = getattr(raw, "dtype", None)
    if dtype is not None and dtype.kind in "biu":
        from distnn.autograd.tensor_inplace_methods import torch_dtype_name
        from distnn.backend import get_array_module

        device = "cpu" if get_array_module(raw).__name__ == "numpy" else "cuda"
        raise NotImplementedError(f"\"{kernel}_{device}\" not implemented for '{torch_dtype_name(dtype)}'")


def apply_activation(fn, x, inplace, *others, **params):
    """``fn.apply(x, *others, **params)``; with ``inplace=True`` and a Tensor ``x``, written into ``x`` (which is
    returned) with the node of ``fn.in_place_form`` (or ``fn``'s own) recorded."""
    if fn.float_kernel is not None:
        refuse_integers(fn.float_kernel, x)
    if not inplace or not isinstance(x, Tensor):
        return fn.apply(x, *others, **params)
    node_cls = fn.in_place_form or fn
    with _inplace.deferring() as deferred:
        result = node_cls.apply(x, *others, **params)
    return x._take_inplace(result, deferred)


__all__ = ["apply_activation", "refuse_integers"]
