"""``train.precision`` / ``Trainer(precision=...)``: PyTorch Lightning's "16-mixed" (float16 autocast, loss
scaling) in the trainer and ``distnn train``.

Oracles: a hand-written torch.autocast("cpu", float16) + torch.amp.GradScaler("cpu") loop (the same losses,
weights and scale trajectory, overflow skips included); 2 simulated ranks == 1 process; a resumed run ==
the uninterrupted one, bit for bit. Then the non-finite policy beside the scaler, checkpoints across
precisions, the CLI and the refusals. The mpiexec test is in ``test_train_precision_mpi.py``.
"""
import json

import numpy as np
import pytest

import distnn
from distnn.amp import GradScaler
from distnn.cli import main
from distnn.data import Dataset, build_transforms, load_dataset
from distnn.distributed import LocalCommunicator, simulate
from distnn.models import build_model
from distnn.optim import SGD, Adam
from distnn.train import checkpoint as ck
from distnn.train.callbacks.base import Callback
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.trainer import Trainer

from checkpoint_runs import assert_bitwise, final_state
from torch_twins import torch_mlp_like

# (tests that wire a trainer with attach() themselves: its SIGTERM/SIGUSR1 handler put back after each)
pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


class _Record(Callback):
    """Each step's loss and the scale after it."""

    def __init__(self):
        self.losses, self.scales = [], []

    def on_batch_end(self, trainer, logs):
        self.losses.append(logs["loss"])
        self.scales.append(trainer.amp.scaler.get_scale())


def _mlp(sizes, seed=0):
    distnn.manual_seed(seed)
    return build_model("mlp", sizes=sizes)


# ------------------------------------------------------------------ the trainer against a PyTorch AMP loop
@pytest.mark.parametrize("accumulation", [1, 2])
def test_16_mixed_matches_torch_autocast_and_grad_scaler(torch, rng, accumulation):
    n, B, lr, clip = 96, 16, 0.05, 0.5
    data = Dataset(rng.standard_normal((n, 10)).astype(np.float32), rng.integers(0, 4, n), 4)
    model = _mlp([10, 32, 4])
    net = torch_mlp_like(torch, model)
    # 2**24: the first steps' float16 gradients overflow (skipped, the scale halves), then a clean step every
    # growth_interval grows it again
    scaler_kw = dict(init_scale=2.0 ** 24, growth_interval=3)
    rec = _Record()
    t = Trainer(model, SGD(model.parameters(), lr=lr, momentum=0.9), data, comm=LocalCommunicator(), batch_size=B,
                epochs=2, shuffle=False, clip_grad_norm=clip, accumulation_steps=accumulation, callbacks=[rec],
                precision="16-mixed", grad_scaler=GradScaler("cpu", **scaler_kw))
    t.fit()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", **scaler_kw)
    losses, scales, skipped = [], [], 0
    for _ in range(2):
        for s in range(0, n, B):
            x, y = torch.from_numpy(data.x[s:s + B]), torch.from_numpy(data.y[s:s + B])
            opt.zero_grad()
            # the trainer's micro-batches: each one's summed loss, scaled, back-propagated with 1/B (a float16
            # gradient summed over 8 rows, not 16, overflows at other scales: the same split on both sides)
            m, loss = B // accumulation, 0.0
            for i in range(accumulation):
                with torch.autocast("cpu", dtype=torch.float16):
                    part = torch.nn.functional.cross_entropy(net(x[i * m:(i + 1) * m]), y[i * m:(i + 1) * m],
                                                             reduction="sum")
                scaler.scale(part).backward(torch.tensor(1.0 / B))
                loss = loss + part.detach() / B
            scaler.unscale_(opt)  # the true gradients are clipped
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            before = scaler.get_scale()
            scaler.step(opt)
            scaler.update()
            skipped += scaler.get_scale() < before
            losses.append(loss.item())
            scales.append(scaler.get_scale())
    assert rec.scales == scales  # the same overflow skips, backoffs and growths
    assert t.state.scaler_skipped_steps == skipped >= 2 and t.state.skipped_steps == 0
    assert max(scales) > min(scales[skipped:])  # it grew again after the skips
    np.testing.assert_allclose(rec.losses, losses, rtol=0, atol=5e-4)  # (measured: 8.5e-5)
    for k, v in net.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=0, atol=5e-4, err_msg=k)  # (3.8e-5)
    # the same run with precision "32" ends far from both (no skips, no float16)
    plain = _mlp([10, 32, 4])
    Trainer(plain, SGD(plain.parameters(), lr=lr, momentum=0.9), data, comm=LocalCommunicator(), batch_size=B,
            epochs=2, shuffle=False, clip_grad_norm=clip, accumulation_steps=accumulation).fit()
    assert max(np.abs(plain.state_dict()[k] - model.state_dict()[k]).max() for k in plain.state_dict()) > 1e-2


