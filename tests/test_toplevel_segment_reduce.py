"""torch.segment_reduce on distnn (torch_toplevel_segment.py) against torch 2.13 with the same inputs: every
reduce, lengths and offsets (1-D and multi-dim), axis, initial, empty segments (the fill values), zeros and
NaNs in the data, the gradients (float64 tight), refusals."""
import numpy as np
import pytest

import distnn
from tensor_ops_oracle import compare, rand

torch = pytest.importorskip("torch")

REDUCES = ["sum", "mean", "max", "min", "prod", "amax", "amin"]
ZEROS_NANS = np.array([[0.0, 1.5], [0.0, -2.0], [2.0, np.nan], [np.nan, 0.0], [3.0, 4.0], [0.5, 0.0], [-1.0, 2.0]])

CASES = [
    ("lengths_with_empty", lambda L: dict(lengths=L(np.array([2, 0, 4, 1]))), (7, 3), 0),
    ("offsets_from_one", lambda L: dict(offsets=L(np.array([1, 3, 3, 6]))), (7, 3), 0),
    ("one_dim_data", lambda L: dict(lengths=L(np.array([3, 1, 0, 3]))), (7,), 0),
    ("multi_dim_lengths_axis1", lambda L: dict(lengths=L(np.array([[1, 5, 0], [0, 3, 3]]))), (2, 6, 2), 1),
    ("multi_dim_offsets_axis_minus1", lambda L: dict(offsets=L(np.array([[0, 2, 2, 6], [1, 1, 4, 5]]))), (2, 6), -1),
    ("int32_lengths_axis2", lambda L: dict(lengths=L(np.array([[[2, 1], [0, 3]]], np.int32))), (1, 2, 3, 2), 2),
]


def _run(m, x, reduce, case, initial):
    _, seg, _, axis = case
    return m.segment_reduce(x, reduce, axis=axis, initial=initial, **seg(m.tensor))


@pytest.mark.parametrize("initial", [None, 0.5, -2.0], ids=["no_initial", "initial_0.5", "initial_-2"])
@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_segment_reduce_matches_torch(case, reduce, initial):
    compare(torch, lambda m, x: _run(m, x, reduce, case, initial), [rand(*case[2])])


def test_segment_reduce_keeps_the_dtype():
    compare(torch, lambda m, x: m.segment_reduce(x, "mean", lengths=m.tensor([2, 0, 3])), [rand(5, 2)], np.float32)
    x = (rand(5, 2) * 100).astype(np.float16)
    got = distnn.segment_reduce(distnn.tensor(x), "sum", lengths=distnn.tensor([2, 0, 3]))
    want = torch.segment_reduce(torch.tensor(x), "sum", lengths=torch.tensor([2, 0, 3]))
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-3, atol=0.1)  # (float16 roundings of sums ~100)


@pytest.mark.parametrize("initial", [None, 3.0, 0.0])
@pytest.mark.parametrize("reduce", ["prod", "max", "min", "mean"])
def test_zeros_and_nans_as_torch(reduce, initial):
    """prod's gradient at a zero (the product of the others), at two zeros (0), at a NaN; NaN results of
    max/min; upstream gradients positive (torch 2.13's CPU kernel splits only those among ties)."""
    x = np.vstack([ZEROS_NANS, ZEROS_NANS[::-1]])
    ours, theirs = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_d = distnn.segment_reduce(ours, reduce, lengths=distnn.tensor([3, 2, 0, 4, 5]), initial=initial)
    out_t = torch.segment_reduce(theirs, reduce, lengths=torch.tensor([3, 2, 0, 4, 5]), initial=initial)
    np.testing.assert_allclose(out_d.numpy(), out_t.detach().numpy(), rtol=1e-12)
    u = np.abs(rand(*out_t.shape)) + 0.1
    (out_d * distnn.tensor(u)).sum().backward()
    (out_t * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-12)


def test_ties_share_the_gradient():
    x = distnn.tensor(np.array([4.0, 1.0, 4.0, 2.0]), requires_grad=True)
    out = distnn.segment_reduce(x, "max", lengths=distnn.tensor([3, 1]))
    (out * distnn.tensor([-2.0, 1.0])).sum().backward()
    np.testing.assert_allclose(x.grad, [-1.0, 0.0, -1.0, 1.0])  # (torch 2.13: -2 to each of the tied entries)


def test_unsafe_skips_the_sum_check_only():
    x = rand(5, 2)
    got = distnn.segment_reduce(distnn.tensor(x), "sum", lengths=distnn.tensor([2, 1]), unsafe=True)
    want = torch.segment_reduce(torch.tensor(x), "sum", lengths=torch.tensor([2, 1]), unsafe=True)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="lengths sum past data.size"):
        distnn.segment_reduce(distnn.tensor(x), "sum", lengths=distnn.tensor([4, 3]), unsafe=True)


def test_large_input_is_reduced_in_one_pass():
    """Many segments (the vectorized path): sums against numpy's, a gradient of the right shape."""
    rng = np.random.default_rng(3)
    lengths = rng.integers(0, 4, 20000)
    x = distnn.tensor(rng.standard_normal((int(lengths.sum()), 3)), requires_grad=True)
    out = distnn.segment_reduce(x, "mean", lengths=distnn.tensor(lengths))
    ends = np.cumsum(lengths)
    some = np.flatnonzero(lengths)[:50]
    want = np.array([x.numpy()[ends[i] - lengths[i]:ends[i]].mean(0) for i in some])
    np.testing.assert_allclose(out.numpy()[some], want, rtol=1e-12)
    assert np.isnan(out.numpy()[lengths == 0]).all()
    out.nan_to_num().sum().backward()
    np.testing.assert_allclose(x.grad, np.repeat(1.0 / np.maximum(lengths, 1), lengths)[:, None] * np.ones(3))



