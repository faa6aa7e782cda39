"""flex_attention's ``score_mod`` / ``mask_mod`` functions: how distnn calls them, and PyTorch's helpers on
them (``noop_mask``, ``and_masks``, ``or_masks``, ``create_mask``).

PyTorch calls a mod through four nested ``torch.vmap``s, one scalar (b, h, q_idx, kv_idx) at a time. distnn
calls it once, on index Tensors that broadcast against each other: ``b`` (B, 1, 1, 1), ``h`` (1, H, 1, 1),
``q_idx`` (1, 1, Q, 1), ``kv_idx`` (1, 1, 1, KV) (int64, as PyTorch's eager ``arange``), and the score
(B, H, Q, KV). Mods written elementwise (arithmetic, comparisons, ``&``/``|``, ``where``, indexing a table with
index Tensors: ``bias[q_idx - kv_idx]``, ``document_id[q_idx]``) give what the vmapped calls give; a mod that
branches in Python on an index's value (``if q_idx > 3``) works in neither.
"""
from __future__ import annotations

import inspect

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_device

__all__ = ["noop_mask", "and_masks", "or_masks", "create_mask"]


def mod_arity(fn):
    """4 for a mask_mod, 5 for a score_mod: the positional parameters without defaults, as PyTorch counts them
    (its AssertionError for another count)."""
    if hasattr(fn, "__code__"):
        n = fn.__code__.co_argcount - len(getattr(fn, "__defaults__", None) or ())
    else:
        n = sum(1 for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty)
    if n not in (4, 5):
        raise AssertionError(f"Expected 4 or 5 positional args, got {n}")
    return n


def index_tensors(B, H, Q, KV, xp=np):
    """(b, h, q_idx, kv_idx): int64 aranges shaped (B,1,1,1), (1,H,1,1), (1,1,Q,1), (1,1,1,KV) on ``xp``."""
    return tuple(Tensor(xp.arange(n, dtype=np.int64).reshape([n if i == axis else 1 for i in range(4)]))
                 for axis, n in enumerate((B, H, Q, KV)))


def evaluate_mask(mask_mod, idx, shape, xp):
    """``mask_mod`` on the index Tensors, as a bool array of ``shape`` (B, H, Q, KV)."""
    out = mask_mod(*idx)
    raw = xp.asarray(out.data if isinstance(out, Tensor) else out)
    if raw.dtype != bool:  # (PyTorch's create_block_mask AssertionError; its torch.where refuses it too)
        raise AssertionError(f"mask.dtype must be bool, got {raw.dtype}: mask_mod must return a bool tensor "
                             f"(True: attend)")
    try:
        return xp.broadcast_to(raw, shape)
    except ValueError:
        raise RuntimeError(f"mask_mod returned shape {tuple(raw.shape)}, which does not broadcast to the scores' "
                           f"{tuple(shape)}: write it elementwise on b, h, q_idx, kv_idx") from None


def noop_mask(batch, head, token_q, token_kv):
    """The mask_mod that masks nothing: a True scalar (PyTorch's ``noop_mask``)."""
    return batch.new_ones((), dtype=bool)


def _check_callables(mask_mods):
    if not all(callable(m) for m in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")


def or_masks(*mask_mods):
    """The mask_mod that allows what any of ``mask_mods`` allows (PyTorch's ``or_masks``; none: all masked)."""
    _check_callables(mask_mods)

    def or_mask(b, h, q_idx, kv_idx):
        result = b.new_zeros((), dtype=bool)
        for mask in mask_mods:
            result = result | mask(b, h, q_idx, kv_idx)
        return result

    return or_mask


def and_masks(*mask_mods):
    """The mask_mod that allows what all of ``mask_mods`` allow (PyTorch's ``and_masks``; none: all allowed)."""
    _check_callables(mask_mods)

    def and_mask(b, h, q_idx, kv_idx):
        result = b.new_ones((), dtype=bool)
        for mask in mask_mods:
            result = result & mask(b, h, q_idx, kv_idx)
        return result

    return and_mask


def _array_module(device):
    """numpy or cupy for ``device`` (None: distnn's default device)."""
    from distnn.default_device import get_default_device

    device = get_default_device() if device is None else str(device)
    return get_array_module(to_device(np.zeros(0), device))


def create_mask(mod_fn, B, H, Q_LEN, KV_LEN, device=None):
    """The bool (B, H, Q_LEN, KV_LEN) Tensor of ``mod_fn`` (PyTorch's ``create_mask``): a mask_mod's values,
    or, for a score_mod, True where it leaves a zero score finite (not -inf). B or H None counts as 1."""
    B, H = 1 if B is None else B, 1 if H is None else H
    xp = _array_module(device)
    idx = index_tensors(B, H, Q_LEN, KV_LEN, xp)
    shape = (B, H, Q_LEN, KV_LEN)
    if mod_arity(mod_fn) == 5:
        out = mod_fn(Tensor(xp.zeros(shape, dtype=np.float32)), *idx)
        raw = xp.broadcast_to(xp.asarray(out.data if isinstance(out, Tensor) else out), shape)
        return Tensor(~xp.isneginf(raw))
    return Tensor(xp.array(evaluate_mask(mod_fn, idx, shape, xp)))
