"""PyTorch-parity leftovers (h42-parity8), each checked against torch run on the same inputs: ``tensor()`` of
Python ints beyond int64, ``normal(..., out=complex)``, ``std``/``var`` into an expanded ``out``,
``norm(x, 'nuc', out=)`` while recording, and the sign of the NaN of ``add``/``sub`` with a NaN ``alpha``."""
import math
import warnings

import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

NAN, NEG_NAN = float("nan"), -float("nan")


def values(t):
    return np.array(t.detach().numpy() if isinstance(t, torch.Tensor) else t.data)


def outcome(program, L):
    """``("ok", result)`` or the refusal's ``(type name, message)``, with the warnings raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("ok", program(L))
        except Exception as e:  # noqa: BLE001 (compared with torch's refusal)
            result = (type(e).__name__, str(e))
    return result, [str(w.message).split(" (Triggered internally")[0] for w in caught]


# ---------------------------------------------------------------- 1. tensor() of ints beyond int64
BIG, LONG_MIN = 2 ** 64, -(2 ** 63)
_NUMBER_LISTS = [
    [1, BIG], [1, 2 ** 63], [1, LONG_MIN - 1], [2 ** 63 - 1, LONG_MIN], [True, BIG], [BIG], (1, 2 ** 63), BIG,
    [[1], [BIG]], [[1, 2], [3, BIG]], [2 ** 70, -(2 ** 70)], [10 ** 400], [True, False, 2 ** 63],
    [1.5, BIG], [BIG, 1.5], [[1.0, 2], [3, BIG]], [[1, 2], [3.0, BIG]], [1, LONG_MIN - 1, 2.0], [True, 1.0, BIG],
    [float(BIG), BIG], [1.5, 10 ** 39], [1.5, 10 ** 400], [10 ** 400, 1.5],
    [1j, BIG], [BIG, 1j], [False, BIG, 1j], [1j, 10 ** 400],
    [np.int64(3), BIG], [np.int32(3), BIG], [np.float32(3), BIG], [[np.float64(1.5)], [BIG]],
    [np.float16(1), BIG, 2.0], [np.complex128(1), BIG],
    # (the nesting, checked in the same row-major pass: the first problem met is the one reported)
    [BIG, [1]], [[1], BIG], [[1], [BIG], 3], [[1, 2], [3, BIG, 5]], [[1, 2], [3]], [[1, 2], 3], [1, [2]],
    [1.0, [2]],
]
_DTYPES = [None, "float32", "float64", "float16", "int64", "int32", "uint8", "bool", "complex64"]


def _creation_program(numbers, dtype, make="tensor"):
    def program(L):
        t = getattr(L, make)(numbers) if dtype is None else getattr(L, make)(numbers, dtype=getattr(L, dtype))
        return str(t.dtype).replace("torch.", ""), tuple(t.shape), str(values(t).tolist())
    return program


@pytest.mark.parametrize("numbers", _NUMBER_LISTS, ids=lambda n: repr(n)[:40])
def test_tensor_of_long_ints_infers_and_refuses_as_torch(numbers):
    for make in ("tensor", "as_tensor", "asarray"):
        program = _creation_program(numbers, None, make)
        assert outcome(program, distnn) == outcome(program, torch), make


@pytest.mark.parametrize("dtype", _DTYPES[1:])
@pytest.mark.parametrize("numbers", [[1, BIG], [1e19, BIG], [BIG, 1e19], [300, BIG], [BIG, 300], [2 ** 63 - 1, BIG],
                                     [[1.5], [BIG]], [1.5, 10 ** 400], [LONG_MIN - 1, 1], [True, BIG]],
                         ids=lambda n: repr(n)[:40])
def test_tensor_of_long_ints_with_a_dtype_refuses_the_first_unfit_number(numbers, dtype):
    """PyTorch converts number by number: an int beyond int64 and a value beyond the dtype are told apart by which
    comes first."""
    program = _creation_program(numbers, dtype)
    assert outcome(program, distnn) == outcome(program, torch)


# ---------------------------------------------------------------- 5. add/sub with a NaN alpha: the NaN's sign
def _nan_alpha_program(op, form, alpha, dtype):
    def program(L):
        x = L.tensor([1.0, -1.0, 0.0, 2.5], dtype=getattr(L, dtype))
        y = L.tensor([1.0, -1.0, 3.0, -0.0], dtype=getattr(L, dtype))
        if form == "function":
            r = getattr(L, op)(x, y, alpha=alpha)
        elif form == "method":
            r = getattr(x, op)(y, alpha=alpha)
        elif form == "inplace":
            r = getattr(x, op + "_")(y, alpha=alpha)
        elif form == "number":
            r = getattr(L, op)(x, 2.0, alpha=alpha)
        else:
            r = getattr(L, op)(x, y, alpha=alpha, out=L.zeros(4, dtype=getattr(L, dtype)))
        return np.signbit(values(r)).tolist(), np.isnan(values(r)).tolist()
    return program


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("alpha", [NAN, NEG_NAN], ids=["nan", "-nan"])
@pytest.mark.parametrize("op, form", [(op, form) for op in ("add", "sub") for form in
                                      ("function", "method", "inplace", "number", "out")]
                         + [("subtract", "function"), ("subtract", "number"), ("subtract", "out")])
def test_nan_alpha_gives_torchs_nan_sign(op, form, alpha, dtype):
    program = _nan_alpha_program(op, form, alpha, dtype)
    assert outcome(program, distnn) == outcome(program, torch)


def test_nan_alpha_sub_gradient_flows():
    """The recorded ``sub`` with a NaN alpha still differentiates as PyTorch's (NaN gradient for ``other``)."""
    def program(L):
        x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        y = L.tensor([3.0, 4.0], dtype=L.float64, requires_grad=True)
        L.sub(x, y, alpha=NAN).sum().backward()
        return values(x.grad).tolist(), np.isnan(values(y.grad)).tolist()
    assert outcome(program, distnn) == outcome(program, torch)


