"""The GPU (cupy) against the CPU (numpy) for PyTorch's top-level forms (distnn's torch_toplevel_*.py), written
without a GPU (a static review): host coefficients and constants beside device inputs, ATen's native_* forms and
the generic convolution, the functional RNN entry points and cells, top-level sampling from seeded host
generators, the complex views, the sync-batchnorm kernels, segment_reduce, embedding_bag's bookkeeping outputs,
distnn.cond and distnn.while_loop, nn.utils.prune's masks. gpu_oracle.py says how a case draws its inputs and
how the devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend, nn

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


def _sync_bn_kernels(x):
    """torch's sync-batchnorm kernels composed on one "rank" (host counts beside device statistics); they are
    detached, so + x carries a gradient."""
    m, s = dn.batch_norm_stats(x, 1e-5)
    m, s = dn.batch_norm_gather_stats_with_counts(x, m[None], s[None], None, None, 0.1, 1e-5,
                                                  dn.tensor(np.array([8])))
    sum_dy, sum_dy_xmu, _, _ = dn.batch_norm_backward_reduce(x * x, x, m, s, None, True, False, False)
    return (dn.batch_norm_elemt(x, None, None, m, s, 1e-5) + x
            + dn.batch_norm_backward_elemt(x * x, x, m, s, None, sum_dy, sum_dy_xmu,
                                           dn.tensor(np.array([8], np.int32)))
            + dn.batch_norm_update_stats(x, None, None, 0.1)[1][:, None])


def _segment_reduces(x):
    lengths, offsets = dn.tensor(np.array([2, 0, 4, 1])), dn.tensor(np.array([0, 2, 2, 6, 7]))
    return (dn.segment_reduce(x, "prod", lengths=lengths, initial=1.5)
            + dn.segment_reduce(x, "max", lengths=lengths, initial=-5.0)
            + dn.segment_reduce(x, "mean", offsets=offsets, initial=0.0) + dn.segment_reduce(x, "sum", lengths=lengths)
            + dn.segment_reduce(x.mT, "min", lengths=dn.tensor(np.array([[3, 4], [7, 0], [1, 6]])), axis=1,
                                initial=2.0).mT.sum(0))


def _embedding_bag_outputs(w):
    idx, off = dn.tensor(np.array([1, 2, 4, 5, 4, 3, 2, 0, 2])), dn.tensor(np.array([0, 2, 2, 5]))
    out, offset2bag, bag_size, max_indices = dn.embedding_bag(w, idx, off, False, 2, False, None, False, 4)
    mean = dn.embedding_bag(w, idx, off, False, 1)[0]
    return out + mean + max_indices.to(w.dtype) + bag_size.to(w.dtype)[:, None] + offset2bag.to(w.dtype).sum()


def _prune_masks(w):
    """nn.utils.prune's masks computed on the device's arrays (L1's argsort, the container's boolean slice of the
    unpruned channels, Ln's norms), multiplied in the graph: the gradient is masked."""
    prune = nn.utils.prune
    l1, ln = prune.L1Unstructured(amount=0.3), prune.LnStructured(amount=1, n=2, dim=1)
    l1._tensor_name = ln._tensor_name = "w"
    mask = l1.compute_mask(w, w.detach() * 0 + 1)
    container = prune.PruningContainer(l1)
    container.add_pruning_method(ln)
    return w * container.compute_mask(w * mask, mask)


CASES = {
    # host coefficients and constants beside device inputs
    "toplevel_batch_norm": lambda R: ([R.standard_normal((4, 3, 2)), R.standard_normal(3), R.standard_normal(3)],
                                      lambda x, w, b: dn.batch_norm(x, w, b, None, None, True, 0.1, 1e-5, False)),
    "toplevel_kl_div_mean": lambda R: ([R.standard_normal((3, 4)), R.random((3, 4))], lambda x, t: dn.kl_div(x, t, 1)),
    "toplevel_grid_sampler": lambda R: ([R.standard_normal((1, 2, 4, 5)), R.uniform(-1.1, 1.1, (1, 3, 2, 2))],
                                        lambda x, g: dn.grid_sampler(x, g, 2, 1, False)),
    "toplevel_mvlgamma_nuclear": lambda R: ([R.uniform(1.6, 4, (3, 4))], lambda x: (
        dn.mvlgamma(x, 3) + dn.nuclear_norm(x) + dn.frobenius_norm(x, (0,)))),
    "toplevel_trapezoid_x": lambda R: ([R.standard_normal((3, 4)), np.sort(R.standard_normal(4))],
                                       lambda y, x: dn.trapezoid(y, x) + dn.cumulative_trapezoid(y, dx=0.5).sum(-1)),
    "toplevel_feature_dropout_": lambda R: ([R.standard_normal((4, 3, 2))],  # (the masks drawn on the host, one seed)
                                            lambda x: (dn.manual_seed(2), dn.feature_dropout_(x * 1.0, 0.4, True))[1]),
    "toplevel_gradient_coordinate_grad": lambda R: ([R.standard_normal((5, 3)), np.cumsum(R.uniform(0.5, 1.5, 5))],
                                                    lambda f, c: dn.gradient(f, spacing=(c,), dim=0, edge_order=2)[0]),
    "toplevel_gradient_coordinates": lambda R: ([R.standard_normal((5, 3))],
                                                lambda f: dn.gradient(f, spacing=(dn.tensor([0., 1, 3, 4, 7]), 0.5),
                                                                      edge_order=2)[0]),
    "toplevel_igammac": lambda R: ([R.uniform(0.1, 30, (3, 4))],
                                   lambda x: dn.igammac(np.array([0.5, 3.0, 8.0, 20.0]).astype(x.dtype), x)),
    # ATen's native_* forms and the generic convolution (torch_toplevel_native.py): saved statistics built on the
    # device, a bool mask of the device's kind, the transposed convolution's dispatch
    "toplevel_native_norms": lambda R: (
        [R.standard_normal((4, 6, 5)), R.standard_normal(6), R.standard_normal(5)],
        lambda x, w, v: (lambda o, m, r: o * 2 + (m * r).repeat_interleave(2, 1).unsqueeze(-1))(
            *dn.native_group_norm(x, w, None, 4, 6, 5, 3, 1e-5))
        + dn.native_layer_norm(x, [5], v, None, 1e-5)[0]
        + dn.native_batch_norm(x, w, None, None, None, True, 0.1, 1e-5)[0]
        + dn.norm_except_dim(x, 2, 1)),
    "toplevel_native_dropout_p1": lambda R: ([R.standard_normal((3, 4))], lambda x: (
        dn.native_dropout(x, 1.0, True)[0] + x * dn.native_dropout(x, 0.5, False)[1])),
    "toplevel_convolution_transposed": lambda R: (
        [R.standard_normal((2, 4, 3, 4)), R.standard_normal((4, 3, 3, 2))],
        lambda x, w: dn.convolution(x, w, None, [2, 2], [1, 0], [1, 1], True, [1, 0], 2)),
    # torch's functional RNN entry points and cells (torch_toplevel_rnn.py): flat weights, a packed batch's
    # batch_sizes on the host beside device data
    "toplevel_lstm_bidirectional": lambda R: (
        [R.standard_normal((4, 2, 3)), R.standard_normal((2, 2, 2)), R.standard_normal((2, 2, 2)),
         *[R.standard_normal(s) * 0.5 for s in [(8, 3), (8, 2), (8,), (8,)] * 2]],
        lambda x, h, c, *w: (lambda o, hn, cn: o.sum(-1) + hn.sum() * cn.sum())(
            *dn.lstm(x, (h, c), list(w), True, 1, 0.0, False, True, False))),
    "toplevel_gru_packed_and_cells": lambda R: (
        [R.standard_normal((6, 3)), R.standard_normal((1, 3, 2)),
         *[R.standard_normal(s) * 0.5 for s in [(6, 3), (6, 2), (6,), (6,)]]],
        lambda x, h, *w: dn.gru(x, dn.tensor(np.array([3, 2, 1])), h, list(w), True, 1, 0.0, False, False)[0]
        + dn.gru_cell(x, h[0][:1].expand(6, 2), *w)
        + dn.rnn_tanh_cell(x, h[0][:1].expand(6, 2), w[0][:2], w[1][:2, :2])),
    # top-level sampling (host draws of a seeded generator: the same numbers on both devices; zero gradients),
    # angle of a real tensor, and the complex views (no complex autograd: detached parts)
    "normal_poisson_generator": lambda R: ([R.standard_normal((3, 4))],
                                           lambda x: dn.normal(x, 0.5, generator=np.random.default_rng(0))
                                           + dn.poisson(x.abs() * 4, np.random.default_rng(1)) + x * x),
    "angle_real": lambda R: ([R.standard_normal((3, 4))], lambda x: dn.angle(x) + x.sin()),
    "view_as_real_of_complex": lambda R: (
        [R.standard_normal((3, 4)), R.standard_normal((3, 4))],
        lambda a, b: dn.view_as_real(dn.polar(a.detach(), b.detach())).sum(-1) * a
        + dn.view_as_real(dn.complex(a.detach(), b.detach())[:, ::2]).sum((1, 2)).unsqueeze(1)
        + dn.real(dn.view_as_complex(dn.stack([a, b], -1).detach())) * b),
    # torch's sync-batchnorm kernels (torch_toplevel_syncbn.py), segment_reduce's reduceat over device data with
    # host bounds (torch_toplevel_segment.py), embedding_bag's bookkeeping outputs (torch_toplevel_nn.py)
    "toplevel_sync_bn_kernels": lambda R: ([R.standard_normal((4, 3, 2))], _sync_bn_kernels),
    "toplevel_segment_reduce": lambda R: ([R.standard_normal((7, 3))], _segment_reduces),
    "toplevel_embedding_bag_outputs": lambda R: ([np.round(R.standard_normal((6, 3)) * 1.5)],
                                                 _embedding_bag_outputs),
    # distnn.cond and distnn.while_loop (eager control flow: a device predicate read back to the host, carried
    # device tensors checked for shape and dtype each iteration)
    "cond_while_loop": lambda R: (
        [R.standard_normal((3, 4)), R.standard_normal(4)],
        lambda x, w: dn.cond((x.sum() > -100.0), lambda a, b: (a * b).sin(), lambda a, b: a - b, (x, w))
        + dn.while_loop(lambda i, s: i < 3, lambda i, s: (i + 1, (s * w).tanh()), (dn.tensor(0), x))[1]),
    # nn.utils.prune's mask computations on device arrays
    "prune_masks": lambda R: ([R.standard_normal((4, 5))], _prune_masks),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
