"""A run directory's error ends ``(set by --set)`` when ``--set run.out_dir=...`` / ``--set run.run_name=...``
named the directory, in ``train --check`` and in the run alike; not when ``--out`` or the config file did.

The run directory's refusals (a path under a file, a directory that already holds a run, a finished run that
``--resume auto`` would train over) said nothing of where the path came from, while every other key's error
said ``(set by --set)``. Each case is one error reached both ways; the run must print the check's line.
"""
import re
import shutil

import pytest

from distnn.cli import main
from test_train_check import _error_line

TAG = " (set by --set)"
XOR = ["--config", "xor", "--set", "train.epochs=1", "--set", "run.plots=false"]


def _set_tag(line):
    found = re.search(r" \([^()]*set by --set[^()]*\)$", line)
    return found and found.group(0)


def _config(t, run_table):
    (t / "c.toml").write_text(f'name = "xor"\n[model]\nname = "mlp"\n[data]\nname = "xor"\n[run]\n{run_table}')
    return ["--config", str(t / "c.toml")]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished xor run in ``out/done`` (no checkpoints), to be named by --out or by run.out_dir/run_name."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "--quiet", *XOR, "--out", str(root / "out" / "done")]) == 0
    return root / "out" / "done"


# name: (arguments given the test's directory, what the error says, the tag expected or None)
CASES = {
    "under a file, both keys by --set": (
        lambda t: [*XOR, "--set", "run.out_dir=afile", "--set", "run.run_name=x"], "is not writable", TAG),
    "under a file, out_dir alone by --set": (lambda t: [*XOR, "--set", "run.out_dir=afile/deeper"],
                                             "is not writable", TAG),
    "under a file, out_dir by --set, run_name by the file": (
        lambda t: [*_config(t, 'run_name = "x"\n'), "--set", "run.out_dir=afile"], "is not writable",
        " (run.out_dir set by --set, run.run_name from the config file)"),
    "under a file, both keys by the file": (
        lambda t: _config(t, 'out_dir = "afile"\nrun_name = "x"\n'), "is not writable", None),
    "under a file, by --out": (lambda t: [*XOR, "--out", "afile/x"], "is not writable", None),
    "holds a run, run_name by --set": (
        lambda t: [*XOR, "--set", "run.out_dir=out", "--set", "run.run_name=done"], "already holds a run", TAG),
    "holds a run, by --out": (lambda t: [*XOR, "--out", "out/done"], "already holds a run", None),
    "an ensemble into a run, run_name by --set": (
        lambda t: [*XOR, "--set", "ensemble.members=2", "--set", "run.out_dir=out", "--set", "run.run_name=done"],
        "already holds a run", TAG),
    "finished, run_name and resume by --set": (
        lambda t: [*XOR, "--set", "run.out_dir=out", "--set", "run.run_name=done", "--set", "checkpoint.resume=auto"],
        "holds a finished run", TAG),
    "finished, run_name by --set, resume by a flag": (
        lambda t: [*XOR, "--set", "run.out_dir=out", "--set", "run.run_name=done", "--resume", "auto"],
        "holds a finished run",
        " (run.out_dir set by --set, run.run_name set by --set, checkpoint.resume given by --resume)"),
    "finished, resume by --set, --out": (
        lambda t: [*XOR, "--out", "out/done", "--set", "checkpoint.resume=auto"], "holds a finished run", TAG),
    "finished, by flags": (lambda t: [*XOR, "--out", "out/done", "--resume", "auto"], "holds a finished run", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_run_directorys_error_says_set_by_set_exactly_when_set_named_it(tmp_path, monkeypatch, capsys,
                                                                          finished_run, case):
    make, says, tag = CASES[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "out").mkdir()
    shutil.copytree(finished_run, tmp_path / "out" / "done")
    args = make(tmp_path)
    capsys.readouterr()
    assert main(["train", "--check", *args]) == 2
    checked = _error_line(capsys.readouterr().err)
    assert says in checked, checked
    assert _set_tag(checked) == tag, checked
    assert "set by --set" not in checked[:len(checked) - len(tag or "")]  # (only in the tag)
    # the run stops with the same line
    assert main(["train", "--quiet", *args]) == 2
    assert _error_line(capsys.readouterr().err) == checked
