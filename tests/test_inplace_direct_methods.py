"""The direct path of the in-place methods beyond add_/sub_/mul_/div_ (``exp_``, ``clamp_``, ``copy_``, ``lerp_``...:
numpy's ufuncs into the tensor's memory when nothing is recorded) against their general path (the out-of-place op,
then a copy): the same bits of the tensor, of a view of it and of its operands, the same warnings, versions and
refusals, over dtypes (float16/32/64, integers, bool), layouts (contiguous, strided, transposed, reversed, 0-d,
an operand overlapping the tensor), special values, grad modes and leaves that require grad."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import distnn
import distnn.autograd.inplace_direct as direct_path

NAN, INF, BIG = float("nan"), float("inf"), 2 ** 60
DTYPES = (np.float16, np.float32, np.float64, np.longdouble, np.int32, np.int64, np.bool_)
LAYOUTS = ("contiguous", "strided", "transposed", "reversed", "0-d", "window")
UNARY = ((), {}), ((2,), {})  # (an argument too many: the general path's TypeError, for both)
NUMBER_PAIRS = [(0, 1), (-0.5, 0.5), (0.5, -0.5), (NAN, 1), (0, INF), (-0.0, 0.0), (3, None), (None, -2), (True, 1),
                (BIG, None), (None, None), (2, 1.5)]
CALLS = {
    **{name: UNARY for name in ("neg_", "abs_", "sqrt_", "exp_", "log_", "tanh_", "relu_", "sigmoid_")},
    "pow_": [((e,), {}) for e in (2, 3, 0.5, -0.5, -1, 2.0, 0, 1.5, -2.5, True, BIG, NAN, "same")]
    + [((), {"exponent": 2}), ((2,), {"exponent": 2})],
    "clamp_": [((lo, hi), {}) for lo, hi in NUMBER_PAIRS]
    + [((), {"min": 0}), ((), {"max": 1}), ((0,), {"max": 1}), ((0,), {"min": 1}), ((), {}), ((0, 1, 2), {}),
       (("same", "same2"), {}), (("same", None), {}), ((None, "same"), {}), (("same", 1), {}), ((0, "same"), {}),
       (("f64", "f64"), {}), (("bcast", "bcast"), {}), (("grad", "grad"), {}), (("self", "self"), {}),
       (("overlap", None), {}), (("i64", None), {})],
    "clip_": [((0, 1), {}), (("same", "same2"), {}), ((), {"max": -0.0})],
    "clamp_min_": [((v,), {}) for v in (0, 0.5, -0.0, NAN, "same", "f64", "bcast", "self", True)] + [((), {"min": 0})],
    "clamp_max_": [((v,), {}) for v in (0, -1.5, 0.0, "same", "grad", "overlap", 300)] + [((), {"max": 1})],
    "copy_": [((v,), {}) for v in ("same", "f64", "i64", "bcast", "grad", "self", "overlap", "array", 2.0)]
    + [(("same", True), {}), ((), {"src": "same"})],
    **{name: [(("same", "same2"), {"value": v}) for v in (1, 0.5, -2, 0, 0.1, True, BIG, NAN)]
       + [(("same", "same2"), {}), (("same", "zeros"), {}), (("zeros", "zeros"), {"value": 2}),
          (("bcast", "same"), {}), (("same", "f64"), {}), (("grad", "same"), {}), (("self", "self"), {"value": -1}),
          (("overlap", "same"), {}), (("same", "same2", 2), {}), (("same", "i64"), {})]
       for name in ("addcmul_", "addcdiv_")},
    "lerp_": [(("same", w), {}) for w in (0.3, 0.7, 0.5, 0.49, -1.5, 2, 0, 1, NAN, True, "same2", BIG)]
    + [(("f64", 0.3), {}), (("grad", 0.3), {}), (("self", 0.3), {}), (("overlap", 0.8), {}), (("bcast", 0.2), {}),
       (("same",), {"weight": 0.3}), ((), {"end": "same", "weight": 0.6})],
}


def bits(a) -> bytes:
    """``a``'s bytes, a longdouble's 80-bit x87 value without the padding bytes (left as they fall) after it."""
    if a.dtype == np.longdouble and a.dtype.itemsize > 10 and np.finfo(np.longdouble).nmant == 63:
        return np.ascontiguousarray(a).reshape(-1).view(np.uint8).reshape(-1, a.dtype.itemsize)[:, :10].tobytes()
    return a.tobytes()


def _values(dtype, n, special, seed):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "b":
        return rng.random(n) < 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-5, 6, n).astype(dtype)
    values = (rng.standard_normal(n) * 3).astype(dtype)
    if special:
        edge = [INF, -INF, NAN, -0.0, 0.0, np.finfo(dtype).max, np.finfo(dtype).smallest_subnormal, -1.0]
        values[: min(n, len(edge))] = edge[:n]
    return values


def _tensor(layout, dtype, special, seed=0):
    """The tensor written in place, in ``layout``, and a numpy buffer that an "overlap" operand shares with it."""
    if layout == "0-d":
        return distnn.Tensor(np.array(_values(dtype, 1, special, seed)[0])), None
    if layout == "window":  # (3, 4) from element 1 of a buffer of 14: an operand from element 0 overlaps it
        buffer = _values(dtype, 14, special, seed)
        return distnn.Tensor(buffer[1:13].reshape(3, 4)), buffer
    if layout == "strided":
        return distnn.Tensor(_values(dtype, 24, special, seed).reshape(3, 8)[:, ::2]), None
    if layout == "transposed":
        return distnn.Tensor(_values(dtype, 12, special, seed).reshape(4, 3).T), None
    if layout == "reversed":
        return distnn.Tensor(_values(dtype, 12, special, seed).reshape(3, 4)[::-1, ::-1]), None
    return distnn.Tensor(_values(dtype, 12, special, seed).reshape(3, 4)), None


def _operand(token, t, buffer, special):
    """The operand a call's ``token`` names, made afresh (the same values in each run); a number is itself."""
    if not isinstance(token, str):
        return token
    shape, dtype = tuple(t.shape), t.data.dtype
    size = int(np.prod(shape))
    if token in ("same", "same2", "grad"):
        x = distnn.Tensor(_values(dtype, size, special, {"same": 1, "same2": 2, "grad": 3}[token]).reshape(shape))
        if token == "grad" and dtype.kind == "f":
            x.requires_grad_()
        return x
    if token == "zeros":
        return distnn.Tensor(np.zeros(shape, dtype))
    if token in ("f64", "i64"):
        return distnn.Tensor(_values(np.float64 if token == "f64" else np.int64, size, special, 4).reshape(shape))
    if token == "bcast":
        return distnn.Tensor(_values(dtype, 1, special, 5))
    if token == "array":
        return _values(dtype, size, special, 6).reshape(shape)
    if token == "overlap" and buffer is not None:
        return distnn.Tensor(buffer[0:12].reshape(3, 4))
    return t  # ("self", and "overlap" where the layout has no buffer to share)


