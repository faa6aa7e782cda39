"""Version counters on every tensor (PyTorch's in-place check) and in-place operators that keep the tensor.

Each case once gave a silently wrong gradient or value: only leaves carried versions, views and detach()
did not share them, and `y += x` while recording rebound the name to a new tensor.
"""
import numpy as np
import pytest

import distnn as dn
from distnn import nn

MODIFIED = "changed in place after the forward pass"


def _x():
    return dn.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)


def _changed_under_no_grad(torch, make, change):
    """``make(x)`` builds a loss, ``change(...)`` mutates something it saved: torch and distnn both refuse."""
    for lib, x in (("torch", torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)), ("dn", _x())):
        loss, victim = make(x)
        with (torch.no_grad() if lib == "torch" else dn.no_grad()):
            change(victim)
        with pytest.raises(RuntimeError, match="modified by an inplace operation" if lib == "torch" else MODIFIED):
            loss.backward()


def test_an_intermediate_saved_for_backward_and_changed_under_no_grad_is_refused(torch):
    def make(x):
        y = x.exp()  # exp saves its output
        return y.sum(), y

    def change(y):
        y += 1

    _changed_under_no_grad(torch, make, change)


def test_a_change_through_a_view_or_detach_is_seen_by_the_saved_tensor(torch):
    def through_view(x):
        y = x.exp()
        return y.sum(), y.reshape(3, 1)

    def zero(v):
        v *= 0

    _changed_under_no_grad(torch, through_view, zero)

    def through_detach(x):
        return (x * x).sum(), x.detach()

    def add_one(d):
        d += 1

    _changed_under_no_grad(torch, through_detach, add_one)

    def through_transpose(x):
        w = x * 1.0
        return (w.reshape(3, 1).T * w.reshape(1, 3)).sum(), w.reshape(1, 3).T

    _changed_under_no_grad(torch, through_transpose, add_one)


def test_a_constant_operand_changed_in_place_is_refused(torch):
    for lib in ("torch", "dn"):
        if lib == "torch":
            x, c = torch.ones(3, dtype=torch.float64, requires_grad=True), torch.full((3,), 2.0, dtype=torch.float64)
        else:
            x, c = dn.Tensor(np.ones(3), requires_grad=True), dn.Tensor(np.full(3, 2.0))
        loss = (x * c).sum()
        c *= 10  # nothing requires grad: in place even while recording
        with pytest.raises(RuntimeError, match="modified by an inplace operation" if lib == "torch" else MODIFIED):
            loss.backward()


def test_load_state_dict_between_forward_and_backward_is_refused():
    m = nn.Linear(3, 2)
    sd = {k: v + 1 for k, v in m.state_dict().items()}
    x = dn.Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    loss = (m(x) ** 2).sum()
    m.load_state_dict(sd)
    with pytest.raises(RuntimeError, match=MODIFIED + ".*load_state_dict"):
        loss.backward()


def test_the_check_runs_before_any_gradient_is_accumulated():
    x = dn.Tensor(np.ones((2, 2)), requires_grad=True)
    w = dn.Tensor(np.ones((2, 2)), requires_grad=True)
    loss = (x.T * w).sum()
    with dn.no_grad():
        x *= 5
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()
    assert w.grad is None and x.grad is None  # (w's gradient used to be accumulated before the error)


def test_changing_a_tensor_no_node_saved_is_allowed_as_in_pytorch(torch):
    grads = []
    for lib in ("torch", "dn"):
        x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True) if lib == "torch" else \
            dn.Tensor(np.array([1.0, 2.0]), requires_grad=True)
        y = x * 3.0  # Mul saves x and the constant, not its output
        z = (y + 1).sum()
        with (torch.no_grad() if lib == "torch" else dn.no_grad()):
            y += 100
        z.backward()
        grads.append(np.asarray(x.grad))
    np.testing.assert_array_equal(grads[1], grads[0])


def test_in_place_while_recording_changes_the_tensor_itself(torch):
    # the same object changes (aliases, lists and attributes see it), gradients stay right
    ref_x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    ref_y = ref_x.exp()
    ref_y = ref_y * 1.0
    ref_y += ref_x
    ref_y *= ref_x
    ref_y.sum().backward()
    x = _x()
    y = x.exp() * 1.0
    held = [y]
    alias = y
    y += x
    y *= x
    assert held[0] is y and alias is y
    np.testing.assert_allclose(alias.data, ref_y.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, ref_x.grad.numpy(), rtol=1e-12)

    t = dn.Tensor(np.zeros(3))
    other = t

    def bump(a):
        a += 1

    bump(t)
    t += 1  # nothing requires grad: in place
    np.testing.assert_array_equal(other.data, np.full(3, 2.0))


