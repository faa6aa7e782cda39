"""``Tensor.sigmoid_()``'s direct path (nothing recorded: written into the tensor's memory) against the
out-of-place ``distnn.sigmoid``, bitwise: float16/32/64, C-contiguous and strided, over many arrays of ordinary
values, of both signs, of the extremes (±0, ±inf, NaNs with any payload, subnormals, the largest finite values)
and of random bit patterns. The direct path computes the numerator without a ``where`` (see
``inplace_direct_ops._sigmoid``); this guards that its bits are the general path's."""
import numpy as np
import pytest

import distnn

BITS = {"float16": np.uint16, "float32": np.uint32, "float64": np.uint64}


def _specials(dtype):
    info = np.finfo(dtype)
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, float(info.tiny), -float(info.tiny), float(info.max),
              -float(info.max), float(info.eps), float(info.smallest_subnormal), -float(info.smallest_subnormal),
              1.0, -1.0, 17.0, -17.0, 88.7, -88.7, 709.0, -709.0, 745.2, -745.2]
    with np.errstate(over="ignore"):
        return np.array(values, dtype=np.float64).astype(dtype)


def _arrays(dtype, rng):
    bits = BITS[dtype]
    for size in (1, 7, 64, 1000):
        yield rng.standard_normal(size).astype(dtype) * dtype_scale(dtype, rng)
        yield rng.uniform(-30, 30, size).astype(dtype)
        yield rng.choice(_specials(dtype), size)
        yield rng.integers(0, np.iinfo(bits).max, size, dtype=np.uint64).astype(bits).view(dtype)
    yield rng.uniform(-5, 5, (8, 9, 3)).astype(dtype)


def dtype_scale(dtype, rng):
    return np.asarray(10.0 ** rng.uniform(-6, 3)).astype(dtype)


def _same_bits(a, b, dtype):
    return np.array_equal(np.asarray(a).view(BITS[dtype]), np.asarray(b).view(BITS[dtype]))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dtype", sorted(BITS))
def test_sigmoid_inplace_is_bitwise_the_out_of_place_sigmoid(dtype, seed):
    rng = np.random.default_rng(seed)
    for values in _arrays(dtype, rng):
        want = distnn.sigmoid(distnn.tensor(values)).numpy()
        x = distnn.tensor(values.copy())
        assert x.sigmoid_() is x
        assert _same_bits(x.numpy(), want, dtype)


@pytest.mark.parametrize("dtype", sorted(BITS))
def test_sigmoid_inplace_of_a_strided_view_is_bitwise_the_out_of_place_sigmoid(dtype):
    rng = np.random.default_rng(9)
    values = np.concatenate([rng.uniform(-20, 20, 60), _specials(dtype).astype(np.float64)[:20]]).astype(dtype)
    base = distnn.tensor(values.reshape(8, 10))
    want = distnn.sigmoid(base[:, ::3]).numpy()
    view = base[:, ::3]
    view.sigmoid_()
    assert _same_bits(base[:, ::3].numpy(), want, dtype)
