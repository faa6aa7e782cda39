"""How a gradient lands in a leaf: accumulation into ``.grad`` (adopting a fresh array without a copy when
nobody else can see it), gradient destinations (the arrays data parallelism wants gradients written into),
sparse gradients (registered by :mod:`distnn.sparse`), and the ``register_hook`` hooks run on a leaf's or a
node output's gradient. Used by the backward engine (engine.py) and ``autograd.grad``'s pass (grad_pass.py)."""
from __future__ import annotations

from sys import getrefcount as _getrefcount

from distnn.backend import get_array_module

from .tensor import Tensor


def _accumulate_leaf(leaf, grad, owned):
    """Add ``grad`` into ``leaf.grad``.

    The first gradient is adopted without a copy when the engine owns it (a fresh
    array nobody else holds); otherwise it is copied into an array laid out like
    the leaf's data, so optimizers run on contiguous memory. A gradient that ``zero_grad(set_to_none=False)``
    marked as reset is reset no more (``Tensor._grad_zeroed`` is exact: DataParallel's failure paths read it).
    """
    if leaf._grad_zeroed:  # (one attribute read in the usual case)
        leaf._grad_zeroed = False
    old = leaf.grad
    if old is None:
        if grad is leaf._grad_dest:  # written by the op into the leaf's destination: ours to keep
            leaf.grad = grad
            return
        data = leaf.data
        if (not owned or type(grad) is not type(data) or grad.dtype != data.dtype or grad.strides != data.strides
                or not _sole_view(grad)):  # (a numpy scalar is immutable: += would not accumulate)
            if type(grad) is _sparse.type:  # a sparse gradient (sparse embeddings): made fresh by its op
                leaf.grad = grad
                return
            fresh = get_array_module(data).empty_like(data)
            fresh[...] = grad
            grad = fresh
        leaf.grad = grad
    elif type(grad) is _sparse.type or type(old) is _sparse.type:  # (two loads: nothing when all is dense)
        leaf.grad = _sparse.accumulate(old, grad)
    else:
        old += grad


class _SparseGradients:
    """How a sparse gradient accumulates: ``distnn.sparse`` registers its tensor type and PyTorch's rule
    (sparse + sparse stays sparse, a dense one makes the sum dense) here, so the engine needs no import of it."""

    type = None  # (no gradient is of type None: the checks above are False until distnn.sparse is imported)
    accumulate = None
    accumulate_graph = None  # (the same rule on Tensors with a graph: autograd.grad's create_graph=True)
    tensor_grad = None  # (a sparse tensor made by an op: its sparse gradient from its values' one)
    values_seed = None  # (a sparse output's grad_outputs entry as its values' gradient)


_sparse = _SparseGradients()


def set_grad_destination(leaf: Tensor, array) -> None:
    """Ask backward to produce ``leaf``'s gradient in ``array`` (None: stop asking).

    ``array`` must match the leaf's data in shape, dtype and array type;
    otherwise (e.g. after the model moved to another device) it is ignored.
    When the leaf has no gradient yet, the op producing its gradient is
    offered ``array`` (:attr:`Function.grad_out`); if the op writes there,
    ``leaf.grad`` becomes ``array`` itself. Later contributions (a leaf used
    twice, gradient accumulation) are added into it as usual. Ops that cannot
    write in place produce a fresh array as before: a destination is a hint,
    never a requirement. Whoever sets it owns ``array`` and must not reuse it
    while it is a gradient.
    """
    if leaf._node is not None:
        raise RuntimeError("gradient destinations can only be set on leaf tensors")
    leaf._grad_dest = array


def get_grad_destination(leaf: Tensor):
    """The array set with :func:`set_grad_destination` for ``leaf`` (None if none)."""
    return leaf._grad_dest


def _offer_destinations(node, parents):
    """Set ``node.grad_out`` to the destinations of parent leaves about to get their first gradient."""
    outs = None
    for i, p in enumerate(parents):
        if isinstance(p, Tensor) and p.grad is None and not p._grad_hooks:  # (hooked: summed before it lands)
            d = p._grad_dest
            if (d is not None and type(d) is type(p.data) and d.dtype == p.data.dtype and d.shape == p.data.shape
                    and _count_identical(parents, p) == 1):  # (two inputs cannot share one output)
                if outs is None:
                    outs = [None] * len(parents)
                outs[i] = d
    node.grad_out = outs


def _sole_view(a):
    """True when ``a`` owns its memory, or is the only view of a buffer nobody else holds.

    A transposed weight gradient arrives as the transpose of a fresh product: it
    can be adopted as is. Refcount 2 = the view's own reference to its base plus
    getrefcount's argument (so ``a.base`` must not be bound to a local first).
    """
    if a.base is None:
        return True
    return (_getrefcount(a.base) == 2 and a.base.nbytes == a.nbytes
            and getattr(a.flags, "writeable", True))  # cupy arrays have no writeable flag


def _count_identical(items, x):
    n = 0
    for h in items:
        if h is x:
            n += 1
    return n


def _fire_hooks(leaf):
    for hook in tuple(leaf._hooks):  # a copy: a hook may remove itself
        hook(leaf)


def check_hook_gradient(new, g) -> None:
    """A ``register_hook`` hook's replacement ``new`` for gradient ``g`` (arrays, or Tensors in a
    ``create_graph`` pass) must keep its shape and dtype."""
    if tuple(new.shape) != tuple(g.shape) or new.dtype != g.dtype:
        raise RuntimeError(f"a gradient hook returned a gradient of shape {tuple(new.shape)} and dtype "
                           f"{new.dtype}; the hook must keep the shape {tuple(g.shape)} and dtype {g.dtype}")


def _run_grad_hooks(hooks, g):
    """``Tensor.register_hook``'s hooks on gradient ``g``, in order; each may return a replacement."""
    for hook in tuple(hooks):  # (a copy: a hook may remove itself)
        out = hook(Tensor._make(g, None))
        if out is not None:
            new = out.data if isinstance(out, Tensor) else out
            if get_array_module(new) is not get_array_module(g) or not hasattr(new, "shape"):
                raise TypeError(f"a gradient hook returned {type(out).__name__}; expected None or a Tensor (or array) "
                                "on the gradient's device")
            check_hook_gradient(new, g)
            g = new
    return g


def _run_output_hooks(hooks, g):
    """A node's hooks on its output's gradient (non-leaf ``register_hook``), then ``retain_grad``'s copy."""
    if hooks.hooks:
        g = _run_grad_hooks(hooks.hooks, g)
    ref = hooks.retained
    t = ref() if ref is not None else None
    if t is not None:
        t.grad = g.copy() if t.grad is None else t.grad + g  # (a new array each time: never the graph's)
    return g


def _finish_hooked_leaf(leaf, g) -> None:
    """A leaf with ``register_hook`` hooks: its gradient of this pass (all uses summed) through them, then added."""
    if g is not None and leaf.requires_grad:
        _accumulate_leaf(leaf, _run_grad_hooks(leaf._grad_hooks, g), owned=False)
