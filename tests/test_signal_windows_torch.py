"""distnn.signal.windows against torch.signal.windows: values for every window, length and parameter, in
float32 and float64; dtypes, defaults, devices and the refusals (type and message)."""
import numpy as np
import pytest
import torch

import distnn
from distnn.signal import windows as dw

tw = torch.signal.windows

PARAMS = {"exponential": [{}, {"tau": 0.5}, {"tau": 3.0, "center": 1.5}],
          "gaussian": [{}, {"std": 0.3}, {"std": 7.0}],
          "kaiser": [{}, {"beta": 0.0}, {"beta": 5.0}, {"beta": 30.0}],
          "general_cosine": [{"a": [0.46, 0.23, 0.31]}, {"a": (0.5, 0.5)}, {"a": [1.0]}],
          "general_hamming": [{}, {"alpha": 0.3}]}
NAMES = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine", "general_hamming",
         "hamming", "hann", "kaiser", "nuttall"]


def test_the_names_are_torchs():
    assert sorted(dw.__all__) == sorted(tw.__all__) == sorted(NAMES)
    assert distnn.signal.windows is dw


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("M", [0, 1, 2, 3, 8, 31])
@pytest.mark.parametrize("sym", [True, False])
def test_windows_match_torch(name, M, sym):
    for params in PARAMS.get(name, [{}]):
        if "center" in params and sym:
            continue
        for dtype, tol in (("float64", 1e-12), ("float32", 2e-6)):
            ours = getattr(dw, name)(M, sym=sym, dtype=np.dtype(dtype), **params)
            theirs = getattr(tw, name)(M, sym=sym, dtype=getattr(torch, dtype), **params)
            assert ours.dtype == np.dtype(dtype) and ours.shape == tuple(theirs.shape), params
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=tol, atol=tol, err_msg=f"{params}")


@pytest.mark.parametrize("name", NAMES)
def test_defaults_dtype_device_and_requires_grad(name):
    params = PARAMS.get(name, [{}])[0]
    ours, theirs = getattr(dw, name)(10, **params), getattr(tw, name)(10, **params)
    assert ours.dtype == np.float32 and theirs.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=2e-6, atol=2e-6)
    made = getattr(dw, name)(4, requires_grad=True, device="cpu", layout=distnn.strided, **params)
    assert made.requires_grad and made.device == "cpu"
    distnn.set_default_dtype(distnn.float64)
    try:
        assert getattr(dw, name)(3, **params).dtype == np.float64
    finally:
        distnn.set_default_dtype(distnn.float32)


def _refusal(call, *args, **kwargs):
    with pytest.raises(Exception) as info:
        call(*args, **kwargs)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_common_refusals_match_torch(name):
    params = PARAMS.get(name, [{}])[0]
    for M, dtype in ((-1, "float32"), (3, "float16"), (3, "int64"), (3, "complex64")):
        theirs = _refusal(getattr(tw, name), M, dtype=getattr(torch, dtype), **params)
        ours = _refusal(getattr(dw, name), M, dtype=np.dtype(dtype), **params)
        assert ours[0] is theirs[0] is ValueError
        # (the message names the window, or general_cosine for the ones built on it, and the value; torch
        # spells its dtypes torch.float16, distnn float16)
        assert ours[1] == theirs[1].replace("torch.", ""), (M, dtype)
    with pytest.raises(ValueError, match="is implemented for strided "
                                         "tensors only"):
        getattr(dw, name)(3, layout="sparse", **params)
    with pytest.raises(TypeError, match="M must be an int"):
        getattr(dw, name)(2.5, **params)


@pytest.mark.parametrize("call", [
    lambda w: w.general_cosine(3, a=[]), lambda w: w.general_cosine(3, a=3), lambda w: w.gaussian(3, std=0),
    lambda w: w.gaussian(0, std=-1), lambda w: w.exponential(3, tau=0), lambda w: w.exponential(3, center=1.0),
    lambda w: w.exponential(0, center=1.0), lambda w: w.kaiser(3, beta=-1), lambda w: w.kaiser(1, beta=-1)])
def test_parameter_refusals_match_torch(call):
    theirs, ours = _refusal(call, tw), _refusal(call, dw)
    assert ours == theirs


def test_coefficients_are_not_read_for_the_trivial_lengths():
    for M in (0, 1):  # (as torch's: a=3 is only refused once there is a cosine to weigh)
        np.testing.assert_array_equal(dw.general_cosine(M, a=3).numpy(), tw.general_cosine(M, a=3).numpy())
