"""Inference tensors against PyTorch 2.13 (the oracle): which tensors ``inference_mode()`` makes inference
tensors (``Tensor.is_inference()``: results and creations inside the mode, views of them anywhere, but not
a view made there of a normal tensor), and PyTorch's refusals of them outside the mode: saved for backward
by an op that records ("Inference tensors cannot be saved for backward"), changed in place ("Inplace update
to inference tensor outside InferenceMode is not allowed"), made to require grad. Each scenario is written
once and run on both libraries; the outcomes (flags, or error type and message gist) must agree.

Deliberate difference: an in-place change refused is refused before anything is written (PyTorch's add_,
zero_, setitem write the values and then raise). Not matched: PyTorch's ``_version`` of an inference tensor
raises; distnn's reads 0 (its optimizers and state loads read versions)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402


def _made_inside(L):
    """(a normal tensor, an inference result of it, an inference creation, views made inside the mode)"""
    a = L.ones(3)
    with L.inference_mode():
        x = a * 2 + 1
        made = L.zeros(2, 3)
        view_of_normal, view_of_inference = a.view(3), x[:2]
        x.add_(1)  # (in place inside the mode: allowed, on an inference tensor too)
        a.mul_(1.0)
        nested_off = (a + 1, None)[0]
        with L.inference_mode(False):
            nested_off = a + 1  # (inference_mode(False) inside: a normal tensor)
        req = L.ones(2, requires_grad=True)
    return a, x, made, view_of_normal, view_of_inference, nested_off, req


FLAGS = {
    "normal_input": lambda L, t: t[0].is_inference(),
    "result_inside": lambda L, t: t[1].is_inference(),
    "creation_inside": lambda L, t: t[2].is_inference(),
    "view_of_normal_inside": lambda L, t: t[3].is_inference(),
    "view_of_inference_inside": lambda L, t: t[4].is_inference(),
    "inference_mode_false_inside": lambda L, t: t[5].is_inference(),
    "requires_grad_inside": lambda L, t: (t[6].is_inference(), t[6].requires_grad),
    "view_of_inference_outside": lambda L, t: (t[1][1:].is_inference(), t[1].detach().is_inference(),
                                              t[1].reshape(3, 1).is_inference()),
    "result_outside": lambda L, t: ((t[1] + 1).is_inference(), t[1].clone().is_inference(), t[1].exp().is_inference()),
    "no_grad_result": lambda L, t: _no_grad_result(L, t[0]).is_inference(),
    "top_level_is_inference": lambda L, t: (L.is_inference(t[1]), L.is_inference(t[0])),
    "values": lambda L, t: np.asarray(t[1].detach().numpy()).tolist(),
    # recorded ops that save nothing of the inference tensor are fine (PyTorch's add saves neither operand)
    "add_recording": lambda L, t: _recorded(L, lambda x, w: x + w, t[1]),
    "mul_by_number": lambda L, t: (t[1] * 2).requires_grad,
}


def _no_grad_result(L, a):
    with L.no_grad():
        return a + 1


def _recorded(L, op, x):
    w = L.ones(3, requires_grad=True)
    y = op(x, w)
    y.sum().backward()
    return y.requires_grad, w.grad.tolist()


@pytest.mark.parametrize("name", list(FLAGS))
def test_which_tensors_are_inference_tensors_as_torch(name):
    got, want = FLAGS[name](distnn, _made_inside(distnn)), FLAGS[name](torch, _made_inside(torch))
    assert got == want


def _functional(L):
    return torch.nn.functional if L is torch else distnn.functional


def _under_no_grad(L, t, fn):
    with L.no_grad():
        fn(t)


SAVED = "Inference tensors cannot be saved for backward. Please do not use Tensors created in inference mode"
INPLACE = "Inplace update to inference tensor outside InferenceMode is not allowed"
REFUSALS = {
    "mul_saves_it": (SAVED, lambda L, x: x * L.ones(3, requires_grad=True)),
    "mul_saves_it_reflected": (SAVED, lambda L, x: L.ones(3, requires_grad=True) * x),
    "matmul_saves_it": (SAVED, lambda L, x: x @ L.ones(3, requires_grad=True)),
    "where_view_saved": (SAVED, lambda L, x: x[:2] * L.ones(2, requires_grad=True)),
    "add_": (INPLACE, lambda L, x: x.add_(1)),
    "iadd": (INPLACE, lambda L, x: x.__iadd__(1)),
    "setitem": (INPLACE, lambda L, x: x.__setitem__(0, 5.0)),
    "copy_": (INPLACE, lambda L, x: x.copy_(L.zeros(3))),
    "zero_": (INPLACE, lambda L, x: x.zero_()),
    "relu_inplace": (INPLACE, lambda L, x: _functional(L).relu(x, inplace=True)),
    "dropout_inplace": (INPLACE, lambda L, x: _functional(L).dropout(x, 0.5, True, inplace=True)),
    "through_a_view": (INPLACE, lambda L, x: x[:2].mul_(2)),
    "under_no_grad": (INPLACE, lambda L, x: _under_no_grad(L, x, lambda t: t.sub_(1))),
    "requires_grad_": ("Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.",
                       lambda L, x: x.requires_grad_()),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_inference_tensors_are_refused_outside_the_mode_as_torch(name):
    match, fn = REFUSALS[name]
    for L in (torch, distnn):
        x = _made_inside(L)[1]
        before = x.detach().numpy().copy()
        with pytest.raises(RuntimeError, match=match):
            fn(L, x)
        if L is distnn:  # (refused before anything is written; PyTorch's add_, zero_... write, then refuse)
            np.testing.assert_array_equal(x.detach().numpy(), before)
        y = x.clone()  # (PyTorch's workaround: a clone is a normal tensor)
        assert not y.is_inference()
        fn(L, y)


def test_inside_the_mode_inplace_and_requires_grad_are_fine():
    for L in (torch, distnn):
        a, x = _made_inside(L)[:2]
        with L.inference_mode():
            x.mul_(2)
            x[0] = 1.0
            x.requires_grad_()
        assert x.requires_grad and x.is_inference()
        assert x.detach().numpy().tolist() == [1.0, 8.0, 8.0]


def test_a_module_run_under_inference_mode_gives_inference_outputs():
    """The common use: a model's output inside the mode is an inference tensor, its parameters are not, and
    training the same model afterwards works (the parameters were never inference tensors)."""
    model = distnn.nn.Linear(3, 2)
    with distnn.inference_mode():
        out = model(distnn.ones(4, 3))
    assert out.is_inference() and not model.weight.is_inference() and not out.requires_grad
    model(distnn.ones(4, 3)).sum().backward()
    assert model.weight.grad is not None
    with pytest.raises(RuntimeError, match=SAVED):
        model(out.detach().reshape(2, 4)[:, :3])  # (an inference tensor as the input: Linear saves it)
