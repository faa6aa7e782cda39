"""PyTorch's memory-overlap checks of an ``out=`` tensor (ATen's ``MemoryOverlap.cpp``), for the ops whose kernel
writes its result straight into ``out`` (TensorIterator's ``compute_mem_overlaps``: clamp, clamp_min, clamp_max,
``normal`` with a Tensor mean or std, and the pointwise ops of :mod:`.out_common`; ``cat`` and ``stack`` refuse
an exact alias too: ``allow_alias=False``).

Two refusals, both before ``out`` is resized or its dtype checked, as PyTorch's:

* ``out`` whose elements share memory (an expanded tensor: a stride 0 over a dim of more than one element):
  writing it would give one location two values;
* ``out`` that *partly* overlaps an input: the kernel would read elements it has already written. Exact aliasing
  (the same tensor, or a view of the same memory with the same start, end and strides) is allowed: each element
  is read before it is written.

As PyTorch's, only what is cheap to decide is refused: a tensor that is not dense and non-overlapping (a strided
slice such as ``x[::2]``) is "too hard" and passes, and an input with no elements never overlaps. The ops that
compute into a fresh tensor and copy it into ``out`` (the ``*_copy`` functions, the FFTs) check nothing, as
PyTorch's.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .strides import torch_strides

__all__ = ["check_out_overlap"]

PARTIAL = ("unsupported operation: some elements of the input tensor and the written-to tensor refer to a single "
           "memory location. Please clone() the tensor before performing the operation.")
INTERNAL = ("unsupported operation: more than one element of the written-to tensor refers to a single memory "
            "location. Please clone() the tensor before performing the operation.")


def check_out_overlap(out: Tensor, *inputs, allow_alias: bool = True) -> None:
    """PyTorch's refusals (see the module docstring) of ``out`` beside ``inputs`` (Tensors, arrays; numbers and
    None are not operands and are skipped). Without ``allow_alias``, an input that is exactly ``out``'s memory is
    refused too (ATen's ``assert_no_overlap``, which ``cat`` and ``stack`` apply)."""
    written = out.data
    if _has_internal_overlap(written):
        raise RuntimeError(INTERNAL)
    for operand in inputs:
        if operand is out and allow_alias:  # (the same tensor: PyTorch's is_same, an in-place clamp)
            continue
        read = operand.data if isinstance(operand, Tensor) else operand
        if hasattr(read, "strides") and _overlap(written, read, allow_alias):
            raise RuntimeError(PARTIAL)


def _non_overlapping_and_dense(a) -> bool:
    """PyTorch's ``is_non_overlapping_and_dense``: the dims of more than one element, ordered by stride, tile a
    block of memory with no gap and no element twice."""
    expected = a.dtype.itemsize
    for step, n in sorted((s, n) for n, s in zip(a.shape, a.strides) if n != 1):
        if step != expected:
            return False
        expected *= n
    return True


def _has_internal_overlap(a) -> bool:
    """Whether two elements of ``a`` are surely one location (PyTorch's ``has_internal_overlap`` "Yes"): a dim of
    more than one element with stride 0 (an undecided geometry passes)."""
    if _non_overlapping_and_dense(a):
        return False
    return any(s == 0 and n > 1 for n, s in zip(a.shape, a.strides))


def _start(a) -> int:
    return a.__array_interface__["data"][0] if get_array_module(a) is np else a.data.ptr


def _overlap(a, b, allow_alias: bool) -> bool:
    """PyTorch's ``get_overlap_status(a, b)`` is ``Partial`` (or, without ``allow_alias``, ``Full``): both dense,
    their byte ranges meeting, and (with ``allow_alias``) not one range read with the same strides."""
    if a.size == 0 or b.size == 0 or not _non_overlapping_and_dense(a) or not _non_overlapping_and_dense(b):
        return False
    if get_array_module(a) is not get_array_module(b):
        return False
    a_begin, b_begin = _start(a), _start(b)
    a_end, b_end = a_begin + a.size * a.itemsize, b_begin + b.size * b.itemsize
    if a_begin == b_begin and a_end == b_end:
        return not allow_alias or tuple(torch_strides(a)) != tuple(torch_strides(b))
    return a_begin < b_end and b_begin < a_end
