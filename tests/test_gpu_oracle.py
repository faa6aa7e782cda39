"""The GPU (cupy) against the CPU (numpy), same weights and inputs: every op of the PyTorch-oracle
table, the layers, the optimizers, and N data-parallel ranks against one process, all on the GPU.

Tolerances are relative to each reference array's largest magnitude (as in test_torch_reference):
the GPU sums in other orders (cuBLAS, tree reductions), so float32 agrees to about 1e-5 relative.
Needs cupy and a CUDA device; skips elsewhere (as in CI here).
"""
import numpy as np
import pytest

import distnn as dn
from distnn import backend, nn, optim
from distnn import functional as F
from distnn.distributed import DataParallel, simulate

from test_torch_reference import OPS, RTOL, assert_close

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip("needs cupy and a CUDA device (none here)", allow_module_level=True)
DTYPES = [np.float64, np.float32]


def _on(device, a):
    return backend.to_device(np.asarray(a), device)


def _run_fn(fn, arrays, device, dtype, seed):
    """``fn`` on ``arrays`` moved to ``device``: the output and the inputs' gradients, on the host."""
    ins = [dn.Tensor(_on(device, a.astype(dtype)), requires_grad=True) for a in arrays]
    out = fn(*ins)
    assert backend.device_of(out.data) == backend.device_of(ins[0].data), "the output left the inputs' device"
    u = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    (out * dn.Tensor(_on(device, u))).sum().backward()
    grads = [backend.to_numpy(t.grad) if t.grad is not None else np.zeros(t.shape, dtype) for t in ins]
    for t in ins:
        assert t.grad is None or backend.device_of(t.grad) == backend.device_of(t.data), "gradient on another device"
    return backend.to_numpy(out.data), grads


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(OPS))
def test_functional_op_on_the_gpu_matches_the_cpu(op, dtype):
    arrays, fn, _ = OPS[op]
    arrays = [np.asarray(a) for a in arrays]
    out_c, grads_c = _run_fn(fn, arrays, "cpu", dtype, 0)
    out_g, grads_g = _run_fn(fn, arrays, "cuda", dtype, 0)
    assert out_g.dtype == out_c.dtype
    assert_close(out_g, out_c, RTOL[dtype], "forward")
    for i, (g, c) in enumerate(zip(grads_g, grads_c)):
        assert_close(g, c, RTOL[dtype], f"gradient of input {i}")


# Ops whose code changed after the last run on a GPU (commit c209826), each GPU against CPU. Written without a
# GPU (a static review): they put what cupy might do otherwise in reach of a test, host constants beside
# device arrays, ties, exact 0 and 1 probabilities, -inf rows, bounds as tensors, in-place changes through views.
R = np.random.default_rng(7)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
_PROBS = np.array([[0.0, 0.3, 1.0], [0.9, 0.5, 0.01], [1.0, 0.2, 0.0], [0.7, 0.999, 0.4]])  # exact 0 and 1: log clamped
_HARD = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0], [0, 1, 1]])  # (p = 0 with y = 0, p = 1 with y = 1: finite gradients)
_TIES = np.round(R.standard_normal((3, 4)))  # maximum/minimum of equal values: the gradient split in halves
_COND = R.random((3, 4)) > 0.5
_LABELS_IGN = np.array([0, 3, -100, 1, 2, 3])
_CW = np.array([0.5, 2.0, 1.0, 0.25])
_INF_ROW = R.standard_normal((6, 4))
_INF_ROW[2] = [-np.inf, 0.0, -np.inf, 1.0]  # an ignored row's logits may be -inf (masked classes): left out with where


def _inplace_through_views(a):
    y = a * 1.0  # (a leaf that requires grad may not change in place)
    v = y[1:]
    w = v[:, 1:]  # a view of a view
    w *= 2.0  # reaches v and y (PyTorch's CopySlices)
    v += 1.0  # reaches y, and w again (a live view of the same memory)
    return y * y + w.sum()


# New since commit cb34e6a (logsigmoid, gaussian_nll_loss, the margin losses, in-place writes while recording):
# host constants (targets, labels, values written) beside device inputs, values far in the tails, labels that are
# neither -1 nor 1 (both hinge terms), the hinge's corner (x == margin), a variance below eps (clamped).
_R2 = np.random.default_rng(11)  # (its own stream: the entries above keep their values)
_GAUSS_Y = _R2.standard_normal((4, 3))  # a host target beside a device input (moved by _const)
_VAR_TINY = np.array([[0.0, 0.5, 1e-3], [0.2, 1e-4, 0.9], [1.0, 0.3, 0.0], [0.05, 0.6, 0.7]])
_PM1 = np.array([[1, -1, 1], [-1, -1, 1], [1, 1, -1], [-1, 1, 1]])  # int64 labels on the host
_PM1_0 = np.array([[1, -1, 0], [-1, -1, 1], [2, 1, -1], [-1, 1, 1]])  # 0 and 2: neither label, both terms
_BIG = np.array([[120.0, -95.0, 3.0], [-700.0, 40.0, 0.0], [90.0, 800.0, -2.0], [-60.0, -1.0, 100.0]])
_HINGE_X = np.array([[0.5, -0.3, 1.2], [0.5, 2.0, -1.0], [0.1, 0.5, 0.7], [-0.5, 1.5, 0.25]])  # 0.5: the corner


def _inplace_mul(a, w):
    y = a * 1.0
    y *= w  # Mul saved y's old memory for w's gradient: copied before the write (inplace.py)
    return y * y


def _inplace_div(a, b):
    y = a * 2.0
    y /= b  # Div reads its inputs (saves_tensors = "inputs"): the old y is copied first
    y += 1.0
    return y * a


def _inplace_relu_of_max_pool(a):
    y = F.max_pool2d(a * 1.0 - 0.2, 2)
    F.relu(y, inplace=True)  # max_pool2d's saved output is internal: it keeps a copy (saved_output_is_internal)
    return y * 3.0


def _setitem_tensor(a, v):
    y = a * 1.0
    y[1] = v * 2.0  # written in place; y takes a CopySlices node
    y[0, 1:3] = v[:2]
    return y * y


def _setitem_host(a):
    y = a * 1.0
    y[:, 0] = np.array([0.5, -1.0, 2.0])  # a numpy value written into a device tensor while recording
    y[2] = 0.25
    return y * a


def _inplace_with_alias(a):
    y = a * 1.0
    d = y.detach()  # an alias cut from the graph: it sees the new values (as in PyTorch)
    y *= 3.0
    y += 1.0
    return y * a + dn.Tensor(d.data * 1.0)


# New since commit 78cc1a6 (the added losses and distances, and NormP's p < 1 gradient at zero entries): host
# constants (targets, labels, weights) beside device inputs, the kinks exactly (|d| = beta, zero targets, the
# Stirling term's target <= 1, zero vectors, norms below eps, tied maxima for p = inf, hinges at 0).
_R3 = np.random.default_rng(13)
_SL1_X = np.array([[-1.0, -0.5, 0.0, 0.5], [1.0, 0.25, 2.0, -2.0], [0.75, -0.25, 0.5, 0.0]])
_SL1_Y = np.array([[-0.5, 0.0, 0.0, 0.0], [0.5, 0.25, 0.0, -1.0], [0.0, 0.0, 1.0, 0.5]])  # |d| = 0.5 and 0 exactly
_KL_P = np.array([[0.5, 0.0, 0.25, 0.25], [0.0, 0.0, 1.0, 0.0], [0.1, 0.2, 0.3, 0.4]])  # zeros: a loss of 0 there
_LOGP = np.log(_R3.dirichlet(np.ones(4), 3))
_COUNTS = np.array([[0, 1, 2, 5], [3, 0, 1, 1], [7, 2, 0, 4]])  # int64 on the host: the Stirling term's y <= 1 edge
_PM1_ROWS = np.array([1, -1, 1, -1])
_EMB_ZERO = _R3.standard_normal((4, 3))
_EMB_ZERO[1] = 0.0  # a zero vector: cos = 0, at the hinge's corner with margin 0
_Y01 = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]])
_ML_TARGETS = np.array([[3, 0, -1, 1], [1, 1, 2, -1], [-1, 0, 0, 0]])  # ends at -1; a class listed twice
_TIES_INF = np.array([[2.0, -2.0, 1.0], [0.5, 0.5, -0.5], [3.0, 0.0, 0.0]])  # tied |x| maxima for p = inf
_NORM_ZEROS = np.array([[0.0, 1.0, 2.0], [0.5, 0.0, -1.0], [0.0, 0.0, 0.0]])

# New with F.interpolate's 'bicubic' mode and antialias=True: the taps' index and weight vectors are built on the
# host and moved per axis; an antialiasing window's missing taps are masked with a host mask (xp.where).
_R4 = np.random.default_rng(17)
_IMG = _R4.standard_normal((2, 3, 11, 9))
# New with ctc_loss and embedding_bag (written without a GPU, a static review): host targets, lengths, indices and
# offsets beside device inputs; repeated labels, an infeasible sample (zero_infinity), empty bags, padding, max's ties.
_R6 = np.random.default_rng(23)
_CTC_TG = np.array([[1, 1, 2, 0], [3, 2, 3, 1], [2, 0, 0, 0]])
_CTC_TG_CAT = np.array([1, 1, 2, 3, 2, 3, 1, 2])
_EB_IDX = np.array([1, 2, 0, 4, 5, 2, 1, 1, 3])
_EB_OFF = np.array([0, 2, 2, 5])
_EB_TIES = np.round(_R6.standard_normal((7, 3)))


# New with F.scaled_dot_product_attention, F.prelu, F.bilinear and F.gumbel_softmax: host masks (bool, float, a
# causal one built with xp.tril) beside device inputs, a query whose keys are all masked (0, not NaN), grouped
# heads (xp.repeat), dropout and Gumbel noise drawn on the host (a fresh generator of one seed per call).
_R5 = np.random.default_rng(19)
_SD_BOOL = _R5.random((2, 1, 4, 6)) < 0.6
_SD_BOOL[:, :, 1] = False  # query 1 sees no key
_SD_FLOAT = _R5.standard_normal((4, 6))
_SD_FLOAT[2, :3] = -np.inf


_R8 = np.random.default_rng(31)
_REPEATS = np.array([2, 0, 3])
_SCATTER_I = np.array([[0, 1, 3], [0, 0, 3], [2, 1, 1], [3, 1, 0], [2, 2, 3], [0, 1, 1]])
_TAKE_I = np.array([[0, 2, 1, 1], [2, 0, 0, 1]])
_CUMPROD_X = _R8.standard_normal((3, 6))
_CUMPROD_X[0, 2] = _CUMPROD_X[1, 1] = _CUMPROD_X[1, 4] = 0.0  # (one zero, two zeros in a row)
_R7 = np.random.default_rng(29)
# equal rows (a pair at distance 0), tied |differences| for p = inf, coordinates that agree (p < 1)
_PDIST_X = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 2.0, 5.0], [1.0, 0.0, 4.0], [-1.0, 2.0, 1.0]])
# pointwise math (sin ... erfinv, atan2, xlogy, fmax, ...): erf/erfc/erfinv are cupyx.scipy.special's on the GPU
# (distnn's own series on the CPU); the edge rows hold zeros and ties where PyTorch's gradient conventions apply
_R10 = np.random.default_rng(31)
_PW_UNIT = _R10.uniform(-0.95, 0.95, (3, 4))
_PW_EDGE_A = np.array([[0.0, 0.0, 1.0, -2.0], [0.5, 3.0, 0.0, -1.0]])
_PW_EDGE_B = np.array([[0.0, 1.5, 1.0, -2.0], [-0.5, 0.0, 2.0, 4.0]])
# New with distnn.linalg (static review, no GPU here): cupy.linalg's batched factorizations, the Functions whose
# outputs are packed into one array and sliced, diagonal writes in the backwards, solve's broadcast batch dims
_R_LA = np.random.default_rng(26)
_LA_WELL = _R_LA.standard_normal((2, 4, 4)) + 4 * np.eye(4)
_LA_SYM = _R_LA.standard_normal((2, 4, 4))


def _eigh_projector(a):
    w, v = dn.linalg.eigh(a)
    return (v * w[..., None, :]) @ v.mT  # (independent of the eigenvectors' signs)


def _svd_product(a):
    u, s, vh = dn.linalg.svd(a, full_matrices=False)
    return (u * (s * s)[..., None, :]) @ vh


_R_IP = np.random.default_rng(41)  # (the in-place Tensor methods' own stream: the entries above keep their values)
_R_LU = np.random.default_rng(43)  # (LU and Householder: their own stream too)
_LU_WELL = _R_LU.standard_normal((2, 4, 4)) + 3 * np.eye(4)


def _lu_solve_four_ways(a, b):
    lu_data, pivots = dn.linalg.lu_factor(a)  # (pivots: an int32 device array, gathered on the device)
    return (dn.linalg.lu_solve(lu_data, pivots, b) + dn.linalg.lu_solve(lu_data, pivots, b, adjoint=True)
            + dn.linalg.lu_solve(lu_data, pivots, b.mT, left=False).mT
            + dn.linalg.lu_solve(lu_data, pivots, b.mT, left=False, adjoint=True).mT)


def _inplace_methods_chain(a, z):
    y = a * 2.0
    y.add_(z, alpha=0.5).sin_().clamp_(-0.8, 0.9)
    y[0].mul_(3.0)  # through a view (CopySlices)
    y.addcmul_(z, z, value=0.25).lerp_(z, 0.3)
    return y * a


def _inplace_index_writes(a, v):
    y = a * 1.0
    y.index_put_((np.array([0, 2, 0]),), v, accumulate=True)  # host indices, repeated: added up
    y.fill_diagonal_(0.5)
    y.scatter_add_(0, dn.Tensor(np.array([[2, 1, 0, 2]])), v[:1])
    return y * y


def _inplace_copy_and_fill(a):
    y = a * 1.0
    y[0].copy_(np.array([0.5, -1.0, 2.0, 3.0]))  # a host source into a device tensor
    y[1].uniform_(-1.0, 1.0, generator=np.random.default_rng(0))  # host draws, the same on both devices
    y.t_()
    return y * a.t()


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


def _masked_reductions(x):
    """distnn.masked's reductions over a (4, 5) input with a host mask; row 3 is masked out entirely (the
    identities of sum, prod, amax, norm; mean/var/std/median/logsumexp on rows that keep elements)."""
    from distnn import masked as M

    m = _MASKED_M
    keep = m[:3]
    return (M.sum(x, 1, mask=m) + M.prod(x, 1, mask=m) + M.norm(x, 2.0, 1, mask=m) + M.amax(x, 1, mask=m).clamp(-9)
            + M.norm(x, 3.0, (0, 1), mask=m) + M.sum(x, mask=m[0]) + M.amin(x, 0, mask=m).sum()
            + dn.cat([M.mean(x[:3], 1, mask=keep) + M.var(x[:3], 1, mask=keep) + M.std(x[:3], 1, correction=0,
                                                                                       mask=keep)
                      + M.median(x[:3], 1, mask=keep) + M.logsumexp(x[:3], 1, mask=keep), x[3, :1]]))


