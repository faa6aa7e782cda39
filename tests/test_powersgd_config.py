"""PowerSGD from configs and the command line: ``distributed.compression = "powersgd"`` with its options in
``[distributed.powersgd]`` (torch's PowerSGDState arguments): a short digits run trains, on 2 simulated ranks as
on 1 process; bad values are refused naming the key; options with another compression warn."""
import json
import os
import warnings

import pytest

from distnn.train import ConfigWarning
from distnn.train.config import ConfigError, load_config

PSGD = ["--set", "distributed.compression=powersgd", "--set", "distributed.powersgd.start_powerSGD_iter=10"]
# nothing drawn per rank: 1 process and 2 ranks train alike
TRAIN = ["--config", "digits_mlp", "--set", "train.epochs=3", "--set", "model.dropout=0.0", "--set",
         "data.augment.shift=0", "--set", "run.plots=false", "--set", "checkpoint.enabled=false", "--set", "run.dtype=float64",
         "--quiet"]


def _summary(run):
    with open(os.path.join(run, "summary.json")) as f:
        return json.load(f)


def test_cli_run_with_powersgd_trains_digits_on_two_ranks_as_on_one(tmp_path):
    from distnn.cli import main

    two, one, plain = (str(tmp_path / n) for n in ("two", "one", "plain"))
    assert main(["train", *TRAIN, *PSGD, "--simulate-ranks", "2", "--out", two]) == 0
    assert main(["train", *TRAIN, *PSGD, "--out", one]) == 0
    assert main(["train", *TRAIN, "--out", plain]) == 0
    s2, s1, s0 = _summary(two), _summary(one), _summary(plain)
    assert s2["test_accuracy"] > 0.85
    assert s2["test_loss"] == pytest.approx(s1["test_loss"], abs=1e-9)  # (summation order)
    assert abs(s2["test_loss"] - s0["test_loss"]) > 1e-3  # compressed: not the uncompressed run
    assert load_config(os.path.join(two, "config.toml")).distributed.powersgd.start_powerSGD_iter == 10


def test_options_reach_the_state():
    from distnn.distributed.powersgd import PowerSGDState
    from distnn.train.job_setup import _as_dict

    cfg = load_config("digits_mlp", ["distributed.compression=powersgd", "distributed.powersgd.warm_start=false",
                                     "distributed.powersgd.matrix_approximation_rank=4"])
    state = PowerSGDState(**_as_dict(cfg.distributed.powersgd))
    assert (state.matrix_approximation_rank, state.warm_start, state.use_error_feedback,
            state.start_powerSGD_iter, state.min_compression_rate) == (4, False, True, 1000, 2.0)


@pytest.mark.parametrize("override, match", [
    ("distributed.compression=powersg", "distributed.compression"),
    ("distributed.powersgd.matrix_approximation_rank=0", "distributed.powersgd.matrix_approximation_rank"),
    ("distributed.powersgd.start_powerSGD_iter=-1", "distributed.powersgd.start_powerSGD_iter"),
    ("distributed.powersgd.min_compression_rate=-2", "distributed.powersgd.min_compression_rate"),
    ("distributed.powersgd.warm_start=maybe", "distributed.powersgd.warm_start"),
    ("distributed.powersgd.rank=2", "distributed.powersgd.rank"),
])
def test_bad_values_are_refused_naming_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config("digits_mlp", [override])


def test_powersgd_options_without_powersgd_warn(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nname = "xor"\n[distributed.powersgd]\nmatrix_approximation_rank = 2\n')
    with pytest.warns(ConfigWarning, match="distributed.powersgd.matrix_approximation_rank = 2 has no effect "
                                           "while distributed.compression is not 'powersgd'"):
        load_config(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(str(path), ["distributed.compression=powersgd"])
