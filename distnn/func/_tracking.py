"""What ``distnn.func``'s differentiating transforms share: the tensors a function is differentiated at, whether
the result must stay in an outer graph, ``argnums`` and ``has_aux``.

torch.func keeps one autograd "level" per transform. distnn has one reverse-mode tape, and gets the same
results this way: each transform calls ``func`` on *tracked* copies of the differentiated arguments (a fresh
leaf, or a view where the caller's tensor requires grad, so it stays in the caller's graph) and asks
:func:`autograd.grad` for the gradients with respect to them. When the output's graph reaches a tensor that
requires grad outside those copies (an outer transform's, a caller's parameter, a closed-over tensor), the
gradients are computed with ``create_graph=True`` and stay differentiable, which is what makes
``grad(grad(f))``, ``jacrev(jacrev(f))`` and ``hessian`` work; otherwise they are plain (detached) tensors, as
torch.func returns at the top level, and a first-order transform needs no op's double backward.
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import _pytree


def track(x):
    """The tensor a transform differentiates ``x`` at (see the module docstring)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
    if x.requires_grad:
        return x.reshape(x.shape)  # (a view with a node: gradients with respect to it, and x's graph kept)
    return x.detach().requires_grad_(True)


def track_tree(tree):
    """(the tracked leaves of the pytree ``tree``, the tree rebuilt with them)."""
    leaves, spec = _pytree.flatten(tree)
    tracked = [track(x) for x in leaves]
    return tracked, _pytree.unflatten(tracked, spec)


def reaches_outside(outputs, own) -> bool:
    """Whether the graph of ``outputs`` reaches a tensor that requires grad other than the tensors ``own``:
    then results computed from it must keep their graph (module docstring)."""
    own_ids = {id(t) for t in own}
    stack, seen = [], set()
    for out in outputs:
        if isinstance(out, Tensor) and out.requires_grad:
            if id(out) in own_ids:
                continue
            if out._node is None:
                return True
            stack.append(out._node)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for parent in node.parents or ():
            if isinstance(parent, Function):
                stack.append(parent)
            elif isinstance(parent, Tensor) and id(parent) not in own_ids:
                return True  # (a leaf that requires grad: the engine links only those)
    return False


def any_requires_grad(tensors) -> bool:
    return any(isinstance(t, Tensor) and t.requires_grad for t in tensors)


def zeros_for_none(grads, like):
    """``grads`` with zeros (shaped as ``like``'s tensors) for the inputs the output does not depend on."""
    return [g if g is not None else Tensor(get_array_module(t.data).zeros_like(t.data)) for g, t in zip(grads, like)]


def detached(tree, keep: bool):
    """``tree`` as it is when ``keep``, else with each Tensor leaf detached (torch.func's top-level results)."""
    if keep:
        return tree
    leaves, spec = _pytree.flatten(tree)
    return _pytree.unflatten([x.detach() if isinstance(x, Tensor) else x for x in leaves], spec)


def check_argnums(argnums, nargs: int):
    """``argnums`` (an int or a non-empty tuple of unique ints) as a tuple of positions in ``range(nargs)``,
    refused as torch.func refuses it."""
    if isinstance(argnums, int) and not isinstance(argnums, bool):
        items = (argnums,)
    elif isinstance(argnums, tuple) and all(isinstance(a, int) and not isinstance(a, bool) for a in argnums):
        if not argnums:
            raise RuntimeError("argnums must be non-empty")
        if len(set(argnums)) != len(argnums):
            raise RuntimeError(f"argnums elements must be unique, got {argnums}")
        items = argnums
    else:
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    for a in items:
        if not -nargs <= a < nargs:
            raise RuntimeError(f"Got argnum={a}, but only {nargs} positional inputs")
    return tuple(a % nargs for a in items)


def track_argnums(args, argnums):
    """(the tracked leaves, the args with the argnums ones tracked, the tree of the differentiated args as
    torch.func nests the gradients: the argument itself for an int argnums, a tuple for a tuple)."""
    positions = check_argnums(argnums, len(args))
    args = list(args)
    tracked = []
    for p in positions:
        leaves, args[p] = track_tree(args[p])
        tracked.extend(leaves)
    chosen = args[positions[0]] if isinstance(argnums, int) else tuple(args[p] for p in positions)
    return tracked, tuple(args), _pytree.flatten(chosen)[1]


def split_aux(result, what: str):
    """(output, aux) of a ``has_aux`` function's result, refused as torch.func's when it is not a pair."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise RuntimeError(f"{what}: output of function f should be a tuple: (output, aux) if has_aux is True")
    return result