def _masked_normalizations(x):
    """distnn.masked's scans and normalizations along dim 1 with a host mask (rows that keep elements)."""
    from distnn import masked as M

    m = _MASKED_M[:3]
    return (M.cumsum(x, 1, mask=m) + M.cumprod(x, 1, mask=m) + M.softmax(x, 1, mask=m) + M.softmin(x, 1, mask=m)
            + M.log_softmax(x, 1, mask=m).clamp(-30) + M.normalize(x, 2.0, 1, mask=m)
            + M.logaddexp(x, x.flip(1), input_mask=m, other_mask=m[:, ::-1].copy()).clamp(-30))  # (-inf: both out)


def _masked_tensor_ops(x):
    """A MaskedTensor (host mask) through unary, binary and reduction ops and softmax, back to a plain tensor."""
    from distnn import masked as M

    mt = M.as_masked_tensor(x, dn.tensor(_MASKED_M[:3]))
    y = (mt.exp() * mt + mt.sin() / 2 - mt.abs().sqrt()) ** 2 + mt.softmax(1)
    return (y.to_tensor(0.0) + y.sum(1, keepdim=True).to_tensor(0.0) + dn.where(x > 0, mt, x).to_tensor(1.0)
            + mt.var(1, keepdim=True).to_tensor(0.0) + mt.amax().to_tensor(0.0))


_R_FX = np.random.default_rng(67)  # (nn.attention.flex_attention's own stream)
_FX_DOCS = np.array([0, 0, 1, 1, 1, 2])


def _flex_bias_documents_gqa(q, k, v, bias):
    """flex_attention with a captured device bias table indexed by q_idx - kv_idx, a document mask from a host
    table moved to the device (and_masks with causal), GQA, the logsumexp and the rows' maxima (no row fully
    masked: the diagonal stays)."""
    from distnn.nn.attention import flex_attention as FX

    device = backend.device_of(q.data)
    docs = dn.Tensor(backend.to_device(_FX_DOCS, device))
    mask = FX.and_masks(lambda b, h, qi, ki: qi >= ki, lambda b, h, qi, ki: docs[qi] == docs[ki])
    bm = FX.create_block_mask(mask, 2, 4, 6, 6, device=device, BLOCK_SIZE=4)
    out, aux = FX.flex_attention(q, k, v, lambda s, b, h, qi, ki: s + bias[qi - ki + 5], bm, enable_gqa=True,
                                 return_aux=FX.AuxRequest(lse=True, max_scores=True))
    return out + aux.lse[..., None] * 0.5 + aux.max_scores[..., None] * 0.25


def _flex_softcap_empty_rows(q, k, v):
    """flex_attention with a tanh softcap and rows whose keys are all masked (output 0, no NaN)."""
    from distnn.nn.attention import flex_attention as FX

    bm = FX.create_block_mask(lambda b, h, qi, ki: (qi >= ki) & (qi % 3 != 1), None, None, 6, 5,
                              device=backend.device_of(q.data), BLOCK_SIZE=(4, 3))
    return FX.flex_attention(q, k, v, lambda s, b, h, qi, ki: dn.tanh(s / 2.0) * 2.0, bm, scale=0.8)


_R_TR = np.random.default_rng(47)  # (the rest of the Tensor API's own stream)
_R_SPARSE = np.random.default_rng(61)  # (distnn.sparse's values: their own stream)
_SP_IDX = np.array([[0, 1, 1, 0, 2], [2, 0, 2, 2, 1]])  # (0, 2) twice: coalesce sums it


def _sparse(values, size=(3, 4)):
    return dn.sparse_coo_tensor(_SP_IDX, values, size)


_R_MK = np.random.default_rng(59)  # (distnn.masked's own stream)
_MASKED_M = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 1, 1], [1, 1, 0, 0, 1], [0, 0, 0, 0, 0]], bool)
_R_SB = np.random.default_rng(53)  # (sync-batchnorm kernels, segment_reduce, embedding_bag's outputs: their own stream)
_R_FG = np.random.default_rng(43)  # (the 5-D / bicubic grid_sample, conv_tbc and mha functional's own stream)
_FG_VOL = _R_FG.standard_normal((2, 3, 4, 5, 3))
_FG_KPM = _R_FG.random((3, 4)) < 0.3
_FG_KPM[:, 0] = False  # (every query sees a key: no NaN from need_weights' softmax)
_FG_KPM = np.where(_FG_KPM, -np.inf, 0.0)  # (float, as the attn_mask: mixed types warn)


def _mha_functional(q, k, w, wo, bk, bv, m):
    """F.multi_head_attention_forward with weights, bias_k/v, a zero key, a float mask and padding."""
    out, weights = F.multi_head_attention_forward(q, k, k, 6, 2, w, None, bk, bv, True, 0.0, wo, None,
                                                  key_padding_mask=_FG_KPM.astype(m.dtype), attn_mask=m, average_attn_weights=False)
    return out + weights.sum(axis=(1, 3)).T[:, :, None]


_R_DIST = np.random.default_rng(43)  # (lgamma/digamma and the distributions' own stream)
_R_SP = np.random.default_rng(47)  # (distnn.special's own stream: the entries after them keep their values)
_R_SP2 = np.random.default_rng(59)  # (the normal CDF family's own stream, drawn only by its entries)
_DIST_VALUE = _R_DIST.uniform(0.1, 0.9, (3, 4))
_IGAMMA_SHAPE = _R_DIST.uniform(0.3, 8.0, (3, 4))  # (igamma is differentiable in its second argument only)


def _distributions_log_densities(a, b):
    """Beta's log-density (lgamma, digamma and xlogy through the Dirichlet), Gamma's entropy and a Normal KL on
    the inputs' device: the distributions compute with the parameters' array module (no validation: the value is
    a host array, moved there)."""
    import distnn.distributions as D

    beta = D.Beta(a, b, validate_args=False)
    gamma = D.Gamma(a, b, validate_args=False)
    kl = D.kl_divergence(D.Normal(a, b, validate_args=False), D.Normal(b, a, validate_args=False))
    return beta.log_prob(_DIST_VALUE) + gamma.entropy() + kl

_R_TL = np.random.default_rng(53)  # (the top-level joins' and creation functions' own stream)
_VANDER_X = np.array([0.0, 1.5, -2.0, 0.0, 0.5])  # (zeros: the cumulative product's gradient there)


def _inplace_top_level_forms(a):
    y = a * 1.0
    dn.exp_(dn.clamp_(y, -1.0, 1.0))  # (torch.exp_(t): t.exp_(), recorded on the device)
    z = y + 1.0
    dn.sqrt_(z)
    return dn.rsub(y, z, alpha=0.5) + dn.fill(a, a[0, 0])


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


