"""torch.func's gradient transforms: ``grad``, ``grad_and_value``, ``vjp``, ``jvp`` and ``linearize``, with
torch's signatures, pytree nesting and refusals, on distnn's reverse-mode engine (see :mod:`._tracking` for how
they nest: ``grad(grad(f))``, ``vmap(grad(f))``, a transform of a closure over tracked tensors).

distnn has no forward-mode AD: ``jvp`` and ``linearize`` use the double-vjp trick (the vjp ``u -> u^T J`` is
linear in ``u``; its vjp along the tangent is ``J t``), so every op ``func`` uses needs a double backward
(:mod:`distnn.autograd.derivatives`); the values are torch's.
"""
from __future__ import annotations

import functools

from distnn.autograd.grad_api import grad as _autograd_grad
from distnn.autograd.grad_mode import enable_grad
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import _pytree
from ._tracking import any_requires_grad, detached, reaches_outside, split_aux, track_argnums, track_tree
from ._tracking import zeros_for_none


def _grads(outputs, inputs, seeds, create_graph):
    """d(outputs . seeds)/d(inputs), zeros for inputs they do not depend on (the graph is retained)."""
    pairs = [(o, s) for o, s in zip(outputs, seeds) if o.requires_grad]
    if not pairs:
        return zeros_for_none([None] * len(inputs), inputs)
    found = _autograd_grad([o for o, _ in pairs], inputs, [s for _, s in pairs], retain_graph=True,
                           create_graph=create_graph, allow_unused=True)
    return zeros_for_none(found, inputs)


