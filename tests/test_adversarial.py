"""Adversarial training (FGSM, Goodfellow et al.): distnn.train.adversarial.fgsm and the Trainer's objective,
against PyTorch, on simulated ranks, across a resume, and in the config.

The mpiexec case is in test_adversarial_mpi.py.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn.cli import main
from distnn.data import Dataset, build_transforms, load_dataset
from distnn.distributed import DataParallel, LocalCommunicator, simulate
from distnn.models import build_model
from distnn.optim import SGD, Adam
from distnn.train import checkpoint as ck
from distnn.train.adversarial import fgsm
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.trainer import Trainer

from checkpoint_runs import assert_bitwise, final_state
from torch_twins import torch_mlp_like

# (tests that wire a trainer with attach() themselves: its SIGTERM/SIGUSR1 handler put back after each)
pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def _mlp(sizes, dtype=np.float32, seed=0):
    distnn.manual_seed(seed)
    model = build_model("mlp", sizes=sizes)
    return model.to(dtype) if dtype != np.float32 else model


def _torch_fgsm(torch, net, x, y, eps, reduction="mean"):
    xt = torch.from_numpy(x.copy()).requires_grad_()
    torch.nn.functional.cross_entropy(net(xt), torch.from_numpy(y), reduction=reduction).backward()
    return (xt + eps * xt.grad.sign()).detach()


# ------------------------------------------------------------------ fgsm
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fgsm_matches_torch(torch, rng, dtype):
    model = _mlp([10, 16, 4], dtype)
    x = rng.standard_normal((12, 10)).astype(dtype)
    y = rng.integers(0, 4, 12)
    adv = fgsm(model, F.cross_entropy, x, y, 0.05)
    want = _torch_fgsm(torch, torch_mlp_like(torch, model), x, y, 0.05).numpy()
    assert adv.dtype == dtype and adv.shape == x.shape
    np.testing.assert_allclose(adv, want, rtol=0, atol=1e-6)
    assert np.abs(adv - x).max() == pytest.approx(0.05, rel=1e-6)  # every component moved by eps (no zero grads)
    clamped = fgsm(model, F.cross_entropy, x, y, 0.05, clamp=(-0.5, 0.5))
    np.testing.assert_allclose(clamped, np.clip(want, -0.5, 0.5), rtol=0, atol=1e-6)
    t = fgsm(model, F.cross_entropy, distnn.Tensor(x), y, 0.05)  # a Tensor in, a Tensor out
    assert isinstance(t, distnn.Tensor) and not t.requires_grad
    np.testing.assert_array_equal(t.data, adv)


def test_fgsm_leaves_parameter_gradients_and_flags_alone(rng):
    model = _mlp([6, 8, 3])
    x, y = rng.standard_normal((5, 6)).astype(np.float32), rng.integers(0, 3, 5)
    params = list(model.parameters())
    before = [None] + [np.full(p.data.shape, 7.0, p.data.dtype) for p in params[1:]]  # one None, the rest set
    for p, g in zip(params, before):
        p.grad = g
    held = [p.grad for p in params]
    fgsm(model, F.cross_entropy, x, y, 0.1)
    for p, g, h in zip(params, before, held):
        assert p.grad is h and p.requires_grad  # no accumulation, no replaced array, flags restored
        if g is not None:
            np.testing.assert_array_equal(p.grad, 7.0)


def test_fgsm_starts_no_gradient_exchange(rng):
    x, y = rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 3, 8)

    def rank(comm):
        ddp = DataParallel(_mlp([6, 8, 3]), comm)
        adv = fgsm(ddp, F.cross_entropy, x[comm.rank::2], y[comm.rank::2], 0.1)  # the wrapper is unwrapped
        assert ddp.num_syncs == 0 and ddp._forward_samples is None
        assert all(p.grad is None for p in ddp.parameters())
        F.cross_entropy(ddp(distnn.Tensor(adv)), y[comm.rank::2]).backward()  # a normal step still syncs
        return ddp.num_syncs

    assert simulate(2, rank) == [1, 1]


def test_fgsm_errors(rng):
    model = _mlp([4, 3])
    x, y = rng.standard_normal((2, 4)).astype(np.float32), np.array([0, 1])
    with pytest.raises(ValueError, match="eps"):
        fgsm(model, F.cross_entropy, x, y, -0.1)
    with pytest.raises(TypeError, match="floating-point inputs"):
        fgsm(model, F.cross_entropy, np.zeros((2, 4), dtype=np.int64), y, 0.1)
    assert all(p.requires_grad for p in model.parameters())


# ------------------------------------------------------------------ the trainer against a PyTorch loop
def _data(rng, n=48, d=10, k=4):
    return Dataset(rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, k, n), k)


@pytest.mark.parametrize("accumulation", [1, 2])
def test_trainer_steps_match_a_hand_written_torch_loop(torch, rng, accumulation):
    data, eps, w, lr = _data(rng), 0.1, 0.3, 0.2
    model = _mlp([10, 16, 4])
    net = torch_mlp_like(torch, model)
    Trainer(model, SGD(model.parameters(), lr=lr), data, comm=LocalCommunicator(), batch_size=16, epochs=1,
            shuffle=False, accumulation_steps=accumulation, adversarial_eps=eps, adversarial_weight=w).fit()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for s in range(0, 48, 16):
        x, y = data.x[s:s + 16], data.y[s:s + 16]
        x_adv = _torch_fgsm(torch, net, x, y, eps, reduction="sum")
        opt.zero_grad()
        yt = torch.from_numpy(y)
        loss = (w * torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), yt)
                + (1 - w) * torch.nn.functional.cross_entropy(net(x_adv), yt))
        loss.backward()
        opt.step()
    for k, v in net.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=0, atol=1e-5, err_msg=k)
    plain = _mlp([10, 16, 4])
    Trainer(plain, SGD(plain.parameters(), lr=lr), data, comm=LocalCommunicator(), batch_size=16, epochs=1,
            shuffle=False).fit()
    assert np.abs(plain.state_dict()["0.weight"] - model.state_dict()["0.weight"]).max() > 1e-3  # it did something


# ------------------------------------------------------------------ ranks and resume
@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    return splits, build_transforms(splits, {"noise": 0.1}), build_transforms(splits)


def _trainer(comm, digits, eps=0.05, epochs=1, accumulation_steps=1):
    """Dropout, augmentation, Adam: every random draw of a step meets the adversarial pass."""
    splits, (aug_tf, eval_tf), _ = digits
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[32], dropout=0.2, input_shape=splits.input_shape, num_classes=10)
    return Trainer(model, Adam(model.parameters(), lr=3e-3), splits.train.subset(np.arange(192)), splits.val,
                   comm=comm, batch_size=48, epochs=epochs, transform=aug_tf, eval_transform=eval_tf, seed=3,
                   accumulation_steps=accumulation_steps, adversarial_eps=eps)


def _fit_state(comm, digits, **kw):
    t = _trainer(comm, digits, **kw)
    t.fit()
    return t.model.state_dict()


def test_two_simulated_ranks_match_one_process(digits):
    one = _fit_state(LocalCommunicator(), digits)
    two = simulate(2, lambda c: _fit_state(c, digits, accumulation_steps=2))
    for k in one:
        np.testing.assert_array_equal(two[0][k], two[1][k], err_msg=k)  # replicas: bit for bit
        np.testing.assert_allclose(two[0][k], one[k], rtol=0, atol=1e-6, err_msg=k)  # and the 1-rank run
    off = _fit_state(LocalCommunicator(), digits, eps=0.0)
    assert max(np.abs(off[k] - one[k]).max() for k in one) > 1e-3  # the feature changes the run


def test_exact_resume_with_adversarial_training(digits, tmp_path):
    full = _trainer(LocalCommunicator(), digits, epochs=2)
    attach(full, str(tmp_path / "a"), {"dir": str(tmp_path / "a"), "every_steps": 1, "keep_last": 0})
    full.fit()
    resumed = _trainer(LocalCommunicator(), digits, epochs=2)
    attach(resumed, str(tmp_path / "b"), {"dir": str(tmp_path / "b")},
           resume_spec=str(tmp_path / "a" / ck.step_name(7)))
    resumed.fit()
    assert_bitwise(final_state(full), final_state(resumed))


# ------------------------------------------------------------------ config
@pytest.mark.parametrize("key,value,message", [
    ("train.adversarial_eps", "-0.1", "train.adversarial_eps must be >= 0"),
    ("train.adversarial_weight", "1.5", "train.adversarial_weight must be in [0, 1], got 1.5"),
    ("train.adversarial_weight", "-0.5", "train.adversarial_weight must be in [0, 1], got -0.5"),
])
def test_config_keys_are_validated(tmp_path, capsys, key, value, message):
    assert main(["train", "--config", "xor", "--set", f"{key}={value}", "--out", str(tmp_path / "bad")]) == 2
    assert message in capsys.readouterr().err


def test_trainer_refuses_bad_values(rng):
    model = _mlp([10, 4])
    for kw, match in (({"adversarial_eps": float("nan")}, "adversarial_eps"),
                      ({"adversarial_eps": 0.1, "adversarial_weight": 2.0}, "adversarial_weight")):
        with pytest.raises(ValueError, match=match):
            Trainer(model, SGD(model.parameters(), lr=0.1), _data(rng), comm=LocalCommunicator(), **kw)
    tokens = Dataset(np.zeros((8, 4), dtype=np.int64), np.zeros(8, dtype=np.int64), 4)
    with pytest.raises(ValueError, match="real-valued inputs; these training inputs are int64"):
        Trainer(model, SGD(model.parameters(), lr=0.1), tokens, comm=LocalCommunicator(), adversarial_eps=0.1)


def test_cli_run_trains_adversarially_and_records_the_keys(tmp_path, monkeypatch):
    from distnn.train import adversarial

    seen = []  # (eps, weight) the trainer got, and the eps of each fgsm call
    check, attack = adversarial.check_adversarial, adversarial.fgsm
    monkeypatch.setattr(adversarial, "check_adversarial", lambda *a: seen.append(a[:2]) or check(*a))
    monkeypatch.setattr(adversarial, "fgsm", lambda *a, **k: seen.append(a[4]) or attack(*a, **k))
    out = tmp_path / "run"
    assert main(["train", "--config", "digits_mlp", "--set", "train.epochs=1", "--set", "train.adversarial_eps=0.1",
                 "--set", "train.adversarial_weight=0.25", "--set", "run.plots=false", "--quiet",
                 "--out", str(out)]) == 0
    assert seen[0] == (0.1, 0.25) and seen[1:] and set(seen[1:]) == {0.1}
    text = (out / "config.toml").read_text()
    assert "adversarial_eps = 0.1" in text and "adversarial_weight = 0.25" in text