_R_FFT = np.random.default_rng(31)  # (distnn.fft's entries: their own stream)
NEW_OPS = {
    "binary_cross_entropy": ([_PROBS, R.random((4, 3))],
                             lambda p, y: F.binary_cross_entropy(p, y, weight=np.array([0.5, 2.0, 1.0]))),
    "binary_cross_entropy_edges": ([_PROBS], lambda p: F.binary_cross_entropy(p, _HARD.astype(np.float64),
                                                                                reduction="sum")),
    "clamp_tensor_bounds": ([R.standard_normal((3, 4)), R.standard_normal((1, 4)) - 0.5,
                             R.standard_normal((3, 1)) + 0.5], F.clip),
    "clamp_min_tensor": ([R.standard_normal((3, 4)), R.standard_normal((4,))], lambda a, lo: a.clamp(min=lo)),
    "clamp_numpy_scalar": ([R.standard_normal((3, 4))], lambda a: F.clip(a, np.float64(-0.5), None)),
    "maximum_ties": ([_TIES, np.round(R.standard_normal((3, 4)))], F.maximum),
    "minimum_ties": ([_TIES, np.round(R.standard_normal((1, 4)))], F.minimum),
    "maximum_int_tensor": ([R.standard_normal((3, 4)) * 3], lambda a: F.maximum(a, (a * 0.5).astype(np.int64))),
    "where_numpy_scalar": ([R.standard_normal((3, 4))],
                           lambda a: F.where(_COND, a, np.float64(0.25))),
    "remainder": ([R.standard_normal((3, 4)) * 3, R.uniform(0.5, 2.0, (3, 4))], lambda a, b: a % b),
    "remainder_scalar": ([R.standard_normal((3, 4)) * 3], lambda a: a % 0.7),
    "sum_empty_dim": ([R.standard_normal((2, 3, 4))], lambda a: F.sum(a, dim=[])),
    "norm_empty_dim": ([R.standard_normal((2, 3))], lambda a: a.norm(dim=())),
    "max_0d": ([R.standard_normal(())], lambda a: F.max(a, dim=0).values * 2.0),
    "expand_minus_one": ([R.standard_normal((3, 1))], lambda a: a.expand(2, -1, 4)),
    "cat_int_tensor": ([R.standard_normal((2, 3))], lambda a: F.cat([a, (a * 2).astype(np.int64)])),
    "cross_entropy_ignored_inf_row": ([_INF_ROW], lambda x: F.cross_entropy(x, _LABELS_IGN, weight=_CW)),
    "cross_entropy_ignored_inf_row_smooth": ([_INF_ROW], lambda x: F.cross_entropy(
        x, _LABELS_IGN, label_smoothing=0.2, reduction="sum")),
    "cross_entropy_ignored_none": ([_INF_ROW], lambda x: F.cross_entropy(x, _LABELS_IGN, reduction="none")),
    "inplace_through_views": ([R.standard_normal((3, 4))], _inplace_through_views),
    # --- new since commit cb34e6a, written without a GPU (a static review); see the notes above
    "logsigmoid": ([_R2.standard_normal((3, 4)) * 40], F.logsigmoid),  # (|x| up to ~100: both tails)
    "gaussian_nll": ([_R2.standard_normal((4, 3)), _R2.standard_normal((4, 3)), _R2.uniform(0.05, 1.0, (4, 3))],
                     F.gaussian_nll_loss),
    "gaussian_nll_shared_var_full_sum": ([_R2.standard_normal((4, 3)), _R2.uniform(0.05, 1.0, (4,))],
                                         lambda x, v: F.gaussian_nll_loss(x, _GAUSS_Y, v, full=True, reduction="sum")),
    "gaussian_nll_number_var_none": ([_R2.standard_normal((4, 3))],
                                     lambda x: F.gaussian_nll_loss(x, _GAUSS_Y, 0.5, reduction="none")),
    "gaussian_nll_var_below_eps": ([_R2.standard_normal((4, 3)), _VAR_TINY],
                                   lambda x, v: F.gaussian_nll_loss(x, _GAUSS_Y, v, eps=1e-2)),
    "soft_margin": ([_R2.standard_normal((4, 3)) * 3], lambda x: F.soft_margin_loss(x, _PM1)),
    "soft_margin_large_margins_sum": ([_BIG], lambda x: F.soft_margin_loss(x, _PM1, reduction="sum")),
    "soft_margin_broadcast_target": ([_R2.standard_normal((4, 3))], lambda x: F.soft_margin_loss(x, _PM1[:, :1])),
    "hinge_embedding": ([_HINGE_X], lambda x: F.hinge_embedding_loss(x, _PM1_0, margin=0.5)),
    "hinge_embedding_none": ([_HINGE_X], lambda x: F.hinge_embedding_loss(x, _PM1_0, reduction="none")),
    "binary_hinge": ([_HINGE_X], lambda x: F.binary_hinge_loss(x, _PM1, margin=0.5)),
    "binary_hinge_list_target_sum": ([_R2.standard_normal((4,))],
                                     lambda x: F.binary_hinge_loss(x, [1, -1, -1, 1], reduction="sum")),
    "inplace_mul_saves_old_value": ([_R2.standard_normal((3, 4)), _R2.standard_normal((3, 4))], _inplace_mul),
    "inplace_div_then_add": ([_R2.standard_normal((3, 4)), _R2.uniform(0.5, 2.0, (3, 4))], _inplace_div),
    "inplace_relu_of_max_pool": ([_R2.standard_normal((2, 2, 4, 4))], _inplace_relu_of_max_pool),
    "setitem_tensor_value": ([_R2.standard_normal((3, 4)), _R2.standard_normal((4,))], _setitem_tensor),
    "setitem_host_value": ([_R2.standard_normal((3, 4))], _setitem_host),
    "inplace_seen_by_detached_alias": ([_R2.standard_normal((3, 4))], _inplace_with_alias),
    # --- new since commit 78cc1a6, written without a GPU (a static review); see the notes above _R3
    "smooth_l1_kinks": ([_SL1_X], lambda x: F.smooth_l1_loss(x, _SL1_Y, beta=0.5)),
    "smooth_l1_beta0_target_grad_sum": ([_SL1_X, _SL1_Y],
                                        lambda x, y: F.smooth_l1_loss(x, y, reduction="sum", beta=0.0)),
    "kl_div_batchmean_zero_targets": ([_LOGP], lambda x: F.kl_div(x, _KL_P, reduction="batchmean")),
    "kl_div_target_grad": ([_LOGP, _R3.uniform(0.1, 1.0, (3, 4))], lambda x, y: F.kl_div(x, y, reduction="sum")),
    "kl_div_log_target_none": ([_LOGP, _LOGP[::-1].copy()],
                               lambda x, y: F.kl_div(x, y, reduction="none", log_target=True)),
    "poisson_nll_full": ([_R3.standard_normal((3, 4))], lambda x: F.poisson_nll_loss(x, _COUNTS, full=True)),
    "poisson_nll_rates_target_grad": ([_R3.uniform(0.0, 3.0, (3, 4)), _R3.uniform(0.5, 4.0, (3, 4))],
                                      lambda x, y: F.poisson_nll_loss(x, y, log_input=False, full=True,
                                                                      reduction="sum")),
    "cosine_embedding_zero_vector": ([_EMB_ZERO, _R3.standard_normal((4, 3))],
                                     lambda a, b: F.cosine_embedding_loss(a, b, _PM1_ROWS)),
    "margin_ranking_target_grad": ([_R3.standard_normal(4), _R3.standard_normal(4), _PM1_ROWS.astype(float)],
                                   lambda a, b, t: F.margin_ranking_loss(a, b, t, 0.5, "none")),
    "triplet_swap": ([_R3.standard_normal((4, 3)) for _ in range(3)],
                     lambda a, p, n: F.triplet_margin_loss(a, p, n, swap=True, reduction="sum")),
    "triplet_p_inf_ties": ([_TIES_INF, np.zeros((3, 3)), _R3.standard_normal((3, 3))],
                           lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=2.0, p=float("inf"), eps=0.0)),
    "multilabel_soft_margin_weight": ([_R3.standard_normal((4, 3)) * 3],
                                      lambda x: F.multilabel_soft_margin_loss(x, _Y01, np.array([0.5, 2.0, 1.0]))),
    "multilabel_margin": ([_R3.standard_normal((3, 4))], lambda x: F.multilabel_margin_loss(x, _ML_TARGETS)),
    "multilabel_margin_none": ([np.round(_R3.standard_normal((3, 4)) * 2) / 2],  # (halves: hinges at 0)
                               lambda x: F.multilabel_margin_loss(x, _ML_TARGETS, reduction="none")),
    "cosine_similarity_small_norms": ([_R3.standard_normal((4, 3)) * 1e-4, _EMB_ZERO],
                                      lambda a, b: F.cosine_similarity(a, b, eps=1e-3)),
    "cosine_similarity_broadcast": ([_R3.standard_normal((2, 4, 3)), _R3.standard_normal((4, 1))],
                                    lambda a, b: F.cosine_similarity(a, b, dim=-1)),
    "pairwise_distance_p3_keepdim": ([_R3.standard_normal((4, 3)), _R3.standard_normal((3,))],
                                     lambda a, b: F.pairwise_distance(a, b, p=3.0, keepdim=True)),
    "pairwise_distance_p_half": ([_NORM_ZEROS, np.zeros((3, 3))], lambda a, b: F.pairwise_distance(a, b, 0.5, 0.0)),
    "normalize_p_half_zero_entries": ([_NORM_ZEROS], lambda x: F.normalize(x, p=0.5)),
    # --- new with bicubic and antialiased interpolate, written without a GPU (a static review); see _R4
    "interpolate_bicubic": ([_IMG], lambda x: F.interpolate(x, scale_factor=(1.6, 0.6), mode="bicubic")),
    "interpolate_antialias_bilinear": ([_IMG], lambda x: F.interpolate(x, size=(3, 9), mode="bilinear",
                                                                        antialias=True)),
    "interpolate_antialias_bicubic": ([_IMG], lambda x: F.interpolate(x, scale_factor=(0.3, 1.7), mode="bicubic",
                                                                       antialias=True, align_corners=True)),
    # --- new with the padding modules and the pixel and channel shuffles, written without a GPU (a static
    # review): the pad modes' index vectors are built on the host and moved (reflect, replicate, circular with
    # crops); the shuffles are reshapes and transposes
    "pad_reflect_crop": ([_IMG], lambda x: F.pad(x, (2, -1, 3, 1), mode="reflect")),
    "pad_replicate_3d": ([_IMG[:, :, :4]], lambda x: F.pad(x[None], (1, 2, 0, 3, 2, 1), mode="replicate")),
    "pad_circular_crop": ([_IMG], lambda x: F.pad(x, (-2, 4, 9, 0), mode="circular")),
    "pixel_shuffle": ([_R4.standard_normal((2, 12, 3, 5))], lambda x: F.pixel_shuffle(x, 2)),
    "pixel_unshuffle": ([_R4.standard_normal((2, 3, 6, 9))], lambda x: F.pixel_unshuffle(x, 3)),
    "channel_shuffle": ([_R4.standard_normal((2, 6, 4, 5))], lambda x: F.channel_shuffle(x, 3)),
    # --- new with scaled_dot_product_attention, prelu, bilinear, gumbel_softmax (static review; see _R5)
    "sdpa_float_mask_grad": ([_R5.standard_normal((2, 3, 4, 5)), _R5.standard_normal((2, 3, 6, 5)),
                              _R5.standard_normal((2, 3, 6, 7)), _SD_FLOAT],
                             lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m)),
    "sdpa_host_bool_mask_empty_row": ([_R5.standard_normal((2, 3, 4, 5)), _R5.standard_normal((2, 3, 6, 5)),
                                       _R5.standard_normal((2, 3, 6, 7))],
                                      lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=_SD_BOOL)),
    "sdpa_gqa_causal_dropout": ([_R5.standard_normal((2, 4, 5, 3)), _R5.standard_normal((2, 2, 5, 3)),
                                 _R5.standard_normal((2, 1, 5, 4))],
                                lambda q, k, v: F.scaled_dot_product_attention(
                                    q, k, v, dropout_p=0.3, is_causal=True, scale=0.5, enable_gqa=True,
                                    generator=np.random.default_rng(0))),
    "prelu_per_channel": ([_R5.standard_normal((2, 3, 4)), _R5.random(3)], F.prelu),
    "bilinear": ([_R5.standard_normal((2, 5, 3)), _R5.standard_normal((2, 5, 4)), _R5.standard_normal((6, 3, 4)),
                  _R5.standard_normal(6)], F.bilinear),
    "gumbel_softmax_hard": ([_R5.standard_normal((5, 4))],
                            lambda x: F.gumbel_softmax(x, tau=0.5, hard=True, generator=np.random.default_rng(1))),
    "gumbel_softmax_soft_dim0": ([_R5.standard_normal((5, 4))],
                                 lambda x: F.gumbel_softmax(x, dim=0, generator=np.random.default_rng(2))),
    "ctc_loss": ([_R6.standard_normal((7, 3, 4))],
                 lambda z: F.ctc_loss(F.log_softmax(z, dim=-1), _CTC_TG, [7, 6, 7], [3, 4, 1], reduction="none")),
    "ctc_loss_concat_zero_infinity": ([_R6.standard_normal((5, 3, 4))],
                                      lambda z: F.ctc_loss(F.log_softmax(z, dim=-1), _CTC_TG_CAT, [5, 5, 0], [3, 4, 1],
                                                           blank=0, zero_infinity=True)),  # (sample 2: no frames)
    "embedding_bag_max_ties": ([_EB_TIES], lambda w: F.embedding_bag(_EB_IDX, w, _EB_OFF, mode="max")),
    "embedding_bag_mean_padding": ([_R6.standard_normal((7, 3))],
                                   lambda w: F.embedding_bag(_EB_IDX, w, _EB_OFF, mode="mean", padding_idx=2)),
    "embedding_bag_per_sample_weights": ([_R6.standard_normal((7, 3)), _R6.standard_normal(9)],
                                         lambda w, p: F.embedding_bag(_EB_IDX, w, _EB_OFF, mode="sum",
                                                                      per_sample_weights=p, include_last_offset=True,
                                                                      scale_grad_by_freq=True)),
    # --- new with affine_grid and grid_sample (static review): corner indices and masks built on the device,
    # the input's gradient a cupyx scatter_add; points outside [-1, 1] for every padding mode
    "grid_sample_bilinear_zeros": ([_IMG, _R6.uniform(-1.4, 1.4, (2, 4, 5, 2))],
                                   lambda x, g: F.grid_sample(x, g, align_corners=False)),
    "grid_sample_bilinear_reflection": ([_IMG, _R6.uniform(-3.0, 3.0, (2, 4, 5, 2))],
                                        lambda x, g: F.grid_sample(x, g, padding_mode="reflection",
                                                                   align_corners=True)),
    "grid_sample_nearest_border": ([_IMG, _R6.uniform(-1.4, 1.4, (2, 4, 5, 2))],
                                   lambda x, g: F.grid_sample(x, g, mode="nearest", padding_mode="border",
                                                              align_corners=False)),
    "affine_grid_then_grid_sample": ([_IMG, _R6.standard_normal((2, 2, 3))],
                                     lambda x, t: F.grid_sample(x, F.affine_grid(t, (2, 3, 6, 7), align_corners=False),
                                                                align_corners=False)),
    # --- new with conv_transpose3d and instance norm on 5-D inputs (static review): the col2im adds one
    # strided slice per kernel offset, the backward conv3d's im2col of the gradient
    "conv_transpose3d": ([_R6.standard_normal((2, 4, 3, 2, 3)), _R6.standard_normal((4, 3, 2, 3, 2)),
                          _R6.standard_normal(6)],
                         lambda x, w, b: F.conv_transpose3d(x, w, b, stride=(2, 1, 2), padding=(1, 0, 1),
                                                            output_padding=(1, 0, 0), groups=2, dilation=(1, 2, 1))),
    "instance_norm_5d": ([_R6.standard_normal((2, 3, 2, 3, 4)) * 2 + 1, _R6.standard_normal(3), _R6.standard_normal(3)],
                         lambda x, w, b: F.instance_norm(x, weight=w, bias=b)),
    # --- new with the local response norms, pdist and the triplet loss with a distance function (static
    # review): sliding channel sums, pair indices moved to the device, the antisymmetric pair scatter
    "local_response_norm_3d": ([_R7.standard_normal((2, 5, 4))], lambda x: F.local_response_norm(x, 3, 0.5, 0.8, 1.5)),
    "local_response_norm_5d_wide": ([_R7.standard_normal((2, 3, 2, 3, 2))],
                                    lambda x: F.local_response_norm(x, 8, 2.0, 0.6, 1.0)),
    "cross_map_lrn2d": ([_R7.standard_normal((2, 6, 3, 4))], lambda x: nn.CrossMapLRN2d(4, 0.7, 0.9, 2.0)(x)),
    "pdist_equal_rows": ([_PDIST_X], F.pdist),
    "pdist_inf_ties": ([_PDIST_X], lambda x: F.pdist(x, float("inf"))),
    "pdist_p_half": ([_PDIST_X], lambda x: F.pdist(x, 0.5)),
    "triplet_with_distance_cosine_swap": ([_R7.standard_normal((4, 3)) for _ in range(3)],
                                          lambda a, p, n: F.triplet_margin_with_distance_loss(
                                              a, p, n, distance_function=lambda u, v: 1.0 - F.cosine_similarity(u, v),
                                              margin=0.5, swap=True)),
    "upsample_bilinear": ([_IMG], lambda x: F.upsample_bilinear(x, scale_factor=1.5)),
    # --- new with the pointwise math (static review): one elementwise kernel each; see _R10
    "pointwise_trig": ([_R10.standard_normal((3, 4))],
                       lambda x: x.sin() * x.cos() + dn.tan(x * 0.4) + dn.atan(x) + x.sinh() - dn.cosh(x * 0.5)),
    "pointwise_inverse_trig": ([_PW_UNIT], lambda x: dn.asin(x) + x.acos() * dn.atanh(x) + dn.asinh(x * 3)
                               + dn.acosh(x.abs() + 1.5)),
    "pointwise_logs_exps": ([_R10.uniform(0.1, 3.0, (3, 4))], lambda x: x.log1p() + dn.expm1(x) - x.log2() * dn.log10(x)
                            + dn.exp2(x) + x.rsqrt() + dn.reciprocal(x) + x.square()),
    "pointwise_erf_family": ([_PW_UNIT * 2], lambda x: dn.erf(x) + x.erfc() * 3),
    "pointwise_erfinv": ([_PW_UNIT], dn.erfinv),
    "pointwise_logit_sinc_misc": ([_PW_UNIT], lambda x: dn.logit(x.abs(), eps=0.1) + dn.sinc(x * 2) + x.frac()
                                  + dn.deg2rad(x) + x.rad2deg() + dn.nan_to_num(x) + dn.sgn(x) - x.neg()),
    "atan2_origin": ([_PW_EDGE_A, _PW_EDGE_B], dn.atan2),  # (zero gradients at (0, 0), as PyTorch's)
    "hypot": ([_R10.standard_normal((3, 4)), _R10.standard_normal((3, 1))], dn.hypot),
    "remainder_fmod_divide": ([_R10.standard_normal((3, 4)) * 4, _R10.uniform(0.5, 2.0, (4,)) * np.array([1, -1, 1, -1])],
                              lambda a, b: dn.remainder(a, b) + dn.fmod(a, b) + dn.divide(a, b, rounding_mode="trunc")
                              + dn.true_divide(a, b)),
    "logaddexp_pair": ([_R10.standard_normal((3, 4)) * 5, _R10.standard_normal((1, 4)) * 5],
                       lambda a, b: dn.logaddexp(a, b) + dn.logaddexp2(a, b)),
    "xlogy_zero_x": ([_PW_EDGE_A, _R10.uniform(0.5, 2.0, (2, 4))], dn.xlogy),
    "copysign_fmax_fmin_ties": ([_PW_EDGE_A, _PW_EDGE_B], lambda a, b: dn.copysign(a, b) + dn.fmax(a, b) * 2
                                + dn.fmin(a, b)),
    "lerp_tensor_weight": ([_R10.standard_normal((3, 4)), _R10.standard_normal((3, 4)), _R10.uniform(-0.5, 1.5, (4,))],
                           dn.lerp),
    "float_power": ([_R10.uniform(0.5, 2.0, (3, 4)), _R10.standard_normal((3, 4))],
                    lambda a, b: dn.float_power(a, b).astype(a.dtype)),
    "addcmul_addcdiv": ([_R10.standard_normal((3, 1)), _R10.standard_normal((1, 4)), _R10.uniform(0.5, 2.0, (3, 4))],
                        lambda a, b, c: dn.addcmul(a, b, c, value=0.5) + dn.addcdiv(a, b, c, value=-2)),
    # --- new with PyTorch's shape/matrix/scatter/reduction functions (static review): index grids built with
    # the input's array module, cupyx scatter_add/max/min (scatter-multiply through logs), log-step scans
    "tril_triu": ([_R8.standard_normal((2, 3, 4))], lambda x: dn.tril(x, 1) - dn.triu(x, -1) * 2),
    "diagonal_diag_embed": ([_R8.standard_normal((2, 3, 4))],
                            lambda x: dn.diag_embed(dn.diagonal(x, 1, 0, 2), -1, 0, 2)),
    "repeat_interleave_rot90": ([_R8.standard_normal((3, 4))],
                                lambda x: dn.rot90(dn.repeat_interleave(x, _REPEATS, 0), 1, (0, 1))),
    "kron_tensordot": ([_R8.standard_normal((2, 3)), _R8.standard_normal((3, 2))],
                       lambda a, b: dn.tensordot(dn.kron(a, b), dn.kron(b, a), dims=([1], [0]))),
    "baddbmm_cross": ([_R8.standard_normal((2, 3, 3)), _R8.standard_normal((2, 3, 4)), _R8.standard_normal((2, 4, 3))],
                      lambda i, a, b: dn.cross(dn.baddbmm(i, a, b, beta=0.5, alpha=2.0), i, dim=1)),
    "cdist_p1_5": ([_R8.standard_normal((2, 4, 3)), _R8.standard_normal((2, 5, 3))], lambda a, b: dn.cdist(a, b, 1.5)),
    "scatter_reduce_amax_ties": ([np.round(_R8.standard_normal((4, 3))), np.round(_R8.standard_normal((6, 3)))],
                                 lambda x, s: dn.scatter_reduce(x, 0, _SCATTER_I, s, "amax", include_self=False)),
    "scatter_reduce_prod": ([_R8.standard_normal((4, 3)), _R8.standard_normal((6, 3))],
                            lambda x, s: dn.scatter_reduce(x, 0, _SCATTER_I, s, "prod")),
    "scatter_reduce_mean_index_add": ([_R8.standard_normal((4, 3)), _R8.standard_normal((6, 3))],
                                      lambda x, s: dn.index_add(dn.scatter_reduce(x, 0, _SCATTER_I, s, "mean"), 0,
                                                                _SCATTER_I[:, 0], s)),
    "masked_scatter_take_along_dim": ([_R8.standard_normal((3, 4)), _R8.standard_normal(12)],
                                      lambda x, s: dn.take_along_dim(dn.masked_scatter(x, x > 0, s),
                                                                     _TAKE_I, 0)),
    "cumprod_zeros": ([_CUMPROD_X], lambda x: dn.cumprod(x, 1)),
    "cummax_logcumsumexp": ([np.round(_R8.standard_normal((3, 6)))],
                            lambda x: dn.cummax(x, 1).values + dn.logcumsumexp(x * 20, 1)),
    "median_kthvalue_mode": ([_R8.permutation(20).reshape(4, 5) * 0.3],
                             lambda x: dn.median(x, 1).values + dn.kthvalue(x, 2, 1).values + dn.mode(x, 1).values),
    "quantile_linear": ([_R8.standard_normal((4, 7))],
                        lambda x: dn.quantile(x, dn.Tensor(_on(backend.device_of(x.data), np.array([0.1, 0.5, 0.9],
                                                                                                    x.dtype))), dim=1)),
    # --- new with distnn.linalg (static review; see _R_LA)
    "linalg_det_slogdet": ([_LA_WELL], lambda a: dn.linalg.det(a) + dn.linalg.slogdet(a).logabsdet),
    "linalg_det_singular": ([np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])], dn.linalg.det),
    "linalg_inv": ([_LA_WELL], dn.linalg.inv),
    "linalg_solve_broadcast": ([_LA_WELL[:1], _R_LA.standard_normal((3, 1, 4, 2))], dn.linalg.solve),
    "linalg_solve_vector_right": ([_LA_WELL, _R_LA.standard_normal((2, 3, 4))],
                                  lambda a, b: dn.linalg.solve(a, b, left=False)),
    "linalg_cholesky_upper": ([_LA_WELL], lambda a: dn.linalg.cholesky(a @ a.mT, upper=True)),
    "linalg_qr_wide": ([_R_LA.standard_normal((2, 3, 5))], lambda a: dn.linalg.qr(a).Q.sum() + dn.linalg.qr(a).R),
    "linalg_eigh_projector": ([_LA_SYM], _eigh_projector),
    "linalg_eigvalsh_upper": ([_LA_SYM], lambda a: dn.linalg.eigvalsh(a, UPLO="U")),
    "linalg_svd_product": ([_R_LA.standard_normal((2, 5, 3))], _svd_product),
    "linalg_svdvals_pinv": ([_R_LA.standard_normal((2, 3, 5))], lambda a: dn.linalg.pinv(a) * dn.linalg.svdvals(a).sum()),
    "linalg_matrix_norms": ([_R_LA.standard_normal((2, 4, 3))],
                            lambda a: dn.linalg.matrix_norm(a, "nuc") + dn.linalg.matrix_norm(a, float("inf"))
                            + dn.linalg.matrix_norm(a, -2) + dn.linalg.vector_norm(a, 3, dim=(0, 2)).sum()),
    "linalg_vector_norm_inf_ties": ([np.array([[1.0, -3.0, 3.0], [0.0, 0.0, 0.0]])],
                                    lambda a: dn.linalg.vector_norm(a, float("inf"), dim=1)),
    "linalg_matrix_exp": ([_R_LA.standard_normal((2, 3, 3)) * [[[4.0]], [[0.1]]]], dn.linalg.matrix_exp),
    "linalg_matrix_power": ([_LA_WELL / 4], lambda a: dn.linalg.matrix_power(a, 3) + dn.linalg.matrix_power(a, -2)),
    "linalg_solve_triangular": ([_LA_WELL, _R_LA.standard_normal((2, 3, 4))],
                                lambda a, b: dn.linalg.solve_triangular(a, b, upper=True, left=False,
                                                                        unitriangular=True)),
    "linalg_cross_vander_diagonal": ([_R_LA.standard_normal((2, 3)), _R_LA.standard_normal((1, 3))],
                                     lambda a, b: dn.linalg.cross(a, b) * dn.linalg.vander(a, N=4).sum()
                                     + dn.linalg.diagonal(a[:, :, None] * b[:, None, :], offset=1).sum()),
    "linalg_lstsq_gelsd": ([_R_LA.standard_normal((2, 5, 3)), _R_LA.standard_normal((2, 5))],
                           lambda a, b: dn.linalg.lstsq(a, b, driver="gelsd").solution.sum(-1)
                           + dn.linalg.lstsq(a, b, driver="gelsd").residuals[..., 0]),
    "linalg_multi_dot": ([_R_LA.standard_normal(3), _R_LA.standard_normal((3, 4)), _R_LA.standard_normal((4, 2))],
                         lambda a, b, c: dn.linalg.multi_dot([a, b, c])),
    # --- new with the in-place Tensor methods (static review; see _R_IP)
    "inplace_methods_chain": ([_R_IP.standard_normal((3, 4)), _R_IP.standard_normal((3, 4))], _inplace_methods_chain),
    "inplace_index_writes": ([_R_IP.standard_normal((3, 4)), _R_IP.standard_normal((3, 4))], _inplace_index_writes),
    "inplace_copy_and_fill": ([_R_IP.standard_normal((3, 4))], _inplace_copy_and_fill),
    # --- new with 5-D and bicubic grid_sample, conv_tbc and F.multi_head_attention_forward (static review, see
    # _R_FG): eight / sixteen gathered taps per point, scatter_add for the input's gradient; per-tap matmuls
    "grid_sample_3d_trilinear_reflection": ([_FG_VOL, _R_FG.uniform(-2.5, 2.5, (2, 3, 2, 4, 3))],
                                            lambda x, g: F.grid_sample(x, g, padding_mode="reflection",
                                                                       align_corners=False)),
    "grid_sample_3d_trilinear_zeros": ([_FG_VOL, _R_FG.uniform(-1.4, 1.4, (2, 3, 2, 4, 3))],
                                       lambda x, g: F.grid_sample(x, g, align_corners=True)),
    "grid_sample_3d_nearest_border": ([_FG_VOL, _R_FG.uniform(-1.4, 1.4, (2, 3, 2, 4, 3))],
                                      lambda x, g: F.grid_sample(x, g, mode="nearest", padding_mode="border",
                                                                 align_corners=False)),
    "grid_sample_bicubic_zeros": ([_IMG, _R_FG.uniform(-1.4, 1.4, (2, 4, 5, 2))],
                                  lambda x, g: F.grid_sample(x, g, mode="bicubic", align_corners=False)),
    "grid_sample_bicubic_reflection": ([_IMG, _R_FG.uniform(-3.0, 3.0, (2, 4, 5, 2))],
                                       lambda x, g: F.grid_sample(x, g, mode="bicubic", padding_mode="reflection",
                                                                  align_corners=True)),
    "conv_tbc": ([_R_FG.standard_normal((7, 2, 3)), _R_FG.standard_normal((3, 3, 4)), _R_FG.standard_normal(4)],
                 lambda x, w, b: F.conv_tbc(x, w, b, 1)),
    "multi_head_attention_forward": ([_R_FG.standard_normal((5, 3, 6)), _R_FG.standard_normal((4, 3, 6)),
                                      _R_FG.standard_normal((18, 6)), _R_FG.standard_normal((6, 6)),
                                      _R_FG.standard_normal((1, 1, 6)), _R_FG.standard_normal((1, 1, 6)),
                                      _R_FG.standard_normal((5, 4))], _mha_functional),
    # --- new with distnn.distributions (static review: cupyx.scipy.special's gammaln/digamma/polygamma on a GPU)
    "lgamma": ([_R_DIST.uniform(-4.5, 9.0, (3, 4))], dn.lgamma),
    "digamma": ([_R_DIST.uniform(-4.5, 9.0, (3, 4))], dn.digamma),
    "igamma": ([_R_DIST.uniform(0.05, 10.0, (3, 4))], lambda x: dn.igamma(_IGAMMA_SHAPE.astype(x.dtype), x)),
    # --- new with distnn.special (static review: cupyx.scipy.special's i0/i0e/i1/i1e, polygamma and zeta on a GPU;
    # values past 8 take the other Chebyshev series, negative ones the odd/even symmetry)
    "special_i0_family": ([_R_SP.uniform(-12.0, 12.0, (3, 4))],
                          lambda x: dn.i0(x) + x.i0() * 0.5 + dn.special.i0e(x) + dn.special.i1(x)
                          + dn.special.i1e(x) * 3),
    "polygamma": ([_R_SP.uniform(0.2, 9.0, (3, 4))], lambda x: dn.polygamma(2, x) + x.polygamma(3) * 0.5),
    "special_zeta": ([_R_SP.uniform(0.2, 9.0, (3, 4))], lambda q: dn.special.zeta(3.5, q)),
    # --- new with the normal CDF family (static review: cupyx.scipy.special's erfcx/ndtri and erf/erfc on a GPU,
    # log_ndtr's two branches either side of -1, erfcx's reflection left of 0)
    "special_ndtr_family": ([_R_SP2.uniform(-6.0, 6.0, (3, 4))],
                            lambda x: dn.special.ndtr(x) + dn.special.log_ndtr(x * 2) + dn.special.erfcx(x) * 0.5),
    "special_ndtri": ([_R_SP2.uniform(0.01, 0.99, (3, 4))], dn.special.ndtri),
    "special_entr_xlog1py": ([_R_SP2.uniform(0.05, 3.0, (3, 4)), _R_SP2.uniform(-0.9, 3.0, (3, 4))],
                             lambda x, y: dn.special.entr(x) + dn.special.xlog1py(x, y)),
    "distributions_log_densities": ([_R_DIST.uniform(0.5, 3.0, (3, 4)), _R_DIST.uniform(0.5, 3.0, (3, 4))],
                                    _distributions_log_densities),
    # --- new with the rest of the Tensor API (static review, see _R_TR): windows and slice writes through
    # index_select / setitem on a copy, index_reduce through scatter_reduce, the statistics composed
    "unfold_windows": ([_R_TR.standard_normal((2, 7, 3))], lambda x: x.unfold(1, 3, 2)),
    "select_scatter": ([_R_TR.standard_normal((3, 4)), _R_TR.standard_normal(3)],
                       lambda x, s: dn.select_scatter(x, s, 1, 2)),
    "slice_scatter": ([_R_TR.standard_normal((5, 3)), _R_TR.standard_normal((2, 3))],
                      lambda x, s: dn.slice_scatter(x, s, 0, 1, 5, 2)),
    "diagonal_scatter": ([_R_TR.standard_normal((3, 4)), _R_TR.standard_normal(3)],
                         lambda x, s: dn.diagonal_scatter(x, s, 1)),
    "index_reduce_amax": ([_R_TR.standard_normal((4, 3)), _R_TR.standard_normal((4, 3))],
                          lambda x, s: x.index_reduce(0, dn.Tensor(np.array([0, 2, 0, 3])), s, "amax")),
    "index_reduce_mean": ([_R_TR.standard_normal((4, 3)), _R_TR.standard_normal((3, 2))],
                          lambda x, s: x.index_reduce(1, dn.Tensor(np.array([1, 1, 0])), s.t(), "mean")),
    "index_put_accumulate": ([_R_TR.standard_normal((3, 4)), _R_TR.standard_normal(3)],
                             lambda x, v: x.index_put((np.array([1, 1, 0]), np.array([2, 2, 3])), v, True)),
    "put": ([_R_TR.standard_normal((2, 3)), _R_TR.standard_normal(3)],
            lambda x, v: x.put(dn.Tensor(np.array([0, 5, -1])), v)),
    "sum_to_size": ([_R_TR.standard_normal((2, 3, 4))], lambda x: x.sum_to_size(3, 1)),
    "ldexp": ([_R_TR.standard_normal((3, 4)), _R_TR.standard_normal(4)], lambda x, e: dn.ldexp(x, e)),
    "frexp_mantissa": ([_R_TR.standard_normal((3, 4)) * 50], lambda x: dn.frexp(x).mantissa),
    "cov_aweights": ([_R_TR.standard_normal((3, 5)), _R_TR.uniform(0.2, 1.0, 5)],
                     lambda x, a: dn.cov(x, correction=2, aweights=a)),
    "corrcoef": ([_R_TR.standard_normal((3, 6))], dn.corrcoef),
    "dist_p3": ([_R_TR.standard_normal((3, 4)), _R_TR.standard_normal(4)], lambda x, y: dn.dist(x, y, 3.0)),
    "renorm": ([_R_TR.standard_normal((4, 3))], lambda x: dn.renorm(x, 2, 0, 1.2)),
    "addr": ([_R_TR.standard_normal((3, 4)), _R_TR.standard_normal(3), _R_TR.standard_normal(4)],
             lambda x, a, b: dn.addr(x, a, b, beta=0.5, alpha=2.0)),
    # shape ops whose strides changed: channels_last copies (as_strided for an empty one), views of
    # non-contiguous tensors with size-1 dims (as_strided to PyTorch's strides), unsqueeze by indexing
    "contiguous_channels_last": ([_R_TR.standard_normal((2, 3, 4, 5))],
                                 lambda x: x.contiguous(memory_format=dn.channels_last) * 2),
    "contiguous_channels_last_3d": ([_R_TR.standard_normal((2, 3, 2, 4, 5))],
                                    lambda x: x.contiguous(memory_format=dn.channels_last_3d).sin()),
    "contiguous_channels_last_empty": ([_R_TR.standard_normal((0, 3, 4, 5))],
                                       lambda x: x.contiguous(memory_format=dn.channels_last) * 2),
    "view_size1_of_transpose": ([_R_TR.standard_normal((2, 3, 4))],
                                lambda x: x.transpose(0, 2).unsqueeze(3).view(1, 4, 3, 2, 1) * 3),
    "reshape_size1_of_slice": ([_R_TR.standard_normal((2, 3, 4))], lambda x: x[:, :, 2:3].reshape(1, 2, 3, 1).exp()),
    "unsqueeze_each_dim": ([_R_TR.standard_normal((2, 3))],
                           lambda x: x.t().unsqueeze(0) * x.t().unsqueeze(1).unsqueeze(-1).sum(-1)),
    # top-level joins and creation functions (static review): block_diag's windows, combinations' index grid
    # moved to the device, vander's cumulative product, the in-place top-level forms on device tensors
    "stack_family": ([_R_TL.standard_normal((3, 2)), _R_TL.standard_normal(3)],
                     lambda a, b: dn.hstack([a, b[:, None]]) + dn.vstack([a.t(), b]) * 2
                     + dn.dstack([dn.column_stack([a, b]), b.expand(3, 3)]).prod(-1)
                     + dn.concatenate([a, dn.row_stack([b]).t()], axis=1) ** 2),
    "block_diag": ([_R_TL.standard_normal((2, 3)), _R_TL.standard_normal(2)],
                   lambda a, b: dn.block_diag(a, b, a[1, 1], b.reshape(2, 1))),
    "cartesian_prod_combinations": ([_R_TL.standard_normal(4), _R_TL.standard_normal(3)],
                                    lambda a, b: dn.cartesian_prod(a, b).sum(0) + dn.combinations(a, 3).sum(0)[:2]
                                    + dn.combinations(b, 2, with_replacement=True).prod(1).sum()),
    "vander": ([_VANDER_X], lambda x: dn.vander(x) + dn.vander(x, 5, increasing=True) * 0.5),
    "inplace_top_level_forms": ([_R_TL.standard_normal((3, 4))], _inplace_top_level_forms),
    # PyTorch's top-level forms (torch_toplevel_*.py): host coefficients and constants beside device inputs
    "toplevel_batch_norm": ([_R_TR.standard_normal((4, 3, 2)), _R_TR.standard_normal(3), _R_TR.standard_normal(3)],
                            lambda x, w, b: dn.batch_norm(x, w, b, None, None, True, 0.1, 1e-5, False)),
    "toplevel_kl_div_mean": ([_R_TR.standard_normal((3, 4)), _R_TR.random((3, 4))], lambda x, t: dn.kl_div(x, t, 1)),
    "toplevel_grid_sampler": ([_R_TR.standard_normal((1, 2, 4, 5)), _R_TR.uniform(-1.1, 1.1, (1, 3, 2, 2))],
                              lambda x, g: dn.grid_sampler(x, g, 2, 1, False)),
    "toplevel_svd_product": ([_R_TR.standard_normal((4, 3))],
                             lambda a: (lambda u, s, v: (u * s.unsqueeze(-2)) @ v.mT)(*dn.svd(a))),
    "toplevel_cholesky_solve": ([_R_TR.standard_normal((3, 2)),
                                 np.tril(_R_TR.standard_normal((3, 3))) + 3 * np.eye(3)],
                                lambda b, f: dn.cholesky_solve(b, f)),
    "toplevel_cholesky_inverse_upper": ([np.triu(_R_TR.standard_normal((3, 3))) + 3 * np.eye(3)],
                                        lambda f: dn.cholesky_inverse(f, True)),
    "toplevel_triangular_solve": ([_R_TR.standard_normal((3, 2)),
                                   np.triu(_R_TR.standard_normal((3, 3))) + 3 * np.eye(3)],
                                  lambda b, a: dn.triangular_solve(b, a, True, True)[0]),
    "toplevel_mvlgamma_nuclear": ([_R_TR.uniform(1.6, 4, (3, 4))],
                                  lambda x: dn.mvlgamma(x, 3) + dn.nuclear_norm(x) + dn.frobenius_norm(x, (0,))),
    "toplevel_trapezoid_x": ([_R_TR.standard_normal((3, 4)), np.sort(_R_TR.standard_normal(4))],
                             lambda y, x: dn.trapezoid(y, x) + dn.cumulative_trapezoid(y, dx=0.5).sum(-1)),
    "toplevel_feature_dropout_": ([_R_TR.standard_normal((4, 3, 2))],  # (the masks drawn on the host, one seed)
                                  lambda x: (dn.manual_seed(2), dn.feature_dropout_(x * 1.0, 0.4, True))[1]),
    "toplevel_gradient_coordinate_grad": ([_R_TR.standard_normal((5, 3)), np.cumsum(_R_TR.uniform(0.5, 1.5, 5))],
                                          lambda f, c: dn.gradient(f, spacing=(c,), dim=0, edge_order=2)[0]),
    "toplevel_gradient_coordinates": ([_R_TR.standard_normal((5, 3))],
                                      lambda f: dn.gradient(f, spacing=(dn.tensor([0., 1, 3, 4, 7]), 0.5),
                                                            edge_order=2)[0]),
    "toplevel_igammac": ([_R_TR.uniform(0.1, 30, (3, 4))],
                         lambda x: dn.igammac(np.array([0.5, 3.0, 8.0, 20.0]).astype(x.dtype), x)),
    # ATen's native_* forms and the generic convolution (torch_toplevel_native.py): saved statistics built on the
    # device, a bool mask of the device's kind, the transposed convolution's dispatch
    "toplevel_native_norms": ([_R_TR.standard_normal((4, 6, 5)), _R_TR.standard_normal(6), _R_TR.standard_normal(5)],
                              lambda x, w, v: (lambda o, m, r: o * 2 + (m * r).repeat_interleave(2, 1).unsqueeze(-1))(
                                  *dn.native_group_norm(x, w, None, 4, 6, 5, 3, 1e-5))
                              + dn.native_layer_norm(x, [5], v, None, 1e-5)[0]
                              + dn.native_batch_norm(x, w, None, None, None, True, 0.1, 1e-5)[0]
                              + dn.norm_except_dim(x, 2, 1)),
    "toplevel_native_dropout_p1": ([_R_TR.standard_normal((3, 4))],
                                   lambda x: dn.native_dropout(x, 1.0, True)[0] + x * dn.native_dropout(x, 0.5,
                                                                                                          False)[1]),
    "toplevel_convolution_transposed": ([_R_TR.standard_normal((2, 4, 3, 4)), _R_TR.standard_normal((4, 3, 3, 2))],
                                        lambda x, w: dn.convolution(x, w, None, [2, 2], [1, 0], [1, 1], True, [1, 0],
                                                                    2)),
    # torch's functional RNN entry points and cells (torch_toplevel_rnn.py): flat weights, a packed batch's
    # batch_sizes on the host beside device data
    "toplevel_lstm_bidirectional": ([_R_TR.standard_normal((4, 2, 3)), _R_TR.standard_normal((2, 2, 2)),
                                     _R_TR.standard_normal((2, 2, 2)), *[_R_TR.standard_normal(s) * 0.5 for s in
                                                                         [(8, 3), (8, 2), (8,), (8,)] * 2]],
                                    lambda x, h, c, *w: (lambda o, hn, cn: o.sum(-1) + hn.sum() * cn.sum())(
                                        *dn.lstm(x, (h, c), list(w), True, 1, 0.0, False, True, False))),
    "toplevel_gru_packed_and_cells": ([_R_TR.standard_normal((6, 3)), _R_TR.standard_normal((1, 3, 2)),
                                       *[_R_TR.standard_normal(s) * 0.5 for s in [(6, 3), (6, 2), (6,), (6,)]]],
                                      lambda x, h, *w: dn.gru(x, dn.tensor(np.array([3, 2, 1])), h, list(w), True, 1,
                                                              0.0, False, False)[0]
                                      + dn.gru_cell(x, h[0][:1].expand(6, 2), *w)
                                      + dn.rnn_tanh_cell(x, h[0][:1].expand(6, 2), w[0][:2], w[1][:2, :2])),
    # top-level sampling (host draws of a seeded generator: the same numbers on both devices; zero gradients),
    # angle of a real tensor, and the complex views (no complex autograd: detached parts)
    "normal_poisson_generator": ([_R_TR.standard_normal((3, 4))],
                                 lambda x: dn.normal(x, 0.5, generator=np.random.default_rng(0))
                                 + dn.poisson(x.abs() * 4, np.random.default_rng(1)) + x * x),
    "angle_real": ([_R_TR.standard_normal((3, 4))], lambda x: dn.angle(x) + x.sin()),
    "view_as_real_of_complex": ([_R_TR.standard_normal((3, 4)), _R_TR.standard_normal((3, 4))],
                                lambda a, b: dn.view_as_real(dn.polar(a.detach(), b.detach())).sum(-1) * a
                                + dn.view_as_real(dn.complex(a.detach(), b.detach())[:, ::2]).sum((1, 2)).unsqueeze(1)
                                + dn.real(dn.view_as_complex(dn.stack([a, b], -1).detach())) * b),
    # LU and Householder (distnn.linalg.lu, lu_solve, householder): column loops with row swaps gathered by
    # device index arrays, int32 pivots on the device, reflectors written into slices
    "linalg_lu_tall_wide": ([_R_LU.standard_normal((2, 5, 3))],
                            lambda a: dn.linalg.lu_factor(a).LU.sum(-1) + dn.linalg.lu(a.mT).U.sum(-2)
                            + dn.linalg.lu(a).U.sum(-2).sum(-1, keepdim=True)),
    "linalg_lu_unpack_square": ([_LU_WELL], lambda a: (lambda p, low, up: p @ low * 2 + up)(
        *dn.lu_unpack(*dn.linalg.lu_factor(a)))),
    "linalg_lu_solve_four_ways": ([_LU_WELL, _R_LU.standard_normal((2, 4, 3))], _lu_solve_four_ways),
    "householder_product_ormqr": ([_R_LU.standard_normal((2, 5, 3)), _R_LU.uniform(0.2, 1.8, (2, 3)),
                                   _R_LU.standard_normal((2, 5, 2))],
                                  lambda a, t, c: dn.linalg.householder_product(a, t).sum(-1, keepdim=True)
                                  + dn.ormqr(a, t, c, transpose=True) + dn.ormqr(a, t, c.mT, left=False).mT),
    # view copies and as_strided (storage geometry from cupy's allocation, backward scatter-added into the storage)
    "view_copies": ([_R_TR.standard_normal((3, 4, 5))],
                    lambda x: dn.diagonal_copy(x, 1, 0, 2) * 2 + dn.permute_copy(x, (2, 0, 1))[:4, :, 0]
                    + dn.t_copy(dn.unfold_copy(x, 2, 3, 2).sum((-1, -2)))),
    "as_strided_family": ([_R_TR.standard_normal(12), _R_TR.standard_normal((2, 2))],
                          lambda x, s: dn.as_strided(x[1:] * 1.0, (3, 3), (1, 1), 0).sum(0)[:2]
                          + dn.as_strided_scatter(x.view(3, 4) * 1.0, s, (2, 2), (4, 1), 1)[:2, :2]),
    "geqrf_then_orgqr": ([_R_LU.standard_normal((2, 5, 3))],  # (geqrf has no gradient: its outputs detached)
                         lambda a: dn.orgqr(*dn.geqrf(a.detach())) * a + dn.geqrf(a.detach()).a),
    # solve_ex (info on the device), cond (SVD and inverse paths), vecdot, tensorinv, tensorsolve
    "linalg_solve_ex_left_right": ([_LU_WELL, _R_LU.standard_normal((2, 4, 3))],
                                   lambda a, b: dn.linalg.solve_ex(a, b).result
                                   + dn.linalg.solve_ex(a, b.mT, left=False).result.mT),
    "linalg_cond_orders": ([_LU_WELL], lambda a: dn.linalg.cond(a) + dn.linalg.cond(a, "nuc") + dn.linalg.cond(a, 1)
                           + dn.linalg.cond(a, "fro") + dn.linalg.cond(a, -float("inf"))),
    "linalg_vecdot_tensorinv_tensorsolve": ([_LU_WELL[0].reshape(2, 2, 2, 2), _R_LU.standard_normal((2, 2))],
                                            lambda a, b: dn.linalg.tensorinv(a, ind=2).sum((0, 1))
                                            + dn.linalg.tensorsolve(a, b) * dn.linalg.vecdot(b, b, dim=0)[0]),
    # LDL (distnn.linalg.ldl: sytrf/sytrs written as column loops with per-matrix pivots; no gradient, as PyTorch:
    # inputs detached, + b carries one)
    "linalg_ldl_factor_solve": ([_R_LU.standard_normal((2, 5, 5)) * (1 - 0.99 * np.eye(5)),  # (2 by 2 pivots)
                                 _R_LU.standard_normal((2, 5, 3))],
                                lambda a, b: dn.linalg.ldl_solve(*dn.linalg.ldl_factor((a + a.mT).detach()), b.detach())
                                + dn.linalg.ldl_factor((a + a.mT).detach()).LD.sum(-1, keepdim=True)
                                + dn.linalg.ldl_factor((a + a.mT).detach()).pivots[..., None].to(a.dtype) + b),
    # randomized low-rank SVD (host-drawn random matrix; q = n: the singular values do not depend on it)
    "svd_pca_lowrank_values": ([_R_LU.standard_normal((2, 6, 3))],
                               lambda a: dn.svd_lowrank(a, q=3)[1] + dn.svd_lowrank(a.mT, q=3, niter=0)[1]
                               + dn.pca_lowrank(a[:, :4], q=3)[1]),
    # LOBPCG (host-side control flow on device arrays; its gradient's characteristic-polynomial solve)
    "lobpcg_values_projector": ([(lambda g: g @ g.T + 9 * np.eye(9))(_R_LU.standard_normal((9, 9)))],
                                lambda a: (lambda e, x: e.sum() * (x @ x.mT))(
                                    *dn.lobpcg(a, k=2, X=a.detach()[:, :2], largest=False))),
    # distnn.fft and stft/istft (cupy.fft under the same norms; complex intermediates, real ends): c2c, r2c and c2r
    # with n/s padding and trimming, the Hermitian ones, fftshift, and frames/overlap-add with a learned window
    "fft_c2c_r2c_c2r": ([_R_FFT.standard_normal((3, 8)), _R_FFT.standard_normal((3, 8))],
                        lambda a, b: dn.fft.irfft(dn.fft.rfft(a, n=10, norm="ortho") * dn.fft.fft(dn.complex(a, b), n=6),
                                                  n=8)),
    "fft_hermitian_nd_shift": ([_R_FFT.standard_normal((3, 8)), _R_FFT.standard_normal((3, 8))],
                               lambda a, b: dn.fft.hfftn(dn.fft.ihfft2(a, norm="forward")
                                                         + dn.fft.fftshift(dn.fft.ifft2(dn.complex(a, b)))[:, :5],
                                                         s=(3, 8))),
    "stft_istft_window": ([_R_FFT.standard_normal((3, 8)), _R_FFT.standard_normal((3, 8))],
                          lambda a, b: dn.istft(dn.stft(a, 4, hop_length=1, window=b[0, :4].abs() + 0.5,
                                                        return_complex=True),
                                                4, hop_length=1, window=b[0, :4].abs() + 0.5, length=8)),
    # torch's sync-batchnorm kernels (torch_toplevel_syncbn.py), segment_reduce's reduceat over device data with
    # host bounds (torch_toplevel_segment.py), embedding_bag's bookkeeping outputs (torch_toplevel_nn.py)
    "toplevel_sync_bn_kernels": ([_R_SB.standard_normal((4, 3, 2))], _sync_bn_kernels),
    "toplevel_segment_reduce": ([_R_SB.standard_normal((7, 3))], _segment_reduces),
    "toplevel_embedding_bag_outputs": ([np.round(_R_SB.standard_normal((6, 3)) * 1.5)], _embedding_bag_outputs),
    # linear_cross_entropy: the reference composition and the chunked path (device labels and class weights from
    # host arrays, an ignored row, chunks that do not divide the batch; 'none' recomputes in backward)
    "linear_cross_entropy_paths": ([_R_SB.standard_normal((7, 3)), _R_SB.standard_normal((5, 3)),
                                    _R_SB.standard_normal(5)],
                                   lambda x, w, b: F.linear_cross_entropy(
                                       x, w, np.array([0, 4, -100, 2, 2, 1, 3]), linear_bias=b,
                                       weight=np.array([0.5, 1.0, 2.0, 1.5, 0.7]), reduction="none",
                                       options=nn.LinearCrossEntropyOptions(batch_chunk_size=3))
                                   + F.linear_cross_entropy(x, w, np.array([0, 4, -100, 2, 2, 1, 3]),
                                                            options=nn.LinearCrossEntropyOptions(batch_chunk_size=2))
                                   + F.linear_cross_entropy(x, w, np.array([0, 4, 1, 2, 2, 1, 3]), linear_bias=b,
                                                            label_smoothing=0.1)),
    # distnn.cond and distnn.while_loop (eager control flow: a device predicate read back to the host, carried
    # device tensors checked for shape and dtype each iteration)
    "cond_while_loop": ([_R_SB.standard_normal((3, 4)), _R_SB.standard_normal(4)],
                        lambda x, w: dn.cond((x.sum() > -100.0), lambda a, b: (a * b).sin(), lambda a, b: a - b, (x, w))
                        + dn.while_loop(lambda i, s: i < 3, lambda i, s: (i + 1, (s * w).tanh()),
                                        (dn.tensor(0), x))[1]),
    # nn.utils.prune's mask computations on device arrays
    "prune_masks": ([_R_SB.standard_normal((4, 5))], _prune_masks),
    # distnn.sparse (COO), written without a GPU: host indices beside device values (moved to the values' device),
    # the scatter and gather of the values (coalesce, to_dense, sum, mm) and dense +/- sparse
    "sparse_coalesce_to_dense": ([_R_SPARSE.standard_normal(5)], lambda v: _sparse(v).coalesce().to_dense()),
    "sparse_mm_addmm": ([_R_SPARSE.standard_normal(5), _R_SPARSE.standard_normal((4, 2)),
                         _R_SPARSE.standard_normal((3, 2))],
                        lambda v, b, a: dn.sparse.addmm(a, _sparse(v), b, beta=0.5, alpha=2.0) + _sparse(v) @ b),
    "sparse_sum_hybrid_minus_dense": ([_R_SPARSE.standard_normal((5, 2)), _R_SPARSE.standard_normal((4, 2))],
                                      lambda v, x: x - dn.sparse.sum(_sparse(v, (3, 4, 2)), 0).to_dense() * 3.0),
    "to_sparse_values": ([_R_SPARSE.standard_normal((3, 4))], lambda x: (x * (x > 0)).to_sparse(1).values() * 2.0),
    # the products of distnn.sparse.products (the dense operand a non-leaf: a leaf's gradient would be sparse)
    "sparse_mul_dense_and_sparse": ([_R_SPARSE.standard_normal(5), _R_SPARSE.standard_normal((3, 4))],
                                    lambda v, x: ((_sparse(v) * (x * 1.0)) * _sparse(v).coalesce()).to_dense()
                                    + ((x * 1.0) * _sparse(v)).to_dense()),
    "dense_mm_sparse": ([_R_SPARSE.standard_normal(5), _R_SPARSE.standard_normal((2, 3))],
                        lambda v, a: a @ _sparse(v) + dn.matmul(a[0], _sparse(v))),
    "sparse_mm_sparse": ([_R_SPARSE.standard_normal(5), _R_SPARSE.standard_normal(5)],
                         lambda v, w: dn.sparse.mm(_sparse(v), dn.sparse_coo_tensor(_SP_IDX[::-1], w, (4, 3)))
                         .to_dense()),
    # distnn.masked (masked/): where-filled reductions and normalizations with host masks beside device inputs
    "masked_reductions": ([_R_MK.standard_normal((4, 5))], _masked_reductions),
    "masked_normalizations": ([_R_MK.standard_normal((3, 5))], _masked_normalizations),
    "masked_tensor_ops": ([_R_MK.standard_normal((3, 5))], _masked_tensor_ops),
    # nn.attention.flex_attention: score_mod/mask_mod on device index tensors, captured device tables, the
    # block lists built on the device, safe softmax, logsumexp and row maxima (written without a GPU)
    "flex_attention_bias_documents_gqa": ([_R_FX.standard_normal((2, 4, 6, 3)), _R_FX.standard_normal((2, 2, 6, 3)),
                                           _R_FX.standard_normal((2, 2, 6, 4)), _R_FX.standard_normal(11)],
                                          _flex_bias_documents_gqa),
    "flex_attention_softcap_empty_rows": ([_R_FX.standard_normal((2, 2, 6, 3)), _R_FX.standard_normal((2, 2, 5, 3)),
                                           _R_FX.standard_normal((2, 2, 5, 2))], _flex_softcap_empty_rows),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(NEW_OPS))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype):
    arrays, fn = NEW_OPS[op]
    out_c, grads_c = _run_fn(fn, arrays, "cpu", dtype, 0)
    out_g, grads_g = _run_fn(fn, arrays, "cuda", dtype, 0)
    assert out_g.dtype == out_c.dtype
    assert np.isfinite(out_c).all()  # (the case itself: what it checks is finite on the CPU)
    assert_close(out_g, out_c, RTOL[dtype], "forward")
    for i, (g, c) in enumerate(zip(grads_g, grads_c)):
        assert_close(g, c, RTOL[dtype], f"gradient of input {i}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_nan_through_maximum_minimum_and_clamp_as_on_the_cpu(dtype):
    """A NaN wins maximum/minimum and its gradient goes to both operands (PyTorch's rule, new since the last GPU
    run); clamp keeps a NaN input NaN, and a NaN in a Tensor bound makes its column NaN, as numpy's clip and
    PyTorch's clamp (cupy's clip kernel passes over a NaN bound: Clip takes maximum and minimum on a GPU).
    cupy's kernels are not numpy's: compared with NaN in place."""
    a = R.standard_normal((3, 4))
    a[0, 1] = a[2, 3] = np.nan
    b, lo, hi = R.standard_normal((3, 4)), R.standard_normal((1, 4)) - 0.5, R.standard_normal((3, 1)) + 0.5
    lo[0, 2] = np.nan
    fns = {"maximum": lambda x, y: F.maximum(x, y), "minimum": lambda x, y: F.minimum(x, y),
           "clamp": lambda x, y: F.clip(x, dn.Tensor(_on(backend.device_of(x.data), lo.astype(dtype))),
                                        dn.Tensor(_on(backend.device_of(x.data), hi.astype(dtype))))}
    for name, fn in fns.items():
        out_c, grads_c = _run_fn(fn, [a, b], "cpu", dtype, 0)
        out_g, grads_g = _run_fn(fn, [a, b], "cuda", dtype, 0)
        assert np.isnan(out_c[0, 1]) and np.isnan(out_c[2, 3]), name
        assert name != "clamp" or np.isnan(out_c[:, 2]).all()
        np.testing.assert_allclose(out_g, out_c, rtol=RTOL[dtype], equal_nan=True, err_msg=f"{name}: forward")
        for i, (g, c) in enumerate(zip(grads_g, grads_c)):
            np.testing.assert_allclose(g, c, rtol=RTOL[dtype], equal_nan=True, err_msg=f"{name}: gradient {i}")


# (constructor, input shape, integer inputs below this bound or None for floats)
LAYERS = {
    "Linear": (lambda: nn.Linear(7, 5), (4, 7), None),
    "Conv1d": (lambda: nn.Conv1d(4, 6, 3, padding=2, dilation=2, groups=2), (3, 4, 11), None),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 9, 8), None),
    "Conv2d-depthwise": (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), (2, 4, 6, 6), None),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
                        (2, 4, 5, 6), None),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(3, 4, 3, stride=2, dilation=2), (2, 3, 7), None),
    "MaxPool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 8), None),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), (2, 3, 8, 6), None),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5), None),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d((3, 2)), (2, 3, 7, 5), None),
    "MaxPool1d": (lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 9), None),
    "AvgPool1d": (lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 9), None),
    "AdaptiveAvgPool1d": (lambda: nn.AdaptiveAvgPool1d(4), (2, 3, 9), None),
    "AdaptiveMaxPool1d": (lambda: nn.AdaptiveMaxPool1d(4), (2, 3, 9), None),
    "MaxPool3d": (lambda: nn.MaxPool3d(3, stride=(1, 2, 2), padding=1, dilation=(1, 1, 2)), (2, 3, 5, 6, 7), None),
    "AvgPool3d": (lambda: nn.AvgPool3d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                  (2, 3, 5, 6, 7), None),
    "AdaptiveAvgPool3d": (lambda: nn.AdaptiveAvgPool3d((2, 3, 4)), (2, 3, 5, 6, 7), None),
    "AdaptiveMaxPool3d": (lambda: nn.AdaptiveMaxPool3d((2, 3, 4)), (2, 3, 5, 6, 7), None),
    # (the window starts' samples drawn on the host, as dropout's masks; the gather and scatter on the device)
    "FractionalMaxPool2d": (lambda: nn.FractionalMaxPool2d((3, 2), output_ratio=0.6), (2, 3, 9, 8), None),
    "FractionalMaxPool3d": (lambda: nn.FractionalMaxPool3d(2, output_size=(2, 3, 4), return_indices=True),
                            (2, 3, 5, 6, 7), None),
    "AdaptiveLogSoftmaxWithLoss": (lambda: _AdaptiveSoftmax(), (6, 8), None),
    "LPPool1d": (lambda: nn.LPPool1d(2, 3, stride=2, ceil_mode=True), (2, 3, 9), None),
    "LPPool2d": (lambda: nn.LPPool2d(4, (2, 3)), (2, 3, 7, 8), None),
    "LPPool3d-inf": (lambda: nn.LPPool3d(float("inf"), 2), (2, 3, 4, 5, 6), None),
    "MaxUnpool1d": (lambda: _PoolUnpool(nn.MaxPool1d(3, 2, 1, return_indices=True), nn.MaxUnpool1d(3, 2, 1)),
                    (2, 3, 9), None),
    "MaxUnpool3d": (lambda: _PoolUnpool(nn.MaxPool3d(2, return_indices=True), nn.MaxUnpool3d(2)), (2, 3, 4, 5, 6),
                    None),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(6), (8, 6), None),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), (4, 3, 5, 5), None),
    "LayerNorm": (lambda: nn.LayerNorm((4, 5)), (3, 4, 5), None),
    "GroupNorm": (lambda: nn.GroupNorm(2, 6), (3, 6, 4, 5), None),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True), (2, 3, 4, 5), None),
    "Dropout": (lambda: nn.Dropout(0.3), (16, 10), None),
    "Dropout1d": (lambda: nn.Dropout1d(0.3), (4, 6, 5), None),
    "Dropout2d": (lambda: nn.Dropout2d(0.3), (4, 6, 3, 2), None),
    "Dropout3d": (lambda: nn.Dropout3d(0.3), (3, 4, 2, 3, 2), None),
    "AlphaDropout": (lambda: nn.AlphaDropout(0.3), (16, 10), None),
    "FeatureAlphaDropout": (lambda: nn.FeatureAlphaDropout(0.3), (4, 6, 5), None),
    "RReLU": (lambda: nn.RReLU(0.1, 0.4), (4, 9), None),  # (training: a slope per element, drawn on the host)
    "GELU-tanh": (lambda: nn.GELU(approximate="tanh"), (4, 9), None),
    "GELU": (lambda: nn.GELU(), (4, 9), None),
    "ELU": (lambda: nn.ELU(0.7), (4, 9), None),
    "Softplus": (lambda: nn.Softplus(beta=2.0, threshold=5.0), (4, 9), None),
    "PReLU": (lambda: nn.PReLU(3), (4, 3, 5), None),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=-1), (4, 9), None),
    "Maxout": (lambda: nn.Maxout(3), (5, 6), None),
    "Embedding": (lambda: nn.Embedding(11, 6, padding_idx=0), (4, 7), 11),
    "RNN": (lambda: nn.RNN(5, 6, num_layers=2, batch_first=True), (3, 4, 5), None),
    "LSTM": (lambda: nn.LSTM(5, 6, batch_first=True, bidirectional=True), (3, 4, 5), None),
    "GRU": (lambda: nn.GRU(5, 6, batch_first=True), (3, 4, 5), None),
    "LSTM-proj": (lambda: nn.LSTM(5, 6, num_layers=2, proj_size=3, bidirectional=True), (4, 3, 5), None),
    "RMSNorm": (lambda: nn.RMSNorm((4, 5)), (3, 4, 5), None),
    "Conv3d": (lambda: nn.Conv3d(4, 6, (2, 3, 3), stride=(1, 2, 1), padding=1, groups=2), (2, 4, 3, 6, 5), None),
    "BatchNorm3d": (lambda: nn.BatchNorm3d(3), (4, 3, 2, 3, 3), None),
    "ConvTranspose3d": (lambda: nn.ConvTranspose3d(4, 6, (2, 3, 3), stride=(1, 2, 2), padding=1,
                                                   output_padding=(0, 1, 1), groups=2, dilation=(2, 1, 1)),
                        (2, 4, 3, 4, 5), None),
    "InstanceNorm3d": (lambda: nn.InstanceNorm3d(3, affine=True, track_running_stats=True), (2, 3, 2, 3, 4), None),
    "Upsample-bilinear": (lambda: nn.Upsample(scale_factor=1.7, mode="bilinear"), (2, 3, 5, 6), None),
    "Upsample-nearest": (lambda: nn.Upsample(size=(7, 4, 9)), (2, 3, 3, 5, 4), None),
    "Upsample-linear": (lambda: nn.Upsample(size=11, mode="linear", align_corners=True), (2, 3, 5), None),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(3, alpha=0.5, beta=0.7, k=1.5), (2, 5, 4, 3), None),
    "CrossMapLRN2d": (lambda: nn.CrossMapLRN2d(3, alpha=0.5, beta=0.7, k=1.5), (2, 5, 4, 3), None),
    "Upsample-bicubic": (lambda: nn.Upsample(size=(8, 4), mode="bicubic", align_corners=True), (2, 3, 5, 6), None),
    "Unfold": (lambda: nn.Unfold((2, 3), dilation=2, padding=1, stride=(2, 1)), (2, 3, 7, 6), None),
    "Fold": (lambda: nn.Fold((5, 6), 2, padding=1, stride=2), (2, 12, 12), None),
    "RNN-sigmoid": (lambda: nn.RNN(5, 6, num_layers=2, nonlinearity="sigmoid", dropout=0.3, bidirectional=True),
                    (4, 3, 5), None),  # (time-major: the inter-layer dropout's masks are (T, N, H))
    "RNNCell-sigmoid": (lambda: nn.RNNCell(5, 6, nonlinearity="sigmoid"), (3, 5), None),
    "LogSigmoid": (lambda: nn.LogSigmoid(), (4, 9), None),
    "MultiheadAttention": (lambda: _SelfAttention(), (3, 5, 8), None),
    "TransformerEncoder": (lambda: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, batch_first=True), num_layers=2),
        (3, 5, 8), None),
    "TransformerDecoder": (lambda: _Decoder(), (3, 5, 8), None),
    "Transformer": (lambda: _Seq2Seq(), (3, 5, 8), None),
    "LSTM-packed": (lambda: _Packed(nn.LSTM(5, 6, num_layers=2, dropout=0.3, bidirectional=True)), (4, 3, 5), None),
    "GRU-packed": (lambda: _Packed(nn.GRU(5, 6, batch_first=True)), (4, 3, 5), None),
    "BasicBlock": (lambda: nn.BasicBlock(3, 4, stride=2), (2, 3, 8, 8), None),
    "MLP+loss": (lambda: _MLPLoss(), (6, 8), None),
    "ReflectionPad2d": (lambda: nn.ReflectionPad2d((1, 2, 3, 0)), (2, 3, 5, 6), None),
    "ReplicationPad3d": (lambda: nn.ReplicationPad3d((1, 0, 2, 1, 0, 2)), (2, 3, 3, 4, 5), None),
    "CircularPad1d": (lambda: nn.CircularPad1d((3, -1)), (2, 3, 5), None),
    "ConstantPad3d": (lambda: nn.ConstantPad3d((1, -1, 0, 2, 1, 1), 0.5), (3, 3, 4, 5), None),
    "ZeroPad2d": (lambda: nn.ZeroPad2d(2), (2, 3, 4, 5), None),
    "PixelShuffle": (lambda: nn.PixelShuffle(2), (2, 8, 3, 4), None),
    "PixelUnshuffle": (lambda: nn.PixelUnshuffle(2), (2, 3, 4, 6), None),
    "ChannelShuffle": (lambda: nn.ChannelShuffle(2), (2, 6, 3, 4), None),
    "Softmax2d": (lambda: nn.Softmax2d(), (2, 5, 3, 4), None),
    # parametrizations (nn.utils.parametrizations) and the hook-based norms: their buffers move with the model
    "orthogonal-matrix_exp": (lambda: nn.utils.parametrizations.orthogonal(nn.Linear(5, 7)), (3, 5), None),
    "orthogonal-cayley": (lambda: nn.utils.parametrizations.orthogonal(nn.Linear(7, 5), orthogonal_map="cayley"),
                          (3, 7), None),
    "orthogonal-householder": (lambda: nn.utils.parametrizations.orthogonal(
        nn.Linear(7, 5), orthogonal_map="householder", use_trivialization=False), (3, 7), None),
    "weight_norm": (lambda: nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 4, 3), dim=1), (2, 3, 6, 6), None),
    "spectral_norm": (lambda: nn.utils.parametrizations.spectral_norm(nn.Linear(6, 5), n_power_iterations=3),
                      (3, 6), None),
    "spectral_norm-hooked": (lambda: nn.utils.spectral_norm(nn.Conv2d(3, 4, 3)), (2, 3, 6, 6), None),
    # pruning (nn.utils.prune): the mask buffers move with the model, the pre-hook recomputes the weight there
    "pruned-Conv2d": (lambda: nn.utils.prune.l1_unstructured(nn.utils.prune.random_structured(
        nn.Conv2d(3, 4, 3), "weight", amount=1, dim=0), "bias", amount=2), (2, 3, 6, 6), None),
}


