"""Helpers shared by the distributions, as PyTorch's ``torch.distributions.utils``: ``broadcast_all``,
``probs_to_logits``/``logits_to_probs``, ``lazy_property``, and the draws from distnn's generators."""
from __future__ import annotations

import numbers

import numpy as np

import distnn
from distnn import random
from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, get_array_module


def broadcast_all(*values):
    """The values as tensors of one broadcast shape (differentiable). Numbers take the dtype of the tensors
    among them (all numbers: the default float dtype), as PyTorch's ``broadcast_all``."""
    if not all(isinstance(v, (Tensor, numbers.Number, np.ndarray)) for v in values):
        raise ValueError("Input arguments must all be instances of numbers.Number, torch.Tensor or objects "
                         "implementing __torch_function__.")
    like = next((v for v in values if isinstance(v, Tensor)), None)
    dtype = like.dtype if like is not None else default_dtype()
    xp = get_array_module(like.data) if like is not None else np
    tensors = [v if isinstance(v, Tensor) else
               Tensor(xp.asarray(v).astype(v.dtype if isinstance(v, np.ndarray) and v.dtype.kind == "f" else dtype))
               for v in values]
    return tuple(distnn.broadcast_tensors(*tensors)) if len(tensors) > 1 else (tensors[0],)


def as_tensor(value, like=None):
    """``value`` as a Tensor (a number or array takes ``like``'s dtype when given)."""
    if isinstance(value, Tensor):
        return value
    if like is not None:
        return Tensor(get_array_module(like.data).asarray(value).astype(like.dtype))
    return Tensor(np.asarray(value, dtype=default_dtype() if isinstance(value, numbers.Number) else None))


def clamp_probs(probs):
    """``probs`` kept inside (0, 1) by the dtype's epsilon (PyTorch's ``clamp_probs``)."""
    eps = float(np.finfo(probs.dtype).eps)
    return probs.clamp(min=eps, max=1 - eps)


def logits_to_probs(logits, is_binary=False):
    """Sigmoid of binary logits; else the softmax over the last dim."""
    return logits.sigmoid() if is_binary else distnn.softmax(logits, dim=-1)


def probs_to_logits(probs, is_binary=False):
    """``log p - log1p(-p)`` of binary probabilities; else ``log p`` (probabilities clamped off 0 and 1)."""
    ps_clamped = clamp_probs(probs)
    return ps_clamped.log() - (-ps_clamped).log1p() if is_binary else ps_clamped.log()


class lazy_property:  # noqa: N801 - PyTorch's name
    """A property computed on first use and then stored in the instance's ``__dict__`` (so ``probs`` given means
    ``logits`` is computed only if asked for, and ``repr`` shows only what was given, as PyTorch's)."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        with distnn.enable_grad():
            value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value



class BinaryProbsLogits:
    """Mixin of the distributions given one success probability by ``probs`` or by ``logits``: the other one is
    computed on first use (a ``lazy_property``), as PyTorch's Bernoulli, Binomial, Geometric, ... each write."""

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

def _device_array(like, array):
    """A host draw (float64) on ``like``'s device in ``like``'s dtype."""
    dtype = like.dtype if like.dtype.kind == "f" else default_dtype()
    return get_array_module(like.data).asarray(array).astype(dtype, copy=False)


def standard_normal(shape, like):
    """N(0, 1) draws of ``shape`` from distnn's default generator (see :func:`distnn.manual_seed`)."""
    return _device_array(like, random.default_generator().standard_normal(tuple(shape)))


def standard_uniform(shape, like):
    """U[0, 1) draws of ``shape`` from distnn's default generator."""
    return _device_array(like, random.default_generator().random(tuple(shape)))


def uniform_open(shape, like):
    """U(0, 1) draws kept off 0 by the dtype's smallest normal number (PyTorch's ``rand`` then ``clamp``), so
    that their log is finite."""
    u = standard_uniform(shape, like)
    tiny = float(np.finfo(u.dtype).tiny)
    return get_array_module(u).clip(u, tiny, 1 - float(np.finfo(u.dtype).eps))


def host(t):
    """A tensor's (or array's) values as a float64 numpy array on the host, for numpy's samplers."""
    return np.asarray(distnn.to_numpy(t), dtype=np.float64)


def generator():
    return random.default_generator()
