"""``distnn train --resume`` without ``--config`` continues with the run's own saved config.

Before, it used the default config (digits_mlp): a digits_cnn run resumed that way built an MLP, warned
about dozens of config differences and failed listing some 60 state_dict keys. Now the run's config.toml
(``--resume auto --out RUN``) or the checkpoint's (``--resume PATH``) is the base, ``--set`` on top; an
explicit ``--config`` is used as before, and the error it may end in is short and names both models.

Every run goes through ``distnn.cli.main(argv)`` in-process. The CNN runs are cut short with
``train.max_steps`` (digits_cnn: 20 steps an epoch); its cosine schedule gets a fixed ``T_max`` so that
the run of 4 steps resumed to 8 follows the same schedule as the uninterrupted 8-step run (the oracle).
"""
import os
import shutil
import tomllib

import numpy as np
import pytest

from distnn.cli import main

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

# set in the first session only: a resume without --config must take them from the run's config.toml
CNN = ["--config", "digits_cnn", "--quiet", "--set", "run.plots=false", "--set", "schedule.T_max=60",
       "--set", "model.widths=[8, 16, 16]"]  # (narrower than digits_cnn's 32-64-128: faster)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A digits_cnn run cut at step 4 (its end-of-run checkpoint: checkpoint.save_last) and the
    uninterrupted 8-step run, made once; tests work on copies of the first."""
    root = tmp_path_factory.mktemp("cnn")
    assert main(["train", *CNN, "--set", "train.max_steps=4", "--out", str(root / "cut")]) == 0
    assert main(["train", *CNN, "--set", "train.max_steps=8", "--out", str(root / "oracle")]) == 0
    return root


def _copy(runs, tmp_path) -> str:
    run = str(tmp_path / "run")
    shutil.copytree(str(runs / "cut"), run)
    return run


def _config(run) -> dict:
    with open(os.path.join(run, "config.toml"), "rb") as f:
        return tomllib.load(f)


def _assert_same_model(a, b):
    with np.load(os.path.join(a, "model.npz")) as x, np.load(os.path.join(b, "model.npz")) as y:
        assert x.files == y.files
        for k in x.files:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def _last_error(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("distnn: error: ")]
    assert len(lines) == 1, lines
    return lines[0]


def test_resume_auto_without_config_continues_the_cnn_run_bitwise(runs, tmp_path, capsys):
    run = _copy(runs, tmp_path)
    capsys.readouterr()
    assert main(["train", "--out", run, "--resume", "auto", "--quiet", "--set", "train.max_steps=8"]) == 0
    err = capsys.readouterr().err
    assert f"resuming with the run's config {os.path.join(run, 'config.toml')}" in err
    assert "resumed from" in err and "model.hidden_sizes" not in err  # (no MLP-vs-ResNet differences listed)
    cfg = _config(run)
    assert cfg["name"] == "digits_cnn" and cfg["model"]["name"] == "resnet" and cfg["train"]["max_steps"] == 8
    _assert_same_model(run, str(runs / "oracle"))  # the uninterrupted 8-step run, bitwise


def test_resume_auto_names_the_run_by_run_name_without_out(runs, tmp_path, capsys):
    # --set run.run_name (and run.out_dir) name the run directory as --out does: its config is the base
    # (before, the default config: an MLP against the ResNet's checkpoint, exit 2)
    _copy(runs, tmp_path)  # tmp_path/run
    capsys.readouterr()
    assert main(["train", "--resume", "auto", "--quiet", "--set", f"run.out_dir={tmp_path}",
                 "--set", "run.run_name=run", "--set", "train.max_steps=8"]) == 0, capsys.readouterr().err
    assert f"resuming with the run's config {os.path.join(str(tmp_path), 'run', 'config.toml')}" in \
        capsys.readouterr().err
    _assert_same_model(str(tmp_path / "run"), str(runs / "oracle"))


def test_set_applies_on_top_of_the_saved_config(runs, tmp_path):
    run = _copy(runs, tmp_path)
    assert main(["train", "--out", run, "--resume", "auto", "--quiet", "--set", "train.max_steps=6",
                 "--set", "checkpoint.keep_last=1"]) == 0
    cfg = _config(run)
    assert cfg["model"]["name"] == "resnet" and cfg["model"]["widths"] == [8, 16, 16]  # the run's
    assert cfg["schedule"]["T_max"] == 60  # the first session's --set, kept by the saved config
    assert cfg["train"]["max_steps"] == 6 and cfg["checkpoint"]["keep_last"] == 1  # this --set
    assert [d for d in os.listdir(os.path.join(run, "checkpoints")) if d.startswith("step-")] == ["step-00000006"]


def test_resume_path_into_a_new_run_directory_uses_the_checkpoints_config(runs, tmp_path, capsys):
    checkpoint = str(runs / "cut" / "checkpoints" / "step-00000004")
    fork = str(tmp_path / "fork")
    capsys.readouterr()
    assert main(["train", "--out", fork, "--resume", checkpoint, "--quiet", "--set", "train.max_steps=8"]) == 0
    assert f"resuming with the run's config {os.path.join(checkpoint, 'config.toml')}" in capsys.readouterr().err
    assert _config(fork)["model"]["name"] == "resnet"
    _assert_same_model(fork, str(runs / "oracle"))
    # the run directory and its `latest` pointer give the same config (a checkpoint root, the newest's)
    from distnn.train.resume_config import saved_config_for_resume

    latest = str(runs / "cut" / "checkpoints" / "latest")
    assert saved_config_for_resume(latest, fork) == os.path.join(checkpoint, "config.toml")
    assert saved_config_for_resume(str(runs / "cut" / "checkpoints"), fork) == os.path.join(checkpoint, "config.toml")
    assert saved_config_for_resume(str(runs / "cut"), fork) == str(runs / "cut" / "config.toml")


def test_no_saved_config_means_the_default_as_before(tmp_path):
    from distnn.train.resume_config import saved_config_for_resume

    assert saved_config_for_resume("auto", str(tmp_path / "new")) is None  # a first --resume auto session
    assert saved_config_for_resume("auto", None) is None
    assert saved_config_for_resume(None, str(tmp_path)) is None  # not resuming
    assert saved_config_for_resume(str(tmp_path / "missing"), None) is None  # (the resume reports it)


def test_explicit_config_is_used_and_the_mismatch_error_is_short(runs, tmp_path, capsys):
    run = _copy(runs, tmp_path)
    capsys.readouterr()
    assert main(["train", "--config", "digits_mlp", "--out", run, "--resume", "auto", "--quiet"]) == 2
    captured = capsys.readouterr().err
    assert "resuming with the run's config" not in captured
    assert "with a config that differs from the checkpoint's" in captured  # today's warning stays
    line = captured[captured.index("distnn: error: "):].splitlines()[0]
    assert "the checkpoint's model is 'resnet' (its config.toml), this run builds 'mlp'" in line, line
    assert "missing keys: ['0.weight', '0.bias', '3.weight', '3.bias', '6.weight'] ... and 1 more" in line, line
    assert "unexpected keys: ['conv1.weight'," in line and "... and 51 more" in line, line
    assert "layer3" not in line and len(line) < 600, line
    assert (tmp_path / "run" / "config.toml").read_bytes() == (runs / "cut" / "config.toml").read_bytes()


def test_load_state_dict_lists_at_most_five_keys_and_shapes():
    from distnn import nn

    small = nn.Sequential(*[nn.Linear(2, 2) for _ in range(8)])
    with pytest.raises(KeyError) as e:
        nn.Sequential(nn.Linear(2, 2)).load_state_dict(small.state_dict())
    msg = str(e.value)
    assert "unexpected keys: ['1.weight', '1.bias', '2.weight', '2.bias', '3.weight'] ... and 9 more" in msg, msg
    assert "7.bias" not in msg
    with pytest.raises(ValueError) as e:
        small.load_state_dict(nn.Sequential(*[nn.Linear(3, 3) for _ in range(8)]).state_dict())
    msg = str(e.value)
    assert msg.count("shape mismatch for") == 5 and "... and 11 more shape mismatches" in msg, msg


def test_an_ensemble_resumes_with_its_saved_config(tmp_path, capsys):
    # the ensemble's config.toml (ensemble.members = 2) is the base: every member resumes from its own
    # checkpoints; a member's checkpoint (ensemble.member = 1) forks that member alone into a new run
    run = str(tmp_path / "e")
    first = ["train", "--config", "xor", "--quiet", "--set", "train.epochs=1", "--set", "ensemble.members=2",
             "--set", "checkpoint.enabled=true", "--set", "run.plots=false", "--out", run]
    assert main(first) == 0
    capsys.readouterr()
    assert main(["train", "--out", run, "--resume", "auto", "--quiet", "--set", "train.epochs=2"]) == 0
    err = capsys.readouterr().err
    assert err.count("resumed from") == 2 and "resuming with the run's config" in err, err
    cfg = _config(run)
    assert cfg["name"] == "xor" and cfg["ensemble"]["members"] == 2 and cfg["train"]["epochs"] == 2
    member = os.path.join(run, "members", "member-1")
    fork = str(tmp_path / "fork")
    assert main(["train", "--out", fork, "--resume", member, "--quiet", "--set", "train.epochs=3"]) == 0
    assert f"resumed from {os.path.join(member, 'checkpoints')}" in capsys.readouterr().err
    cfg = _config(fork)
    assert cfg["name"] == "xor" and cfg["ensemble"]["members"] == 1 and cfg["ensemble"]["member"] == 1


def test_a_damaged_config_of_a_checkpoint_is_not_resumed_with(tmp_path):
    # (found while writing test_checkpoint_corruption_fuzz) the config a resume without --config runs
    # with was read from the checkpoint unverified: `--resume ROOT` took the newest checkpoint's config.toml
    # even when its checksum failed (and the resume itself fell back to the previous checkpoint): a bit
    # flipped in a value (epochs = 5 -> 7) configured the resumed run
    from distnn.train import checkpoint as ck
    from distnn.train.resume_config import saved_config_for_resume

    root = tmp_path / "checkpoints"
    for step, epochs in ((10, 3), (20, 5)):  # (two sessions: a config.toml each, not one linked file)
        ck.write_checkpoint(str(root), step, ck.serialize({"model": {"w": np.zeros(2, np.float32)}},
                                                          {"config.toml": f"[train]\nepochs = {epochs}\n"}))
    newest = root / "step-00000020"
    assert saved_config_for_resume(str(root), None) == str(newest / "config.toml")
    (newest / "config.toml").write_text("[train]\nepochs = 7\n")  # ('5' -> '7': one bit)
    assert saved_config_for_resume(str(root), None) == str(root / "step-00000010" / "config.toml")
    # named itself (or through `latest`), the damaged checkpoint is an error before a run is built from it
    for spec in (newest, root / "latest"):
        with pytest.raises(ck.CheckpointError, match="config.toml fails its SHA-256 check"):
            saved_config_for_resume(str(spec), None)