def run(direct, name, dtype, layout, call, no_grad, leaf_grad, special, monkeypatch, fp_state=None):
    """One call of ``t.name(...)`` by the direct path or (``direct`` False) the general one, under numpy's error
    state ``fp_state`` (np.errstate's keywords): what it left behind."""
    with monkeypatch.context() as m:
        if not direct:
            m.setattr(direct_path, "direct", lambda *args: None)
        t, buffer = _tensor(layout, dtype, special)
        if leaf_grad and t.data.dtype.kind == "f":
            t.requires_grad_()
        view = t[...] if layout == "0-d" else t[1:]
        args = [_operand(a, t, buffer, special) for a in call[0]]
        kwargs = {k: _operand(v, t, buffer, special) for k, v in call[1].items()}
        tensors = [x for x in (*args, *kwargs.values()) if isinstance(x, distnn.Tensor)]
        with warnings.catch_warnings(record=True) as caught, np.errstate(**(fp_state or {})):
            warnings.simplefilter("always")
            try:
                with distnn.no_grad() if no_grad else distnn.enable_grad():
                    out = getattr(t, name)(*args, **kwargs)
                assert out is t
                error = None
            except Exception as e:  # noqa: BLE001 - the two paths must refuse alike
                error = (type(e).__name__, str(e))
        arrays = [t.data, view.data, *(x.data for x in tensors)]
        return ([(a.dtype.str, a.shape, bits(a)) for a in arrays], error, sorted({str(w.message) for w in caught}),
                t._version, view._version, t._node is None, t.requires_grad)


