"""N data-parallel ranks == 1 process for a stacked RNN with inter-layer dropout on packed sequences whose
longest sequence differs between ranks.

A rank runs its packed batch padded to its own longest sequence, so its inter-layer dropout masks are
(T_rank, N_rank, H) while one process's are (T_global, N, H). The trainer's per-sample generator (what
``DataLoader.sample_generator`` hands it) must give each sample the same mask cell at each (time step,
unit) whatever the padded length. Here rank 0's sequences are all shorter than rank 1's.
"""
import numpy as np
import pytest

import distnn
from distnn import nn
from distnn import random as dn_random
from distnn.data.batch_random import BatchShareGenerator
from distnn.distributed import DataParallel, simulate
from distnn.nn.utils import rnn as R

SEED = [5, 0, 0, 1]
T, IN, HID = 7, 3, 4


def _data(total, world):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((total, T, IN))
    lengths = rng.integers(4, T + 1, total)  # rank 1 ... holds the full length
    lengths[0::world] = rng.integers(1, 4, len(lengths[0::world]))  # rank 0: every sequence at most 3 long
    lengths[1] = T
    return x, lengths


def _step(x, lengths, rows, total, mode, comm=None):
    """One forward/backward of rows ``rows`` of the global batch under their per-sample generator (as a rank
    of the trainer): (per-sample padded output, loss summed over these rows, parameter gradients)."""
    distnn.manual_seed(0)
    model = getattr(nn, mode)(IN, HID, num_layers=2, dropout=0.5, batch_first=True, dtype=np.float64)
    run = model
    if comm is not None:
        run = DataParallel(model, comm, batch_dim=0)
        run.set_num_samples(len(rows), total)
    inp = distnn.Tensor(x[rows], requires_grad=True)
    with dn_random.use_generator(BatchShareGenerator(SEED, total, rows)):
        out, _ = run(R.pack_padded_sequence(inp, lengths[rows], batch_first=True, enforce_sorted=False))
    padded, _ = R.pad_packed_sequence(out, batch_first=True, total_length=T)
    loss = (padded * padded).sum()
    (loss * (1.0 / len(rows))).backward()  # (the mean over this rank's rows; DataParallel weights the ranks)
    if comm is not None:
        run.finish_gradient_synchronization()
    grads = {k: np.array(p.grad.data) for k, p in model.named_parameters()}
    return padded.numpy(), float(loss.item()), grads


def _compare(world, rank, part, one):
    out, loss, grads = part
    np.testing.assert_allclose(out, one[0][rank::world], rtol=1e-12, atol=1e-12,
                               err_msg=f"outputs of rank {rank} of {world}")
    for k, g in one[2].items():
        np.testing.assert_allclose(grads[k], g, rtol=1e-10, atol=1e-12, err_msg=f"{k}: rank {rank} of {world}")


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("world", [2, 3])
def test_simulated_ranks_with_shorter_sequences_match_one_process(world, mode):
    total = 4 * world
    x, lengths = _data(total, world)
    assert lengths[0::world].max() < T == lengths.max()  # (what the test is about)
    one = _step(x, lengths, np.arange(total), total, mode)

    def rank_fn(comm):
        return _step(x, lengths, np.arange(comm.rank, total, world), total, mode, comm)

    parts = simulate(world, rank_fn)
    assert np.isclose(sum(p[1] for p in parts), one[1], rtol=1e-12)  # the summed loss
    for rank, part in enumerate(parts):
        _compare(world, rank, part, one)


def test_keep_mask_of_a_sample_does_not_depend_on_the_padded_length():
    # the generator level: a time-major (T, N, H) mask made for fewer steps is the longer one's first steps
    g_long, g_short = (BatchShareGenerator(SEED, 6, np.arange(0, 6, 2)) for _ in range(2))
    long = g_long.keep_mask((9, 3, 5), 0.5, batch_dim=1)
    short = g_short.keep_mask((4, 3, 5), 0.5, batch_dim=1)
    np.testing.assert_array_equal(short, long[:4])
    # and batch-major: a sample's row of length 4 * 5 is the first 20 cells of its row of 9 * 5
    a = BatchShareGenerator(SEED, 6, np.arange(6)).keep_mask((6, 9, 5), 0.5)
    b = BatchShareGenerator(SEED, 6, np.arange(6)).keep_mask((6, 4, 5), 0.5)
    np.testing.assert_array_equal(b, a[:, :4])


@pytest.mark.mpi(min_size=2)
def test_mpi_ranks_with_shorter_sequences_match_one_process():
    import distnn.distributed as dist

    comm = dist.init()
    world, total = comm.size, 4 * comm.size
    x, lengths = _data(total, world)
    one = _step(x, lengths, np.arange(total), total, "LSTM")
    part = _step(x, lengths, np.arange(comm.rank, total, world), total, "LSTM", comm)
    _compare(world, comm.rank, part, one)
