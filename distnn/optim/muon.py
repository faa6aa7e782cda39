"""Muon (``torch.optim.Muon``): momentum SGD whose step for a weight matrix is the momentum orthogonalized by a
Newton-Schulz iteration (Keller Jordan's, with PyTorch's defaults), for the 2-D weights of hidden layers.

At each step, for a parameter ``W`` of shape (A, B) with gradient ``G`` (``mu`` the momentum)::

    M  = lerp(M, G, 1 - mu)                        (state 'momentum_buffer': mu * M + (1 - mu) * G)
    U  = lerp(G, M, mu) if nesterov else M
    O  = NS(U)                                     (ns_steps iterations below, on X = U / max(||U||_F, eps),
                                                    transposed first when A > B so that X X^T is the small Gram)
         X <- a X + (b S + c S S) X,  S = X X^T
    W  = W * (1 - lr * weight_decay)               (decoupled weight decay)
    W  = W - lr * ratio * O                        (ratio: sqrt(max(1, A / B)) for adjust_lr_fn None/'original',
                                                    0.2 * sqrt(max(A, B)) for 'match_rms_adamw')

One difference from PyTorch: its Newton-Schulz iteration runs in bfloat16 (the speed of its GPU kernels), which
numpy and cupy do not have; here it runs in the parameter's dtype, so the orthogonalized step is PyTorch's up to
bfloat16 rounding (a few parts in a thousand) and otherwise the same arithmetic.
"""
from __future__ import annotations

import math

from distnn.backend import get_array_module

from .optimizer import Optimizer, _is_real, check_hyperparameter, check_non_negative

__all__ = ["Muon"]

DEFAULT_A, DEFAULT_B, DEFAULT_C = 3.4445, -4.7750, 2.0315
DEFAULT_NS_STEPS = 5
EPS = 1e-7
ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def zeropower_via_newtonschulz(g, ns_coefficients, ns_steps: int, eps: float):
    """The approximate orthogonalization ``U S' V^T`` (``S'`` near the identity) of the matrix ``g = U S V^T``:
    ``ns_steps`` quintic Newton-Schulz iterations with coefficients ``(a, b, c)`` (PyTorch's
    ``_zeropower_via_newtonschulz``, in ``g``'s dtype). A new array; ``g`` is not changed."""
    xp = get_array_module(g)
    a, b, c = ns_coefficients
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    x = x / max(float(xp.sqrt(xp.sum(x * x))), eps)  # Frobenius norm >= spectral norm: singular values <= 1
    for _ in range(ns_steps):
        gram = x @ x.T
        gram_update = b * gram + c * (gram @ gram)  # torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = a * x + gram_update @ x  # torch.addmm(x, gram_update, x, beta=a)
    return x.T if tall else x


def adjust_lr(lr: float, adjust_lr_fn, shape) -> float:
    """The rate for a parameter of ``shape``: scaled so that orthogonalized steps of rectangular matrices have a
    consistent RMS (PyTorch's ``_adjust_lr``)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


def _lerp(xp, start, end, weight: float):
    """``torch.lerp(start, end, weight)`` as a new array, by its two formulas (exact at ``weight == 1``)."""
    diff = end - start
    if weight < 0.5:
        return start + weight * diff
    return end - diff * (1 - weight)


class Muon(Optimizer):
    """``Muon(params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True, ns_coefficients=(3.4445, -4.775,
    2.0315), eps=1e-7, ns_steps=5, adjust_lr_fn=None)``, PyTorch's arguments, defaults and update (see the
    module's docstring; the Newton-Schulz iteration in the parameter's dtype, not bfloat16).

    Every parameter must be 2-D (a weight matrix), as in PyTorch: biases, norms' and embeddings' parameters
    belong to another optimizer (AdamW), e.g. ``Muon([p for p in ps if p.ndim == 2])`` beside
    ``AdamW([p for p in ps if p.ndim != 2])``. State per parameter: ``momentum_buffer``.
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients=(DEFAULT_A, DEFAULT_B, DEFAULT_C), eps: float = EPS,
                 ns_steps: int = DEFAULT_NS_STEPS, adjust_lr_fn: str | None = None):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        check_non_negative(group, "lr", "momentum", "weight_decay", "eps")
        if group["adjust_lr_fn"] not in ADJUST_LR_FNS:
            raise ValueError(f"Adjust learning rate function {group['adjust_lr_fn']} is not supported "
                             f"(expected None, 'original' or 'match_rms_adamw')")
        coefficients = group["ns_coefficients"]
        if isinstance(coefficients, list):  # (a group added later, or a state dict through JSON)
            coefficients = group["ns_coefficients"] = tuple(coefficients)
        if not (isinstance(coefficients, tuple) and len(coefficients) == 3 and all(map(_is_real, coefficients))):
            raise ValueError(f"Coefficients must be a tuple of exactly 3 values, got ns_coefficients={coefficients!r}")
        steps = group["ns_steps"]
        check_hyperparameter(isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0, "ns_steps",
                             steps, "must be a non-negative integer")
        if steps >= 100:
            raise ValueError(f"Number of steps must be less than 100 for computational efficiency, got ns_steps="
                             f"{steps}")
        for p in group["params"]:
            if p.data.ndim != 2:
                raise ValueError(f"Muon only supports 2D parameters whereas we found a parameter with size: "
                                 f"{tuple(p.data.shape)}")

    def _step_group(self, group):
        lr, wd, momentum = group["lr"], group["weight_decay"], group["momentum"]
        for p, state in self._params_with_grad(group):
            g = self._grad_array(p)
            xp = get_array_module(g)
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = self._zeros_like(p)
            buf[...] = _lerp(xp, buf, g, 1 - momentum)
            update = _lerp(xp, g, buf, momentum) if group["nesterov"] else buf
            update = zeropower_via_newtonschulz(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
            p.data *= 1 - lr * wd
            p.data += (-adjust_lr(lr, group["adjust_lr_fn"], p.data.shape)) * update
