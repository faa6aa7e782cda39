"""An error about a key that ``--set`` gave ends ``(set by --set)``, in ``train --check`` and in the run alike;
an error about the same key given by the config file or by a flag of its own (``--resume``, ``--profile``)
does not.

The config's own checks tagged their errors; the errors found later did not (a data file not found, a
``--resume`` path, the ensemble's member count against the ranks, per-rank data, ``--resume auto`` without
``--out``), while ``--resume`` and ``--profile``, turned into overrides, counted as ``--set`` for the errors
that were tagged. Each case is one error reached both ways: the tag must be there exactly when ``--set``
gave the key, and the run must print the check's line.
"""
import re

import pytest

from distnn.cli import main
from test_train_check import _error_line
from test_train_check_host import _digits_like

TAG = " (set by --set)"


def _set_tag(line):
    """The tag that ends ``line`` when it says --set gave a key: ' (set by --set)', or for several keys
    ' (checkpoint.resume set by --set, data.batch_size from the config file)'; else None."""
    found = re.search(r" \([^()]*set by --set[^()]*\)$", line)
    return found and found.group(0)


def _toml(path, text):
    path.write_text(text)
    return str(path)


def _per_rank(t):
    _digits_like(t / "d0.npz")
    _digits_like(t / "d1.npz", shift=1.0)
    return str(t / "d{rank}.npz")


# (name: (arguments given the test's directory, ranks, what the error says)); each name ends "by --set" (the
# tag expected) or "by the file" / "by a flag" (none)
CASES = {
    "data file not found, path by --set": (
        lambda t: ["--set", "data.name=csv", "--set", "data.path=nope.csv"], 1, "not found"),
    "data file not found, path by the file": (
        lambda t: ["--config", _toml(t / "c.toml", '[data]\nname = "csv"\npath = "nope.csv"\n')], 1, "not found"),
    "--resume path missing, by --set": (lambda t: ["--set", "checkpoint.resume=nothere"], 1, "no such checkpoint"),
    "--resume path missing, by a flag": (lambda t: ["--resume", "nothere"], 1, "no such checkpoint"),
    "resume auto without --out, by --set": (lambda t: ["--set", "checkpoint.resume=auto"], 1, "needs --out"),
    "resume auto without --out, by a flag": (lambda t: ["--resume", "auto"], 1, "needs --out"),
    "profile into a file, by --set": (lambda t: ["--set", f"run.profile={_toml(t / 'p', 'x')}"], 1,
                                      "cannot hold the profile's traces"),
    "profile into a file, by a flag": (lambda t: ["--profile", _toml(t / "p", "x")], 1,
                                       "cannot hold the profile's traces"),
    "members do not divide the ranks, by --set": (
        lambda t: ["--config", "digits_mlp_ensemble", "--set", "ensemble.members=4"], 6, "does not divide"),
    "members do not divide the ranks, by the file": (lambda t: ["--config", "digits_mlp_ensemble"], 6,
                                                     "does not divide"),
    "per-rank data differ, path by --set": (
        lambda t: ["--set", "data.name=npz", "--set", f"data.path={_per_rank(t)}"], 2, "other data than rank 0"),
    "per-rank data differ, path by the file": (
        lambda t: ["--config", _toml(t / "c.toml", f'[data]\nname = "npz"\npath = "{_per_rank(t)}"\n')], 2,
        "other data than rank 0"),
    "a member's --resume path missing, by --set": (
        lambda t: ["--set", "ensemble.members=2", "--set", "checkpoint.resume=nothere"], 1,
        "ensemble member 0: --resume 'nothere'"),
    "a member's --resume path missing, by a flag": (
        lambda t: ["--set", "ensemble.members=2", "--resume", "nothere"], 1, "ensemble member 0: --resume 'nothere'"),
    "a checkpoint of another batch, by --set": (  # (the keys named, and the one it is about: which gave which)
        lambda t: ["--config", "digits_mlp", "--set", f"checkpoint.resume={_other_batch_run(t)}", "--out", "new"], 1,
        "data.batch_size is 64; resume with the same global batch (checkpoint.resume set by --set, data.batch_size "
        "from the config file)"),
    "a checkpoint of another batch, by a flag": (
        lambda t: ["--config", "digits_mlp", "--resume", _other_batch_run(t), "--out", "new"], 1,
        "written with a global batch of 4 samples"),
}


def _other_batch_run(t):
    """An xor run's directory (a global batch of 4): digits_mlp, of batch 64, cannot resume from it."""
    run = t / "xor-run"
    if not run.exists():
        assert main(["train", "--config", "xor", "--quiet", "--set", "train.epochs=1", "--set", "run.plots=false",
                     "--set", "checkpoint.enabled=true", "--out", str(run)]) == 0
    return str(run)


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_error_says_set_by_set_exactly_when_set_gave_its_key(tmp_path, monkeypatch, capsys, case):
    make, ranks, says = CASES[case]
    monkeypatch.chdir(tmp_path)
    args = make(tmp_path)
    capsys.readouterr()
    assert main(["train", "--check", "--check-ranks", str(ranks), *args]) == 2
    checked = _error_line(capsys.readouterr().err)
    assert says in checked, checked
    assert bool(_set_tag(checked)) == case.endswith("by --set"), checked
    assert checked.count("set by --set") == bool(_set_tag(checked))  # (once, and only as the tag)
    # the run (N ranks as threads of this process) stops with the same line
    code = main(["train", "--quiet", *args, *(["--simulate-ranks", str(ranks)] if ranks > 1 else [])])
    assert code == 2
    assert _error_line(capsys.readouterr().err) == checked


def test_a_key_given_by_set_and_by_a_flag_is_the_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # (--resume is applied after every --set: its value, and no tag)
    assert main(["train", "--check", "--set", "checkpoint.resume=elsewhere", "--resume", "nothere"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line == "distnn: error: --resume 'nothere': no such checkpoint or run directory", line
