"""``add``/``sub`` with ``alpha`` (float32: PyTorch's one rounding, a fused multiply-add) and ``pow`` with bool
operands, against PyTorch with the same inputs."""
import zlib

import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

SPECIALS = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-45, 3e38, -3e38, 1e-40, 2.0 ** -126, 5.0], np.float32)


def _draw(rng, shape):
    """float32 values over the whole range (subnormals to near-overflow) with inf, NaN and signed zeros."""
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):  # (a few overflow to inf: wanted)
        scale = (np.float32(10.0) ** rng.integers(-40, 39, n)).astype(np.float32)
        x = rng.standard_normal(n).astype(np.float32) * scale
    picks = rng.random(n) < 0.05
    x[picks] = rng.choice(SPECIALS, picks.sum())
    return x.reshape(shape)


def _same_bits(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"{(~same).sum()} of {same.size} differ, e.g. {got[~same][:3]} vs {want[~same][:3]}"


SHAPES = [((1000,), (1000,)), ((7,), (7,)), ((), (33,)), ((5, 33), (33,)), ((4, 1, 17), (1, 9, 17)), ((64,), ())]
ALPHAS = [3, -2, 0.1, 2.5, 1e30, 0]


@pytest.mark.parametrize("alpha", [3, 0.1, -7.25])
def test_float32_subtract_is_sub_bitwise(alpha):
    """``subtract`` (torch.sub's other name) takes sub's single rounding too."""
    rng = np.random.default_rng(13)
    a, b = _draw(rng, (1000,)), _draw(rng, (1000,))
    want = torch.subtract(torch.from_numpy(a), torch.from_numpy(b), alpha=alpha).numpy()
    _same_bits(distnn.subtract(distnn.tensor(a), distnn.tensor(b), alpha=alpha).data, want)


@pytest.mark.parametrize("op", ["add", "sub"])
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("shapes", SHAPES)
def test_float32_function_and_method_bitwise(op, alpha, shapes):
    rng = np.random.default_rng(zlib.crc32(repr((op, alpha, shapes)).encode()))
    for _ in range(3):
        a, b = _draw(rng, shapes[0]), _draw(rng, shapes[1])
        want = getattr(torch, op)(torch.from_numpy(a), torch.from_numpy(b), alpha=alpha).numpy()
        _same_bits(getattr(distnn, op)(distnn.tensor(a), distnn.tensor(b), alpha=alpha).data, want)
        _same_bits(getattr(distnn.tensor(a), op)(distnn.tensor(b), alpha=alpha).data, want)


@pytest.mark.parametrize("op", ["add", "sub"])
@pytest.mark.parametrize("alpha", [3, 0.1, -7.25])
def test_float32_non_contiguous_bitwise(op, alpha):
    rng = np.random.default_rng(7)
    a, b = _draw(rng, (40, 30)), _draw(rng, (30, 40))
    ta, tb = torch.from_numpy(a)[:, ::2], torch.from_numpy(b).T[:, ::2]
    da, db = distnn.tensor(a)[:, ::2], distnn.tensor(b).T[:, ::2]
    want = getattr(torch, op)(ta, tb, alpha=alpha).numpy()
    _same_bits(getattr(distnn, op)(da, db, alpha=alpha).data, want)


@pytest.mark.parametrize("op", ["add", "sub"])
@pytest.mark.parametrize("alpha", [3, 0.1])
def test_float32_in_place_and_out_bitwise(op, alpha):
    rng = np.random.default_rng(11)
    a, b = _draw(rng, (513,)), _draw(rng, (513,))
    want = getattr(torch, op)(torch.from_numpy(a), torch.from_numpy(b), alpha=alpha).numpy()
    x = distnn.tensor(a.copy())
    getattr(x, op + "_")(distnn.tensor(b), alpha=alpha)
    _same_bits(x.data, want)
    out = distnn.tensor(np.empty(513, np.float32))
    getattr(distnn, op)(distnn.tensor(a), distnn.tensor(b), alpha=alpha, out=out)
    _same_bits(out.data, want)
    # the general in-place path (a leaf's view that records a gradient)
    leaf = distnn.tensor(a.copy(), requires_grad=True)
    y = leaf * 1.0
    getattr(y, op + "_")(distnn.tensor(b), alpha=alpha)
    _same_bits(y.data, (torch.from_numpy(a) * 1.0).__getattribute__(op + "_")(torch.from_numpy(b), alpha=alpha)
               .numpy())


@pytest.mark.parametrize("op", ["add", "sub"])
@pytest.mark.parametrize("alpha", [3, 0.1, -2.5])
def test_float32_gradients_bitwise(op, alpha):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((6, 5)).astype(np.float32)
    g = rng.standard_normal((6, 5)).astype(np.float32)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    getattr(torch, op)(ta, tb, alpha=alpha).backward(torch.from_numpy(g))
    da, db = distnn.tensor(a, requires_grad=True), distnn.tensor(b, requires_grad=True)
    y = getattr(distnn, op)(da, db, alpha=alpha)
    assert y.grad_fn.name() == getattr(torch, op)(ta, tb, alpha=alpha).grad_fn.name()
    y.backward(distnn.tensor(g))
    _same_bits(da.grad.data, ta.grad.numpy())
    _same_bits(db.grad.data, tb.grad.numpy())


@pytest.mark.parametrize("op", ["add", "sub"])
def test_float32_broadcast_gradient_close(op):
    """A broadcast ``other``: PyTorch's ``alpha * g`` summed (its summation order is not numpy's: close)."""
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    g = rng.standard_normal((6, 5)).astype(np.float32)
    tb = torch.tensor(b, requires_grad=True)
    getattr(torch, op)(torch.from_numpy(a), tb, alpha=3).backward(torch.from_numpy(g))
    db = distnn.tensor(b, requires_grad=True)
    getattr(distnn, op)(distnn.tensor(a), db, alpha=3).backward(distnn.tensor(g))
    np.testing.assert_allclose(db.grad.data, tb.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "int64", "int32", "int16"])
