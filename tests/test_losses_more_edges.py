"""The added losses and distances at their edges, against PyTorch (the oracle) and their formulas: the kinks
exactly (|d| = beta, beta = 0, zero targets, the Stirling term's target <= 1, hinges at 0, tied distances for
swap, norms below eps, zero differences for every norm order), every reduction ('batchmean' included),
unbatched inputs, empty batches, float32, the modules' defaults, the errors for bad shapes and arguments, and
the deliberate differences from PyTorch (each stated in its test). The seeded fuzz is test_layer_fuzz_losses_more.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402

TF = torch.nn.functional
REDUCTIONS = ("mean", "sum", "none")
P_NORMS = (2.0, 1.0, math.inf, -math.inf, 0.0, 0.5, 3.0, 1.5, -1.0)


def _run_both(fd, ft, arrays, grads=(0,), dtype=np.float64):
    """``fd`` and ``ft`` on the same arrays (those at ``grads`` require a gradient), backpropagated with the
    same random upstream gradient: ((distnn output, gradients), (torch output, gradients)) as numpy."""
    d = [distnn.tensor(np.array(a, dtype=dtype if np.asarray(a).dtype.kind == "f" else None), requires_grad=i in grads)
         for i, a in enumerate(arrays)]
    t = [torch.tensor(np.array(a, dtype=dtype if np.asarray(a).dtype.kind == "f" else None), requires_grad=i in grads)
         for i, a in enumerate(arrays)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yd, yt = fd(*d), ft(*t)
    g = np.random.default_rng(5).standard_normal(tuple(yt.shape))
    (yd * distnn.tensor(g.astype(dtype))).sum().backward()
    (yt * torch.tensor(g, dtype=yt.dtype)).sum().backward()
    gd = [np.zeros(np.shape(arrays[i])) if d[i].grad is None else np.asarray(d[i].grad.data) for i in grads]
    gt = [np.zeros(np.shape(arrays[i])) if t[i].grad is None else t[i].grad.numpy() for i in grads]
    assert yd.dtype == yt.detach().numpy().dtype, (yd.dtype, yt.dtype)
    return (np.asarray(yd.data), gd), (yt.detach().numpy(), gt)


def _assert_same(d, t, rtol=1e-12):
    (od, gd), (ot, gt) = d, t
    np.testing.assert_allclose(od, ot, rtol=rtol, atol=rtol, equal_nan=True)
    for a, b in zip(gd, gt):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, equal_nan=True)


KINKS = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])


@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_smooth_l1_at_its_kinks(beta, reduction):
    """|d| = beta (the joint), d = 0, and beta = 0 (L1: gradient sign(d), 0 at 0), for input and target."""
    y = np.zeros_like(KINKS) + 0.25
    x = KINKS + 0.25
    d, t = _run_both(lambda a, b: DF.smooth_l1_loss(a, b, reduction, beta),
                     lambda a, b: TF.smooth_l1_loss(a, b, reduction=reduction, beta=beta), [x, y], (0, 1))
    _assert_same(d, t)
    module = dnn.SmoothL1Loss(reduction=reduction, beta=beta)
    _assert_same(_run_both(module, lambda a, b: TF.smooth_l1_loss(a, b, reduction=reduction, beta=beta), [x, y])[0],
                 (t[0], t[1][:1]))


def test_smooth_l1_refuses_a_negative_beta_and_a_bad_reduction():
    x = distnn.tensor(np.zeros(3))
    with pytest.raises(ValueError, match="beta"):
        DF.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        dnn.SmoothL1Loss(beta=-0.5)  # (at construction: PyTorch's at the first call)
    with pytest.raises(ValueError, match="reduction"):
        DF.smooth_l1_loss(x, x, reduction="batchmean")


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum", "none"])
def test_kl_div_reductions_and_zero_targets(log_target, reduction):
    rng = np.random.default_rng(1)
    x = np.log(rng.dirichlet(np.ones(4), 3))
    y = rng.dirichlet(np.ones(4), 3)
    if log_target:
        y = np.log(y)
    else:
        y[0, 1] = y[2, 3] = 0.0  # a loss of 0 there; the target's gradient NaN there, as PyTorch's
    d, t = _run_both(lambda a, b: DF.kl_div(a, b, reduction, log_target),
                     lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target), [x, y], (0, 1))
    _assert_same(d, t)
    total = (np.exp(y) * (y - x) if log_target else np.where(y == 0, 0, y * np.log(np.where(y == 0, 1, y)) - y * x))
    want = {"batchmean": total.sum() / 3, "mean": total.mean(), "sum": total.sum(), "none": total}[reduction]
    np.testing.assert_allclose(d[0], want, rtol=1e-12)
    if not log_target:
        assert np.isnan(d[1][1][0, 1]) and np.isnan(d[1][1][2, 3]) and np.isfinite(d[1][1][1]).all()


def test_kl_div_mean_warns_and_batchmean_of_one_sample():
    x, y = distnn.tensor(np.log([0.25, 0.75])), distnn.tensor(np.array([0.5, 0.5]))
    with pytest.warns(UserWarning, match="batchmean"):
        DF.kl_div(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for the others
        one = DF.kl_div(x, y, reduction="batchmean")  # a (C,) input: divided by C, its first dimension (PyTorch's)
        scalar = DF.kl_div(x[0], y[0], reduction="batchmean")  # 0-d: the sum itself
    np.testing.assert_allclose(one.item(), TF.kl_div(torch.tensor(x.data), torch.tensor(y.data),
                                                     reduction="batchmean").item(), rtol=1e-14)
    np.testing.assert_allclose(scalar.item(), 0.5 * (math.log(0.5) - math.log(0.25)), rtol=1e-14)
    assert dnn.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    for bad in (lambda: DF.kl_div(x, y, reduction="batch"), lambda: dnn.KLDivLoss(reduction="avg"),
                lambda: dnn.MSELoss(reduction="batchmean")):
        with pytest.raises(ValueError, match="reduction"):
            bad()


@pytest.mark.parametrize("log_input", [True, False])
def test_poisson_nll_full_stirling_term_and_target_gradient(log_input):
    """Stirling's term only where the target > 1; the target's gradient is the loss's derivative where the
    target is > 0, and NaN where it is <= 0, as PyTorch's (0 * log 0 in its masked term)."""
    x = np.array([0.5, 1.2, 0.3, 2.0, 0.0, 1.0])
    y = np.array([0.0, 1.0, 0.5, 2.0, 5.0, 1.5])
    d, t = _run_both(lambda a, b: DF.poisson_nll_loss(a, b, log_input, True, reduction="none"),
                     lambda a, b: TF.poisson_nll_loss(a, b, log_input, True, reduction="none"), [x, y], (0, 1))
    base = np.exp(x) - y * x if log_input else x - y * np.log(x + 1e-8)
    stirling = np.where(y > 1, y * np.log(np.where(y > 1, y, 1)) - y + 0.5 * np.log(2 * np.pi * np.where(y > 1, y, 1)), 0)
    np.testing.assert_allclose(d[0], base + stirling, rtol=1e-12)
    np.testing.assert_allclose(d[0], t[0], rtol=1e-12)
    np.testing.assert_allclose(d[1][0], t[1][0], rtol=1e-12, atol=1e-12)  # the input's gradient: PyTorch's
    g = np.random.default_rng(5).standard_normal(6)  # (_run_both's upstream gradient)
    big = np.where(y > 1, y, 1)
    dy = (-x if log_input else -np.log(x + 1e-8)) + np.where(y > 1, np.log(big) + 0.5 / big, 0)
    np.testing.assert_allclose(d[1][1][1:], (dy * g)[1:], rtol=1e-12, atol=1e-12)
    assert np.isnan(t[1][1][0]) and np.isnan(d[1][1][0]) and np.isfinite(d[1][1][1:]).all()  # at y = 0
    np.testing.assert_allclose(d[1][1][1:], t[1][1][1:], rtol=1e-12, atol=1e-12)


