"""A module that holds itself (or an ancestor) as a child, which torch allows: assigning it must not recurse.

Found last session: ``m.cycle = m`` raised RecursionError in distnn when naming the children; in torch the
assignment works, and the walks that keep a memo (modules, named_modules, parameters, children) see each module
once. (torch's state_dict, repr, apply and train recurse without end on such a module: not compared.)
"""
import numpy as np
import pytest
import torch

import distnn


def _pair(how):
    ours, theirs = distnn.nn.Sequential(distnn.nn.Linear(2, 3)), torch.nn.Sequential(torch.nn.Linear(2, 3))
    for m in (ours, theirs):
        if how == "setattr":
            m.cycle = m
        elif how == "add_module":
            m.add_module("cycle", m)
        else:  # through a grandchild: m.inner.back = m
            m.inner = type(m)()
            m.inner.back = m
    return ours, theirs


@pytest.mark.parametrize("how", ["setattr", "add_module", "grandchild"])
def test_a_module_holding_itself_walks_as_torch(how):
    ours, theirs = _pair(how)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert ours[0](distnn.ones((4, 2))).shape == tuple(theirs[0](torch.ones(4, 2)).shape)


def test_the_module_assigned_to_itself_keeps_its_name_in_messages():
    ours, _ = _pair("setattr")
    assert ours.where() == "Sequential"  # (the root: not renamed 'cycle')
    assert ours[0].where() == "Linear '0'"


def test_zero_grad_and_an_optimizer_see_each_parameter_once():
    ours, _ = _pair("setattr")
    params = list(ours.parameters())
    assert len(params) == 2
    ours[0](distnn.ones((4, 2))).sum().backward()
    distnn.optim.SGD(params, lr=0.5).step()
    ours.zero_grad()
    assert all(p.grad is None or not np.any(p.grad.numpy()) for p in params)
