"""How an activation with PyTorch's ``inplace=`` argument runs (relu, elu, silu, hardtanh, dropout...): one mechanism
for every one of them, :func:`apply_activation`.

Out of place, or on an array: ``fn.apply`` on the input. In place (``inplace=True`` on a Tensor): the input itself
becomes the result and is returned; its memory is overwritten when no graph records, and while recording it takes the
result's graph node, as ``x += y`` (``Tensor._take_inplace``: refused, before anything is written, on a leaf that
requires grad, as PyTorch's). The node then comes from ``fn.in_place_form`` when the class has one: the node of
PyTorch's in-place op saves something else than its out-of-place op's (``leaky_relu_``, ``elu_``, ``celu_``,
``rrelu_`` save their result, where distnn's out-of-place nodes keep masks of their own; ``silu_``, ``hardtanh_``...
a copy of the input made before the write, and nothing else), and under ``saved_tensors_hooks`` pack_hook sees what
it saved: the tensor itself, or that copy, once. The form's node is packed after the write (``inplace.deferring``).

Both class attributes default on ``Function`` (None: the class's own node; False). ``fn.float_only``: the op
computes in floats only; an integer or bool input is computed in the default float dtype
(``float_input``, PyTorch's rule for a float function), which an in-place change then refuses to store.
"""
from __future__ import annotations

from distnn.autograd import inplace as _inplace
from distnn.autograd.tensor import Tensor

from ._elementwise_common import float_input


def apply_activation(fn, x, inplace, *others, **params):
    """``fn.apply(x, *others, **params)``; with ``inplace=True`` and a Tensor ``x``, written into ``x`` (which is
    returned) with the node of ``fn.in_place_form`` (or ``fn``'s own) recorded."""
    arg = float_input(x) if fn.float_only else x
    if not inplace or not isinstance(x, Tensor):
        return fn.apply(arg, *others, **params)
    node_cls = fn.in_place_form or fn
    with _inplace.deferring() as deferred:
        result = node_cls.apply(arg, *others, **params)
    return x._take_inplace(result, deferred)


__all__ = ["apply_activation"]