def grad_and_value(func, argnums=0, has_aux=False):
    """``torch.func.grad_and_value``: a function returning ``(gradient, value)`` of ``func``, or
    ``(gradient, (value, aux))`` with ``has_aux=True`` (``func`` then returns ``(value, aux)``).

    ``func`` must return a scalar (0-dim) Tensor. ``argnums`` (an int or a tuple of ints) picks the
    positional arguments differentiated; each may be a pytree (nested tuples/lists/dicts) of Tensors, and
    its gradient has the same nesting (a tuple of them for a tuple ``argnums``).
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with enable_grad():
            tracked, args, spec = track_argnums(args, argnums)
            result = func(*args, **kwargs)
            output, aux = split_aux(result, "grad_and_value(f)(*args)") if has_aux else (result, None)
            if not isinstance(output, Tensor):
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a Tensor, got "
                                   f"{type(output)}")
            if output.ndim != 0:
                raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got "
                                   f"tensor with {output.ndim} dims. Maybe you wanted to use the vjp or jacrev APIs "
                                   "instead?")
            keep = reaches_outside([output], tracked)
            grads = _grads([output], tracked, [None], keep)
        gradient = _pytree.unflatten(grads, spec)
        value = output if keep else output.detach()
        if has_aux:
            return gradient, (value, detached(aux, keep))
        return gradient, value

    return wrapper


def grad(func, argnums=0, has_aux=False):
    """``torch.func.grad``: a function returning the gradient of the scalar function ``func`` with respect to
    the ``argnums`` arguments (``(gradient, aux)`` with ``has_aux=True``). See :func:`grad_and_value`."""
    inner = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        gradient, value = inner(*args, **kwargs)
        return (gradient, value[1]) if has_aux else gradient

    return wrapper


def _call_tracked(func, primals, has_aux, what):
    """Run ``func(*primals)`` on tracked primals: (tracked leaves, primals spec, output leaves, output spec,
    aux, whether results keep their graph)."""
    tracked, args = track_tree(tuple(primals))
    result = func(*args)
    output, aux = split_aux(result, what) if has_aux else (result, None)
    out_leaves, out_spec = _pytree.flatten(output)
    for o in out_leaves:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{what}: Expected f(*primals) to return only tensors, got unsupported type {type(o)}")
    return tracked, _pytree.flatten(tuple(primals))[1], out_leaves, out_spec, aux, reaches_outside(out_leaves,
                                                                                                   tracked)


def vjp(func, *primals, has_aux=False):
    """``torch.func.vjp``: ``(func(*primals), vjp_fn)``, or ``(output, vjp_fn, aux)`` with ``has_aux=True``.

    ``vjp_fn(cotangents)`` takes cotangents nested as the output and returns the vector-Jacobian products as a
    tuple with one entry per primal (each nested as that primal). It may be called several times.
    """
    with enable_grad():
        tracked, in_spec, outs, out_spec, aux, keep = _call_tracked(func, primals, has_aux, "vjp(f, *primals)")

    def vjp_fn(cotangents, retain_graph=True, create_graph=None):
        cots, cot_spec = _pytree.flatten(cotangents)
        if cot_spec != out_spec:
            raise RuntimeError(f"Expected pytree structure of cotangents to be the same as pytree structure of "
                               f"outputs to the function. cotangents: {_pytree.describe(cot_spec)}, primal output: "
                               f"{_pytree.describe(out_spec)}")
        for i, (c, o) in enumerate(zip(cots, outs)):
            if not isinstance(c, Tensor) or tuple(c.shape) != tuple(o.shape):
                shape = tuple(c.shape) if isinstance(c, Tensor) else type(c)
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {shape} and output[{i}] has "
                                   f"a shape of {tuple(o.shape)}.")
        graph = (keep or any_requires_grad(cots)) if create_graph is None else create_graph
        with enable_grad():
            grads = _grads(outs, tracked, cots, graph)
        return _pytree.unflatten(grads, in_spec)

    output = _pytree.unflatten(outs if keep else [o.detach() for o in outs], out_spec)
    return (output, vjp_fn, detached(aux, keep)) if has_aux else (output, vjp_fn)


def _jvp_graph(func, primals, has_aux, what):
    """The double-vjp graph of ``func`` at ``primals``: (output leaves, output spec, the dummy cotangents u, the
    vjps u^T J (one per primal leaf), the primal leaves, aux, keep)."""
    with enable_grad():
        tracked, _, outs, out_spec, aux, keep = _call_tracked(func, primals, has_aux, what)
        us = [Tensor(get_array_module(o.data).zeros_like(o.data), requires_grad=True) for o in outs]
        vjps = _grads(outs, tracked, us, True)
    return outs, out_spec, us, vjps, tracked, aux, keep


def _jvp_of(graph, tangents):
    _, _, us, vjps, _, _, keep = graph
    with enable_grad():  # (a vjp that does not require grad is a constant zero: _grads skips it)
        return _grads(vjps, us, tangents, keep or any_requires_grad(tangents))


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """``torch.func.jvp``: ``(func(*primals), J @ tangents)`` (``(output, jvp_out, aux)`` with ``has_aux``).

    ``primals`` and ``tangents`` are tuples of the same structure (pytrees of Tensors of equal shapes); the
    Jacobian-vector product is nested as the output. Computed by the double-vjp trick (module docstring): the
    same values as torch's forward mode, with two reverse passes. ``strict=True`` is refused, as torch's.
    """
    if strict:
        raise RuntimeError("jvp(f, primals, tangents, strict=True): strict mode is not yet supported.")
    if not isinstance(primals, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals to be a tuple. E.g. it should be valid to "
                           "call f(*primals).")
    primal_leaves, primal_spec = _pytree.flatten(primals)
    tangent_leaves, tangent_spec = _pytree.flatten(tangents)
    if tangent_spec != primal_spec:
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have the same python "
                           "structure. For example, if primals is a tuple of 3 tensors, tangents also must be. Got "
                           f"primals with structure {_pytree.describe(primal_spec)} and tangents with structure "
                           f"{_pytree.describe(tangent_spec)}")
    _check_tangents(primal_leaves, tangent_leaves)
    graph = _jvp_graph(func, primals, has_aux, "jvp(f, primals, tangents)")
    outs, out_spec, _, _, _, aux, keep = graph
    jv = _pytree.unflatten(_jvp_of(graph, tangent_leaves), out_spec)
    output = _pytree.unflatten(outs if keep else [o.detach() for o in outs], out_spec)
    return (output, jv, detached(aux, keep)) if has_aux else (output, jv)


def _check_tangents(primals, tangents):
    for p, t in zip(primals, tangents):
        if not isinstance(t, Tensor):
            raise ValueError(f"Thing passed to transform API must be Tensor, got {type(t)}")
        if tuple(t.shape) != tuple(p.shape):
            raise RuntimeError("Trying to set a forward gradient that has a different size than that of the original "
                               f"Tensor, this is not supported. Tensor is of size {list(p.shape)} while the given "
                               f"forward gradient is of size {list(t.shape)}.")


def linearize(func, *primals):
    """``torch.func.linearize``: ``(func(*primals), jvp_fn)`` where ``jvp_fn(*tangents)`` is the
    Jacobian-vector product at ``primals`` (nested as the output), reusing one recorded graph for every call
    (the double-vjp trick of :func:`jvp`)."""
    graph = _jvp_graph(func, primals, False, "linearize(f, *primals)")
    primal_leaves, primal_spec = _pytree.flatten(tuple(primals))
    outs, out_spec, _, _, _, _, keep = graph

    def jvp_fn(*tangents):
        tangent_leaves, tangent_spec = _pytree.flatten(tuple(tangents))
        if tangent_spec != primal_spec:
            raise RuntimeError(f"linearize: expected tangents with the structure of the primals "
                               f"{_pytree.describe(primal_spec)}, got {_pytree.describe(tangent_spec)}")
        _check_tangents(primal_leaves, tangent_leaves)
        return _pytree.unflatten(_jvp_of(graph, tangent_leaves), out_spec)

    output = _pytree.unflatten(outs if keep else [o.detach() for o in outs], out_spec)
    return output, jvp_fn


__all__ = ["grad", "grad_and_value", "vjp", "jvp", "linearize"]
