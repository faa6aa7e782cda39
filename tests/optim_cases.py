"""Shared by the tests/test_optim_*.py files: parameters and gradients drawn from seeds, and a distnn or torch
optimizer run over them."""
import numpy as np

from distnn.nn import Parameter
from distnn.optim import LAMB, LARS, SGD, Adagrad, Adam, AdamW, RMSprop


# One tensor larger than a float64 chunk (32768 elements) so chunk boundaries are exercised,
# a matrix, a bias-like vector and a scalar.
SHAPES = [(300, 120), (5, 4), (4,), ()]


STEPS = 50


def init_params(dtype=np.float64, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def grads(params, t, seed=1):
    """Deterministic gradients that depend on the current parameters (so trajectories can diverge)."""
    rng = np.random.default_rng((seed, t))
    return [np.asarray(np.tanh(p) * 0.5 + 0.3 * rng.standard_normal(p.shape), dtype=p.dtype) for p in params]


def run_distnn(cls, kwargs, steps=STEPS, dtype=np.float64, groups=None):
    params = [Parameter(a) for a in init_params(dtype)]
    opt = cls(params if groups is None else groups(params), **kwargs)
    for t in range(steps):
        for p, g in zip(params, grads([p.data for p in params], t)):
            p.grad = g
        opt.step()
    return [p.data for p in params]


def run_torch(torch, cls, kwargs, steps=STEPS, groups=None):
    params = [torch.tensor(a, requires_grad=True) for a in init_params(np.float64)]
    opt = cls(params if groups is None else groups(params), foreach=False, **kwargs)
    for t in range(steps):
        for p, g in zip(params, grads([p.detach().numpy() for p in params], t)):
            p.grad = torch.from_numpy(g)
        opt.step()
    return [p.detach().numpy() for p in params]


ALL = [(SGD, dict(lr=0.05, momentum=0.9, nesterov=True)), (Adam, dict(lr=0.01, amsgrad=True)),
       (AdamW, dict(lr=0.01)), (Adagrad, dict(lr=0.05, lr_decay=0.01)),
       (RMSprop, dict(lr=0.01, centered=True, momentum=0.5)), (LARS, dict(lr=1.0, weight_decay=1e-4)),
       (LAMB, dict(lr=0.01, weight_decay=0.01))]
