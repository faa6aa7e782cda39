"""The single-step recurrent cells: RNNCell, LSTMCell, GRUCell (PyTorch's names, shapes and parameters:
``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh``).

A cell is one time step of its layer's fused ``Function`` (``distnn.functional.rnn``) run on a sequence of
length 1; the multi-layer sequence modules are ``rnn.py``.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, get_array_module
from distnn.functional import rnn as R
from distnn.functional import shape as S

from .module import Module, Parameter
from .rnn_common import _check_dtype, _check_nonlinearity, _check_state_dtype, _uniform_params


class RNNCellBase(Module):
    def __init__(self, input_size, hidden_size, bias, gates, dtype=None, generator=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dtype = np.dtype(dtype or default_dtype())
        self.weight_ih = Parameter(np.empty((gates * hidden_size, input_size), dtype))
        self.weight_hh = Parameter(np.empty((gates * hidden_size, hidden_size), dtype))
        if bias:
            self.bias_ih = Parameter(np.empty((gates * hidden_size,), dtype))
            self.bias_hh = Parameter(np.empty((gates * hidden_size,), dtype))
        _uniform_params(self, hidden_size, generator)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def _prepare(self, input, hx, n_states):
        """Check shapes; return (x as (1, B, I), states as (B, H) arrays/Tensors, unbatched flag)."""
        if not isinstance(input, Tensor) or input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            shape = tuple(input.shape) if hasattr(input, "shape") else type(input).__name__
            raise ValueError(
                f"{self.where()}: expected input (N, {self.input_size}) or ({self.input_size},), got {shape}"
            )
        _check_dtype(self, input, RuntimeError)
        unbatched = input.ndim == 1
        x = S.Reshape.apply(input, shape=(1, 1 if unbatched else input.shape[0], self.input_size))
        batch = x.shape[1]
        if hx is None:
            zeros = get_array_module(x.data).zeros((batch, self.hidden_size), x.dtype)
            return x, (zeros,) * n_states, unbatched
        states = hx if n_states > 1 else (hx,)
        if n_states > 1 and not (isinstance(hx, (tuple, list)) and len(hx) == n_states):
            raise TypeError(f"{self.where()}: hx must be a tuple of {n_states} states")
        want = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        out = []
        for h in states:
            if tuple(h.shape) != want:
                raise ValueError(f"{self.where()}: expected hidden state of shape {want}, got {tuple(h.shape)}")
            _check_state_dtype(self, h, "hidden state", self.weight_ih.dtype)
            out.append(S.Reshape.apply(h, shape=(batch, self.hidden_size)) if unbatched else h)
        return x, tuple(out), unbatched

    def _weights(self):
        w = [self.weight_ih, self.weight_hh]
        if self.bias:
            w += [self.bias_ih, self.bias_hh]
        return w

    def _finish(self, h, unbatched):
        return S.Reshape.apply(h, shape=(self.hidden_size,)) if unbatched else h


class RNNCell(RNNCellBase):
    """``RNNCell(input_size, hidden_size, bias=True, nonlinearity="tanh")``: h' = act(W_ih x + b_ih + W_hh h + b_hh),
    act "tanh", "relu" or (not in PyTorch) "sigmoid"."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=None, generator=None):
        _check_nonlinearity("RNNCell", nonlinearity)
        super().__init__(input_size, hidden_size, bias, 1, dtype, generator)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h,), unbatched = self._prepare(input, hx, 1)
        out = R.RNNLayer.apply(x, h, *self._weights(), nonlinearity=self.nonlinearity)
        return self._finish(out[0], unbatched)


class LSTMCell(RNNCellBase):
    """``LSTMCell(input_size, hidden_size, bias=True)``; forward(input, (h, c)=None) -> (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=None, generator=None):
        super().__init__(input_size, hidden_size, bias, 4, dtype, generator)

    def forward(self, input, hx=None):
        x, (h, c), unbatched = self._prepare(input, hx, 2)
        packed = R.LSTMLayer.apply(x, h, c, *self._weights())
        return self._finish(packed[0], unbatched), self._finish(packed[1], unbatched)


class GRUCell(RNNCellBase):
    """``GRUCell(input_size, hidden_size, bias=True)``; forward(input, h=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=None, generator=None):
        super().__init__(input_size, hidden_size, bias, 3, dtype, generator)

    def forward(self, input, hx=None):
        x, (h,), unbatched = self._prepare(input, hx, 1)
        out = R.GRULayer.apply(x, h, *self._weights())
        return self._finish(out[0], unbatched)
