"""PyTorch's functional RNN entry points (``torch.rnn_tanh``, ``rnn_relu``, ``lstm``, ``gru``) and cells
(``rnn_tanh_cell``, ``rnn_relu_cell``, ``lstm_cell``, ``gru_cell``), on distnn's fused recurrent layers
(:mod:`distnn.functional.rnn`), so values and gradients are those of :class:`distnn.nn.RNN` and its kin.

The weights come flat, as torch's ``RNNBase._flat_weights``: for each layer, for each direction (forward, then
reverse), ``w_ih, w_hh``, then ``b_ih, b_hh`` when ``has_biases``, then the LSTM's projection ``w_hr`` when it
has one (``proj_size``, seen from the count). Each entry point has torch's two overloads, told apart as torch's
argument parser tells them (the fourth argument is the weights in the packed one):

* ``(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)``: a padded
  ``(T, N, I)`` input (``(N, T, I)`` with ``batch_first``); returns ``(output, h_n)`` (``lstm``: ``(output, h_n,
  c_n)``; its ``hx`` is ``(h_0, c_0)``);
* ``(data, batch_sizes, hx, params, has_biases, num_layers, dropout, train, bidirectional)``: a packed batch
  (a PackedSequence's ``data`` and ``batch_sizes``, sorted longest first, ``hx`` in that order); returns the
  packed output's data and the final states, each sequence's at its own last step.

``dropout`` (between layers, when ``train``) draws its masks as :func:`distnn.functional.dropout`.
"""
from __future__ import annotations

from .autograd.tensor import Tensor
from .functional import rnn as R
from .functional import shape as S
from .functional.activation import dropout as _dropout

__all__ = ["rnn_tanh", "rnn_relu", "lstm", "gru", "rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell"]


def _parse(args, who):
    """torch's two overloads (see the module docstring) as (x, batch_sizes, hx, params, has_biases, num_layers,
    dropout, train, bidirectional, batch_first)."""
    if len(args) != 9:
        raise TypeError(f"{who}() takes 9 positional arguments (input, hx, params, has_biases, num_layers, dropout, "
                        f"train, bidirectional, batch_first; or data, batch_sizes, hx, params, ...), got {len(args)}")
    if isinstance(args[3], (list, tuple)):  # the packed overload: data, batch_sizes, hx, params, ...
        data, batch_sizes, hx, params, has_biases, num_layers, p, train, bidirectional = args
        return data, batch_sizes, hx, params, has_biases, num_layers, p, train, bidirectional, False
    x, hx, params, has_biases, num_layers, p, train, bidirectional, batch_first = args
    return x, None, hx, params, has_biases, num_layers, p, train, bidirectional, batch_first


def _groups(params, has_biases, num_layers, directions, mode, who):
    """The flat weights as one list per (layer, direction): [w_ih, w_hh, b_ih, b_hh, w_hr] (None where absent)."""
    params = list(params)
    groups = num_layers * directions
    per = 2 + 2 * bool(has_biases)
    if mode == "LSTM" and len(params) == groups * (per + 1):
        per += 1  # (a projection w_hr ends each group)
    if len(params) != groups * per:
        raise ValueError(f"{who}(): expected {groups * per} weights ({num_layers} layers x {directions} directions x "
                         f"{per}: w_ih, w_hh{', b_ih, b_hh' if has_biases else ''}), got {len(params)}")
    out = []
    for g in range(groups):
        w = params[g * per:(g + 1) * per]
        b_ih, b_hh = (w[2], w[3]) if has_biases else (None, None)
        out.append([w[0], w[1], b_ih, b_hh, w[-1] if per in (3, 5) else None])
    return out