def test_16_mixed_with_a_disabled_scaler_is_torchs_autocast_without_scaling(torch, rng):
    """``GradScaler(enabled=False)``: autocast alone, as torch's disabled scaler (scale, unscale and checks are
    no-ops; the step just steps). It used to fail at the first step (AttributeError in the trainer)."""
    n, B, lr = 64, 16, 0.05
    data = Dataset(rng.standard_normal((n, 10)).astype(np.float32), rng.integers(0, 4, n), 4)
    model = _mlp([10, 32, 4])
    net = torch_mlp_like(torch, model)
    t = Trainer(model, SGD(model.parameters(), lr=lr), data, comm=LocalCommunicator(), batch_size=B, epochs=2,
                shuffle=False, precision="16-mixed", grad_scaler=GradScaler("cpu", enabled=False))
    t.fit()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    for _ in range(2):
        for s in range(0, n, B):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.float16):
                loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(data.x[s:s + B])),
                                                         torch.from_numpy(data.y[s:s + B]))
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    for k, v in net.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=0, atol=5e-4, err_msg=k)
    assert t.state.scaler_skipped_steps == 0 and t.amp.state_dict() == {}


def test_with_a_disabled_scaler_the_policy_checks_the_gradients(digits, monkeypatch):
    # nobody else looks at them: a NaN gradient on one rank is the train.nonfinite policy's, as with "32"
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "1:4")

    def run(comm):
        splits, (aug_tf, eval_tf), _ = digits
        distnn.manual_seed(0)
        model = build_model("mlp", hidden_sizes=[32], input_shape=splits.input_shape, num_classes=10)
        t = Trainer(model, SGD(model.parameters(), lr=0.01), splits.train.subset(np.arange(192)), comm=comm,
                    batch_size=48, epochs=1, precision="16-mixed", grad_scaler=GradScaler("cpu", enabled=False))
        attach(t, "unused", {"enabled": False}, nonfinite="skip")
        t.fit()
        return t.state.skipped_steps, t.state.scaler_skipped_steps, t.step_guard.last_bad_ranks, \
            all(np.isfinite(v).all() for v in t.model.state_dict().values())

    assert simulate(2, run) == [(1, 0, [1], True)] * 2


# ------------------------------------------------------------------ ranks, resume, the non-finite policy
@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    return splits, build_transforms(splits, {"noise": 0.1}), build_transforms(splits)


def _trainer(comm, digits, epochs=2, precision="16-mixed", init_scale=2.0 ** 20, accumulation_steps=1, **kw):
    """Dropout, augmentation, Adam; an init_scale that overflows the first steps, growth every 3 clean steps."""
    splits, (aug_tf, eval_tf), _ = digits
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[32], dropout=0.2, input_shape=splits.input_shape, num_classes=10)
    scaler = GradScaler("cpu", init_scale=init_scale, growth_interval=3) if precision == "16-mixed" else None
    return Trainer(model, Adam(model.parameters(), lr=3e-3), splits.train.subset(np.arange(192)), splits.val,
                   comm=comm, batch_size=48, epochs=epochs, transform=aug_tf, eval_transform=eval_tf, seed=3,
                   accumulation_steps=accumulation_steps, precision=precision, grad_scaler=scaler, **kw)


