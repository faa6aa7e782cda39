"""``torch.autograd.functional`` on distnn's engine: ``jacobian`` and ``vjp`` (reverse mode).

Both differentiate ``func`` at ``inputs`` (a Tensor or a tuple of Tensors) with :func:`autograd.grad`,
on detached copies of the inputs (the caller's tensors and graph are left alone), and return results
shaped and nested as PyTorch's (a tuple where the inputs or the outputs were one). ``jacobian`` takes one
reverse pass per output element, as PyTorch's ``vectorize=False``; ``vectorize=True`` gives the same
values the same way (PyTorch's batches the passes with vmap, which distnn does not have).

``hessian``, ``hvp``, ``vhp`` and ``jvp`` differentiate a backward pass (``create_graph=True``; ``jvp`` by
the double-backward trick, as PyTorch): they are in :mod:`.functional_second`, importable from here.
``create_graph=True`` keeps the results in the graph of the caller's inputs (to differentiate them again);
``strategy="forward-mode"`` needs forward-mode AD, which distnn does not have, so it is refused.
"""
from __future__ import annotations

from distnn.backend import get_array_module

from .grad_api import grad
from .grad_mode import enable_grad
from .tensor import Tensor


class _BadStrategy(ValueError, AssertionError):
    """An unknown ``strategy``: a ValueError, and an AssertionError as PyTorch raises."""


def _as_tuple(x, arg_name: str, fn_name: str):
    """(whether ``x`` was a tuple, ``x`` as a tuple of Tensors), refusing anything else as PyTorch does."""
    is_tuple = isinstance(x, tuple)
    items = x if is_tuple else (x,)
    for i, el in enumerate(items):
        if not isinstance(el, Tensor):
            where = (f"the value at index {i} has type {type(el)}" if is_tuple
                     else f"the given {arg_name} has type {type(el)}")
            raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors but "
                            f"{where}.")
    return is_tuple, items


def _nest(result, *is_tuple):
    """PyTorch's ``_tuple_postprocess``: undo the tuples added for arguments that were single Tensors."""
    if len(is_tuple) == 2:
        outputs_tuple, inputs_tuple = is_tuple
        if not inputs_tuple:
            result = tuple(r[0] for r in result)
        return result if outputs_tuple else result[0]
    return result if is_tuple[0] else result[0]


def _leaves(inputs, create_graph=False):
    """The inputs ``func`` is differentiated at: detached copies, or with ``create_graph`` views of the
    caller's tensors that require grad (PyTorch's ``_grad_preprocess``), so the results stay in their graph."""
    return tuple(t.reshape(t.shape) if create_graph and t.requires_grad else t.detach().requires_grad_(True)
                 for t in inputs)


def _validate_v(v, others, is_other_tuple, fn_name):
    """``v`` (a Tensor or tuple) checked against ``others`` (the outputs or the inputs), as PyTorch's."""
    _, v = _as_tuple(v, "v", fn_name)
    if len(v) != len(others):
        raise RuntimeError(f"v is a tuple of invalid length: should be {len(others)} but got {len(v)}."
                           if is_other_tuple else "The given v should contain a single Tensor.")
    for idx, (vi, other) in enumerate(zip(v, others)):
        if tuple(vi.shape) != tuple(other.shape):
            entry = f"Entry {idx} in " if is_other_tuple else ""
            raise RuntimeError(f"{entry}v has invalid size: should be {tuple(other.shape)} but got {tuple(vi.shape)}.")
    return v


