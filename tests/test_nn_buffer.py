"""``nn.Buffer``: assigning one registers a buffer, as PyTorch's (compared with torch 2.13 side by side)."""
import numpy as np
import pytest

import distnn
from distnn import nn


def _pair(torch):
    """The same little module in both frameworks: a plain attribute, a parameter, a buffer."""
    class D(nn.Module):
        def __init__(self):
            super().__init__()
            self.plain = 1
            self.weight = nn.Parameter(np.ones(2, np.float32))
            self.register_buffer("old", distnn.tensor(np.zeros(2, np.float32)))

    class T(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.plain = 1
            self.weight = torch.nn.Parameter(torch.ones(2))
            self.register_buffer("old", torch.zeros(2))

    return D(), T()


def _keys(m):
    return list(m.state_dict()), [n for n, _ in m.named_buffers()]


@pytest.mark.parametrize("persistent", [True, False])
def test_assigning_a_buffer_registers_it_as_torch_does(torch, persistent):
    d, t = _pair(torch)
    value = np.arange(3, dtype=np.float32)
    d.extra = nn.Buffer(distnn.tensor(value), persistent=persistent)
    t.extra = torch.nn.Buffer(torch.tensor(value), persistent=persistent)
    assert _keys(d) == _keys(t)
    assert type(d.extra) is distnn.Tensor and not d.extra.requires_grad
    np.testing.assert_array_equal(d.extra.numpy(), t.extra.numpy())
    # a plain tensor assigned over it stays a buffer with its persistence; a Buffer over it sets a new one
    d.extra, t.extra = distnn.tensor(value + 1), torch.tensor(value + 1)
    assert _keys(d) == _keys(t)
    d.extra = nn.Buffer(distnn.tensor(value), persistent=not persistent)
    t.extra = torch.nn.Buffer(torch.tensor(value), persistent=not persistent)
    assert _keys(d) == _keys(t)
    d.old = nn.Buffer(distnn.tensor(value[:2]), persistent=False)  # an existing buffer keeps its place
    t.old = torch.nn.Buffer(torch.tensor(value[:2]), persistent=False)
    assert _keys(d) == _keys(t) and [n for n, _ in d.named_buffers()][0] == "old"


def test_the_module_holds_the_buffers_memory_and_moves_and_loads_it(torch):
    d, _ = _pair(torch)
    data = np.zeros(3, np.float32)
    d.stat = nn.Buffer(distnn.tensor(data))
    d.stat.data += 1  # the same memory as the Buffer's tensor
    d.load_state_dict({"weight": np.full(2, 2.0), "old": np.full(2, 3.0), "stat": np.full(3, 4.0)})
    np.testing.assert_array_equal(d.stat.numpy(), np.full(3, 4.0, np.float32))
    d.double()
    assert d.stat.dtype == np.float64 and d.weight.dtype == np.float64
    empty = nn.Buffer()  # PyTorch's default: an empty tensor of the default dtype
    assert empty.shape == (0,) and empty.dtype == np.float32 and empty.persistent


@pytest.mark.parametrize("name", ["plain", "weight"])
def test_a_buffer_over_a_plain_attribute_or_a_parameter_is_refused_as_torch_refuses_it(torch, name):
    d, t = _pair(torch)
    with pytest.raises(Exception) as expected:
        setattr(t, name, torch.nn.Buffer(torch.zeros(2)))
    with pytest.raises(expected.type, match=name):
        setattr(d, name, nn.Buffer(distnn.tensor(np.zeros(2, np.float32))))
    assert _keys(d) == _keys(t)


def test_requires_grad_is_kept(torch):
    d, t = _pair(torch)
    d.g = nn.Buffer(distnn.tensor(np.ones(2, np.float32), requires_grad=True))
    t.g = torch.nn.Buffer(torch.ones(2, requires_grad=True))
    assert d.g.requires_grad == t.g.requires_grad is True
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()] == ["weight"]
