"""The engine and Module where PyTorch users would be misled: in-place updates, custom gradients of the
wrong shape, names that shadow parameters, tied submodules in a state_dict, 1-element tensors."""
import numpy as np
import pytest

import distnn as dn
from distnn import nn
from distnn.autograd.function import Function


def test_in_place_updates_under_no_grad_change_the_parameters():
    # `p -= lr * p.grad` used to rebind the loop variable (the model did not move) and, as an attribute,
    # replace the Parameter by a plain Tensor that dropped out of parameters()
    m = nn.Linear(3, 2)
    w0, b0 = m.weight.data.copy(), m.bias.data.copy()
    for p in m.parameters():
        p.grad = np.ones_like(p.data)
    with dn.no_grad():
        for p in m.parameters():
            p -= 0.1 * p.grad
        m.weight *= 2.0
        m.bias /= 2
        m.bias += 1
    np.testing.assert_allclose(m.weight.data, 2 * (w0 - 0.1), rtol=1e-6)
    np.testing.assert_allclose(m.bias.data, (b0 - 0.1) / 2 + 1, rtol=1e-6)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"] and isinstance(m.weight, nn.Parameter)


def test_in_place_on_a_recorded_leaf_is_an_error_and_elsewhere_keeps_gradients_right():
    m = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad is used in an in-place operation"):
        m.weight += 1
    x = dn.Tensor(np.ones(3), requires_grad=True)
    y = x * 2
    y += x  # a tensor of the graph: a new node bound to y
    y *= 3
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.full(3, 9.0))


class _NoTranspose(Function):
    """x.T whose backward forgets to transpose back: (4, 3) for a (3, 4) input."""

    def forward(self, x):
        return x.T.copy()

    def backward(self, g):
        return (g,)


def test_a_custom_gradient_of_the_wrong_shape_is_an_error_not_a_reshape():
    x = dn.Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient of shape \(4, 3\) cannot be reduced to input shape \(3, 4\)"):
        _NoTranspose.apply(x).sum().backward()
    z = dn.Tensor(np.float64(2.0), requires_grad=True)  # 0-d targets still take a (1,)-shaped gradient
    (z * dn.Tensor(np.ones(1))).sum().backward()
    assert z.grad.shape == () and z.grad == 1.0


def test_registered_names_are_never_hidden_or_silently_replaced():
    m = nn.Module()
    m.w = None
    m.w = nn.Parameter(np.ones(2))
    assert m.w is m._parameters["w"] and [n for n, _ in m.named_parameters()] == ["w"]
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'w'"):
        m.w = dn.Tensor(np.zeros(2))
    m.w = None  # None is allowed, as in PyTorch
    assert list(m.state_dict()) == []
    m.sub = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign int as child module 'sub'"):
        m.sub = 3
    m.note = 1
    with pytest.raises(KeyError, match="attribute 'note' already exists"):
        m.register_buffer("note", np.zeros(1))
    m.register_buffer("stats", np.zeros(2), persistent=False)
    m.register_buffer("stats", np.ones(2))  # registered again as persistent: in the state_dict now
    m.stats = np.full(2, 3.0)  # an array assigned to a buffer's name stays the buffer
    assert "stats" in m.state_dict() and m.state_dict()["stats"].tolist() == [3.0, 3.0]


def test_a_tied_submodule_appears_under_each_name_as_in_pytorch(torch):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(4, 4)
            self.dec = self.enc

    class TTied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.Linear(4, 4)
            self.dec = self.enc

    t = TTied()
    m = Tied()
    assert list(m.state_dict()) == list(t.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})  # strict: used to fail
    np.testing.assert_array_equal(m.dec.weight.data, t.enc.weight.detach().numpy())
    assert len(list(m.parameters())) == 2  # parameters are still listed once


def test_one_element_tensors_convert_and_backward_takes_a_list():
    t = dn.Tensor(np.full((1, 1), 2.5))
    assert float(t) == 2.5 and int(t) == 2
    x = dn.Tensor(np.ones(2), requires_grad=True)
    (x * 3).backward([1.0, 2.0])
    np.testing.assert_array_equal(x.grad, [3.0, 6.0])


def test_grad_modes_decorate_functions_and_generators():
    from distnn.autograd.grad_mode import is_grad_enabled

    @dn.set_grad_enabled(False)
    def off():
        return is_grad_enabled()

    assert is_grad_enabled()  # decorating does not leave this thread off (it used to, for good)
    assert off() is False and is_grad_enabled()

    @dn.no_grad()
    def gen():
        for _ in range(2):
            yield is_grad_enabled()
        return "done"

    assert list(gen()) == [False, False] and is_grad_enabled()


def test_requires_grad_turned_off_after_the_graph_was_built_gets_no_gradient():
    x = dn.Tensor(np.ones(2), requires_grad=True)
    w = dn.Tensor(np.ones(2), requires_grad=True)
    y = (x * w).sum()
    w.requires_grad_(False)
    y.backward()
    assert w.grad is None and x.grad is not None
    assert dn.Tensor(np.ones(2, complex), requires_grad=True).requires_grad  # (complex autograd: PyTorch's)


def test_apply_visits_children_first_and_train_calls_each_childs_own_train():
    class Frozen(nn.Linear):
        def train(self, mode=True):
            return super().train(False)  # stays in eval mode

    seen = []
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(Frozen(2, 2)))
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Frozen", "Sequential", "Sequential"]  # PyTorch's order
    model.train()
    assert model.training and model[0].training and not model[1][0].training


def test_to_casts_gradients_takes_dtype_names_and_slices_keep_names():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    m[0].weight.grad = np.ones((3, 2), np.float32)
    m.to("float64")  # a dtype name, not a device
    assert m[0].weight.dtype == np.float64 and m[0].weight.grad.dtype == np.float64  # the gradient came along
    with pytest.raises(TypeError, match="floating dtype"):
        m.to("int32")
    tail = m[1:]
    assert [n for n, _ in tail.named_parameters()] == ["2.weight", "2.bias"]  # PyTorch keeps the names
    assert m[2].where() == "Linear '2'"  # the original layer's name is untouched


def test_a_graph_refuses_to_backward_through_weights_updated_since_the_forward():
    # PyTorch's version-counter check: a backward after optimizer.step() (or an in-place update under
    # no_grad) would silently use the new weights (x.grad came out [1.07 1.61 1.95] instead of [-0.20 ...])
    m = nn.Linear(3, 2)
    opt = dn.optim.SGD(m.parameters(), lr=0.1)
    x = dn.Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    loss = (m(x) ** 2).sum()
    for p in m.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    with pytest.raises(RuntimeError, match="changed in place after the forward pass.*optimizer.step"):
        loss.backward()
    loss = (m(x) ** 2).sum()
    loss.backward(retain_graph=True)
    with dn.no_grad():
        m.bias -= 1.0  # no backward reads the bias (PyTorch's neither): still fine
    loss.backward(retain_graph=True)
    with dn.no_grad():
        m.weight -= 1.0  # x's gradient reads the weight
    with pytest.raises(RuntimeError, match="input 1 of Linear is at version 3, the graph recorded 2"):
        loss.backward()
    for _ in range(2):  # the usual loop, and accumulation over two forwards before one step, are untouched
        opt.zero_grad()
        (m(x) ** 2).sum().backward()
        (m(x) ** 2).sum().backward()
        opt.step()