def _zeros_for_none(grads, inputs, strict, what="The output of the user-provided function"):
    result = []
    for i, (g, inp) in enumerate(zip(grads, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(f"{what} is independent of input {i}. This is not allowed in strict mode.")
            g = Tensor(get_array_module(inp.data).zeros_like(inp.data))
        result.append(g)
    return tuple(result)


def _check_outputs(outputs, strict):
    if strict:
        for i, out in enumerate(outputs):
            if not out.requires_grad:
                raise RuntimeError(f"Output {i} of the user-provided function does not require gradients. The "
                                   "outputs must be computed in a differentiable manner from the input when "
                                   "running in strict mode.")


def _grad_of(outputs, inputs, vs, create_graph=False):
    """autograd.grad of the outputs that require grad (None per input when none does), retaining the graph."""
    pairs = [(o, v) for o, v in zip(outputs, vs) if o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    return grad([o for o, _ in pairs], inputs, [v for _, v in pairs], retain_graph=True, allow_unused=True,
                create_graph=create_graph)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``, as ``torch.autograd.functional.jacobian``.

    For output ``i`` and input ``j`` a Tensor of shape ``outputs[i].shape + inputs[j].shape``; nested in
    tuples as the outputs and inputs were. An output independent of an input gives zeros, or with
    ``strict=True`` an error. Only ``strategy="reverse-mode"`` (no forward-mode AD). ``create_graph=True``:
    the Jacobian is in the graph of ``inputs`` (differentiable again).
    """
    if strategy not in ("forward-mode", "reverse-mode"):
        raise _BadStrategy('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your function '
                         'has more outputs than inputs, "forward-mode" tends to be more performant. Otherwise, '
                         'prefer to use "reverse-mode".')
    if strategy == "forward-mode":
        raise NotImplementedError('autograd.functional.jacobian(strategy="forward-mode"): distnn has no '
                                  'forward-mode AD; use strategy="reverse-mode"')
    if strict and vectorize:
        raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
                           "supported together. Please either set `strict=False` or `vectorize=False`.")
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _leaves(inputs, create_graph)
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jacobian")
        _check_outputs(outputs, strict)
    result = []
    for i, out in enumerate(outputs):
        xp = get_array_module(out.data)
        rows = [[] for _ in inputs]
        onehot = xp.zeros(out.shape, dtype=out.dtype)
        flat = onehot.reshape(-1)  # (a view: one entry set per pass)
        for k in range(out.numel()):
            flat[k] = 1
            vjs = _grad_of((out,), inputs, [onehot], create_graph)  # (_grad_of copies the seed: onehot can change)
            flat[k] = 0
            for j, (g, inp) in enumerate(zip(vjs, inputs)):
                if g is None:
                    if strict:
                        raise RuntimeError(f"Output {i} of the user-provided function is independent of input {j}. "
                                           "This is not allowed in strict mode.")
                    zeros = xp.zeros_like(inp.data)
                    rows[j].append(Tensor(zeros) if create_graph else zeros)
                else:
                    rows[j].append(g if create_graph else g.data)
        result.append(tuple(_stack_rows(r, out, inp, create_graph) for r, inp in zip(rows, inputs)))
    return _nest(tuple(result), is_outputs_tuple, is_inputs_tuple)


def _stack_rows(rows, out, inp, create_graph):
    """One Jacobian block (out.shape + inp.shape) from its rows (one per output element)."""
    shape = tuple(out.shape) + tuple(inp.shape)
    if not rows:
        return Tensor(get_array_module(inp.data).zeros(shape, dtype=inp.dtype))
    if create_graph:
        from distnn.functional.join import stack

        return stack(rows).reshape(shape)
    return Tensor(get_array_module(rows[0]).stack(rows).reshape(shape))


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T J)``, as ``torch.autograd.functional.vjp``: the outputs (detached) and the
    vector-Jacobian product per input. ``v`` may be None only for a single one-element output.
    ``create_graph=True``: the product is in the graph of ``inputs`` and ``v``."""
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _leaves(inputs, create_graph)
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "vjp")
        _check_outputs(outputs, strict)
        if v is not None:
            v = _validate_v(v, outputs, is_outputs_tuple, "vjp")
            v = list(v) if create_graph else [vi.data for vi in v]
        else:
            if len(outputs) != 1 or outputs[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the user-provided function returns a single "
                                   "Tensor with a single element.")
            v = [None]
    grads = _grad_of(outputs, inputs, v, create_graph)
    result = _zeros_for_none(grads, inputs, strict)
    outputs = outputs if create_graph else tuple(o.detach() for o in outputs)
    return _nest(outputs, is_outputs_tuple), _nest(result, is_inputs_tuple)

from .functional_second import hessian, hvp, jvp, vhp  # noqa: E402  (they use the helpers above)

__all__ = ["jacobian", "vjp", "hessian", "hvp", "vhp", "jvp"]
