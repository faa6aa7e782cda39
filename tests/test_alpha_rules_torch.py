"""``add`` / ``sub`` / ``rsub`` / ``subtract`` (and the Tensor methods, in-place too) with PyTorch 2.13's ``alpha``
rules: a float alpha refused for integer and bool results, a bool alpha only for bool results, a complex alpha only
for complex results; a bool result is a logical or."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

OPERANDS = {"int": np.array([1, -2, 3]), "float": np.array([0.5, -2.0, 3.0], np.float32),
            "bool": np.array([True, False, True])}
ALPHAS = [1, 2, 0, -3, 1.5, 2.0, True, False, 1j]
CALLS = {
    "add": lambda m, x, y, a: m.add(x, y, alpha=a),
    "sub": lambda m, x, y, a: m.sub(x, y, alpha=a),
    "subtract": lambda m, x, y, a: m.subtract(x, y, alpha=a),
    "rsub": lambda m, x, y, a: m.rsub(x, y, alpha=a),
    "Tensor.add": lambda m, x, y, a: x.add(y, alpha=a),
    "Tensor.sub": lambda m, x, y, a: x.sub(y, alpha=a),
    "Tensor.add_": lambda m, x, y, a: x.clone().add_(y, alpha=a),
    "Tensor.sub_": lambda m, x, y, a: x.clone().sub_(y, alpha=a),
    "number other": lambda m, x, y, a: m.add(x, 2, alpha=a),
    "float number other": lambda m, x, y, a: m.add(x, 1.5, alpha=a),
}


def _run(m, call, x, y, alpha):
    try:
        return call(m, m.tensor(x), m.tensor(y), alpha), None
    except Exception as e:  # noqa: BLE001 - compared below
        return None, e


@pytest.mark.parametrize("alpha", ALPHAS, ids=repr)
@pytest.mark.parametrize("kinds", [("int", "int"), ("float", "float"), ("bool", "bool"), ("int", "float"),
                                   ("float", "int"), ("bool", "int")], ids="-".join)
@pytest.mark.parametrize("name", list(CALLS))
def test_alpha_as_torch(name, kinds, alpha):
    x, y = OPERANDS[kinds[0]], OPERANDS[kinds[1]]
    ours, our_error = _run(distnn, CALLS[name], x, y, alpha)
    theirs, their_error = _run(torch, CALLS[name], x, y, alpha)
    if their_error is not None:
        assert our_error is not None, (ours, their_error)
        assert isinstance(our_error, type(their_error)), (our_error, their_error)
        gist = str(their_error).split(".")[0].split(",")[0]
        if "can't be cast" in gist:  # (in place, PyTorch checks the result's cast first: either refusal will do)
            return
        assert gist in str(our_error), (str(our_error), str(their_error))
        return
    assert our_error is None, (our_error, theirs)
    assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", "")), (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alpha_gradients(dtype):
    a, b = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25, -3.0])
    for name in ("add", "sub", "rsub"):
        ours = [distnn.tensor(v.astype(dtype), requires_grad=True) for v in (a, b)]
        theirs = [torch.tensor(v.astype(dtype), requires_grad=True) for v in (a, b)]
        getattr(distnn, name)(*ours, alpha=-2.5).sum().backward()
        getattr(torch, name)(*theirs, alpha=-2.5).sum().backward()
        for o, t in zip(ours, theirs):
            np.testing.assert_allclose(o.grad, t.grad.numpy())