def test_cosine_similarity_clamps_each_norm_and_passes_its_gradient():
    """PyTorch >= 2.0: x1 / max(|x1|, eps) . x2 / max(|x2|, eps), the clamp outside the graph."""
    x1 = np.array([[1e-9, 2e-9, 0.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [3.0, -4.0, 0.0]])
    x2 = np.array([[1.0, 0.5, 2.0], [1e-9, 0.0, 1e-9], [1.0, 1.0, 1.0], [-3.0, 4.0, 0.0]])
    d, t = _run_both(DF.cosine_similarity, TF.cosine_similarity, [x1, x2], (0, 1))
    _assert_same(d, t, rtol=1e-10)
    n1 = np.maximum(np.linalg.norm(x1, axis=1), 1e-8)
    n2 = np.maximum(np.linalg.norm(x2, axis=1), 1e-8)
    np.testing.assert_allclose(d[0], (x1 * x2).sum(1) / (n1 * n2), rtol=1e-12)
    assert d[0][3] == -1.0
    np.testing.assert_allclose(dnn.CosineSimilarity(dim=0)(distnn.tensor(2.0), distnn.tensor(-3.0)).item(), -1.0)
    ints = distnn.tensor(np.array([[1, 2]]))
    with pytest.raises(TypeError, match="floating"):
        DF.cosine_similarity(ints, ints)
    assert DF.cosine_similarity(ints, distnn.tensor(np.array([[2.0, 4.0]], dtype=np.float32))).dtype == np.float32
    with pytest.raises(IndexError, match="range"):
        DF.cosine_similarity(distnn.tensor(np.ones(3)), distnn.tensor(np.ones(3)))  # dim 1 of a 1-d input
    with pytest.raises(ValueError, match="broadcast"):
        DF.cosine_similarity(distnn.tensor(np.ones((2, 3))), distnn.tensor(np.ones(4)))


@pytest.mark.parametrize("p", P_NORMS)
def test_pairwise_distance_of_equal_vectors_and_eps_added_to_the_difference(p):
    x = np.array([[1.0, -2.0, 3.0], [0.5, 0.5, -0.5]])
    for eps in (0.0, 1e-6):  # 0: a zero difference, every norm's gradient at 0 (PyTorch's: 0)
        d, t = _run_both(lambda a, b: DF.pairwise_distance(a, b, p, eps), lambda a, b: TF.pairwise_distance(a, b, p, eps),
                         [x, x.copy()], (0, 1))
        _assert_same(d, t)
    y = x - np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]])
    d, t = _run_both(lambda a, b: DF.pairwise_distance(a, b, p, 0.1, keepdim=True),
                     lambda a, b: TF.pairwise_distance(a, b, p, 0.1, keepdim=True), [x, y], (0, 1))
    _assert_same(d, t)
    module = dnn.PairwiseDistance(p=p, eps=0.1, keepdim=True)
    out = module(distnn.tensor(x), distnn.tensor(y))
    np.testing.assert_allclose(out.numpy(), t[0], rtol=1e-12)
    assert module.norm == p  # (PyTorch's attribute name)


