"""Adversarial examples and adversarial training (Goodfellow, Shlens and Szegedy, 2015).

The fast gradient sign method (FGSM) moves every input component by ``eps``
in the direction that increases the loss::

    x_adv = x + eps * sign(grad_x J(theta, x, y))

and adversarial training minimises ``alpha * J(x) + (1 - alpha) * J(x_adv)``
(``alpha = 0.5`` in the paper), with ``x_adv`` recomputed from the current
weights at every step. :func:`fgsm` is the library function; the
:class:`~distnn.train.trainer.Trainer` applies the objective with
``adversarial_eps`` / ``adversarial_weight`` (config keys
``train.adversarial_eps`` and ``train.adversarial_weight``).
"""
from __future__ import annotations

import math

import numpy as np

from distnn.autograd import Tensor, enable_grad
from distnn.backend import get_array_module


def fgsm(model, loss_fn, x, y, eps: float, clamp=None):
    """FGSM adversarial inputs ``x + eps * sign(grad_x loss_fn(model(x), y))``.

    ``model`` runs in its current mode (``train()``: dropout and batch
    statistics as in training, and batch-norm layers update their running
    statistics, as a PyTorch model would); a
    :class:`~distnn.distributed.DataParallel` wrapper is unwrapped, so the
    pass counts no samples and starts no gradient exchange. ``loss_fn(output,
    y)`` returns a scalar Tensor (e.g. ``distnn.functional.cross_entropy``).
    ``x`` is an array or a Tensor of floating-point inputs; ``clamp=(lo, hi)``
    clips the result to the valid input range (e.g. ``(0, 1)`` for raw
    pixels; None: no clipping). Returns the perturbed inputs as an array of
    ``x``'s type (a Tensor that requires no gradient when ``x`` is a Tensor).

    Parameter gradients are untouched: during the pass the parameters do not
    require gradients, so backward reaches the input alone (no ``p.grad`` is
    written, no gradient hook fires, and no weight gradient is computed). Not
    safe while another thread runs the same model object.
    """
    eps = float(eps)
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"fgsm: eps must be a finite number >= 0, got {eps!r}")
    from distnn.distributed.data_parallel import DataParallel

    module = model.module if isinstance(model, DataParallel) else model
    data = x.data if isinstance(x, Tensor) else x
    if data.dtype.kind != "f":
        raise TypeError(f"fgsm perturbs floating-point inputs, got dtype {data.dtype} (token ids cannot move by "
                        "eps: adversarial training needs a model with real-valued inputs)")
    xp = get_array_module(data)
    # a copy: the input is a leaf that requires a gradient, which an in-place op of the model must not change
    inp = Tensor(xp.array(data, copy=True), requires_grad=True)
    frozen = [p for p in module.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad = False
    try:
        with enable_grad():
            loss = loss_fn(module(inp), y)
            loss.backward()
    finally:
        for p in frozen:
            p.requires_grad = True
    if inp.grad is None:
        raise RuntimeError("fgsm: the loss does not depend on the input (no gradient reached it)")
    step = xp.sign(inp.grad)
    if xp is not np:  # cupy's sign(NaN) is 0, numpy's and PyTorch's NaN: a NaN gradient would leave x unmoved
        step = xp.where(xp.isnan(inp.grad), inp.grad, step)
    adv = data + eps * step.astype(data.dtype, copy=False)
    if clamp is not None:
        lo, hi = clamp[0], clamp[1]
        if xp is not np:  # host array bounds (per-feature ranges) go beside the inputs: cupy refuses a numpy operand
            lo, hi = (xp.asarray(b) if isinstance(b, np.ndarray) else b for b in (lo, hi))
        adv = xp.clip(adv, lo, hi)
    return Tensor(adv) if isinstance(x, Tensor) else adv


def check_adversarial(eps, weight, input_dtype=None) -> tuple[float, float]:
    """``(eps, weight)`` as floats, or a ValueError naming the bad one.

    ``eps`` >= 0 (0: off); ``weight`` (alpha, the clean loss's share) in [0, 1]; with ``eps`` on, the
    training inputs' ``input_dtype`` (when given) must be floating point.
    """
    eps, weight = float(eps or 0.0), float(weight)
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"adversarial_eps must be a finite number >= 0 (0 = off), got {eps!r}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"adversarial_weight (the clean loss's share alpha) must be in [0, 1], got {weight!r}")
    if eps and input_dtype is not None and np.dtype(input_dtype).kind != "f":
        raise ValueError(f"adversarial_eps = {eps} perturbs real-valued inputs; these training inputs are "
                         f"{np.dtype(input_dtype)} (token ids): set train.adversarial_eps = 0")
    return eps, weight
