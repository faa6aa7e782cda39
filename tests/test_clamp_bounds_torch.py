"""clamp/clip and clamp_min/clamp_max argument rules against PyTorch: no bound at all, a Tensor bound beside a
number bound (refused, unless the Tensor is 0-d and needs no gradient: then it is a number), a missing
clamp_min/clamp_max bound, a string bound. Exception types and messages (bounds by position), results and
gradients where PyTorch takes the call."""
import numpy as np
import pytest
import torch

import distnn

pytestmark = pytest.mark.filterwarnings("error")

CALLS = {  # name -> (lib, x, lo, hi) -> the call
    "clamp": lambda L, x, lo, hi: L.clamp(x, lo, hi),
    "clip": lambda L, x, lo, hi: L.clip(x, lo, hi),
    "x.clamp": lambda L, x, lo, hi: x.clamp(lo, hi),
    "x.clip": lambda L, x, lo, hi: x.clip(lo, hi),
    "x.clamp_": lambda L, x, lo, hi: x.clamp_(lo, hi),
    "x.clip_": lambda L, x, lo, hi: x.clip_(lo, hi),
    "clamp_": lambda L, x, lo, hi: L.clamp_(x, lo, hi),
    "clip_": lambda L, x, lo, hi: L.clip_(x, lo, hi),
}


def _array(grad):
    return grad.numpy() if hasattr(grad, "numpy") else np.asarray(grad)


def _outcome(lib, call, lo, hi, *, x_requires_grad=False):
    x = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=x_requires_grad)
    try:
        return call(lib, x if not x_requires_grad else x * 1, lo(lib), hi(lib)), x
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        return error, x


def _same_error(call, lo, hi):
    expected, _ = _outcome(torch, call, lo, hi)
    got, _ = _outcome(distnn, call, lo, hi)
    assert isinstance(expected, Exception), expected
    assert type(got) is type(expected), (got, expected)
    assert str(got) == str(expected)


NONE = lambda L: None  # noqa: E731
ROW = lambda L: L.tensor([2.5, 2.5, 2.5, 2.5])  # noqa: E731
ROW_GRAD = lambda L: L.tensor([2.5, 2.5, 2.5, 2.5], requires_grad=True)  # noqa: E731
SCALAR = lambda L: L.tensor(2.5)  # noqa: E731
SCALAR_GRAD = lambda L: L.tensor(2.5, requires_grad=True)  # noqa: E731
NUMBER = lambda L: 3.0  # noqa: E731
INTEGER = lambda L: 3  # noqa: E731


@pytest.mark.parametrize("name", CALLS)
def test_no_bound_is_torchs_runtime_error(name):
    _same_error(CALLS[name], NONE, NONE)


@pytest.mark.parametrize("name", CALLS)
def test_no_bound_refused_without_arguments(name):
    method = name.split(".")[-1]
    for lib in (torch, distnn):
        x = lib.tensor([1.0, 2.0])
        call = (lambda: getattr(x, method)()) if name.startswith("x.") else (lambda: getattr(lib, name)(x))
        with pytest.raises(RuntimeError, match="At least one of 'min' or 'max' must not be None"):
            call()


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("lo,hi", [(ROW, NUMBER), (NUMBER, ROW), (ROW, INTEGER), (SCALAR_GRAD, NUMBER),
                                   (INTEGER, SCALAR_GRAD), (ROW_GRAD, NUMBER), (True, ROW)],
                         ids=["row-float", "float-row", "row-int", "scalar_grad-float", "int-scalar_grad",
                              "row_grad-float", "bool-row"])
def test_tensor_beside_number_is_torchs_type_error(name, lo, hi):
    lo = lo if callable(lo) else (lambda L, v=lo: v)
    _same_error(CALLS[name], lo, hi)


@pytest.mark.parametrize("name", ["clamp", "x.clamp", "x.clamp_", "clamp_"])
def test_string_bound_is_type_error(name):
    _same_error(CALLS[name], lambda L: "a", NUMBER)


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("lo,hi", [(SCALAR, NUMBER), (NUMBER, SCALAR), (INTEGER, SCALAR)],
                         ids=["scalar-float", "float-scalar", "int-scalar"])
def test_0d_tensor_without_grad_beside_number_is_a_number(name, lo, hi):
    requires_grad = not name.endswith("_")  # (in place: the values only)
    expected, x_torch = _outcome(torch, CALLS[name], lo, hi, x_requires_grad=requires_grad)
    got, x_ours = _outcome(distnn, CALLS[name], lo, hi, x_requires_grad=requires_grad)
    assert not isinstance(expected, Exception)
    np.testing.assert_array_equal(got.detach().numpy(), expected.detach().numpy())
    assert str(got.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
    if requires_grad:
        assert got.grad_fn.name() == expected.grad_fn.name() == "ClampBackward1"
        weights = [1.0, 2.0, 3.0, 4.0]
        (expected * torch.tensor(weights)).sum().backward()
        (got * distnn.tensor(weights)).sum().backward()
        np.testing.assert_array_equal(_array(x_ours.grad), _array(x_torch.grad))


@pytest.mark.parametrize("lo,hi", [(SCALAR_GRAD, NONE), (NONE, SCALAR_GRAD), (SCALAR_GRAD, ROW_GRAD)],
                         ids=["lo", "hi", "both"])
def test_tensor_bounds_keep_their_gradients(lo, hi):
    results = {}
    for lib in (torch, distnn):
        x = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        bounds = lo(lib), hi(lib)
        out = lib.clamp(x, *bounds)
        (out * lib.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
        results[lib.__name__] = (out.detach().numpy(), out.grad_fn.name(), _array(x.grad),
                                 [None if b is None else _array(b.grad) for b in bounds])
    ours, theirs = results["distnn"], results["torch"]
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert ours[1] == theirs[1] == "ClampBackward0"
    np.testing.assert_array_equal(ours[2], theirs[2])
    for mine, reference in zip(ours[3], theirs[3]):
        assert (mine is None) == (reference is None)
        if mine is not None:
            np.testing.assert_array_equal(mine, reference)


@pytest.mark.parametrize("name", ["clamp_min", "clamp_max"])
@pytest.mark.parametrize("form", ["function", "method", "inplace", "inplace function"])
def test_missing_one_sided_bound_is_torchs_type_error(name, form):
    errors = []
    for lib in (torch, distnn):
        x = lib.tensor([1.0, 2.0])
        call = {"function": lambda: getattr(lib, name)(x, None), "method": lambda: getattr(x, name)(None),
                "inplace": lambda: getattr(x, name + "_")(None),
                "inplace function": lambda: getattr(lib, name + "_")(x, None)}[form]
        with pytest.raises(TypeError) as caught:
            call()
        errors.append(str(caught.value))
    assert errors[1] == errors[0]


@pytest.mark.parametrize("name", ["clamp_min", "clamp_max"])
def test_one_sided_bounds_still_work(name):
    for bound in (2.5, lambda L: L.tensor([0.0, 3.0, 9.0])):
        values = []
        for lib in (torch, distnn):
            x = lib.tensor([1.0, 2.0, 5.0])
            b = bound(lib) if callable(bound) else bound
            values.append((getattr(lib, name)(x, b).numpy(), getattr(x, name)(b).numpy(),
                           getattr(x.clone(), name + "_")(b).numpy()))
        for mine, reference in zip(*values[::-1]):
            np.testing.assert_array_equal(mine, reference)
