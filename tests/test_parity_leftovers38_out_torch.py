"""``out=`` against PyTorch 2.13: the memory-overlap refusals of the ops whose kernel writes into ``out``
(clamp, clip, clamp_min, clamp_max: an ``out`` that partly overlaps an input, or whose elements share memory),
exact aliasing allowed, and what a resized ``out`` that is a view does to its base (it stays a view: the values
land in the base's memory) for clamp, the ``*_copy`` functions and the FFTs, with PyTorch's warning.

Each case builds the same tensors in torch and in distnn and compares the outcome: the values of the result, of
``out`` and of ``out``'s base, the storage offset, whether ``out`` is returned, the warnings, or the exception's
type and message."""
import warnings

import numpy as np
import pytest
import torch

import distnn

PARTIAL = ("unsupported operation: some elements of the input tensor and the written-to tensor refer to a single "
           "memory location. Please clone() the tensor before performing the operation.")
INTERNAL = ("unsupported operation: more than one element of the written-to tensor refers to a single memory "
            "location. Please clone() the tensor before performing the operation.")
FLOATS = ["float32", "float64"]


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _outcome(L, build):
    """``build(L)`` -> (result, out, base): their values and geometry, the warnings, or the exception."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, out, base = build(L)
        except Exception as error:  # noqa: BLE001 - the exception is what is compared
            return ("error", type(error).__name__, str(error))
    return ("ok", _np(result).tolist(), result is out, _np(base).tolist(), tuple(out.shape), out.storage_offset(),
            tuple(out.stride()), [str(w.message).split(" (Triggered internally")[0] for w in caught])


def _same(build):
    want, got = _outcome(torch, build), _outcome(distnn, build)
    assert got == want
    return want


def _arange(L, n, dtype):
    return L.arange(n, dtype=getattr(L, dtype)) - n // 3


# ------------------------------------------------------------------ overlap of out with an input
OVERLAPS = {  # name -> (input, out) of one base of 12 elements (reshaped where named)
    "shifted": (lambda b: b[:6], lambda b: b[3:9]),
    "resized_partial": (lambda b: b[:4], lambda b: b[2:5]),  # (checked before the resize, as PyTorch's)
    "reshaped_same_memory": (lambda b: b.view(3, 4), lambda b: b),
    "transposed_same_memory": (lambda b: b[:9].view(3, 3).t(), lambda b: b[:9].view(3, 3)),
    "expanded_out": (lambda b: b[:4], lambda b: b[8:9].expand(4)),
    "expanded_out_over_input": (lambda b: b[:4], lambda b: b[:1].expand(4)),
    # allowed: the same tensor, the same memory with the same strides, disjoint memory, undecided strided
    # slices, an expanded input, an empty out
    "same_memory_other_view": (lambda b: b[:6], lambda b: b[:6]),
    "disjoint": (lambda b: b[:6], lambda b: b[6:]),
    "strided_interleaved": (lambda b: b[::2], lambda b: b[1::2]),
    "expanded_input": (lambda b: b[:1].expand(4), lambda b: b[4:8]),
    "empty_out": (lambda b: b[4:8], lambda b: b[0:0]),  # (at offset 0: distnn's empty slices start there)
}


def _bounded(fn, L, x, out, bounds):
    if fn == "clamp_min":
        return L.clamp_min(x, bounds[0], out=out)
    if fn == "clamp_max":
        return L.clamp_max(x, bounds[1], out=out)
    return getattr(L, fn)(x, *bounds, out=out)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(OVERLAPS))
@pytest.mark.parametrize("fn", ["clamp", "clip", "clamp_min", "clamp_max"])
def test_clamp_out_overlapping_an_input_as_torch(fn, case, dtype):
    take_input, take_out = OVERLAPS[case]

    def build(L):
        base = _arange(L, 12, dtype)
        out = take_out(base)
        return _bounded(fn, L, take_input(base), out, (-1.0, 2.0)), out, base

    outcome = _same(build)
    if case in ("shifted", "resized_partial", "reshaped_same_memory", "transposed_same_memory"):
        assert outcome == ("error", "RuntimeError", PARTIAL)
    elif case.startswith("expanded_out"):
        assert outcome == ("error", "RuntimeError", INTERNAL)
    else:
        assert outcome[0] == "ok"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("which", ["min", "max", "both"])
def test_a_tensor_bound_overlapping_out_is_refused_as_torch(which, dtype):
    def build(L):
        base = _arange(L, 12, dtype)
        out, bound = base[4:8], base[2:6]
        lo, hi = (bound if which in ("min", "both") else None), (bound + 5 if which in ("max", "both") else None)
        if which == "max":
            hi = bound
        return L.clamp(L.zeros(4, dtype=getattr(L, dtype)), lo, hi, out=out), out, base

    assert _same(build) == ("error", "RuntimeError", PARTIAL)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(6,), (2, 3), (3, 1, 2)])
def test_clamp_into_its_own_input_is_allowed_as_torch(shape, dtype):
    def build(L):
        x = _arange(L, 6, dtype).reshape(shape)
        return L.clamp(x, -1, 2, out=x), x, x

    outcome = _same(build)
    assert outcome[0] == "ok" and outcome[2] is True


def test_the_overlap_check_comes_before_the_dtype_check_as_torch():
    def build(L):
        base = L.arange(8.0)
        return L.clamp(base[:4].view(L.int32)[:4], 1, 3, out=base[2:6]), base, base

    assert _same(build) == ("error", "RuntimeError", PARTIAL)


# ------------------------------------------------------------------ a resized out that is a view
VIEW_OUTS = {  # name -> (base shape, the view of it given as out)
    "fits_in_base": ((10,), lambda b: b[2:4]),
    "grows_past_base": ((8,), lambda b: b[2:4]),
    "strided_column": ((2, 4), lambda b: b[:, 1]),
    "empty_at_start": ((8,), lambda b: b[0:0]),  # (an empty slice elsewhere: distnn's starts at 0, numpy's)
    "whole_base_reshaped": ((2, 4), lambda b: b.view(8)[:3]),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("result_shape", [(4,), (2, 3)])
@pytest.mark.parametrize("case", sorted(VIEW_OUTS))
def test_clamp_resizes_a_view_out_within_its_storage_as_torch(case, result_shape, dtype):
    base_shape, view = VIEW_OUTS[case]
    n = int(np.prod(result_shape))

    def build(L):
        base = L.zeros(base_shape, dtype=getattr(L, dtype)) - 7
        out = view(base)
        x = _arange(L, n, dtype).reshape(result_shape)
        return L.clamp(x, -1, 1, out=out), out, base

    if case == "grows_past_base" and n > 6:  # (checked below: the part of the result that fits the base)
        pytest.skip("covered by test_a_view_out_grown_past_its_base")
    _same(build)


@pytest.mark.parametrize("dtype", FLOATS)
def test_a_view_out_grown_past_its_base(dtype):
    """PyTorch grows the storage under the base; distnn moves ``out`` to a larger copy, and the base holds what
    PyTorch's holds right after the call (the part of the result inside its memory)."""
    def build(L):
        base = L.zeros(8, dtype=getattr(L, dtype)) - 7
        out = base[2:4]
        return L.clamp(_arange(L, 10, dtype), -1, 1, out=out), out, base

    outcome = _same(build)
    assert outcome[3][2:] == outcome[1][:6]


