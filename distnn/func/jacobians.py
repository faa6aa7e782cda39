"""torch.func's Jacobians: ``jacrev``, ``jacfwd`` and ``hessian``, with torch's signatures and nesting.

The Jacobian of output ``o`` with respect to input ``x`` has shape ``o.shape + x.shape``; with pytrees, the
result is nested as the output, each output leaf holding the Jacobians nested as the differentiated arguments
(one argument's pytree for an int ``argnums``, a tuple of them for a tuple). One reverse pass per output
element, as :func:`distnn.autograd.functional.jacobian` (whose row stacking this reuses); inside another
transform the rows keep their graph, so ``jacrev(jacrev(f))`` and ``hessian`` differentiate them again.
"""
from __future__ import annotations

import functools

from distnn.autograd.functional import _stack_rows
from distnn.autograd.grad_mode import enable_grad
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import _pytree
from ._tracking import detached, reaches_outside, split_aux, track_argnums
from .grad_transforms import _grads
from .randomness import check_randomness, refuse_random


def _jacobian(func, argnums, has_aux, what):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with enable_grad():
            tracked, args, in_spec = track_argnums(args, argnums)
            result = func(*args, **kwargs)
            output, aux = split_aux(result, f"{what}(f)(*args)") if has_aux else (result, None)
            outs, out_spec = _pytree.flatten(output)
            for o in outs:
                if not isinstance(o, Tensor):
                    raise RuntimeError(f"{what}(f)(*args): Expected f(*args) to return only tensors, got "
                                       f"unsupported type {type(o)}")
            keep = reaches_outside(outs, tracked)
            blocks = [_blocks(o, tracked, keep) for o in outs]
        jac = _pytree.unflatten([_pytree.unflatten(b, in_spec) for b in blocks], out_spec)
        return (jac, detached(aux, keep)) if has_aux else jac

    return wrapper


def _blocks(out, inputs, keep):
    """The Jacobian blocks of ``out`` with respect to each of ``inputs`` (``out.shape + input.shape``)."""
    xp = get_array_module(out.data)
    rows = [[] for _ in inputs]
    onehot = xp.zeros(out.shape, dtype=out.dtype)
    flat = onehot.reshape(-1)  # (a view: one entry set per pass)
    for k in range(out.numel()):
        flat[k] = 1
        for j, g in enumerate(_grads([out], inputs, [Tensor(onehot.copy())], keep)):
            rows[j].append(g if keep else g.data)
        flat[k] = 0
    return [_stack_rows(r, out, inp, keep) for r, inp in zip(rows, inputs)]


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None):
    """``torch.func.jacrev``: a function returning the Jacobian of ``func`` with respect to the ``argnums``
    arguments (``(jacobian, aux)`` with ``has_aux=True``), by reverse mode (module docstring for shapes).
    ``chunk_size`` (None or a positive int) is accepted as torch's; the rows are computed one at a time."""
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")
    return _jacobian(func, argnums, has_aux, "jacrev")


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """``torch.func.jacfwd``: the same Jacobian as :func:`jacrev` (torch's values, shapes and nesting).

    distnn has no forward-mode AD, so it is computed by reverse mode too (one pass per output element, where
    torch's takes one per input element). ``randomness`` is checked as torch's; with ``"error"`` a random op in
    ``func`` is refused (torch vmaps ``func`` over the tangents), ``"same"``/``"different"`` allow it.
    """
    check_randomness(randomness)
    inner = _jacobian(func, argnums, has_aux, "jacfwd")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if randomness == "error":
            with refuse_random():
                return inner(*args, **kwargs)
        return inner(*args, **kwargs)

    return wrapper


def hessian(func, argnums=0):
    """``torch.func.hessian``: the Jacobian of the Jacobian of ``func`` (``jacfwd(jacrev(func, argnums),
    argnums)``, as torch's): for a scalar ``func`` of one Tensor ``x``, shape ``x.shape + x.shape``. Needs the
    double backward of every op ``func`` uses (:mod:`distnn.autograd.derivatives`)."""
    return jacfwd(jacrev(func, argnums), argnums)


__all__ = ["jacrev", "jacfwd", "hessian"]