# ---------------------------------------------------------------- 2. normal(..., out=complex)
_DRAWS = 100_000
_NORMAL_CALLS = {  # (PyTorch's overloads into a complex out; the means are 5, or 5+3j, the stds 2)
    "numbers": lambda L, out: L.normal(5.0, 2.0, size=(_DRAWS,), out=out),
    "tensors": lambda L, out: L.normal(L.full((_DRAWS,), 5.0), L.full((_DRAWS,), 2.0), out=out),
    "tensor mean": lambda L, out: L.normal(L.full((_DRAWS,), 5.0), 2.0, out=out),
    "tensor std": lambda L, out: L.normal(5.0, L.full((_DRAWS,), 2.0), out=out),
    "complex mean": lambda L, out: L.normal(L.full((_DRAWS,), 5.0 + 3.0j), 2.0, out=out),
    "complex mean, tensor std": lambda L, out: L.normal(L.full((_DRAWS,), 5.0 + 3.0j), L.full((_DRAWS,), 2.0),
                                                        out=out),
}


def _moments(L, call, dtype):
    """The result's dtype and shape, whether it is ``out``, and its parts' means and standard deviations."""
    L.manual_seed(8)
    out = L.zeros(_DRAWS, dtype=getattr(L, dtype))
    r = call(L, out)
    z = values(r)
    return (str(r.dtype).replace("torch.", ""), tuple(r.shape), r is out), \
        np.array([z.real.mean(), z.imag.mean(), z.real.std(), z.imag.std()])


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("call", list(_NORMAL_CALLS))
def test_normal_into_complex_out_draws_as_torch(call, dtype):
    """Complex draws with PyTorch's moments (other numbers: distnn's generator is not PyTorch's): each part of
    standard deviation std / sqrt(2); the mean of two numbers on both parts, a tensor mean added as a complex."""
    ours, ours_moments = _moments(distnn, _NORMAL_CALLS[call], dtype)
    ref, ref_moments = _moments(torch, _NORMAL_CALLS[call], dtype)
    assert ours == ref
    np.testing.assert_allclose(ours_moments, ref_moments, atol=0.03)  # (sampling error: ~0.006 for 10**5 draws)


def test_normal_complex_dtype_and_mean_without_out():
    for program in (lambda L: L.normal(0.0, 1.0, size=(4,), dtype=L.complex64),
                    lambda L: L.normal(L.zeros(4, dtype=L.complex128), 1.0),
                    lambda L: L.normal(L.zeros(4, dtype=L.complex64), L.ones(4))):
        ours, ref = outcome(lambda L: (str(program(L).dtype), tuple(program(L).shape)), distnn), \
            outcome(lambda L: (str(program(L).dtype).replace("torch.", ""), tuple(program(L).shape)), torch)
        assert ours == ref


@pytest.mark.parametrize("case", ["complex std", "complex std tensor mean", "complex mean real out",
                                  "complex mean, tensors, real out", "integer out", "negative std",
                                  "complex mean requiring grad"])
