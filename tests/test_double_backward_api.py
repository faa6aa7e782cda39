"""Double backward's API around the ops: ``gradgradcheck`` (passing on correct ops, failing on a wrong
graph backward), the refusal that names an op without a graph backward, a Function's own
``backward_graph``, and ``create_graph`` with hooks, ``retain_graph``, ``backward()``/``.grad``, version
checks, as PyTorch's (the oracle)."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor, autograd
from distnn.autograd import functional as AF

R = np.random.default_rng(21)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
X = R.standard_normal((2, 3))
Y = R.uniform(0.5, 1.5, (2, 3))


def _cube_forward(self, x):
    self.x = x
    return x ** 3


class Cube(distnn.Function):
    """x^3 with a graph backward of its own (``backward_graph``): the way a Function one writes gets a
    double backward."""

    reads = ((0,),)
    forward = _cube_forward

    def backward(self, g):
        return (3 * g * self.x ** 2,)

    def backward_graph(self, g):
        x = Tensor._make(self.x, self.parents[0]) if not isinstance(self.parents[0], Tensor) else self.parents[0]
        return (3 * g * x * x,)


class WrongCube(Cube):
    """Right first derivative, wrong second: its graph backward forgets one factor of x."""

    def backward_graph(self, g):
        x = self.parents[0] if isinstance(self.parents[0], Tensor) else Tensor._make(self.x, self.parents[0])
        return (3 * g * x * self.x.mean(),)


class NoGraph(distnn.Function):
    """A Function with only a first-order backward."""

    reads = ((0,),)
    forward = _cube_forward

    def backward(self, g):
        return (3 * g * self.x ** 2,)


# ---------------------------------------------------------------- gradgradcheck
@pytest.mark.parametrize("fn", [
    lambda x, y: (x * y).exp() / y,
    lambda x, y: (x.tanh() * y.log()).softmax(dim=1),
    lambda x, y: F.linear(x, y.reshape(3, 2).transpose(0, 1) * 1.0).sigmoid(),
    lambda x, y: F.cross_entropy(x * y, Tensor(np.array([1, 2]))),
    lambda x, y: (x.norm(2, dim=1) * y.sum(1), F.gelu(x) * y),
    lambda x, y: Cube.apply(x) * y,
])
def test_gradgradcheck_passes_on_correct_ops(fn):
    inputs = (Tensor(X.copy(), requires_grad=True), Tensor(Y.copy(), requires_grad=True))
    assert autograd.gradcheck(fn, inputs) is True
    assert autograd.gradgradcheck(fn, inputs) is True
    v = Tensor(R.standard_normal((2, 3)))  # an explicit grad_outputs (one output)
    if not isinstance(fn(*inputs), tuple) and tuple(fn(*inputs).shape) == (2, 3):
        assert autograd.gradgradcheck(fn, inputs, (v,)) is True


def test_gradgradcheck_fails_on_a_wrong_graph_backward(torch):
    x = Tensor(X.copy(), requires_grad=True)
    assert autograd.gradcheck(WrongCube.apply, (x,)) is True  # first order is right
    with pytest.raises(autograd.GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"):
        autograd.gradgradcheck(WrongCube.apply, (x,))
    assert autograd.gradgradcheck(WrongCube.apply, (x,), raise_exception=False) is False

    class TWrong(torch.autograd.Function):  # torch's verdict on the same mistake
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a ** 3

        @staticmethod
        def backward(ctx, g):
            a, = ctx.saved_tensors
            return 3 * g * a * a.detach().mean()

    t = torch.tensor(X.copy(), requires_grad=True)
    assert torch.autograd.gradgradcheck(TWrong.apply, (t,), raise_exception=False) is False
    assert torch.autograd.gradgradcheck(lambda a: a ** 3, (t,)) is True


def test_gradgradcheck_refusals():
    x = Tensor(X.copy(), requires_grad=True)
    with pytest.raises(NotImplementedError, match="forward-mode AD"):
        autograd.gradgradcheck(Cube.apply, (x,), check_fwd_over_rev=True)
    with pytest.raises(NotImplementedError, match="the op NoGraph"):
        autograd.gradgradcheck(NoGraph.apply, (x,))


# ---------------------------------------------------------------- refusal naming the op
def test_refusal_names_the_op_and_its_module_before_anything_runs():
    x = Tensor(X.copy(), requires_grad=True)
    seen = []
    y = NoGraph.apply(x * 2.0)
    y.register_hook(lambda g: seen.append(g))
    z = (y.exp() * x).sum()
    for call in (lambda: autograd.grad(z, x, create_graph=True),
                 lambda: z.backward(create_graph=True),
                 lambda: AF.hessian(lambda a: NoGraph.apply(a).sum(), x),
                 lambda: AF.hvp(lambda a: NoGraph.apply(a).sum(), x, x),
                 lambda: AF.jvp(lambda a: NoGraph.apply(a), x, x)):
        with pytest.raises(NotImplementedError, match=r"the op NoGraph \(test_double_backward_api\.NoGraph\) has no "
                                                      r"differentiable backward"):
            call()
    assert not seen and x.grad is None  # refused before any hook ran or any gradient landed
    g, = autograd.grad(z, x)  # first order is untouched
    assert g.shape == x.shape
    # a node off the path to the requested inputs does not matter (pruned, as PyTorch's pass prunes it)
    w = Tensor(X.copy(), requires_grad=True)
    out = (NoGraph.apply(w.detach()) * 0.0 + w.sin()).sum()
    gw, = autograd.grad(out, w, create_graph=True)
    assert gw.requires_grad


def test_unsupported_parameters_are_refused():
    x = Tensor(X.copy(), requires_grad=True)
    from distnn.nn.normalization import ValidRowsBatchNormTrain  # (a node whose parameters are not covered)

    y = ValidRowsBatchNormTrain.apply(x, None, None, mean=np.zeros(3), var=np.ones(3), count=2)
    with pytest.raises(NotImplementedError, match="ValidRowsBatchNormTrain .*only plain batch norm"):
        autograd.grad(y.sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="is_grads_batched"):
        autograd.grad(x.sum(), x, Tensor(np.ones((2,))), create_graph=True, is_grads_batched=True)


# ---------------------------------------------------------------- hooks, retain_graph, backward()
def _both_libs(torch):
    return [("distnn", lambda a: Tensor(a.copy(), requires_grad=True), autograd.grad),
            ("torch", lambda a: torch.tensor(a.copy(), requires_grad=True), torch.autograd.grad)]


def _np(t):
    if isinstance(t, np.ndarray):  # (distnn's .grad)
        return t
    return np.asarray(t.data) if isinstance(t, Tensor) else t.detach().numpy()


def test_hooks_see_gradients_with_a_graph_and_may_replace_them(torch):
    out = {}
    for lib, T, grad in _both_libs(torch):
        x = T(X)
        y = x * x  # a non-leaf
        seen = []

        def hook(g, seen=seen):
            seen.append(g.requires_grad)
            return g * y  # a replacement that itself depends on x

        y.register_hook(hook)
        leaf_seen = []
        x.register_hook(lambda g, leaf_seen=leaf_seen: leaf_seen.append(g.requires_grad))
        g, = grad((y.sin()).sum(), x, create_graph=True)
        h, = grad(g.sum(), x)
        out[lib] = (_np(g), _np(h), seen, leaf_seen)
    np.testing.assert_allclose(out["distnn"][0], out["torch"][0], rtol=1e-12)
    np.testing.assert_allclose(out["distnn"][1], out["torch"][1], rtol=1e-12)
    # (the second pass reaches y's and x's hooks again, now without create_graph: no graph, as PyTorch's)
    assert out["distnn"][2:] == out["torch"][2:] == ([True, False], [True, False])


def test_retain_graph_defaults_to_create_graph(torch):
    for lib, T, grad in _both_libs(torch):
        x = T(X)
        z = (x.exp() * x).sum()
        g1, = grad(z, x, create_graph=True)
        g2, = grad(z, x)  # the graph was kept: create_graph retains it
        np.testing.assert_allclose(_np(g1), _np(g2))
        z = (x.exp() * x).sum()
        grad(z, x, create_graph=True, retain_graph=False)
        with pytest.raises(RuntimeError, match="(?i)backward through the graph a second time"):
            grad(z, x)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")  # (torch's reference-cycle note)
def test_backward_create_graph_accumulates_values_and_keeps_the_graph(torch):
    out = {}
    for lib, T, grad in _both_libs(torch):
        x, w = T(X), T(Y)
        seen = []
        x.register_post_accumulate_grad_hook(lambda t, seen=seen: seen.append(1))
        loss = (F.linear(x, w.transpose(0, 1).reshape(2, 3) * 1.0) if lib == "distnn" else
                torch.nn.functional.linear(x, w.transpose(0, 1).reshape(2, 3) * 1.0)).tanh().sum()
        loss.backward(create_graph=True)
        first = (_np(x.grad).copy(), _np(w.grad).copy())
        loss.backward()  # retained: a second pass accumulates
        out[lib] = first + (_np(x.grad), _np(w.grad), len(seen))
    for a, b in zip(out["distnn"], out["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    autograd.backward([(Tensor(X.copy(), requires_grad=True) ** 2).sum()], create_graph=True)  # the list form


def test_grad_outputs_that_require_grad_stay_in_the_graph(torch):
    out = {}
    for lib, T, grad in _both_libs(torch):
        x, v = T(X), T(Y)
        g, = grad(x.sin() * x, x, grad_outputs=v, create_graph=True)
        dv, dx = grad(g.sum(), (v, x))
        out[lib] = (_np(g), _np(dv), _np(dx))
    for a, b in zip(out["distnn"], out["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_create_graph_under_no_grad_still_records(torch):
    for lib, T, grad in _both_libs(torch):
        x = T(X)
        z = (x ** 3).sum()
        ctx = distnn.no_grad() if lib == "distnn" else torch.no_grad()
        with ctx:
            g, = grad(z, x, create_graph=True)
        assert g.requires_grad
        h, = grad(g.sum(), x)
        np.testing.assert_allclose(_np(h), 6 * X, rtol=1e-12)


def test_an_in_place_change_after_the_forward_is_refused(torch):
    x = Tensor(X.copy(), requires_grad=True)
    y = x * 1.0
    z = (y.exp() * y).sum()
    with distnn.no_grad():
        y += 1.0
    with pytest.raises(RuntimeError, match="changed in place"):
        autograd.grad(z, x, create_graph=True)
