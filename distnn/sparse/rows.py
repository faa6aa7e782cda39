"""The two differentiable moves every sparse COO op is built from: rows scattered into a dense block and
rows gathered out of one. Each is the other's backward, so gradients reach a sparse tensor's values (and the
dense operands of ``mm``) through ordinary graph nodes."""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module
from distnn.functional.indexing import scatter_add


class ScatterRows(Function):
    """``out = zeros((num,) + values.shape[1:]); out[index[k]] += values[k]`` (repeated rows add up);
    backward gathers ``grad[index]``."""

    saves_tensors = False  # (backward reads the index only, kept as its own array)

    def forward(self, values, index=None, num=0):
        self.index = index
        out = get_array_module(values).zeros((num,) + tuple(values.shape[1:]), dtype=values.dtype)
        scatter_add(out, index, values)
        return out

    def backward(self, grad):
        return grad[self.index]

    def backward_graph(self, g):  # (create_graph: the same gather, recorded)
        return (gather_rows(g, self.index),)


class GatherRows(Function):
    """``x[index]`` along the first axis; backward scatter-adds the rows back (repeats add up)."""

    saves_tensors = False

    def forward(self, x, index=None):
        self.index, self.num = index, x.shape[0]
        return x[index]

    def backward(self, grad):
        out = get_array_module(grad).zeros((self.num,) + tuple(grad.shape[1:]), dtype=grad.dtype)
        scatter_add(out, self.index, grad)
        return out

    def backward_graph(self, g):  # (create_graph: the same scatter, recorded)
        return (scatter_rows(g, self.index, self.num),)


class LabelledGather(GatherRows):
    """:class:`GatherRows` whose node bears the name it is given: the gathers a ``create_graph=True`` pass makes
    where PyTorch's node is another op (``to_dense``'s backward is ``SparseMaskBackward0``) or none (a sparse
    gradient's entries picked at the distinct indices: PyTorch's gradient is on them already)."""

    def forward(self, x, index=None, label=None):
        self.label = label
        return super().forward(x, index=index)

    def torch_name_of_call(self):
        return self.label


class DenseOfEntries(ScatterRows):
    """``to_dense()``'s scatter: its ``create_graph`` backward is PyTorch's ``SparseMaskBackward0``."""

    def backward_graph(self, g):
        return (gather_rows(g, self.index, label="SparseMaskBackward0"),)


def scatter_rows(values, index, num, to_dense=False):
    """:class:`ScatterRows` of a Tensor ``values`` at the integer array ``index`` into ``num`` rows
    (``to_dense``: :class:`DenseOfEntries`)."""
    return (DenseOfEntries if to_dense else ScatterRows).apply(values, index=index, num=int(num))


def gather_rows(x, index, label=None):
    """:class:`GatherRows`: the rows ``index`` (an integer array) of the Tensor ``x`` (``label``: the node's name,
    :class:`LabelledGather`)."""
    if label is not None:
        return LabelledGather.apply(x, index=index, label=label)
    return GatherRows.apply(x, index=index)


def entries_of(g, first):
    """The rows ``first`` of ``g``, a sparse gradient's values with a graph (``create_graph=True``), under the
    name of the node that made ``g`` (PyTorch's gradient holds those entries already); ``g`` itself when
    ``first`` takes every row in order."""
    xp = get_array_module(first)
    if first.shape[0] == g.shape[0] and bool((first == xp.arange(first.shape[0])).all()):
        return g
    return gather_rows(g, first, label=g.grad_fn.name() if g.grad_fn is not None else None)
