"""``config-keys model.norm`` / ``config-keys data.flatten``: a model's argument or a dataset's option is
a valid key that the schema does not list; the error says whose it is and where it is documented.

It said "no config section or key 'model.norm'", as for a misspelt key, though ``--set model.norm=batch``
is right.
"""
from distnn.cli import main


def _run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_models_argument_names_the_models(capsys):
    code, out, err = _run(["config-keys", "model.norm"], capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "no config section or key" not in err
    assert "'model.norm' is no key of the config schema but an argument of distnn.models.MLP" in err
    code, _, err = _run(["config-keys", "model.dropout"], capsys)
    assert code == 2 and "distnn.models.MLP" in err and "distnn.models.LSTMClassifier" in err
    assert err.count("distnn.models.CharLM") == 1  # (one class, however many names it is registered under)


def test_a_datasets_option_names_the_datasets(capsys):
    code, out, err = _run(["config-keys", "data.flatten"], capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "an option of dataset 'digits', 'mnist', 'fashion_mnist'" in err and "distnn datasets" in err


def test_unknown_keys_are_still_unknown(capsys):
    for key in ("model.nrom", "data.foo"):
        code, _, err = _run(["config-keys", key], capsys)
        assert code == 2 and f"no config section or key '{key}'" in err
