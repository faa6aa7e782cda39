"""PyTorch's sync-batchnorm kernels on distnn (torch_toplevel_syncbn.py). torch 2.13 runs only
batch_norm_update_stats on the CPU: it is the oracle there; the CUDA-only ones are composed into a batch norm
synchronized over uneven "ranks" (chunks of one batch), as torch's SyncBatchNorm composes them, and checked
against torch's F.batch_norm on the whole batch: output, running statistics updated in place, gradients
(float64 tight); batch_norm_stats also against torch's native_batch_norm's saved statistics."""
import numpy as np
import pytest

import distnn
from tensor_ops_oracle import rand

torch = pytest.importorskip("torch")

CHUNKS = [3, 1, 5]  # rows per simulated rank (uneven, one of a single row)


def _sync_bn(x, w, b, rm, rv, momentum, eps, dy):
    """distnn's kernels composed as torch's SyncBatchNorm, over CHUNKS: (output, dx, dw, db)."""
    parts = np.split(x, np.cumsum(CHUNKS)[:-1])
    stats = [distnn.batch_norm_stats(distnn.tensor(p), eps) for p in parts]
    counts = np.array([p.size // p.shape[1] for p in parts])
    mean_all = distnn.stack([m for m, _ in stats])  # (the all-gather)
    invstd_all = distnn.stack([s for _, s in stats])
    mean, invstd = distnn.batch_norm_gather_stats_with_counts(distnn.tensor(x), mean_all, invstd_all, rm, rv,
                                                              momentum, eps, distnn.tensor(counts))
    out = [distnn.batch_norm_elemt(distnn.tensor(p), w, b, mean, invstd, eps) for p in parts]
    dys = np.split(dy, np.cumsum(CHUNKS)[:-1])
    red = [distnn.batch_norm_backward_reduce(distnn.tensor(g), distnn.tensor(p), mean, invstd, w, True, True, True)
           for g, p in zip(dys, parts)]
    sum_dy = sum(r[0].numpy() for r in red)  # (the all-reduce)
    sum_dy_xmu = sum(r[1].numpy() for r in red)
    dx = [distnn.batch_norm_backward_elemt(distnn.tensor(g), distnn.tensor(p), mean, invstd, w,
                                           distnn.tensor(sum_dy), distnn.tensor(sum_dy_xmu),
                                           distnn.tensor(counts.astype(np.int32))) for g, p in zip(dys, parts)]
    cat = lambda ts: np.concatenate([t.numpy() for t in ts])  # noqa: E731
    return cat(out), cat(dx), sum(r[2].numpy() for r in red), sum(r[3].numpy() for r in red)


@pytest.mark.parametrize("shape", [(9, 3), (9, 2, 4), (9, 3, 2, 2)])
def test_composed_kernels_are_a_batch_norm_over_the_whole_batch(shape):
    x, dy = rand(*shape) * 2 + 5, rand(*shape, seed=1)
    w, b = rand(shape[1], seed=2), rand(shape[1], seed=3)
    rm, rv = rand(shape[1], seed=4), np.abs(rand(shape[1], seed=5)) + 0.5
    rm_d, rv_d = distnn.tensor(rm), distnn.tensor(rv)
    out, dx, dw, db = _sync_bn(x, distnn.tensor(w), distnn.tensor(b), rm_d, rv_d, 0.2, 1e-3, dy)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    want = torch.nn.functional.batch_norm(xt, rm_t, rv_t, wt, bt, True, 0.2, 1e-3)
    want.backward(torch.tensor(dy))
    np.testing.assert_allclose(out, want.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rm_d.numpy(), rm_t.numpy(), rtol=1e-12)  # (updated in place, unbiased variance)
    np.testing.assert_allclose(rv_d.numpy(), rv_t.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm_stats_are_native_batch_norms_saved_statistics():
    x = rand(6, 3, 4)
    mean, invstd = distnn.batch_norm_stats(distnn.tensor(x), 1e-4)
    _, save_mean, save_invstd = torch.native_batch_norm(torch.tensor(x), None, None, None, None, True, 0.1, 1e-4)
    np.testing.assert_allclose(mean.numpy(), save_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(invstd.numpy(), save_invstd.numpy(), rtol=1e-12)
    # the accumulate dtype: float32 for a float16 input (torch's CUDA kernel's), the input's otherwise
    assert distnn.batch_norm_stats(distnn.tensor(x.astype(np.float16)), 1e-4)[0].dtype == np.float32
    assert distnn.batch_norm_stats(distnn.tensor(x.astype(np.float32)), 1e-4)[1].dtype == np.float32


def test_gather_stats_with_one_count_and_without_running_statistics():
    x = rand(8, 3)
    halves = [distnn.batch_norm_stats(distnn.tensor(h), 1e-5) for h in (x[:4], x[4:])]
    mean, invstd = distnn.batch_norm_gather_stats(distnn.tensor(x), distnn.stack([m for m, _ in halves]),
                                                  distnn.stack([s for _, s in halves]), None, None, 0.1, 1e-5, 4)
    np.testing.assert_allclose(mean.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(invstd.numpy(), 1 / np.sqrt(x.var(0) + 1e-5), rtol=1e-10)


@pytest.mark.parametrize("shape,dtype", [((5, 3, 4), np.float64), ((6, 2), np.float32), ((4, 3, 2, 2), np.float64)])
def test_batch_norm_update_stats_matches_torch_in_place(shape, dtype):
    x = rand(*shape).astype(dtype) * 3 + 1
    rm, rv = rand(shape[1], seed=1).astype(dtype), np.ones(shape[1], dtype)
    rm_d, rv_d, rm_t, rv_t = distnn.tensor(rm), distnn.tensor(rv), torch.tensor(rm), torch.tensor(rv)
    got = distnn.batch_norm_update_stats(distnn.tensor(x), rm_d, rv_d, 0.3)
    want = torch.batch_norm_update_stats(torch.tensor(x), rm_t, rv_t, 0.3)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for d, t in zip(got, want):
        assert d.dtype == dtype and not d.requires_grad
        np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=tol)
    np.testing.assert_allclose(rm_d.numpy(), rm_t.numpy(), rtol=tol)
    np.testing.assert_allclose(rv_d.numpy(), rv_t.numpy(), rtol=tol)
    mean_only = distnn.tensor(rm)
    distnn.batch_norm_update_stats(distnn.tensor(x), mean_only, None, 0.3)  # (either buffer may be left out)
    np.testing.assert_allclose(mean_only.numpy(), rm_t.numpy(), rtol=tol)


@pytest.mark.parametrize("call,torch_type", [
    (lambda m, x: m.batch_norm_update_stats(x[:0], None, None, 0.1), RuntimeError),
    (lambda m, x: m.batch_norm_update_stats(x[0, 0], None, None, 0.1), IndexError),
    (lambda m, x: m.batch_norm_update_stats(x.long() if hasattr(x, "long") else x.to(m.int64), None, None, 0.1),
     NotImplementedError),
])
def test_batch_norm_update_stats_refusals_as_torch(call, torch_type):
    x = rand(4, 3, 2)
    with pytest.raises(torch_type):
        call(torch, torch.tensor(x))
    with pytest.raises(torch_type):
        call(distnn, distnn.tensor(x))


def test_cuda_only_kernels_refuse_bad_arguments_clearly():
    x, c = distnn.tensor(rand(4, 3)), distnn.tensor(rand(3))
    with pytest.raises(RuntimeError, match="mean and invstd need to have the same data types"):
        distnn.batch_norm_backward_reduce(x, x, c, c.float(), None, True, False, False)
    with pytest.raises(RuntimeError, match="weight must be given"):
        distnn.batch_norm_backward_reduce(x, x, c, c, None, True, True, False)
    with pytest.raises(RuntimeError, match="count must hold integers"):
        distnn.batch_norm_backward_elemt(x, x, c, c, None, c, c, distnn.tensor(np.array([4.0])))
    with pytest.raises(RuntimeError, match="expected mean of shape \\(3,\\)"):
        distnn.batch_norm_elemt(x, None, None, distnn.tensor(rand(2)), distnn.tensor(rand(2)), 1e-5)
    with pytest.raises(RuntimeError, match="expected counts of shape \\(2,\\)"):
        distnn.batch_norm_gather_stats_with_counts(x, distnn.tensor(rand(2, 3)), distnn.tensor(rand(2, 3)), None,
                                                   None, 0.1, 1e-5, distnn.tensor(np.array([4])))
    none = distnn.batch_norm_backward_reduce(x, x, c, c, None, False, False, False)
    assert none == (None, None, None, None)