def test_triplet_and_cosine_embedding_at_their_hinges():
    """The clamp at 0 passes the gradient at exactly 0 (PyTorch's clamp_min): margin + d(a, p) - d(a, n) = 0,
    and a zero vector's cos = 0 against margin 0; swap's min splits a tie evenly."""
    a, p, n = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), np.array([[6.0, 8.0]])  # d(a,p) = 5, d(a,n) = 10
    for swap in (False, True):  # swap: d(p, n) = 5 < 10
        d, t = _run_both(lambda *v: DF.triplet_margin_loss(*v, margin=5.0, eps=0.0, swap=swap),
                         lambda *v: TF.triplet_margin_loss(*v, margin=5.0, eps=0.0, swap=swap), [a, p, n], (0, 1, 2))
        _assert_same(d, t)
    mid = np.array([[1.5, 2.0]])  # the midpoint of a and p: d(a, n) = d(p, n) = 2.5, a tie for swap's min
    d, t = _run_both(lambda *v: DF.triplet_margin_loss(*v, eps=0.0, swap=True),
                     lambda *v: TF.triplet_margin_loss(*v, eps=0.0, swap=True), [a, p, mid], (0, 1, 2))
    _assert_same(d, t)
    d, t = _run_both(lambda *v: DF.triplet_margin_loss(*v, reduction="none"),
                     lambda *v: TF.triplet_margin_loss(*v, reduction="none"), [a[0], p[0], -p[0]], (0, 1, 2))
    _assert_same(d, t)  # unbatched: a 0-d loss
    x1 = np.array([[0.0, 0.0], [1.0, 2.0], [1.0, 0.0]])
    x2 = np.array([[1.0, 1.0], [2.0, 4.0], [0.0, 1.0]])
    for target in ([-1, 1, -1], [1, -1, 0]):
        d, t = _run_both(lambda u, v: DF.cosine_embedding_loss(u, v, np.array(target), reduction="sum"),
                         lambda u, v: TF.cosine_embedding_loss(u, v, torch.tensor(target), reduction="sum"),
                         [x1, x2], (0, 1))
        _assert_same(d, t)


