"""The lecture notes' (/work/shared/seeds) worked examples as tests, part 4: backprop layer by layer, a sigmoid
neuron, inputs (images, bags of words), the fast gradient sign method, truncated BPTT, attention, ensembles."""
import math

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor, nn

from seeds_cases import leaf


def test_deltas_layer_by_layer_match_the_engine():
    # 003: delta^L = sigma'(z^L) (.) grad_y C; delta^l = sigma'(z^l) (.) (W^{l+1})^T delta^{l+1};
    # dC/dw_ij^l = delta_i^l a_j^{l-1}, dC/db^l = delta^l. (002 writes the same with row vectors.)
    rng = np.random.default_rng(8)
    sizes = [4, 5, 3, 2]
    layers = [nn.Linear(a, b, dtype=np.float64, generator=rng) for a, b in zip(sizes[:-1], sizes[1:])]
    x, target = rng.standard_normal(4), rng.standard_normal(2)
    a = Tensor(x)
    for layer in layers:
        a = F.sigmoid(layer(a))
    ((a - Tensor(target)) ** 2).sum().backward()  # C = ||y - yhat||^2
    # the same by hand
    acts, zs = [x], []
    for layer in layers:
        zs.append(layer.weight.data @ acts[-1] + layer.bias.data)
        acts.append(1 / (1 + np.exp(-zs[-1])))
    dsig = [s * (1 - s) for s in acts[1:]]
    delta = dsig[-1] * 2 * (acts[-1] - target)
    for l in range(len(layers) - 1, -1, -1):
        np.testing.assert_allclose(layers[l].weight.grad, np.outer(delta, acts[l]), rtol=1e-12)
        np.testing.assert_allclose(layers[l].bias.grad, delta, rtol=1e-12)
        if l:
            delta = dsig[l - 1] * (layers[l].weight.data.T @ delta)


def test_single_sigmoid_neuron_with_squared_error():
    # 003: f = sigmoid(w1 x1 + w2 x2 + b), C = (f - yhat)^2: dC/dw1 = 2 (f - yhat) (1 - f) f x1, dC/db likewise.
    w, b = leaf([0.3, -0.7]), leaf(0.1)
    x, yhat = np.array([2.0, 1.5]), 1.0
    f = F.sigmoid((w * Tensor(x)).sum() + b)
    ((f - yhat) ** 2).backward()
    s = float(f.item())
    common = 2 * (s - yhat) * (1 - s) * s
    np.testing.assert_allclose(w.grad, common * x, rtol=1e-12)
    assert float(b.grad) == pytest.approx(common, rel=1e-12)


def test_a_16x16_image_is_a_256_dimensional_input():
    # 003: each pixel of a 16 x 16 digit is one of 256 input elements (1 for ink), 10 outputs; the MLP
    # flattens an image batch itself.
    from distnn.models.mlp import MLP

    model = MLP(sizes=[256, 32, 10], generator=np.random.default_rng(9))
    images = (np.random.default_rng(10).random((3, 16, 16)) > 0.7).astype(np.float32)
    out = model(Tensor(images))
    assert tuple(out.shape) == (3, 10)
    np.testing.assert_array_equal(out.numpy(), model(Tensor(images.reshape(3, 256))).numpy())


def test_a_bag_of_words_vector_times_a_weight_matrix_sums_the_words_embeddings():
    # 003: a word is a one-hot vector over the vocabulary (3 classes: positive, negative, neutral); a linear
    # layer on it picks the word's column, so on a bag of words it sums the words' columns: an Embedding
    # lookup of the same weights is the same computation, with gradients only for the words present.
    vocab, dim = 7, 3
    emb = nn.Embedding(vocab, dim, dtype=np.float64, generator=np.random.default_rng(15))
    lin = nn.Linear(vocab, dim, bias=False, dtype=np.float64)
    lin.weight.data[...] = emb.weight.data.T
    words = np.array([1, 4, 4, 6])  # "love" ... with a repeat
    bag = np.bincount(words, minlength=vocab).astype(np.float64)
    by_lookup = emb(Tensor(words)).sum(axis=0)
    by_matmul = lin(Tensor(bag))
    np.testing.assert_allclose(by_lookup.numpy(), by_matmul.numpy(), rtol=1e-12)
    by_lookup.sum().backward()
    by_matmul.sum().backward()
    np.testing.assert_allclose(emb.weight.grad, lin.weight.grad.T, rtol=1e-12)
    assert not emb.weight.grad[[0, 2, 3, 5]].any()
    classifier = nn.Linear(dim, 3, dtype=np.float64, generator=np.random.default_rng(16))
    assert tuple(classifier(by_lookup).shape) == (3,)


