"""``evaluate`` reads a run's ``config.toml`` once: the bytes checked against ``SHA256SUMS`` say where its
checkpoints are.

``load_model`` checked ``config.toml`` against the run's ``SHA256SUMS``, dropped the bytes, and then read
the file again, unchecked, to find ``checkpoint.dir``: a ``config.toml`` replaced between the two reads
(here, by a spy on the check) sent ``evaluate`` to another run's checkpoints, which it took for newer
than the run's ``model.npz`` and loaded. Now the checked bytes are the ones parsed.
"""
from __future__ import annotations

import os

import pytest

from distnn.cli import main
from distnn.train import run_checksums
from cli_cases import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

XOR = ["--config", "xor", "--quiet", "--set", "run.plots=false", "--set", "checkpoint.enabled=true"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``mine``: 2 epochs (model.npz of global step 2); ``other``: 4 epochs, checkpoints of steps 3 and 4."""
    root = tmp_path_factory.mktemp("read-once")
    assert main(["train", "--out", str(root / "mine"), *XOR, "--set", "train.epochs=2"]) == 0
    assert main(["train", "--out", str(root / "other"), *XOR, "--set", "train.epochs=4"]) == 0
    return root / "mine", root / "other"


def test_evaluate_finds_the_checkpoints_where_the_checked_config_says(runs, monkeypatch, capsys):
    mine, other = runs
    config = mine / "config.toml"
    original, checked = config.read_bytes(), run_checksums.read_verified
    elsewhere = original.replace(b"[checkpoint]\n", f"[checkpoint]\ndir = {str(other / 'checkpoints')!r}\n"
                                 .replace("'", '"').encode(), 1)
    assert elsewhere != original

    def swapped_after_the_check(directory, name, sums):
        data = checked(directory, name, sums)
        if name == "config.toml":  # (replaced once its bytes were checked)
            config.write_bytes(elsewhere)
        return data

    monkeypatch.setattr(run_checksums, "read_verified", swapped_after_the_check)
    try:
        code, out, err = run_cli(["evaluate", str(mine)], capsys)
    finally:
        config.write_bytes(original)
    assert code == 0, err
    assert f"reading {os.path.join(str(mine), 'model.npz')} (global step 2)" in err, err
    assert str(other) not in out + err
