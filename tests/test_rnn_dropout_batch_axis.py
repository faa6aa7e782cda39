"""A stacked RNN's inter-layer dropout masks belong to samples also when a batch is as long as the sequences.

The RNN runs time-major inside, so its inter-layer mask is (T, N, H). Told where the batch axis is, the
trainer's per-sample generator makes it the same for a sample on any number of ranks; guessed from the
shape, a batch whose row count equals T would read as batch-major (time steps taken for samples).
"""
import numpy as np
import pytest

import distnn
from distnn import nn
from distnn import random as dn_random
from distnn.data.batch_random import BatchShareGenerator
from distnn.functional import dropout

SEED = [11, 0, 3, 1]


def _lstm_run(x, rows, total, batch_first, mode="LSTM"):
    """Forward (and backward) of rows ``rows`` of ``x``'s global batch of ``total`` under their per-sample
    generator, as a rank of the trainer would: (output, h_n, input grad) with samples on axis 0."""
    distnn.manual_seed(0)
    cls = nn.LSTM if mode == "LSTM" else nn.GRU
    rnn = cls(3, 5, num_layers=3, dropout=0.5, batch_first=batch_first, dtype=np.float64)
    xs = x[rows] if batch_first else x[:, rows]
    inp = distnn.Tensor(xs, requires_grad=True)
    with dn_random.use_generator(BatchShareGenerator(SEED, total, rows)):
        out, state = rnn(inp)
    h_n = state[0] if mode == "LSTM" else state
    (out * out).sum().backward()
    if not batch_first:
        return out.numpy().transpose(1, 0, 2), h_n.numpy().transpose(1, 0, 2), inp.grad.transpose(1, 0, 2)
    return out.numpy(), h_n.numpy().transpose(1, 0, 2), inp.grad


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("total, world", [(6, 2), (12, 2), (6, 3)])
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_stacked_rnn_dropout_is_the_same_on_any_number_of_ranks_when_rows_equal_the_length(
        batch_first, total, world, mode):
    # T = 6: (6, 2) and (6, 3) have the 1-rank batch as long as the sequences, (12, 2) each rank's share
    T = 6
    x = np.random.default_rng(1).standard_normal((total, T, 3) if batch_first else (T, total, 3))
    one = _lstm_run(x, np.arange(total), total, batch_first, mode)
    for rank in range(world):
        part = _lstm_run(x, np.arange(rank, total, world), total, batch_first, mode)
        for name, a, b in zip(("output", "h_n", "input grad"), part, one):
            np.testing.assert_allclose(a, b[rank::world], rtol=1e-12, atol=1e-12,
                                       err_msg=f"{name}, {world} ranks, rank {rank}")


def test_keep_mask_batch_dim_says_where_the_samples_are():
    total, T = 8, 8
    whole = BatchShareGenerator(SEED, total, np.arange(total))
    part = BatchShareGenerator(SEED, total, np.arange(1, total, 2))
    # time-major (T, N, H) with N == T: told, the samples are on axis 1 on both
    a, b = whole.keep_mask((T, total, 10), 0.5, batch_dim=1), part.keep_mask((T, 4, 10), 0.5, batch_dim=1)
    np.testing.assert_array_equal(b, a[:, 1::2])
    assert a.flags.c_contiguous
    # any axis, also counted from the end; the same bits as the batch-major mask moved there
    c = whole.keep_mask((3, total, 5), 0.4, batch_dim=-2)
    d = BatchShareGenerator(SEED, total, np.arange(total))
    d._masks = 1  # (the same draw index as c: the second mask of the batch)
    np.testing.assert_array_equal(c, np.moveaxis(d.keep_mask((total, 3, 5), 0.4), 0, 1))
    # without batch_dim the shape is still guessed: unchanged masks for callers that don't say
    g1, g2 = (BatchShareGenerator(SEED, total, np.arange(total)) for _ in range(2))
    np.testing.assert_array_equal(g1.keep_mask((total, 3), 0.5), g2.keep_mask((total, 3), 0.5, batch_dim=0))
    with pytest.raises(ValueError, match="batch_dim"):
        whole.keep_mask((T, total), 0.5, batch_dim=2)


