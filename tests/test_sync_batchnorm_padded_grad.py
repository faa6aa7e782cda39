"""SyncBatchNorm with padded rows: the gradient is the derivative of the forward, also for a loss that
reads the padded rows' outputs.

Padded rows (``valid_rows(mask)`` False) are left out of the batch statistics but normalized with
them, so their outputs depend on the real rows' inputs (through the statistics) and on weight/bias.
The trainer's loss gives them zero gradient; any other loss must get the true derivative too.

Ranks weigh their gradients as DataParallel does: the global loss is ``sum_r w_r L_r`` with
``w_r = n_r / N`` (real rows), so ``w_r * x_r.grad`` is the global input gradient and
``sum_r w_r * p.grad_r`` the global parameter gradient.
"""
import numpy as np
import pytest

import distnn
import distnn.nn as nn
from distnn.distributed import DataParallel, SyncBatchNorm, simulate, valid_rows
from distnn.distributed.sync_batchnorm import SyncBatchNormTrain

D = np.float64
C, L = 3, 2  # (N, C, L) inputs
W0, B0 = np.linspace(0.5, 2.0, C), np.linspace(-1.0, 1.0, C)
# per rank, which rows are real (1) or padding (0); a case for n ranks uses the first n
MASKS = {"padded": [[1, 1, 0, 1], [1, 1, 0], [1, 1, 1, 0, 0]],
         "one-rank-all-padding": [[1, 1, 1, 0], [0, 0], [1, 0, 1]]}


def _data(case, n):
    """Per rank (x, mask, u): input, real-row mask, and the loss's weights (nonzero on padded rows too)."""
    rng = np.random.default_rng(7)
    out = []
    for m in MASKS[case][:n]:
        mask = np.array(m, dtype=bool)
        x = rng.standard_normal((len(mask), C, L)) * 2 + 3
        x[~mask] += 5.0  # padded rows away from the real ones: counting them in the statistics would show
        out.append((x, mask, rng.standard_normal(x.shape)))
    return out


def _weights(case, n):
    real = np.array([m.sum() for _, m, _ in _data(case, n)], dtype=float)
    return real / real.sum()


class _Counting:
    """A communicator proxy recording which of its methods were called."""

    def __init__(self, comm):
        self.comm, self.calls = comm, []

    def __getattr__(self, name):
        attr = getattr(self.comm, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self.calls.append(name)
            return attr(*args, **kwargs)
        return call


def _rank(comm, case, step=None, h=0.0):
    """One rank's pass: SyncBatchNorm forward on its (shifted by ``h * step``) shard, loss sum(u * out)."""
    x, mask, u = _data(case, comm.size)[comm.rank]
    bn = SyncBatchNorm(C, momentum=0.3, comm=comm, dtype=D)
    bn.weight.data[...], bn.bias.data[...] = W0, B0
    if step is not None:
        x = x + h * step["x"][comm.rank]
        bn.weight.data += h * step["weight"]
        bn.bias.data += h * step["bias"]
    xt = distnn.Tensor(x, requires_grad=True)
    with valid_rows(mask):
        out = bn(xt)
    node = out.grad_fn
    assert isinstance(node, SyncBatchNormTrain)
    node.comm = counting = _Counting(node.comm)
    loss = (out * distnn.Tensor(u)).sum()
    loss.backward()
    # one round per backward: the sums' allreduce and its header (started together when the round is predicted; this
    # first one on a fresh communicator waits for its header first, .sync_batchnorm_rounds)
    assert [c for c in counting.calls if c != "wait_all"] == ["iallgather", "iallreduce"], counting.calls
    return {"loss": loss.item(), "out": out.numpy(), "gx": xt.grad.copy(), "gw": bn.weight.grad.copy(),
            "gb": bn.bias.grad.copy(), "running_mean": bn.running_mean.numpy().copy(),
            "running_var": bn.running_var.numpy().copy(),
            "num_batches_tracked": bn.num_batches_tracked.numpy().copy()}


def _check_derivative(run, case, n):
    """Directional central differences of the global loss, along the inputs, the weight and the bias."""
    w = _weights(case, n)
    base = run(None, 0.0)
    rng = np.random.default_rng(11)
    shapes = [x.shape for x, _, _ in _data(case, n)]
    for part in ("x", "weight", "bias"):
        step = {"x": [np.zeros(s) for s in shapes], "weight": np.zeros(C), "bias": np.zeros(C)}
        if part == "x":
            step["x"] = [rng.standard_normal(s) for s in shapes]
        else:
            step[part] = rng.standard_normal(C)
        h = 1e-6
        up = sum(wr * res["loss"] for wr, res in zip(w, run(step, h)))
        down = sum(wr * res["loss"] for wr, res in zip(w, run(step, -h)))
        analytic = sum(wr * (np.vdot(res["gx"], sx) + np.vdot(res["gw"], step["weight"])
                             + np.vdot(res["gb"], step["bias"]))
                       for wr, res, sx in zip(w, base, step["x"]))
        assert analytic == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-8), part


