"""Shared by the tests/test_cli_*.py files: the CLI run in this process (run_cli), a fast digits_mlp config and the module-level run it trains."""
import pytest

from distnn.cli import main


# A fast digits_mlp: 3 epochs; no dropout and no augmentation (reused with other datasets).
FAST = ["--set", "train.epochs=3", "--set", "model.dropout=0.0", "--set", "data.augment.shift=0"]


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One single-process and one --simulate-ranks 2 run of a fast digits_mlp, shared by the tests below."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for name, extra in (("one", []), ("sim2", ["--simulate-ranks", "2"])):
        out = str(root / name)
        assert main(["train", "--config", "digits_mlp", *FAST, "--out", out, "--quiet", *extra]) == 0
        runs[name] = out
    return runs
