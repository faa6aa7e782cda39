"""torch.embedding_bag, ATen's form, on distnn (torch_toplevel_nn.py) against torch 2.13 with the same inputs:
the 4-tuple (output, offset2bag, bag_size, max_indices) in each mode with padding, include_last_offset,
per-sample weights, empty bags and ties; their dtypes; the output's gradients (float64 tight); refusals."""
import numpy as np
import pytest

import distnn
from tensor_ops_oracle import compare, rand

torch = pytest.importorskip("torch")

IDX = np.array([1, 2, 4, 5, 4, 3, 2, 0, 2])
OFF = np.array([0, 2, 2, 5])
TIES = np.round(rand(6, 3) * 1.5)  # (rounded: equal entries in a bag, the first one's row wins)

CASES = [
    ("sum", lambda m, w, i, o: m.embedding_bag(w, i, o, False, 0), [rand(6, 3), IDX, OFF]),
    ("mean", lambda m, w, i, o: m.embedding_bag(w, i, o, False, 1), [rand(6, 3), IDX, OFF]),
    ("max_ties", lambda m, w, i, o: m.embedding_bag(w, i, o, False, 2), [TIES, IDX, OFF]),
    ("mean_padding", lambda m, w, i, o: m.embedding_bag(w, i, o, False, 1, False, None, False, 4),
     [rand(6, 3), IDX, OFF]),
    ("max_padding_negative", lambda m, w, i, o: m.embedding_bag(w, i, o, False, 2, False, None, False, -2),
     [rand(6, 3), IDX, OFF]),
    ("sum_padding", lambda m, w, i, o: m.embedding_bag(w, i, o, False, 0, False, None, False, 2),
     [rand(6, 3), IDX, OFF]),
    ("sum_per_sample_weights", lambda m, w, p, i, o: m.embedding_bag(w, i, o, False, 0, False, p),
     [rand(6, 3), rand(9, seed=1), IDX, OFF]),
    ("mean_include_last_offset", lambda m, w, i, o: m.embedding_bag(w, i, o, False, 1, False, None, True),
     [rand(6, 3), IDX, np.array([0, 2, 2, 5, 9])]),
    ("max_include_last_offset", lambda m, w, i, o: m.embedding_bag(w, i, o, False, 2, False, None, True, 3),
     [rand(6, 3), IDX, np.array([0, 2, 2, 5, 9])]),
    ("mean_int32", lambda m, w, i, o: m.embedding_bag(w, i, o, False, 1),
     [rand(6, 3), IDX.astype(np.int32), OFF.astype(np.int32)]),
    ("max_int32_offsets_int64", lambda m, w, i, o: m.embedding_bag(w, i, o, False, 2),
     [rand(6, 3), IDX.astype(np.int32), OFF]),
    ("mean_scale_grad_by_freq_defaults", lambda m, w, i, o: m.embedding_bag(w, i, o, True, 1),
     [rand(6, 3), np.array([1, 2, 4, 5, 3, 0]), np.array([0, 3])]),
    ("sum_defaults", lambda m, w, i, o: m.embedding_bag(w, i, o), [rand(6, 3), IDX, OFF]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_embedding_bag_four_outputs_match_torch(name, fn, arrays, dtype):
    compare(torch, fn, arrays, dtype)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_bookkeeping_when_the_weight_needs_no_gradient(mode):
    """(sum mode's zeros are one per offset then, with include_last_offset one more than the bags)"""
    off = np.array([0, 2, 2, 5, 9])
    got = distnn.embedding_bag(distnn.tensor(rand(6, 3)), distnn.tensor(IDX), distnn.tensor(off), False, mode,
                               False, None, True)
    want = torch.embedding_bag(torch.tensor(rand(6, 3)), torch.tensor(IDX), torch.tensor(off), False, mode, False,
                               None, True)
    for d, t in zip(got[1:], want[1:]):
        np.testing.assert_array_equal(d.numpy(), t.numpy())
    assert [t.requires_grad for t in got] == [False] * 4


def test_only_the_output_is_differentiable():
    w = distnn.tensor(rand(6, 3), requires_grad=True)
    outs = distnn.embedding_bag(w, distnn.tensor(IDX), distnn.tensor(OFF), False, 2)
    assert [t.requires_grad for t in outs] == [True, False, False, False]


@pytest.mark.parametrize("call,torch_type,gist", [
    (lambda m, w, i, o: m.embedding_bag(w, i, o, False, "mean"), TypeError, "must be int"),
    (lambda m, w, i, o: m.embedding_bag(w, i, o, False, True), TypeError, "must be int"),
    (lambda m, w, i, o: m.embedding_bag(w, i, o, False, 3), RuntimeError, "must be sum, mean, or max"),
])
def test_refusals_as_torch(call, torch_type, gist):
    args = (rand(6, 3), IDX, OFF)
    with pytest.raises(torch_type, match=gist):
        call(torch, *[torch.tensor(a) for a in args])
    with pytest.raises(torch_type, match=gist):
        call(distnn, *[distnn.tensor(a) for a in args])


def test_two_dim_indices_are_refused():
    with pytest.raises(RuntimeError, match="indices must be 1-D"):
        distnn.embedding_bag(distnn.tensor(rand(6, 3)), distnn.tensor(IDX[:8].reshape(2, 4)),
                             distnn.tensor(np.array([0, 4])), False, 1)
