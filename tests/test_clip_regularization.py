"""Gradient clipping (distnn.nn.utils) against torch.nn.utils, and the regularization helpers."""
import math

import numpy as np
import pytest

import distnn
import distnn.nn as nn
from distnn.nn import Parameter
from distnn.nn.utils import clip_grad_norm_, clip_grad_value_, grad_norm
from distnn.optim import SGD, l1_penalty, l2_penalty, param_groups_no_decay, split_decay_parameters


def _pairs(torch, rng, shapes=((40, 30), (30,), (7, 3, 2)), scale=1.0, dtype=np.float64):
    ours, theirs = [], []
    for s in shapes:
        g = (rng.standard_normal(s) * scale).astype(dtype)
        p = Parameter(np.zeros(s, dtype=dtype))
        p.grad = g.copy()
        tp = torch.zeros(s, dtype=torch.float64 if dtype == np.float64 else torch.float32, requires_grad=True)
        tp.grad = torch.from_numpy(g.copy())
        ours.append(p)
        theirs.append(tp)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e4])
def test_clip_grad_norm_matches_torch(torch, rng, norm_type, max_norm):
    ours, theirs = _pairs(torch, rng)
    ours.append(Parameter(np.ones(3)))  # no gradient: ignored
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    tnorm = float("inf") if norm_type == "inf" else norm_type
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=tnorm, foreach=False)
    assert isinstance(total, distnn.Tensor) and total.shape == ()  # (a 0-d tensor of the gradients' dtype, as torch's)
    assert str(total.dtype).split(".")[-1] == str(ttotal.dtype).split(".")[-1]
    np.testing.assert_allclose(total, float(ttotal), rtol=1e-12)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12, atol=0)
    if max_norm < total:  # actually clipped: the new norm is max_norm
        np.testing.assert_allclose(grad_norm(ours, norm_type), max_norm, rtol=1e-5)


def test_clip_grad_norm_float32_large(torch):
    """A 10^6-element float32 gradient: the norm is accumulated accurately (vs torch and float64)."""
    rng = np.random.default_rng(1)
    ours, theirs = _pairs(torch, rng, shapes=((1000, 1000), (1000,)), scale=3.0, dtype=np.float32)
    exact = math.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in ours))
    total = clip_grad_norm_(ours, 1.0)
    ttotal = float(torch.nn.utils.clip_grad_norm_(theirs, 1.0))
    np.testing.assert_allclose(total, exact, rtol=1e-6)
    np.testing.assert_allclose(total, ttotal, rtol=5e-5)  # torch's own float32 sum is off by ~1e-5 here
    for p, tp in zip(ours, theirs):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=5e-5, atol=1e-9)


def test_clip_grad_norm_by_hand():
    p = Parameter(np.zeros(2))
    p.grad = np.array([3.0, 4.0])
    assert clip_grad_norm_(p, 1.0) == 5.0
    np.testing.assert_allclose(p.grad, [3.0 / (5.0 + 1e-6), 4.0 / (5.0 + 1e-6)], rtol=1e-15)
    q = Parameter(np.zeros(2))
    q.grad = np.array([0.3, 0.4])
    clip_grad_norm_([q], 1.0)
    assert np.array_equal(q.grad, [0.3, 0.4])  # below the bound: untouched
    assert clip_grad_norm_([Parameter(np.zeros(2))], 1.0) == 0.0  # no gradients at all


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_grad_norm_nonfinite(torch, rng, bad):
    ours, theirs = _pairs(torch, rng)
    ours[1].grad[3] = bad
    theirs[1].grad[3] = bad
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert ours[1].grad[0] == theirs[1].grad[0].item()  # the error leaves the gradients alone
    total = clip_grad_norm_(ours, 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.0, foreach=False)
    assert (math.isinf(total) and math.isinf(float(ttotal))) or (math.isnan(total) and math.isnan(float(ttotal)))
    for p, tp in zip(ours, theirs):  # same NaN/zero pattern as torch
        np.testing.assert_array_equal(p.grad, tp.grad.numpy())


def test_clip_grad_value_matches_torch(torch, rng):
    ours, theirs = _pairs(torch, rng)
    clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7, foreach=False)
    for p, tp in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad, tp.grad.numpy())
    assert max(float(np.abs(p.grad).max()) for p in ours) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(ours, -1.0)


def test_bad_norm_type():
    p = Parameter(np.zeros(2))
    p.grad = np.ones(2)
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_(p, 1.0, norm_type=-2)
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_(p, 1.0, norm_type="fro")


def test_clip_module_path():
    import distnn.nn.utils as utils

    assert utils.clip_grad_norm_ is clip_grad_norm_


