"""ExactSum: the sum of float values with no rounding until it is read, reducible over ranks."""
from fractions import Fraction

import numpy as np
import pytest

from distnn.distributed import ExactSum, simulate


def exact(values) -> float:
    """The oracle: the rational sum of the values, rounded once (float(Fraction) rounds correctly)."""
    total = sum((Fraction(v) for v in np.asarray(values, dtype=np.float64).tolist()), Fraction(0))
    try:
        return float(total)
    except OverflowError:
        return float("inf") if total > 0 else float("-inf")


def awkward_values(rng, n):
    # magnitudes from subnormal to near overflow, both signs, with cancellations
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    x = np.concatenate([x, -x[: n // 3], [5e-324, -5e-324, 2.5e-320, 1.7e308, -1.7e308, 1.7e308, 1.0, 1e-16]])
    return x[np.isfinite(x)]


@pytest.mark.parametrize("seed", range(6))
def test_sum_is_the_exact_sum_rounded_once(seed):
    rng = np.random.default_rng(seed)
    x = awkward_values(rng, 200)
    ref = exact(x)
    assert ExactSum().add(x).value() == ref
    # any order, any split into parts merged afterwards
    parts = np.array_split(rng.permutation(x), 5)
    total = ExactSum()
    for p in parts:
        total.merge(ExactSum().add(p))
    assert total.value() == ref
    # the transport form: limb arrays summed elementwise in float64, as an allreduce does
    assert ExactSum.from_array(sum(ExactSum().add(p).to_array() for p in parts)).value() == ref


def test_float32_values_and_a_case_plain_summation_gets_wrong():
    x = np.array([1e16, 1.0, -1e16, 1.0], dtype=np.float64)
    assert float(np.sum(x)) != 2.0  # rounding loses the ones
    assert ExactSum().add(x).value() == 2.0
    y = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    assert ExactSum().add(y).value() == exact(y)


def test_non_finite_terms_follow_ieee_addition():
    assert ExactSum().add([1.0, np.inf]).value() == np.inf
    assert ExactSum().add([-np.inf, 3.0]).value() == -np.inf
    assert np.isnan(ExactSum().add([np.inf, -np.inf]).value())
    assert np.isnan(ExactSum().add([1.0, np.nan]).value())
    assert ExactSum().add([1.7e308, 1.7e308]).value() == np.inf  # the exact sum overflows float64
    assert ExactSum().value() == 0.0
    # counted apart and carried through the transport form
    assert np.isnan(ExactSum.from_array(ExactSum().add([np.inf]).to_array()
                                        + ExactSum().add([-np.inf]).to_array()).value())
    with pytest.raises(ValueError, match="expected 75 values"):
        ExactSum.from_array(np.zeros(3))


@pytest.mark.parametrize("world", [2, 3, 5])
def test_allreduce_over_simulated_ranks_equals_one_process(world):
    x = awkward_values(np.random.default_rng(world), 300)
    res = simulate(world, lambda c: ExactSum().add(np.array_split(x, c.size)[c.rank]).allreduce(c).value())
    assert res == [exact(x)] * world