def test_in_place_keeps_shape_and_dtype_or_refuses_in_both_modes():
    for recording in (True, False):
        ctx = dn.enable_grad() if recording else dn.no_grad()
        with ctx:
            y = _x() * 1.0
            y32 = dn.Tensor(np.ones(3, np.float32), requires_grad=True) * 1.0
            y32 += dn.Tensor(np.ones(3, np.float64))
            assert y32.dtype == np.float32  # PyTorch keeps the tensor's dtype
            with pytest.raises((RuntimeError, ValueError)):
                y += dn.Tensor(np.ones((2, 3)))  # would have to grow to (2, 3)
            assert y.shape == (3,)
            n = dn.Tensor(np.arange(3))
            with pytest.raises(TypeError):
                n /= 2  # an int tensor cannot hold the quotient
            if recording:
                n = dn.Tensor(np.arange(3))
                with pytest.raises(TypeError):
                    n += _x()  # a float result cannot go back into an int tensor
            assert n.dtype.kind == "i"


def test_in_place_while_recording_on_a_tensor_whose_memory_a_reshape_sees_reaches_its_graph():
    x = _x()
    y = x * 2.0
    view = y.reshape(3, 1)
    y += x  # (was refused: the view's node is re-made from y's, as PyTorch's AsStridedBackward0)
    (y.sum() + (view * view).sum()).backward()
    np.testing.assert_allclose(x.grad, 3.0 + 18.0 * x.data, rtol=1e-12)  # y = 3x; d(view^2)/dx = 2 * 3x * 3


def test_to_keeps_the_graph_and_returns_self_when_nothing_changes(torch):
    x = _x()
    assert x.to("cpu") is x and x.to(np.float64) is x and x.to("float64") is x
    z = (x * 2).to("cpu")
    (z * z).sum().backward()
    np.testing.assert_allclose(x.grad, 8 * x.data)  # it went to z, a new leaf, and x got none
    x.grad = None
    (x.to(np.float32) ** 2).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, 2 * x.data, rtol=1e-6)


def test_item_assignment_matches_pytorch_values_and_gradients(torch):
    # x[index] = v did not exist (a TypeError); PyTorch users write it for masks and slices
    results = []
    for lib in ("torch", "dn"):
        if lib == "torch":
            x = torch.arange(6.0, dtype=torch.float64).reshape(2, 3).requires_grad_()
            v = torch.tensor([10.0, 20.0, 30.0], dtype=torch.float64, requires_grad=True)
            w = torch.arange(6.0, dtype=torch.float64).reshape(2, 3) + 1
        else:
            x = dn.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
            v = dn.Tensor(np.array([10.0, 20.0, 30.0]), requires_grad=True)
            w = dn.Tensor(np.arange(6.0).reshape(2, 3) + 1)
        y = x * 2
        alias = y
        y[1] = v  # a row from a tensor that requires grad
        y[0, 1:] = v[:2] * 3  # a slice from an expression
        y[(y > 50) if lib == "dn" else (y.detach() > 50)] = 0.5  # a boolean mask and a constant
        y[np.array([0, 1]) if lib == "dn" else torch.tensor([0, 1]), 0] = 7.0  # advanced indexing
        (alias * w).sum().backward()  # the same object changed
        results.append([np.asarray(a) for a in (y.detach(), x.grad, v.grad)])
    for ours, ref in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_item_assignment_in_place_under_no_grad_and_refused_on_a_recorded_leaf():
    m = nn.Linear(3, 2)
    x = dn.Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    loss = (m(x) ** 2).sum()
    with dn.no_grad():
        m.weight[0] = 0.0  # in place: the parameter object keeps its new values
    np.testing.assert_array_equal(m.weight.data[0], np.zeros(3, np.float32))
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()  # the graph saved the old weight (for x's gradient)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad is used in an in-place operation"):
        m.weight[0] = 1.0
    c = dn.Tensor(np.zeros(3))  # a constant receiving a value that requires grad joins the graph
    v = dn.Tensor(np.array(2.0), requires_grad=True)
    c[1:] = v
    (c * dn.Tensor(np.array([1.0, 3.0, 4.0]))).sum().backward()
    assert c.requires_grad and v.grad == 7.0


def test_equality_is_elementwise_as_in_pytorch_and_tensors_stay_hashable(torch):
    # `==` compared identity: (pred == target) was False, so np.mean(pred == target) silently gave 0.0
    pred, target = dn.Tensor(np.array([0, 2, 1, 2])), dn.Tensor(np.array([0, 1, 1, 2]))
    ref = torch.tensor([0, 2, 1, 2]) == torch.tensor([0, 1, 1, 2])
    np.testing.assert_array_equal((pred == target).data, ref.numpy())
    np.testing.assert_array_equal((pred != target).data, ~ref.numpy())
    np.testing.assert_array_equal((pred == 2).data, np.array([False, True, False, True]))
    assert np.mean((pred == target).data) == 0.75
    seen = {pred: "a", target: "b"}  # hashed by identity, as in PyTorch
    assert seen[pred] == "a" and len({pred, target, pred}) == 2


