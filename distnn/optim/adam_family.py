"""What the Adam family (Adam, AdamW, Adamax, NAdam, RAdam, LAMB) shares: the moment updates, the
decayed gradient they average, and a base class with their validation and per-parameter state.

Each member keeps its own kernel for the step itself, where the math differs.
"""
from __future__ import annotations

from .optimizer import Optimizer, check_betas, check_non_negative, grad_with_decay

__all__ = ["AdamFamily", "decayed_grad", "update_first_moment", "update_moments"]


def decayed_grad(xp, p, g, out, *, lr, weight_decay, decoupled, maximize):
    """The gradient the moments average, in ``out`` (or ``g`` itself when nothing changes it).

    ``decoupled`` (AdamW's weight decay): ``p *= 1 - lr * weight_decay`` here, in place, and the gradient
    is left alone; otherwise ``weight_decay * p`` is added to it (L2). ``-g`` when maximizing.
    """
    if decoupled:
        if weight_decay != 0:
            p *= 1 - lr * weight_decay
        return grad_with_decay(xp, p, g, 0.0, maximize, out)
    return grad_with_decay(xp, p, g, weight_decay, maximize, out)


def update_first_moment(xp, d, m, scratch, beta1) -> None:
    """``m += (1 - beta1) * (d - m)`` in place (= ``beta1*m + (1-beta1)*d``, PyTorch's ``lerp_``)."""
    xp.subtract(d, m, out=scratch)
    scratch *= 1 - beta1
    m += scratch


def update_moments(xp, d, m, v, scratch, beta1, beta2) -> None:
    """Adam's moments in place: ``m += (1 - beta1) * (d - m)``, ``v = beta2 * v + (1 - beta2) * d*d``
    (``scratch``: a buffer of their shape)."""
    update_first_moment(xp, d, m, scratch, beta1)
    v *= beta2
    xp.multiply(d, d, out=scratch)
    scratch *= 1 - beta2
    v += scratch


class AdamFamily(Optimizer):
    """Base of the optimizers with ``lr``, ``betas``, ``eps`` and ``weight_decay`` hyperparameters and the
    per-parameter state ``step``, ``exp_avg`` and a second moment named ``_second_moment``."""

    _second_moment = "exp_avg_sq"

    def _validate_group(self, group):
        check_non_negative(group, "lr", "eps", "weight_decay")
        check_betas(group["betas"])

    def _new_state(self, p) -> dict:
        """A parameter's state before its first step."""
        return {"step": 0, "exp_avg": self._zeros_like(p), self._second_moment: self._zeros_like(p)}

    def _count_step(self, p, state) -> int:
        """Make the state on the parameter's first step, count this step and return its number ``t``."""
        if not state:
            state.update(self._new_state(p))
        state["step"] += 1
        return state["step"]
