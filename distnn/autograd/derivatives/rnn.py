"""Graph backwards of the fused recurrent layers (:class:`RNNLayer`, :class:`LSTMLayer`, :class:`GRULayer`:
nn.RNN/LSTM/GRU and their cells), so a gradient penalty on a recurrent critic (WGAN-GP) or a meta-gradient
can go through them.

Each recomputes its layer cell by cell from its inputs with recorded ops (matmuls, sigmoid/tanh/relu, the
gates' slices) and differentiates that (:mod:`.recompute`): the cells are PyTorch's, gate orders (i, f, g, o)
and (r, z, n), ``proj_size``'s W_hr, ``reverse`` and a packed batch's ``batch_sizes`` (a row past its
sequence's end keeps its state, a constant mask) included. The fused forward's arrays are not reused: the
recomputation is one more forward per double-backward pass.
"""
from __future__ import annotations

from distnn.backend import get_array_module
from distnn.functional import elementwise_choice as C
from distnn.functional.join import concat, stack
from distnn.functional.rnn import GRULayer, LSTMLayer, RNNLayer, _live

from . import register
from .recompute import recompute


def _linear(x, w, b=None):
    out = x @ w.transpose(0, 1)
    return out if b is None else out + b


def _steps(node, T):
    return range(T - 1, -1, -1) if node.reverse else range(T)


def _keep(node, t, B, new, old):
    """``new`` in the rows live at step t, ``old`` (the kept state) in the others."""
    k = _live(node.bs, t, B)
    if k == B:
        return new
    xp = get_array_module(new.data)
    live = xp.arange(B)[:, None] < k
    return C.where(live, new, old)


def _in_time_order(node, states):
    return stack(states[::-1] if node.reverse else states, 0)


@register(RNNLayer)
def _rnn(node, g):
    act = {"tanh": lambda a: a.tanh(), "relu": lambda a: a.relu(), "sigmoid": lambda a: a.sigmoid()}[
        node.nonlinearity]

    def forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
        T, B = x.shape[:2]
        h, states = h0, []
        for t in _steps(node, T):
            h = _keep(node, t, B, act(_linear(x[t], w_ih, b_ih) + _linear(h, w_hh, b_hh)), h)
            states.append(h)
        return _in_time_order(node, states)

    return recompute(node, g, _arrays(node, (node.x, node.hs[0], node.w_ih, node.w_hh)), forward)


@register(GRULayer)
def _gru(node, g):
    def forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
        T, B = x.shape[:2]
        H = h0.shape[1]
        h, states = h0, []
        for t in _steps(node, T):
            gi, gh = _linear(x[t], w_ih, b_ih), _linear(h, w_hh, b_hh)
            r = (gi[:, :H] + gh[:, :H]).sigmoid()
            z = (gi[:, H:2 * H] + gh[:, H:2 * H]).sigmoid()
            n = (gi[:, 2 * H:] + r * gh[:, 2 * H:]).tanh()
            h = _keep(node, t, B, n + z * (h - n), h)
            states.append(h)
        return _in_time_order(node, states)

    return recompute(node, g, _arrays(node, (node.x, node.hs[0], node.w_ih, node.w_hh)), forward)


@register(LSTMLayer)
def _lstm(node, g):
    def forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None):
        T, B = x.shape[:2]
        H = c0.shape[1]
        h, c, states = h0, c0, []
        for t in _steps(node, T):
            a = _linear(x[t], w_ih, b_ih) + _linear(h, w_hh, b_hh)
            i, f, o = a[:, :H].sigmoid(), a[:, H:2 * H].sigmoid(), a[:, 3 * H:].sigmoid()
            c_new = f * c + i * a[:, 2 * H:3 * H].tanh()
            h_new = o * c_new.tanh()
            if w_hr is not None:
                h_new = _linear(h_new, w_hr)
            h, c = _keep(node, t, B, h_new, h), _keep(node, t, B, c_new, c)
            states.append(h)
        hs = _in_time_order(node, states)
        P = h0.shape[1]
        if P < H:  # (the projected states fill [:T, :, :P] of the output; the rest is zero)
            xp = get_array_module(hs.data)
            hs = concat([hs, xp.zeros((T, B, H - P), dtype=hs.dtype)], 2)
        return concat([hs, c.unsqueeze(0)], 0)

    return recompute(node, g, _arrays(node, (node.x, node.hs[0], node.cs[0], node.w_ih_raw, node.w_hh_raw)),
                     forward)


def _arrays(node, leading):
    """The layer's inputs' values: ``leading`` (x, states, W_ih, W_hh) then those the forward kept for this."""
    return list(leading) + list(node.extra_inputs)[: len(node.parents) - len(leading)]
