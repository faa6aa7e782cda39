"""``config-keys model.norm`` / ``config-keys data.flatten``: a model's argument or a dataset's option is
a valid key that the schema does not list; it is described (which models or datasets take it, their
defaults), exit 0.

It said "no config section or key 'model.norm'", as for a misspelt key, though ``--set model.norm=batch``
is right; then (h22) an error naming whose it is, exit 2.
"""
from distnn.cli import main


def _run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_models_argument_names_the_models(capsys):
    code, out, err = _run(["config-keys", "model.norm"], capsys)
    assert code == 0 and err == ""
    assert "no config section or key" not in out
    assert out.startswith("model.norm: an argument of the model") and "(distnn.models.MLP)" in out
    code, out, _ = _run(["config-keys", "model.dropout"], capsys)
    assert code == 0 and "distnn.models.MLP" in out and "distnn.models.LSTMClassifier" in out
    assert out.count("distnn.models.CharLM") == 1  # (one class, however many names it is registered under)


def test_a_datasets_option_names_the_datasets(capsys):
    code, out, err = _run(["config-keys", "data.flatten"], capsys)
    assert code == 0 and err == ""
    listed = [line.split()[0] for line in out.splitlines()[1:-1]]
    assert listed == ["digits", "mnist", "fashion_mnist"] and "distnn datasets" in out


def test_unknown_keys_are_still_unknown(capsys):
    for key in ("model.nrom", "data.foo"):
        code, _, err = _run(["config-keys", key], capsys)
        assert code == 2 and f"no config section or key '{key}'" in err
