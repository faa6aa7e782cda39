"""Adam and AdamW (``torch.optim.Adam`` / ``torch.optim.AdamW``).

At step t, with ``d = g (+ weight_decay * p for Adam; -g when maximizing)``::

    m = m + (1 - beta1) * (d - m)              (= beta1*m + (1-beta1)*d)
    v = beta2 * v + (1 - beta2) * d*d
    v_max = max(v_max, v)                      amsgrad only; used in place of v below
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

AdamW decays the weights directly instead (Loshchilov & Hutter):
``p = p * (1 - lr * weight_decay)`` before the update, gradient untouched.
The lecture notes' Adam is this without bias correction and eps.
"""
from __future__ import annotations

from . import fused_gpu
from .optimizer import Optimizer, betas_tuple, check_betas, check_non_negative, grad_with_decay

__all__ = ["Adam", "AdamW"]


def update_moments(xp, d, m, v, scratch, beta1, beta2) -> None:
    """Adam's moments in place: ``m += (1 - beta1) * (d - m)``, ``v = beta2 * v + (1 - beta2) * d*d``
    (``scratch``: a buffer of their shape). LAMB shares them."""
    xp.subtract(d, m, out=scratch)
    scratch *= 1 - beta1
    m += scratch
    v *= beta2
    xp.multiply(d, d, out=scratch)
    scratch *= 1 - beta2
    v += scratch


def _adam_kernel(xp, p, g, m, v, vmax, s1, s2, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
                 step_size, bias_correction2_sqrt):
    if decoupled:
        if weight_decay != 0:
            p *= 1 - lr * weight_decay
        d = grad_with_decay(xp, p, g, 0.0, maximize, s1)
    else:
        d = grad_with_decay(xp, p, g, weight_decay, maximize, s1)
    update_moments(xp, d, m, v, s2, beta1, beta2)
    if vmax is not None:
        xp.maximum(vmax, v, out=vmax)
        v = vmax
    xp.sqrt(v, out=s2)
    s2 /= bias_correction2_sqrt
    s2 += eps
    xp.divide(m, s2, out=s2)
    s2 *= -step_size
    p += s2


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *, maximize=False)``.

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq`` -- PyTorch's names.
    """

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, betas=betas_tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        check_non_negative(group, "lr", "eps", "weight_decay")
        check_betas(group["betas"])

    def _step_group(self, group):
        beta1, beta2 = group["betas"]
        for p, state in self._params_with_grad(group):
            if not state:
                state["step"] = 0
                state["exp_avg"] = self._zeros_like(p)
                state["exp_avg_sq"] = self._zeros_like(p)
            if group["amsgrad"] and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = self._zeros_like(p)
            state["step"] += 1
            t = state["step"]
            arrays = [p.data, self._grad_array(p), state["exp_avg"], state["exp_avg_sq"],
                      state["max_exp_avg_sq"] if group["amsgrad"] else None]
            scalars = dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                           weight_decay=group["weight_decay"], decoupled=self._decoupled, maximize=group["maximize"],
                           step_size=group["lr"] / (1 - beta1 ** t), bias_correction2_sqrt=(1 - beta2 ** t) ** 0.5)
            if fused_gpu.applies(p.data):  # one kernel launch on a GPU instead of 13
                fused_gpu.adam(*arrays, **scalars)
            else:
                self._foreach_chunk(_adam_kernel, arrays, 2, **scalars)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=1e-2, amsgrad=False, *, maximize=False)`` (``torch.optim.AdamW``)."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)
