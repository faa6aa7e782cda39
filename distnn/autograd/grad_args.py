"""The arguments of ``autograd.grad`` and ``autograd.backward`` (:mod:`.grad_api`): the tensors they take and
the seed gradients of their roots, checked as PyTorch checks them."""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module, to_numpy

from .tensor import Tensor


def _tensors(x, what: str) -> tuple:
    """``x`` (a Tensor or a sequence of them) as a tuple, refusing anything else."""
    items = (x,) if isinstance(x, Tensor) else x
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"{what}: expected a Tensor or a sequence of Tensors, got {type(x).__name__}")
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: element {i} is a {type(t).__name__}, not a Tensor")
    return tuple(items)


def _seeds(outputs: tuple, grad_outputs, batched: bool = False) -> list:
    """One gradient array per output (owned: copied, in the output's dtype), checked as PyTorch does."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = (grad_outputs,)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"got {len(outputs)} tensors and {len(grad_outputs)} gradients")
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        data = out.data
        xp = get_array_module(data)
        if g is None:
            if batched:
                raise RuntimeError("is_grads_batched=True needs grad_outputs for every output")
            if data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if data.dtype.kind == "c":
                raise RuntimeError("grad can be implicitly created only for real scalar outputs")
            seeds.append(xp.ones_like(data))
            continue
        g = g.data if isinstance(g, Tensor) else g
        if not hasattr(g, "shape") or get_array_module(g) is not xp:  # a number, a list, another device's array
            g = xp.asarray(to_numpy(g) if xp is np else g, dtype=data.dtype)
        want = tuple(data.shape) if not batched else tuple(g.shape[:1]) + tuple(data.shape)
        if tuple(g.shape) != want or (batched and g.ndim == 0):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and "
                               f"output[{i}] has a shape of {tuple(data.shape)}"
                               + (" (is_grads_batched=True: grad_output needs a leading batch dimension)"
                                  if batched else "") + ".")
        seeds.append(g.astype(data.dtype, copy=True))  # ours: the pass may hand it on
    return seeds
