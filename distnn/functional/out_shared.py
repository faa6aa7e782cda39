"""Writing an op's values into an ``out=`` tensor of the result's shape whose elements share memory (an expanded
tensor), as the PyTorch kernels that accept one write it; the others refuse it (:func:`.out_write.write_into_out`).

* a reduction (``sum``, ``prod``, ``amax``, ``amin``) treats the dims along which ``out`` repeats one location as
  more dims to reduce: each location gets the reduction (``combine``: ``np.add``, ``np.multiply``,
  ``np.maximum``, ``np.minimum``) of every result written to it, ``out``'s old content not included
  (``sum(x, 1, out=zeros(1).expand(2))`` holds the sum of both rows' sums);
* a product kernel that writes element by element (``mv``, ``bmm``) leaves at each location the value written
  last, in row-major order of the result (``combine`` None).

numpy arrays: a GPU ``out`` is written as numpy would (cupy's arrays have no read-only state to refuse with).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.half_rounding import cast
from distnn.backend import get_array_module

from .as_strided import _positions, _storage_bytes, strided_view, writable_storage
from .strides import element_strides
from .view_dtype import storage_offset

__all__ = ["write_shared"]


def write_shared(out, values, combine=None) -> None:
    """``values`` (of ``out``'s shape) written into ``out``, the values of the elements that share a location
    combined (see the module docstring); bumps ``out``'s version (the caller has called ``will_write``)."""
    data = out.data
    if get_array_module(data) is not np:
        data[...] = values
        out._bump_version()
        return
    positions = _positions(np, data.shape, element_strides(data), storage_offset(data)).ravel()
    flat = cast(np.asarray(values), data.dtype).ravel()
    order = np.argsort(positions, kind="stable")  # (each location's values in row-major order)
    located, flat = positions[order], flat[order]
    starts = np.flatnonzero(np.concatenate(([True], located[1:] != located[:-1])))
    if combine is None:
        picked = flat[np.concatenate((starts[1:], [flat.size])) - 1]
    else:
        picked = combine.reduceat(flat, starts)
    storage = writable_storage(data)
    whole = strided_view(storage, (_storage_bytes(storage) // data.dtype.itemsize,), (1,), 0)
    whole[located[starts]] = picked
    out._bump_version()