@pytest.mark.parametrize("fn", ["t_copy", "alias_copy", "detach_copy"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_copy_functions_resize_a_view_out_within_its_storage_as_torch(fn, dtype):
    def build(L):
        base = L.zeros(10, dtype=getattr(L, dtype))
        out = base[3:5]
        return getattr(L, fn)(_arange(L, 4, dtype), out=out), out, base

    outcome = _same(build)
    assert outcome[3][3:7] == outcome[1]


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("fn", ["fft", "ifft"])
def test_fft_resizes_a_view_out_within_its_storage_as_torch(fn, dtype):
    def build(L):
        base = L.zeros(10, dtype=getattr(L, dtype))
        out = base[2:4]
        result = getattr(L.fft, fn)(L.arange(4.0, dtype=L.float64 if dtype == "complex128" else L.float32), out=out)
        return result, out, base

    outcome = _same(build)
    assert outcome[7] and "An output with one or more elements was resized" in outcome[7][0]


@pytest.mark.parametrize("fn", ["fftfreq", "rfftfreq"])
@pytest.mark.parametrize("out_shape", [(2,), (0,), (2, 2)])
def test_fftfreq_resize_warns_as_torchs_arange(fn, out_shape):
    def build(L):
        out = L.zeros(out_shape)
        return getattr(L.fft, fn)(5, out=out), out, out

    outcome = _same(build)
    assert len(outcome[7]) == (out_shape != (0,))


# ------------------------------------------------------------------ clamp_min / clamp_max with out=
CLAMP_ONE_OUT = {
    "written": lambda L, x: L.clamp_max(x, 1, out=L.zeros(4, dtype=x.dtype)),
    "resized": lambda L, x: L.clamp_max(x, max=1, out=L.zeros(6, dtype=x.dtype)),
    "number_bound_other_dtype": lambda L, x: L.clamp_min(x, 1, out=L.zeros(4, dtype=L.int64)),
    "tensor_bound_cast": lambda L, x: L.clamp_min(x, L.tensor(1.0, dtype=x.dtype), out=L.zeros(4, dtype=L.complex128)),
    "tensor_bound_no_cast": lambda L, x: L.clamp_min(x, L.tensor(1.0, dtype=x.dtype), out=L.zeros(4, dtype=L.int64)),
    "requires_grad": lambda L, x: L.clamp_min(x.requires_grad_(), 1, out=L.zeros(4, dtype=x.dtype)),
    "bool": lambda L, x: L.clamp_min(L.tensor([True]), True, out=L.zeros(1, dtype=L.bool)),
    "out_not_a_tensor": lambda L, x: L.clamp_min(x, 1, out=3),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(CLAMP_ONE_OUT))
def test_clamp_min_max_take_out_as_torch(case, dtype):
    def build(L):
        result = CLAMP_ONE_OUT[case](L, _arange(L, 4, dtype))
        return result, result, result

    _same(build)


# ------------------------------------------------------------------ normal(mean: Tensor, ..., out=)
NORMAL_OUTS = {  # name -> normal(...) of a base of 8 elements; the refusal expected, or None (the draws differ)
    "mean_partly_out": (lambda L, b: L.normal(b[:4], 1.0, out=b[2:6]), PARTIAL),
    "std_partly_out": (lambda L, b: L.normal(2.0, b[:4], out=b[2:6]), PARTIAL),
    "expanded_out": (lambda L, b: L.normal(L.zeros(4), 1.0, out=L.zeros(1).expand(4)), INTERNAL),
    "mean_is_out_memory": (lambda L, b: L.normal(b[:4], 1.0, out=b[:4]), None),
    "disjoint": (lambda L, b: L.normal(b[:4], 1.0, out=b[4:]), None),
}


@pytest.mark.parametrize("case", sorted(NORMAL_OUTS))
def test_normal_out_overlap_as_torch(case):
    call, refusal = NORMAL_OUTS[case]
    for L in (torch, distnn):
        base = L.arange(8.0)
        if refusal is None:
            assert tuple(call(L, base).shape) == (4,)
        else:
            with pytest.raises(RuntimeError) as caught:
                call(L, base)
            assert str(caught.value) == refusal
