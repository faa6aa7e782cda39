"""``linalg.matrix_norm`` of float16 matrices against PyTorch 2.13 (CPU): 'fro', 1, -1, inf and -inf are
computed (sums added up in float32, rounded once to float16), values and gradients PyTorch's; 'nuc', 2 and -2
(singular values) are refused with PyTorch's message, before ``dtype=`` could widen the input; and the checks
run in PyTorch's order, with its ``dtype=`` checks (no narrowing)."""
import math
import warnings

import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

COMPUTED_ORDS = ["fro", 1, -1, math.inf, -math.inf]
REFUSED_ORDS = ["nuc", 2, -2]


def _both(rng, shape, scale):
    x = (rng.standard_normal(shape) * scale).astype(np.float16)
    return x, torch.tensor(x, requires_grad=True), distnn.tensor(x, requires_grad=True)


def _error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the message itself is compared
        return type(e).__name__, str(e)
    return None


@pytest.mark.parametrize("ord", COMPUTED_ORDS)
@pytest.mark.parametrize("shape,dim,keepdim", [((3, 4), (-2, -1), False), ((2, 5, 3), (0, 2), True),
                                               ((2, 5, 3), (2, 1), False)])
@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_value_and_gradient_are_torchs(ord, shape, dim, keepdim, scale):  # noqa: A002
    rng = np.random.default_rng(7)
    x, tx, dx = _both(rng, shape, scale)
    ty = torch.linalg.matrix_norm(tx, ord, dim, keepdim)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no numpy warning on the way)
        dy = distnn.linalg.matrix_norm(dx, ord, dim, keepdim)
    assert dy.dtype == np.float16 and tuple(dy.shape) == tuple(ty.shape)
    np.testing.assert_array_equal(np.asarray(dy.data), ty.detach().numpy())
    g = rng.uniform(0.5, 2, ty.shape).astype(np.float16)
    ty.backward(torch.from_numpy(g))
    dy.backward(distnn.tensor(g))
    assert dx.grad.dtype == np.float16
    np.testing.assert_array_equal(np.asarray(dx.grad.data), tx.grad.numpy())


@pytest.mark.parametrize("ord", COMPUTED_ORDS)
def test_sums_past_float16_range_are_inf_as_torch(ord):  # noqa: A002
    """Column/row sums and the Frobenius sum of squares past 65504: inf, PyTorch's, quietly."""
    rng = np.random.default_rng(11)
    x = rng.uniform(20000, 30000, (4, 5)).astype(np.float16)
    expected = torch.linalg.matrix_norm(torch.from_numpy(x), ord).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = distnn.linalg.matrix_norm(distnn.tensor(x), ord)
    np.testing.assert_array_equal(np.asarray(got.data), expected)


def test_widening_dtype_gives_torchs_float32_value():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6)).astype(np.float16)
    for ord in COMPUTED_ORDS:  # noqa: A001
        expected = torch.linalg.matrix_norm(torch.from_numpy(x), ord, dtype=torch.float32).numpy()
        got = distnn.linalg.matrix_norm(distnn.tensor(x), ord, dtype=distnn.float32)
        assert got.dtype == np.float32
        np.testing.assert_allclose(np.asarray(got.data), expected, rtol=1e-6)


def _cases():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((3, 4))
    half, single = m.astype(np.float16), m.astype(np.float32)
    return [
        *[(half, {"ord": o}) for o in REFUSED_ORDS],
        (half, {"ord": "nuc", "dtype": "float32"}),  # (refused before the cast, as PyTorch)
        (half, {"ord": 2, "dim": (1, -1)}),  # (the dtype before the dims)
        (half, {"ord": 1, "dim": (1, -1)}),  # (dims wrapped in the message: "Got (1, 1)")
        (half, {"ord": "fro", "dim": (0,)}),
        (half, {"ord": "fro", "dim": (0, 1, 1)}),
        (np.ones(3, np.float16), {"ord": 3}),  # (the order before the input's dims)
        (np.ones(3, np.float16), {"ord": "nuc"}),
        (single, {"ord": "fro", "dtype": "float16"}),  # (narrowing)
        (single, {"ord": 1, "dtype": "complex64"}),
        (single, {"ord": 1, "dtype": "int64"}),
        (m.astype(np.int64), {"ord": "nuc"}),
    ]


@pytest.mark.parametrize("case", range(len(_cases())))
def test_refusals_are_torchs(case):
    a, kw = _cases()[case]
    tkw, dkw = dict(kw), dict(kw)
    if "dtype" in kw:
        tkw["dtype"], dkw["dtype"] = getattr(torch, kw["dtype"]), getattr(distnn, kw["dtype"])
    expected = _error(lambda: torch.linalg.matrix_norm(torch.from_numpy(a), **tkw))
    assert expected is not None
    assert _error(lambda: distnn.linalg.matrix_norm(distnn.tensor(a), **dkw)) == expected


@pytest.mark.parametrize("ord", REFUSED_ORDS)
def test_norm_routes_the_refusal(ord):  # noqa: A002
    x = np.random.default_rng(1).standard_normal((3, 3)).astype(np.float16)
    expected = _error(lambda: torch.linalg.norm(torch.from_numpy(x), ord))
    assert _error(lambda: distnn.linalg.norm(distnn.tensor(x), ord)) == expected
