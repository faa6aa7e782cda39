"""Max-norm weight constraint: distnn.optim.max_norm_ against numpy and torch.renorm, in the Trainer and the config."""
import json
import os

import numpy as np
import pytest

import distnn
from distnn.cli import main
from distnn.data import build_transforms, load_dataset
from distnn.distributed import LocalCommunicator, simulate
from distnn.models import build_model
from distnn.nn import Parameter
from distnn.optim import SGD, max_norm_, split_decay_parameters
from distnn.train.trainer import Trainer


def _rows_by_hand(w, c, dim):
    """The constraint written out: every slice along ``dim`` with norm > c scaled by c / (norm + 1e-7)."""
    out = np.moveaxis(w.copy(), dim, 0)
    for i in range(out.shape[0]):
        n = np.sqrt(np.sum(out[i] ** 2))
        if n > c:
            out[i] = out[i] * (c / (n + 1e-7))
    return np.moveaxis(out, 0, dim)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_max_norm_matches_a_hand_computation(rng, dim):
    w = rng.standard_normal((6, 4)) * np.array([[0.1], [3.0], [0.2], [5.0], [1.0], [0.05]])
    p = Parameter(w.copy())
    want = _rows_by_hand(w, 1.5, dim)
    n = max_norm_([p], 1.5, dim=dim)
    np.testing.assert_allclose(p.data, want, rtol=1e-15, atol=0)
    assert n == int((np.sqrt(np.sum(np.moveaxis(w, dim, 0).reshape(w.shape[dim], -1) ** 2, axis=1)) > 1.5).sum())
    unit = np.sqrt(np.sum(np.moveaxis(p.data, dim, 0).reshape(w.shape[dim], -1) ** 2, axis=1))
    assert unit.max() <= 1.5


def test_max_norm_leaves_small_units_bit_for_bit(rng):
    w = rng.standard_normal((3, 5))
    w[1] *= 10  # only this row is over the bound
    p = Parameter(w.copy())
    assert max_norm_(p, 3.0) == 1
    np.testing.assert_array_equal(p.data[[0, 2]], w[[0, 2]])
    assert np.linalg.norm(p.data[1]) == pytest.approx(3.0, rel=1e-7)


@pytest.mark.parametrize("shape,dim", [((8, 5), 0), ((6, 3, 3, 3), 0), ((6, 3, 3, 3), 1), ((4, 2, 5), 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_norm_matches_torch_renorm(torch, rng, shape, dim, dtype):
    w = (rng.standard_normal(shape) * 2).astype(dtype)
    p = Parameter(w.copy())
    max_norm_(p, 2.5, dim=dim)
    want = torch.renorm(torch.from_numpy(w.copy()), 2, dim, 2.5).numpy()
    assert p.data.dtype == dtype
    np.testing.assert_allclose(p.data, want, rtol=1e-13 if dtype == np.float64 else 1e-6, atol=0)


def test_max_norm_bad_values():
    p = Parameter(np.ones((2, 2)))
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="max_norm"):
            max_norm_(p, bad)


# ------------------------------------------------------------------ in the trainer
@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    return splits, *build_transforms(splits)


def _fit(comm, digits, max_norm, bias=None):
    splits, train_tf, eval_tf = digits
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[32], input_shape=splits.input_shape, num_classes=10)
    if bias is not None:
        model[0].bias.data[...] = bias  # larger than the bound: the constraint must leave biases alone
    trainer = Trainer(model, SGD(model.parameters(), lr=0.5, momentum=0.9), splits.train.subset(np.arange(240)),
                      None, comm=comm, batch_size=48, epochs=1, transform=train_tf, eval_transform=eval_tf,
                      max_norm=max_norm)
    trainer.fit()
    return model


def _unit_norms(model):
    return [np.linalg.norm(w.data.reshape(len(w.data), -1), axis=1) for w in split_decay_parameters(model)[0]]


def test_trainer_max_norm_bounds_weights_not_biases(digits):
    free = _fit(LocalCommunicator(), digits, None)
    assert max(n.max() for n in _unit_norms(free)) > 0.6  # without it the bound would be broken
    bounded = _fit(LocalCommunicator(), digits, 0.5, bias=5.0)
    assert max(n.max() for n in _unit_norms(bounded)) <= 0.5
    assert np.abs(bounded[0].bias.data).max() > 1.0  # (5 minus a few steps: never constrained)
    with pytest.raises(ValueError, match="max_norm"):
        _fit(LocalCommunicator(), digits, -1.0)


def test_two_simulated_ranks_stay_identical_with_max_norm(digits):
    one = _fit(LocalCommunicator(), digits, 0.5).state_dict()
    two = simulate(2, lambda c: _fit(c, digits, 0.5).state_dict())
    for k in one:
        np.testing.assert_array_equal(two[0][k], two[1][k], err_msg=k)  # replicas: bit for bit
        np.testing.assert_allclose(two[0][k], one[k], atol=1e-6, err_msg=k)  # and the 1-rank run


# ------------------------------------------------------------------ config and CLI
def test_config_key_is_validated_and_recorded(tmp_path, capsys):
    code = main(["train", "--config", "xor", "--set", "optimizer.max_norm=-0.5", "--out", str(tmp_path / "bad")])
    assert code == 2 and "optimizer.max_norm must be >= 0" in capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["train", "--config", "digits_mlp", "--set", "train.epochs=1", "--set", "optimizer.max_norm=0.5",
                 "--set", "optimizer.lr=0.5", "--set", "run.plots=false", "--quiet", "--out", str(out)]) == 0
    assert "max_norm = 0.5" in (out / "config.toml").read_text()
    weights = np.load(out / "model.npz")
    meta = json.loads((out / "model.json").read_text())
    assert meta["model"]["name"] == "mlp"
    for k in weights.files:
        if k.endswith("weight") and weights[k].ndim == 2:
            assert np.linalg.norm(weights[k], axis=1).max() <= 0.5, k
    assert os.path.isfile(out / "summary.json")