class _SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x)[0]


_PAD = np.array([[False] * 4 + [True], [False] * 5, [False] * 2 + [True] * 3])  # (N, S) host key padding masks


class _Decoder(nn.Module):
    """A causal decoder over x, its memory x / 2 with a host key padding mask."""

    def __init__(self):
        super().__init__()
        self.dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.1, batch_first=True), 2,
                                         nn.LayerNorm(8))

    def forward(self, x):
        return self.dec(x, x * 0.5, tgt_is_causal=True, memory_key_padding_mask=_PAD)


class _Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Transformer(8, 2, 1, 2, 16, dropout=0.1, batch_first=True, norm_first=True)

    def forward(self, x):
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(4)
        return self.model(x, x[:, 1:], tgt_mask=tgt_mask, src_key_padding_mask=_PAD,
                          memory_key_padding_mask=_PAD)


class _Packed(nn.Module):
    """A recurrent layer on a packed batch of unsorted lengths (host index data beside device arrays)."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        from distnn.nn.utils import rnn as R

        lengths = [2, 3, 1, 3][: x.shape[0 if self.rnn.batch_first else 1]]
        out, _ = self.rnn(R.pack_padded_sequence(x, lengths, batch_first=self.rnn.batch_first, enforce_sorted=False))
        return R.pad_packed_sequence(out, batch_first=self.rnn.batch_first, total_length=x.shape[1 if
                                     self.rnn.batch_first else 0])[0]


class _AdaptiveSoftmax(nn.Module):
    """AdaptiveLogSoftmaxWithLoss's output, loss and log_prob in one vector (host targets in every cluster)."""

    def __init__(self):
        super().__init__()
        self.asm = nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 9, 15], div_value=2.0, head_bias=True)

    def forward(self, x):
        out, loss = self.asm(x, np.array([0, 5, 19, 12, 3, 10]))
        return dn.cat([out, loss.reshape(1), self.asm.log_prob(x).reshape(-1)])


