"""logsigmoid, gaussian_nll_loss, soft_margin_loss, hinge_embedding_loss and binary_hinge_loss vs PyTorch
(values and gradients, float32 and float64, every reduction, broadcasting, extreme values) and their errors."""
import math

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn

REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-5, np.float64: 1e-11}


def close(a, b, dtype, what="", relative_only=False):
    """Equal to the dtype's tolerance, relative to the largest magnitude of ``b`` (that of each element
    with ``relative_only``: where values span many orders, tails included)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    scale = 0.0 if relative_only else max(float(np.abs(b).max()) if b.size else 0.0, 1e-12)
    np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype] * scale, err_msg=what)


def both(torch, arrays, grad_of):
    """distnn and torch tensors of the same arrays; those at positions in ``grad_of`` require a gradient."""
    d = [distnn.Tensor(a.copy(), requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    t = [torch.tensor(a.copy(), requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    return d, t


def backward_both(torch, ld, lt, seed=3):
    """Backpropagate one random upstream gradient through both losses (a 0-d loss: 1)."""
    g = np.random.default_rng(seed).standard_normal(tuple(lt.shape))
    ld.backward(g.astype(ld.dtype) if g.ndim else None)
    lt.backward(torch.tensor(g, dtype=lt.dtype) if g.ndim else None)


def compare(torch, ld, lt, d, t, dtype, relative_only=False):
    assert ld.dtype == dtype, f"loss dtype {ld.dtype}, input {np.dtype(dtype)}"
    close(ld.numpy(), lt.detach().numpy(), dtype, "loss", relative_only)
    backward_both(torch, ld, lt)
    for i, (a, b) in enumerate(zip(d, t)):
        if b.requires_grad:
            close(a.grad, b.grad.numpy(), dtype, f"gradient of argument {i}", relative_only)


# ---------------------------------------------------------------- logsigmoid
EXTREMES = [-1e30, -1e4, -710.0, -200.0, -104.0, -88.0, -20.0, -1.0, 0.0, 1.0, 17.0, 20.0, 88.0, 200.0, 1e4, 1e30]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("module", [False, True])
def test_logsigmoid_matches_torch_with_extremes(torch, rng, dtype, module):
    x = np.concatenate([np.array(EXTREMES), 5 * rng.standard_normal(20)]).astype(dtype)
    (xd,), (xt,) = both(torch, [x], {0})
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow anywhere, forward or back
        ld = nn.LogSigmoid()(xd) if module else F.logsigmoid(xd)
        lt = torch.nn.functional.logsigmoid(xt)
        assert np.isfinite(ld.numpy()).all()
        compare(torch, ld, lt, [xd], [xt], dtype, relative_only=True)
    # the tails by hand: log sigmoid(x) = x - log(1 + e^x) for x < 0, -log(1 + e^-x) for x > 0
    tail = math.log1p(math.exp(-20))
    close(ld.numpy()[[1, 6, 11]], [-1e4, -20 - tail, -tail], dtype, "tails", True)


def test_logsigmoid_of_integers_is_float32():
    assert F.logsigmoid(distnn.tensor(np.array([-3, 0, 3]))).dtype == np.float32


# ---------------------------------------------------------------- gaussian_nll_loss
VAR_SHAPES = [(4, 3), (4,), (4, 1), (1, 3)]  # per prediction; without the last dim; a 1 in either dim


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("var_shape", VAR_SHAPES)
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_matches_torch(torch, rng, dtype, reduction, var_shape, full):
    x = rng.standard_normal((4, 3)).astype(dtype)
    y = rng.standard_normal((4, 3)).astype(dtype)
    v = (rng.random(var_shape) + 0.1).astype(dtype)
    d, t = both(torch, [x, y, v], {0, 1, 2})
    ld = F.gaussian_nll_loss(*d, full=full, reduction=reduction)
    lt = torch.nn.functional.gaussian_nll_loss(*t, full=full, reduction=reduction)
    compare(torch, ld, lt, d, t, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_nll_image_shaped_var_and_broadcast_target(torch, rng, dtype):
    """A variance per pixel shared over channels (4, 1, 5, 5) for (4, 3, 5, 5); a target that broadcasts."""
    x = rng.standard_normal((4, 3, 5, 5)).astype(dtype)
    y = rng.standard_normal((4, 1, 5, 5)).astype(dtype)
    v = (rng.random((4, 1, 5, 5)) + 0.1).astype(dtype)
    d, t = both(torch, [x, y, v], {0, 1, 2})
    compare(torch, nn.GaussianNLLLoss(full=True)(*d), torch.nn.GaussianNLLLoss(full=True)(*t), d, t, dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gaussian_nll_target_broadcasts_beyond_input(torch, rng, reduction):
    """As PyTorch: input (5,) against a (2, 5) target is a (2, 5) loss ('mean' over its 10 elements)."""
    x, v = rng.standard_normal(5), rng.random(5) + 0.1
    y = rng.standard_normal((2, 5))
    d, t = both(torch, [x, y, v], {0, 1, 2})
    ld = F.gaussian_nll_loss(*d, reduction=reduction)
    lt = torch.nn.functional.gaussian_nll_loss(*t, reduction=reduction)
    compare(torch, ld, lt, d, t, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("var", [0.5, 2, 0.0])
def test_gaussian_nll_scalar_var(torch, rng, dtype, var):
    x, y = rng.standard_normal((2, 6)).astype(dtype)
    d, t = both(torch, [x, y], {0})
    # (PyTorch takes a float only; an int is refused there with a TypeError from torch.any)
    lt = torch.nn.functional.gaussian_nll_loss(*t, float(var), reduction="sum")
    compare(torch, F.gaussian_nll_loss(*d, var, reduction="sum"), lt, d, t, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_nll_clamps_var_at_eps_and_passes_its_gradient(torch, dtype):
    """var below eps is used as eps in the loss, and its gradient is the loss's slope there, not zero."""
    x = np.array([1.0, 2.0, 3.0, 0.5], dtype)
    y = np.zeros(4, dtype)
    v = np.array([0.0, 1e-9, 2.0, 1e-3], dtype)
    for eps in (1e-6, 1e-2):
        d, t = both(torch, [x, y, v], {0, 2})
        ld = F.gaussian_nll_loss(*d, eps=eps, reduction="none")
        lt = torch.nn.functional.gaussian_nll_loss(*t, eps=eps, reduction="none")
        compare(torch, ld, lt, d, t, dtype)
        # by hand: v = max(var, eps); d loss / d var = 0.5 (1 / v - (x - y)^2 / v^2) where clamped, too
        vc = np.maximum(v.astype(np.float64), eps)
        close(ld.numpy(), 0.5 * (np.log(vc) + x.astype(np.float64) ** 2 / vc), dtype, "by hand")
        g = np.random.default_rng(3).standard_normal(4)
        close(d[2].grad, 0.5 * (1 / vc - x.astype(np.float64) ** 2 / vc**2) * g, dtype, "var gradient by hand")
        assert d[2].grad[0] != 0


