"""The pruning methods of ``torch.nn.utils.prune``: ``Identity``, ``RandomUnstructured``, ``L1Unstructured``,
``RandomStructured``, ``LnStructured`` and ``CustomFromMask``.

Each keeps what ``default_mask`` pruned already and prunes ``amount`` more (an int: that many units; a float:
that fraction, rounded): entries for the unstructured ones, whole channels along ``dim`` for the structured
ones. The L1 / Ln choices are PyTorch's topk (smallest entries, largest channel norms kept); among equal values
the lower index is taken first, where PyTorch's topk leaves the order unspecified. The random ones draw from
distnn's default generator (:func:`distnn.random.default_generator`; PyTorch's stream cannot be matched), so
every rank of a data-parallel run, seeded alike, prunes the same units.
"""
from __future__ import annotations

import numpy as np

from distnn import random as drandom
from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .base import (BasePruningMethod, _compute_nparams_toprune, _data, _validate_pruning_amount,
                   _validate_pruning_amount_init, _validate_pruning_dim, _validate_structured_pruning)

__all__ = ["CustomFromMask", "Identity", "L1Unstructured", "LnStructured", "RandomStructured", "RandomUnstructured"]


def _n_to_prune(amount, size) -> int:
    n = _compute_nparams_toprune(amount, size)
    _validate_pruning_amount(n, size)
    return n


def _channel_mask(t, dim, channels, default_mask):
    """Ones on the ``channels`` (indices along ``dim``) of ``t``'s shape, zeros elsewhere, times ``default_mask``."""
    xp = get_array_module(t)
    mask = xp.zeros_like(t)
    slc = [slice(None)] * t.ndim
    slc[dim] = xp.asarray(channels)
    mask[tuple(slc)] = 1
    return mask * _data(default_mask).astype(mask.dtype)


def _zero_the_smallest(default_mask, scores, k: int) -> Tensor:
    """A copy of ``default_mask`` with the entries of the ``k`` smallest ``scores`` (flat; stable order: the
    lower index first among equals, as topk would do here) set to 0: the unstructured methods' mask."""
    mask = _data(default_mask).copy()
    if k != 0:
        mask.reshape(-1)[get_array_module(scores).argsort(scores, kind="stable")[:k]] = 0
    return Tensor(mask)

class Identity(BasePruningMethod):
    """Prunes nothing: the reparametrization (``<name>_orig``, a mask of ones) without pruning."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):
        """Reparametrize ``module.<name>`` with a mask of ones."""
        return super().apply(module, name)


class RandomUnstructured(BasePruningMethod):
    """Prunes ``amount`` of the (unpruned) entries, chosen at random."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount) -> None:
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        t = _data(t)
        k = _n_to_prune(self.amount, t.size)
        scores = drandom.default_generator().random(t.size) if k != 0 else None
        return _zero_the_smallest(default_mask, get_array_module(t).asarray(scores) if k else None, k)

    @classmethod
    def apply(cls, module, name, amount):
        """Prune ``amount`` random entries of ``module.<name>``."""
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    """Prunes the ``amount`` (unpruned) entries of smallest absolute value (or importance score)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount) -> None:
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        t = _data(t)
        k = _n_to_prune(self.amount, t.size)
        return _zero_the_smallest(default_mask, get_array_module(t).abs(t).reshape(-1), k)  # (NaN: largest)

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        """Prune the ``amount`` entries of ``module.<name>`` of smallest magnitude (of ``importance_scores``)."""
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    """Prunes ``amount`` of the channels along ``dim`` (default -1), chosen at random."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1) -> None:
        _validate_pruning_amount_init(amount)
        self.amount, self.dim = amount, dim

    def compute_mask(self, t, default_mask):
        """Zero ``amount`` random channels along ``dim`` on top of ``default_mask``; IndexError for a ``dim``
        out of ``t``'s range, ValueError for a ``t`` of fewer than 2 dims."""
        t = _data(t)
        _validate_structured_pruning(t)
        _validate_pruning_dim(t, self.dim)
        n = t.shape[self.dim]
        k = _n_to_prune(self.amount, n)
        if k == 0:
            return default_mask
        keep = np.argsort(drandom.default_generator().random(n), kind="stable")[k:]
        return Tensor(_channel_mask(t, self.dim, np.sort(keep), default_mask))

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        """Prune ``amount`` random channels of ``module.<name>`` along ``dim``."""
        return super().apply(module, name, amount=amount, dim=dim)


def _compute_norm(t, n, dim):
    """The ``n``-norm of each channel of ``t`` along ``dim`` (over all the other dims), as ``torch.norm(t, p=n,
    dim=others)``: a number is a vector norm, 'fro' the 2-norm, 'nuc' (or 'fro' over more than 2 dims) a
    matrix norm, which needs exactly 2 other dims."""
    from distnn.linalg.norms import matrix_norm, vector_norm

    dim = dim % t.ndim
    dims = [d for d in range(t.ndim) if d != dim]
    with no_grad():
        if isinstance(n, str) and not (n == "fro" and len(dims) <= 2):
            return matrix_norm(Tensor(t), n, dims).data
        return vector_norm(Tensor(t), 2 if n == "fro" else n, dims).data


class LnStructured(BasePruningMethod):
    """Prunes the ``amount`` channels along ``dim`` (default -1) of smallest ``n``-norm (int, float, inf, -inf,
    'fro' or 'nuc', as ``torch.norm``'s ``p``)."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1) -> None:
        _validate_pruning_amount_init(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t, default_mask):
        """Zero the ``amount`` channels of smallest norm along ``dim`` on top of ``default_mask``; IndexError for
        a ``dim`` out of ``t``'s range, ValueError for a ``t`` of fewer than 2 dims."""
        t = _data(t)
        _validate_structured_pruning(t)
        _validate_pruning_dim(t, self.dim)
        n = t.shape[self.dim]
        k = _n_to_prune(self.amount, n)
        norm = _compute_norm(t, self.n, self.dim)
        if k == 0:
            return default_mask
        xp = get_array_module(norm)
        order = xp.argsort(xp.where(xp.isnan(norm), -np.inf, -norm), kind="stable")  # (largest first, NaN first)
        return Tensor(_channel_mask(t, self.dim, xp.sort(order[:n - k]), default_mask))

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        """Prune the ``amount`` channels of ``module.<name>`` along ``dim`` of smallest ``n``-norm (of
        ``importance_scores``)."""
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prunes where the given ``mask`` (the shape of the tensor) is 0."""

    PRUNING_TYPE = "global"

    def __init__(self, mask) -> None:
        self.mask = mask

    def compute_mask(self, t, default_mask):
        default = _data(default_mask)
        if tuple(default.shape) != tuple(self.mask.shape):
            raise AssertionError(f"default_mask shape {tuple(default.shape)} must match self.mask shape "
                                 f"{tuple(self.mask.shape)}")
        mine = get_array_module(default).asarray(_data(self.mask)).astype(default.dtype)
        return Tensor(default * mine)

    @classmethod
    def apply(cls, module, name, mask):
        """Prune ``module.<name>`` where ``mask`` is 0."""
        return super().apply(module, name, mask=mask)