def test_margin_ranking_target_gradient_and_hinge():
    x1, x2 = np.array([1.0, 2.0, 0.5, -1.0]), np.array([1.0, 1.0, 1.5, -1.0])
    target = np.array([1.0, -1.0, 1.0, -1.0])  # -t (x1 - x2) = 0, 1, 1, 0: at the hinge's corner for margin 0
    for margin in (0.0, 1.0, -1.0):
        d, t = _run_both(lambda a, b, y: DF.margin_ranking_loss(a, b, y, margin, "none"),
                         lambda a, b, y: TF.margin_ranking_loss(a, b, y, margin, reduction="none"),
                         [x1, x2, target], (0, 1, 2))
        _assert_same(d, t)


def test_multilabel_margin_targets_end_at_the_first_minus_one():
    x = np.array([[0.1, 0.2, 0.4, 0.8], [0.0, 1.0, 0.5, 0.0]])
    y = np.array([[3, 0, -1, 1], [1, 1, 2, -1]])  # row 0: {3, 0} (1 after -1 ignored); row 1: 1 twice, and 2
    for reduction in REDUCTIONS:
        d, t = _run_both(lambda a: DF.multilabel_margin_loss(a, distnn.tensor(y), reduction),
                         lambda a: TF.multilabel_margin_loss(a, torch.tensor(y), reduction=reduction), [x])
        _assert_same(d, t)
    np.testing.assert_allclose(DF.multilabel_margin_loss(distnn.tensor(x[:1]), y[:1]).item(), 0.85, rtol=1e-12)
    one = DF.multilabel_margin_loss(distnn.tensor(x[0]), y[0], reduction="none")
    assert one.shape == ()  # unbatched: a 0-d loss, as PyTorch's


ERRORS = {
    "cosine_embedding 2-d target": (lambda: DF.cosine_embedding_loss(_t(2, 3), _t(2, 3), _t(2, 1)), "target"),
    "cosine_embedding 1-d target, 1-d inputs": (lambda: DF.cosine_embedding_loss(_t(3), _t(3), _t(3)), "2-d"),
    "cosine_embedding 0-d target, 2-d inputs": (lambda: DF.cosine_embedding_loss(_t(2, 3), _t(2, 3), 1.0), "1-d"),
    "cosine_embedding batch sizes": (lambda: DF.cosine_embedding_loss(_t(2, 3), _t(2, 3), _t(3)), "broadcast"),
    "cosine_embedding reduction": (lambda: dnn.CosineEmbeddingLoss(reduction="batchmean"), "reduction"),
    "margin_ranking dims": (lambda: DF.margin_ranking_loss(_t(3), _t(3), _t(3, 1)), "dimensions"),
    "margin_ranking shapes": (lambda: DF.margin_ranking_loss(_t(3), _t(2), _t(3)), "broadcast"),
    "triplet margin 0": (lambda: DF.triplet_margin_loss(_t(2, 3), _t(2, 3), _t(2, 3), margin=0.0), "margin"),
    "TripletMarginLoss margin": (lambda: dnn.TripletMarginLoss(margin=-1.0), "margin"),
    "triplet dims": (lambda: DF.triplet_margin_loss(_t(2, 3), _t(3), _t(2, 3)), "dimensions"),
    "pairwise inf norm of nothing": (lambda: DF.pairwise_distance(_t(2, 0), _t(2, 0), float("inf")), "empty"),
    "pairwise shapes": (lambda: DF.pairwise_distance(_t(2, 3), _t(2, 4)), "broadcast"),
    "multilabel_margin out of range": (lambda: DF.multilabel_margin_loss(_t(1, 4), np.array([[3, 0, -1, 4]])),
                                       r"\[0, 3\] or -1"),
    "multilabel_margin below -1": (lambda: DF.multilabel_margin_loss(_t(1, 4), np.array([[3, -2, 0, 1]])), "-1"),
    "multilabel_margin target shape": (lambda: DF.multilabel_margin_loss(_t(1, 4), np.array([3, 0, -1, 1])),
                                       "shape"),
    "multilabel_margin float target": (lambda: DF.multilabel_margin_loss(_t(1, 4), np.zeros((1, 4))), "integer"),
    "multilabel_margin 3-d": (lambda: DF.multilabel_margin_loss(_t(2, 3, 4), np.zeros((2, 3, 4), int)), "matrix"),
    "multilabel_margin no classes": (lambda: DF.multilabel_margin_loss(_t(2, 0), np.zeros((2, 0), int)), "empty"),
    "multilabel_soft_margin 0-d": (lambda: DF.multilabel_soft_margin_loss(_t(), _t()), "class dimension"),
    "poisson reduction": (lambda: DF.poisson_nll_loss(_t(3), _t(3), reduction="batchmean"), "reduction"),
    "poisson shapes": (lambda: DF.poisson_nll_loss(_t(2, 3), _t(2)), "broadcast"),
    "kl_div shapes": (lambda: DF.kl_div(_t(2, 3), _t(2), reduction="sum"), "broadcast"),
}


