"""PyTorch's shape/view and matrix functions on distnn tensors, against torch 2.13 (values, dtypes, gradients)."""
import itertools

import numpy as np
import pytest

import distnn
from distnn.testing import check_grad
from tensor_ops_oracle import assert_refused_as_torch, compare, ints, rand

DTYPES = [np.float64, np.float32]

SHAPE_CASES = [
    *[(f"tril{s}k{k}", lambda m, x, k=k: m.tril(x, k), [rand(*s)]) for s in [(4, 4), (3, 5), (2, 5, 3)]
      for k in (-2, 0, 1, 7)],
    *[(f"triu{s}k{k}", lambda m, x, k=k: x.triu(diagonal=k), [rand(*s)]) for s in [(4, 4), (5, 3), (2, 3, 4)]
      for k in (-1, 0, 2)],
    ("tril_int", lambda m, x: m.tril(x), [ints(3, 3)]),
    ("tril_inf_outside", lambda m, x: m.tril(x * m.tensor(np.array([[1, 1], [np.inf, 1]]))), [rand(2, 2)]),
    *[(f"diagonal{s}{o}{d}", lambda m, x, o=o, d=d: m.diagonal(x, o, *d), [rand(*s)])
      for s, o, d in [((4, 4), 0, (0, 1)), ((3, 5), 2, (0, 1)), ((3, 5), -1, (1, 0)), ((2, 3, 4), 1, (-1, 0)),
                      ((2, 3, 4), -5, (1, 2)), ((2, 3, 4, 2), 0, (3, 1))]],
    *[(f"diag_embed{s}{o}{d}", lambda m, x, o=o, d=d: m.diag_embed(x, o, *d), [rand(*s)])
      for s, o, d in [((3,), 0, (-2, -1)), ((2, 3), 1, (0, 2)), ((2, 3), -2, (2, 0)), ((2, 2, 3), 0, (1, 3))]],
    *[(f"diag{s}{k}", lambda m, x, k=k: m.diag(x, k), [rand(*s)]) for s in [(4,), (3, 5)] for k in (-1, 0, 2)],
    *[(f"diagflat{s}{k}", lambda m, x, k=k: x.diagflat(k), [rand(*s)]) for s in [(3,), (2, 2)] for k in (0, -1)],
    ("trace", lambda m, x: m.trace(x), [rand(3, 5)]),
    ("trace_int", lambda m, x: x.trace(), [ints(4, 3)]),
    *[(f"movedim{a}{b}", lambda m, x, a=a, b=b: m.movedim(x, a, b), [rand(2, 3, 4, 5)])
      for a, b in [(0, -1), ((0, 1), (3, 0)), ([-1], [1]), ((2, 0, 1), (0, 1, 2))]],
    ("moveaxis", lambda m, x: x.moveaxis(1, 0), [rand(2, 3, 4)]),
    ("swapaxes", lambda m, x: m.swapaxes(x, 0, -1), [rand(2, 3, 4)]),
    ("swapdims", lambda m, x: x.swapdims(1, 2), [rand(2, 3, 4)]),
    *[(f"t{s}", lambda m, x: m.t(x), [rand(*s)]) for s in [(), (3,), (2, 3)]],
    *[(f"unbind{d}", lambda m, x, d=d: m.unbind(x, d), [rand(2, 3, 4)]) for d in (0, 1, -1)],
    *[(f"tensor_split{s}{d}", lambda m, x, s=s, d=d: m.tensor_split(x, s, d), [rand(7, 5)])
      for s, d in [(3, 0), (2, 1), (9, 0), ([1, 4], 0), ([2, 2, 6, -1], 1), ((0, 9), 0)]],
    ("hsplit", lambda m, x: m.hsplit(x, 2), [rand(3, 4)]),
    ("hsplit_vector", lambda m, x: x.hsplit([1, 3]), [rand(6)]),
    ("vsplit", lambda m, x: m.vsplit(x, [1]), [rand(3, 4)]),
    ("dsplit", lambda m, x: m.dsplit(x, 2), [rand(2, 3, 4)]),
    *[(f"tile{r}", lambda m, x, r=r: m.tile(x, r), [rand(2, 3)]) for r in [(2,), (2, 1), (1, 2, 3)]],
    *[(f"repeat_interleave{r}{d}", lambda m, x, r=r, d=d: m.repeat_interleave(x, r, d), [rand(3, 4)])
      for r, d in [(2, None), (3, 0), (2, -1)]],
    ("repeat_interleave_tensor", lambda m, x: x.repeat_interleave(m.tensor(np.array([1, 0, 3])), dim=0),
     [rand(3, 2)]),
    ("repeat_interleave_counts", lambda m, c: m.repeat_interleave(c), [np.array([2, 0, 1, 3])]),
    *[(f"rot90k{k}{d}", lambda m, x, k=k, d=d: m.rot90(x, k, d), [rand(2, 3, 4)])
      for k, d in itertools.product((-1, 0, 1, 2, 3, 5), ([0, 1], [2, 0], [-1, 1]))],
    ("fliplr", lambda m, x: m.fliplr(x), [rand(3, 4, 2)]),
    ("flipud", lambda m, x: x.flipud(), [rand(3, 4)]),
    *[(f"unflatten{d}{s}", lambda m, x, d=d, s=s: m.unflatten(x, d, s), [rand(2, 12, 3)])
      for d, s in [(1, (3, 4)), (-2, (2, -1, 3)), (0, (1, 2))]],
    ("ravel", lambda m, x: m.ravel(x.t()), [rand(3, 4)]),
    ("expand_as", lambda m, x, y: x.expand_as(y), [rand(3, 1), rand(2, 3, 4)]),
    ("view_as", lambda m, x, y: x.view_as(y) * y, [rand(3, 4), rand(6, 2)]),
    ("reshape_as", lambda m, x, y: x.reshape_as(y), [rand(3, 4), rand(2, 6)]),
    ("broadcast_tensors", lambda m, x, y, z: m.broadcast_tensors(x, y, z), [rand(3, 1), rand(4), rand(2, 1, 1)]),
    ("broadcast_shapes", lambda m: m.broadcast_shapes((3, 1), (4,), (2, 1, 1)), []),
    *[(f"meshgrid_{i}", lambda m, x, y, z, i=i: m.meshgrid(x, y, z, indexing=i), [rand(3), rand(2), rand(4)])
      for i in ("ij", "xy")],
    ("meshgrid_list_xy", lambda m, x, y: m.meshgrid([x, y], indexing="xy"), [rand(3), rand(5)]),
    *[(f"atleast_{n}d{s}", lambda m, x, n=n: getattr(m, f"atleast_{n}d")(x), [rand(*s)])
      for n in (1, 2, 3) for s in [(), (3,), (2, 3), (2, 3, 4)]],
    ("atleast_2d_several", lambda m, x, y: m.atleast_2d(x, y), [rand(), rand(3)]),
]

