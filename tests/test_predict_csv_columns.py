"""CSV files for ``distnn train`` / ``predict`` / ``evaluate --data``: the training loader's header rule (the
one ``predict`` applies: test_predict_inputs.py), a prediction file's header read from the file rather than
the training option, and feature columns matched by header name."""
import numpy as np
import pytest

from distnn.cli import main
from test_predict_inputs import FAST, cli, one_error, read_table


def test_training_loader_uses_the_same_header_rule(tmp_path):
    from distnn.data import DataError, load_csv

    p = tmp_path / "d.csv"
    p.write_text("1,x,0\n3,4,1\n5,6,0\n")
    with pytest.raises(DataError, match=r"d.csv' line 1 column 2: cannot parse 'x' as a number") as info:
        load_csv(str(p))
    assert "\n" not in str(info.value)
    p.write_text("1,,0\n3,4,1\n")
    with pytest.raises(DataError, match=r"line 1 column 2: empty cell") as info:
        load_csv(str(p))
    assert "mixes numbers and text" not in str(info.value)  # (numbers and an empty cell: no text there)
    p.write_text("1,2,0,\n3,4,1,\n")
    with pytest.raises(DataError, match=r"line 1 column 4: empty cell \(a trailing comma\?\)"):
        load_csv(str(p))
    p.write_text("a,b,label\n1,2,0\n3,4,1\n")  # no numeric cell: a header
    x, y, names = load_csv(str(p))
    assert names == ["a", "b"] and len(x) == 2
    p.write_text("1,2,0\n3,4,1\n")
    x, _, _ = load_csv(str(p))
    assert len(x) == 2


def test_prediction_csv_header_follows_the_file_not_the_training_option(tmp_path, capsys):
    # A run trained on a CSV with data.header = true: a headerless file to predict keeps its first row.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 2)).round(3)
    y = (x[:, 0] > 0).astype(int)
    lines = ["f0,f1,label"] + [f"{a},{b},{c}" for (a, b), c in zip(x, y)]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    config = tmp_path / "run.toml"
    config.write_text(f'name = "csvrun"\n[data]\nname = "csv"\npath = "{tmp_path / "train.csv"}"\nheader = true\n'
                      'batch_size = 8\n[model]\nname = "mlp"\nhidden_sizes = [4]\n[train]\nepochs = 1\n'
                      '[run]\nplots = false\n[checkpoint]\nenabled = false\n')
    run = tmp_path / "run"
    code, _, err = cli(["train", "--config", config, "--out", run, "--quiet"], capsys)
    assert code == 0, err
    (tmp_path / "new.csv").write_text("\n".join(f"{a},{b}" for a, b in x[:5]) + "\n")
    out = tmp_path / "p.csv"
    code, text, err = cli(["predict", run, "--input", tmp_path / "new.csv", "--output", out], capsys)
    assert code == 0, err
    assert "wrote 5 predictions" in text and len(read_table(out)) == 6
    (tmp_path / "new_h.csv").write_text("a,b\n" + "\n".join(f"{a},{b}" for a, b in x[:5]) + "\n")
    code, text, err = cli(["predict", run, "--input", tmp_path / "new_h.csv", "--output", out], capsys)
    assert code == 0 and "wrote 5 predictions" in text, err
    # the run's own training file is read as the run read it: with numeric column names its header needed
    # data.header = true, which holds there (evaluate scores its 24 rows)
    (tmp_path / "train.csv").write_text("\n".join(["1,2,3"] + lines[1:]) + "\n")
    code, text, err = cli(["evaluate", run, "--data", tmp_path / "train.csv"], capsys)
    assert code == 0 and "24 samples" in text, err
    # a new file whose header names are numbers reads as data by the rule; --header true says otherwise
    (tmp_path / "num_h.csv").write_text("1,2\n" + "\n".join(f"{a},{b}" for a, b in x[:5]) + "\n")
    code, text, err = cli(["predict", run, "--input", tmp_path / "num_h.csv", "--output", out], capsys)
    assert code == 0 and "wrote 6 predictions" in text, err
    code, text, err = cli(["predict", run, "--input", tmp_path / "num_h.csv", "--output", out, "--header", "true"],
                          capsys)
    assert code == 0 and "wrote 5 predictions" in text, err
    code, _, err = cli(["predict", run, "--input", tmp_path / "new_h.csv", "--output", out, "--header", "false"],
                       capsys)
    assert code == 2 and "new_h.csv' line 1 column 1: cannot parse 'a' as a number" in err, err


def test_csv_feature_columns_are_matched_by_header_name(tmp_path, capsys):
    # the label column was found by name but the features were read by position: the same named
    # columns in another order were read with the features swapped (accuracy 0.97 -> 0.37 on iris)
    from distnn.data import load_dataset

    d = load_dataset("digits")
    x, y = np.concatenate([d.train.x, d.val.x, d.test.x]), np.concatenate([d.train.y, d.val.y, d.test.y])
    names = [f"p{i}" for i in range(x.shape[1])]

    def write(path, order, with_label=True, rename=None):
        head = [rename.get(n, n) if rename else n for n in order]
        rows = [",".join(f"{v:g}" for v in r) for r in x[:, [names.index(n) for n in order]]]
        if with_label:
            head, rows = head + ["digit"], [f"{r},{int(t)}" for r, t in zip(rows, y)]
        path.write_text(",".join(head) + "\n" + "\n".join(rows) + "\n")

    train_csv = tmp_path / "digits.csv"
    write(train_csv, names)
    run = str(tmp_path / "run")
    assert main(["train", *FAST, "--set", "data.name=csv", "--set", f"data.path={train_csv}", "--set",
                 "data.label_column=digit", "--set", "data.augment.shift=0", "--out", run]) == 0
    shuffled = list(np.random.default_rng(0).permutation(names))
    write(tmp_path / "shuffled.csv", shuffled)
    write(tmp_path / "plain.csv", names, with_label=False)
    write(tmp_path / "plain_shuffled.csv", shuffled, with_label=False)
    capsys.readouterr()
    reports = [cli(["evaluate", run, "--data", tmp_path / f], capsys) for f in ("digits.csv", "shuffled.csv")]
    assert reports[0][0] == 0 and reports[1][0] == 0
    assert reports[0][1].splitlines()[1:] == reports[1][1].splitlines()[1:]  # (the first line names the file)
    preds = []
    for f in ("plain.csv", "plain_shuffled.csv"):
        code, out, err = cli(["predict", run, "--input", tmp_path / f, "--output", "-"], capsys)
        assert code == 0, err
        preds.append(out)
    assert preds[0] == preds[1] and len(read_table(preds[0])) == len(x) + 1
    write(tmp_path / "renamed.csv", names, with_label=False, rename={"p3": "q3"})
    code, _, err = cli(["predict", run, "--input", tmp_path / "renamed.csv", "--output", "-"], capsys)
    one_error(code, err, "renamed.csv", "missing ['p3']", "not in the training data ['q3']")
