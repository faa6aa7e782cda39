"""MLP ``norm_position``: the norm before the activation (the default) or after it.

Layer order; forward, backward and running statistics against a torch.nn.Sequential holding the
same weights; bad values name the key and the allowed values; a saved run rebuilds the same model.
"""
import numpy as np
import pytest

import distnn
from distnn import models, nn
from distnn.train.config import ConfigError, load_config
from torch_twins import copy_distnn_weights

SIZES = [6, 5, 4, 3]


def _kinds(model):
    return [type(m).__name__ for m in model.children()]


@pytest.mark.parametrize("norm,position,dropout,expected", [
    ("batch", "before_activation", 0.0, ["Linear", "BatchNorm1d", "ReLU"]),
    ("batch", "after_activation", 0.0, ["Linear", "ReLU", "BatchNorm1d"]),
    ("layer", "after_activation", 0.0, ["Linear", "ReLU", "LayerNorm"]),
    ("batch", "after_activation", 0.2, ["Linear", "ReLU", "BatchNorm1d", "Dropout"]),
    ("batch", "before_activation", 0.2, ["Linear", "BatchNorm1d", "ReLU", "Dropout"]),
    (None, "before_activation", 0.0, ["Linear", "ReLU"]),
])
def test_layer_order(norm, position, dropout, expected):
    m = models.MLP(SIZES, norm=norm, norm_position=position, dropout=dropout)
    assert _kinds(m) == expected * 2 + ["Linear"]


def test_the_default_is_unchanged():
    assert _kinds(models.MLP(SIZES, norm="batch")) == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]


def _torch_twin(torch, dm, position):
    """The same stack in torch.nn.Sequential (same order, so the same parameter names), dm's weights."""
    T = torch.nn
    layers = []
    for a, b in zip(SIZES[:-2], SIZES[1:-1]):
        pair = [T.BatchNorm1d(b), T.Tanh()] if position == "before_activation" else [T.Tanh(), T.BatchNorm1d(b)]
        layers += [T.Linear(a, b), *pair]
    tm = T.Sequential(*layers, T.Linear(SIZES[-2], SIZES[-1])).double()
    return copy_distnn_weights(dm, tm, same_keys=True)


@pytest.mark.parametrize("position", ["before_activation", "after_activation"])
def test_forward_and_backward_match_torch_sequential(torch, rng, position):
    dm = models.MLP(SIZES, activation="tanh", norm="batch", norm_position=position,
                    generator=np.random.default_rng(0))
    dm.to(np.float64)
    for name, p in dm.named_parameters():  # BatchNorm's weight and bias away from 1 and 0
        p.data[...] = rng.standard_normal(p.shape)
    tm = _torch_twin(torch, dm, position)
    x = rng.standard_normal((7, SIZES[0]))
    w = rng.standard_normal((7, SIZES[-1]))
    xd, xt = distnn.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
    out_d, out_t = dm(xd), tm(xt)
    np.testing.assert_allclose(out_d.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    (out_d * distnn.Tensor(w)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg="input grad")
    tparams = dict(tm.named_parameters())
    for name, p in dm.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    tbuffers = dict(tm.named_buffers())
    for name, b in dm.named_buffers():  # running statistics of the activations (or of the pre-activations)
        np.testing.assert_allclose(np.asarray(b.numpy()), tbuffers[name].numpy(), rtol=1e-12, err_msg=name)
    dm.eval(), tm.eval()
    np.testing.assert_allclose(dm(distnn.Tensor(x)).numpy(), tm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)


def test_the_two_placements_compute_different_functions():
    x = distnn.Tensor(np.random.default_rng(0).standard_normal((8, SIZES[0])).astype(np.float32))
    before = models.MLP(SIZES, norm="batch", generator=np.random.default_rng(1))
    after = models.MLP(SIZES, norm="batch", norm_position="after_activation", generator=np.random.default_rng(1))
    # the same weights: the parameters come in the same order and shapes (under other indices: 1.weight, 2.weight)
    for a, b in zip(after.parameters(), before.parameters()):
        a.data[...] = b.data
    assert not np.allclose(before(x).numpy(), after(x).numpy())


def test_bad_values_are_clear_errors():
    with pytest.raises(ValueError, match="norm_position must be one of 'before_activation', 'after_activation', "
                                         "got 'after'"):
        models.MLP(SIZES, norm="batch", norm_position="after")
    with pytest.raises(ValueError, match=r"norm_position = 'after_activation' needs norm \('batch' or 'layer'\)"):
        models.MLP(SIZES, norm_position="after_activation")
    with pytest.raises(ConfigError, match="model.norm_position must be one of 'before_activation', "
                                          "'after_activation', got 'pre'"):
        load_config("digits_mlp", ["model.norm='batch'", "model.norm_position='pre'"])
    with pytest.raises(ConfigError, match=r"model.norm_position = 'after_activation' needs model.norm"):
        load_config("digits_mlp", ["model.norm_position='after_activation'"])
    cfg = load_config("digits_mlp", ["model.norm='layer'", "model.norm_position='after_activation'"])
    assert cfg.model.norm_position == "after_activation"


def test_a_saved_run_rebuilds_the_placement(tmp_path):
    from distnn.train.job import run_training
    from distnn.train.run_dir import load_model

    run_training("digits_mlp", ["model.hidden_sizes=[16]", "model.norm='batch'",
                                "model.norm_position='after_activation'", "train.epochs=1", "run.plots=false",
                                "checkpoint.enabled=false"], out=str(tmp_path / "run"), quiet=True)
    model, meta, _ = load_model(str(tmp_path / "run"))
    assert meta["model"]["kwargs"]["norm_position"] == "after_activation"
    assert _kinds(model) == ["Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert isinstance(model[2], nn.BatchNorm1d) and not model.training
