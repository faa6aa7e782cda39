"""The PyTorch API a user audit found missing, each op against PyTorch with the same inputs.

Values and gradients (backward of a random weighted sum of the output), float64 and float32, several
shapes and dims (negative ones too); sort/argsort ties against PyTorch's ``stable=True``; a few refusals
as PyTorch's. Error cases, 0-d tensors, copies and views, finite-difference checks:
test_torch_api_extras_edges.py.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}


def _inputs(torch, arrays, dtype):
    ours = [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    return ours, theirs


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def compare(torch, ours_fn, torch_fn, arrays, dtype, seed=0, grad=True):
    """Run both on the same inputs; compare the values and the gradients of a random weighted sum."""
    ours, theirs = _inputs(torch, arrays, dtype)
    out_d, out_t = ours_fn(*ours), torch_fn(*theirs)
    vd, vt = _first(out_d), _first(out_t)
    assert vd.dtype == np.dtype(str(vt.dtype).replace("torch.", "")) and tuple(vd.shape) == tuple(vt.shape)
    np.testing.assert_allclose(vd.numpy(), vt.detach().numpy(), **TOL[dtype])
    if isinstance(out_t, tuple):  # (values, indices): the indices too
        np.testing.assert_array_equal(out_d[1].numpy(), out_t[1].numpy())
        assert out_d[1].dtype == np.int64
    if not grad:
        return out_d
    w = np.random.default_rng(seed + 1).standard_normal(vt.shape).astype(dtype)
    (vd * Tensor(w)).sum().backward()
    (vt * torch.tensor(w)).sum().backward()
    for d, t in zip(ours, theirs):
        expected = t.grad.numpy() if t.grad is not None else np.zeros(t.shape, dtype)
        np.testing.assert_allclose(d.grad, expected, **TOL[dtype])
    return out_d


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def ties(*shape, seed=0):
    """Small integers as floats: many ties."""
    return np.random.default_rng(seed).integers(-2, 3, size=shape).astype(np.float64)


DTYPES = [np.float64, np.float32]

# (id, distnn op, torch op, input arrays)
CASES = [
    ("cumsum0", lambda x: x.cumsum(0), lambda x: x.cumsum(0), [rand(3, 4, 5)]),
    ("cumsum-1", lambda x: distnn.cumsum(x, -1), lambda x: x.cumsum(-1), [rand(3, 4, 5)]),
    ("cumsum1_dtype", lambda x: x.cumsum(1, dtype=np.float64), lambda x: x.double().cumsum(1), [rand(2, 6)]),
    ("prod_all", lambda x: x.prod(), lambda x: x.prod(), [rand(3, 4)]),
    ("prod1", lambda x: distnn.prod(x, 1), lambda x: x.prod(1), [rand(3, 4, 2)]),
    ("prod-1keep", lambda x: x.prod(-1, keepdim=True), lambda x: x.prod(-1, keepdim=True), [rand(3, 4)]),
    ("prod_zeros", lambda x: x.prod(1), lambda x: x.prod(1),
     [np.array([[1.5, 0.0, 2.0, -3.0], [0.0, 2.0, 0.0, 4.0], [1.0, 2.0, 3.0, 4.0]])]),
    ("prod_zero_all", lambda x: x.prod(), lambda x: x.prod(), [np.array([[1.5, 0.0], [2.0, -3.0]])]),
    ("logsumexp1", lambda x: x.logsumexp(1), lambda x: x.logsumexp(1), [rand(3, 4, 5) * 10]),
    ("logsumexp_tuple", lambda x: distnn.logsumexp(x, (0, -1), keepdim=True),
     lambda x: torch_logsumexp(x, (0, -1), True), [rand(3, 4, 5)]),
    ("amax", lambda x: x.amax(), lambda x: x.amax(), [ties(3, 4)]),
    ("amax1", lambda x: distnn.amax(x, 1), lambda x: x.amax(1), [ties(3, 5, 2)]),
    ("amin_tuple", lambda x: x.amin((0, -1), keepdim=True), lambda x: x.amin((0, -1), keepdim=True), [ties(3, 5, 2)]),
    ("sort", lambda x: x.sort(), lambda x: x.sort(stable=True), [ties(4, 7)]),
    ("sort0desc", lambda x: distnn.sort(x, 0, descending=True), lambda x: x.sort(dim=0, descending=True, stable=True),
     [ties(9, 3)]),
    ("sort_stable", lambda x: x.sort(dim=-2, stable=True), lambda x: x.sort(dim=-2, stable=True), [ties(5, 3, 2)]),
    ("sort_nan", lambda x: x.sort(descending=True), lambda x: x.sort(descending=True, stable=True),
     [np.array([1.0, np.nan, 3.0, 1.0, np.nan])]),
    ("topk", lambda x: x.topk(3), lambda x: x.topk(3), [rand(4, 7)]),
    ("topk0small", lambda x: distnn.topk(x, 2, dim=0, largest=False), lambda x: x.topk(2, dim=0, largest=False),
     [rand(5, 3)]),
    ("index_select0", lambda x: x.index_select(0, distnn.tensor([2, 0, 2])),
     lambda x: x.index_select(0, torch_long([2, 0, 2])), [rand(3, 4)]),
    ("index_select-1", lambda x: distnn.index_select(x, -1, distnn.tensor([3, 1, 1, 0])),
     lambda x: x.index_select(-1, torch_long([3, 1, 1, 0])), [rand(2, 3, 4)]),
    ("narrow", lambda x: x.narrow(1, 1, 2), lambda x: x.narrow(1, 1, 2), [rand(3, 4)]),
    ("narrow_neg", lambda x: distnn.narrow(x, -1, -3, 2), lambda x: x.narrow(-1, -3, 2), [rand(3, 4)]),
    ("flip0", lambda x: x.flip(0), lambda x: x.flip(0), [rand(3, 4)]),
    ("flip_dims", lambda x: distnn.flip(x, (0, -1)), lambda x: x.flip((0, -1)), [rand(3, 4, 2)]),
    ("roll_flat", lambda x: x.roll(2), lambda x: x.roll(2), [rand(3, 4)]),
    ("roll_dims", lambda x: distnn.roll(x, (1, -2), (0, -1)), lambda x: x.roll((1, -2), (0, -1)), [rand(3, 4, 5)]),
    ("bmm", lambda a, b: a.bmm(b), lambda a, b: a.bmm(b), [rand(2, 3, 4), rand(2, 4, 5, seed=1)]),
    ("bmm_fn", lambda a, b: distnn.bmm(a, b), lambda a, b: a.bmm(b), [rand(3, 1, 4), rand(3, 4, 2, seed=1)]),
    ("mT", lambda x: x.mT, lambda x: x.mT, [rand(2, 3, 4)]),
    ("type_as", lambda x: x.type_as(distnn.zeros(1, dtype=np.float64)) * 2, lambda x: x.double() * 2, [rand(3)]),
    ("normalize", lambda x: F.normalize(x), lambda x: torch_F().normalize(x), [rand(4, 3)]),
    ("normalize_p1", lambda x: F.normalize(x, p=1, dim=-1), lambda x: torch_F().normalize(x, p=1, dim=-1),
     [rand(2, 3, 4)]),
    ("normalize_p3", lambda x: F.normalize(x, p=3, dim=0), lambda x: torch_F().normalize(x, p=3, dim=0),
     [rand(4, 3)]),
    ("normalize_inf", lambda x: F.normalize(x, p=float("inf")), lambda x: torch_F().normalize(x, p=float("inf")),
     [rand(4, 3)]),
    ("normalize_zero_row", lambda x: F.normalize(x, eps=1e-3), lambda x: torch_F().normalize(x, eps=1e-3),
     [np.array([[0.0, 0.0, 0.0], [1.0, 2.0, -2.0], [1e-5, 0.0, 0.0]])]),
]

EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("bij->bji", [(2, 3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("bi,bi->b", [(5, 3), (5, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("b...,b...->b", [(2, 3, 4), (2, 3, 4)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
]


def torch_F():
    import torch.nn.functional as tf

    return tf


def torch_long(values):
    import torch

    return torch.tensor(values, dtype=torch.int64)


def torch_logsumexp(x, dim, keepdim):
    import torch

    return torch.logsumexp(x, dim, keepdim)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_matches_torch(torch, case, dtype):
    _, ours, theirs, arrays = case
    compare(torch, ours, theirs, arrays, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("equation,shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum_matches_torch(torch, equation, shapes, dtype):
    arrays = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    compare(torch, lambda *xs: distnn.einsum(equation, *xs), lambda *xs: torch.einsum(equation, *xs), arrays, dtype)


def test_einsum_takes_a_list_of_operands(torch):
    a, b = rand(2, 3), rand(3, 4, seed=1)
    out = distnn.einsum("ij,jk", [Tensor(a), Tensor(b)])
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-12)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_argsort_ties_match_torch_stable(torch, dim, descending):
    x = ties(6, 5, 4, seed=3)
    ours = distnn.argsort(Tensor(x), dim=dim, descending=descending, stable=True)
    theirs = torch.argsort(torch.tensor(x), dim=dim, descending=descending, stable=True)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(Tensor(x).argsort(dim, descending).numpy(), theirs.numpy())


def test_topk_with_ties_takes_the_right_values(torch):
    x = ties(5, 8, seed=4)
    values, indices = Tensor(x).topk(3, dim=1)
    expected = torch.tensor(x).topk(3, dim=1).values.numpy()
    np.testing.assert_array_equal(values.numpy(), expected)
    np.testing.assert_array_equal(np.take_along_axis(x, indices.numpy(), 1), expected)
    # equal elements: the first ones are taken, in order
    v, i = Tensor(np.array([1.0, 3.0, 3.0, 2.0, 3.0])).topk(2)
    assert i.tolist() == [1, 2] and v.tolist() == [3.0, 3.0]


def test_rounding_values_and_zero_gradients(torch):
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -1.7, 1.2, 0.0, 3.0])
    for name in ["round", "floor", "ceil", "trunc", "sign"]:
        d = Tensor(x.copy(), requires_grad=True)
        t = torch.tensor(x, requires_grad=True)
        out_d, out_t = getattr(d, name)(), getattr(t, name)()
        np.testing.assert_array_equal(out_d.numpy(), out_t.detach().numpy(), err_msg=name)
        np.testing.assert_array_equal(getattr(distnn, name)(Tensor(x)).numpy(), out_t.detach().numpy())
        (out_d * 3.0).sum().backward()
        (out_t * 3.0).sum().backward()
        assert d.grad is not None and np.array_equal(d.grad, t.grad.numpy()) and not d.grad.any(), name
    y = np.array([0.125, 1.005, -2.675, 12.5])
    np.testing.assert_array_equal(Tensor(y).round(decimals=2).numpy(), torch.tensor(y).round(decimals=2).numpy())
    ints = np.array([-3, 0, 4])
    for name in ["round", "floor", "ceil", "trunc", "sign"]:
        out = getattr(Tensor(ints), name)()
        assert out.dtype == np.int64 and out.tolist() == getattr(torch.tensor(ints), name)().tolist(), name


def test_integer_results_are_typed_as_torch(torch):
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
    assert Tensor(x).cumsum(1).dtype == np.int64 and Tensor(x).cumsum(1).tolist() == [[1, 3, 6], [4, 9, 15]]
    assert Tensor(x).prod().dtype == np.int64 and Tensor(x).prod().item() == 720
    assert Tensor(x).logsumexp(1).dtype == np.float32
    np.testing.assert_allclose(Tensor(x).logsumexp(1).numpy(), torch.tensor(x).logsumexp(1).numpy(), rtol=1e-6)


def test_top_level_functions_exist_like_torch():
    x = Tensor(rand(2, 1, 3))
    np.testing.assert_array_equal(distnn.squeeze(x, 1).numpy(), x.numpy()[:, 0])
    np.testing.assert_array_equal(distnn.flatten(x).numpy(), x.numpy().reshape(-1))
    np.testing.assert_allclose(distnn.sigmoid(x).numpy(), 1 / (1 + np.exp(-x.numpy())), rtol=1e-12)
    np.testing.assert_array_equal(distnn.clamp(x, -0.5, 0.5).numpy(), np.clip(x.numpy(), -0.5, 0.5))
    np.testing.assert_array_equal(distnn.unsqueeze(x, 0).shape, (1, 2, 1, 3))


def test_flatten_refuses_dims_out_of_range_or_in_the_wrong_order_as_torch(torch):
    # found by tests/test_layer_fuzz.py: start_dim after end_dim gave a tensor with one MORE dimension
    # ((2, 3, 4).flatten(2, 1) -> (2, 3, 1, 4)...), and dims out of range wrapped around silently
    x, xt = Tensor(rand(2, 3, 4)), torch.zeros(2, 3, 4)
    for start, end in ((2, 1), (-1, 0), (1, -3)):
        with pytest.raises(RuntimeError, match="start_dim cannot come after end_dim"):
            x.flatten(start, end)
        with pytest.raises(RuntimeError):
            xt.flatten(start, end)
        with pytest.raises(RuntimeError, match="cannot come after"):
            distnn.nn.Flatten(start, end)(x)
    for start, end in ((0, 3), (3, -1), (-4, 0)):
        with pytest.raises(IndexError, match="out of range"):
            x.flatten(start, end)
        with pytest.raises(IndexError):
            xt.flatten(start, end)
    with pytest.raises(IndexError, match="Unflatten.*out of range"):
        distnn.nn.Unflatten(3, (2, 2))(x)
    assert x.flatten(-3, 0).shape == (2, 3, 4) and Tensor(np.zeros(())).flatten(-1, 0).shape == (1,)
    assert distnn.nn.Flatten(-2, -1)(x).shape == (2, 12) and distnn.nn.Unflatten(-1, (2, -1))(x).shape == (2, 3, 2, 2)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,pad", [((2, 3, 5), (2, 1)), ((2, 3, 5), (-1, 3)), ((1, 2, 4, 3), (1, 2, 3, 0)),
                                       ((2, 1, 3, 2, 4), (1, 1, 0, 1, 2, -1))])
def test_pad_reflect_replicate_circular_match_torch(torch, mode, shape, pad):
    # found by tests/test_layer_fuzz.py: F.pad took mode="constant" only (ValueError for PyTorch's others)
    x = rand(*shape)
    xd, xt = Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    yd, yt = F.pad(xd, pad, mode=mode), torch.nn.functional.pad(xt, pad, mode=mode)
    np.testing.assert_array_equal(yd.numpy(), yt.detach().numpy())
    g = rand(*yt.shape, seed=1)
    yd.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_pad_mode_errors():
    x = Tensor(rand(1, 2, 3))
    with pytest.raises(ValueError, match="out of range for mode='reflect'"):
        F.pad(x, (3, 0), mode="reflect")  # (PyTorch: each amount smaller than the dimension)
    with pytest.raises(ValueError, match="out of range for mode='circular'"):
        F.pad(x, (4, 0), mode="circular")
    with pytest.raises(ValueError, match="takes no value"):
        F.pad(x, (1, 1), mode="replicate", value=2.0)
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="edge")
    assert F.pad(x, (1, 1), mode="reflect", value=0).shape == (1, 2, 5)  # (PyTorch takes its default 0 too)


def test_allclose_and_equal(torch):
    a = Tensor(np.array([1.0, 2.0, np.nan]))
    b = Tensor(np.array([1.0 + 1e-9, 2.0, np.nan]))
    assert distnn.allclose(a, b, equal_nan=True) and not a.allclose(b)
    assert not distnn.equal(a, b) and distnn.equal(a[:2], Tensor(np.array([1.0, 2.0])))
    assert not Tensor(np.ones(3)).equal(Tensor(np.ones(4))) and Tensor(np.ones(3)).equal(Tensor(np.ones(3)))
    assert distnn.allclose(Tensor(np.ones((2, 3))), Tensor(np.ones(3)))  # (broadcasts, as torch's)
    assert isinstance(a.equal(a[...]), bool)


def test_new_tensors_take_dtype_and_device_of_self():
    x = Tensor(np.ones((2, 2), np.float64))
    z = x.new_zeros(3, 4)
    assert z.shape == (3, 4) and z.dtype == np.float64 and not z.numpy().any() and not z.requires_grad
    assert x.new_ones((2,)).tolist() == [1.0, 1.0] and x.new_ones(2, dtype=np.int64).dtype == np.int64
    f = x.new_full((2, 3), 7)
    assert f.dtype == np.float64 and (f.numpy() == 7).all()
    assert x.new_empty(5).shape == (5,) and x.new_empty((1, 2)).dtype == np.float64
    t = x.new_tensor([1, 2])
    assert t.dtype == np.float64 and t.tolist() == [1.0, 2.0]
    src = np.array([1.0, 2.0])
    c = x.new_tensor(src, requires_grad=True)
    src[0] = 5.0
    assert c.tolist() == [1.0, 2.0] and c.requires_grad  # a copy
    assert x.type_as(Tensor(np.ones(1, np.float32))).dtype == np.float32
    assert x.type_as(x) is x


def test_one_hot(torch):
    y = np.array([[0, 2], [1, 3]])
    out = F.one_hot(Tensor(y))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), torch_F().one_hot(torch.tensor(y)).numpy())
    np.testing.assert_array_equal(F.one_hot(Tensor(y), num_classes=6).numpy(),
                                  torch_F().one_hot(torch.tensor(y), num_classes=6).numpy())
    assert F.one_hot(np.array([1, 0], np.int32), 3).tolist() == [[0, 1, 0], [1, 0, 0]]