@pytest.mark.parametrize("var_shape", [(3,), (1, 1), (4, 3, 1), (2, 3), (4, 2)])
def test_gaussian_nll_rejects_var_shapes_pytorch_rejects(torch, var_shape):
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="incorrect size"):
        torch.nn.functional.gaussian_nll_loss(torch.tensor(x), torch.tensor(x), torch.ones(var_shape))
    with pytest.raises(ValueError, match=r"var of shape .* incorrect size for input of shape \(4, 3\)"):
        F.gaussian_nll_loss(distnn.Tensor(x), x, np.ones(var_shape))


def test_gaussian_nll_errors():
    x = distnn.Tensor(np.zeros((4, 3)))
    y = np.zeros((4, 3))
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(x, y, np.full((4, 3), -1e-3))
    with pytest.raises(ValueError, match="var must be >= 0"):
        F.gaussian_nll_loss(x, y, -1.0)
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.gaussian_nll_loss(x, y, np.ones((4, 3)), reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.GaussianNLLLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"target shape \(5, 3\) does not broadcast with input shape \(4, 3\)"):
        F.gaussian_nll_loss(x, np.zeros((5, 3)), np.ones((4, 3)))


# ---------------------------------------------------------------- soft_margin_loss
def labels(rng, shape, dtype):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_shape", [(5, 4), (4,), (5, 1)])  # equal, or broadcast to the input's shape
def test_soft_margin_matches_torch(torch, rng, dtype, reduction, target_shape):
    x = (4 * rng.standard_normal((5, 4))).astype(dtype)
    y = labels(rng, target_shape, dtype)
    (xd,), (xt,) = both(torch, [x], {0})
    ld = nn.SoftMarginLoss(reduction)(xd, y)
    lt = torch.nn.SoftMarginLoss(reduction=reduction)(xt, torch.tensor(y))
    compare(torch, ld, lt, [xd], [xt], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_margin_extremes_are_exact_where_pytorch_overflows(torch, dtype):
    """log(1 + e^m) for m = -y x up to 1e30: PyTorch's log1p(exp(m)) is inf there (gradient NaN); ours is m."""
    m = np.array([-1e30, -1e4, -800.0, -80.0, -30.0, 0.0, 30.0, 80.0, 100.0, 800.0, 1e4, 1e30])
    y = np.tile([1.0, -1.0], 6)[: m.size].astype(dtype)
    x = (-m * y).astype(dtype)
    xd = distnn.Tensor(x.copy(), requires_grad=True)
    with np.errstate(over="raise", invalid="raise"):
        loss = F.soft_margin_loss(xd, y, reduction="none")
        loss.sum().backward()
    # exact: softplus(m) and d/dx = -y sigmoid(m), from float64 in the region where exp(m) is finite
    mm = m.astype(dtype).astype(np.float64)
    exact = np.where(mm > 30, mm, np.log1p(np.exp(np.minimum(mm, 30))))
    close(loss.numpy(), exact, dtype, "softplus(-y x)", True)
    sig = np.where(mm > 30, 1.0, np.exp(np.minimum(mm, 30)) / (1 + np.exp(np.minimum(mm, 30))))
    close(xd.grad, -y * sig, dtype, "gradient", True)
    # and PyTorch itself, where it is finite
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.soft_margin_loss(xt, torch.tensor(y), reduction="none")
    lt.sum().backward()
    ok = np.isfinite(lt.detach().numpy()) & np.isfinite(xt.grad.numpy())
    assert ok.sum() >= 6
    close(loss.numpy()[ok], lt.detach().numpy()[ok], dtype, "vs torch", True)
    close(xd.grad[ok], xt.grad.numpy()[ok], dtype, "gradient vs torch", True)


def test_soft_margin_errors():
    x = distnn.Tensor(np.zeros((3,)))
    with pytest.raises(ValueError, match=r"target shape \(3, 1\) must broadcast to the input's shape \(3,\)"):
        F.soft_margin_loss(x, np.ones((3, 1)))  # (PyTorch: "output with shape [3] doesn't match [3, 3]")
    with pytest.raises(ValueError, match=r"target shape \(2,\) does not broadcast with input shape \(3,\)"):
        F.soft_margin_loss(x, np.ones(2))
    with pytest.raises(ValueError, match="soft_margin_loss: reduction must be"):
        F.soft_margin_loss(x, np.ones(3), reduction="mena")
    with pytest.raises(ValueError, match="reduction"):
        nn.SoftMarginLoss("mena")


# ---------------------------------------------------------------- hinge_embedding_loss
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.5, 2.0])
def test_hinge_embedding_matches_torch(torch, rng, dtype, reduction, margin):
    x = np.abs(2 * rng.standard_normal((6, 5))).astype(dtype)
    x[0, :3] = margin  # ties at the hinge's corner: PyTorch's gradient there is -1 (clamp_min passes it)
    x[1, :2] = [0.0, 50.0]
    y = labels(rng, (6, 5), dtype)
    y[0, :3] = -1
    y[2, :2] = [0, 2]  # neither -1 nor 1: both terms, as PyTorch (labels are not checked)
    (xd,), (xt,) = both(torch, [x], {0})
    ld = nn.HingeEmbeddingLoss(margin, reduction)(xd, y)
    lt = torch.nn.HingeEmbeddingLoss(margin=margin, reduction=reduction)(xt, torch.tensor(y))
    compare(torch, ld, lt, [xd], [xt], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hinge_embedding_broadcasts_as_torch(torch, rng, dtype, reduction):
    """As PyTorch: a (3, 1) input against (3,) labels broadcasts to a (3, 3) loss; integer labels work."""
    x = rng.random((3, 1)).astype(dtype)
    y = np.array([1, -1, -1])
    (xd,), (xt,) = both(torch, [x], {0})
    ld = F.hinge_embedding_loss(xd, y, reduction=reduction)
    lt = torch.nn.functional.hinge_embedding_loss(xt, torch.tensor(y), reduction=reduction)
    assert ld.shape == lt.shape
    compare(torch, ld, lt, [xd], [xt], dtype)


def test_hinge_embedding_errors():
    with pytest.raises(ValueError, match=r"hinge_embedding_loss: target shape \(2,\) does not broadcast"):
        F.hinge_embedding_loss(distnn.Tensor(np.zeros(3)), np.ones(2))
    with pytest.raises(ValueError, match="hinge_embedding_loss: reduction must be"):
        F.hinge_embedding_loss(distnn.Tensor(np.zeros(3)), np.ones(3), reduction=None)


# ---------------------------------------------------------------- the notes' binary hinge
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_hinge_is_the_notes_formula(torch, rng, dtype, reduction):
    """max(0, 1 - y s) (notes 003), by hand, with its gradient -y where the hinge is active, 0 elsewhere."""
    s = np.array([2.0, 0.5, -0.5, -3.0, 1.5, -0.2, 0.0, 1.0], dtype)
    y = np.array([1, 1, 1, 1, -1, -1, -1, 1], dtype)
    hand = [0.0, 0.5, 1.5, 4.0, 2.5, 0.8, 1.0, 0.0]  # max(0, 1 - y s) worked out (the last: the corner)
    sd = distnn.Tensor(s.copy(), requires_grad=True)
    loss = F.binary_hinge_loss(sd, y, reduction=reduction)
    expected = {"mean": np.mean(hand), "sum": np.sum(hand), "none": np.array(hand)}[reduction]
    close(loss.numpy(), expected, dtype, "loss")
    loss.backward(np.ones(8, dtype) if reduction == "none" else None)
    active = np.array(hand) > 0
    per = 1 / 8 if reduction == "mean" else 1.0
    close(sd.grad, np.where(active, -y * per, 0.0), dtype, "gradient")
    # PyTorch's way to write it, the oracle for random scores
    x = rng.standard_normal(50).astype(dtype)
    yy = labels(rng, 50, dtype)
    (xd,), (xt,) = both(torch, [x], {0})
    ld = F.binary_hinge_loss(xd, yy, margin=0.7, reduction=reduction)
    lt = torch.relu(0.7 - torch.tensor(yy) * xt)
    lt = {"mean": lt.mean(), "sum": lt.sum(), "none": lt}[reduction]
    compare(torch, ld, lt, [xd], [xt], dtype)


def test_binary_hinge_relates_to_pytorchs_losses(rng):
    """The notes' hinge is hinge_embedding_loss(y * s, -1), and twice multi_margin_loss on scores (-s/2, s/2)."""
    s = rng.standard_normal(20)
    y = labels(rng, 20, np.float64)
    ours = F.binary_hinge_loss(distnn.Tensor(s), y, reduction="none").numpy()
    via_embedding = F.hinge_embedding_loss(distnn.Tensor(y * s), -np.ones(20), reduction="none").numpy()
    two_class = np.stack([-s / 2, s / 2], axis=1)
    via_multi = 2 * F.multi_margin_loss(distnn.Tensor(two_class), ((y + 1) // 2).astype(np.int64),
                                        reduction="none").numpy()
    np.testing.assert_allclose(via_embedding, ours, rtol=1e-12)
    np.testing.assert_allclose(via_multi, ours, rtol=1e-12, atol=1e-15)


def test_binary_hinge_errors():
    with pytest.raises(ValueError, match=r"target shape \(3,\) must equal the input's shape \(3, 1\)"):
        F.binary_hinge_loss(distnn.Tensor(np.zeros((3, 1))), np.ones(3))
    with pytest.raises(ValueError, match="binary_hinge_loss: reduction must be"):
        F.binary_hinge_loss(distnn.Tensor(np.zeros(3)), np.ones(3), reduction="max")


def test_full_constant_is_half_log_two_pi():
    x = distnn.Tensor(np.zeros(3))
    gap = F.gaussian_nll_loss(x, np.ones(3), np.ones(3), full=True) - F.gaussian_nll_loss(x, np.ones(3), np.ones(3))
    assert abs(float(gap.numpy()) - 0.5 * math.log(2 * math.pi)) < 1e-12