class _PoolUnpool(nn.Module):
    """A max pool's output put back at its indices (the unpooling's scatter and gather on the device)."""

    def __init__(self, pool, unpool):
        super().__init__()
        self.pool, self.unpool = pool, unpool

    def forward(self, x):
        out, idx = self.pool(x)
        return self.unpool(out, idx, output_size=x.shape[2:])


class _MLPLoss(nn.Module):
    """A loss as the model's output: cross-entropy with host labels on GPU logits (as the trainer passes them)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return nn.CrossEntropyLoss(label_smoothing=0.1)(self.net(x), np.array([0, 2, 1, 1, 0, 2])).reshape(1)


def _run_layer(name, device, train):
    make, shape, high = LAYERS[name]
    dn.manual_seed(0)
    model = make()
    model.train(train)
    if device != "cpu":
        model.to(device)
    rng = np.random.default_rng(1)
    x = rng.integers(0, high, shape) if high else rng.standard_normal(shape).astype(np.float32)
    xt = dn.Tensor(_on(device, x), requires_grad=high is None)
    dn.manual_seed(2)  # the same dropout masks on both devices (drawn on the host)
    out = model(xt)
    out = out[0] if isinstance(out, tuple) else out  # recurrent layers: (output, hidden state)
    u = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
    (out * dn.Tensor(_on(device, u))).sum().backward()
    grads = {n: backend.to_numpy(p.grad) for n, p in model.named_parameters() if p.grad is not None}
    if high is None:
        grads["input"] = backend.to_numpy(xt.grad)
    return backend.to_numpy(out.data), grads, {k: backend.to_numpy(v) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_on_the_gpu_matches_the_cpu(name, train):
    out_c, grads_c, state_c = _run_layer(name, "cpu", train)
    out_g, grads_g, state_g = _run_layer(name, "cuda", train)
    assert_close(out_g, out_c, 1e-4, "forward")
    assert grads_g.keys() == grads_c.keys()
    for k in grads_c:
        assert_close(grads_g[k], grads_c[k], 1e-4, f"gradient of {k}")
    for k in state_c:  # running statistics updated alike
        assert_close(state_g[k], state_c[k], 1e-4, f"state {k}")


OPTIMIZERS = {
    "sgd-nesterov": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd-dampening-maximize": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.8, dampening=0.3, maximize=True),
    "sgd-plain": lambda ps: optim.SGD(ps, lr=0.1),
    "adam": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-3),
    "adam-amsgrad-maximize": lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True, maximize=True),
    "adamw-amsgrad": lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    "lars": lambda ps: optim.LARS(ps, lr=0.1, momentum=0.9, weight_decay=1e-4),
    "lamb": lambda ps: optim.LAMB(ps, lr=0.01, weight_decay=0.01),
    "adamax": lambda ps: optim.Adamax(ps, lr=0.01, weight_decay=1e-3),
    "nadam-decoupled": lambda ps: optim.NAdam(ps, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    "radam-maximize": lambda ps: optim.RAdam(ps, lr=0.01, betas=(0.9, 0.6), maximize=True),
    "adadelta": lambda ps: optim.Adadelta(ps, lr=0.5, weight_decay=1e-3),
    "rprop": lambda ps: optim.Rprop(ps, lr=0.01),  # (boolean masks and copyto(where=) on cupy)
    "asgd": lambda ps: optim.ASGD(ps, lr=0.05, t0=1),
    "adafactor": lambda ps: optim.Adafactor(ps, lr=0.05, weight_decay=0.01),  # (factored row/col state)
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps_on_the_gpu_match_the_cpu_and_its_state_moves_to_the_host(name, dtype):
    """On a GPU, SGD with momentum and Adam/AdamW run as one fused kernel per parameter (fused_gpu.py):
    the same arithmetic as the CPU's term-by-term numpy kernels."""
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal(s).astype(dtype) for s in [(5, 4), (4,), (3, 2, 2)]]
    grads = [[rng.standard_normal(w.shape).astype(dtype) for w in w0] for _ in range(4)]
    results = {}
    for device in ("cpu", "cuda"):
        params = [nn.Parameter(_on(device, w.copy())) for w in w0]
        opt = OPTIMIZERS[name](params)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = _on(device, g)
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        results[device] = ([backend.to_numpy(p.data) for p in params], opt.state_dict())
    for c, g in zip(results["cpu"][0], results["cuda"][0]):
        assert g.dtype == dtype
        assert_close(g, c, RTOL[dtype] / 10, f"{name}: parameters")
    # A GPU optimizer state loads into a CPU optimizer, and the next step is the CPU's own.
    params = [nn.Parameter(w.copy()) for w in results["cuda"][0]]
    opt = OPTIMIZERS[name](params)
    opt.load_state_dict(results["cuda"][1])
    for p, g in zip(params, grads[0]):
        p.grad = g.copy()
    opt.step()
    assert all(isinstance(p.data, np.ndarray) for p in params)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_muon_steps_on_the_gpu_match_the_cpu(dtype):
    """Muon (2-D parameters only, so not in OPTIMIZERS): its Newton-Schulz matmuls and norm on cupy arrays."""
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal(s).astype(dtype) for s in [(5, 4), (4, 6)]]
    grads = [[rng.standard_normal(w.shape).astype(dtype) for w in w0] for _ in range(3)]
    results = {}
    for device in ("cpu", "cuda"):
        params = [nn.Parameter(_on(device, w.copy())) for w in w0]
        opt = optim.Muon(params, lr=0.05)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = _on(device, g)
            opt.step()
        results[device] = [backend.to_numpy(p.data) for p in params]
    for c, g in zip(results["cpu"], results["cuda"]):
        assert g.dtype == dtype
        assert_close(g, c, RTOL[dtype], "Muon: parameters")