def _t(*shape):
    return distnn.tensor(np.ones(shape))


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_arguments_are_refused_with_a_clear_message(case):
    make, match = ERRORS[case]
    with pytest.raises((ValueError, TypeError, IndexError), match=match):
        make()


EMPTY = {  # (distnn, torch) on an empty batch, 'mean' and 'sum'
    "smooth_l1": lambda lib, r: _f(lib).smooth_l1_loss(_e(lib, 0, 3), _e(lib, 0, 3), reduction=r),
    "kl_div_batchmean": lambda lib, r: _f(lib).kl_div(_e(lib, 0, 3), _e(lib, 0, 3),
                                                       reduction="batchmean" if r == "mean" else r),
    "poisson_nll": lambda lib, r: _f(lib).poisson_nll_loss(_e(lib, 0, 3), _e(lib, 0, 3), reduction=r),
    "cosine_embedding": lambda lib, r: _f(lib).cosine_embedding_loss(_e(lib, 0, 3), _e(lib, 0, 3), _e(lib, 0),
                                                                      reduction=r),
    "margin_ranking": lambda lib, r: _f(lib).margin_ranking_loss(_e(lib, 0), _e(lib, 0), _e(lib, 0), reduction=r),
    "triplet": lambda lib, r: _f(lib).triplet_margin_loss(_e(lib, 0, 3), _e(lib, 0, 3), _e(lib, 0, 3), reduction=r),
    "multilabel_soft_margin": lambda lib, r: _f(lib).multilabel_soft_margin_loss(_e(lib, 0, 3), _e(lib, 0, 3),
                                                                                  reduction=r),
}


def _f(lib):
    return DF if lib is distnn else TF