def _fit(comm, digits, **kw):
    t = _trainer(comm, digits, **kw)
    t.fit()
    scale = t.amp.scaler.get_scale() if t.amp.scaler is not None else None
    return t.model.state_dict(), scale, t.state.scaler_skipped_steps, t.history


def test_two_simulated_ranks_match_one_process(digits):
    one = _fit(LocalCommunicator(), digits)
    two = simulate(2, lambda c: _fit(c, digits, accumulation_steps=2))
    assert one[2] >= 2 and two[0][1:3] == two[1][1:3] == one[1:3]  # the same skips and scale on every rank
    for k in one[0]:
        np.testing.assert_array_equal(two[0][0][k], two[1][0][k], err_msg=k)  # replicas: bit for bit
        np.testing.assert_allclose(two[0][0][k], one[0][k], rtol=0, atol=1e-4, err_msg=k)  # and the 1-rank run
    plain = _fit(LocalCommunicator(), digits, precision="32")[0]
    assert max(np.abs(plain[k] - one[0][k]).max() for k in one[0]) > 1e-2  # the feature changes the run


def test_exact_resume_with_16_mixed(digits, tmp_path):
    full = _trainer(LocalCommunicator(), digits)
    attach(full, str(tmp_path / "a"), {"dir": str(tmp_path / "a"), "every_steps": 1, "keep_last": 0})
    full.fit()
    assert full.state.scaler_skipped_steps >= 2
    for step in (2, 5):  # in the overflow streak; mid-way to a growth, in epoch 2
        resumed = _trainer(LocalCommunicator(), digits)
        attach(resumed, str(tmp_path / f"b{step}"), {"dir": str(tmp_path / f"b{step}")},
               resume_spec=str(tmp_path / "a" / ck.step_name(step)))
        resumed.fit()
        assert_bitwise(final_state(full), final_state(resumed))
        assert resumed.amp.scaler.state_dict() == full.amp.scaler.state_dict()
        assert resumed.state.scaler_skipped_steps == full.state.scaler_skipped_steps


@pytest.mark.parametrize("saved,resumed", [(2, 1), (1, 2)])
def test_resume_on_another_world_size_carries_the_scaler(digits, tmp_path, saved, resumed):
    # the scale and the growth count at the resume point are the uninterrupted run's (taken live, after each
    # step), and the first step after it scales the same: another world size changes only the summation order
    class States(Callback):
        def __init__(self):
            self.seen = {}

        def on_batch_end(self, trainer, logs):
            self.seen[trainer.state.global_step] = trainer.amp.scaler.state_dict()

    def world(n, fn):
        return fn(LocalCommunicator()) if n == 1 else simulate(n, fn)[0]

    def full_run(comm):
        rec = States()
        t = _trainer(comm, digits, init_scale=2.0 ** 12, callbacks=[rec])
        attach(t, str(tmp_path / "a"), {"dir": str(tmp_path / "a"), "every_steps": 1, "keep_last": 0})
        t.fit()
        return rec.seen

    def resumed_run(comm, step):
        rec = States()
        t = _trainer(comm, digits, init_scale=2.0 ** 12, callbacks=[rec])
        attach(t, str(tmp_path / f"b{step}"), {"dir": str(tmp_path / f"b{step}")},
               resume_spec=str(tmp_path / "a" / ck.step_name(step)))
        at_resume = t.amp.scaler.state_dict()
        t.fit()
        return at_resume, rec.seen

    full = world(saved, full_run)
    # a step mid-way to a growth (growth_interval 3), and one after a grown or backed-off scale
    steps = [s for s in sorted(full)[:-1] if full[s]["_growth_tracker"] == 2][:1] + [
        s for s in sorted(full)[1:-1] if full[s]["scale"] != full[s - 1]["scale"]][:1]
    assert len(steps) == 2 and len({full[s]["scale"] for s in full}) > 2  # the scale moved during the run
    for step in steps:
        at_resume, seen = world(resumed, lambda c: resumed_run(c, step))
        assert at_resume == full[step], step
        assert seen[step + 1] == full[step + 1], step


