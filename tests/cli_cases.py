"""Shared by the tests/test_cli_*.py files: the CLI run in this process (run_cli), a fast digits_mlp config (FAST)
and the module-level run it trains, and the bad-input cases (BAD), which tests/mpi_cli_driver.py runs on each
MPI rank too."""
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


def digits_csv(path, rows=40, ragged_line=None, bad_cell=None, nan_line=None, label=None):
    from distnn.data import load_dataset

    tr = load_dataset("digits").train
    lines = []
    for i in range(rows):
        cells = [f"{v:.4f}" for v in tr.x[i]] + [str(int(tr.y[i]) if label is None or i != 3 else label)]
        if i == ragged_line:
            cells = cells[:-2] + cells[-1:]
        if i == bad_cell:
            cells[5] = "abc"
        if i == nan_line:
            cells[7] = "nan"
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def write_idx(path, magic=0x00000803, truncate=False):
    """An images file (wrong magic or truncated as asked) next to a valid labels file."""
    import struct

    data = struct.pack(">IIII", magic, 10, 4, 4) + bytes(range(160))
    path.write_bytes(data[:-7] if truncate else data)
    labels = str(path).replace("images", "labels").replace("idx3", "idx1")
    with open(labels, "wb") as f:
        f.write(struct.pack(">II", 0x00000801, 10) + bytes(range(10)))
    return str(path)


BAD = {
    "missing data file": (lambda t: ["--set", "data.name=csv", "--set", f"data.path={t}/nope.csv"], "not found"),
    "ragged csv": (lambda t: ["--set", "data.name=csv", "--set",
                              f"data.path={digits_csv(t / 'r.csv', ragged_line=6)}"], "line 7"),
    "non-numeric csv": (lambda t: ["--set", "data.name=csv", "--set",
                                   f"data.path={digits_csv(t / 'n.csv', bad_cell=2)}"], "abc"),
    "nan feature": (lambda t: ["--set", "data.name=csv", "--set",
                               f"data.path={digits_csv(t / 'f.csv', nan_line=4)}"], "non-finite"),
    "label outside classes": (lambda t: ["--set", "data.name=csv", "--set", "data.num_classes=10", "--set",
                                         f"data.path={digits_csv(t / 'l.csv', label=12)}"], "12"),
    "idx wrong magic": (lambda t: ["--set", "data.name=mnist", "--set",
                                   f"data.path={write_idx(t / 'train-images-idx3-ubyte', magic=0x1234)}"], "magic"),
    "idx truncated": (lambda t: ["--set", "data.name=mnist", "--set",
                                 f"data.path={write_idx(t / 'train-images-idx3-ubyte', truncate=True)}"], "truncated"),
    "unknown config key": (lambda t: ["--set", "train.epochz=3"], "epochz"),
    "batch larger than the data, drop_last": (lambda t: ["--set", "data.batch_size=4000", "--set",
                                                         "data.drop_last=true"], "larger than the 1257 training"),
    "output not writable": (lambda t: ["--out", f"{file_arg(t / 'afile')}/sub"], "not writable"),
    "zero simulated ranks": (lambda t: ["--simulate-ranks", "0"], "--simulate-ranks must be >= 1, got 0"),
    "negative simulated ranks": (lambda t: ["--simulate-ranks", "-2"], "--simulate-ranks must be >= 1, got -2"),
}


def file_arg(path):
    path.write_text("x")
    return str(path)
