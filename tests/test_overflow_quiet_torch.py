"""Where a cast or a reduction overflows, distnn gives PyTorch's inf and NaN as silently as PyTorch (against torch,
numpy's RuntimeWarnings made errors):

* casts to a narrower float: ``half()``, ``to(float16)``, ``type(...)``, ``float()`` of float64;
* sum, mean, prod, cumsum, cumprod, nansum, nanmean, ``norm()``, ``linalg.vector_norm``, ``segment_reduce``;
* GradScaler + autocast training whose float16 values overflow: no numpy warning from the whole loop, and the
  losses, scales and skipped steps of torch's same loop.
"""
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.amp import GradScaler
from torch_twins import twin_models

torch = pytest.importorskip("torch")
INF, NAN = float("inf"), float("nan")

# Rows: past float32's range when summed or squared, past float16's, an inf beside a -inf, an ordinary row.
ROWS = [[3e38, 3e38, 1e5, -1e5], [6e4, 7e4, -1e5, 2.0], [INF, -INF, 1.0, 2.0], [1.0, 2.0, 3.0, 4.0]]


def _same(ours, theirs):
    """Equal up to rounding, NaN where NaN, infinities with their signs."""
    ours, theirs = np.asarray(ours), theirs.detach().numpy()
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours) * np.sign(ours), np.isinf(theirs) * np.sign(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)


def _silently(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning (numpy's RuntimeWarning) fails the test: PyTorch is silent
        return call()


CASTS = {
    "half()": lambda m, x: x.half(),
    "to(float16)": lambda m, x: x.to(m.float16),
    "type(float16)": lambda m, x: x.type(m.float16),
    "type('torch.HalfTensor')": lambda m, x: x.type("torch.HalfTensor"),
    "double().float()": lambda m, x: (x.double() * 1e10).float(),
}


@pytest.mark.parametrize("name", list(CASTS))
def test_narrowing_casts_overflow_to_inf_silently(name):
    cast = CASTS[name]
    x = distnn.tensor(np.array(ROWS, dtype=np.float32), requires_grad=True)
    t = torch.tensor(np.array(ROWS, dtype=np.float32), requires_grad=True)
    y = _silently(lambda: cast(distnn, x))
    ty = cast(torch, t)
    _same(y.data, ty)
    _silently(lambda: y.sum().backward())  # (the gradient passes back through the cast)
    ty.sum().backward()
    _same(x.grad, t.grad)


REDUCTIONS = {
    "sum()": lambda m, x: x.sum(),
    "sum(1)": lambda m, x: x.sum(1),
    "sum(half, dtype=float32)": lambda m, x: m.sum(x.half(), 1, dtype=m.float32),
    "mean()": lambda m, x: x.mean(),
    "mean(1)": lambda m, x: m.mean(x, 1, keepdim=True),
    "prod()": lambda m, x: x.prod(),
    "prod(1)": lambda m, x: m.prod(x, 1),
    "cumsum(1)": lambda m, x: x.cumsum(1),
    "cumprod(1)": lambda m, x: m.cumprod(x, 1),
    "nansum(1)": lambda m, x: m.nansum(x, 1),
    "nanmean(1)": lambda m, x: m.nanmean(x, 1),
    "norm()": lambda m, x: x.norm(),
    "norm(dim=1)": lambda m, x: x.norm(dim=1),
    "norm(p=1, dim=1)": lambda m, x: x.norm(p=1, dim=1),
    "norm(p=3, dim=1)": lambda m, x: x.norm(p=3, dim=1),
    "vector_norm(dim=1)": lambda m, x: m.linalg.vector_norm(x, dim=1),
    "vector_norm(0.5, dim=1)": lambda m, x: m.linalg.vector_norm(x, 0.5, dim=1),
    "matrix_norm": lambda m, x: m.linalg.matrix_norm(x),
    "half().sum(1)": lambda m, x: x[1:].half().sum(1),
    "half().cumsum(1)": lambda m, x: x[1:].half().cumsum(1),
    "half().norm(dim=1)": lambda m, x: x[1:].half().norm(dim=1),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions_past_the_range_give_torch_infinities_silently(name):
    op = REDUCTIONS[name]
    x = distnn.tensor(np.array(ROWS, dtype=np.float32))
    _same(_silently(lambda: op(distnn, x)).data, op(torch, torch.tensor(np.array(ROWS, dtype=np.float32))))


# (float16's mean left out: torch's is inf where the float16 sum overflows, distnn's the mean of a float32 sum)
@pytest.mark.parametrize("reduce, dtype", [("sum", np.float32), ("mean", np.float32), ("prod", np.float32),
                                           ("sum", np.float16), ("prod", np.float16)])
def test_segment_reduce_past_the_range_silently(reduce, dtype):
    big = np.finfo(dtype).max  # (two of them: past the range; float16's are summed in float32, then cast back)
    data = np.array([big, big, big / 2, big, 1.0, INF, -INF], dtype=dtype)
    lengths = [2, 2, 1, 2]
    ours = _silently(lambda: distnn.segment_reduce(distnn.tensor(data), reduce, lengths=distnn.tensor(lengths)))
    _same(ours.data, torch.segment_reduce(torch.tensor(data), reduce, lengths=torch.tensor(lengths)))


def _models():
    return twin_models(lambda nn: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))


# the inputs' scale: 3e4 overflows only the scaled float16 gradients (a finite loss, steps skipped), 1e5 the
# input's cast to float16 (inf, then NaN out of the matmul), 1 nothing (the steps are taken)
@pytest.mark.parametrize("scale", [1.0, 3e4, 1e5])
def test_grad_scaler_autocast_training_that_overflows_is_silent_and_as_torch(scale):
    tm, dm = _models()
    topt, dopt = torch.optim.SGD(tm.parameters(), lr=1e-3), distnn.optim.SGD(dm.parameters(), lr=1e-3)
    ts, ds = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16), GradScaler("cpu", init_scale=2.0 ** 16)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = (rng.standard_normal((3, 4)) * scale).astype(np.float32)
        y = np.zeros((3, 2), np.float32)
        topt.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            tl = torch.nn.functional.mse_loss(tm(torch.from_numpy(x)), torch.from_numpy(y))
        ts.scale(tl).backward()
        ts.step(topt)
        ts.update()

        def step():
            dopt.zero_grad()
            with distnn.autocast("cpu", dtype=distnn.float16):
                dl = F.mse_loss(dm(distnn.tensor(x)), distnn.tensor(y))
            ds.scale(dl).backward()
            ds.step(dopt)
            ds.update()
            return dl

        dl = _silently(step)
        _same(np.float32(dl.item()), torch.tensor(np.float32(tl.item())))
        assert ds.get_scale() == ts.get_scale()
    for (name, p), q in zip(dm.named_parameters(), tm.parameters()):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=2e-3, atol=2e-3, err_msg=name)
    assert (ts.get_scale() < 2.0 ** 16) == (scale > 1)  # (the overflowing cases did back off: inf was found)


def test_numpy_warnings_come_back_after_an_autocast_region():
    big = np.array([3e38], np.float32)
    for exit_by_error in (False, True):
        try:
            with distnn.autocast("cpu", dtype=distnn.float16):
                _silently(lambda: big * 10)  # (silent inside the region)
                if exit_by_error:
                    raise KeyError
        except KeyError:
            pass
        with pytest.warns(RuntimeWarning, match="overflow"):
            big * 10
    with distnn.autocast("cpu", enabled=False):  # (a disabled region changes nothing)
        with pytest.warns(RuntimeWarning, match="overflow"):
            big * 10
