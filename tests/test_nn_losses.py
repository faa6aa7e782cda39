"""Loss modules vs PyTorch: values and input gradients, every reduction, weights, smoothing, ignore_index."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn


def close(a, b, rtol=1e-4, what=""):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    scale = max(float(np.abs(b).max()) if b.size else 0.0, 1e-12)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=what)


def run_both(torch, dloss, tloss, x, target, torch_target=None):
    xd = distnn.Tensor(x.copy(), requires_grad=True)
    xt = torch.tensor(x.copy(), requires_grad=True)
    tt = torch.tensor(target) if torch_target is None else torch_target
    ld, lt = dloss(xd, target), tloss(xt, tt)
    close(ld.numpy(), lt.detach().numpy(), what="loss")
    g = np.random.default_rng(3).standard_normal(lt.shape).astype(np.float32)
    ld.backward(g if g.ndim else None)
    lt.backward(torch.tensor(g) if g.ndim else None)
    close(xd.grad, xt.grad.numpy(), what="input grad")


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", [{}, dict(label_smoothing=0.1), dict(ignore_index=2), dict(weight=True),
                                dict(weight=True, label_smoothing=0.2, ignore_index=0)])
def test_cross_entropy_matches_torch(torch, rng, reduction, kw):
    C = 5
    x = (3 * rng.standard_normal((8, C))).astype(np.float32)
    y = rng.integers(0, C, 8)
    y[:2] = [2, 0]  # make sure ignore_index values occur
    kw = dict(kw)
    tkw = dict(kw)
    if kw.pop("weight", False):
        w = (rng.random(C) + 0.5).astype(np.float32)
        kw["weight"], tkw["weight"] = w, torch.tensor(w)
    run_both(torch, nn.CrossEntropyLoss(reduction=reduction, **kw), torch.nn.CrossEntropyLoss(reduction=reduction, **tkw),
             x, y)


def test_cross_entropy_spatial_matches_torch(torch, rng):
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    y = rng.integers(0, 4, (2, 3, 3))
    run_both(torch, nn.CrossEntropyLoss(label_smoothing=0.05), torch.nn.CrossEntropyLoss(label_smoothing=0.05), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_torch(torch, rng, reduction):
    x = np.log(rng.dirichlet(np.ones(4), size=6)).astype(np.float32)
    y = rng.integers(0, 4, 6)
    w = (rng.random(4) + 0.5).astype(np.float32)
    run_both(torch, nn.NLLLoss(weight=w, reduction=reduction, ignore_index=1),
             torch.nn.NLLLoss(weight=torch.tensor(w), reduction=reduction, ignore_index=1), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_matches_torch(torch, rng, reduction):
    x = (10 * rng.standard_normal((5, 3))).astype(np.float32)  # large logits: must stay finite
    y = rng.integers(0, 2, (5, 3)).astype(np.float32)
    w = (rng.random(3) + 0.5).astype(np.float32)
    pw = (rng.random(3) + 0.5).astype(np.float32)
    run_both(torch, nn.BCEWithLogitsLoss(reduction=reduction), torch.nn.BCEWithLogitsLoss(reduction=reduction), x, y)
    run_both(torch, nn.BCEWithLogitsLoss(weight=w, pos_weight=pw, reduction=reduction),
             torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w), pos_weight=torch.tensor(pw), reduction=reduction), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_on_probabilities_matches_torch(torch, rng, reduction):
    p = rng.uniform(0.02, 0.98, (5, 3)).astype(np.float32)
    y = rng.random((5, 3)).astype(np.float32)  # soft targets too
    w = (rng.random(3) + 0.5).astype(np.float32)
    run_both(torch, nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction), p, y)
    run_both(torch, nn.BCELoss(weight=w, reduction=reduction),
             torch.nn.BCELoss(weight=torch.tensor(w), reduction=reduction), p, y)
    # the target's gradient, log(1 - p) - log(p)
    yd = distnn.Tensor(y, requires_grad=True)
    nn.BCELoss(reduction="sum")(distnn.Tensor(p), yd).backward()
    np.testing.assert_allclose(yd.grad, np.log1p(-p) - np.log(p), rtol=1e-5)


def test_bce_gradient_at_0_and_1_uses_pytorchs_floor_exactly(torch):
    # found by tests/test_layer_fuzz_*.py: PyTorch keeps p (1 - p) >= the float 1e-12, not the double; with
    # 1e-12 the float64 gradient at a saturated p was 4e-9 (relative) off PyTorch's
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-14], np.float64)
    y = np.array([0.3, 0.6, 1.0, 0.0, 0.5], np.float64)
    x = distnn.Tensor(p, requires_grad=True)
    F.binary_cross_entropy(x, y, reduction="sum").backward()
    xt = torch.tensor(p, requires_grad=True)
    torch.nn.functional.binary_cross_entropy(xt, torch.tensor(y), reduction="sum").backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12)


def test_bce_on_probabilities_is_the_notes_formula_and_finite_at_0_and_1(torch):
    # 003: L = -y log(p) - (1 - y) log(1 - p). At p = 0 or 1 each log is clamped at -100 (as PyTorch), so a
    # saturated sigmoid gives a loss of 100, not inf, and a finite gradient.
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.25, 0.9], np.float32)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0], np.float32)
    x = distnn.Tensor(p, requires_grad=True)
    loss = F.binary_cross_entropy(x, y, reduction="none")
    loss.sum().backward()
    with np.errstate(divide="ignore"):
        expected = -(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log(1 - p), -100))
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(loss.numpy()[4:], [-np.log(0.25), -np.log(0.1)], rtol=1e-6)
    xt = torch.tensor(p, requires_grad=True)
    torch.nn.functional.binary_cross_entropy(xt, torch.tensor(y), reduction="none").sum().backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-6)  # (p - y) / max(p (1 - p), 1e-12)
    assert np.isfinite(x.grad).all()
    with pytest.raises(ValueError, match=r"probability in \[0, 1\].*with_logits"):
        F.binary_cross_entropy(distnn.Tensor(np.array([0.5, 1.5], np.float32)), np.ones(2, np.float32))
    with pytest.raises(ValueError, match="target shape"):
        nn.BCELoss()(distnn.Tensor(np.full((3, 1), 0.5, np.float32)), np.ones(3, np.float32))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kw", [("MSELoss", {}), ("L1Loss", {}), ("HuberLoss", {}), ("HuberLoss", dict(delta=0.5))])
def test_regression_losses_match_torch(torch, rng, reduction, name, kw):
    x = (2 * rng.standard_normal((4, 5))).astype(np.float32)
    y = (2 * rng.standard_normal((4, 5))).astype(np.float32)
    yd = distnn.Tensor(y)
    dl, tl = getattr(nn, name)(reduction=reduction, **kw), getattr(torch.nn, name)(reduction=reduction, **kw)
    run_both(torch, lambda a, b: dl(a, yd), tl, x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", [{}, dict(p=2), dict(margin=0.5), dict(weight=True)])
def test_multi_margin_matches_torch(torch, rng, reduction, kw):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = rng.integers(0, 4, 6)
    kw, tkw = dict(kw), dict(kw)
    if kw.pop("weight", False):
        w = (rng.random(4) + 0.5).astype(np.float32)
        kw["weight"], tkw["weight"] = w, torch.tensor(w)
    run_both(torch, nn.MultiMarginLoss(reduction=reduction, **kw),
             torch.nn.MultiMarginLoss(reduction=reduction, **tkw), x, y)


@pytest.mark.parametrize("bad", [-np.inf, np.inf, np.nan])
@pytest.mark.parametrize("kw", [{}, dict(label_smoothing=0.1), dict(weight=np.array([1.0, 2.0, 0.5], np.float32))])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_an_ignored_row_with_non_finite_logits_does_not_reach_the_loss(kw, reduction, bad):
    # An ignored target (a padded position, where a model may mask classes with -inf) is no part of the
    # loss. It was multiplied by 0, and 0 * inf made the whole loss NaN (PyTorch skips the row: finite).
    z = np.array([[bad, 0.0, 1.0], [1.0, 2.0, 0.5], [0.3, -1.0, 2.0]], np.float32)
    y = np.array([-100, 1, 2])
    x = distnn.Tensor(z, requires_grad=True)
    with np.errstate(invalid="ignore", over="ignore"):
        loss = F.cross_entropy(x, y, reduction=reduction, **kw)
        loss.sum().backward()
    clean = distnn.Tensor(z[1:], requires_grad=True)
    expected = F.cross_entropy(clean, y[1:], reduction=reduction, **kw)
    expected.sum().backward()
    want = np.concatenate([[0.0], expected.numpy()]) if reduction == "none" else expected.numpy()
    np.testing.assert_allclose(loss.numpy(), want, rtol=1e-6)
    np.testing.assert_array_equal(x.grad[0], 0.0)  # the ignored row gets no gradient (not NaN)
    np.testing.assert_allclose(x.grad[1:], clean.grad, rtol=1e-6)
    with np.errstate(invalid="ignore"):
        logp = F.log_softmax(distnn.Tensor(z), dim=1)  # nll_loss takes the same path
        nll = F.nll_loss(logp, y, reduction=reduction)
    assert np.isfinite(nll.numpy()).all()


def test_loss_weight_is_a_buffer_in_state_dict():
    w = np.array([1.0, 2.0, 0.5], np.float32)
    loss = nn.CrossEntropyLoss(weight=w)
    np.testing.assert_array_equal(loss.state_dict()["weight"], w)
    assert list(loss.parameters()) == []


def test_bad_labels_and_reduction_are_reported():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match=r"\[0, 2\].*3 classes.*\[3\]"):
        nn.CrossEntropyLoss()(distnn.Tensor(np.zeros((2, 3), np.float32)), np.array([0, 3]))


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (3,)])
@pytest.mark.parametrize("kw", [dict(), dict(reduction="sum", label_smoothing=0.2), dict(reduction="none"),
                                dict(weight=True)])
def test_class_probability_targets_match_torch(torch, rng, shape, kw):
    # found by tests/test_layer_fuzz_*.py: PyTorch takes a floating target shaped like the input (class
    # probabilities); distnn raised "class-probability targets ... are not supported"
    axis = 0 if len(shape) == 1 else 1
    x, p = rng.standard_normal(shape), rng.random(shape)
    p /= p.sum(axis=axis, keepdims=True)
    kd, kt = dict(kw), dict(kw)
    if kw.get("weight"):
        w = rng.random(shape[axis]) + 0.5
        kd["weight"], kt["weight"] = w, torch.tensor(w)
    xd, pd = distnn.Tensor(x.copy(), requires_grad=True), distnn.Tensor(p.copy(), requires_grad=True)
    xt, pt = torch.tensor(x, requires_grad=True), torch.tensor(p, requires_grad=True)
    ld, lt = nn.CrossEntropyLoss(**kd)(xd, pd), torch.nn.CrossEntropyLoss(**kt)(xt, pt)
    close(ld.numpy(), lt.detach().numpy(), 1e-12, "loss")
    g = rng.standard_normal(lt.shape)
    ld.backward(g)
    lt.backward(torch.tensor(g))
    close(xd.grad, xt.grad.numpy(), 1e-12, "input grad")
    close(pd.grad, pt.grad.numpy(), 1e-12, "target grad")
    with pytest.raises(ValueError, match="ignore_index .* does not apply to class-probability targets"):
        F.cross_entropy(xd, pd, ignore_index=1)  # (PyTorch refuses it too)


def test_nll_loss_refuses_class_probability_targets_as_torch():
    x = distnn.Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"nll_loss: class-probability targets.*\(2, 3\).*not supported"):
        nn.NLLLoss()(x, np.full((2, 3), 1 / 3, np.float32))


@pytest.mark.parametrize("which", ["weight", "pos_weight"])
def test_bce_with_logits_refuses_a_weight_that_enlarges_the_loss(torch, which):
    # A (2, 3) weight against a (3,) input averaged the loss over 6 terms but gave the gradient of 3:
    # twice too large. PyTorch refuses the shape; so does distnn now, naming it.
    x = distnn.Tensor(np.array([0.3, -1.0, 2.0]), requires_grad=True)
    y = np.array([1.0, 0.0, 1.0])
    w = np.ones((2, 3))
    with pytest.raises(RuntimeError):
        torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(x.data), torch.tensor(y),
                                                             **{which: torch.tensor(w)})
    with pytest.raises(ValueError, match=rf"{which} of shape \(2, 3\) must broadcast to the input's shape \(3,\)"):
        nn.BCEWithLogitsLoss(**{which: w})(x, y)


@pytest.mark.parametrize("delta", [0, -1.0, float("nan")])
def test_huber_refuses_a_delta_that_is_not_positive(delta):
    # delta = -1 gave a negative loss and delta = 0 a loss of 0 with no gradient (PyTorch refuses both)
    with pytest.raises(ValueError, match="delta must be a number > 0"):
        nn.HuberLoss(delta=delta)
    with pytest.raises(ValueError, match="delta must be a number > 0"):
        distnn.functional.huber_loss(distnn.Tensor(np.ones(3)), np.zeros(3), delta=delta)


@pytest.mark.parametrize("loss", [nn.MSELoss(), nn.L1Loss(), nn.HuberLoss()], ids=["mse", "l1", "huber"])
def test_a_target_that_only_broadcasts_warns_as_in_pytorch(loss):
    out = distnn.Tensor(np.zeros((4, 1)))  # a regression head's (N, 1) against a (N,) target: an N x N loss
    with pytest.warns(UserWarning, match=r"target's shape \(4,\) differs from the input's \(4, 1\)"):
        loss(out, np.arange(4.0))


@pytest.mark.parametrize("x_shape,target,weight,match", [
    ((4, 3), np.array([0, 1, 2]), None, r"target shape \(3,\) does not match the input's batch \(4,\)"),
    ((4, 3), np.zeros((4, 1), np.int64), None, r"target shape \(4, 1\)"),
    ((2, 4, 3), np.zeros(2, np.int64), None, r"input of shape \(N, C\) or \(C,\), got \(2, 4, 3\)"),
    ((4, 3), np.zeros(4, np.int64), np.ones(5), r"weight of shape \(5,\) must have one entry per class \(3,\)"),
    ((4, 3), np.zeros(4, np.int64), np.ones(2), r"weight of shape \(2,\)"),
])
def test_multi_margin_names_mismatched_shapes(x_shape, target, weight, match):
    # these were an IndexError about broadcasting, a reshape error, an unpacking error, or (a weight longer
    # than C) silently accepted
    with pytest.raises(ValueError, match=match):
        distnn.functional.multi_margin_loss(distnn.Tensor(np.zeros(x_shape)), target, weight=weight)
