"""The indexes of views that no tuple of integer arrays can name, for a view re-made from its base after an in-place
change of their memory while recording (:mod:`distnn.autograd.view_index`), as PyTorch re-makes any view from its
base's storage:

* :class:`ComplexParts`: a real view of a complex base (``real``, ``imag``, ``view_as_real`` and views of them),
  an advanced index of the base's memory read as ``(..., 2)`` pairs of floats (``[..., 0]`` the real parts);
* :class:`PairsAsComplex`: a complex view of a real base (``view_as_complex``), the base's elements of each
  element's two parts;
* :class:`ScalarBroadcast`: an ``expand`` of a 0-d base (every element of the view is its one element; a 0-d array
  takes no integer array index).

They stand where GetItem, SetItem and CopySlices take an index, as ``DiagonalView`` and ``UnfoldView`` do: ``take``
reads the view's values off an array of the base's shape, ``add_into`` adds the view's gradient into the base's,
``put`` writes values at the view's elements.
"""
from __future__ import annotations

from distnn.backend import get_array_module


def complex_pairs(a):
    """The memory of complex ``a`` as floats of its parts' dtype, shape ``a.shape + (2,)``: a view, writable where
    ``a`` is (``[..., 0]`` the real parts, ``[..., 1]`` the imaginary ones)."""
    xp = get_array_module(a)
    part = a.real  # (a view of the real parts: a's strides, the parts' dtype)
    return xp.lib.stride_tricks.as_strided(part, shape=a.shape + (2,), strides=a.strides + (part.itemsize,))


class ComplexParts:
    """A real view of a complex base: ``index`` (integer arrays) picks its elements among the base's pairs."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index

    def of(self, a):
        return complex_pairs(a)[self.index]

    take = of  # (an advanced index: already a copy)

    def grad_dtype(self, base_dtype, g_dtype):
        return base_dtype  # (the base's gradient is complex, the view's real)

    def add_into(self, out, g):
        from .indexing import scatter_add

        scatter_add(complex_pairs(out), self.index, g)  # (a part seen twice by the view gets both gradients)

    def put(self, out, v):
        complex_pairs(out)[self.index] = v

    def __repr__(self):
        return "complex_parts(...)"


class PairsAsComplex:
    """A complex view of a real base (``view_as_complex``): ``index`` (integer arrays of the view's shape + ``(2,)``)
    picks the base's elements that hold each element's real and imaginary parts."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index

    def of(self, a):
        pairs = a[self.index]
        return pairs[..., 0] + 1j * pairs[..., 1]

    take = of

    def grad_dtype(self, base_dtype, g_dtype):
        return base_dtype  # (the base's gradient is real, the view's complex)

    def add_into(self, out, g):
        from .indexing import scatter_add

        scatter_add(out, self.index, get_array_module(g).stack([g.real, g.imag], axis=-1))

    def put(self, out, v):
        xp = get_array_module(out)
        v = xp.asarray(v)
        out[self.index] = xp.stack([v.real, v.imag], axis=-1) if v.dtype.kind == "c" else v[..., None]

    def __repr__(self):
        return "pairs_as_complex(...)"


class ScalarBroadcast:
    """An ``expand`` of a 0-d base to ``shape``."""

    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = tuple(shape)

    def of(self, a):
        return get_array_module(a).broadcast_to(a, self.shape)

    def take(self, a):
        return self.of(a).copy()

    def grad_dtype(self, base_dtype, g_dtype):
        return g_dtype

    def add_into(self, out, g):
        out[...] += g.sum()  # (the one element gets the gradient of every place the view sees it)

    def put(self, out, v):  # (never reached: an in-place change of an expand is refused first, see inplace)
        raise RuntimeError("unsupported operation: more than one element of the written-to tensor refers to a single "
                           "memory location. Please clone() the tensor before performing the operation.")

    def __repr__(self):
        return f"expand_of_0d({self.shape})"