def test_checkpoints_across_precisions(digits, tmp_path, caplog):
    # "32" (or an older distnn: no grad_scaler key) resumed with "16-mixed": the scaler starts afresh
    t32 = _trainer(LocalCommunicator(), digits, precision="32")
    attach(t32, str(tmp_path / "a"), {"dir": str(tmp_path / "a"), "every_steps": 2, "keep_last": 0})
    t32.fit()
    assert "grad_scaler" not in t32.state_dict()
    t16 = _trainer(LocalCommunicator(), digits, init_scale=2.0 ** 10)
    attach(t16, str(tmp_path / "b"), {"dir": str(tmp_path / "b"), "every_steps": 2, "keep_last": 0},
           resume_spec=str(tmp_path / "a" / ck.step_name(4)))
    assert t16.amp.scaler.get_scale() == 2.0 ** 10 and t16.state.global_step == 4
    t16.fit()
    assert t16.state.global_step == 8 and t16.state_dict()["grad_scaler"]["scale"] == t16.amp.scaler.get_scale()
    # "16-mixed" resumed with "32": the scaler's state is dropped (said in the log), training goes on in float32
    back = _trainer(LocalCommunicator(), digits, precision="32")
    with caplog.at_level("WARNING"):
        attach(back, str(tmp_path / "c"), {"dir": str(tmp_path / "c")},
               resume_spec=str(tmp_path / "b" / ck.step_name(6)))
    assert "written with precision '16-mixed'" in caplog.text and "dropped" in caplog.text
    back.fit()
    assert back.state.global_step == 8 and all(np.isfinite(v).all() for v in back.model.state_dict().values())


def test_overflow_skips_are_not_the_nonfinite_policys(digits, monkeypatch):
    # nonfinite = "error" stops at the first non-finite step of a float32 run; the scaler's skips do not count
    t = _trainer(LocalCommunicator(), digits, epochs=1)
    attach(t, "unused", {"enabled": False}, nonfinite="error")
    t.fit()
    assert t.state.scaler_skipped_steps >= 2 and t.state.skipped_steps == 0
    # a NaN gradient on one rank (the fault switch): both ranks' scalers skip it, the policy does not
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "1:4")

    def run(comm, **kw):
        t = _trainer(comm, digits, epochs=1, init_scale=2.0 ** 8)
        attach(t, "unused", {"enabled": False}, nonfinite="error")
        t.fit()
        return t.state.skipped_steps, t.state.scaler_skipped_steps, t.amp.scaler.get_scale(), t.model.state_dict()

    res = simulate(2, run)
    # (steps 1-3 are clean and grow the scale to 2**9, step 4's NaN halves it back)
    assert res[0][:3] == res[1][:3] == (0, 1, 2.0 ** 8)
    for k in res[0][3]:
        np.testing.assert_array_equal(res[0][3][k], res[1][3][k])
    monkeypatch.delenv("DISTNN_FAULT_NONFINITE_AT")
    # a non-finite LOSS is still the policy's: skipped and counted as before (or an error)
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_LOSS_AT", "1:3")

    def run_loss(comm, policy):
        t = _trainer(comm, digits, epochs=1, init_scale=2.0 ** 8)
        attach(t, "unused", {"enabled": False}, nonfinite=policy)
        t.fit()
        return t.state.skipped_steps, t.state.scaler_skipped_steps, t.step_guard.last_bad_ranks

    assert simulate(2, run_loss, "skip") == [(1, 0, [1])] * 2
    from distnn.train.step_guard import NonFiniteError

    with pytest.raises(NonFiniteError, match=r"step 3 \(epoch 1, batch 3\) on rank\(s\) \[1\]"):
        simulate(2, run_loss, "error")


