"""``[train.grad_scaler]``: the loss scaler's settings of ``train.precision = "16-mixed"`` through ``distnn train``.

Oracle: torch.autocast("cpu", float16) + torch.amp.GradScaler with the same settings on the same weights and
batches gives the same scale after every step (its overflow skips, backoffs and growths). Then the checks of
the values, the warning under precision "32", the record in config.toml, the resume (the checkpoint's scaler
goes on), and the non-finite policy's message under "16-mixed" (only a loss reaches it there).
"""
import numpy as np
import pytest

from distnn.cli import main
from distnn.train import checkpoint as ck

from torch_twins import torch_mlp_like

N, B, STEPS = 48, 16, 12  # 3 steps an epoch, 4 epochs, no shuffling: step k trains on batch (k - 1) % 3


def _npz(tmp_path, rng):
    """A dataset with its own train/val/test splits (used as given: no standardization); inputs of ~100 make
    the float16 weight gradients overflow once the scale reaches a few thousand, within the run."""
    path = tmp_path / "d.npz"
    x = (rng.standard_normal((N, 6)) * 100).astype(np.float32)
    np.savez(path, x_train=x, y_train=rng.integers(0, 3, N), x_val=x[:8], y_val=rng.integers(0, 3, 8),
             x_test=x[:8], y_test=rng.integers(0, 3, 8))
    return path, x


def _train(tmp_path, path, *sets):
    out, config = tmp_path / "run", tmp_path / "c.toml"
    # lr 1e-30: the weights stay the initial ones (to float32's resolution), so torch replays the run from
    # model.npz; the gradients, their overflows and the scale are the run's own
    config.write_text(f'[data]\nname = "npz"\npath = "{path}"\nstandardize = "none"\nshuffle = false\n'
                      f'batch_size = {B}\n[model]\nhidden_sizes = [16]\n'
                      f'[optimizer]\nname = "sgd"\nlr = 1e-30\n[train]\nepochs = {STEPS * B // N}\n'
                      f'precision = "16-mixed"\n[checkpoint]\nevery_steps = 1\nkeep_last = 0\n'
                      f'keep_best = false\n[run]\nplots = false\n')
    args = ["train", "--config", str(config), "--quiet", "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return out


def _scales(out):
    """The scaler's state in the checkpoint of every step: the scale after that step and the growth count."""
    states = []
    for step in range(1, STEPS + 1):
        _, state, _ = ck.resolve_and_load(str(out / "checkpoints" / ck.step_name(step)), None)
        states.append(state["grad_scaler"])
    return states


def test_cli_scaler_settings_give_torchs_scale_trajectory(torch, tmp_path, rng):
    path, x = _npz(tmp_path, rng)
    out = _train(tmp_path, path, "train.grad_scaler.init_scale=8", "train.grad_scaler.growth_interval=1",
                 "train.grad_scaler.backoff_factor=0.25")
    y = np.load(path)["y_train"]
    import distnn

    with np.load(out / "model.npz") as z:
        model = distnn.nn.Sequential(distnn.nn.Linear(6, 16), distnn.nn.ReLU(), distnn.nn.Linear(16, 3))
        model.load_state_dict({k: z[k] for k in z.files})
    net = torch_mlp_like(torch, model)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=1, backoff_factor=0.25)
    opt, expected = torch.optim.SGD(net.parameters(), lr=0.0), []
    for step in range(STEPS):
        s = (step % (N // B)) * B
        net.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x[s:s + B])),
                                                     torch.from_numpy(y[s:s + B]))
        scaler.scale(loss).backward()
        scaler.step(opt)  # (lr 0: the weights stay model.npz's, as the run's did)
        scaler.update()
        expected.append(scaler.get_scale())
    got = _scales(out)
    assert [g["scale"] for g in got] == expected
    # the settings were used: growth every clean step from 8, a quarter after an overflow, and both happened
    assert expected[0] == 16.0 and any(b == a * 0.25 for a, b in zip(expected, expected[1:]))
    assert all(g["growth_interval"] == 1 and g["backoff_factor"] == 0.25 for g in got)
    assert "[train.grad_scaler]\ninit_scale = 8.0\ngrowth_factor = 2.0\nbackoff_factor = 0.25\ngrowth_interval = 1" \
        in (out / "config.toml").read_text()


def test_defaults_are_torchs():
    from distnn.amp import GradScaler
    from distnn.train.config import load_config

    cfg = load_config("xor").train.grad_scaler
    s = GradScaler("cpu")
    assert (cfg.init_scale, cfg.growth_factor, cfg.backoff_factor, cfg.growth_interval) == (
        s.get_scale(), s.get_growth_factor(), s.get_backoff_factor(), s.get_growth_interval()) == (65536.0, 2.0, 0.5,
                                                                                                  2000)