def test_normal_complex_refusals_are_torchs(case):
    def program(L):
        c = L.zeros(3, dtype=L.complex64)
        if case == "complex std":
            return L.normal(0.0, L.ones(3, dtype=L.complex64))
        if case == "complex std tensor mean":
            return L.normal(c, L.ones(3, dtype=L.complex64))
        if case == "complex mean real out":
            return L.normal(c, 1.0, out=L.zeros(3))
        if case == "complex mean, tensors, real out":
            return L.normal(c, L.ones(3), out=L.zeros(3))
        if case == "integer out":
            return L.normal(L.zeros(3), L.ones(3), out=L.zeros(3, dtype=L.int64))
        if case == "negative std":
            return L.normal(L.zeros(3), -1.0, out=c)
        return L.normal(L.zeros(3, dtype=L.complex64, requires_grad=True), 1.0)
    ours, ref = outcome(program, distnn), outcome(program, torch)
    assert ours == ref and ref[0][0] != "ok"


# ---------------------------------------------------------------- 3. std/var into an expanded out
_X = np.random.default_rng(8).standard_normal((2, 3, 4))

_EXPANDED = [  # (input dims kept, the reduction's arguments, out's base shape, the expanded shape)
    ("3d", dict(dim=2), (2, 1), (2, 3)),
    ("3d", dict(dim=2), (1, 3), (2, 3)),
    ("3d", dict(dim=2), (1, 1), (2, 3)),
    ("3d", dict(dim=(0, 2)), (1,), (3,)),
    ("3d", dict(dim=1, keepdim=True), (2, 1, 1), (2, 1, 4)),
    ("3d", dict(dim=-1, correction=0), (1, 3), (2, 3)),
    ("3d", dict(dim=2, unbiased=False), (2, 1), (2, 3)),
    ("3d", dict(dim=2, correction=2), (1, 1), (2, 3)),
    ("2d", dict(dim=1), (1,), (2,)),
    ("2d", dict(dim=0), (1,), (4,)),
    ("row", dict(dim=0), (1,), (4,)),  # (one row: unbiased over it alone would be NaN; folded it is not)
]


def _spread_program(op, shape, kwargs, base, expanded, x_dtype="float64", out_dtype="float64"):
    def program(L):
        data = {"3d": _X, "2d": _X[0, :2], "row": _X[:1, 0]}[shape]
        x = L.tensor(data, dtype=getattr(L, x_dtype))
        out = L.zeros(*base, dtype=getattr(L, out_dtype)).expand(*expanded)
        r = getattr(L, op)(x, out=out, **kwargs)
        # (strides of dims of size 1 left out: distnn's expand gives them 0, PyTorch's keeps them)
        strides = [stride for size, stride in zip(r.shape, r.stride()) if size > 1]
        return r is out, tuple(r.shape), strides, str(values(r).round(5).tolist())  # (str: NaN equals NaN)
    return program


@pytest.mark.parametrize("op", ["std", "var"])
@pytest.mark.parametrize("shape, kwargs, base, expanded", _EXPANDED)
def test_std_var_fold_the_dims_an_expanded_out_repeats(op, shape, kwargs, base, expanded):
    program = _spread_program(op, shape, kwargs, base, expanded)
    assert outcome(program, distnn) == outcome(program, torch)


@pytest.mark.parametrize("x_dtype, out_dtype", [("float64", "float32"), ("float32", "float64")])
def test_std_var_expanded_out_of_another_dtype(x_dtype, out_dtype):
    for op in ("std", "var"):
        program = _spread_program(op, "3d", dict(dim=2), (1, 1), (2, 3), x_dtype, out_dtype)
        assert outcome(program, distnn) == outcome(program, torch)


def test_std_var_expanded_out_refusals_stay_torchs():
    """A complex expanded out is refused by the kernel, a recorded input by autograd, as PyTorch's."""
    def complex_out(L):
        return L.var(L.tensor(_X), 2, out=L.zeros(1, 1, dtype=L.complex128).expand(2, 3))

    def recording(L):
        return L.std(L.tensor(_X, requires_grad=True), 2, out=L.zeros(1, 1, dtype=L.float64).expand(2, 3))

    for program in (complex_out, recording):
        assert outcome(program, distnn) == outcome(program, torch)


def test_std_var_expanded_out_of_another_shape_is_resized():
    """An expanded out whose shape is not the result's is resized (PyTorch's warning), not folded."""
    program = _spread_program("var", "3d", dict(dim=2), (1,), (3,))
    (ours, our_warnings), (ref, ref_warnings) = outcome(program, distnn), outcome(program, torch)
    assert ours == ref and our_warnings == ref_warnings and len(ref_warnings) == 1