def test_a_tensor_that_requires_grad_does_not_silently_leave_the_graph_through_numpy():
    # np.exp(x) returned a plain array: a loss built from it had no path back to x, which got no gradient
    x = _x()
    with pytest.raises(TypeError, match="requires grad cannot become a numpy array implicitly"):
        np.exp(x)
    with pytest.raises(TypeError, match="requires grad"):
        np.asarray(x * 2)
    np.testing.assert_array_equal(x.numpy(), x.data)  # explicit: the values
    np.testing.assert_array_equal(np.asarray(x.detach()), x.data)
    with dn.no_grad():
        np.testing.assert_array_equal(np.asarray(x), x.data)  # nothing is recorded there anyway


def test_in_place_on_scalars_and_indexed_elements_as_in_pytorch(torch):
    # a full reduction or a scalar index gave a numpy scalar: c[0] += 1 was "return arrays must be of ArrayType"
    c = dn.Tensor(np.zeros(3, np.float32))
    c[0] += 1
    grid = dn.Tensor(np.zeros((2, 3)))
    grid[0, 1] += 2
    grid[0, 1] *= 3
    total = (c == c).sum()
    total += (c == c).sum()
    np.testing.assert_array_equal(c.data, [1, 0, 0])
    assert grid.data[0, 1] == 6 and total.item() == 6
    results = []
    for lib in ("torch", "dn"):  # h[i] op= v on a graph tensor: the base changes through the view
        if lib == "torch":
            x = torch.arange(6.0, dtype=torch.float64).reshape(2, 3).requires_grad_()
            v = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
        else:
            x = dn.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
            v = dn.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
        h = x * 2
        h[0] += v
        h[:, 1] *= 3
        (h * h).sum().backward()
        results.append([np.asarray(a) for a in ((h.detach() if lib == "torch" else h.data), x.grad, v.grad)])
    for ours, ref in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_in_place_twice_through_a_view_and_through_a_view_of_a_view_as_in_pytorch(torch):
    # the first in-place change through a view cut it from its base: a second one was silently lost
    # (y[0] stayed x[0] + 1, x.grad 1 instead of 10), and a view of that view never reached the base
    def twice(y):
        a = y[0]
        a += 1
        a *= 10
        return a

    def nested(y):
        a = y[0]
        b = a[1:]
        b *= 2
        a += 1
        b -= 3
        return b

    def base_after(y):
        a, sibling = y[0], y[1, ::2]
        a += 1
        y *= 2  # the views follow their base
        sibling[0] = a[2]  # item assignment through a view
        return a * sibling.sum()

    def reshaped(y):  # (a reshape view of the base: it was refused while it lived)
        flat = y.reshape(6)
        a = y[0]
        a += 1
        flat *= 2
        return flat

    for change in (twice, nested, base_after, reshaped):
        results = []
        for lib in ("torch", "dn"):
            if lib == "torch":
                x = torch.arange(6.0, dtype=torch.float64).reshape(2, 3).requires_grad_()
            else:
                x = dn.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
            y = x * 1
            view = change(y)
            ((y * y).sum() + (view * view).sum()).backward()
            results.append([np.asarray(a) for a in ((y.detach(), view.detach()) if lib == "torch"
                                                    else (y.data, view.data)) + (x.grad,)])
        for ours, ref in zip(results[1], results[0]):
            np.testing.assert_allclose(ours, ref, rtol=1e-12, err_msg=change.__name__)


def test_indices_conditions_and_parameter_sources_are_version_checked():
    x = _x()
    index = dn.Tensor(np.array([0, 1]))
    by_index = (x[index] * x[index]).sum()
    cond = dn.Tensor(np.array([True, False, True]))
    by_condition = dn.functional.where(cond, x * x, 0.0).sum()
    with dn.no_grad():  # the gradient would silently move to other rows / through other elements
        index[...] = 2
        cond[...] = False
    for loss in (by_index, by_condition):
        with pytest.raises(RuntimeError, match=MODIFIED):
            loss.backward()
    t = dn.Tensor(np.array([1.0, 2.0]))
    p = nn.Parameter(t)  # the same memory: one version counter, as in PyTorch
    loss = (p * p).sum()
    t += 1
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_what_pytorch_allows_stays_allowed_and_copies_are_independent():
    import copy
    import pickle

    m = nn.Linear(3, 2)
    out = m(dn.Tensor(np.ones((2, 3), np.float32)))
    with dn.no_grad():
        out *= 2  # Linear's backward does not read its output (PyTorch runs this too)
    out.sum().backward()
    _ = dn.Tensor(np.ones((4, 3), np.float32)) @ m.weight.T  # a view of the weight is alive somewhere
    clone = pickle.loads(pickle.dumps(m))  # weak references to views made pickling fail
    np.testing.assert_array_equal(clone.weight.data, m.weight.data)
    twin = copy.deepcopy(m)
    y = twin.weight * 1.0
    y += 1  # the copy's tensors are views of nothing alive
    assert (dn.Tensor(np.ones(2)) == None) is False and (dn.Tensor(np.ones(2)) != None) is True  # noqa: E711
