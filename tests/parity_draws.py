"""Inputs and gradients the copy_ and item-assignment parity tests draw alike for distnn and PyTorch."""
import numpy as np


def draw(rng, shape, dtype):
    """Standard normal values of ``dtype`` (complex: real and imaginary parts drawn in turn)."""
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def grad_of(t):
    """``t.grad`` as (dtype name, nested list), None without one (distnn's or PyTorch's tensor)."""
    if t.grad is None:
        return None
    g = t.grad.numpy() if hasattr(t.grad, "numpy") else np.asarray(t.grad)
    return g.dtype.name, g.tolist()
