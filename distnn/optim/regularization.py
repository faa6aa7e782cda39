"""L1/L2 penalties for a loss, and parameter groups that exempt biases and norm layers from decay.

The lecture notes: penalize the unrolled weight matrices (``sum W^2``, the
squared Frobenius norm, or ``sum |W|``), never the intercepts. Adding
``(lam / 2) * l2_penalty(weights)`` to the loss gives the same gradient as
``weight_decay=lam`` in SGD (not in AdamW, whose decay is decoupled).
"""
from __future__ import annotations

__all__ = ["l1_penalty", "l2_penalty", "split_decay_parameters", "param_groups_no_decay"]


def _as_list(params):
    if hasattr(params, "parameters") and callable(params.parameters):
        raise TypeError("pass the parameters to penalize (e.g. split_decay_parameters(model)[0]), not a Module: "
                        "biases and normalization parameters should not be penalized")
    if hasattr(params, "data") and hasattr(params, "grad"):
        return [params]
    params = list(params)
    if not params:
        raise ValueError("no parameters to penalize")
    return params


def l1_penalty(params):
    """``sum_p sum |p|`` as a distnn Tensor (backpropagates ``sign(p)``)."""
    total = None
    for p in _as_list(params):
        term = p.abs().sum()
        total = term if total is None else total + term
    return total


def l2_penalty(params):
    """``sum_p sum p**2`` (squared Frobenius norms, no 1/2) as a distnn Tensor (backpropagates ``2p``)."""
    total = None
    for p in _as_list(params):
        term = (p * p).sum()
        total = term if total is None else total + term
    return total


def _is_norm_module(module) -> bool:
    # BatchNorm1d/2d, SyncBatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm, ...
    return "Norm" in type(module).__name__


def split_decay_parameters(model):
    """``(decay, no_decay)`` lists of trainable parameters, in ``named_parameters()`` order.

    No decay for: parameters of normalization modules, 1-D (or 0-D)
    parameters, and any parameter whose name contains "bias".
    """
    norm_params = set()
    for _, module in model.named_modules():
        if _is_norm_module(module):
            norm_params.update(id(p) for p in module.parameters())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not getattr(p, "requires_grad", True):
            continue
        if id(p) in norm_params or p.data.ndim <= 1 or "bias" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return decay, no_decay


def param_groups_no_decay(model, weight_decay: float, no_decay_extra: dict | None = None) -> list:
    """Two optimizer param groups: weights with ``weight_decay``, biases and norm parameters with 0.

    ``no_decay_extra`` adds options to the second group, e.g.
    ``{"layer_adaptation": False}`` to also exclude them from LARS/LAMB trust
    ratios. Empty groups are left out.
    """
    if weight_decay < 0:
        raise ValueError(f"Invalid weight_decay: {weight_decay!r} (must be >= 0)")
    decay, no_decay = split_decay_parameters(model)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, **(no_decay_extra or {})})
    return groups
