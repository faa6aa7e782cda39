"""A dim out of range in ``norm``, ``Tensor.norm``, ``linalg.vector_norm``, ``linalg.matrix_norm`` and
``linalg.norm`` against PyTorch 2.13: an IndexError with PyTorch's text exactly, ``Dimension out of range (expected
to be in range of [-n, n-1], but got d)``, no op-name prefix (PyTorch's ATen range check names no op), for every
order, a single dim or a list, 0-d to 3-d inputs; and the dims in range still give torch's values."""
import numpy as np
import pytest
import torch

import distnn

SHAPES = [(), (4,), (2, 3), (2, 3, 2)]
ORDERS = [None, 2, 1, 0, float("inf"), 3, "fro", "nuc"]


def _outcome(L, call, shape, dtype):
    x = L.tensor(np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) - 2, dtype=getattr(L, dtype))
    try:
        return ("ok", np.asarray(call(L, x).detach().numpy()).round(5).tolist())
    except IndexError as error:
        return ("IndexError", str(error))
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        return (type(error).__name__, str(error))


def _same(call, shape, dtype):
    want, got = _outcome(torch, call, shape, dtype), _outcome(distnn, call, shape, dtype)
    assert got == want
    return want


def _dims(shape):
    n = max(len(shape), 1)
    return [n, -n - 1, n + 2, (0, n), [-n - 1, 0]]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", ORDERS)
@pytest.mark.parametrize("shape", SHAPES)
def test_norm_dim_out_of_range_as_torch(shape, p, dtype):
    for dim in _dims(shape):
        if p == "nuc" and not isinstance(dim, (tuple, list)):
            continue  # (PyTorch's nuc norm takes two dims: another message, not this test's)
        for call in (lambda L, x: L.norm(x, p=p, dim=dim) if p is not None else L.norm(x, dim=dim),
                     lambda L, x: x.norm(p=p, dim=dim) if p is not None else x.norm(dim=dim)):
            outcome = _same(call, shape, dtype)
            if len(shape) >= 2 or p not in ("nuc",):
                assert outcome[0] != "ok"


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("ord", [2, 1, 0, float("inf"), -1])
@pytest.mark.parametrize("shape", SHAPES)
def test_vector_norm_dim_out_of_range_as_torch(shape, ord, dtype):  # noqa: A002
    for dim in _dims(shape):
        outcome = _same(lambda L, x: L.linalg.vector_norm(x, ord=ord, dim=dim), shape, dtype)
        assert outcome[0] == "IndexError" and outcome[1].startswith("Dimension out of range")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 2)])
def test_matrix_norms_dim_out_of_range_as_torch(shape, dtype):
    n = len(shape)
    for dim in [(0, n), (-n - 1, 0), (n + 1, 1)]:
        for call in (lambda L, x: L.linalg.matrix_norm(x, dim=dim), lambda L, x: L.linalg.norm(x, dim=dim),
                     lambda L, x: L.linalg.matrix_norm(x, ord="nuc", dim=dim)):
            outcome = _same(call, shape, dtype)
            assert outcome[0] == "IndexError"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 2)])
def test_dims_in_range_still_give_torchs_values(shape, dtype):
    for dim in (0, -1, (0, -1)) if len(shape) > 1 else (0, -1):
        for call in (lambda L, x: L.norm(x, dim=dim), lambda L, x: L.linalg.vector_norm(x, ord=3, dim=dim)):
            assert _same(call, shape, dtype)[0] == "ok"