# ------------------------------------------------------------------ regularization
def test_l1_l2_penalties_value_and_gradient(rng):
    a = Parameter(rng.standard_normal((4, 3)))
    b = Parameter(rng.standard_normal(5))
    l2 = l2_penalty([a, b])
    assert isinstance(l2, distnn.Tensor)
    np.testing.assert_allclose(l2.item(), np.sum(a.data ** 2) + np.sum(b.data ** 2), rtol=1e-12)
    l2.backward()
    np.testing.assert_allclose(a.grad, 2 * a.data, rtol=1e-12)
    np.testing.assert_allclose(b.grad, 2 * b.data, rtol=1e-12)
    a.grad = b.grad = None
    l1 = l1_penalty([a, b])
    np.testing.assert_allclose(l1.item(), np.abs(a.data).sum() + np.abs(b.data).sum(), rtol=1e-12)
    l1.backward()
    np.testing.assert_allclose(a.grad, np.sign(a.data))
    np.testing.assert_allclose(b.grad, np.sign(b.data))


def test_penalties_check_grad():
    from distnn.testing import check_grad

    x = distnn.Tensor(np.array([[0.5, -1.5], [2.0, -0.25]]), requires_grad=True)
    check_grad(lambda t: l2_penalty([t]) * 0.5 + l1_penalty([t]), x)


def test_l2_penalty_in_loss_equals_sgd_weight_decay(rng):
    """loss + (wd/2) * l2_penalty(w) trains exactly like SGD(weight_decay=wd)."""
    x = rng.standard_normal((16, 3))
    y = rng.standard_normal((16, 1))
    w0 = rng.standard_normal((3, 1))
    wd = 0.1
    results = []
    for use_penalty in (True, False):
        w = Parameter(w0.copy())
        opt = SGD([w], lr=0.05, momentum=0.9, weight_decay=0.0 if use_penalty else wd)
        for _ in range(20):
            opt.zero_grad()
            err = distnn.Tensor(x) @ w - distnn.Tensor(y)
            loss = (err * err).mean()
            if use_penalty:
                loss = loss + l2_penalty([w]) * (wd / 2)
            loss.backward()
            opt.step()
        results.append(w.data.copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_penalty_refuses_a_module():
    with pytest.raises(TypeError, match="split_decay_parameters"):
        l2_penalty(nn.Linear(2, 2))


def _model():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2), nn.LayerNorm(2))


def test_param_groups_no_decay():
    model = _model()
    decay, no_decay = split_decay_parameters(model)
    assert [id(p) for p in decay] == [id(model[0].weight), id(model[3].weight)]
    assert {id(p) for p in no_decay} == {id(model[0].bias), id(model[1].weight), id(model[1].bias),
                                         id(model[3].bias), id(model[4].weight), id(model[4].bias)}
    groups = param_groups_no_decay(model, 5e-4, no_decay_extra={"layer_adaptation": False})
    assert groups[0]["weight_decay"] == 5e-4 and groups[1]["weight_decay"] == 0.0
    assert groups[1]["layer_adaptation"] is False
    opt = SGD(groups, lr=0.1, momentum=0.9)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups_no_decay(model, -1.0)


def test_no_decay_group_leaves_bias_undecayed():
    """With a zero gradient, only the decayed group shrinks."""
    model = nn.Sequential(nn.Linear(3, 3))
    w0, b0 = model[0].weight.data.copy(), model[0].bias.data.copy()
    opt = SGD(param_groups_no_decay(model, 0.5), lr=0.1)
    for p in model.parameters():
        p.grad = np.zeros_like(p.data)
    opt.step()
    np.testing.assert_allclose(model[0].weight.data, w0 * (1 - 0.05), rtol=1e-6)
    np.testing.assert_array_equal(model[0].bias.data, b0)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, "inf"])
def test_clip_grad_norm_scales_a_tensor_grad_in_place(norm_type):
    """A Tensor stored as .grad (the optimizers accept one) is clipped like an array, in its own .data."""
    g = np.array([3.0, -4.0, 12.0])
    expected = Parameter(np.zeros(3))
    expected.grad = g.copy()
    total_expected = clip_grad_norm_([expected], 1.0, norm_type=norm_type)
    p = Parameter(np.zeros(3))
    p.grad = distnn.Tensor(g.copy())
    data = p.grad.data
    assert clip_grad_norm_([p], 1.0, norm_type=norm_type) == total_expected
    assert p.grad.data is data  # in place, not rebound
    np.testing.assert_array_equal(data, expected.grad)
    assert grad_norm([p], norm_type) == pytest.approx(1.0, rel=1e-5)
    SGD([p], lr=1.0).step()  # the optimizer reads the clipped gradient
    np.testing.assert_array_equal(p.data, -expected.grad)


