"""Monte Carlo dropout at prediction time: predict_proba(mc_samples=N), MCDropout, and the CLI's --mc-samples."""
import csv

import numpy as np
import pytest

import distnn
from distnn import nn
from distnn.cli import main
from distnn.data.batch_random import BatchShareGenerator
from distnn.models import build_model
from distnn.train.inference import predict_proba
from distnn.train.mc_dropout import MCDropout, dropout_layers, mc_dropout


def _model(norm="batch", dropout=0.5):
    """A float64 MLP with batch norm whose running statistics are not the identity's (so using batch
    statistics instead would show)."""
    distnn.manual_seed(0)
    model = build_model("mlp", sizes=[6, 16, 16, 4], dropout=dropout, norm=norm).to(np.float64)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.data[...] = 0.3
            m.running_var.data[...] = 2.0
    return model.eval()


def _x(n=10):
    return np.random.default_rng(5).standard_normal((n, 6))


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _by_hand(model, x, samples, seed):
    """N passes per sample, one sample at a time, with only the Dropout layers in training mode: sample i's
    masks in pass s from the per-sample generator of (seed, s) at position i (mc_dropout's keying)."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    try:
        probs = []
        with distnn.no_grad():
            for i in range(len(x)):
                row = []
                for s in range(samples):
                    with distnn.random.use_generator(BatchShareGenerator([seed, s], i + 1, [i])):
                        row.append(_softmax(model(distnn.Tensor(x[i:i + 1])).data[0]))
                probs.append(np.mean(row, axis=0))
    finally:
        model.eval()
    return np.array(probs)


def test_average_matches_a_hand_loop_with_batch_norm_in_eval_mode():
    model, x = _model(), _x()
    bn = model[1]
    stats = (bn.running_mean.data.copy(), bn.running_var.data.copy())
    got = predict_proba(model, x, None, batch_size=len(x), mc_samples=7, mc_seed=3)
    np.testing.assert_allclose(got, _by_hand(model, x, 7, 3), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)
    # batch norm: running statistics used and left alone; every module back in eval mode
    np.testing.assert_array_equal(bn.running_mean.data, stats[0])
    np.testing.assert_array_equal(bn.running_var.data, stats[1])
    assert not any(m.training for m in model.modules())


def test_one_sample_is_todays_prediction_and_more_differ():
    model, x = _model(), _x()
    plain = predict_proba(model, x, None)
    for n in (0, 1):
        np.testing.assert_array_equal(predict_proba(model, x, None, mc_samples=n, mc_seed=9), plain)
    mc = predict_proba(model, x, None, mc_samples=5)
    assert np.abs(mc - plain).max() > 1e-3
    # a single dropout pass is not the average either (each of the 5 differs from the mean)
    assert np.abs(_by_hand(model, x, 1, 0) - mc).max() > 1e-3


def test_reproducible_for_a_seed():
    model, x = _model(), _x(40)
    a = predict_proba(model, x, None, batch_size=16, mc_samples=4, mc_seed=1)
    np.testing.assert_array_equal(a, predict_proba(model, x, None, batch_size=16, mc_samples=4, mc_seed=1))
    assert np.abs(a - predict_proba(model, x, None, batch_size=16, mc_samples=4, mc_seed=2)).max() > 1e-6


def test_batch_size_does_not_change_the_masks():
    # float64: the batch size changes only BLAS's summation order (a few ulps; float32: about 3e-7,
    # as without dropout), never a sample's masks (they would move the probabilities by ~1e-2)
    model, x = _model(), _x(40)
    ref = predict_proba(model, x, None, batch_size=512, mc_samples=6, mc_seed=3)
    for batch_size in (1, 7, 16):
        np.testing.assert_allclose(predict_proba(model, x, None, batch_size=batch_size, mc_samples=6, mc_seed=3),
                                   ref, rtol=1e-12, atol=1e-15)


def test_masks_are_keyed_by_the_input_index():
    model, x = _model(), _x(40)
    full = predict_proba(model, x, None, batch_size=16, mc_samples=5, mc_seed=1)
    # the first rows of an input are predicted as an input of only those rows is
    np.testing.assert_allclose(predict_proba(model, x[:5], None, mc_samples=5, mc_seed=1), full[:5],
                               rtol=1e-12, atol=1e-15)
    # by index, not content: reordered rows get the masks of their new positions (another MC draw)
    rev = predict_proba(model, x[::-1], None, batch_size=16, mc_samples=5, mc_seed=1)
    assert np.abs(rev[::-1] - full).max() > 1e-3


@pytest.mark.parametrize("name, kwargs", [
    ("lstm", dict(vocab_size=5, hidden_size=8, num_layers=2, dropout=0.4)),  # inter-layer dropout, time-major
    ("transformer", dict(vocab_size=5, d_model=8, nhead=2, num_layers=1, dim_feedforward=16, dropout=0.3)),
])
def test_sequence_models_masks_are_per_sample(name, kwargs):
    distnn.manual_seed(0)
    model = build_model(name, num_classes=3, **kwargs).to(np.float64).eval()
    x = np.random.default_rng(2).integers(0, 5, (9, 6))
    ref = predict_proba(model, x, None, batch_size=512, mc_samples=4, mc_seed=2)
    assert np.abs(ref - predict_proba(model, x, None)).max() > 1e-4  # (dropout does act)
    for batch_size in (1, 4):
        np.testing.assert_allclose(predict_proba(model, x, None, batch_size=batch_size, mc_samples=4, mc_seed=2),
                                   ref, rtol=1e-12, atol=1e-15)


def test_a_layer_with_its_own_generator_follows_the_mc_seed():
    model, x = _model(), _x()
    for m in dropout_layers(model):
        m.generator = np.random.default_rng(123)
    a = predict_proba(model, x, None, mc_samples=3, mc_seed=4)
    np.testing.assert_array_equal(a, predict_proba(model, x, None, mc_samples=3, mc_seed=4))
    assert all(m.generator is not None for m in dropout_layers(model))  # given back


def test_wrapper_output_is_the_log_of_the_average():
    model, x = _model(norm=None), _x()
    wrapped = MCDropout(model, 6, seed=2)
    with distnn.no_grad():
        logits = wrapped(distnn.Tensor(x)).data
    np.testing.assert_allclose(np.exp(logits), _by_hand(model, x, 6, 2), rtol=1e-12)


def test_dropout_layers_of_recurrent_and_attention_models():
    lstm = nn.LSTM(4, 8, num_layers=2, dropout=0.3)
    assert dropout_layers(lstm) == [lstm]
    with pytest.warns(UserWarning, match="num_layers greater than 1"):  # (PyTorch's warning)
        one = nn.LSTM(4, 8, num_layers=1, dropout=0.3)
    assert dropout_layers(one) == []  # (no layer to drop between)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1)
    assert layer.self_attn in dropout_layers(layer) and layer.dropout1 in dropout_layers(layer)


def test_channel_and_alpha_dropout_layers_are_sampled_and_rrelu_is_not():
    """Dropout1d/2d/3d, AlphaDropout and FeatureAlphaDropout are dropout too (were: a model whose only dropout
    was one of them was reported as having none); RReLU's training mode draws slopes, not masks."""
    layers = [nn.Dropout1d(0.2), nn.Dropout2d(0.2), nn.Dropout3d(0.2), nn.AlphaDropout(0.2),
              nn.FeatureAlphaDropout(0.2)]
    model = nn.Sequential(*layers, nn.RReLU(), nn.Dropout2d(0.0))
    assert dropout_layers(model) == layers
    distnn.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.AlphaDropout(0.5), nn.Linear(8, 3))
    net.eval()
    x = distnn.Tensor(np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32))
    wrapped = mc_dropout(net, samples=4, seed=0)  # (was: NoDropoutError)
    assert isinstance(wrapped, MCDropout)
    plain = np.log(_softmax(np.asarray(net(x).data)))  # (the eval-mode prediction, as log-probabilities)
    assert not np.allclose(np.asarray(wrapped(x).data), plain)  # (masks drawn: not the eval-mode prediction)
    assert not net.training and not net[1].training  # (modes restored)