def _averaged_states(device, xs):
    """An EMA (buffers averaged too) and an SWA average (built on ``device``) of a model with BatchNorm whose
    weights move between updates, then update_bn on the SWA average: both state dicts, on the host."""
    dn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)).to(device)
    swa_utils = optim.swa_utils
    ema = swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.5), use_buffers=True)
    swa = swa_utils.AveragedModel(model, device=device)
    for i, x in enumerate(xs):
        with dn.no_grad():
            for p in model.parameters():
                p.data += 0.1 * (i + 1)
            model(dn.Tensor(_on(device, x)))  # (training: the running statistics move)
        ema.update_parameters(model)
        swa.update_parameters(model)
    swa_utils.update_bn([(dn.Tensor(_on(device, x)), None) for x in xs], swa)
    return ema.state_dict(), swa.state_dict()


def test_averaged_model_and_update_bn_on_the_gpu_match_the_cpu():
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((6, 4)).astype(np.float32) for _ in range(3)]
    for cpu, gpu in zip(_averaged_states("cpu", xs), _averaged_states("cuda", xs)):
        assert list(cpu) == list(gpu)
        for k in cpu:
            if cpu[k].dtype.kind == "i":
                assert np.array_equal(gpu[k], cpu[k]), k
            else:
                assert_close(gpu[k], cpu[k], RTOL[np.float32], f"averaged {k}")


