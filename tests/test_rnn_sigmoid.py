"""RNN and RNNCell with nonlinearity="sigmoid" (the notes' h_n = sigma(V [x_n; h_n-1] + c)), which PyTorch's
RNN lacks: the oracle is a hand-written PyTorch loop with torch.sigmoid on the same weights."""
import numpy as np
import pytest

import distnn
from distnn import nn
from distnn.functional import rnn as R
from distnn.testing import check_grad

RTOL = {np.float32: 2e-5, np.float64: 1e-11}


def close(a, b, dtype, what):
    b = np.asarray(b)
    np.testing.assert_allclose(np.asarray(a), b, rtol=RTOL[dtype], atol=RTOL[dtype] * float(np.abs(b).max()),
                               err_msg=what)


def torch_sigmoid_rnn(torch, p, x, h0, num_layers, D):
    """The multi-layer (bi)directional Elman RNN with sigmoid units, step by step; x is (T, N, I)."""
    T = x.shape[0]
    inp, h_n = x, []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh, b_ih, b_hh = (p[k + sfx] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            h = h0[layer * D + d]
            seq = [None] * T
            for t in (range(T - 1, -1, -1) if d else range(T)):
                h = torch.sigmoid(inp[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
                seq[t] = h
            outs.append(torch.stack(seq))
            h_n.append(h)
        inp = torch.cat(outs, 2)
    return inp, torch.stack(h_n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first", [(1, False, False), (2, True, True)])
def test_sigmoid_rnn_matches_a_torch_loop(torch, rng, dtype, num_layers, bidirectional, batch_first):
    T, N, I, H = 5, 3, 4, 6
    D = 2 if bidirectional else 1
    dm = nn.RNN(I, H, num_layers, nonlinearity="sigmoid", batch_first=batch_first, bidirectional=bidirectional,
                dtype=dtype, generator=np.random.default_rng(0))
    p = {k: torch.tensor(v.data.copy(), requires_grad=True) for k, v in dm.named_parameters()}
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(dtype)
    h0 = rng.standard_normal((num_layers * D, N, H)).astype(dtype)
    xd, h0d = distnn.Tensor(x.copy(), requires_grad=True), distnn.Tensor(h0.copy(), requires_grad=True)
    xt, h0t = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    out_d, hn_d = dm(xd, h0d)
    out_t, hn_t = torch_sigmoid_rnn(torch, p, xt.transpose(0, 1) if batch_first else xt, h0t, num_layers, D)
    out_t = out_t.transpose(0, 1) if batch_first else out_t
    close(out_d.numpy(), out_t.detach().numpy(), dtype, "output")
    close(hn_d.numpy(), hn_t.detach().numpy(), dtype, "h_n")
    w_out, w_h = rng.standard_normal(out_t.shape), rng.standard_normal(hn_t.shape)
    ((out_d * distnn.Tensor(w_out.astype(dtype))).sum() + (hn_d * distnn.Tensor(w_h.astype(dtype))).sum()).backward()
    ((out_t * torch.tensor(w_out, dtype=out_t.dtype)).sum() + (hn_t * torch.tensor(w_h, dtype=out_t.dtype)).sum()
     ).backward()
    close(xd.grad, xt.grad.numpy(), dtype, "input grad")
    close(h0d.grad, h0t.grad.numpy(), dtype, "h0 grad")
    for k, v in dm.named_parameters():
        close(v.grad, p[k].grad.numpy(), dtype, f"grad of {k}")


def test_sigmoid_rnn_cell_matches_torch_sigmoid(torch, rng):
    cell = nn.RNNCell(4, 3, nonlinearity="sigmoid", generator=np.random.default_rng(1))
    x, h = rng.standard_normal((2, 4)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)
    p = {k: torch.tensor(v.data) for k, v in cell.named_parameters()}
    want = torch.sigmoid(torch.tensor(x) @ p["weight_ih"].T + p["bias_ih"] + torch.tensor(h) @ p["weight_hh"].T
                         + p["bias_hh"])
    close(cell(distnn.Tensor(x), distnn.Tensor(h)).numpy(), want.numpy(), np.float32, "cell output")


def test_sigmoid_units_saturate_without_overflow():
    """Huge pre-activations give h = 0 or 1 exactly, no overflow warning, and a zero (not NaN) gradient."""
    x = distnn.Tensor(np.array([[[1e4]], [[-1e4]]], np.float32), requires_grad=True)  # (T=2, N=1, I=1)
    w = [np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32)]
    with np.errstate(over="raise", invalid="raise"):
        out = R.RNNLayer.apply(x, np.zeros((1, 1), np.float32), *w, nonlinearity="sigmoid")
        out.sum().backward()
    np.testing.assert_array_equal(out.numpy().ravel(), [1.0, 0.0])
    np.testing.assert_array_equal(x.grad.ravel(), [0.0, 0.0])


@pytest.mark.parametrize("reverse", [False, True])
def test_sigmoid_layer_check_grad_float64(reverse, rng):
    T, B, I, H = 3, 2, 3, 2
    w = [rng.standard_normal((H, I)), rng.standard_normal((H, H)), rng.standard_normal(H), rng.standard_normal(H)]
    check_grad(lambda *a: R.RNNLayer.apply(*a, nonlinearity="sigmoid", reverse=reverse),
               rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), *w)


def test_unknown_nonlinearity_is_refused():
    for make in (lambda: nn.RNN(2, 3, nonlinearity="softplus"), lambda: nn.RNNCell(2, 3, nonlinearity="Sigmoid")):
        with pytest.raises(ValueError, match="nonlinearity must be 'tanh', 'relu' or 'sigmoid', got"):
            make()