def test_bad_values():
    model = _model()
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="mc_samples must be an integer >= 0"):
            mc_dropout(model, bad)
    with pytest.raises(ValueError, match="mc_seed"):
        mc_dropout(model, 3, seed=-2)
    with pytest.raises(ValueError, match="needs dropout"):
        mc_dropout(_model(dropout=0.0), 3)
    assert mc_dropout(_model(dropout=0.0), 1) is not None  # 0/1: no sampling, nothing to refuse


# ------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mc") / "run"
    assert main(["train", "--config", "digits_mlp", "--set", "train.epochs=1", "--set", "model.dropout=0.3",
                 "--set", "run.plots=false", "--quiet", "--out", str(out)]) == 0
    return out


def _predict(run, tmp_path, name, *extra):
    inputs = tmp_path / "in.npz"
    if not inputs.exists():
        np.savez(inputs, x=np.random.default_rng(0).uniform(0, 1, (12, 64)).astype(np.float32))
    out = tmp_path / name
    assert main(["predict", str(run), "--input", str(inputs), "--output", str(out), *extra]) == 0
    with open(out) as f:
        rows = list(csv.reader(f))[1:]
    return np.array([[float(v) for v in r[2:]] for r in rows])


def test_cli_predict_and_evaluate_with_mc_samples(run, tmp_path, capsys):
    plain = _predict(run, tmp_path, "plain.csv")
    np.testing.assert_array_equal(_predict(run, tmp_path, "one.csv", "--mc-samples", "1"), plain)
    mc = _predict(run, tmp_path, "mc.csv", "--mc-samples", "8", "--mc-seed", "2")
    np.testing.assert_array_equal(_predict(run, tmp_path, "mc2.csv", "--mc-samples", "8", "--mc-seed", "2"), mc)
    assert np.abs(mc - plain).max() > 1e-4
    np.testing.assert_allclose(mc.sum(axis=1), 1.0, atol=1e-4)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--mc-samples", "4"]) == 0
    assert "(MC dropout: 4 samples, seed 0)" in capsys.readouterr().out