def test_dropout_passes_batch_dim_to_the_generator():
    total = 4
    x = np.ones((total, total, 6))
    with dn_random.use_generator(BatchShareGenerator(SEED, total, np.arange(total))):
        y = dropout(distnn.Tensor(x), 0.5, batch_dim=1).numpy()
    with dn_random.use_generator(BatchShareGenerator(SEED, total, np.arange(2, total))):
        z = dropout(distnn.Tensor(x[:, 2:]), 0.5, batch_dim=1).numpy()
    np.testing.assert_array_equal(z, y[:, 2:])
    # a plain numpy generator has no batches: batch_dim changes nothing
    a = dropout(distnn.Tensor(x), 0.5, generator=np.random.default_rng(0), batch_dim=1).numpy()
    b = dropout(distnn.Tensor(x), 0.5, generator=np.random.default_rng(0)).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout_module_batch_dim_makes_a_time_major_mask_per_sample():
    # nn.Dropout on a time-major (T, N, H) tensor with N == T: told batch_dim=1, each rank's rows get
    # the masks those samples get in the whole batch (guessed, rows would be read as time steps)
    total = T = 6
    x = np.ones((T, total, 4))
    told, guessed = nn.Dropout(0.5, batch_dim=1), nn.Dropout(0.5)
    assert "batch_dim=1" in repr(told)

    def run(layer, rows):
        with dn_random.use_generator(BatchShareGenerator(SEED, total, rows)):
            return layer(distnn.Tensor(x[:, rows])).numpy()

    whole, half = np.arange(total), np.arange(1, total, 2)
    np.testing.assert_array_equal(run(told, half), run(told, whole)[:, half])
    assert not np.array_equal(run(guessed, half), run(guessed, whole)[:, half])


def test_keep_mask_counter_range_is_exact():
    # a mask's counters are its positions 0 .. total - 1 (each keys its row's own stream) below the draw
    # index: total == 2**40 fits, one more does not, whatever the row length; and a 2**24-th mask in one
    # forward pass would wrap onto the first
    g = BatchShareGenerator(SEED, 1 << 40, np.arange(2))
    assert g.keep_mask((2, 4), 0.5).shape == (2, 4)
    assert g.keep_mask((2, 1 << 12), 0.5).shape == (2, 1 << 12)
    with pytest.raises(ValueError, match="counter range"):
        BatchShareGenerator(SEED, (1 << 40) + 1, np.arange(2)).keep_mask((2, 4), 0.5)
    g._masks = 1 << 24
    with pytest.raises(ValueError, match="masks in one batch"):
        g.keep_mask((2, 4), 0.5)


@pytest.mark.parametrize("total, world", [(6, 2), (12, 2), (6, 3)])
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_packed_rnn_dropout_masks_belong_to_samples_not_to_the_sorted_order(total, world, mode):
    """A packed batch of unsorted lengths runs longest first; its inter-layer masks are still drawn per
    sample in the caller's order, so a rank's rows (sorted otherwise) get the whole batch's masks. (Every rank
    has one sequence of the full length here; test_packed_rnn_dropout_ranks.py: ranks whose sequences are
    all shorter.)"""
    from distnn.nn.utils import rnn as R

    T = 6
    rng = np.random.default_rng(2)
    x = rng.standard_normal((total, T, 3))
    lengths = rng.integers(1, T + 1, total)
    lengths[:world] = T  # (row r goes to rank r)

    def run(rows):
        distnn.manual_seed(0)
        rnn = getattr(nn, mode)(3, 5, num_layers=3, dropout=0.5, batch_first=True, dtype=np.float64)
        inp = distnn.Tensor(x[rows], requires_grad=True)
        with dn_random.use_generator(BatchShareGenerator(SEED, total, rows)):
            out, state = rnn(R.pack_padded_sequence(inp, lengths[rows], batch_first=True, enforce_sorted=False))
        padded, _ = R.pad_packed_sequence(out, batch_first=True, total_length=T)
        h_n = state[0] if mode == "LSTM" else state
        (padded * padded).sum().backward()
        return padded.numpy(), h_n.numpy().transpose(1, 0, 2), inp.grad

    one = run(np.arange(total))
    for rank in range(world):
        part = run(np.arange(rank, total, world))
        for name, a, b in zip(("output", "h_n", "input grad"), part, one):
            np.testing.assert_allclose(a, b[rank::world], rtol=1e-12, atol=1e-12,
                                       err_msg=f"{name}, {world} ranks, rank {rank}")
