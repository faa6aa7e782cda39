"""Hyperparameter checks for optimizers' param groups: ``required``, and range checks whose error names the value.

Split out of :mod:`distnn.optim.optimizer` (which still exports every name here).
"""
from __future__ import annotations

import numpy as np

__all__ = ["required", "check_hyperparameter", "check_non_negative", "betas_tuple", "check_betas"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


def check_hyperparameter(ok: bool, name: str, value, requirement: str) -> None:
    """Raise ``ValueError`` naming the hyperparameter when ``ok`` is false."""
    if not ok:
        raise ValueError(f"Invalid {name}: {value!r} ({requirement})")


_LONG_NAMES = {"lr": "learning rate lr", "eps": "epsilon eps"}


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def check_non_negative(group: dict, *keys: str) -> None:
    """The usual ``>= 0`` checks (lr, eps, weight_decay, ...) on a param group, one error naming the first bad key."""
    for key in keys:
        v = group[key]
        name = _LONG_NAMES.get(key, key)
        check_hyperparameter(_is_real(v), name, v, "must be a number")
        check_hyperparameter(v >= 0, name, v, "must be >= 0")


def betas_tuple(betas):
    """``betas`` as a tuple when it is a sequence (anything else is left for :func:`check_betas` to name)."""
    return tuple(betas) if isinstance(betas, (tuple, list)) else betas


def check_betas(betas) -> None:
    """Adam-style ``(beta1, beta2)``: each in [0, 1)."""
    check_hyperparameter(isinstance(betas, (tuple, list)) and len(betas) == 2, "betas", betas,
                         "must be a pair (beta1, beta2)")
    for i, b in enumerate(betas):
        name = f"beta parameter at index {i} (betas[{i}])"
        check_hyperparameter(_is_real(b), name, b, "must be a number")
        check_hyperparameter(0.0 <= b < 1.0, name, b, "must be in [0, 1)")

