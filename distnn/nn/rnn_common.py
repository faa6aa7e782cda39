"""What the recurrent layers (``rnn.py``) and their single-step cells (``rnn_cells.py``) share: the
nonlinearity check, PyTorch's uniform initialisation, and the dtype checks of an input and an initial state
(each in the words PyTorch uses). Kept apart so that neither module imports the other.
"""
from __future__ import annotations

import math

import numpy as np

from distnn import random as drandom
from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.functional import rnn as R


def _check_nonlinearity(what, nonlinearity):
    if nonlinearity not in R.RNN_NONLINEARITIES:
        raise ValueError(f"{what}: nonlinearity must be 'tanh', 'relu' or 'sigmoid', got {nonlinearity!r}")


def _uniform_params(module, hidden_size, generator):
    """PyTorch's reset_parameters for RNNs: every parameter U(-1/sqrt(H), 1/sqrt(H))."""
    gen = generator if generator is not None else drandom.default_generator()
    k = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        p.data[...] = gen.uniform(-k, k, p.shape).astype(p.data.dtype)


def _check_dtype(module, x, error):
    """An input of another dtype than the weights (an integer one, or float32 into a float64 model) is refused
    as PyTorch refuses it: numpy would compute in the wider dtype, or fail deep in a gate's ufunc. The layers
    say so in PyTorch's RNN words (a ValueError), the cells in its matrix product's (a RuntimeError)."""
    want = module.weight_ih_l0.dtype if hasattr(module, "weight_ih_l0") else module.weight_ih.dtype
    if x.data.dtype == want:
        return
    if error is ValueError:
        # (PyTorch names the dtypes as its Python objects print: torch.float32)
        x_name, w_name = f"torch.{np.dtype(x.data.dtype).name}", f"torch.{np.dtype(want).name}"
        raise ValueError(f"{module.where()}: RNN input dtype ({x_name}) does not match weight dtype ({w_name}). "
                         f"Convert input: input.to({w_name}), or convert model: model.to({x_name})")
    raise RuntimeError(f"{module.where()}: mat1 and mat2 must have the same dtype, but got "
                       f"{torch_dtype_name(x.data.dtype)} and {torch_dtype_name(want)} (the input's dtype and the "
                       "weights': convert the input, e.g. input.to(weight_ih.dtype), or the model)")


def _check_state_dtype(module, h, name, want):
    """A given initial state of another dtype than the weights is refused, as PyTorch's matrix product refuses
    it (numpy would carry the wider dtype through the recurrence)."""
    if h.dtype != want:
        raise RuntimeError(f"{module.where()}: mat1 and mat2 must have the same dtype, but got "
                           f"{torch_dtype_name(h.dtype)} and {torch_dtype_name(want)} (the {name}'s dtype and the "
                           "weights': convert it, e.g. h.to(weight.dtype))")
