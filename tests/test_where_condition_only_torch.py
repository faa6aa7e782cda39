"""``torch.where(condition)`` with the condition alone is ``nonzero(condition, as_tuple=True)``; calls that fit
none of where's overloads get its parser's TypeError. Oracle: torch, same inputs."""
import numpy as np
import pytest
import torch

import distnn

CONDITIONS = [[1, 0, 1], [[1, 0], [0, 1]], [[0.5, 0.0, float("nan")]], 0.0, 2.0, [[True, False, True]],
              np.zeros((2, 0)), np.arange(24).reshape(2, 3, 4) % 3]


def _outcome(call):
    try:
        result = call()
    except Exception as e:  # noqa: BLE001 - the error's type and message are what is compared
        return type(e).__name__, str(e)
    return "ok", [(str(t.dtype).split(".")[-1], tuple(t.shape), t.numpy().tolist()) for t in result]


@pytest.mark.parametrize("values", CONDITIONS, ids=range(len(CONDITIONS)))
def test_where_condition_alone_is_nonzero_as_tuple(values):
    ours = _outcome(lambda: distnn.where(distnn.tensor(np.asarray(values))))
    theirs = _outcome(lambda: torch.where(torch.tensor(np.asarray(values))))
    assert ours[0] == "ok" and ours == theirs


def test_where_condition_alone_is_no_graph_and_refuses_non_tensors():
    (indices,) = distnn.where(distnn.ones(3, requires_grad=True))
    assert not indices.requires_grad and indices.numpy().tolist() == [0, 1, 2]
    ours = _outcome(lambda: distnn.where([1, 0]))
    assert ours == _outcome(lambda: torch.where([1, 0]))
    assert ours[0] == "TypeError"


@pytest.mark.parametrize("call", [lambda m, c: m.where(c, m.ones(3)), lambda m, c: m.where(c, 1.5),
                                  lambda m, c: m.where(c, out=m.ones(3))], ids=["input only", "number", "out only"])
def test_where_incomplete_calls_refused_as_torch(call):
    ours = _outcome(lambda: call(distnn, distnn.tensor([True, False, True])))
    theirs = _outcome(lambda: call(torch, torch.tensor([True, False, True])))
    assert theirs[0] == "TypeError" and ours == theirs


def test_three_argument_where_unchanged():
    c = distnn.tensor([True, False, True])
    assert distnn.where(c, distnn.ones(3), distnn.zeros(3)).numpy().tolist() == [1.0, 0.0, 1.0]