@pytest.mark.parametrize("op", ["std", "var"])
def test_std_var_expanded_out_resized_keeps_the_degrees_of_freedom_warning(op):
    """Not folded (resized), the unbiased spread of one element still warns, once, after the resize's warning."""
    program = _spread_program(op, "row", dict(dim=0), (1,), (3,))
    ours, ref = outcome(program, distnn), outcome(program, torch)
    assert ours == ref and len(ref[1]) == 2


# ---------------------------------------------------------------- 4. norm(x, 'nuc', out=) while recording
_M = np.random.default_rng(4).standard_normal((2, 3, 4))


def _nuclear_program(out_shape, dim=None, keepdim=False, batch=True, dtype="float64"):
    """The nuclear norm into ``out`` (recorded), then backward through ``out``: values, ``out``'s state and the
    input's gradient."""
    def program(L):
        x = L.tensor(_M if batch else _M[0], dtype=getattr(L, dtype), requires_grad=True)
        out = L.zeros(out_shape, dtype=getattr(L, dtype))
        kwargs = {} if dim is None else {"dim": dim}
        r = L.norm(x, "nuc", keepdim=keepdim, out=out, **kwargs)
        state = (r is out, tuple(out.shape), out.requires_grad, out.is_leaf, out.grad_fn.name())
        (r * L.tensor(np.arange(1.0, 1.0 + r.numel()).reshape(r.shape), dtype=getattr(L, dtype))).sum().backward()
        return state, values(r), values(x.grad)
    return program


def _assert_norms_match(program, rtol):
    (ours, our_warnings), (ref, ref_warnings) = outcome(program, distnn), outcome(program, torch)
    assert ours[0] == ref[0] == "ok" and our_warnings == ref_warnings
    assert ours[1][0] == ref[1][0]
    np.testing.assert_allclose(ours[1][1], ref[1][1], rtol=rtol)
    np.testing.assert_allclose(ours[1][2], ref[1][2], rtol=rtol, atol=rtol)


@pytest.mark.parametrize("out_shape, dim, keepdim, batch", [
    ((), None, False, False),
    ((), (0, 1), False, False),
    ((1, 1), None, True, False),
    ((2,), (1, 2), False, True),
    ((3,), (0, 2), False, True),
    ((5,), (1, 2), False, True),  # (resized, PyTorch's warning)
    ((2, 1, 1), (1, 2), True, True),
    ((0,), (-2, -1), False, True),
])
def test_nuclear_norm_into_out_while_recording_is_copied_as_torchs(out_shape, dim, keepdim, batch):
    _assert_norms_match(_nuclear_program(out_shape, dim, keepdim, batch), rtol=1e-10)


def test_nuclear_norm_into_out_while_recording_float32():
    _assert_norms_match(_nuclear_program((2,), (1, 2), dtype="float32"), rtol=2e-5)


@pytest.mark.parametrize("case", ["leaf out requiring grad", "expanded out", "dtype", "fro over 3 dims",
                                  "nuc over 1 dim", "fro over 2 dims"])
def test_matrix_norm_out_refusals_while_recording_are_torchs(case):
    def program(L):
        x = L.tensor(_M, dtype=L.float32, requires_grad=True)
        if case == "leaf out requiring grad":
            return L.norm(x, "nuc", dim=(1, 2), out=L.zeros(2, requires_grad=True))
        if case == "expanded out":
            return L.norm(x, "nuc", dim=(1, 2), out=L.zeros(1).expand(2))
        if case == "dtype":
            return L.norm(x, "nuc", dim=(1, 2), out=L.zeros(2, dtype=L.float64))
        if case == "fro over 3 dims":
            return L.norm(x, "fro", dim=(0, 1, 2), out=L.zeros(()))
        if case == "nuc over 1 dim":
            return L.norm(x, "nuc", dim=(1,), out=L.zeros(2))
        return L.norm(x, "fro", dim=(1, 2), out=L.zeros(2))  # (vector_norm's out=: refused while recording)
    (ours, _), (ref, _) = outcome(program, distnn), outcome(program, torch)
    assert ours[0] == ref[0] != "ok"
    assert ours[1].startswith(ref[1])  # (distnn's in-place refusal adds a note of its own after PyTorch's words)


def test_nuclear_norm_into_out_under_no_grad_records_nothing():
    def program(L):
        x = L.tensor(_M, requires_grad=True)
        with L.no_grad():
            r = L.norm(x, "nuc", dim=(1, 2), out=L.zeros(2, dtype=L.float64))
        return r.requires_grad, r.grad_fn is None, values(r).round(10).tolist()
    assert outcome(program, distnn) == outcome(program, torch)