MATRIX_CASES = [
    ("outer", lambda m, x, y: m.outer(x, y), [rand(3), rand(4)]),
    ("ger", lambda m, x, y: x.ger(y), [rand(3), rand(2)]),
    ("dot", lambda m, x, y: m.dot(x, y), [rand(5), rand(5)]),
    ("vdot", lambda m, x, y: x.vdot(y), [rand(5), rand(5)]),
    ("dot_int", lambda m, x, y: m.dot(x, y), [ints(4), ints(4)]),
    *[(f"inner{a}{b}", lambda m, x, y: m.inner(x, y), [rand(*a), rand(*b)])
      for a, b in [((3,), (3,)), ((2, 3), (4, 3)), ((2, 1, 3), (3,)), ((), (2, 3))]],
    ("mm", lambda m, x, y: m.mm(x, y), [rand(3, 4), rand(4, 2)]),
    ("mv", lambda m, x, y: x.mv(y), [rand(3, 4), rand(4)]),
    *[(f"addmm{b}{a}{s}", lambda m, i, x, y, b=b, a=a: m.addmm(i, x, y, beta=b, alpha=a), [rand(*s), rand(3, 4),
                                                                                          rand(4, 2)])
      for (b, a), s in itertools.product([(1, 1), (0.5, -2.0), (0, 3)], [(3, 2), (2,), (3, 1)])],
    ("addmv", lambda m, i, x, y: m.addmv(i, x, y, beta=2.0, alpha=0.5), [rand(3), rand(3, 4), rand(4)]),
    ("addmv_method", lambda m, i, x, y: i.addmv(x, y), [rand(1), rand(3, 4), rand(4)]),
    ("baddbmm", lambda m, i, x, y: m.baddbmm(i, x, y, beta=0.5, alpha=2), [rand(2, 3, 2), rand(2, 3, 4),
                                                                          rand(2, 4, 2)]),
    ("baddbmm_bcast", lambda m, i, x, y: i.baddbmm(x, y), [rand(3, 1), rand(2, 3, 4), rand(2, 4, 2)]),
    ("addbmm", lambda m, i, x, y: m.addbmm(i, x, y, alpha=-1), [rand(3, 2), rand(2, 3, 4), rand(2, 4, 2)]),
    *[(f"tensordot{d}", lambda m, x, y, d=d: m.tensordot(x, y, dims=d), [rand(2, 3, 4), rand(3, 4, 5)])
      for d in (2, ([1, 2], [0, 1]), ([2, 1], [1, 0]))],
    ("tensordot0", lambda m, x, y: m.tensordot(x, y, dims=0), [rand(2, 3), rand(4)]),
    ("tensordot_lists", lambda m, x, y: m.tensordot(x, y, dims=([0], [1])), [rand(3, 2), rand(4, 3)]),
    *[(f"kron{a}{b}", lambda m, x, y: m.kron(x, y), [rand(*a), rand(*b)])
      for a, b in [((2,), (3,)), ((2, 3), (3, 2)), ((2, 1, 2), (3, 2)), ((), (2, 2))]],
    ("kron_int", lambda m, x, y: x.kron(y), [ints(2, 2), ints(2)]),
    *[(f"cross{d}", lambda m, x, y, d=d: m.cross(x, y, dim=d), [rand(4, 3, 3), rand(4, 3, 3, seed=1)])
      for d in (1, 2, -1)],
    ("cross_bcast", lambda m, x, y: x.cross(y, dim=-1), [rand(4, 3), rand(1, 3)]),
    *[(f"cdist_p{p}", lambda m, x, y, p=p: m.cdist(x, y, p=p), [rand(2, 4, 3), rand(2, 5, 3, seed=1)])
      for p in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, float("inf"))],
    ("cdist_2d", lambda m, x, y: m.cdist(x, y), [rand(4, 3), rand(5, 3, seed=1)]),
    ("cdist_bcast", lambda m, x, y: m.cdist(x, y), [rand(2, 4, 3), rand(5, 3, seed=1)]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", SHAPE_CASES + MATRIX_CASES, ids=lambda c: c[0])
def test_matches_torch(torch, case, dtype):
    _, fn, arrays = case
    compare(torch, fn, arrays, dtype)


def test_cdist_zero_distance_has_zero_gradient_as_torch(torch):
    x = rand(3, 2)
    compare(torch, lambda m, a, b: m.cdist(a, b), [x, np.concatenate([x[:1], rand(2, 2, seed=3)])])


@pytest.mark.parametrize("fn,shapes", [
    (lambda x: distnn.diag_embed(x, 1, 0, 2), [(2, 3)]),
    (lambda x: distnn.tril(x, -1) * 2 + distnn.triu(x, 1), [(3, 4)]),
    (lambda x, y: distnn.kron(x, y), [(2, 3), (2, 2)]),
    (lambda x, y: distnn.cdist(x, y, p=1.5), [(3, 2), (4, 2)]),
    (lambda i, x, y: distnn.baddbmm(i, x, y, beta=0.5, alpha=2.0), [(2, 3, 2), (2, 3, 4), (2, 4, 2)]),
    (lambda x, y: distnn.tensordot(x, y, ([0, 2], [2, 0])), [(2, 3, 4), (4, 5, 2)]),
    (lambda x: distnn.rot90(x, 3, (1, 0)), [(3, 4)]),
])
def test_check_grad(fn, shapes):
    assert check_grad(fn, *[rand(*s, seed=i) for i, s in enumerate(shapes)])


REFUSALS = [
    ("tril_1d", lambda m, x: m.tril(x), [rand(3)], "at least 2 dimensions"),
    ("diagonal_same_dims", lambda m, x: m.diagonal(x, 0, 1, 1), [rand(3, 3)], "cannot be identical"),
    ("diag_3d", lambda m, x: m.diag(x), [rand(2, 2, 2)], "1D or 2D"),
    ("trace_3d", lambda m, x: m.trace(x), [rand(2, 2, 2)], "matrix"),
    ("t_3d", lambda m, x: m.t(x), [rand(2, 2, 2)], "<= 2 dimensions"),
    ("movedim_lengths", lambda m, x: m.movedim(x, (0, 1), (1,)), [rand(2, 2)], "same number of dims"),
    ("hsplit_uneven", lambda m, x: m.hsplit(x, 3), [rand(2, 4)], "not divisible"),
    ("vsplit_1d", lambda m, x: m.vsplit(x, 2), [rand(4)], "at least 2 dimension"),
    ("rot90_dims", lambda m, x: m.rot90(x, 1, [0, 0]), [rand(2, 2)], "different"),
    ("rot90_1d", lambda m, x: m.rot90(x), [rand(2)], "total dims >= 2"),
    ("unflatten_sizes", lambda m, x: m.unflatten(x, 0, (4, 2)), [rand(6)], "multiply up"),
    ("broadcast", lambda m, x, y: m.broadcast_tensors(x, y), [rand(3), rand(4)], "must match the size"),
    ("cross_ndim", lambda m, x, y: m.cross(x, y), [rand(4, 3), rand(3)], "same number of dimensions"),
    ("outer_2d", lambda m, x, y: m.outer(x, y), [rand(2, 2), rand(2)], "1-D"),
    ("dot_lengths", lambda m, x, y: m.dot(x, y), [rand(3), rand(4)], "same number of elements"),
    ("dot_dtypes", lambda m, x, y: m.dot(x, y.float()), [rand(3), rand(3)], "same dtype"),
    ("mm_vector", lambda m, x, y: m.mm(x, y), [rand(3), rand(3, 2)], "must be a matrix"),
    ("mm_shapes", lambda m, x, y: m.mm(x, y), [rand(2, 3), rand(2, 3)], "cannot be multiplied"),
    ("inner_last", lambda m, x, y: m.inner(x, y), [rand(2, 3), rand(2, 4)], "last dimension must match"),
    ("cross_size", lambda m, x, y: m.cross(x, y, dim=0), [rand(4, 3), rand(4, 3)], "must have length 3"),
    ("cdist_cols", lambda m, x, y: m.cdist(x, y), [rand(2, 3), rand(2, 4)], "same number of columns"),
    ("tensordot_sizes", lambda m, x, y: m.tensordot(x, y, ([0], [0])), [rand(2, 3), rand(3, 2)], "need to match"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c[0])
def test_refusals_as_torch(torch, case):
    assert_refused_as_torch(torch, case)


def test_top_level_and_method_names_exist():
    names = ["tril", "triu", "diag", "diagonal", "diag_embed", "diagflat", "trace", "movedim", "moveaxis",
             "swapaxes", "swapdims", "t", "unbind", "tensor_split", "hsplit", "vsplit", "dsplit", "tile",
             "repeat_interleave", "rot90", "fliplr", "flipud", "unflatten", "ravel", "outer", "ger", "inner", "dot",
             "vdot", "mm", "mv", "addmm", "addmv", "addbmm", "baddbmm", "kron", "cross"]
    x = distnn.zeros(2, 2)
    for name in names + ["broadcast_tensors", "broadcast_shapes", "meshgrid", "atleast_1d", "tensordot", "cdist"]:
        assert callable(getattr(distnn, name)), name
    for name in names + ["expand_as", "view_as", "reshape_as"]:
        assert callable(getattr(x, name)), name
