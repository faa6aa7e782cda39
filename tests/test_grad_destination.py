"""Gradient destinations: ops write a leaf's gradient straight into a given array (engine.set_grad_destination).

Data parallelism points them at views of its flat communication buffers; the
tests here check the engine and the ops alone: same values as without a
destination, the very array adopted, and every case where writing there would
be wrong is left alone.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn.autograd.engine import get_grad_destination, set_grad_destination
from distnn.autograd.function import Function


def _grads(params, loss_fn, with_dest):
    for p in params:
        p.grad = None
        set_grad_destination(p, np.full(p.data.shape, np.nan, p.data.dtype) if with_dest else None)
    loss_fn().backward()
    return [p.grad for p in params]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_shape", [(5,), (2, 3)], ids=["2-D", "folded-3-D"])
def test_linear_writes_weight_and_bias_gradients_into_their_destinations(dtype, batch_shape):
    rng = np.random.default_rng(0)
    x = distnn.Tensor(rng.standard_normal(batch_shape + (4,)).astype(dtype))
    w = distnn.Tensor(rng.standard_normal((3, 4)).astype(dtype), requires_grad=True)
    b = distnn.Tensor(rng.standard_normal(3).astype(dtype), requires_grad=True)

    def loss():
        return (F.linear(x, w, b) ** 2).sum()

    plain = [g.copy() for g in _grads([w, b], loss, with_dest=False)]
    got = _grads([w, b], loss, with_dest=True)
    for p, g, ref in zip([w, b], got, plain):
        assert g is get_grad_destination(p)  # adopted: no copy
        assert np.array_equal(g, ref)  # and bitwise what the op computes without one


@pytest.mark.parametrize("dims", [2, 1], ids=["conv2d", "conv1d"])
def test_conv_writes_weight_and_bias_gradients_into_their_destinations(dims):
    rng = np.random.default_rng(1)
    x = distnn.Tensor(rng.standard_normal((2, 4) + (6,) * dims))
    w = distnn.Tensor(rng.standard_normal((6, 2) + (3,) * dims), requires_grad=True)
    b = distnn.Tensor(rng.standard_normal(6), requires_grad=True)
    conv = F.conv2d if dims == 2 else F.conv1d

    def loss():
        return (conv(x, w, b, padding=1, groups=2) ** 2).sum()

    plain = [g.copy() for g in _grads([w, b], loss, with_dest=False)]
    got = _grads([w, b], loss, with_dest=True)
    for p, g, ref in zip([w, b], got, plain):
        assert g is get_grad_destination(p)
        assert np.array_equal(g, ref)


def test_embedding_and_lstm_write_their_weight_gradients_into_destinations():
    import distnn.nn as nn

    distnn.manual_seed(0)
    emb, lstm = nn.Embedding(11, 6, padding_idx=0), nn.LSTM(6, 5, num_layers=1)
    tokens = np.random.default_rng(6).integers(0, 11, (7, 3))
    params = list(emb.parameters()) + list(lstm.parameters())

    def loss():
        out, _ = lstm(emb(distnn.Tensor(tokens)))
        return (out ** 2).sum()

    plain = [g.copy() for g in _grads(params, loss, with_dest=False)]
    got = _grads(params, loss, with_dest=True)
    for p, g, ref in zip(params, got, plain):
        assert g is get_grad_destination(p)
        assert np.array_equal(g, ref)


@pytest.mark.parametrize("layer", ["gru", "rnn", "rnn-no-bias", "layernorm", "batchnorm-train",
                                   "batchnorm-eval", "syncbatchnorm"])
def test_recurrent_and_norm_layers_write_their_parameter_gradients_into_destinations(layer):
    import distnn.nn as nn

    distnn.manual_seed(0)
    rng = np.random.default_rng(7)
    if layer in ("gru", "rnn", "rnn-no-bias"):
        module = nn.GRU(6, 5, num_layers=2) if layer == "gru" else nn.RNN(6, 5, bias=layer == "rnn")
        x = distnn.Tensor(rng.standard_normal((7, 3, 6)).astype(np.float32))

        def forward():
            return module(x)[0]
    else:
        if layer == "layernorm":
            module, x = nn.LayerNorm((3, 4), dtype=np.float64), rng.standard_normal((5, 3, 4))
        elif layer == "syncbatchnorm":
            from distnn.distributed import LocalCommunicator, SyncBatchNorm

            module, x = SyncBatchNorm(3, comm=LocalCommunicator(), dtype=np.float64), rng.standard_normal((5, 3, 4))
        else:
            module, x = nn.BatchNorm1d(3, dtype=np.float64), rng.standard_normal((5, 3, 4))
        with distnn.no_grad():  # give the affine parameters values other than ones and zeros
            for p in module.parameters():
                p.data[...] = rng.standard_normal(p.data.shape)
        module.train(layer != "batchnorm-eval")
        x = distnn.Tensor(x)

        def forward():
            return module(x)

    params = list(module.parameters())
    assert params

    def loss():
        return (forward() ** 3).sum()

    plain = [g.copy() for g in _grads(params, loss, with_dest=False)]
    got = _grads(params, loss, with_dest=True)
    for p, g, ref in zip(params, got, plain):
        assert g is get_grad_destination(p)
        assert np.array_equal(g, ref)


def test_a_leaf_used_twice_accumulates_into_its_destination():
    rng = np.random.default_rng(2)
    x = distnn.Tensor(rng.standard_normal((5, 4)))
    w = distnn.Tensor(rng.standard_normal((4, 4)), requires_grad=True)

    def loss():
        return F.linear(F.linear(x, w).tanh(), w).sum()

    plain = _grads([w], loss, with_dest=False)[0].copy()
    got = _grads([w], loss, with_dest=True)[0]
    assert got is get_grad_destination(w)
    np.testing.assert_allclose(got, plain, rtol=1e-14)


def test_a_gradient_already_there_is_added_to_and_the_destination_left_alone():
    rng = np.random.default_rng(3)
    x = distnn.Tensor(rng.standard_normal((5, 4)))
    w = distnn.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    dest = np.full((3, 4), 7.0)
    set_grad_destination(w, dest)
    w.grad = np.ones((3, 4))  # accumulation: backward adds into the existing gradient
    F.linear(x, w).sum().backward()
    np.testing.assert_allclose(w.grad, np.broadcast_to(1.0 + x.data.sum(axis=0), (3, 4)))
    assert (dest == 7.0).all()


def test_a_destination_that_does_not_match_the_leaf_is_ignored():
    rng = np.random.default_rng(4)
    x = distnn.Tensor(rng.standard_normal((5, 4)))
    w = distnn.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    for bad in (np.zeros((3, 4), np.float32), np.zeros((4, 3)), np.zeros(12)):
        w.grad = None
        set_grad_destination(w, bad)
        F.linear(x, w).sum().backward()
        assert w.grad is not bad and not bad.any()
        np.testing.assert_allclose(w.grad, np.broadcast_to(x.data.sum(axis=0), (3, 4)))


def test_ops_without_support_give_a_fresh_gradient():
    w = distnn.Tensor(np.arange(3.0), requires_grad=True)
    dest = np.zeros(3)
    set_grad_destination(w, dest)
    (w * w).sum().backward()
    assert w.grad is not dest and not dest.any()
    np.testing.assert_allclose(w.grad, 2 * np.arange(3.0))


class _WritesEverywhere(Function):
    """a + b whose backward writes into every offered destination (to see what the engine offers)."""

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        offered = self.grad_out or (None, None)
        _WritesEverywhere.offers.append(offered)
        return tuple(g if d is None else np.copyto(d, g) or d for d in offered)


def test_no_destination_is_offered_to_an_op_that_takes_the_leaf_twice():
    _WritesEverywhere.offers = []
    w = distnn.Tensor(np.ones(3), requires_grad=True)
    set_grad_destination(w, np.zeros(3))
    _WritesEverywhere.apply(w, w).sum().backward()
    assert _WritesEverywhere.offers == [(None, None)]  # one array cannot hold two different gradients
    np.testing.assert_allclose(w.grad, 2.0)


def test_retained_graph_second_pass_adds_into_the_gradient():
    _WritesEverywhere.offers = []
    a = distnn.Tensor(np.ones(3), requires_grad=True)
    b = distnn.Tensor(np.ones(3), requires_grad=True)
    dest = np.zeros(3)
    set_grad_destination(a, dest)
    y = _WritesEverywhere.apply(a, b).sum()
    y.backward(retain_graph=True)
    assert a.grad is dest
    y.backward()
    assert a.grad is dest
    np.testing.assert_allclose(a.grad, 2.0)
    np.testing.assert_allclose(b.grad, 2.0)
    assert _WritesEverywhere.offers[1] == (None, None)  # the second pass: a already has its gradient


def test_destinations_are_for_leaves_only():
    w = distnn.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        set_grad_destination(w * 2, np.zeros(3))