def test_fast_gradient_sign_example_increases_the_loss():
    # 002: x + eps sign(grad_x J(theta, x, y)); the input gradient comes from the same backward pass.
    rng = np.random.default_rng(11)
    model = nn.Sequential(nn.Linear(8, 16, dtype=np.float64, generator=rng), nn.ReLU(),
                          nn.Linear(16, 3, dtype=np.float64, generator=rng))
    x = Tensor(rng.standard_normal((5, 8)), requires_grad=True)
    y = rng.integers(0, 3, 5)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    assert x.grad is not None and x.grad.shape == (5, 8)
    x_adv = x.numpy() + 0.1 * np.sign(x.grad)
    with distnn.no_grad():
        adv_loss = F.cross_entropy(model(Tensor(x_adv)), y)
    assert float(adv_loss.item()) > float(loss.item())


def test_truncated_bptt_cuts_the_gradient_at_the_detached_state():
    # 002: break the dependencies after a fixed number of steps: the second chunk starts from h.detach(),
    # so its loss sends no gradient into the first chunk's inputs, but the forward values are unchanged.
    rng = np.random.default_rng(12)
    rnn = nn.RNN(3, 4, dtype=np.float64, generator=rng)
    seq = rng.standard_normal((6, 2, 3))  # (T, N, I)
    full, _ = rnn(Tensor(seq))
    first_x = Tensor(seq[:3], requires_grad=True)
    out1, h1 = rnn(first_x)
    out2, _ = rnn(Tensor(seq[3:]), h1.detach())
    np.testing.assert_allclose(np.concatenate([out1.numpy(), out2.numpy()]), full.numpy(), rtol=1e-12)
    out2.sum().backward()
    assert first_x.grad is None or not np.any(first_x.grad)
    first_x2 = Tensor(seq[:3], requires_grad=True)
    out1, h1 = rnn(first_x2)
    out2, _ = rnn(Tensor(seq[3:]), h1)  # untruncated: the gradient flows back through time
    out2.sum().backward()
    assert np.any(first_x2.grad)


def test_attention_is_softmax_of_scaled_dot_products_times_values():
    # 002: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V; with identity projections MultiheadAttention
    # (one head) is exactly that.
    d = 4
    mha = nn.MultiheadAttention(d, 1, batch_first=True, dtype=np.float64)
    mha.in_proj_weight.data[...] = np.concatenate([np.eye(d)] * 3)
    mha.in_proj_bias.data[...] = 0
    mha.out_proj.weight.data[...] = np.eye(d)
    mha.out_proj.bias.data[...] = 0
    rng = np.random.default_rng(13)
    q, k, v = rng.standard_normal((1, 3, d)), rng.standard_normal((1, 5, d)), rng.standard_normal((1, 5, d))
    s = q[0] @ k[0].T / math.sqrt(d)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    for need_weights in (True, False):
        out, weights = mha(Tensor(q), Tensor(k), Tensor(v), need_weights=need_weights)
        np.testing.assert_allclose(out.numpy()[0], p @ v[0], rtol=1e-12)
        if need_weights:
            np.testing.assert_allclose(weights.numpy()[0], p, rtol=1e-12)


def test_an_ensemble_averages_predicted_probabilities_not_weights():
    # 000: output of network t is p_t; use (1/T) sum_t p_t. Averaging the weights is a different (bad) model.
    from distnn.train.ensemble import EnsembleModel

    rng = np.random.default_rng(14)
    members = [nn.Sequential(nn.Linear(3, 6, dtype=np.float64, generator=rng), nn.Tanh(),
                             nn.Linear(6, 4, dtype=np.float64, generator=rng)) for _ in range(3)]
    x = Tensor(rng.standard_normal((5, 3)))
    probs = [F.softmax(m(x), dim=1).numpy() for m in members]
    ensemble = EnsembleModel(members)
    np.testing.assert_allclose(F.softmax(ensemble(x), dim=1).numpy(), np.mean(probs, axis=0), rtol=1e-12)
    averaged = nn.Sequential(nn.Linear(3, 6, dtype=np.float64), nn.Tanh(), nn.Linear(6, 4, dtype=np.float64))
    for name, p in averaged.named_parameters():
        p.data[...] = np.mean([dict(m.named_parameters())[name].data for m in members], axis=0)
    assert not np.allclose(F.softmax(averaged(x), dim=1).numpy(), np.mean(probs, axis=0), atol=1e-3)