@pytest.mark.parametrize("sync_bn", [False, True], ids=["no-bn", "sync-bn"])
def test_two_gpu_ranks_equal_one_gpu_process_on_the_whole_batch(sync_bn):
    """Simulated ranks on the GPU: averaged gradients (bucketed, overlapping backward) and one SGD step
    equal one process on the whole batch (with SyncBatchNorm, batch statistics over every rank too)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 3, 8)

    def build(comm=None):
        dn.manual_seed(0)
        norm = nn.BatchNorm1d(16) if sync_bn else nn.Identity()
        model = nn.Sequential(nn.Linear(6, 16), norm, nn.ReLU(), nn.Linear(16, 3))
        if comm is not None and sync_bn:
            from distnn.distributed import SyncBatchNorm

            model = SyncBatchNorm.convert_sync_batchnorm(model, comm)
        model.to("cuda")
        return model

    def step(model, xb, yb, wrap=None):
        net = wrap(model) if wrap else model
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss = dn.functional.cross_entropy(net(dn.Tensor(_on("cuda", xb))), _on("cuda", yb))
        loss.backward()
        opt.step()
        return [backend.to_numpy(p.data) for p in model.parameters()]

    def rank(comm):
        shard = slice(comm.rank * 4, comm.rank * 4 + 4)
        return step(build(comm), x[shard], y[shard], lambda m: DataParallel(m, comm, bucket_mb=0.0005))

    ranks = simulate(2, rank)
    for a, b in zip(*ranks):
        np.testing.assert_array_equal(a, b)  # replicas identical
    whole = step(build(), x, y)
    for a, b in zip(ranks[0], whole):
        assert_close(a, b, 1e-5, "two GPU ranks against one GPU process")


# ------------------------------------ new since commit cb34e6a: written without a GPU (a static review)
def test_max_norm_on_the_gpu_matches_the_cpu():
    """max_norm_ rescales in place on the device (float64 norms, xp.where): the same rows clipped, the same values,
    the parameters' dtype and device kept. The rows' norms are far from the bound (the GPU sums in another order)."""
    from distnn.optim import max_norm_

    rng = np.random.default_rng(0)
    shapes = [(6, 4), (3, 2, 3, 3), (5,)]
    w0 = []
    for shape in shapes:
        w = rng.standard_normal(shape)
        norms = np.sqrt((w.reshape(shape[0], -1) ** 2).sum(axis=1)) if len(shape) > 1 else np.abs(w)
        target = np.resize([0.4, 2.5, 0.8, 3.0, 1.7], shape[0])  # (bound 1.0: none within 0.2 of it)
        w0.append((w * (target / norms).reshape((-1,) + (1,) * (len(shape) - 1))).astype(np.float32))
    results = {}
    for device in ("cpu", "cuda"):
        params = [nn.Parameter(_on(device, w.copy())) for w in w0]
        versions = [p._vc[0] if p._vc else 0 for p in params]
        count = max_norm_(params, 1.0)
        assert all(backend.device_of(p.data) == backend.device_of(_on(device, w0[0])) for p in params)
        assert all(p.data.dtype == np.float32 for p in params)
        assert all((p._vc[0] if p._vc else 0) > v for p, v in zip(params, versions))  # (every one had a row over)
        results[device] = count, [backend.to_numpy(p.data) for p in params]
    assert results["cuda"][0] == results["cpu"][0] == 3 + 1 + 3
    for g, c in zip(results["cuda"][1], results["cpu"][1]):
        assert_close(g, c, 1e-6, "max_norm_")


@pytest.mark.parametrize("scheme", ["kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal"])
def test_init_schemes_on_a_gpu_model_are_the_cpu_draws(scheme):
    """init_model_ on a model already on the GPU: the draws are made on the host (numpy generators) and copied,
    so the seed gives bitwise the CPU's weights (and zero biases), which stay on the GPU."""
    from distnn.nn.init_schemes import init_model_

    def build(device):
        dn.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4))
        if device != "cpu":
            model.to(device)
        dn.manual_seed(5)
        init_model_(model, scheme)
        gen_model = init_model_(nn.Sequential(nn.Linear(3, 2)).to(device), scheme, np.random.default_rng(9))
        return model, gen_model

    (cpu, cpu_gen), (gpu, gpu_gen) = build("cpu"), build("cuda")
    for a, b in ((cpu, gpu), (cpu_gen, gpu_gen)):
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            assert backend.device_of(q.data) == backend.device_of(_on("cuda", np.zeros(1))), name
            np.testing.assert_array_equal(backend.to_numpy(q.data), p.data, err_msg=name)
            if name.endswith("bias"):
                assert not p.data.any(), name


