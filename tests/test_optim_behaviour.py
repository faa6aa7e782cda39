"""distnn.optim's arguments and behaviour: invalid hyperparameters, groups and params refused, zero_grad,
closures, non-contiguous parameters updated in place, float32 kept, no parameter-sized temporaries."""
import numpy as np
import pytest

import distnn
from distnn.nn import Parameter
from distnn.optim import LAMB, LARS, SGD, Adagrad, Adam, AdamW, RMSprop

from memory_peak import peak_bytes
from optim_cases import ALL


BAD = [
    (SGD, dict(lr=-0.1), "lr"),
    (SGD, dict(lr=0.1, momentum=-0.5), "momentum"),
    (SGD, dict(lr=0.1, weight_decay=-1.0), "weight_decay"),
    (SGD, dict(lr=0.1, nesterov=True), "Nesterov"),
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening"),
    (Adam, dict(lr=-1e-3), "lr"),
    (Adam, dict(betas=(1.0, 0.999)), "betas\\[0\\]"),
    (Adam, dict(betas=(0.9, -0.1)), "betas\\[1\\]"),
    (Adam, dict(eps=-1e-8), "eps"),
    (AdamW, dict(weight_decay=-0.01), "weight_decay"),
    (Adagrad, dict(lr_decay=-1.0), "lr_decay"),
    (Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (RMSprop, dict(alpha=-0.1), "alpha"),
    (RMSprop, dict(momentum=-0.1), "momentum"),
    (LARS, dict(lr=0.1, trust_coefficient=0.0), "trust_coefficient"),
    (LARS, dict(lr=-0.1), "lr"),
    (LAMB, dict(betas=(0.9, 1.5)), "betas\\[1\\]"),
    # the wrong kind of value: named, not a TypeError from deep inside (betas=0.9 was "float is not iterable")
    (Adam, dict(betas=0.9), "betas: 0.9 .must be a pair"),
    (LAMB, dict(betas=0.9), "betas: 0.9 .must be a pair"),
    (Adam, dict(betas=("0.9", 0.999)), "betas\\[0\\].*must be a number"),
    (SGD, dict(lr="0.1"), "learning rate lr: '0.1' .must be a number"),
    (RMSprop, dict(lr=0.1, momentum=None), "momentum: None .must be a number"),
    (Adam, dict(weight_decay=True), "weight_decay: True .must be a number"),
]


@pytest.mark.parametrize("cls,kwargs,name", BAD, ids=[f"{c.__name__}-{n}" for c, _, n in BAD])
def test_invalid_hyperparameters_raise(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls([Parameter(np.zeros(2))], **kwargs)


def test_invalid_group_override_raises():
    opt = SGD([Parameter(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        opt.add_param_group({"params": [Parameter(np.zeros(2))], "momentum": -1.0})


def test_bad_params_raise():
    p = Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than one"):
        SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="set"):
        SGD({p}, lr=0.1)
    with pytest.raises(ValueError, match="required"):
        LARS([p])


def test_zero_grad_and_params_without_grad():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(3))
    opt = Adam([a, b], lr=0.1)
    a.grad = np.ones(3)
    opt.step()
    assert b not in opt.state and np.array_equal(b.data, np.ones(3))
    opt.zero_grad(set_to_none=False)
    assert np.array_equal(a.grad, np.zeros(3))
    opt.zero_grad()
    assert a.grad is None


def test_closure_and_autograd_training_reduces_loss():
    """End to end with the engine: fit y = 3x - 1 with a closure that recomputes the loss."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1))
    y = 3 * x - 1
    w, b = Parameter(np.zeros((1, 1))), Parameter(np.zeros(1))
    opt = SGD([w, b], lr=0.1, momentum=0.9)

    def closure():
        opt.zero_grad()
        err = distnn.Tensor(x) @ w + b - distnn.Tensor(y)
        loss = (err * err).mean()
        loss.backward()
        return loss

    first = float(closure().data)
    for _ in range(300):
        loss = opt.step(closure)
    assert float(loss.data) < 1e-4 * first
    np.testing.assert_allclose([w.data[0, 0], b.data[0]], [3.0, -1.0], atol=1e-2)


def test_non_contiguous_parameter_is_updated_in_place():
    base = np.arange(12.0).reshape(3, 4)
    view = base.T  # a transposed view: not C-contiguous
    p = Parameter(np.zeros((4, 3)))
    p.data = view
    opt = SGD([p], lr=1.0, momentum=0.9)
    p.grad = np.ones((4, 3))
    opt.step()
    np.testing.assert_array_equal(base, np.arange(12.0).reshape(3, 4) - 1.0)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, Adagrad, RMSprop, LARS, LAMB])
def test_float32_stays_float32_and_state_is_preallocated(cls):
    p = Parameter(np.ones((64, 64), dtype=np.float32))
    opt = cls([p], lr=0.01) if cls is not SGD else cls([p], lr=0.01, momentum=0.9)
    p.grad = np.full((64, 64), 0.5, dtype=np.float32)
    opt.step()
    assert p.data.dtype == np.float32
    for v in opt.state[p].values():
        if isinstance(v, np.ndarray):
            assert v.dtype == np.float32 and v.flags.c_contiguous


@pytest.mark.parametrize("cls,kwargs", ALL, ids=[c.__name__ for c, _ in ALL])
def test_step_allocates_no_parameter_sized_temporaries(cls, kwargs):
    n = 1 << 20  # 4 MiB of float32
    p = Parameter(np.ones(n, dtype=np.float32))
    p.grad = np.full(n, 0.25, dtype=np.float32)
    opt = cls([p], **kwargs)
    opt.step()  # allocates the state buffers
    peak = peak_bytes(opt.step)
    # Scratch is preallocated and reused: a step allocates nothing array-sized, not even a chunk (256 KiB).
    assert peak < 64 * 1024, f"{cls.__name__}.step() allocated {peak} bytes at peak"
