"""``torch.autograd.functional``'s second-order functions: ``hessian``, ``vhp``, ``hvp``, and ``jvp`` by the
double-vjp trick. Each differentiates a gradient computed with ``create_graph=True`` (see
:mod:`.derivatives`), so it works for the functions whose ops have graph backwards; another op is refused,
naming it.

Shapes, nesting, ``strict`` and ``create_graph`` are PyTorch's: results are detached unless
``create_graph=True``, which keeps them in the graph of the caller's inputs (and of ``v``).
"""
from __future__ import annotations

from distnn.backend import get_array_module

from .functional import _as_tuple, _BadStrategy, _check_outputs, _leaves, _nest, _stack_rows, _validate_v
from .functional import _zeros_for_none
from .grad_api import grad
from .grad_mode import enable_grad
from .tensor import Tensor


def _single_output(out, fn_name, strict):
    """``func``'s result, which must be one Tensor with one element (a scalar function), as PyTorch's."""
    is_tuple, outs = _as_tuple(out, "outputs of the user-provided function", fn_name)
    _check_outputs(outs, strict)
    if is_tuple:
        raise RuntimeError(f"The function given to {fn_name} should return a single Tensor")
    if out.numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {fn_name} should contain a single element")
    return out


def _grads(outputs, inputs, vs, create_graph):
    """grad of the outputs that require grad along ``vs`` (None per input when none does)."""
    pairs = [(o, v) for o, v in zip(outputs, vs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    return grad([o for o, _ in pairs], inputs, [v for _, v in pairs], retain_graph=True, create_graph=create_graph,
                allow_unused=True)


def _detached(results, create_graph):
    return results if create_graph else tuple(Tensor._make(r.data, None) for r in results)


def _v_for_inputs(v, inputs, is_inputs_tuple, fn_name):
    if v is not None:
        return _validate_v(v, inputs, is_inputs_tuple, fn_name)
    if len(inputs) != 1 or inputs[0].numel() != 1:
        raise RuntimeError("The vector v can only be None if the input to the user-provided function is a single "
                           "Tensor with a single element.")
    return (Tensor(get_array_module(inputs[0].data).ones_like(inputs[0].data)),)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of the scalar function ``func`` at ``inputs``, as ``torch.autograd.functional.hessian``.

    One input: a Tensor of shape ``inputs.shape * 2``; a tuple of ``n``: ``n`` tuples of ``n`` Tensors, block
    ``[i][j]`` of shape ``inputs[i].shape + inputs[j].shape``. Computed as the Jacobian of the gradient (one
    reverse pass per gradient element; ``vectorize`` gives the same values). Only
    ``outer_jacobian_strategy="reverse-mode"`` (no forward-mode AD).
    """
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise _BadStrategy('Expected strategy to be either "forward-mode" or "reverse-mode".')
    if outer_jacobian_strategy == "forward-mode":
        raise NotImplementedError('autograd.functional.hessian(outer_jacobian_strategy="forward-mode"): distnn has '
                                  'no forward-mode AD; use "reverse-mode"')
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
        inputs = _leaves(inputs, create_graph)
        out = _single_output(func(*inputs), "hessian", strict)
        jac = _grads((out,), inputs, (None,), True)
    rows_of = []
    for i, (g, inp) in enumerate(zip(jac, inputs)):
        if g is None and strict:
            raise RuntimeError(f"The output of the user-provided function is independent of input {i}. This is not "
                               "allowed in strict mode.")
        blocks = [[] for _ in inputs]
        xp = get_array_module(inp.data)
        onehot = xp.zeros(inp.shape, dtype=inp.dtype)
        flat = onehot.reshape(-1)  # (a view: one entry set per pass)
        for k in range(inp.numel()):
            flat[k] = 1
            second = _grads((g,), inputs, (onehot,), create_graph)  # (grad copies the seed: onehot can change)
            flat[k] = 0
            for j, (h, other) in enumerate(zip(second, inputs)):
                if h is None:
                    if strict:
                        raise RuntimeError(f"The hessian of the user-provided function with respect to input {i} is "
                                           f"independent of input {j}. This is not allowed in strict mode.")
                    h = Tensor(xp.zeros_like(other.data))
                blocks[j].append(h if create_graph else h.data)
        rows_of.append(tuple(_stack_rows(b, inp, other, create_graph) for b, other in zip(blocks, inputs)))
    return _nest(tuple(rows_of), is_inputs_tuple, is_inputs_tuple)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T H)``, as ``torch.autograd.functional.vhp``: the output of the scalar function
    ``func`` and the vector-Hessian product, nested as ``inputs``. ``v`` may be None only for a single
    one-element input."""
    return _second(func, inputs, v, create_graph, strict, "vhp")


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), H v)``, as ``torch.autograd.functional.hvp``. The Hessian of a twice-differentiable
    function is symmetric, so this is :func:`vhp`'s product (PyTorch's takes one more backward pass to
    form it, with the same values)."""
    return _second(func, inputs, v, create_graph, strict, "hvp")


def _second(func, inputs, v, create_graph, strict, fn_name):
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn_name)
        inputs = _leaves(inputs, create_graph)
        v = _v_for_inputs(v, inputs, is_inputs_tuple, fn_name)
        out = _single_output(func(*inputs), fn_name, strict)
        jac = _grads((out,), inputs, (None,), True)
        if strict and any(g is None for g in jac):
            raise RuntimeError(f"The output of the user-provided function is independent of input "
                               f"{[g is None for g in jac].index(True)}. This is not allowed in strict mode.")
    product = _grads(jac, inputs, v, create_graph)
    result = _detached(_zeros_for_none(product, inputs, strict, "The jacobian of the user-provided function"),
                       create_graph)
    return (out if create_graph else out.detach()), _nest(result, is_inputs_tuple)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), J v)``, as ``torch.autograd.functional.jvp``: the outputs and the Jacobian-vector
    product, nested as the outputs. By PyTorch's double-vjp trick: the vjp ``u^T J`` with a ``u`` that
    requires grad is linear in ``u``, and its vjp with respect to ``u`` along ``v`` is ``J v``. ``v`` may be
    None only for a single one-element input."""
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _leaves(inputs, create_graph)
        v = _v_for_inputs(v, inputs, is_inputs_tuple, "jvp")
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jvp")
        _check_outputs(outputs, strict)
        us = tuple(Tensor(get_array_module(o.data).zeros_like(o.data), requires_grad=True) for o in outputs)
        vjps = _grads(outputs, inputs, us, True)
    jv = _grads(vjps, us, v, create_graph) if any(g is not None for g in vjps) else (None,) * len(us)
    result = _detached(_zeros_for_none(jv, outputs, strict, "The jacobian of the user-provided function"),
                       create_graph)
    outputs = outputs if create_graph else tuple(o.detach() for o in outputs)
    return _nest(outputs, is_outputs_tuple), _nest(result, is_outputs_tuple)


__all__ = ["hessian", "vhp", "hvp", "jvp"]