def test_clip_grad_norm_clips_a_numpy_scalar_grad():
    p = Parameter(np.array(0.0))
    p.grad = np.float64(10.0)  # not an array: ``g *= coef`` alone would rebind a local name
    assert clip_grad_norm_([p], 1.0) == 10.0
    np.testing.assert_allclose(p.grad, 1.0, rtol=1e-6)


def test_clip_grad_value_clamps_a_tensor_grad_in_place():
    p = Parameter(np.zeros(3))
    p.grad = distnn.Tensor(np.array([-5.0, 0.5, 5.0]))
    data = p.grad.data
    clip_grad_value_([p], 1.0)
    assert p.grad.data is data
    np.testing.assert_array_equal(data, [-1.0, 0.5, 1.0])


@pytest.mark.parametrize("name", ["lars", "lamb"])
@pytest.mark.parametrize("wd", [0.0, 1e-4])
def test_job_excludes_biases_from_lars_lamb_adaptation(name, wd):
    """You et al. leave biases and norm parameters out of the trust ratio as well as the decay: the job's
    optimizer puts them in a group with layer_adaptation=False, whether or not weight decay is on."""
    import distnn.distributed as dist
    from distnn.train.job import Job

    def build(comm):
        job = Job("xor", [f"optimizer.name={name}", f"optimizer.weight_decay={wd}", "train.epochs=1"], comm,
                  quiet=True)
        return job.model, job.optimizer

    model, opt = dist.simulate(1, build)[0]
    _, no_decay = split_decay_parameters(model)
    assert no_decay, "the xor model should have biases"
    groups = {id(p): g for g in opt.param_groups for p in g["params"]}
    assert len(groups) == len(list(model.parameters()))
    for p in model.parameters():
        excluded = any(p is q for q in no_decay)
        assert groups[id(p)]["layer_adaptation"] is (not excluded)
        assert groups[id(p)]["weight_decay"] == (0.0 if excluded else wd)


def _one_epoch(l1, steps=1, **kw):
    """A small MLP trained for ``steps`` full-batch SGD steps with ``Trainer(l1=...)``: (start, end) weights."""
    from distnn.data import Dataset
    from distnn.distributed import LocalCommunicator
    from distnn.train.trainer import Trainer

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 5)).astype(np.float32), rng.integers(0, 3, 32)
    model = nn.Sequential(nn.Linear(5, 4, generator=np.random.default_rng(1)), nn.ReLU(),
                          nn.Linear(4, 3, generator=np.random.default_rng(2)))
    start = model.state_dict()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), Dataset(x, y, 3), comm=LocalCommunicator(),
                      batch_size=32, epochs=steps, shuffle=False, l1=l1, **kw)
    trainer.fit()
    return start, model.state_dict()


def test_trainer_l1_penalizes_the_weights_and_never_the_biases():
    # The lecture notes (001, 002): L1 or L2 regularization of the weight matrices, not of the intercepts.
    # One full-batch SGD step with l1 moves each weight by a further -lr * l1 * sign(w), each bias not at all.
    start, plain = _one_epoch(0.0)
    _, regularized = _one_epoch(0.05)
    for name in plain:
        extra = -0.1 * 0.05 * np.sign(start[name]) if name.endswith("weight") else 0.0
        np.testing.assert_allclose(regularized[name], plain[name] + extra, atol=1e-6, err_msg=name)
    # ... which is the gradient of loss + l1 * sum |W| (l1_penalty over the weights)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    model.load_state_dict(start)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 5)).astype(np.float32), rng.integers(0, 3, 32)
    opt = SGD(model.parameters(), lr=0.1)
    loss = distnn.functional.cross_entropy(model(distnn.Tensor(x)), y)
    (loss + 0.05 * l1_penalty(split_decay_parameters(model)[0])).backward()
    opt.step()
    for name, p in model.state_dict().items():
        np.testing.assert_allclose(regularized[name], p, atol=1e-6, err_msg=name)
    with pytest.raises(ValueError, match="l1 must be a finite number >= 0"):
        _one_epoch(-1.0)


@pytest.mark.parametrize("exempt", [True, False])
def test_job_l1_follows_no_decay_bias_norm(exempt):
    import distnn.distributed as dist
    from distnn.train.job import Job

    def build(comm):
        job = Job("xor", ["optimizer.l1=0.01", f"optimizer.no_decay_bias_norm={str(exempt).lower()}",
                          "train.epochs=1"], comm, quiet=True)
        return job.model, job.trainer

    model, trainer = dist.simulate(1, build)[0]
    assert trainer.l1 == 0.01
    expected = split_decay_parameters(model)[0] if exempt else list(model.parameters())
    assert [id(p) for p in trainer.l1_params] == [id(p) for p in expected]
