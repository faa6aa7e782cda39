"""LARS: layer-wise adaptive rate scaling for large-batch SGD (You, Gitman & Ginsburg, 2017).

Each parameter tensor (a "layer") gets its own local learning rate, the trust
ratio, so that its update is a fixed fraction of its weight norm whatever the
gradient scale -- which is what lets data-parallel runs with very large global
batches keep a large global learning rate stable::

    d     = g + weight_decay * w
    trust = trust_coefficient * ||w|| / (||g|| + weight_decay * ||w|| + eps)
            (1 when ||w|| or ||g|| is 0, or in a group with layer_adaptation=False)
    buf   = momentum * buf + trust * d
    w     = w - lr * buf                      (w - lr * (trust*d + momentum*buf) with nesterov)

The paper folds the global rate into the buffer (``v = m*v + lr*trust*d;
w -= v``); that is the same trajectory for a constant ``lr``. Keeping ``lr``
outside the buffer, as ``torch.optim.SGD`` does, makes a schedule change act
at once. Biases and normalization parameters are usually excluded from both
weight decay and adaptation: put them in a group with ``weight_decay=0`` and
``layer_adaptation=False`` (see ``param_groups_no_decay(..., no_decay_extra=
{"layer_adaptation": False})``); such a group is plain SGD with momentum.
"""
from __future__ import annotations

import math

from .optimizer import (
    Optimizer, check_hyperparameter, check_non_negative, chunk_sum_of_squares, grad_with_decay, required,
)
from .sgd import apply_momentum_update

__all__ = ["LARS"]


def _norms_kernel(xp, p, g, s1):
    return chunk_sum_of_squares(xp, p, s1), chunk_sum_of_squares(xp, g, s1)


def _lars_kernel(xp, p, g, buf, s1, s2, *, lr, weight_decay, momentum, nesterov, trust):
    d = grad_with_decay(xp, p, g, weight_decay, False, s1)
    if trust != 1.0:
        xp.multiply(d, trust, out=s1)
        d = s1
    if momentum != 0:
        buf *= momentum
        buf += d
    apply_momentum_update(xp, p, d, buf, s2, lr, momentum, nesterov)


class LARS(Optimizer):
    """``LARS(params, lr, momentum=0.9, weight_decay=0, trust_coefficient=0.001, eps=1e-8, nesterov=False,
    *, layer_adaptation=True)``. State per parameter: ``momentum_buffer`` (starts at zero)."""

    def __init__(self, params, lr: float = required, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust_coefficient: float = 0.001, eps: float = 1e-8, nesterov: bool = False, *,
                 layer_adaptation: bool = True):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coefficient=trust_coefficient,
                        eps=eps, nesterov=nesterov, layer_adaptation=layer_adaptation)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        check_non_negative(group, "lr", "momentum", "weight_decay", "eps")
        check_hyperparameter(group["trust_coefficient"] > 0, "trust_coefficient", group["trust_coefficient"],
                             "must be > 0")
        if group["nesterov"] and group["momentum"] <= 0:
            raise ValueError(f"Nesterov momentum requires a momentum > 0 (got momentum={group['momentum']!r})")

    @staticmethod
    def trust_ratio(w_norm: float, g_norm: float, weight_decay: float, trust_coefficient: float,
                    eps: float) -> float:
        """The layer's local learning-rate multiplier (1 when either norm is zero)."""
        if w_norm > 0 and g_norm > 0:
            return trust_coefficient * w_norm / (g_norm + weight_decay * w_norm + eps)
        return 1.0

    def _step_group(self, group):
        for p, state in self._params_with_grad(group, skip_empty=True):
            g = self._grad_array(p)
            if group["momentum"] != 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = self._zeros_like(p)
            trust = 1.0
            if group["layer_adaptation"]:
                w_sq, g_sq = self._foreach_chunk(_norms_kernel, [p.data, g], 1)
                trust = self.trust_ratio(math.sqrt(w_sq), math.sqrt(g_sq),
                                         group["weight_decay"], group["trust_coefficient"], group["eps"])
            state["trust_ratio"] = trust  # last value, for logging
            self._foreach_chunk(_lars_kernel, [p.data, g, state.get("momentum_buffer")], 2,
                                lr=group["lr"], weight_decay=group["weight_decay"], momentum=group["momentum"],
                                nesterov=group["nesterov"], trust=trust)
