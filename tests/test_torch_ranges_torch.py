"""``arange`` and ``linspace`` of float16 bitwise as torch 2.13's CPU kernels: arange's float32 formula with its
vector loop's bases rounded to float16, linspace's arithmetic in float16 itself (each operation rounded). Random
ranges (fixed seeds) and edge cases; float32 (within an ulp: its kernels' roundings are not followed, for their
cost), float64 and integer dtypes guard the rules that did not change."""
import numpy as np
import pytest
import torch

import distnn as dn

DTYPES = {"float16": (dn.float16, torch.float16, np.uint16)}


def _assert_bitwise(got, expected, bits):
    got, expected = got.numpy(), expected.numpy()
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(np.where(np.isnan(got), 0, got.view(bits)),
                                  np.where(np.isnan(expected), 0, expected.view(bits)))


def _random_ranges(seed, count=60):
    rng = np.random.default_rng(seed)
    for k in range(count):
        start = float(rng.standard_normal() * 10.0 ** rng.integers(-2, 3))
        step = float(abs(rng.standard_normal()) * 10.0 ** rng.integers(-3, 1)) * (1 if k % 3 else -1)
        yield start, start + step * int(rng.integers(1, 3000)), step, int(rng.integers(2, 5000))


@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_arange_of_random_ranges_is_torchs_bitwise(name, seed):
    ours, theirs, bits = DTYPES[name]
    for start, end, step, _ in _random_ranges(seed):
        _assert_bitwise(dn.arange(start, end, step, dtype=ours), torch.arange(start, end, step, dtype=theirs), bits)


@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("args", [(0, 10, 0.1), (1.5, 2000, 0.7), (0, 1, 0.001), (0, 5000, 1), (3000,), (31,), (32,),
                                  (33,), (-2, 2, 0.125), (60000, 70000, 7.3), (0, 1e-6, 1e-8), (5, -5, -0.3)])
def test_arange_edges_are_torchs_bitwise(name, args):
    ours, theirs, bits = DTYPES[name]
    _assert_bitwise(dn.arange(*args, dtype=ours), torch.arange(*args, dtype=theirs), bits)


@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linspace_of_random_ranges_is_torchs_bitwise(name, seed):
    ours, theirs, bits = DTYPES[name]
    for start, end, _, steps in _random_ranges(seed):
        _assert_bitwise(dn.linspace(start, end, steps, dtype=ours), torch.linspace(start, end, steps, dtype=theirs),
                        bits)


@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("args", [(0, 1, 100), (-3, 5, 37), (0, 1000, 1001), (1.3, 2.7, 5000), (0.1, 65000, 30),
                                  (1 + 2 ** -11 + 2 ** -40, 3, 1), (2, 1, 0), (0, 1, 2), (5, 5, 9), (-1e4, 1e4, 70000),
                                  (0, float("inf"), 3), (0, 70000, 1)])
def test_linspace_edges_are_torchs_bitwise(name, args):
    ours, theirs, bits = DTYPES[name]
    _assert_bitwise(dn.linspace(*args, dtype=ours), torch.linspace(*args, dtype=theirs), bits)


@pytest.mark.parametrize("name,args,type_name", [("float16", (0, 70000, 7), "c10::Half"),
                                                 ("float16", (-65520.0, 0, 3), "c10::Half")])
def test_linspace_ends_past_the_dtypes_range_are_refused_as_torch(name, args, type_name):
    ours, theirs, _ = DTYPES[name]
    message = f"value cannot be converted to type {type_name} without overflow"
    with pytest.raises(RuntimeError, match=message):
        torch.linspace(*args, dtype=theirs)
    with pytest.raises(RuntimeError, match=message):
        dn.linspace(*args, dtype=ours)


def test_default_dtype_arange_and_linspace_are_torchs_float32_within_rounding():
    """Guard: float32 (the default dtype) keeps its values, a few ulps from PyTorch's at most."""
    for got, expected in [(dn.arange(0.1, 50, 0.013), torch.arange(0.1, 50, 0.013)),
                          (dn.linspace(-0.3, 7.1, 1234), torch.linspace(-0.3, 7.1, 1234))]:
        got, expected = got.numpy(), expected.numpy()
        assert got.dtype == expected.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_float64_and_integer_ranges_keep_their_rules():
    """Guards: integer aranges exact, float64 within an ulp (PyTorch fuses its multiply-adds; not followed)."""
    np.testing.assert_array_equal(dn.arange(5, 1000, 7).numpy(), torch.arange(5, 1000, 7).numpy())
    np.testing.assert_array_equal(dn.arange(2.5, dtype=dn.int64).numpy(), torch.arange(2.5, dtype=torch.int64).numpy())
    got = dn.arange(0.5, 300, 0.37, dtype=dn.float64).numpy()
    np.testing.assert_allclose(got, torch.arange(0.5, 300, 0.37, dtype=torch.float64).numpy(), rtol=0, atol=1e-12)
    got = dn.linspace(0.5, 300, 777, dtype=dn.float64).numpy()
    np.testing.assert_allclose(got, torch.linspace(0.5, 300, 777, dtype=torch.float64).numpy(), rtol=0, atol=1e-12)
