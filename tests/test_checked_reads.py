"""A file whose checksum was verified is used as those very bytes, never read again unchecked.

The config a resume without ``--config`` runs with (``saved_config_for_resume``) had a checkpoint's
``config.toml`` verified, then returned its path: the run was configured from the file read again, which
may have changed in between. Now the path carries the bytes that were checked, and ``load_config``
parses those. And ``is_ensemble_dir`` read the run's ``model.json`` unchecked: a bit flipped in its
``ensemble`` key made an ensemble's run look unfinished, its members averaged without a word about the
damage; now it is checked against ``SHA256SUMS`` as every other read of the run's files is.
"""
from __future__ import annotations

import numpy as np
import pytest

from distnn.cli import main
from distnn.train import checkpoint as ck
from distnn.train import run_checksums
from distnn.train import run_dir as rd
from distnn.train.checkpoint import verify as ck_verify
from distnn.train.config import load_config
from distnn.train.resume_config import saved_config_for_resume
from cli_cases import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


@pytest.mark.parametrize("given", ["checkpoint", "root", "latest"])
def test_a_resume_is_configured_from_the_config_bytes_whose_sha256_was_checked(tmp_path, monkeypatch, given):
    root = tmp_path / "checkpoints"
    ck.write_checkpoint(str(root), 10, ck.serialize({"model": {"w": np.zeros(2, np.float32)}},
                                                    {"config.toml": "[train]\nepochs = 5\n"}))
    config = root / "step-00000010" / "config.toml"
    real = ck_verify._read_all_verified

    def then_replaced(*args, **kwargs):  # the file changes right after its check
        got = real(*args, **kwargs)
        config.write_text("[train]\nepochs = 7\n")
        return got

    monkeypatch.setattr(ck_verify, "_read_all_verified", then_replaced)
    spec = {"checkpoint": root / "step-00000010", "root": root, "latest": root / ck.LATEST}[given]
    saved = saved_config_for_resume(str(spec), None)
    assert saved == str(config)  # (still the path: printed, and compared, as before)
    assert config.read_text() == "[train]\nepochs = 7\n"  # (replaced indeed)
    assert load_config(saved)["train"]["epochs"] == 5


TINY = ["--quiet", "--set", "train.epochs=1", "--set", "model.hidden_sizes=[8]", "--set", "checkpoint.enabled=false",
        "--set", "run.plots=false", "--set", "ensemble.members=2"]


def test_a_damaged_ensemble_model_json_is_an_error_naming_it_not_an_unfinished_ensemble(tmp_path, capsys):
    run = tmp_path / "ens"
    assert main(["train", "--out", str(run), *TINY]) == 0
    assert rd.load_model(str(run))[1]["ensemble"]["members"] == 2
    path = run / "model.json"
    data = bytearray(path.read_bytes())
    data[data.index(b'"ensemble"') + 8] ^= 0x01  # "ensemble" -> "ensembld": one bit
    path.write_bytes(bytes(data))
    capsys.readouterr()
    with pytest.raises(run_checksums.RunFileError, match="model.json fails its SHA-256 check"):
        rd.load_model(str(run))
    code, _, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "model.json fails its SHA-256 check" in err, err
    assert "did not finish" not in err
