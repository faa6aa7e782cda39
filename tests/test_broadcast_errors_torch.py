"""Operands that do not broadcast together: distnn raises PyTorch's RuntimeError with its message (``The size of
tensor a (3) must match the size of tensor b (2) at non-singleton dimension 0``), in the binary operators, the
comparisons, where, the functional forms and the in-place operators (``output with shape [1] doesn't match the
broadcast shape [2]`` where the operands broadcast but not to the tensor's shape). Oracle: torch, same calls."""
import numpy as np
import pytest
import torch

import distnn
import distnn.functional as F

SHAPE_PAIRS = [((3,), (2,)), ((2, 3), (4, 1, 2)), ((2, 3), (3, 2)), ((2, 3, 4), (5, 4)), ((4, 1, 3), (2, 5))]

BINARY = {
    "a + b": lambda m, a, b: a + b, "a - b": lambda m, a, b: a - b, "a * b": lambda m, a, b: a * b,
    "a / b": lambda m, a, b: a / b, "a ** b": lambda m, a, b: a ** b, "a < b": lambda m, a, b: a < b,
    "a <= b": lambda m, a, b: a <= b, "a > b": lambda m, a, b: a > b, "a >= b": lambda m, a, b: a >= b,
    "a == b": lambda m, a, b: a == b, "a != b": lambda m, a, b: a != b, "a.eq(b)": lambda m, a, b: a.eq(b),
    "a.ne(b)": lambda m, a, b: a.ne(b), "maximum": lambda m, a, b: m.maximum(a, b),
    "minimum": lambda m, a, b: m.minimum(a, b), "atan2": lambda m, a, b: m.atan2(a, b),
    "where(a > 0, a, b)": lambda m, a, b: m.where(a > 0, a, b),
    "where(b > 0, a, b)": lambda m, a, b: m.where(b > 0, a, b),
}


def _outcome(call):
    try:
        result = call()
    except Exception as e:  # noqa: BLE001 - the error's type and message are what is compared
        return type(e).__name__, str(e)
    return "ok", np.asarray(result.detach().numpy() if hasattr(result, "detach") else result).tolist()


def _both(fn, sa, sb, grad=False):
    ours = _outcome(lambda: fn(distnn, distnn.ones(*sa, requires_grad=grad), distnn.ones(*sb)))
    theirs = _outcome(lambda: fn(torch, torch.ones(*sa, requires_grad=grad), torch.ones(*sb)))
    return ours, theirs


@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_mismatch_as_torch(name, shapes):
    ours, theirs = _both(BINARY[name], *shapes)
    assert theirs[0] == "RuntimeError"
    assert ours == theirs


@pytest.mark.parametrize("name", ["a + b", "a * b", "a / b", "where(a > 0, a, b)"])
def test_recorded_mismatch_as_torch(name):
    ours, theirs = _both(BINARY[name], (2, 3), (4, 1, 2), grad=True)
    assert theirs[0] == "RuntimeError" and ours == theirs


@pytest.mark.parametrize("shapes", [((3,), (2,)), ((3,), (1,)), ((1, 3), (2, 3))], ids=str)
def test_where_three_shapes(shapes):
    """The condition's shape takes part: PyTorch folds the three shapes left to right."""
    for cond_shape in [(2, 1), (5,), (3,), (1,)]:
        def call(m):
            return m.where(m.ones(*cond_shape) > 0, m.ones(*shapes[0]), m.ones(*shapes[1]))
        assert _outcome(lambda: call(distnn)) == _outcome(lambda: call(torch))


INPLACE = {
    "+=": lambda a, b: a.__iadd__(b), "-=": lambda a, b: a.__isub__(b), "*=": lambda a, b: a.__imul__(b),
    "/=": lambda a, b: a.__itruediv__(b), "add_": lambda a, b: a.add_(b), "mul_": lambda a, b: a.mul_(b),
}


@pytest.mark.parametrize("recording", [False, True])
@pytest.mark.parametrize("shapes", [((3,), (2,)), ((1,), (2,)), ((2, 3), (4, 1, 3)), ((2, 3), (3, 2))], ids=str)
@pytest.mark.parametrize("op", list(INPLACE))
def test_inplace_mismatch_as_torch(op, shapes, recording):
    def call(m):
        leaf = m.ones(*shapes[0], requires_grad=recording)
        a = leaf * 1 if recording else leaf
        return INPLACE[op](a, m.ones(*shapes[1]))
    ours, theirs = _outcome(lambda: call(distnn)), _outcome(lambda: call(torch))
    assert theirs[0] == "RuntimeError" and ours == theirs


def test_functional_forms_and_values_unchanged():
    """Shapes that broadcast still give numpy's (and torch's) values."""
    a, b = np.arange(6.0).reshape(2, 3), np.arange(3.0) + 1
    assert np.allclose((distnn.tensor(a) * distnn.tensor(b)).numpy(), a * b)
    assert ((distnn.tensor(a) < distnn.tensor(b)).numpy() == (a < b)).all()
    x = distnn.tensor(a)
    x += distnn.tensor(b)
    assert np.allclose(x.numpy(), a + b)
    assert np.allclose(F.maximum(distnn.tensor(a), distnn.tensor(b)).numpy(), np.maximum(a, b))
