"""LAMB: layer-wise adaptive moments for large-batch training (You et al., 2019, Algorithm 2).

Adam's moments, then a per-tensor trust ratio that scales the whole update to
the size of the weights::

    m = beta1 * m + (1 - beta1) * g;    v = beta2 * v + (1 - beta2) * g*g
    r = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) + weight_decay * w
    trust = phi(||w||) / ||r||     (1 when either norm is 0, or layer_adaptation=False)
    w = w - lr * trust * r

``phi(z) = min(z, max_weight_norm)`` (identity by default). ``bias_correction=
False`` drops the ``1 - beta^t`` factors. Exclude biases and normalization
parameters with a group having ``weight_decay=0, layer_adaptation=False``.

The norm of ``r`` is needed before any element of ``w`` moves, so a step runs
over each tensor twice: the first pass updates the moments and accumulates
``||w||^2`` and ``||r||^2`` chunk by chunk, the second recomputes ``r`` (the
same operations on the same values, so the same bits) and applies it. That
costs a little arithmetic and saves a parameter-sized buffer.
"""
from __future__ import annotations

import math

from .adam_family import AdamFamily, update_moments as adam_moments
from .optimizer import betas_tuple, check_hyperparameter, chunk_sum_of_squares

__all__ = ["LAMB"]


def _lamb_kernel(xp, p, g, m, v, s1, s2, *, beta1, beta2, eps, weight_decay, bias_correction1,
                 bias_correction2_sqrt, update_moments, scale):
    if update_moments:
        adam_moments(xp, g, m, v, s2, beta1, beta2)
    xp.sqrt(v, out=s2)
    s2 /= bias_correction2_sqrt
    s2 += eps
    xp.divide(m, s2, out=s2)
    s2 /= bias_correction1
    if weight_decay != 0:
        xp.multiply(p, weight_decay, out=s1)
        s2 += s1
    if scale is None:  # first pass: norms only
        return chunk_sum_of_squares(xp, p, s1), chunk_sum_of_squares(xp, s2, s1)
    s2 *= -scale
    p += s2
    return None


class LAMB(AdamFamily):
    """``LAMB(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0, bias_correction=True,
    *, layer_adaptation=True, max_weight_norm=None)``.

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` (Adam's names) and
    the last ``trust_ratio`` (for logging).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0,
                 bias_correction: bool = True, *, layer_adaptation: bool = True, max_weight_norm=None):
        defaults = dict(lr=lr, betas=betas_tuple(betas), eps=eps, weight_decay=weight_decay,
                        bias_correction=bias_correction, layer_adaptation=layer_adaptation,
                        max_weight_norm=max_weight_norm)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        super()._validate_group(group)
        mwn = group["max_weight_norm"]
        check_hyperparameter(mwn is None or mwn > 0, "max_weight_norm", mwn, "must be None or > 0")

    @staticmethod
    def trust_ratio(w_norm: float, r_norm: float, max_weight_norm=None) -> float:
        """``phi(||w||) / ||r||``, or 1 when either norm is zero."""
        phi = w_norm if max_weight_norm is None else min(w_norm, max_weight_norm)
        if phi > 0 and r_norm > 0:
            return phi / r_norm
        return 1.0

    def _step_group(self, group):
        beta1, beta2 = group["betas"]
        for p, state in self._params_with_grad(group, skip_empty=True):
            g = self._grad_array(p)
            if "step" not in state:
                state.update(self._new_state(p))
            state["step"] += 1
            t = state["step"]
            hyper = dict(beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                         bias_correction1=(1 - beta1 ** t) if group["bias_correction"] else 1.0,
                         bias_correction2_sqrt=(1 - beta2 ** t) ** 0.5 if group["bias_correction"] else 1.0)
            arrays = [p.data, g, state["exp_avg"], state["exp_avg_sq"]]
            if group["layer_adaptation"]:
                w_sq, r_sq = self._foreach_chunk(_lamb_kernel, arrays, 2, update_moments=True, scale=None, **hyper)
                trust = self.trust_ratio(math.sqrt(w_sq), math.sqrt(r_sq), group["max_weight_norm"])
                self._foreach_chunk(_lamb_kernel, arrays, 2, update_moments=False, scale=group["lr"] * trust, **hyper)
            else:
                trust = 1.0
                self._foreach_chunk(_lamb_kernel, arrays, 2, update_moments=True, scale=group["lr"], **hyper)
            state["trust_ratio"] = trust
