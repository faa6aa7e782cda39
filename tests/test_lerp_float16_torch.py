"""float16 lerp against PyTorch 2.13: PyTorch computes it in float32 (its "opmath" type, the number weight taken to
float32 from the number) and rounds once to float16. distnn rounded every step to float16, up to 2 % off where
``end - start`` cancels. Every form: ``distnn.lerp`` with a number or a tensor weight, ``Tensor.lerp``, ``lerp_``
on the in-place direct path (nothing recorded) and on the general one (a graph recorded), 0-d tensors.

Agreement is to one float16 unit in the last place: PyTorch's vectorized loop fuses the multiply-add in float32
(one rounding fewer), which now and then moves the float16 result by one unit."""
from __future__ import annotations

import numpy as np
import pytest

import distnn
from tests.conftest import import_torch

torch = import_torch()

WEIGHTS = [0.3, 0.8, 2.0, -0.7, 0.49, 0.5, 1 / 3]


def _operands(seed=0, n=600):
    """``start`` and ``end`` in float16, half the pairs within a few units of each other (``end - start`` cancels),
    with infinities, NaN and signed zeros among them."""
    rng = np.random.default_rng(seed)
    start = (rng.standard_normal(n) * 3).astype(np.float16)
    end = (start.astype(np.float32) * (1 + rng.standard_normal(n) * 3e-3)).astype(np.float16)
    end[::2] = (rng.standard_normal(n // 2) * 3).astype(np.float16)
    start[:5] = [np.inf, -np.inf, np.nan, -0.0, 0.0]
    end[5:10] = [np.inf, -np.inf, np.nan, -0.0, 0.0]
    return start, end


def _assert_within_one_unit(ours, theirs, what):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype == np.float16, what
    nan = np.isnan(theirs)
    np.testing.assert_array_equal(np.isnan(ours), nan, err_msg=f"{what}: NaN positions")
    ours, theirs = ours[~nan].astype(np.float64), theirs[~nan].astype(np.float64)
    finite = np.isfinite(theirs)
    np.testing.assert_array_equal(ours[~finite], theirs[~finite], err_msg=f"{what}: infinities")
    unit = np.spacing(np.abs(theirs[finite]).astype(np.float16)).astype(np.float64)
    off = np.abs(ours[finite] - theirs[finite]) / unit
    assert off.max(initial=0) <= 1, f"{what}: {int((off > 1).sum())} values off by up to {off.max()} units"


@pytest.mark.parametrize("weight", WEIGHTS)
def test_float16_lerp_with_a_number_weight_rounds_once_as_torch(weight):
    start, end = _operands()
    want = torch.lerp(torch.from_numpy(start), torch.from_numpy(end), weight).numpy()
    _assert_within_one_unit(distnn.lerp(distnn.Tensor(start), distnn.Tensor(end), weight).data, want, "lerp")
    _assert_within_one_unit(distnn.Tensor(start).lerp(distnn.Tensor(end), weight).data, want, "Tensor.lerp")
    direct = distnn.Tensor(start.copy())
    direct.lerp_(distnn.Tensor(end), weight)
    _assert_within_one_unit(direct.data, want, "lerp_ (nothing recorded)")
    recorded = distnn.Tensor(start, requires_grad=True) * 1  # (a non-leaf requiring grad: the general path)
    recorded.lerp_(distnn.Tensor(end), weight)
    _assert_within_one_unit(recorded.data, want, "lerp_ (recorded)")
    np.testing.assert_array_equal(recorded.data, direct.data)


def test_float16_lerp_with_a_tensor_weight_rounds_once_as_torch():
    start, end = _operands(1)
    weight = (np.random.default_rng(2).random(start.size) * 3 - 1).astype(np.float16)
    want = torch.lerp(*(torch.from_numpy(a) for a in (start, end, weight))).numpy()
    got = distnn.lerp(*(distnn.Tensor(a) for a in (start, end, weight))).data
    _assert_within_one_unit(got, want, "lerp, tensor weight")
    in_place = distnn.Tensor(start.copy())
    in_place.lerp_(distnn.Tensor(end), distnn.Tensor(weight))
    _assert_within_one_unit(in_place.data, want, "lerp_, tensor weight")


@pytest.mark.parametrize("start,end,weight", [(-2.412, 5.93, 0.3), (2.535, -0.629, 0.8)])
def test_float16_lerp_of_0d_tensors_rounds_once_as_torch(start, end, weight):
    start, end = np.float16(start), np.float16(end)  # (the result is small beside the steps: their rounding shows)
    want = torch.lerp(torch.tensor(start), torch.tensor(end), weight).numpy()
    _assert_within_one_unit(distnn.lerp(distnn.Tensor(start), distnn.Tensor(end), weight).data, want, "0-d lerp")
    t = distnn.Tensor(np.array(start))
    t.lerp_(distnn.Tensor(np.array(end)), weight)
    _assert_within_one_unit(t.data, want, "0-d lerp_")
