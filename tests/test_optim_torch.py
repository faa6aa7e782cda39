"""distnn.optim optimizers against torch.optim: trajectories, parameter groups, defaults, and a PyTorch optimizer
state dict loading as it is."""
import numpy as np
import pytest

import distnn
from distnn.nn import Parameter
from distnn.optim import SGD

from optim_cases import init_params, run_distnn, run_torch


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.1, nesterov=True, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.02, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.05, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1, eps=1e-8)),
    ("Adagrad", dict(lr=0.05, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, maximize=True, weight_decay=0.05)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_trajectory_matches_torch(torch, name, kwargs):
    ours = run_distnn(getattr(distnn.optim, name), kwargs)
    ref = run_torch(torch, getattr(torch.optim, name), kwargs)
    start = init_params()
    for a, b, s in zip(ours, ref, start):
        assert not np.array_equal(b, s)  # the reference actually moved
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_param_groups_match_torch(torch):
    """Per-group hyperparameters override the defaults, as in torch."""
    def groups(ps):
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.5, "momentum": 0.0, "weight_decay": 0.1}]

    ours = run_distnn(SGD, dict(lr=0.05, momentum=0.9), groups=groups)
    ref = run_torch(torch, torch.optim.SGD, dict(lr=0.05, momentum=0.9), groups=groups)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_defaults_match_torch(torch):
    params = [Parameter(np.zeros(3))]
    tparams = [torch.zeros(3, requires_grad=True)]
    for name in ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop"]:
        ours = getattr(distnn.optim, name)(params).param_groups[0]
        ref = getattr(torch.optim, name)(tparams).param_groups[0]
        for key, value in ours.items():
            if key != "params":
                assert ref[key] == value, (name, key)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RMSprop", "Adagrad", "SGD"])
def test_a_pytorch_optimizer_state_dict_loads_as_it_is(torch, name):
    # PyTorch keeps 'step' as a float tensor: "loaded state 'step' ... is tensor(3.), not a whole number of steps"
    import distnn.optim as O
    from distnn.nn import Parameter

    kw = {"lr": 0.05, **({"momentum": 0.9} if name == "SGD" else {})}
    tp = torch.nn.Parameter(torch.linspace(-1, 1, 5))
    theirs = getattr(torch.optim, name)([tp], **kw)
    for t in range(3):
        tp.grad = torch.cos(tp.detach()) + t
        theirs.step()
    p = Parameter(tp.detach().numpy().copy())
    ours = getattr(O, name)([p], **kw)
    ours.load_state_dict(theirs.state_dict())
    for t in range(3, 5):
        tp.grad = torch.cos(tp.detach()) + t
        theirs.step()
        p.grad = np.cos(p.data) + t
        ours.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-6, atol=1e-7)
