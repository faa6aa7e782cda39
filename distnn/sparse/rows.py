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


def scatter_rows(values, index, num):
    """:class:`ScatterRows` of a Tensor ``values`` at the integer array ``index`` into ``num`` rows."""
    return ScatterRows.apply(values, index=index, num=int(num))


def gather_rows(x, index):
    """:class:`GatherRows`: the rows ``index`` (an integer array) of the Tensor ``x``."""
    return GatherRows.apply(x, index=index)
