"""``inplace=True`` on activations and dropout means PyTorch's thing: the input tensor becomes the output."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn


@pytest.mark.parametrize("name,kwargs", [("relu", {}), ("leaky_relu", {"negative_slope": 0.1}), ("elu", {"alpha": 0.7})])
def test_functional_inplace_changes_the_input_as_torch(torch, name, kwargs):
    x0 = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    x = distnn.Tensor(x0.copy())
    view = x.data[1]  # memory another array shares sees the change, as a torch view would
    y = getattr(F, name)(x, inplace=True, **kwargs)
    tx = torch.from_numpy(x0.copy())
    getattr(torch.nn.functional, name)(tx, inplace=True, **kwargs)
    assert y is x
    np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(view, x.numpy()[1])
    z = getattr(F, name)(distnn.Tensor(x0.copy()), **kwargs)  # without it the input stays
    assert z is not x


def test_inplace_relu_while_recording_matches_torch_gradients(torch):
    a0 = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    a = distnn.Tensor(a0.copy(), requires_grad=True)
    h = a * 2.0
    same = F.relu(h, inplace=True)
    assert same is h
    (h * h).sum().backward()
    ta = torch.tensor(a0, requires_grad=True)
    th = ta * 2.0
    torch.nn.functional.relu(th, inplace=True)
    (th * th).sum().backward()
    np.testing.assert_allclose(h.numpy(), th.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-6)
    leaf = distnn.Tensor(a0.copy(), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad is used in an in-place operation"):
        F.relu(leaf, inplace=True)  # torch: "a leaf Variable that requires grad is being used in an in-place op"


def test_modules_with_inplace_true_change_their_input(torch):
    x0 = np.random.default_rng(2).standard_normal((6, 3)).astype(np.float32)
    for module in (nn.ReLU(inplace=True), nn.LeakyReLU(0.2, inplace=True), nn.ELU(inplace=True)):
        x = distnn.Tensor(x0.copy())
        out = module(x)
        assert out is x and float(x.numpy().min()) >= -1.0
    drop = nn.Dropout(0.5, inplace=True, generator=np.random.default_rng(0))
    x = distnn.Tensor(np.ones((50, 4), np.float32))
    assert drop(x) is x and set(np.unique(x.numpy())) <= {0.0, 2.0}
    drop.eval()
    y = distnn.Tensor(np.ones((2, 2), np.float32))
    assert drop(y) is y and np.all(y.numpy() == 1.0)  # evaluation: the identity
    assert repr(nn.ReLU(inplace=True)) == repr(torch.nn.ReLU(inplace=True))


def test_an_integer_tensor_is_refused_by_elu_as_torchs_and_relu_keeps_integers(torch):
    x = distnn.Tensor(np.array([-1, 2, -3]))
    with pytest.raises(NotImplementedError, match="\"elu_cpu\" not implemented for 'Long'"):
        F.elu(x, inplace=True)  # torch refuses ELU of integers; the tensor is left as it was
    with pytest.raises(NotImplementedError, match="\"elu_cpu\" not implemented for 'Long'"):
        torch.nn.functional.elu(torch.tensor([-1, 2, -3]), inplace=True)
    assert x.numpy().tolist() == [-1, 2, -3]
    assert F.relu(x, inplace=True) is x and x.numpy().tolist() == [0, 2, 0]
    assert torch.relu_(torch.tensor([-1, 2, -3])).tolist() == [0, 2, 0]


def test_evaluation_never_hands_the_data_itself_to_a_model_that_works_in_place():
    # eval batches were slices (views) of the dataset: a first in-place activation changed the data
    from distnn.train.trainer import eval_outputs

    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(6, 4)
    before = x.copy()
    model = nn.Sequential(nn.LeakyReLU(0.1, inplace=True), nn.Linear(4, 2))
    list(eval_outputs(model, x, batch_size=4))
    np.testing.assert_array_equal(x, before)
