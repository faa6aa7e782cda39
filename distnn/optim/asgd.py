"""ASGD (``torch.optim.ASGD``): SGD with a decaying rate and a running (Polyak-Ruppert) average of the
iterates (Polyak & Juditsky, 1992), as PyTorch implements it.

At step t, with ``d = g + weight_decay * p`` (``-g`` when maximizing), and ``eta``/``mu`` from the
previous step (``lr`` and 1 at the first)::

    p   = p * (1 - lambd * eta) - eta * d
    ax  = ax + mu * (p - ax)           (ax = p while mu is 1)
    eta = lr / (1 + lambd * lr * t)^alpha
    mu  = 1 / max(1, t - t0)

``ax`` (state) is the averaged parameter; the optimizer steps ``p``, as
PyTorch's does (swap ``ax`` in for evaluation yourself). ``eta`` and ``mu``
are Python floats (double precision); PyTorch keeps them as 0-d tensors of its
default dtype, float32 unless that is set to float64.
"""
from __future__ import annotations

from .optimizer import Optimizer, check_hyperparameter, check_non_negative, _is_real, grad_with_decay

__all__ = ["ASGD"]


def _asgd_kernel(xp, p, g, ax, s1, *, eta, lambd, mu, weight_decay, maximize):
    d = grad_with_decay(xp, p, g, weight_decay, maximize, s1)
    p *= 1 - lambd * eta
    xp.multiply(d, -eta, out=s1)
    p += s1
    if mu != 1:
        xp.subtract(p, ax, out=s1)
        s1 *= mu
        ax += s1
    else:
        xp.copyto(ax, p)


class ASGD(Optimizer):
    """``ASGD(params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, *, maximize=False)``.

    State per parameter: ``step``, ``eta``, ``mu`` (floats) and ``ax`` (PyTorch's names).
    """

    _scalar_state = ("eta", "mu")

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0.0, *, maximize: bool = False):
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        check_non_negative(group, "lr", "weight_decay")
        for key in ("lambd", "alpha", "t0"):  # (PyTorch checks none of them; a string failed mid-step)
            check_hyperparameter(_is_real(group[key]), key, group[key], "must be a number")

    def _step_group(self, group):
        lr, lambd = group["lr"], group["lambd"]
        for p, state in self._params_with_grad(group):
            if not state:
                state["step"] = 0
                state["eta"] = float(lr)
                state["mu"] = 1.0
                state["ax"] = self._zeros_like(p)
            state["step"] += 1
            self._foreach_chunk(_asgd_kernel, [p.data, self._grad_array(p), state["ax"]], 1,
                                eta=float(state["eta"]), lambd=lambd, mu=float(state["mu"]),
                                weight_decay=group["weight_decay"], maximize=group["maximize"])
            t = state["step"]
            state["eta"] = lr / ((1 + lambd * lr * t) ** group["alpha"])
            state["mu"] = 1 / max(1, t - group["t0"])
