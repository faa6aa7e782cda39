"""var/std (and var_mean/std_mean) of complex tensors against PyTorch: the spread of the complex values, a real
tensor (|z - mean|^2 averaged; complex64 -> float32, complex128 -> float64), with ``out=`` too. distnn gave a
complex number that was no spread (the squares of the complex deviations, not of their distances)."""
import numpy as np
import pytest

import distnn
from conftest import import_torch

torch = import_torch()

ARGS = [{}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": 1, "correction": 0}, {"dim": (0, 1)},
        {"dim": 1, "unbiased": False}]


def _values(dtype, shape=(4, 6), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 3 + 1j * rng.standard_normal(shape) + (2 - 1j)).astype(dtype)


def _same(ours, theirs, rtol):
    ours = np.asarray(ours.numpy())
    theirs = theirs.numpy()
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=rtol)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("args", ARGS, ids=str)
def test_spread_of_complex_values_as_torch(dtype, name, args):
    x = _values(dtype)
    rtol = 1e-5 if dtype == np.complex64 else 1e-12
    _same(getattr(distnn, name)(distnn.tensor(x), **args), getattr(torch, name)(torch.tensor(x), **args), rtol)
    _same(getattr(distnn.tensor(x), name)(**args), getattr(torch.tensor(x), name)(**args), rtol)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("name", ["var_mean", "std_mean"])
@pytest.mark.parametrize("args", ARGS[:4], ids=str)
def test_paired_spread_and_mean_of_complex_values_as_torch(dtype, name, args):
    x = _values(dtype, seed=1)
    rtol = 1e-5 if dtype == np.complex64 else 1e-12
    ours, theirs = getattr(distnn, name)(distnn.tensor(x), **args), getattr(torch, name)(torch.tensor(x), **args)
    _same(ours[0], theirs[0], rtol)
    _same(ours[1], theirs[1], rtol)


@pytest.mark.parametrize("name", ["var", "std"])
def test_spread_of_complex_values_into_out_as_torch(name):
    x = _values(np.complex64, seed=2)
    ours, theirs = distnn.zeros(4, dtype=np.float32), torch.zeros(4)
    assert getattr(distnn, name)(distnn.tensor(x), 1, out=ours) is ours
    getattr(torch, name)(torch.tensor(x), 1, out=theirs)
    _same(ours, theirs, 1e-5)


def test_a_constant_complex_slice_has_no_spread():
    x = np.full((2, 5), 3 - 4j, dtype=np.complex64)
    assert distnn.std(distnn.tensor(x), 1).numpy().tolist() == [0.0, 0.0]
