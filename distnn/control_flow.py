"""``distnn.cond`` and ``distnn.while_loop``: PyTorch's structured control-flow operators (``torch.cond``,
``torch.while_loop``), run eagerly.

distnn has no compiler, so these are the Python ``if`` and ``while`` they stand for, with PyTorch's argument
checks and the checks on the results PyTorch makes when it traces them (it runs them under ``torch.compile`` even
in eager mode): an output may not alias an input, and ``while_loop``'s body must return as many leaves as it
carries, each tensor of the carried shape and dtype. Gradients flow through the branch (or the iterations) that
ran, as recorded ops always do.

One difference, as distnn does not trace: ``cond`` runs only the branch taken, so it does not compare the two
branches' outputs (PyTorch refuses branches whose outputs differ in structure or dtype before running either).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.func import _pytree

__all__ = ["cond", "while_loop"]


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer))


def _no_alias(outputs, inputs, op):
    """PyTorch's refusal of an output that is an input or a view of one (it shares the input's memory)."""
    ins = [x for x in inputs if isinstance(x, Tensor)]
    for out in outputs:
        if not isinstance(out, Tensor):
            continue
        for x in ins:
            if out is x or (out._vc is not None and out._vc is x._vc):  # (a view shares its base's counter)
                raise RuntimeError(f"{op}: an output aliases an input (it is the input or a view of it); higher "
                                   f"order ops do not support aliasing: return a clone (e.g. x.clone())")


def cond(pred, true_fn, false_fn, operands=()):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``, as ``torch.cond``.

    ``pred``: a Python bool (or number; then the branch simply runs, unchecked, as PyTorch's) or a tensor with
    one element. ``operands``: a tuple or list of (possibly nested dict/list/tuple of) tensors. The branch's
    outputs must be tensors or ints (nested as above), the tensors not aliasing the operands.
    """
    if isinstance(pred, (bool, int, float, np.bool_)):  # (PyTorch's eager case: no checks at all)
        return true_fn(*operands) if pred else false_fn(*operands)
    if not isinstance(pred, Tensor):
        raise RuntimeError(f"Expected pred to be bool or tensor, but got {pred}.")
    if pred.numel() != 1:
        raise RuntimeError(f"Expected pred to be bool or single-element tensor, but got {pred}.")
    if not callable(true_fn) or not callable(false_fn):
        raise RuntimeError("Expect both branches to be callable.")
    leaves = _pytree.flatten(operands)[0] if isinstance(operands, (tuple, list)) else None
    if leaves is None or not all(isinstance(x, Tensor) for x in leaves):
        raise RuntimeError("Expect operands to be a tuple of possibly nested dict/list/tuple that only consists of "
                           f"tensor leaves, but got {operands}.")
    out = (true_fn if bool(pred.item()) else false_fn)(*operands)
    outs = _pytree.flatten(out)[0]
    bad = [type(o).__name__ for o in outs if not (isinstance(o, Tensor) or _is_int(o))]
    if bad:
        raise RuntimeError(f"cond: expected the branch to return tensors or ints (possibly nested in dict/list/tuple), "
                           f"got leaves of type {', '.join(bad)}")
    _no_alias(outs, leaves, "cond")
    return out


def _truth(value) -> bool:
    """``cond_fn``'s answer: a bool or a boolean 0-d tensor, as PyTorch's."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, Tensor) and value.ndim == 0 and value.dtype == np.bool_:
        return bool(value.item())
    what = f"shape {tuple(value.shape)} and dtype {value.dtype}" if isinstance(value, Tensor) else type(value).__name__
    raise RuntimeError(f"while_loop: expected cond_fn to return a bool or a boolean scalar tensor, got {what}")


def _check_body(out, carried, inputs):
    """PyTorch's checks of one body output against the carried values: as many leaves, each tensor of the carried
    shape and dtype (an int stays an int), none aliasing the inputs."""
    outs = _pytree.flatten(out)[0]
    if len(outs) != len(carried):
        raise RuntimeError(f"Expected body_fn_output and carried_inputs to have same number of outputs but got "
                           f"{len(outs)} and {len(carried)}")
    for i, (o, c) in enumerate(zip(outs, carried)):
        if isinstance(c, Tensor):
            if not isinstance(o, Tensor):
                raise RuntimeError(f"Expected body_fn_output and carried_inputs to have same metadata but found: "
                                   f"pair[{i}] is a {type(o).__name__} where a tensor is carried")
            for what, a, b in (("shape", tuple(o.shape), tuple(c.shape)), ("dtype", o.dtype, c.dtype)):
                if a != b:
                    raise RuntimeError(f"Expected body_fn_output and carried_inputs to have same metadata but found: "
                                       f"pair[{i}] differ in '{what}: {a} vs {b}'")
        elif not (_is_int(o) or isinstance(o, Tensor) and o.ndim == 0 and o.dtype.kind in "iu"):
            raise RuntimeError(f"Expected body_fn_output and carried_inputs to have same metadata but found: "
                               f"pair[{i}] is a {type(o).__name__} where an int is carried")
    _no_alias(outs, inputs, "while_loop")
    return outs


def while_loop(cond_fn, body_fn, carried_inputs):
    """``val = carried_inputs; while cond_fn(*val): val = body_fn(*val); return val``, as ``torch.while_loop``.

    ``carried_inputs``: a tuple or list of (possibly nested dict/list/tuple of) tensors and ints. ``cond_fn``
    returns a bool or a boolean 0-d tensor; ``body_fn`` returns new values of the same leaves (each tensor of the
    carried shape and dtype, none an input or a view of one). The result is the last body output as returned (a
    tuple of the carried inputs when the body never ran).
    """
    if not callable(cond_fn) or not callable(body_fn):
        raise RuntimeError("Expect cond_fn and body_fn to be callable.")
    if not isinstance(carried_inputs, (tuple, list)):
        raise RuntimeError(f"Expect carried_inputs to be a tuple or list, got {type(carried_inputs).__name__}")
    carried = _pytree.flatten(carried_inputs)[0]
    if not all(isinstance(x, Tensor) or _is_int(x) for x in carried):
        raise RuntimeError("Expect carried_inputs to be a tuple of possibly nested dict/list/tuple that only"
                           f"consists of tensor or int leaves, but got {carried_inputs}.")
    val = result = tuple(carried_inputs)
    while _truth(cond_fn(*val)):
        result = body_fn(*val)
        _check_body(result, carried, _pytree.flatten(val)[0])
        val = result if isinstance(result, (tuple, list)) else (result,)
    return result