def _run(mode, args, who):
    x, batch_sizes, hx, params, has_biases, num_layers, p, train, bidirectional, batch_first = _parse(args, who)
    D = 2 if bidirectional else 1
    groups = _groups(params, has_biases, num_layers, D, mode, who)
    lstm = mode == "LSTM"
    h0, c0 = (hx if lstm else (hx, None))
    packed = batch_sizes is not None
    if packed:
        from .nn.utils.rnn import PackedSequence, _pack_sorted, _padded_sorted

        bs = batch_sizes.data if isinstance(batch_sizes, Tensor) else batch_sizes
        x = _padded_sorted(PackedSequence(x, bs))
        bs = [int(b) for b in bs]
    else:
        bs = None
        if x.ndim != 3:
            raise ValueError(f"{who}(): input must be 3-D ((T, N, I), or (N, T, I) with batch_first), got shape "
                             f"{tuple(x.shape)}")
        if batch_first:
            x = S.Transpose.apply(x, axes=(1, 0, 2))
    T = x.shape[0]
    h_n, c_n = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh, w_hr = groups[layer * D + d]
            rev, idx = bool(d), layer * D + d
            last = 0 if rev else T - 1  # (a packed row past its end kept its last state)
            if lstm:
                both = R.LSTMLayer.apply(x, h0[idx], c0[idx], w_ih, w_hh, b_ih, b_hh, w_hr, reverse=rev,
                                         batch_sizes=bs)
                P = h0.shape[2]
                out, h_last = both[:T, :, :P], both[last, :, :P]
                c_n.append(both[T])
            elif mode == "GRU":
                out = R.GRULayer.apply(x, h0[idx], w_ih, w_hh, b_ih, b_hh, reverse=rev, batch_sizes=bs)
                h_last = out[last]
            else:
                out = R.RNNLayer.apply(x, h0[idx], w_ih, w_hh, b_ih, b_hh, nonlinearity=mode, reverse=rev,
                                       batch_sizes=bs)
                h_last = out[last]
            h_n.append(h_last)
            outs.append(out)
        x = outs[0] if D == 1 else S.Concat.apply(*outs, axis=2)
        if p > 0 and train and layer < num_layers - 1:
            x = _dropout(x, p, True, batch_dim=1)
    if packed:
        x = _pack_sorted(x, bs)
    elif batch_first:
        x = S.Transpose.apply(x, axes=(1, 0, 2))
    h_n = S.Stack.apply(*h_n, axis=0)
    return (x, h_n, S.Stack.apply(*c_n, axis=0)) if lstm else (x, h_n)


def rnn_tanh(*args):
    """``torch.rnn_tanh``: a multi-layer Elman RNN with tanh over flat weights; ``(output, h_n)`` (see the module
    docstring for the two overloads)."""
    return _run("tanh", args, "rnn_tanh")


def rnn_relu(*args):
    """``torch.rnn_relu``: as :func:`rnn_tanh` with ReLU."""
    return _run("relu", args, "rnn_relu")


def lstm(*args):
    """``torch.lstm``: a multi-layer LSTM over flat weights (a projection ``w_hr`` after each group's biases when
    it has one); ``hx`` is ``(h_0, c_0)``; returns ``(output, h_n, c_n)``."""
    return _run("LSTM", args, "lstm")


def gru(*args):
    """``torch.gru``: a multi-layer GRU over flat weights; ``(output, h_n)``."""
    return _run("GRU", args, "gru")


# ------------------------------------------------------------------ cells: one step, torch's argument order
def _step_input(input, hx, who):  # noqa: A002
    if input.ndim != 2 or hx.ndim != 2 or hx.shape[0] != input.shape[0]:
        raise ValueError(f"{who}(): expected input (N, input_size) and hx (N, hidden_size), got shapes "
                         f"{tuple(input.shape)} and {tuple(hx.shape)}")
    return input.reshape(1, *input.shape)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002
    """``torch.rnn_tanh_cell``: ``tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)``, one step of (N, I)."""
    return R.RNNLayer.apply(_step_input(input, hx, "rnn_tanh_cell"), hx, w_ih, w_hh, b_ih, b_hh,
                            nonlinearity="tanh")[0]


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002
    """``torch.rnn_relu_cell``: as :func:`rnn_tanh_cell` with ReLU."""
    return R.RNNLayer.apply(_step_input(input, hx, "rnn_relu_cell"), hx, w_ih, w_hh, b_ih, b_hh,
                            nonlinearity="relu")[0]


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002
    """``torch.lstm_cell``: one LSTM step; ``hx`` is ``(h, c)``; returns ``(h', c')``."""
    if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
        raise TypeError("lstm_cell(): hx must be a tuple (h, c)")
    both = R.LSTMLayer.apply(_step_input(input, hx[0], "lstm_cell"), hx[0], hx[1], w_ih, w_hh, b_ih, b_hh)
    return both[0], both[1]


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002
    """``torch.gru_cell``: one GRU step (gates r, z, n as torch's); returns ``h'``."""
    return R.GRULayer.apply(_step_input(input, hx, "gru_cell"), hx, w_ih, w_hh, b_ih, b_hh)[0]