def test_multilabel_margin_empty_batch_is_nan_mean_and_zero_sum():
    """PyTorch's is uninitialized memory (a deliberate difference): distnn's are the other losses' values."""
    x, t = _e(distnn, 0, 3), np.zeros((0, 3), dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (and no numpy warning)
        mean, total = DF.multilabel_margin_loss(x, t), DF.multilabel_margin_loss(x, t, reduction="sum")
    assert np.isnan(mean.item()) and total.item() == 0.0
    assert DF.multilabel_margin_loss(x, t, reduction="none").shape == (0,)
    total.backward()
    assert x.grad.shape == (0, 3)


def _e(lib, *shape):
    return lib.zeros(shape, dtype=lib.float64, requires_grad=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", sorted(EMPTY))
def test_empty_batch_as_pytorch(loss, reduction):
    d, t = EMPTY[loss](distnn, reduction), EMPTY[loss](torch, reduction)
    np.testing.assert_array_equal(d.numpy(), t.detach().numpy())  # (NaN for most 'mean's, 0 for 'sum')
    d.backward()  # (a gradient of the empty input's shape, no error)


@pytest.mark.parametrize("p", [0.5, 0.3, 1.5, 3.0])
def test_normalize_p_below_one_has_pytorchs_gradient_at_zero_entries(p):
    """The p-norm's gradient at a zero entry is 0 for p < 1 (|x|^(p-1) is infinite there): it was NaN (p > 1:
    the same inputs, which were right)."""
    x = np.array([[0.0, 1.0, 2.0], [0.5, 0.0, -1.0], [0.0, 0.0, 0.0]])
    _assert_same(*_run_both(lambda a: DF.normalize(a, p=p), lambda a: TF.normalize(a, p=p), [x]))


FLOAT32 = {
    "SmoothL1Loss": (lambda lib: _m(lib).SmoothL1Loss(beta=0.5), 2),
    "KLDivLoss": (lambda lib: _m(lib).KLDivLoss(reduction="batchmean"), 2),
    "PoissonNLLLoss": (lambda lib: _m(lib).PoissonNLLLoss(full=True), 2),
    "CosineEmbeddingLoss": (lambda lib: (lambda a, b: _m(lib).CosineEmbeddingLoss(0.1)(a, b, _pm(lib))), 2),
    "MarginRankingLoss": (lambda lib: (lambda a, b: _m(lib).MarginRankingLoss(0.5)(a, b, _pm(lib)[:, None])), 2),
    "TripletMarginLoss": (lambda lib: _m(lib).TripletMarginLoss(swap=True), 3),
    "MultiLabelSoftMarginLoss": (lambda lib: _m(lib).MultiLabelSoftMarginLoss(), 2),
    "CosineSimilarity": (lambda lib: _m(lib).CosineSimilarity(), 2),
    "PairwiseDistance": (lambda lib: _m(lib).PairwiseDistance(p=3.0), 2),
}


def _m(lib):
    return dnn if lib is distnn else torch.nn


def _pm(lib):
    return lib.tensor(np.array([1.0, -1.0, 1.0], dtype=np.float32))


@pytest.mark.parametrize("name", sorted(FLOAT32))
def test_float32_matches_pytorch(name):
    make, nargs = FLOAT32[name]
    rng = np.random.default_rng(3)
    arrays = [rng.random((3, 4)).astype(np.float32) + 0.1 for _ in range(nargs)]
    d, t = _run_both(make(distnn), make(torch), arrays, tuple(range(nargs)), dtype=np.float32)
    assert d[0].dtype == np.float32
    _assert_same(d, t, rtol=2e-6)


def test_module_defaults_are_pytorchs():
    pairs = [(dnn.SmoothL1Loss(), torch.nn.SmoothL1Loss(), ("reduction", "beta")),
             (dnn.KLDivLoss(), torch.nn.KLDivLoss(), ("reduction", "log_target")),
             (dnn.PoissonNLLLoss(), torch.nn.PoissonNLLLoss(), ("reduction", "log_input", "full", "eps")),
             (dnn.CosineEmbeddingLoss(), torch.nn.CosineEmbeddingLoss(), ("reduction", "margin")),
             (dnn.MarginRankingLoss(), torch.nn.MarginRankingLoss(), ("reduction", "margin")),
             (dnn.TripletMarginLoss(), torch.nn.TripletMarginLoss(), ("reduction", "margin", "p", "eps", "swap")),
             (dnn.MultiLabelSoftMarginLoss(), torch.nn.MultiLabelSoftMarginLoss(), ("reduction", "weight")),
             (dnn.MultiLabelMarginLoss(), torch.nn.MultiLabelMarginLoss(), ("reduction",)),
             (dnn.CosineSimilarity(), torch.nn.CosineSimilarity(), ("dim", "eps")),
             (dnn.PairwiseDistance(), torch.nn.PairwiseDistance(), ("norm", "eps", "keepdim"))]
    for d, t, attrs in pairs:
        for a in attrs:
            assert getattr(d, a) == getattr(t, a), (type(d).__name__, a)
    w = dnn.MultiLabelSoftMarginLoss(weight=np.array([1.0, 2.0]))
    assert "weight" in w.state_dict()  # a buffer, as _WeightedLoss's