# ------------------------------------------------------------------ the CLI and the refusals
def test_cli_trains_with_16_mixed_and_records_it(tmp_path, monkeypatch):
    from distnn.train import mixed_precision

    entered = []
    autocast = mixed_precision.MixedPrecision.autocast
    monkeypatch.setattr(mixed_precision.MixedPrecision, "autocast", lambda self: entered.append(self.precision)
                        or autocast(self))
    out = tmp_path / "run"
    assert main(["train", "--config", "digits_mlp", "--set", "train.epochs=1", "--set", "train.precision=16-mixed",
                 "--set", "run.plots=false", "--quiet", "--out", str(out)]) == 0
    assert entered and set(entered) == {"16-mixed"}
    assert 'precision = "16-mixed"' in (out / "config.toml").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["precision"] == "16-mixed" and summary["loss_scale"] > 0 and "scaler_skipped_steps" in summary
    # resumed (more epochs) from its checkpoint: the scaler goes on from the saved scale
    assert main(["train", "--resume", "auto", "--out", str(out), "--set", "train.epochs=2", "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs_run"] == 2


def test_cli_default_is_32(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--config", "xor", "--set", "train.epochs=1", "--set", "run.plots=false", "--quiet",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["precision"] == "32" and "loss_scale" not in summary


@pytest.mark.parametrize("value,message", [
    ("bf16-mixed", "train.precision must be one of '32', '16-mixed'; got 'bf16-mixed' (numpy and cupy have no "
                   "bfloat16"),
    ("16", "train.precision must be one of '32', '16-mixed'; got '16' (distnn keeps float32 master weights; use "
           "'16-mixed'"),
    ("64-true", "run.dtype = 'float64' with precision '32'"),
    ("fp16", "train.precision must be one of '32', '16-mixed'; got 'fp16'"),
])
def test_config_refuses_bad_precisions(tmp_path, capsys, value, message):
    assert main(["train", "--config", "xor", "--set", f"train.precision={value}", "--out", str(tmp_path / "b")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_config_file_refuses_a_number(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nname = "xor"\n[train]\nprecision = 16\n')
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "b")]) == 2
    assert "train.precision must be a string, got 16" in capsys.readouterr().err


def test_config_refuses_16_mixed_with_float64(tmp_path, capsys):
    assert main(["train", "--config", "xor", "--set", "train.precision=16-mixed", "--set", "run.dtype=float64",
                 "--out", str(tmp_path / "b")]) == 2
    assert "train.precision = '16-mixed' trains float32 master weights" in capsys.readouterr().err


def test_trainer_refuses_bad_precisions(rng):
    data = Dataset(rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 2, 8), 2)
    model = _mlp([4, 2])
    for kw, match in (({"precision": "bf16-mixed"}, r"precision \(train.precision\) must be one of '32', '16-mixed'; "
                                                    r"got 'bf16-mixed' \(numpy and cupy have no bfloat16"),
                      ({"precision": 16}, "must be one of '32', '16-mixed'; got 16"),
                      ({"precision": "32", "grad_scaler": GradScaler("cpu")}, "grad_scaler is for precision "
                                                                              "'16-mixed'")):
        with pytest.raises(ValueError, match=match):
            Trainer(model, SGD(model.parameters(), lr=0.1), data, comm=LocalCommunicator(), **kw)
    wide = _mlp([4, 2]).to(np.float64)
    with pytest.raises(ValueError, match="these parameters are float64"):
        Trainer(wide, SGD(wide.parameters(), lr=0.1), data, comm=LocalCommunicator(), precision="16-mixed")
