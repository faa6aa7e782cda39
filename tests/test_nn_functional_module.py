"""``distnn.nn.functional``: PyTorch's place for the functional API (``import torch.nn.functional as F``), the same
module as ``distnn.functional``. Found last session: ``import distnn.nn.functional`` raised ModuleNotFoundError."""
import importlib

import numpy as np
import torch
import torch.nn.functional as TF

import distnn
import distnn.nn.functional as F

# (torch.nn.functional's names distnn has no counterpart of: typing helpers and the float8 grouped/scaled matmuls)
NOT_HERE = {"ScalingType", "SwizzleType", "Tensor", "assert_int_or_pair", "grouped_mm", "scaled_grouped_mm",
            "scaled_mm"}


def test_every_way_to_reach_it_is_the_same_module():
    assert F is distnn.functional is distnn.nn.functional is importlib.import_module("distnn.nn.functional")
    from distnn.nn.functional import cross_entropy, relu  # noqa: F401
    from distnn.nn import functional

    assert functional is F


def test_it_has_torch_nn_functionals_functions():
    names = {n for n in dir(TF) if not n.startswith("_") and callable(getattr(TF, n))
             and getattr(getattr(TF, n), "__module__", "") in ("torch.nn.functional", "torch._C._nn", "torch", None)}
    assert len(names) > 100
    assert sorted(n for n in names - NOT_HERE if not hasattr(F, n)) == []


def test_a_call_through_it_matches_torch():
    x = np.random.default_rng(0).standard_normal((4, 5))
    target = np.array([0, 2, 4, 1])
    ours = F.cross_entropy(F.relu(distnn.Tensor(x)), distnn.Tensor(target))
    theirs = TF.cross_entropy(TF.relu(torch.from_numpy(x)), torch.from_numpy(target))
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-12)