def _check_oracle(results, case, n):
    """Equal to plain BatchNorm on one process over the concatenated rows, with the same mask."""
    data, w = _data(case, n), _weights(case, n)
    x = np.concatenate([d[0] for d in data])
    mask = np.concatenate([d[1] for d in data])
    u = np.concatenate([d[2] * wr for d, wr in zip(data, w)])  # the global loss sum_r w_r L_r
    ref = nn.BatchNorm1d(C, momentum=0.3, dtype=D)
    ref.weight.data[...], ref.bias.data[...] = W0, B0
    xt = distnn.Tensor(x, requires_grad=True)
    with valid_rows(mask):
        out = ref(xt)
    (out * distnn.Tensor(u)).sum().backward()

    lo, gw, gb = 0, np.zeros(C), np.zeros(C)
    for r, (res, wr) in enumerate(zip(results, w)):
        k = len(data[r][1])
        np.testing.assert_allclose(res["out"], out.numpy()[lo:lo + k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(wr * res["gx"], xt.grad[lo:lo + k], rtol=1e-10, atol=1e-12,
                                   err_msg=f"rank {r} input gradient")
        gw += wr * res["gw"]
        gb += wr * res["gb"]
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_allclose(res[name], getattr(ref, name).numpy(), rtol=1e-13, err_msg=name)
        lo += k
    np.testing.assert_allclose(gw, ref.weight.grad, rtol=1e-10, atol=1e-12, err_msg="weight gradient")
    np.testing.assert_allclose(gb, ref.bias.grad, rtol=1e-10, atol=1e-12, err_msg="bias gradient")


CASES = [("padded", 2), ("padded", 3), ("one-rank-all-padding", 2), ("one-rank-all-padding", 3)]


@pytest.mark.parametrize("case, n", CASES)
def test_gradient_is_the_derivative_of_the_forward_when_the_loss_reads_padded_rows(case, n):
    _check_derivative(lambda step, h: simulate(n, _rank, case, step, h), case, n)


@pytest.mark.parametrize("case, n", CASES)
def test_matches_batchnorm_on_the_concatenated_rows_when_the_loss_reads_padded_rows(case, n):
    _check_oracle(simulate(n, _rank, case), case, n)


def _model(seed=0):
    distnn.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, C, dtype=D), nn.BatchNorm1d(C, momentum=0.3, dtype=D))


@pytest.mark.parametrize("case, n", CASES)
def test_data_parallel_step_with_a_loss_reading_padded_rows_matches_one_process(case, n):
    # A Linear before the norm: the input gradient flows on to parameters, and DataParallel's backward
    # seed carries each rank's weight (its real rows, as the trainer sets them).
    rng = np.random.default_rng(3)
    masks = [np.array(m, dtype=bool) for m in MASKS[case][:n]]
    xs = [rng.standard_normal((len(m), 4)) * 2 + 1 for m in masks]
    us = [rng.standard_normal((len(m), C)) for m in masks]
    w = _weights(case, n)
    n_real = sum(int(m.sum()) for m in masks)

    def fn(comm):
        model = SyncBatchNorm.convert_sync_batchnorm(_model(), comm)
        dp = DataParallel(model, comm, bucket_mb=0.001)
        mask = masks[comm.rank]
        dp.set_num_samples(int(mask.sum()), n_real)
        with valid_rows(mask):
            out = dp(distnn.Tensor(xs[comm.rank]))
        (out * distnn.Tensor(us[comm.rank])).sum().backward()
        return {k: p.grad.copy() for k, p in model.named_parameters()}

    ref = _model()
    with valid_rows(np.concatenate(masks)):
        out = ref(distnn.Tensor(np.concatenate(xs)))
    (out * distnn.Tensor(np.concatenate([u * wr for u, wr in zip(us, w)]))).sum().backward()
    for grads in simulate(n, fn):
        for k, p in ref.named_parameters():
            np.testing.assert_allclose(grads[k], p.grad, rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.mpi(min_size=2)
def test_under_mpi_derivative_and_oracle_with_a_loss_reading_padded_rows():
    import distnn.distributed as dist

    comm = dist.init()
    if comm.size > 3:
        pytest.skip("cases are written for 2 or 3 ranks")
    for case in MASKS:
        _check_derivative(lambda step, h: comm.allgather_object(_rank(comm, case, step, h)), case, comm.size)
        _check_oracle(comm.allgather_object(_rank(comm, case)), case, comm.size)
