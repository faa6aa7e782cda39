"""Sorting, as PyTorch's: ``sort`` and ``topk`` (values and indices), ``argsort``.

The order is always stable (equal elements keep their order, also when descending), which is what
PyTorch's ``stable=True`` promises; ``stable=False`` is accepted and gives the same (PyTorch leaves the
order of ties unspecified then). NaN sorts as the largest value, as in PyTorch. The gradient of the
values goes back to the places they were taken from.
"""
from __future__ import annotations

from collections import namedtuple

from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_methods import STABLE_NOT_GIVEN
from distnn.backend import get_array_module, unwrap

from ._dims import wrap_dim
from .shape import TakeAlong

#: what ``sort`` and ``topk`` return, as PyTorch's ``torch.return_types.sort`` / ``topk``
SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])


def stable_argsort(data, dim: int, descending: bool = False):
    """Indices that sort ``data`` along ``dim``, ties in their original order (both directions)."""
    xp = get_array_module(data)
    if not descending:
        return xp.argsort(data, axis=dim, kind="stable")
    # the ascending stable sort of the reversed array, reversed: the largest first, ties still in order
    n = data.shape[dim]
    reversed_order = xp.argsort(xp.flip(data, dim), axis=dim, kind="stable")
    return (n - 1) - xp.flip(reversed_order, dim)


def _check_sortable(data, op):
    if data.dtype.kind == "c":
        raise TypeError(f"{op}: complex tensors have no order (dtype {data.dtype})")


class SortValues(TakeAlong):
    """The values of ``sort``: TakeAlong of the sorting index, named as PyTorch's node."""

    torch_name = "SortBackward0"


class SortValuesStable(SortValues):
    """The values of ``sort`` called with ``stable=`` (any value): PyTorch's sort.stable overload, its other node."""

    torch_name = "SortBackward1"


class TopkValues(TakeAlong):
    torch_name = "TopkBackward0"


def _take(node, input, data, index, dim):
    """The values at ``index`` along ``dim``, in the graph (a ``node``, a TakeAlong) when ``input`` records."""
    if isinstance(input, Tensor) and input.requires_grad:
        return node.apply(input, index.copy(), dim=dim)  # (a copy: the caller may change the indices)
    return Tensor(get_array_module(data).take_along_axis(data, index, axis=dim))


def _as_1d(input, data):
    """A 0-d tensor as one of shape (1,) (in the graph): PyTorch sorts it as that, giving 0-d results."""
    return input.reshape(1) if isinstance(input, Tensor) else data.reshape(1)


def sort(input, dim=-1, descending=False, stable=STABLE_NOT_GIVEN):  # noqa: A002
    """``torch.sort``: ``(values, indices)`` along ``dim``, ascending unless ``descending`` (stable: see the
    module docstring; ``stable`` given, even False or None, makes the values' node PyTorch's SortBackward1)."""
    data = unwrap(input)
    _check_sortable(data, "sort")
    d = wrap_dim(dim, data.ndim, "sort")
    if data.ndim == 0:  # (PyTorch: the value itself, index 0)
        values, indices = sort(_as_1d(input, data), 0, descending, stable)
        return SortResult(values.reshape(()), indices.reshape(()))
    index = stable_argsort(data, d, descending)
    node = SortValues if stable is STABLE_NOT_GIVEN else SortValuesStable
    return SortResult(_take(node, input, data, index, d), Tensor(index))


def argsort(input, dim=-1, descending=False, stable=False):  # noqa: A002
    """``torch.argsort``: the (int64) indices of :func:`sort`; no gradient."""
    data = unwrap(input)
    _check_sortable(data, "argsort")
    d = wrap_dim(dim, data.ndim, "argsort")
    if data.ndim == 0:
        return Tensor(get_array_module(data).zeros((), dtype="int64"))
    return Tensor(stable_argsort(data, d, descending))


def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    """``torch.topk``: the ``k`` largest (or smallest) elements along ``dim`` and their indices, largest first
    (smallest first with ``largest=False``). Among equal elements the first ones are taken; ``sorted=False`` is
    accepted and gives them sorted anyway (PyTorch leaves that order unspecified)."""
    data = unwrap(input)
    _check_sortable(data, "topk")
    d = wrap_dim(dim, data.ndim, "topk")
    n = data.shape[d] if data.ndim else 1
    if isinstance(k, bool) or int(k) != k or not 0 <= k <= n:
        raise ValueError(f"topk: k = {k!r} is out of range for dim {dim} of size {n} (0 <= k <= {n})")
    k = int(k)
    if data.ndim == 0:
        values, indices = topk(_as_1d(input, data), k, 0, largest)
        return TopkResult(values.reshape(()), indices.reshape(())) if k else TopkResult(values, indices)
    index = stable_argsort(data, d, descending=largest)
    index = index[tuple(slice(None) if i != d else slice(0, k) for i in range(data.ndim))].copy()
    return TopkResult(_take(TopkValues, input, data, index, d), Tensor(index))
