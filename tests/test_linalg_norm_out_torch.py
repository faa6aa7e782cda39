"""``out=`` on ``linalg.vector_norm``, ``linalg.matrix_norm`` and ``linalg.norm`` as PyTorch 2.13's: values,
dtypes, shapes and ``out`` returned; the parser's refusal of an ``out`` that is no Tensor; the dtype refusals
(C++'s names for ``vector_norm``'s structured kernel, ``linalg.norm expected out tensor dtype ...`` for the
composite ones, ``norm``'s under its own name even for a vector norm); autograd: ``vector_norm`` refuses a
recording call, ``matrix_norm`` and ``norm`` copy the recorded norm into ``out`` (``CopyBackwards``, gradients
reaching the input); the resize warning. Oracle: torch, same calls (``m`` stands for either library)."""
import warnings

import numpy as np
import pytest
import torch

import distnn

CASES = [
    "m.linalg.vector_norm(x, out=o)", "m.linalg.vector_norm(x, 1, 1, out=o)",
    "m.linalg.vector_norm(x, 3, (0, 1), True, out=o)",
    "m.linalg.vector_norm(x, float('inf'), 0, out=o)", "m.linalg.vector_norm(xc, out=o)",
    "m.linalg.vector_norm(x, dtype=m.float64, out=o64)", "m.linalg.vector_norm(x, out=o64)",
    "m.linalg.vector_norm(x, out=oi)", "m.linalg.vector_norm(xc, out=m.zeros(0, dtype=m.complex64))",
    "m.linalg.vector_norm(x, dtype=m.float64, out=o)", "m.linalg.vector_norm(x, dim=1, out=m.zeros(5))",
    "m.linalg.vector_norm(x, out=None)", "m.linalg.vector_norm(x, dim=1, out=m.zeros(1).expand(2))",
    "m.linalg.vector_norm(x3, 1, 1, out=m.zeros(2, 1).expand(2, 2))",
    "m.linalg.vector_norm(x3, 1, 1, out=m.zeros(1, 2).expand(2, 2))",
    "m.linalg.vector_norm(x3, 3, (1,), True, out=m.zeros(1, 1, 1).expand(2, 1, 2))",
    "m.linalg.vector_norm(x3, float('inf'), -1, out=m.zeros(1, 1).expand(2, 3))",
    "m.linalg.vector_norm(x, dim=1, out=m.zeros(1).expand(3))", "m.linalg.vector_norm(x, out=3)", "m.linalg.vector_norm(x, 2, 0, out=[1])",
    "m.linalg.vector_norm(xg, out=o)", "m.linalg.vector_norm(x, out=og)", "m.linalg.vector_norm(xi, out=o)",
    "m.linalg.matrix_norm(x, out=o)", "m.linalg.matrix_norm(x, 'nuc', out=o)", "m.linalg.matrix_norm(x, 2, out=o)",
    "m.linalg.matrix_norm(x, -1, out=o)", "m.linalg.matrix_norm(x, float('inf'), keepdim=True, out=o)",
    "m.linalg.matrix_norm(x3, dim=(0, 2), out=o)", "m.linalg.matrix_norm(x, out=o64)",
    "m.linalg.matrix_norm(x, 'nuc', out=oi)", "m.linalg.matrix_norm(x, dtype=m.float64, out=o)",
    "m.linalg.matrix_norm(x, dtype=m.float64, out=o64)", "m.linalg.matrix_norm(x, out=3)",
    "m.linalg.matrix_norm(x, 'nuc', out=[1])", "m.linalg.matrix_norm(x, dim=1, out=o)",
    "m.linalg.matrix_norm(x, out=m.zeros(4))", "m.linalg.matrix_norm(x, out=og)",
    "m.linalg.matrix_norm(x3, out=m.zeros(1).expand(2))", "m.linalg.matrix_norm(x, out=None)",
    "m.linalg.norm(x, out=o)", "m.linalg.norm(x, 2, out=o)", "m.linalg.norm(x, 'nuc', out=o)",
    "m.linalg.norm(x, 'fro', out=o)", "m.linalg.norm(x, dim=1, out=o)", "m.linalg.norm(x, 3, 1, True, out=o)",
    "m.linalg.norm(x[0], 1, out=o)", "m.linalg.norm(x3, dim=(1, 2), out=o)", "m.linalg.norm(xc, out=o)",
    "m.linalg.norm(x, out=o64)", "m.linalg.norm(x, dim=1, out=o64)", "m.linalg.norm(x, 2, out=oi)",
    "m.linalg.norm(xc, out=m.zeros(0, dtype=m.complex64))", "m.linalg.norm(x, dtype=m.float64, out=o64)",
    "m.linalg.norm(x, out=3)", "m.linalg.norm(x, 2, 1, out=3)", "m.linalg.norm(x, dim=1, out=[1])",
    "m.linalg.norm(x, out=m.zeros(1).expand(2))", "m.linalg.norm(x, dim=1, out=m.zeros(1).expand(2))",
    "m.linalg.norm(x, out=og)", "m.linalg.norm(x3, 2, out=o)", "m.linalg.norm(xi, out=o)",
    "m.linalg.norm(x, out=None)",
]


def _outcome(m, expression):
    x = m.tensor(np.arange(1.0, 7.0).reshape(2, 3), dtype=m.float32)
    x3 = m.tensor(np.arange(1.0, 13.0).reshape(2, 3, 2), dtype=m.float32)
    xc = m.complex(x, -x)
    xi = m.tensor(np.arange(6).reshape(2, 3))
    xg = x.clone().requires_grad_()
    o, o64, oi = m.zeros(0), m.zeros(0, dtype=m.float64), m.zeros(0, dtype=m.int64)
    og = m.zeros(0, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = eval(expression)  # noqa: S307 - the test's own expressions
        except Exception as e:  # noqa: BLE001 - the error's type and message are what is compared
            # (distnn's in-place refusal of a leaf adds its own hint after torch's words)
            return type(e).__name__, str(e).split(" (distnn: ")[0]
    said = [str(w.message)[:60] for w in caught]
    values = np.round(result.detach().numpy(), 4).tolist()
    returned = "o" if result is o else "o64" if result is o64 else "fresh"
    return ("ok", str(result.dtype).split(".")[-1], tuple(result.shape), values, returned, said,
            type(result.grad_fn).__name__ if result.grad_fn is not None else None)


@pytest.mark.parametrize("expression", CASES)
def test_out_as_torch(expression):
    assert _outcome(distnn, expression) == _outcome(torch, expression)


@pytest.mark.parametrize("call", ["m.linalg.matrix_norm(a, 'nuc', out=o)", "m.linalg.norm(a, dim=1, out=o)",
                                  "m.linalg.norm(a, 2, out=o)", "m.linalg.norm(a, out=o)"])
def test_recorded_norm_copied_into_out_takes_gradients(call):
    """The composite ``out=``: ``out`` is a non-leaf of the graph; its backward reaches the input as the norm's."""
    grads = []
    for m in (torch, distnn):
        a = m.tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
        o = m.zeros(0, dtype=a.dtype)
        r = eval(call)  # noqa: S307 - the test's own expressions
        assert r is o and not o.is_leaf
        (r * r).sum().backward()
        grads.append(np.asarray(a.grad.numpy() if hasattr(a.grad, "numpy") else a.grad))  # (distnn's: an array)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-9)