def test_cli_predict_first_rows_as_a_file_of_their_own(run, tmp_path):
    x = np.random.default_rng(1).uniform(0, 1, (600, 64)).astype(np.float32)
    rows = {}
    for name, part in (("long", x), ("short", x[:5])):
        np.savez(tmp_path / f"{name}.npz", x=part)
        assert main(["predict", str(run), "--input", str(tmp_path / f"{name}.npz"), "--output",
                     str(tmp_path / f"{name}.csv"), "--mc-samples", "6", "--mc-seed", "1"]) == 0
        with open(tmp_path / f"{name}.csv") as f:
            rows[name] = np.array([[float(v) for v in r[2:]] for r in list(csv.reader(f))[1:]])
    # float32: BLAS sums 5 and 512 rows in another order (~3e-7); the 6-digit CSV rounds on top
    np.testing.assert_allclose(rows["short"], rows["long"][:5], atol=2e-6)


def test_cli_bad_mc_values(run, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(run), "--mc-samples", "-3"])
    assert e.value.code == 2 and "--mc-samples: must be an integer >= 0" in capsys.readouterr().err
    no_dropout = tmp_path / "plain"
    assert main(["train", "--config", "xor", "--set", "train.epochs=1", "--set", "run.plots=false", "--quiet",
                 "--out", str(no_dropout)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(no_dropout), "--mc-samples", "5"]) == 2
    err = capsys.readouterr().err
    assert "needs dropout" in err and len(err.strip().splitlines()) == 1


def test_cli_mc_seed_without_mc_samples_is_refused(run, tmp_path, capsys):
    # (it seeded nothing: dropout stayed off, and the seed was silently dropped)
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.zeros((3, 64), np.float32))
    capsys.readouterr()
    for argv in (["evaluate", str(run), "--mc-seed", "3"],
                 ["predict", str(run), "--input", str(inputs), "--output", str(tmp_path / "p.csv"), "--mc-seed", "3"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("distnn: error: --mc-seed 3 does nothing without --mc-samples") and "--mc-samples N" in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.csv").exists()
    # --mc-samples given, even 0 or 1 (dropout off: e.g. a sweep's baseline), takes a seed as before
    assert main(["evaluate", str(run), "--mc-samples", "1", "--mc-seed", "3"]) == 0
    assert main(["evaluate", str(run)]) == 0
