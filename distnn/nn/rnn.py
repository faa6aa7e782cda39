"""Recurrent layers: RNN (tanh/relu, or the lecture notes' sigmoid), LSTM, GRU.

Names, argument orders, shapes and parameter names follow PyTorch, so a PyTorch
``state_dict`` (converted to numpy) loads unchanged: ``weight_ih_l{k}`` (G*H, I),
``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` with a
``_reverse`` suffix for the second direction; G is 4 for LSTM (gates i, f, g, o),
3 for GRU (r, z, n), 1 for RNN. An LSTM with ``proj_size`` P > 0 projects its
hidden state to P values with ``weight_hr_l{k}`` (P, H): then ``weight_hh_l{k}`` is
(4*H, P), the layers above the first take D*P inputs, and h_0/h_n are
(num_layers*D, N, P) while c_0/c_n stay (..., H). Every parameter starts
U(-1/sqrt(H), 1/sqrt(H)).

Each layer and direction is one fused ``Function`` (``distnn.functional.rnn``)
that loops over time inside numpy; see there for why. Truncated BPTT: pass
``h_n.detach()`` (and ``c_n.detach()``) as the next chunk's initial state.

The single-step cells are ``rnn_cells.py`` (importable from here as before); the checks and initialisation
the layers and the cells share are ``rnn_common.py``.
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, get_array_module
from distnn.functional import activation as A
from distnn.functional import rnn as R
from distnn.functional import shape as S

from .module import Module, Parameter
from .rnn_cells import GRUCell, LSTMCell, RNNCell, RNNCellBase  # noqa: F401  (importable from here as before)
from .rnn_common import _check_dtype, _check_nonlinearity, _check_state_dtype, _uniform_params
from .utils.rnn import PackedSequence, _pack_sorted, _padded_sorted, invert_permutation

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "RNN_SIGMOID": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    """Shared machinery of RNN, LSTM and GRU (multi-layer, optional bidirectional)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, dtype=None, generator=None):
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"unknown RNN mode {mode!r}")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be a positive int, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        if float(dropout) > 0 and num_layers == 1:  # (PyTorch's warning: there is no layer to drop between)
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=3)
        if not isinstance(proj_size, int) or proj_size < 0:  # (PyTorch's messages)
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode, self.input_size, self.hidden_size, self.proj_size = mode, input_size, hidden_size, proj_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        self.generator = generator  # for inter-layer dropout; None means distnn's default
        dtype = np.dtype(dtype or default_dtype())
        g = _GATES[mode] * hidden_size
        D = 2 if bidirectional else 1
        real = proj_size or hidden_size  # the hidden state's size: what the next layer and step take
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else real * D
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                setattr(self, "weight_ih" + sfx, Parameter(np.empty((g, in_size), dtype)))
                setattr(self, "weight_hh" + sfx, Parameter(np.empty((g, real), dtype)))
                if bias:
                    setattr(self, "bias_ih" + sfx, Parameter(np.empty((g,), dtype)))
                    setattr(self, "bias_hh" + sfx, Parameter(np.empty((g,), dtype)))
                if proj_size:  # (registered last, as PyTorch's: the same parameter order)
                    setattr(self, "weight_hr" + sfx, Parameter(np.empty((proj_size, hidden_size), dtype)))
        _uniform_params(self, hidden_size, generator)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    # ------------------------------------------------------------ checks
    def _check_input(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"{self.where()}: input must be a Tensor, got {type(x).__name__}")
        layout = "(N, L, input_size)" if self.batch_first else "(L, N, input_size)"
        if x.ndim not in (2, 3):
            raise ValueError(
                f"{self.where()}: expected a 3-D input {layout} or a 2-D unbatched input (L, input_size), "
                f"got shape {tuple(x.shape)}"
            )
        time_axis = 1 if self.batch_first and x.ndim == 3 else 0
        if x.shape[time_axis] == 0:  # there would be no h_n to return (LSTM once returned c_0 in its place)
            raise ValueError(
                f"{self.where()}: expected a sequence length larger than 0, got input of shape {tuple(x.shape)} "
                f"(expected {layout})"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{self.where()}: input has {x.shape[-1]} features but input_size is {self.input_size} "
                f"(input shape {tuple(x.shape)}, expected {layout})"
            )
        _check_dtype(self, x, ValueError)

    def _check_state(self, h, batch, name, unbatched, size=None):
        D = 2 if self.bidirectional else 1
        want = (self.num_layers * D, batch, size or self.hidden_size)
        if unbatched:
            want = (want[0], want[2])
        if tuple(h.shape) != want:
            raise ValueError(f"{self.where()}: expected {name} of shape {want}, got {tuple(h.shape)}")

    # ----------------------------------------------------------- forward
    def forward(self, input, hx=None):
        """Run the sequence. Returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``).

        ``output`` is (L, N, D*H) (batch_first: (N, L, D*H)); ``h_n`` is
        (num_layers*D, N, H). Unbatched (L, input_size) inputs give unbatched results.
        A :class:`~distnn.nn.utils.rnn.PackedSequence` input runs each sequence to its own
        end and gives a PackedSequence output; ``h_n`` is then each sequence's state at its
        last step (first, for the reverse direction), in the caller's batch order, as PyTorch.
        """
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        self._check_input(input)
        unbatched = input.ndim == 2
        x = input
        if unbatched:
            x = S.Unsqueeze.apply(x, axis=1)
        elif self.batch_first:
            x = S.Transpose.apply(x, axes=(1, 0, 2))
        h0, c0 = self._initial_state(x, hx, unbatched)
        output, h_n, c_n = self._run(x, h0, c0)
        if unbatched:
            output = S.Squeeze.apply(output, axis=1)
            h_n = S.Squeeze.apply(h_n, axis=1)
            c_n = None if c_n is None else S.Squeeze.apply(c_n, axis=1)
        elif self.batch_first:
            output = S.Transpose.apply(output, axes=(1, 0, 2))
        return (output, h_n) if c_n is None else (output, (h_n, c_n))

    def _forward_packed(self, packed, hx):
        data = packed.data
        if not isinstance(data, Tensor) or data.ndim != 2 or data.shape[-1] != self.input_size:
            raise ValueError(f"{self.where()}: a PackedSequence's data must be (sum of lengths, input_size="
                             f"{self.input_size}), got shape {tuple(getattr(data, 'shape', ()))}")
        _check_dtype(self, data, ValueError)
        x = _padded_sorted(packed)  # (T, B, I), longest first, zero-padded
        sort, unsort = packed.sorted_indices, packed.unsorted_indices
        h0, c0 = self._initial_state(x, hx, False)
        if hx is not None and sort is not None:  # the caller's order -> the packed (longest first) order
            idx = get_array_module(x.data).asarray(sort.data)
            h0, c0 = h0[:, idx], (None if c0 is None else c0[:, idx])
        batch_sizes = packed.batch_sizes.data
        output, h_n, c_n = self._run(x, h0, c0, batch_sizes, sort)
        output = PackedSequence(_pack_sorted(output, batch_sizes), packed.batch_sizes, sort, unsort)
        if unsort is not None:
            idx = get_array_module(h_n.data).asarray(unsort.data)
            h_n = h_n[:, idx]
            c_n = None if c_n is None else c_n[:, idx]
        return (output, h_n) if c_n is None else (output, (h_n, c_n))

    def _initial_state(self, x, hx, unbatched):
        """(h0, c0) as (num_layers*D, N, .) arrays or Tensors, c0 None but for the LSTM; x is (T, N, I)."""
        batch = x.shape[1]
        lstm = self.mode == "LSTM"
        D = 2 if self.bidirectional else 1
        P = self.proj_size or self.hidden_size
        if hx is None:  # zero initial state: a constant, not part of the graph
            xp = get_array_module(x.data)
            c0 = xp.zeros((self.num_layers * D, batch, self.hidden_size), x.dtype)
            h0 = xp.zeros((self.num_layers * D, batch, P), x.dtype)
            return h0, (c0 if lstm else None)
        if lstm:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError(f"{self.where()}: LSTM hx must be a tuple (h_0, c_0)")
            h0, c0 = hx
            self._check_state(h0, batch, "h_0", unbatched, P)
            self._check_state(c0, batch, "c_0", unbatched)
        else:
            h0, c0 = hx, None
            self._check_state(h0, batch, "h_0", unbatched)
        for h, name in ((h0, "h_0"), (c0, "c_0")):
            if h is not None:
                _check_state_dtype(self, h, name, self.weight_ih_l0.dtype)
        if unbatched:
            h0 = S.Unsqueeze.apply(h0, axis=1)
            c0 = S.Unsqueeze.apply(c0, axis=1) if lstm else None
        return h0, c0

    def _run(self, x, h0, c0, batch_sizes=None, sorted_indices=None):
        """All layers over time-major x (T, N, I): (output (T, N, D*H), h_n, c_n or None).

        With ``batch_sizes`` x is a packed batch, padded and longest first (see
        distnn.functional.rnn); ``sorted_indices`` is its order, for the dropout masks."""
        lstm = self.mode == "LSTM"
        D = 2 if self.bidirectional else 1
        P = self.proj_size or self.hidden_size
        h_n, c_n = [], []
        T = x.shape[0]
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                idx = layer * D + d
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                w = [getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx)]
                w += ([getattr(self, "bias_ih" + sfx), getattr(self, "bias_hh" + sfx)] if self.bias
                      else [None, None] if self.proj_size else [])
                if self.proj_size:
                    w.append(getattr(self, "weight_hr" + sfx))
                h_init = h0[idx]
                rev = bool(d)
                last = 0 if rev else T - 1  # (with batch_sizes, a row past its end kept its last state)
                if lstm:
                    packed = R.LSTMLayer.apply(x, h_init, c0[idx], *w, reverse=rev, batch_sizes=batch_sizes)
                    if P == self.hidden_size:
                        out, h_last = packed[:T], packed[last]
                    else:  # (the projected states fill the first P of each row)
                        out, h_last = packed[:T, :, :P], packed[last, :, :P]
                    h_n.append(h_last)
                    c_n.append(packed[T])
                else:
                    if self.mode == "GRU":
                        out = R.GRULayer.apply(x, h_init, *w, reverse=rev, batch_sizes=batch_sizes)
                    else:
                        act = self.mode[len("RNN_"):].lower()  # RNN_TANH -> tanh
                        out = R.RNNLayer.apply(x, h_init, *w, nonlinearity=act, reverse=rev,
                                               batch_sizes=batch_sizes)
                    h_n.append(out[last])
                outs.append(out)
            x = outs[0] if D == 1 else S.Concat.apply(*outs, axis=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                # x is time-major (T, N, H): say so, as a batch as long as its sequences (N == T) looks
                # batch-major to a guess, and the trainer's per-sample masks would go to time steps
                x = self._dropout(x, sorted_indices)
        return x, S.Stack.apply(*h_n, axis=0), (S.Stack.apply(*c_n, axis=0) if lstm else None)

    def _dropout(self, x, sorted_indices):
        if sorted_indices is None:
            return A.dropout(x, self.dropout, True, generator=self.generator, batch_dim=1)
        # a packed batch runs longest first: draw the masks in the caller's order, so each sample keeps its own
        # (the trainer's per-sample masks do not depend on the padded length: a rank whose sequences are all
        # shorter than the global batch's longest gets the first steps of the one-process masks)
        xp = get_array_module(x.data)
        sort = xp.asarray(sorted_indices.data)
        unsorted = x[:, xp.asarray(invert_permutation(sorted_indices).data)]
        return A.dropout(unsorted, self.dropout, True, generator=self.generator, batch_dim=1)[:, sort]


def _refuse_proj_size(proj_size):
    # PyTorch's RNN and GRU refuse the keyword itself (0 included) with this ValueError, rather than the
    # TypeError of an unknown keyword: a user moving an LSTM's arguments to a GRU reads why
    if proj_size is not None:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


class RNN(RNNBase):
    """Elman RNN: ``RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
    batch_first=False, dropout=0.0, bidirectional=False)`` (PyTorch's positional order).

    ``nonlinearity`` is PyTorch's "tanh" or "relu", or "sigmoid" (the notes' h_n = sigma(V [x_n; h_n-1] + c),
    which PyTorch's RNN does not offer; its parameters are the same, so a state_dict still loads).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None, generator=None, *, proj_size=None):
        _refuse_proj_size(proj_size)
        _check_nonlinearity("RNN", nonlinearity)
        mode = "RNN_" + nonlinearity.upper()
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, dtype, generator)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0)``; forward(input, (h_0, c_0)=None) -> (output, (h_n, c_n)).

    ``proj_size`` P > 0: PyTorch's LSTM with projections, h = W_hr (o * tanh(c)) of P values (see the module
    docstring for the shapes)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=None, generator=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, dtype, generator)


class GRU(RNNBase):
    """``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False)``; forward(input, h_0=None) -> (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=None, generator=None, *, proj_size=None):
        _refuse_proj_size(proj_size)
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, dtype, generator)