@pytest.mark.parametrize("setting,message", [
    ("growth_factor=1", "train.grad_scaler.growth_factor must be > 1, got 1"),
    ("growth_factor=0.5", "train.grad_scaler.growth_factor must be > 1, got 0.5"),
    ("backoff_factor=1", "train.grad_scaler.backoff_factor must be in (0, 1), got 1"),
    ("backoff_factor=0", "train.grad_scaler.backoff_factor must be in (0, 1), got 0"),
    ("growth_interval=0", "train.grad_scaler.growth_interval must be >= 1, got 0"),
    ("growth_interval=2.5", "train.grad_scaler.growth_interval must be an integer, got 2.5"),
    ("init_scale=0", "train.grad_scaler.init_scale must be > 0, got 0"),
    ("init_scale=inf", "train.grad_scaler.init_scale must be a finite number > 0, got inf"),
    ("init_scale=nan", "train.grad_scaler.init_scale must be a finite number > 0, got nan"),
    ("scale=2", "unknown key 'train.grad_scaler.scale'"),  # (the state, not a setting)
])
def test_bad_values_are_refused(tmp_path, capsys, setting, message):
    assert main(["train", "--config", "xor", "--set", "train.precision=16-mixed", "--set",
                 f"train.grad_scaler.{setting}", "--out", str(tmp_path / "b")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_unused_with_precision_32_warns(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nname = "xor"\n[train]\nepochs = 1\n[train.grad_scaler]\ngrowth_interval = 5\n')
    with pytest.warns(UserWarning, match=r"train.grad_scaler.growth_interval = 5 has no effect with "
                                         r"train.precision = '32' \(no loss scaling\); it takes effect with "
                                         r"train.precision = '16-mixed'"):
        assert main(["train", "--config", str(path), "--set", "run.plots=false", "--quiet",
                     "--out", str(tmp_path / "r")]) == 0


def test_config_keys_lists_them(capsys):
    assert main(["config-keys", "train.grad_scaler"]) == 0
    text = capsys.readouterr().out
    for key, default in (("init_scale", "65536.0"), ("growth_factor", "2.0"), ("backoff_factor", "0.5"),
                         ("growth_interval", "2000")):
        assert any(line.split()[:3] == [f"train.grad_scaler.{key}", line.split()[1], default]
                   for line in text.splitlines() if line.strip()), (key, text)


def test_resume_goes_on_with_the_checkpoints_scaler(tmp_path, rng, caplog):
    # the checkpoint's scaler state (scale, growth count, settings) wins over a changed setting, as the
    # optimizer's hyperparameters do, and the resume's warning names the change
    path, _ = _npz(tmp_path, rng)
    out = _train(tmp_path, path, "train.grad_scaler.init_scale=8", "train.grad_scaler.growth_interval=2")
    full = _scales(out)
    resumed = tmp_path / "resumed"
    with caplog.at_level("WARNING"):
        assert main(["train", "--resume", str(out / "checkpoints" / ck.step_name(5)), "--set",
                     "train.grad_scaler.growth_interval=7", "--quiet", "--out", str(resumed)]) == 0
    assert "train.grad_scaler.growth_interval: 2 -> 7" in caplog.text and "the loss scaler's" in caplog.text
    for step in range(6, STEPS + 1):
        _, state, _ = ck.resolve_and_load(str(resumed / "checkpoints" / ck.step_name(step)), None)
        assert state["grad_scaler"] == full[step - 1], step


# ------------------------------------------------------------------ the non-finite policy's message
def _nonfinite_error(tmp_path, capsys, monkeypatch, precision, variable):
    monkeypatch.setenv(variable, "0:2")
    assert main(["train", "--config", "xor", "--set", f"train.precision={precision}", "--set", "train.epochs=3",
                 "--set", "train.nonfinite=error", "--set", "run.plots=false", "--quiet",
                 "--out", str(tmp_path / precision)]) != 0
    return capsys.readouterr().err


def test_nonfinite_error_under_16_mixed_names_the_loss(tmp_path, capsys, monkeypatch):
    err = _nonfinite_error(tmp_path, capsys, monkeypatch, "16-mixed", "DISTNN_FAULT_NONFINITE_LOSS_AT")
    assert "non-finite loss at step 2 (epoch 2, batch 1) on rank(s) [0]" in err and "gradients" not in err


def test_nonfinite_error_under_32_keeps_its_wording(tmp_path, capsys, monkeypatch):
    err = _nonfinite_error(tmp_path, capsys, monkeypatch, "32", "DISTNN_FAULT_NONFINITE_AT")
    assert "non-finite loss or gradients at step 2 (epoch 2, batch 1)" in err
