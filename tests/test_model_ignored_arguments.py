"""A model argument the caller gives that the model's other arguments make it ignore is refused in the Python
API as in a config (``Arguments.only_with``): ``CharLM(arch="lstm", nhead=8)`` was built and ``nhead``
silently ignored, because the model passes every argument, defaults too, to its check. An argument at its
signature default counts as not given (the defaults never trigger it), and a run's model.json that records
every argument still rebuilds (tests/test_config_ignored_values.py covers the config's side).
"""
import json

import numpy as np
import pytest

from distnn.models import CharLM, LSTMClassifier, TransformerClassifier, build_model


@pytest.mark.parametrize("build, message", [
    (lambda: CharLM(10, arch="lstm", nhead=8),
     "CharLM: nhead is ignored with arch = 'lstm': the model uses it only with arch = 'transformer'"),
    (lambda: CharLM(10, arch="lstm", dim_feedforward=64, max_len=32), "CharLM: dim_feedforward is ignored with "
                                                                      "arch = 'lstm'.*; max_len is ignored"),
    (lambda: CharLM(10, hidden_size=64),
     "CharLM: hidden_size is ignored with arch = 'transformer': the model uses it only with arch = 'lstm'"),
    (lambda: LSTMClassifier(input_size=3, vocab_size=10),
     "LSTMClassifier: input_size is ignored with vocab_size = 10: the model uses it only for feature inputs"),
    (lambda: LSTMClassifier(input_size=3, embedding_dim=8),
     "LSTMClassifier: embedding_dim is ignored with vocab_size = None: the model uses it only for token inputs"),
    (lambda: TransformerClassifier(input_size=4, padding_idx=0),
     "TransformerClassifier: padding_idx is ignored with vocab_size = None"),
    (lambda: build_model("charlm", vocab_size=10, arch="lstm", nhead=2), "CharLM: nhead is ignored"),
])
def test_a_given_argument_the_model_would_ignore_is_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_defaults_never_trigger_it():
    assert CharLM(10, arch="lstm").arch == "lstm" and not hasattr(CharLM(10, arch="lstm"), "encoder")
    assert CharLM(10, hidden_size=128).arch == "transformer"  # (its default written out: the same model)
    assert LSTMClassifier(input_size=3).input_size == 3 and LSTMClassifier(vocab_size=5).vocab_size == 5
    assert TransformerClassifier(vocab_size=5, padding_idx=0).padding_idx == 0
    with pytest.raises(ValueError, match="nhead must be a positive integer"):  # (the rules still come first)
        CharLM(10, arch="lstm", nhead=0)


def test_a_run_whose_model_json_records_every_argument_still_loads(tmp_path):
    from distnn.train.job import run_training
    from distnn.train.run_checksums import write_files
    from distnn.train.run_dir import load_model, write_bytes

    sets = ["model.arch=lstm", "model.hidden_size=16", "model.d_model=8", "model.num_layers=1", "model.dropout=0.0",
            "train.epochs=1",
            "run.plots=false", "checkpoint.enabled=false", "data.seq_len=16", "data.stride=64"]
    run = tmp_path / "run"
    run_training("charlm", sets, out=str(run), quiet=True)
    meta = json.loads((run / "model.json").read_text())
    assert "nhead" not in meta["model"]["kwargs"] and meta["model"]["kwargs"]["arch"] == "lstm"
    model, _, _ = load_model(str(run))
    # a record written before: every argument of the signature, the transformer's too, at their defaults or not
    meta["model"]["kwargs"].update(nhead=8, dim_feedforward=64, max_len=32)
    write_files(str(run), {"model.json": json.dumps(meta).encode()}, write_bytes)  # (listed in SHA256SUMS)
    again, _, _ = load_model(str(run))
    assert again.arch == "lstm" and repr(again) == repr(model)


@pytest.mark.parametrize("model, extra", [("lstm", 'hidden_size = 16'), ("transformer", 'd_model = 16\nnhead = 2')])
def test_input_size_on_token_data_is_one_line_naming_it_and_the_datasets_tokens(tmp_path, model, extra):
    # the trainer fills in vocab_size from a token dataset: the model's refusal said "input_size is ignored
    # with vocab_size = 10 ... (or set vocab_size)", naming a vocab_size the config never gave
    from cli_run import distnn

    config = tmp_path / "seq.toml"
    config.write_text(f'name = "seq"\n[data]\nname = "seq_sorted"\nlength = 12\nvocab_size = 10\nn_samples = 200\n'
                      f'[model]\nname = "{model}"\ninput_size = 5\n{extra}\n[train]\nepochs = 1\n')
    r = distnn(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"], cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("distnn: error: model.input_size (5) is for feature inputs, but dataset "
                               "'seq_sorted' holds tokens (ids 0..9)"), r.stderr
    assert "remove model.input_size" in r.stderr and "set vocab_size" not in r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("config", ["sequence_lstm", "sequence_transformer"])
def test_token_ids_read_as_one_feature_train(tmp_path, config):
    # vocab_size = none with input_size = 1 reads the ids as numbers: sequence_lstm crashed in numpy's gate
    # arithmetic (int64 inputs) and sequence_transformer trained its input projection in float64
    from distnn.train.job import run_training
    from distnn.train.run_dir import load_model

    run = tmp_path / "run"
    run_training(config, ["model.vocab_size=none", "model.input_size=1", "train.epochs=1", "data.n_samples=200",
                          "run.plots=false", "checkpoint.enabled=false"], out=str(run), quiet=True)
    model, _, _ = load_model(str(run))
    assert model.vocab_size is None and model.input_size == 1
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