def _mc_model(device):
    """A float32 MLP with dropout, batch norm (eval: running statistics) and an attention layer's weight dropout."""
    from distnn.models import build_model

    dn.manual_seed(0)
    model = build_model("mlp", sizes=[6, 16, 16, 4], dropout=0.4, norm="batch")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.data[...] = 0.3
            m.running_var.data[...] = 2.0
    if device != "cpu":
        model.to(device)
    return model.eval()


def test_mc_dropout_predictions_on_a_gpu_model_match_the_cpu():
    """predict_proba(mc_samples=N) on a model on the GPU: batches go to the model's device (they reached it as
    numpy arrays: cupy refuses a host operand), the masks are the host's counter-based ones (the same on both
    devices), and the averaged probabilities are the CPU's, for any batch size."""
    from distnn.train.inference import predict_proba
    from distnn.train.mc_dropout import MCDropout

    x = np.random.default_rng(5).standard_normal((13, 6)).astype(np.float32)
    cpu = predict_proba(_mc_model("cpu"), x, None, batch_size=13, mc_samples=6, mc_seed=3)
    gpu_model = _mc_model("cuda")
    for batch_size in (13, 4):
        gpu = predict_proba(gpu_model, x, None, batch_size=batch_size, mc_samples=6, mc_seed=3)
        assert isinstance(gpu, np.ndarray) and gpu.shape == (13, 4)
        np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-6)
    plain = predict_proba(gpu_model, x, None)  # (no MC dropout: dropout off, one pass)
    assert not np.allclose(plain, cpu, atol=1e-4)  # (the masks do change the probabilities)
    wrapped = MCDropout(gpu_model, 6, seed=3)
    with dn.no_grad():
        out = wrapped(dn.Tensor(_on("cuda", x)))
    assert backend.device_of(out.data) == backend.device_of(gpu_model[0].weight.data)
    np.testing.assert_allclose(backend.to_numpy(out.softmax(axis=-1).data), cpu, rtol=1e-5, atol=1e-6)


def _fgsm_case():
    rng = np.random.default_rng(2)
    dn.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    x = rng.uniform(0.0, 1.0, (6, 5)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    return model, x, y


def test_fgsm_on_the_gpu_matches_the_cpu():
    """fgsm on device inputs: the input gradient's sign (cupy's sign of NaN is 0, numpy's NaN: a NaN gradient must
    not leave its input unperturbed on the GPU only), clipping with numbers and with host array bounds (per-feature
    ranges, moved to the device), the result an array or a Tensor on the inputs' device, no parameter gradient."""
    from distnn.train.adversarial import fgsm

    def loss_fn(o, t):
        return F.cross_entropy(o, t, reduction="sum")

    model, x, y = _fgsm_case()
    probe = dn.Tensor(x.copy(), requires_grad=True)  # (the case itself: no input gradient near 0 on the CPU)
    loss_fn(model(probe), y).backward()
    assert np.abs(probe.grad).min() > 1e-5
    model.zero_grad()
    lo, hi = np.full(5, 0.05, np.float32), np.linspace(0.8, 1.0, 5).astype(np.float32)
    x_nan = x.copy()
    x_nan[3, 2] = np.nan  # row 3's gradient is NaN (its loss is), the other rows' are not
    outs = {}
    for device in ("cpu", "cuda"):
        if device != "cpu":
            model.to(device)
        xd = _on(device, x)
        plain = fgsm(model, loss_fn, xd, y, 0.1)
        clipped = fgsm(model, loss_fn, dn.Tensor(xd), y, 0.1, clamp=(0.0, 1.0))
        bounded = fgsm(model, loss_fn, xd, y, 0.1, clamp=(lo, hi))
        nan = fgsm(model, loss_fn, _on(device, x_nan), y, 0.1)
        assert isinstance(clipped, dn.Tensor) and not clipped.requires_grad
        for a in (plain, clipped.data, bounded, nan):
            assert backend.device_of(a) == backend.device_of(xd) and a.dtype == np.float32
        assert all(p.grad is None for p in model.parameters())
        outs[device] = [backend.to_numpy(a) for a in (plain, clipped.data, bounded, nan)]
    for name, g, c in zip(("plain", "clamp numbers", "clamp host arrays", "nan row"), outs["cuda"], outs["cpu"]):
        np.testing.assert_allclose(g, c, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=name)
    assert np.isnan(outs["cpu"][3][3]).all() and np.isfinite(np.delete(outs["cpu"][3], 3, axis=0)).all()


# Double backward (create_graph=True), new since the last GPU run (static review, no GPU here): the graph
# backwards of distnn/autograd/derivatives on cupy arrays, each case of test_double_backward and
# test_double_backward_nn GPU vs CPU.
def _second_derivatives(fn, arrays, device, dtype):
    from test_double_backward import _DistnnX

    ins = [dn.Tensor(_on(device, a.astype(dtype)), requires_grad=True) for a in arrays]
    out = fn(F, _DistnnX, dn.linalg, *ins)
    u = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    gs = dn.autograd.grad((out * dn.Tensor(_on(device, u))).sum(), ins, create_graph=True, allow_unused=True)
    z = sum((g * g).sum() for g in gs if g is not None)
    hs = dn.autograd.grad(z, ins, allow_unused=True)
    return [np.zeros(t.shape, dtype) if g is None else backend.to_numpy(g.data) for g, t in zip(list(gs) + list(hs),
                                                                                               ins + ins)]


def _double_backward_cases():
    from test_double_backward import CASES
    from test_double_backward_more import CASES as MORE_CASES  # (3-D and LP pools, fold, LRN, sinc, logit)
    from test_double_backward_nn import CASES as NN_CASES  # (convolutions, pools, norms and the other nn ops)
    from test_double_backward_grid_sample import CASES as GS_CASES  # (grid_sample's modes, paddings; affine_grid)
    from test_double_backward_selection import CASES as SEL_CASES  # (gather, sort/topk..., scatters, flip, cumsum)
    from test_double_backward_math import CASES as MATH_CASES  # (binary math, gamma functions, var/std, prod...)
    from test_double_backward_linalg import CASES as LINALG_CASES  # (det, inv, solve, cholesky, eigh...)
    from test_double_backward_distances import CASES as DIST_CASES  # (p-norms, cosine_similarity, logcumsumexp)
    from test_double_backward_layers import CASES as LAYER_CASES  # (attention, einsum, glu, prelu, losses...)
    from test_double_backward_linalg_more import CASES as LINALG_MORE  # (svd, pinv, qr, matrix_exp, cross, vander)

    return (CASES + NN_CASES + MORE_CASES + GS_CASES + SEL_CASES + MATH_CASES + LINALG_CASES + DIST_CASES
            + LAYER_CASES + LINALG_MORE)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name,fn,arrays", _double_backward_cases(), ids=[c[0] for c in _double_backward_cases()])
def test_double_backward_on_the_gpu_matches_the_cpu(name, fn, arrays, dtype):
    cpu = _second_derivatives(fn, arrays, "cpu", dtype)
    gpu = _second_derivatives(fn, arrays, "cuda", dtype)
    for i, (g, c) in enumerate(zip(gpu, cpu)):
        assert_close(g, c, RTOL[dtype], f"derivative {1 + i // len(arrays)} of input {i % len(arrays)}")


# distnn.autograd.graph.save_on_cpu: the saved arrays wait on the host, backward gets them back on the GPU
def _saved_on_cpu_grads(device, packed):
    from distnn.autograd import graph

    rng = np.random.default_rng(4)
    x = dn.Tensor(_on(device, rng.standard_normal((5, 6))), requires_grad=True)
    w = dn.Tensor(_on(device, rng.standard_normal((6, 3))), requires_grad=True)

    class Noting(graph.save_on_cpu):
        def __init__(self):
            super().__init__()
            pack = self.pack_hook
            self.pack_hook = lambda t: packed.append(pack(t)) or packed[-1]

    with Noting():
        y = ((x @ w).tanh() * (x @ w).exp()).sum()
    y.backward()
    return backend.to_numpy(x.grad), backend.to_numpy(w.grad)


def test_save_on_cpu_keeps_saved_arrays_on_the_host_and_the_gpu_grads_equal_the_cpu():
    packed = []
    gpu = _saved_on_cpu_grads("cuda", packed)
    assert packed and all(backend.device_of(t.data) == "cpu" and d.startswith("cuda") for d, t in packed)
    cpu = _saved_on_cpu_grads("cpu", [])
    for g, c in zip(gpu, cpu):
        assert_close(g, c, RTOL[np.float64], "save_on_cpu")


def test_storage_methods_on_the_gpu_match_the_cpu():
    """resize_/set_/is_set_to/share_memory_ on device arrays (a pointer into the same cupy allocation, the
    allocation's size for the storage's): shapes, offsets and kept values as on the CPU, sharing seen both ways."""
    results = {}
    for device in ("cpu", "cuda"):
        t = dn.Tensor(_on(device, np.arange(12.0)))[3:9]
        t.resize_(2, 2)
        kept = backend.to_numpy(t.data).copy()
        t.resize_(6)
        back = backend.to_numpy(t.data).copy()  # (the storage kept: the old values again)
        t.resize_(40)  # (past the storage: a grown copy that starts with the old one)
        grown = backend.to_numpy(t.data[:6]).copy()
        src = dn.Tensor(_on(device, np.arange(10.0)))
        s = dn.Tensor(_on(device, np.zeros(1))).set_(src, 2, (2, 3), (3, 1))
        s[0, 0] = -1.0
        assert backend.device_of(s.data) == device and float(backend.to_numpy(src.data)[2]) == -1.0
        assert s.is_set_to(dn.Tensor(_on(device, np.zeros(1))).set_(src, 2, (2, 3), (3, 1)))
        results[device] = (kept, back, grown, t.storage_offset(), backend.to_numpy(s.data), t.share_memory_().is_shared())
    for c, g in zip(results["cpu"], results["cuda"]):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(c))


SPARSE_OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd-momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    "sparse-adam": lambda ps: optim.SparseAdam(ps, lr=0.05),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(SPARSE_OPTIMIZERS))
def test_sparse_embedding_steps_on_the_gpu_match_the_cpu(name, dtype):
    """nn.Embedding(sparse=True)'s sparse gradients (coalesced on the device) and the optimizers' row updates
    (written without a GPU: fancy-indexed += on cupy arrays, scatter_add)."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((7, 3)).astype(dtype)
    batches = [(rng.integers(0, 7, (4, 2)), rng.standard_normal((4, 2, 3)).astype(dtype)) for _ in range(4)]
    results = {}
    for device in ("cpu", "cuda"):
        emb = nn.Embedding(7, 3, sparse=True, _weight=w0, dtype=dtype).to(device)
        opt = SPARSE_OPTIMIZERS[name](emb.parameters())
        for idx, y in batches:
            opt.zero_grad()
            ((emb(dn.Tensor(_on(device, idx))) - dn.Tensor(_on(device, y))) ** 2).sum().backward()
            assert backend.device_of(emb.weight.grad._values().data) == device
            opt.step()
        results[device] = backend.to_numpy(emb.weight.data)
    assert_close(results["cuda"], results["cpu"], RTOL[dtype] / 10, f"{name}: parameters")