def _cases(name, dtype):
    for layout in LAYOUTS:
        for call in CALLS[name]:
            for no_grad, leaf_grad in ((True, False), (True, True), (False, False), (False, True)):
                if leaf_grad and np.dtype(dtype).kind != "f":
                    continue
                for special in ((False, True) if np.dtype(dtype).kind == "f" else (False,)):
                    yield layout, call, no_grad, leaf_grad, special


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_direct_path_is_the_general_path(name, dtype, monkeypatch):
    count = 0
    for layout, call, no_grad, leaf_grad, special in _cases(name, dtype):
        got = run(True, name, dtype, layout, call, no_grad, leaf_grad, special, monkeypatch)
        want = run(False, name, dtype, layout, call, no_grad, leaf_grad, special, monkeypatch)
        assert got == want, (layout, call, no_grad, leaf_grad, special)
        count += 1
    assert count >= len(LAYOUTS) * len(CALLS[name])


@pytest.mark.parametrize("fp_state", ({"all": "raise"}, {"over": "raise"}, {"invalid": "raise"}, {"all": "ignore"}))
@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_direct_path_under_the_callers_numpy_error_state(name, fp_state, monkeypatch):
    """Where numpy's error state raises (the general path raises before it writes) or is silent, both paths agree:
    the tensor unchanged or written, the same error, the same warnings, the caller's state restored."""
    for layout in ("contiguous", "reversed", "0-d"):
        for call in CALLS[name]:
            got = run(True, name, np.float32, layout, call, True, False, True, monkeypatch, fp_state)
            want = run(False, name, np.float32, layout, call, True, False, True, monkeypatch, fp_state)
            assert got == want and np.geterr() == {"divide": "warn", "over": "warn", "under": "ignore",
                                                   "invalid": "warn"}, (layout, call)


# the common call of each method, on a float32 tensor (and its non-contiguous form): the direct path must take it
TAKEN = {
    "neg_": (), "abs_": (), "sqrt_": (), "exp_": (), "log_": (), "tanh_": (), "relu_": (), "sigmoid_": (),
    "pow_": (2,), "clamp_": (0, 1), "clip_": (-1, 1), "clamp_min_": (0,), "clamp_max_": (1,), "copy_": ("same",),
    "addcmul_": ("same", "same2"), "addcdiv_": ("same", "same2"), "lerp_": ("same", 0.1),
}


@pytest.mark.parametrize("layout", ("contiguous", "transposed", "0-d"))
@pytest.mark.parametrize("name", sorted(TAKEN))
def test_the_direct_path_is_taken(name, layout, monkeypatch):
    """The direct path takes the common calls (else the test above would compare the general path with itself),
    and leaves a recorded one (a leaf that requires grad, outside no_grad) to the general path."""
    taken = []
    real = direct_path.direct
    monkeypatch.setattr(direct_path, "direct", lambda *args: taken.append(real(*args) is not None) or real(*args))
    t, buffer = _tensor(layout, np.float32, False)
    args = [_operand(a, t, buffer, False) for a in TAKEN[name]]
    if name in ("sqrt_", "log_"):
        t.abs_()
    getattr(t, name)(*args)
    p = distnn.nn.Parameter(np.ones(3, np.float32))
    extra = {"copy_": (p.detach(),), "addcmul_": (p.detach(), p.detach()), "addcdiv_": (p.detach(), p.detach()),
             "lerp_": (p.detach(), 0.1)}.get(name, [a for a in args if not isinstance(a, distnn.Tensor)])
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        getattr(p, name)(*extra)
    with distnn.no_grad():
        getattr(p, name)(*extra)
    assert taken[0] is True and taken[-2:] == [False, True], taken


def test_a_subclass_of_tensor_keeps_its_operators():
    """The general path of mul_ is ``self * other``: a subclass's ``__mul__`` runs, as the direct path would skip it."""
    class Logged(distnn.Tensor):
        seen = []

        def __mul__(self, other):
            Logged.seen.append(other)
            return super().__mul__(other)

    t = Logged(np.ones(3, np.float32))
    with distnn.no_grad():
        t.mul_(2.0)
    assert Logged.seen == [2.0] and t.data.tolist() == [2.0, 2.0, 2.0]