@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod"])
def test_skewed_lengths_with_infs_and_nans_as_torch(reduce):
    """Lengths of every size class at once (segments padded per class, _reduce_segments), one segment of 300,
    zeros, NaNs and infs: the values as torch's (its sequential order: max/min, sums, products bit for bit),
    the gradient too (prod's at zeros and NaNs: the segments' products of the others)."""
    rng = np.random.default_rng(7)
    lengths = np.concatenate([rng.integers(0, 9, 40), [300, 0, 17]])
    x = rng.standard_normal((int(lengths.sum()), 2))
    x[rng.random(x.shape) < 0.03], x[rng.random(x.shape) < 0.03], x[rng.random(x.shape) < 0.01] = 0.0, np.nan, np.inf
    ours, theirs = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with np.errstate(invalid="ignore"):
        out_d = distnn.segment_reduce(ours, reduce, lengths=distnn.tensor(lengths))
    out_t = torch.segment_reduce(theirs, reduce, lengths=torch.tensor(lengths))
    np.testing.assert_array_equal(out_d.numpy(), out_t.detach().numpy())
    u = np.abs(rand(*out_t.shape)) + 0.1
    with np.errstate(invalid="ignore"):
        (out_d * distnn.tensor(u)).sum().backward()
    (out_t * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("initial", [None, 0.1, -2.7, 1e-3, 0.0, -0.0, np.nan], ids=lambda v: f"initial_{v}")
@pytest.mark.parametrize("reduce", ["sum", "mean", "prod", "max", "min"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_initial_starts_the_fold_bit_for_bit(dtype, reduce, initial):
    """torch's CPU kernel folds each segment from ``initial`` (``initial_value``; +0.0 for a sum, 1 for a
    product without it): ``(initial + a) + b`` rounds otherwise than ``(a + b) + initial``, so the bits are
    compared; zeros of both signs and a NaN among the data (``initial`` wins a tie: 0.0 over -0.0)."""
    rng = np.random.default_rng(11)
    lengths = rng.integers(0, 9, 40)
    x = (rng.standard_normal((int(lengths.sum()), 3)) * 1e3).astype(dtype)
    x[::7], x[3::11], x[5, 1] = -0.0, 0.0, np.nan
    with np.errstate(invalid="ignore"):
        got = distnn.segment_reduce(distnn.tensor(x), reduce, lengths=distnn.tensor(lengths), initial=initial)
    want = torch.segment_reduce(torch.tensor(x), reduce, lengths=torch.tensor(lengths), initial=initial)
    assert got.dtype == x.dtype
    assert got.numpy().tobytes() == want.numpy().tobytes()


@pytest.mark.parametrize("initial", [None, 1.5])
def test_float16_mean_divides_by_the_length_as_float16(initial):
    """torch's kernel divides the float16 sum by the length converted to float16: 2049 is 2048 there."""
    lengths = np.array([2049, 3, 0, 5001, 2051])
    x = (np.random.default_rng(5).random((int(lengths.sum()), 2)) * 4).astype(np.float16)
    got = distnn.segment_reduce(distnn.tensor(x), "mean", lengths=distnn.tensor(lengths), initial=initial)
    want = torch.segment_reduce(torch.tensor(x), "mean", lengths=torch.tensor(lengths), initial=initial)
    assert got.numpy().tobytes() == want.numpy().tobytes()


@pytest.mark.parametrize("call,torch_type,gist", [
    (lambda m, x: m.segment_reduce(x, "sum", lengths=m.tensor([2, 1])), RuntimeError, "sum to data.size"),
    (lambda m, x: m.segment_reduce(x, "sum", lengths=m.tensor([5, -1])), RuntimeError, "negative"),
    (lambda m, x: m.segment_reduce(x, "median", lengths=m.tensor([4])), RuntimeError, "sum, prod, mean, amax or amin"),
    (lambda m, x: m.segment_reduce(x, "sum"), RuntimeError, "Either lengths or offsets must be defined"),
    (lambda m, x: m.segment_reduce(x, "sum", indices=m.tensor([0, 0, 1, 1])), RuntimeError, "not supported yet"),
    (lambda m, x: m.segment_reduce(x, "sum", lengths=m.tensor([[2, 2]])), RuntimeError,
     "Expected axis to be the last dimension of lengths"),
    (lambda m, x: m.segment_reduce(x, "sum", lengths=m.tensor([4]), axis=2), IndexError, "Dimension out of range"),
    (lambda m, x: m.segment_reduce(x.to(m.int64), "sum", lengths=m.tensor([4])), NotImplementedError, ""),
    (lambda m, x: m.segment_reduce(x, "sum", lengths=m.tensor([4.0])), NotImplementedError, ""),
    (lambda m, x: m.segment_reduce(x, "sum", offsets=m.tensor([0, 3, 2, 4])), RuntimeError, ""),
])
def test_refusals_as_torch(call, torch_type, gist):
    x = rand(4, 3)
    with pytest.raises(torch_type, match=gist):
        call(torch, torch.tensor(x))
    with pytest.raises(torch_type, match=gist):
        call(distnn, distnn.tensor(x))


def test_offsets_out_of_the_data_are_refused():
    """(torch reads past the data there, returning garbage)"""
    with pytest.raises(RuntimeError, match=r"offsets must lie in \[0, data.size\(0\) = 4\]"):
        distnn.segment_reduce(distnn.tensor(rand(4, 3)), "sum", offsets=distnn.tensor([0, 2, 9]))
