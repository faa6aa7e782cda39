"""A time-major transformer layer's dropout masks belong to samples, also when a batch is as long as its sequences.

``TransformerEncoderLayer(batch_first=False)`` works on (S, N, E). Its dropout layers are told that the samples
are on axis 1, so under the trainer's per-sample generator (:mod:`distnn.data.batch_random`) a rank's rows get
the masks those samples get in the whole batch; guessed from the shape, an (S, N, E) tensor with N == S reads
as batch-major (time steps taken for samples) and ranks would disagree with one process.
"""
import numpy as np
import pytest

import distnn
from distnn import nn
from distnn import random as dn_random
from distnn.data.batch_random import BatchShareGenerator

SEED = [5, 0, 2, 1]
S, E = 6, 8


def _layer_run(x, rows, total, batch_first, norm_first=False):
    """Output and input grad (samples on axis 0) of rows ``rows`` of the global batch ``x`` (N, S, E) of
    ``total`` samples, in training mode under their per-sample generator, as a rank of the trainer sees them."""
    distnn.manual_seed(0)  # the same weights on every call
    layer = nn.TransformerEncoderLayer(E, 2, dim_feedforward=16, dropout=0.5, batch_first=batch_first,
                                       norm_first=norm_first, dtype=np.float64)
    layer.train()
    xs = x[rows] if batch_first else x[rows].transpose(1, 0, 2)
    inp = distnn.Tensor(np.ascontiguousarray(xs), requires_grad=True)
    with dn_random.use_generator(BatchShareGenerator(SEED, total, rows)):
        out = layer(inp)
    (out * out).sum().backward()
    if batch_first:
        return out.numpy(), inp.grad
    return out.numpy().transpose(1, 0, 2), inp.grad.transpose(1, 0, 2)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("total, world", [(6, 2), (12, 2), (6, 3)])
def test_time_major_encoder_layer_dropout_is_the_same_on_any_number_of_ranks(total, world, norm_first):
    # S = 6: (6, 2) and (6, 3) have the 1-process batch as long as the sequences, (12, 2) each rank's share
    x = np.random.default_rng(1).standard_normal((total, S, E))
    whole = _layer_run(x, np.arange(total), total, batch_first=False, norm_first=norm_first)
    # batch-major on the same samples: the same masks per sample, so the same numbers
    batch_major = _layer_run(x, np.arange(total), total, batch_first=True, norm_first=norm_first)
    for a, b in zip(whole, batch_major):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for rank in range(world):
        rows = np.arange(rank, total, world)  # the trainer deals a global batch round-robin
        for batch_first in (False, True):
            part = _layer_run(x, rows, total, batch_first=batch_first, norm_first=norm_first)
            for name, a, b in zip(("output", "input grad"), part, whole):
                np.testing.assert_allclose(a, b[rows], rtol=1e-12, atol=1e-12,
                                           err_msg=f"{name}, {world} ranks, rank {rank}, batch_first={batch_first}")


def test_dropout_is_on_in_the_compared_runs():
    # (the comparison above is about masks: the layer's outputs do depend on them)
    x = np.random.default_rng(1).standard_normal((6, S, E))
    a, _ = _layer_run(x, np.arange(6), 6, batch_first=True)
    distnn.manual_seed(0)
    layer = nn.TransformerEncoderLayer(E, 2, dim_feedforward=16, dropout=0.5, batch_first=True, dtype=np.float64)
    layer.eval()
    assert not np.allclose(a, layer(distnn.Tensor(x)).numpy())


def test_encoder_layer_dropouts_know_the_batch_axis():
    assert {nn.TransformerEncoderLayer(E, 2, batch_first=bf).dropout1.batch_dim for bf in (False, True)} == {1, 0}
    stack = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, 2, batch_first=False), 2)
    assert all(m.batch_dim == 1 for m in stack.modules() if isinstance(m, nn.Dropout))


def _decoder_run(x, mem, rows, total, batch_first):
    """As _layer_run, for a time-major or batch-major TransformerDecoderLayer (tgt x, memory mem)."""
    distnn.manual_seed(0)
    layer = nn.TransformerDecoderLayer(E, 2, dim_feedforward=16, dropout=0.5, batch_first=batch_first,
                                       dtype=np.float64)
    layer.train()
    t = (lambda a: a) if batch_first else (lambda a: a.transpose(1, 0, 2))
    inp = distnn.Tensor(np.ascontiguousarray(t(x[rows])), requires_grad=True)
    m = distnn.Tensor(np.ascontiguousarray(t(mem[rows])), requires_grad=True)
    with dn_random.use_generator(BatchShareGenerator(SEED, total, rows)):
        out = layer(inp, m, tgt_is_causal=True)
    (out * out).sum().backward()
    return t(out.numpy()), t(inp.grad), t(m.grad)


@pytest.mark.parametrize("total, world", [(6, 2), (6, 3)])
def test_time_major_decoder_layer_dropout_is_the_same_on_any_number_of_ranks(total, world):
    rng = np.random.default_rng(3)
    x, mem = rng.standard_normal((total, S, E)), rng.standard_normal((total, 4, E))
    whole = _decoder_run(x, mem, np.arange(total), total, batch_first=False)
    for a, b in zip(whole, _decoder_run(x, mem, np.arange(total), total, batch_first=True)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for rank in range(world):
        rows = np.arange(rank, total, world)
        for name, a, b in zip(("output", "tgt grad", "memory grad"), _decoder_run(x, mem, rows, total, False), whole):
            np.testing.assert_allclose(a, b[rows], rtol=1e-12, atol=1e-12, err_msg=f"{name}, rank {rank}")
    assert {nn.TransformerDecoderLayer(E, 2, batch_first=bf).dropout3.batch_dim for bf in (False, True)} == {1, 0}
