"""SyncBatchNorm with a float16 input: its statistics and its backward's sums in float32 or wider (torch's
accumulate type), its output and the input's gradient float16. One process against torch's BatchNorm in training
mode (SyncBatchNorm on one rank is BatchNorm), and N ranks (simulated, and under MPI) against one process on the
whole batch. A batch of 64 values near 300 has a variance (about 9e4) past float16's largest value (65504):
SyncBatchNorm cast its global variance to float16, normalized with an infinite one (outputs collapsed to the
bias, weight gradients zero)."""
import numpy as np
import pytest

import distnn
import distnn.nn as nn
from distnn.distributed import simulate

H = np.float16


def _batch(scale, n=64, shape=(3, 2), seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n,) + shape) * scale + 0.5 * scale).astype(H)
    return x, rng.standard_normal(x.shape).astype(H)


def _close(ours, ref, what):
    """Within 2 float16 units of the reference's largest value (their sums' order differs)."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert np.isfinite(ours).all(), what
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2 * 2.0 ** -10 * np.abs(ref).max() + 1e-6, err_msg=what)


def _set(bn, c, dtype):
    bn.weight.data[...] = np.linspace(0.5, 1.5, c).astype(dtype)
    bn.bias.data[...] = np.linspace(-1, 1, c).astype(dtype)
    return bn


@pytest.mark.parametrize("scale", [1.0, 300.0])
@pytest.mark.parametrize("p_dtype", [np.float32, np.float16])
def test_one_process_matches_torch_batchnorm_with_a_float16_input(scale, p_dtype):
    torch = pytest.importorskip("torch")
    c = 3
    ours = _set(nn.SyncBatchNorm(c, momentum=0.3, dtype=p_dtype), c, p_dtype)
    ref = torch.nn.BatchNorm1d(c, momentum=0.3, dtype=getattr(torch, np.dtype(p_dtype).name))
    with torch.no_grad():
        ref.weight[...] = torch.tensor(ours.weight.numpy())
        ref.bias[...] = torch.tensor(ours.bias.numpy())
    for step in range(3):  # two training steps (the running statistics), then eval
        if step == 2:
            ours.eval()
            ref.eval()
        x, gy = _batch(scale, seed=step)
        xo, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yo, yt = ours(xo), ref(xt)
        yo.backward(distnn.tensor(gy))
        yt.backward(torch.tensor(gy))
        assert yo.dtype == np.float16 and xo.grad.dtype == np.float16
        _close(yo.numpy(), yt.detach().numpy(), f"output, step {step}")
        _close(xo.grad, xt.grad.numpy(), f"input's gradient, step {step}")
    for name, value in ours.state_dict().items():
        assert value.dtype == ref.state_dict()[name].numpy().dtype, name
        _close(value, ref.state_dict()[name].numpy(), name)
    for name, p in ours.named_parameters():
        t = dict(ref.named_parameters())[name].grad.numpy()
        assert p.grad.dtype == t.dtype
        _close(p.grad, t, f"{name}'s gradient")


def test_statistics_of_values_near_300_are_finite_and_exact():
    """The normalized batch has mean 0 and variance 1 per channel, as in float64 (float16's sum of squares of
    these 64 values would be inf)."""
    x, _ = _batch(300.0)
    with np.errstate(over="ignore"):  # (what a float16 accumulation would give)
        assert np.isinf((x * x).sum(axis=(0, 2), dtype=H)).all()
    bn = nn.SyncBatchNorm(3, affine=False)
    y = bn(distnn.tensor(x)).numpy().astype(np.float64)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0, atol=2e-3)
    np.testing.assert_allclose(y.var(axis=(0, 2)), 1, atol=2e-3)
    x64 = x.astype(np.float64).transpose(1, 0, 2).reshape(3, -1)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * x64.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x64.var(axis=1, ddof=1), rtol=1e-6)


def _one_process(x, gy):
    bn = _set(nn.BatchNorm1d(3, momentum=0.3), 3, np.float32)
    xt = distnn.tensor(x, requires_grad=True)
    y = bn(xt)
    y.backward(distnn.tensor(gy))
    return y.numpy(), xt.grad, bn.weight.grad, bn.bias.grad, bn.running_mean.numpy(), bn.running_var.numpy()


def _rank(comm, x, gy, bounds):
    """This rank's share of the batch, its loss the mean over its k rows of y * gy, as DataParallel's ranks
    (which weigh them by k / N; without DataParallel SyncBatchNorm takes that weight for itself): k times the
    input's gradient is the whole batch's on these rows, and the parameters' add up to the whole batch's."""
    lo, hi = bounds[comm.rank], bounds[comm.rank + 1]
    bn = _set(nn.SyncBatchNorm(3, momentum=0.3, process_group=comm), 3, np.float32)
    xr = distnn.tensor(x[lo:hi], requires_grad=True)
    y = bn(xr)
    y.backward(distnn.tensor((gy[lo:hi] / (hi - lo)).astype(H)))
    k = hi - lo
    return (y.numpy(), xr.grad, k * xr.grad.astype(np.float64), k * bn.weight.grad, k * bn.bias.grad,
            bn.running_mean.numpy(), bn.running_var.numpy())


def _check_ranks(results, x, gy, bounds):
    y, gx, gw, gb, rm, rv = _one_process(x, gy)
    for r, (yr, gxr, k_gxr, _, _, rmr, rvr) in enumerate(results):
        lo, hi = bounds[r], bounds[r + 1]
        assert yr.dtype == np.float16 and gxr.dtype == np.float16
        _close(yr, y[lo:hi], f"rank {r}'s output")
        _close(k_gxr, gx[lo:hi], f"rank {r}'s input gradient")
        _close(rmr, rm, "running_mean")
        _close(rvr, rv, "running_var")
    _close(sum(res[3] for res in results), gw, "weight's gradient")
    _close(sum(res[4] for res in results), gb, "bias's gradient")


@pytest.mark.parametrize("scale", [1.0, 300.0])
@pytest.mark.parametrize("n", [2, 3])
def test_n_ranks_match_one_process_on_the_whole_float16_batch(n, scale):
    x, gy = _batch(scale)
    bounds = [0, 30, 64] if n == 2 else [0, 10, 41, 64]  # (uneven shares)
    _check_ranks(simulate(n, _rank, x, gy, bounds), x, gy, bounds)


@pytest.mark.mpi(min_size=2)
def test_n_ranks_under_mpi_match_one_process_on_the_whole_float16_batch():
    import distnn.distributed as dist

    comm = dist.init()
    x, gy = _batch(300.0)
    bounds = [64 * r // comm.size for r in range(comm.size + 1)]
    _check_ranks(comm.allgather_object(_rank(comm, x, gy, bounds)), x, gy, bounds)
