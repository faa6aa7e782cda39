"""BatchNorm's running statistics in float16 buffers against PyTorch 2.13 (CPU): the update
``m * stat + (1 - m) r`` is worked out in float32 and rounded to float16, as ATen's kernel (the update alone:
test_half_batchnorm_running_update_torch), so the buffers hold
PyTorch's values bitwise (the running mean of an (N, C) input within one float16 unit: see below); a running
variance past 65504 is inf, as there, with no numpy overflow warning."""
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F

torch = pytest.importorskip("torch")


def _batches(rng, shape, scale, steps):
    C = shape[1]
    bshape = (1, C) + (1,) * (len(shape) - 2)
    return [(rng.standard_normal(shape) * scale + rng.standard_normal(bshape) * scale).astype(np.float16)
            for _ in range(steps)]


@pytest.mark.parametrize("scale", [1.0, 30.0, 300.0, 3000.0])  # (3000: the variance overflows float16)
@pytest.mark.parametrize("layer,shape", [("BatchNorm1d", (8, 16)), ("BatchNorm1d", (4, 6, 5)),
                                         ("BatchNorm2d", (3, 5, 4, 4))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_module_running_stats_are_torchs_bitwise_and_quiet(scale, layer, shape, momentum):
    rng = np.random.default_rng(5)
    tbn = getattr(torch.nn, layer)(shape[1], momentum=momentum).to(torch.float16)
    dbn = getattr(distnn.nn, layer)(shape[1], momentum=momentum).to(distnn.float16)
    for x in _batches(rng, shape, scale, steps=3):
        ty = tbn(torch.from_numpy(x))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (numpy's "overflow encountered in cast" was one)
            dy = dbn(distnn.tensor(x))
        assert dy.dtype == np.float16 and ty.dtype == torch.float16
    for name in ("running_mean", "running_var"):
        got, expected = getattr(dbn, name).data, getattr(tbn, name).numpy()
        assert got.dtype == np.float16
        if name == "running_mean" and len(shape) == 2:
            # (ATen's (N, C) kernel adds the batch mean up in another order: its float32 mean can differ in the
            # last bit, and the update then rounds to the neighbouring float16 now and then)
            np.testing.assert_array_max_ulp(got, expected, maxulp=1)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)
    if scale == 3000.0:
        assert np.isinf(dbn.running_var.data).all()  # (the case the test is for)


def test_functional_batch_norm_updates_float16_buffers_as_torch():
    rng = np.random.default_rng(9)
    x = _batches(rng, (16, 4), 1000.0, steps=1)[0]
    buffers = {lib: (np.zeros(4, np.float16), np.ones(4, np.float16)) for lib in ("torch", "distnn")}
    tm, tv = (torch.from_numpy(b) for b in buffers["torch"])
    torch.nn.functional.batch_norm(torch.from_numpy(x), tm, tv, training=True, momentum=0.3)
    dm, dv = (distnn.tensor(b) for b in buffers["distnn"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.batch_norm(distnn.tensor(x), dm, dv, training=True, momentum=0.3)
    np.testing.assert_array_equal(dm.data, tm.numpy())
    np.testing.assert_array_equal(dv.data, tv.numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wider_buffers_stay_close_to_torch(dtype):
    """float32/float64 buffers: the same single rounding; the batch statistics themselves differ from ATen's in
    the last bits, so close, not bitwise."""
    rng = np.random.default_rng(2)
    tbn = torch.nn.BatchNorm1d(6).to(getattr(torch, dtype))
    dbn = distnn.nn.BatchNorm1d(6).to(getattr(distnn, dtype))
    for _ in range(4):
        x = (rng.standard_normal((10, 6)) * 50).astype(dtype)
        tbn(torch.from_numpy(x))
        dbn(distnn.tensor(x))
    rtol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(dbn.running_mean.data, tbn.running_mean.numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dbn.running_var.data, tbn.running_var.numpy(), rtol=rtol)
    assert dbn.running_var.data.dtype == np.dtype(dtype)
