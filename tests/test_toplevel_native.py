"""PyTorch's native_* top-level forms and the generic convolution on distnn (torch_toplevel_native.py) against
torch 2.13 with the same inputs and weights: every output's value, dtype and shape, the gradients (float64
tight), the running statistics updated in place, the dropout masks' law, refusals."""
import numpy as np
import pytest

import distnn
from tensor_ops_oracle import compare, rand

torch = pytest.importorskip("torch")

DTYPES = [np.float64, np.float32]

CASES = [
    ("native_batch_norm_train", lambda m, x, w, b: m.native_batch_norm(x, w, b, None, None, True, 0.1, 1e-5),
     [rand(4, 3, 5), rand(3, seed=1), rand(3, seed=2)]),
    ("native_batch_norm_train_4d", lambda m, x: m.native_batch_norm(x, None, None, None, None, True, 0.3, 1e-3),
     [rand(3, 2, 2, 3)]),
    ("native_batch_norm_eval", lambda m, x, w, b, rm, rv: m.native_batch_norm(x, w, b, rm.detach(),
                                                                               rv.detach().abs() + 0.5, False,
                                                                               0.1, 1e-5),
     [rand(4, 3, 5), rand(3, seed=1), rand(3, seed=2), rand(3, seed=3), rand(3, seed=4)]),
    ("native_layer_norm_last", lambda m, x, w, b: m.native_layer_norm(x, [5], w, b, 1e-5),
     [rand(4, 3, 5), rand(5, seed=1), rand(5, seed=2)]),
    ("native_layer_norm_two_dims", lambda m, x: m.native_layer_norm(x, (3, 5), None, None, 1e-3), [rand(4, 3, 5)]),
    ("native_group_norm", lambda m, x, w, b: m.native_group_norm(x, w, b, 4, 6, 5, 3, 1e-5),
     [rand(4, 6, 5), rand(6, seed=1), rand(6, seed=2)]),
    ("native_group_norm_4d_no_affine", lambda m, x: m.native_group_norm(x, None, None, 2, 4, 6, 2, 1e-4),
     [rand(2, 4, 2, 3)]),
    ("native_dropout_eval", lambda m, x: m.native_dropout(x, 0.4, False), [rand(3, 4)]),
    ("native_dropout_p0", lambda m, x: m.native_dropout(x, 0.0, True), [rand(3, 4)]),
    ("native_dropout_p1", lambda m, x: m.native_dropout(x, 1.0, True), [rand(3, 4)]),
    ("norm_except_dim_0", lambda m, v: m.norm_except_dim(v), [rand(4, 3, 5)]),
    ("norm_except_dim_1_p3", lambda m, v: m.norm_except_dim(v, 3, 1), [rand(4, 3, 5)]),
    ("norm_except_dim_last", lambda m, v: m.norm_except_dim(v, 2, 2), [rand(4, 3, 5)]),
    ("norm_except_dim_minus2", lambda m, v: m.norm_except_dim(v, 2, -2), [rand(4, 3, 5)]),
    ("norm_except_dim_all", lambda m, v: m.norm_except_dim(v, 2, -1), [rand(4, 3)]),
    ("convolution_2d", lambda m, x, w, b: m.convolution(x, w, b, [2, 1], [1, 0], [1, 2], False, [0, 0], 2),
     [rand(2, 4, 7, 6), rand(6, 2, 3, 2, seed=1), rand(6, seed=2)]),
    ("convolution_1d", lambda m, x, w: m.convolution(x, w, None, [1], [2], [1], False, [0], 1),
     [rand(2, 3, 8), rand(4, 3, 3, seed=1)]),
    ("convolution_3d", lambda m, x, w, b: m.convolution(x, w, b, [1, 2, 1], [0, 1, 1], [1, 1, 1], False, [0, 0, 0], 1),
     [rand(1, 2, 4, 5, 3), rand(3, 2, 2, 3, 2, seed=1), rand(3, seed=2)]),
    ("convolution_transposed_2d", lambda m, x, w, b: m.convolution(x, w, b, [2, 2], [1, 0], [1, 1], True, [1, 0], 2),
     [rand(2, 4, 3, 4), rand(4, 3, 3, 2, seed=1), rand(6, seed=2)]),
    ("convolution_transposed_1d", lambda m, x, w: m.convolution(x, w, None, [3], [1], [2], True, [2], 1),
     [rand(2, 3, 5), rand(3, 2, 3, seed=1)]),
    ("convolution_transposed_3d", lambda m, x, w: m.convolution(x, w, None, [2, 1, 1], [0, 0, 1], [1, 1, 1], True,
                                                                [1, 0, 0], 1),
     [rand(1, 2, 2, 3, 3), rand(2, 3, 2, 2, 2, seed=1)]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_native_forms_match_torch(name, fn, arrays, dtype):
    compare(torch, fn, arrays, dtype)


def test_native_group_norm_statistics_are_differentiable_as_torch():
    x = rand(2, 4, 3)
    ours, theirs = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    _, m_d, r_d = distnn.native_group_norm(ours, None, None, 2, 4, 3, 2, 1e-5)
    _, m_t, r_t = torch.native_group_norm(theirs, None, None, 2, 4, 3, 2, 1e-5)
    (m_d * 2 + r_d ** 2).sum().backward()
    (m_t * 2 + r_t ** 2).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_native_batch_and_layer_norm_statistics_are_detached_as_torch():
    x = distnn.tensor(rand(4, 3), requires_grad=True)
    outs = distnn.native_batch_norm(x, None, None, None, None, True, 0.1, 1e-5)
    assert [o.requires_grad for o in outs] == [True, False, False]
    outs = distnn.native_layer_norm(x, [3], None, None, 1e-5)
    assert [o.requires_grad for o in outs] == [True, False, False]
    assert [o.requires_grad for o in distnn.native_dropout(x, 0.5, True)] == [True, False]


def test_native_batch_norm_updates_the_running_statistics_as_torch():
    x = rand(5, 3, 4)
    rm_d, rv_d = distnn.tensor(rand(3, seed=1)), distnn.tensor(np.ones(3))
    rm_t, rv_t = torch.tensor(rand(3, seed=1)), torch.ones(3, dtype=torch.float64)
    distnn.native_batch_norm(distnn.tensor(x), None, None, rm_d, rv_d, True, 0.2, 1e-5)
    torch.native_batch_norm(torch.tensor(x), None, None, rm_t, rv_t, True, 0.2, 1e-5)
    np.testing.assert_allclose(rm_d.numpy(), rm_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv_d.numpy(), rv_t.numpy(), rtol=1e-12)


def test_native_dropout_mask_law_and_values():
    distnn.manual_seed(0)
    x = distnn.tensor(rand(200, 50) + 3.0, requires_grad=True)
    out, mask = distnn.native_dropout(x, 0.3, True)
    assert mask.dtype == np.bool_ and mask.shape == x.shape
    assert abs(float(mask.numpy().mean()) - 0.7) < 0.02  # (10,000 draws: 0.7 within about 4.4 sigma)
    np.testing.assert_allclose(out.numpy(), np.where(mask.numpy(), x.numpy() / 0.7, 0.0), rtol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(x.grad, mask.numpy() / 0.7, rtol=1e-12)
    _, mask_none = distnn.native_dropout(x, 0.3, None)  # (None trains, as ATen's)
    assert not mask_none.numpy().all()


@pytest.mark.parametrize("call,torch_type", [
    (lambda m, x: m.native_dropout(x, 1.5, True), RuntimeError),
    (lambda m, x: m.native_group_norm(x, None, None, 2, 4, 4, 2, 1e-5), RuntimeError),
    (lambda m, x: m.norm_except_dim(x, 2, 3), IndexError),
])
def test_refusals_as_torch(call, torch_type):
    x = rand(2, 4, 3)
    with pytest.raises(torch_type):
        call(torch, torch.tensor(x))
    with pytest.raises(torch_type):
        call(distnn, distnn.tensor(x))


def test_native_batch_norm_eval_without_running_statistics_is_refused():
    with pytest.raises(RuntimeError, match="running_mean and running_var must be given"):
        distnn.native_batch_norm(distnn.tensor(rand(4, 3)), None, None, None, None, False, 0.1, 1e-5)


@pytest.mark.parametrize("p,dim,keepdim", [(2, None, False), (3, None, False), (1, [1], True), (2, [0, 2], False)])
def test_native_norm_is_the_dense_p_norm(p, dim, keepdim):
    x = rand(4, 3, 5)
    ours = distnn.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    got = distnn.native_norm(ours, p) if dim is None else distnn.native_norm(ours, p, dim, keepdim, None)
    want = torch.native_norm(theirs.to_sparse(), p) if dim is None else torch.linalg.vector_norm(theirs, p, dim,
                                                                                                 keepdim)
    np.testing.assert_allclose(got.numpy(), want.detach().to_dense().numpy(), rtol=1e-12)
    if dim is not None:
        got.sum().backward()
        want.sum().backward()
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10)
    assert distnn.native_norm(ours, 2, [1], False, np.float32).dtype == np.float32


def test_convolution_refuses_a_weight_of_another_rank():
    with pytest.raises(RuntimeError, match="expected a weight of 3, 4 or 5 dims"):
        distnn.convolution(distnn.tensor(rand(2, 3)), distnn.tensor(rand(3, 3)), None, [1], [0], [1], False, [0], 1)


@pytest.mark.parametrize("max_norm,norm_type", [(0.5, 2.0), (1.0, 1.0), (0.8, 3.0)])
def test_embedding_renorm_rescales_the_looked_up_rows_in_place_as_torch(max_norm, norm_type):
    w, idx = rand(6, 3), np.array([[1, 1], [4, 0]])
    ours, theirs = distnn.tensor(w), torch.tensor(w)
    assert distnn.embedding_renorm_(ours, distnn.tensor(idx), max_norm, norm_type) is ours
    torch.embedding_renorm_(theirs, torch.tensor(idx), max_norm, norm_type)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    assert not np.allclose(ours.numpy(), w)  # (some row was too long, and was changed in place)


def test_embedding_renorm_refusals_as_torch():
    leaf_d, leaf_t = distnn.tensor(rand(6, 3), requires_grad=True), torch.tensor(rand(6, 3), requires_grad=True)
    for m, leaf in ((distnn, leaf_d), (torch, leaf_t)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            m.embedding_renorm_(leaf, m.tensor([1]), 0.5, 2.0)
        with m.no_grad():
            m.embedding_renorm_(leaf, m.tensor([1]), 0.5, 2.0)
        with pytest.raises(IndexError, match="index 7 out of range for tensor of size \\[6, 3\\]"):
            m.embedding_renorm_(leaf.detach(), m.tensor([7]), 0.5, 2.0)
    np.testing.assert_allclose(leaf_d.detach().numpy(), leaf_t.detach().numpy(), rtol=1e-12)
