"""Adadelta (``torch.optim.Adadelta``): steps in the units of the parameters, from running averages of
squared gradients and squared updates (Zeiler, 2012).

With ``d = g + weight_decay * p`` (``-g`` when maximizing)::

    v     = rho * v + (1 - rho) * d*d                          (state 'square_avg')
    delta = sqrt(u + eps) / sqrt(v + eps) * d
    u     = rho * u + (1 - rho) * delta*delta                  (state 'acc_delta')
    p     = p - lr * delta
"""
from __future__ import annotations

from .optimizer import Optimizer, check_hyperparameter, check_non_negative, grad_with_decay

__all__ = ["Adadelta"]


def _adadelta_kernel(xp, p, g, v, u, s1, s2, s3, *, lr, rho, eps, weight_decay, maximize):
    d = grad_with_decay(xp, p, g, weight_decay, maximize, s1)
    v *= rho
    xp.multiply(d, d, out=s2)
    s2 *= 1 - rho
    v += s2
    xp.add(v, eps, out=s2)
    xp.sqrt(s2, out=s2)  # std
    xp.add(u, eps, out=s3)
    xp.sqrt(s3, out=s3)
    s3 /= s2
    s3 *= d  # delta
    u *= rho
    xp.multiply(s3, s3, out=s2)
    s2 *= 1 - rho
    u += s2
    s3 *= -lr
    p += s3


class Adadelta(Optimizer):
    """``Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False)``.

    State per parameter: ``step``, ``square_avg`` and ``acc_delta`` (PyTorch's names).
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
                 *, maximize: bool = False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        check_non_negative(group, "lr", "rho", "eps", "weight_decay")
        check_hyperparameter(group["rho"] <= 1.0, "rho", group["rho"], "must be in [0, 1]")

    def _step_group(self, group):
        for p, state in self._params_with_grad(group):
            if not state:
                state["step"] = 0
                state["square_avg"] = self._zeros_like(p)
                state["acc_delta"] = self._zeros_like(p)
            state["step"] += 1
            self._foreach_chunk(_adadelta_kernel,
                                [p.data, self._grad_array(p), state["square_avg"], state["acc_delta"]], 3,
                                lr=group["lr"], rho=group["rho"], eps=group["eps"],
                                weight_decay=group["weight_decay"], maximize=group["maximize"])
