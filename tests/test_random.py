"""distnn.random: the per-thread default generator and lending it (use_generator)."""
import numpy as np

import distnn
from distnn import random as dn_random
from distnn.functional import dropout


def test_use_generator_lends_the_default_and_leaves_the_own_stream_where_it_was():
    distnn.manual_seed(5)
    expected = np.random.default_rng(5).random(4)
    lent = np.random.default_rng(9)
    before = dn_random.get_state()
    with dn_random.use_generator(lent) as g:
        assert g is lent and dn_random.default_generator() is lent
        assert dn_random.get_state() == before  # the thread's own generator, not the lent one
        with dn_random.use_generator(np.random.default_rng(1)):
            assert dn_random.default_generator() is not lent
        assert dn_random.default_generator() is lent  # nested blocks give back the outer loan
        dropout(np.ones((3, 4), np.float32), 0.5)  # draws from the lent generator
    np.testing.assert_array_equal(dn_random.default_generator().random(4), expected)


def test_use_generator_gives_back_on_an_error():
    lent = np.random.default_rng(0)
    try:
        with dn_random.use_generator(lent):
            raise KeyError("x")
    except KeyError:
        pass
    assert dn_random.default_generator() is not lent


# ---------------------------------------------------------------- per-sample dropout masks
from distnn.data.batch_random import BatchShareGenerator  # noqa: E402


def _masks(world, rank, shape_rest=(37,), p=0.3, total=60, draws=2):
    rows = np.arange(rank, total, world)
    g = BatchShareGenerator([7, 2, 120, 1], total, rows)
    return [g.keep_mask((len(rows),) + shape_rest, p) for _ in range(draws)]


def test_keep_masks_of_a_sample_are_the_same_on_any_number_of_ranks():
    whole = _masks(1, 0)
    for world in (2, 3, 4):
        for rank in range(world):
            for d, part in enumerate(_masks(world, rank)):
                np.testing.assert_array_equal(part, whole[d][rank::world], err_msg=f"{world} ranks, rank {rank}")
    # a micro-batch (a slice of the rank's rows) gets its own rows of the same masks
    g = BatchShareGenerator([7, 2, 120, 1], 60, np.arange(1, 60, 2)[5:9])
    np.testing.assert_array_equal(g.keep_mask((4, 37), 0.3), whole[0][1::2][5:9])


def test_keep_masks_have_the_asked_probability_and_no_visible_correlation():
    p, n = 0.3, 400
    g = BatchShareGenerator([1, 0, 0, 1], n, np.arange(n))
    a, b = g.keep_mask((n, 8, 33), p), g.keep_mask((n, 8, 33), p)  # odd row length: pairs cut at the end
    sigma = np.sqrt(p * (1 - p) / a.size)
    assert abs(a.mean() - (1 - p)) < 5 * sigma and abs(b.mean() - (1 - p)) < 5 * sigma
    flat = a.reshape(n, -1).astype(float)
    for x, y in ((flat[:, :-1], flat[:, 1:]), (flat[:-1], flat[1:]), (flat, b.reshape(n, -1))):
        assert abs(np.corrcoef(x.ravel(), y.ravel())[0, 1]) < 5 / np.sqrt(x.size)  # neighbours, rows, draws
    assert not np.array_equal(a, b)
    other = BatchShareGenerator([1, 0, 64, 1], n, np.arange(n)).keep_mask((n, 8, 33), p)  # another batch
    assert abs(np.corrcoef(flat.ravel(), other.ravel())[0, 1]) < 5 / np.sqrt(flat.size)


def test_keep_mask_edges():
    g = BatchShareGenerator([3], 10, np.arange(2, 10, 4))
    assert g.keep_mask((2, 5), 0.0).all() and not g.keep_mask((2, 5), 1.0).any()
    # time-major (T, N, H), an RNN's inter-layer mask: per sample along the second axis
    whole = BatchShareGenerator([3], 10, np.arange(10)).keep_mask((3, 10, 40), 0.5)
    part = BatchShareGenerator([3], 10, np.arange(1, 10, 2)).keep_mask((3, 5, 40), 0.5)
    np.testing.assert_array_equal(part, whole[:, 1::2])
    # the batch on neither of the first two axes: not per-sample, but still a different mask on each rank,
    # not one mask repeated on every rank's samples
    a = BatchShareGenerator([3], 10, np.arange(0, 10, 2)).keep_mask((3, 4, 40), 0.5)
    b = BatchShareGenerator([3], 10, np.arange(1, 10, 2)).keep_mask((3, 4, 40), 0.5)
    assert a.shape == b.shape == (3, 4, 40) and 0.4 < a.mean() < 0.6 and (a != b).mean() > 0.3
    again = BatchShareGenerator([3], 10, np.arange(0, 10, 2)).keep_mask((3, 4, 40), 0.5)
    np.testing.assert_array_equal(a, again)  # reproducible (an exact resume on the same ranks)