@pytest.mark.parametrize("op", ["add", "sub"])
def test_other_dtypes_match(op, dtype):
    rng = np.random.default_rng(5)
    if dtype == "float64":
        a, b, alpha = rng.standard_normal(300), rng.standard_normal(300), 3
    else:
        a, b, alpha = rng.integers(-1000, 1000, 300).astype(dtype), rng.integers(-1000, 1000, 300).astype(dtype), 3
    want = getattr(torch, op)(torch.from_numpy(a), torch.from_numpy(b), alpha=alpha).numpy()
    got = getattr(distnn, op)(distnn.tensor(a), distnn.tensor(b), alpha=alpha).data
    if dtype == "float64":  # (PyTorch's float64 fma is not reproduced: within one rounding of each term)
        bound = 2.0 ** -52 * (np.abs(a) + np.abs(alpha * b))
        assert (np.abs(got - want) <= bound).all()
    else:
        _same_bits(got, want)


# ---------------------------------------------------------------- pow with bool operands
BOOLS = np.array([True, False, True, True, False])


def _outcome(fn):
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001 - the refusal is part of what is compared
        return type(e).__name__, str(e)
    return str(r.dtype).replace("torch.", ""), r.tolist()


@pytest.mark.parametrize("exponent", [0, 1, 2, 3, -1, False, True, 0.0, 0.5, 2.5, "int tensor", "int 0-d",
                                      "bool tensor", "float tensor"])
def test_bool_base_pow(exponent):
    def tensors(lib):
        if exponent == "int tensor":
            return lib.tensor(np.array([0, 1, 2, 3, 4]))
        if exponent == "int 0-d":
            return lib.tensor(np.array(2))
        if exponent == "bool tensor":
            return lib.tensor(BOOLS[::-1].copy())
        if exponent == "float tensor":
            return lib.tensor(np.array([0.5, 1.0, 2.0, 0.0, 3.0], np.float32))
        return exponent

    want = _outcome(lambda: torch.tensor(BOOLS) ** tensors(torch))
    assert _outcome(lambda: distnn.tensor(BOOLS) ** tensors(distnn)) == want
    assert _outcome(lambda: distnn.pow(distnn.tensor(BOOLS), tensors(distnn))) == want
    assert _outcome(lambda: distnn.tensor(BOOLS).pow(tensors(distnn))) == want


@pytest.mark.parametrize("base", [True, False, 2, 0, 2.5])
def test_bool_exponent_pow(base):
    want = _outcome(lambda: base ** torch.tensor(BOOLS))
    assert _outcome(lambda: base ** distnn.tensor(BOOLS)) == want
    assert _outcome(lambda: distnn.pow(base, distnn.tensor(BOOLS))) == _outcome(
        lambda: torch.pow(base, torch.tensor(BOOLS)))


@pytest.mark.parametrize("base", ["int64", "float32"])
def test_tensor_base_bool_tensor_exponent(base):
    x = np.array([0, 1, 2, 3, 4]).astype(base)
    want = _outcome(lambda: torch.from_numpy(x) ** torch.tensor(BOOLS))
    assert _outcome(lambda: distnn.tensor(x) ** distnn.tensor(BOOLS)) == want
