"""The pytrees of ``distnn.func``'s transforms: nested tuples, lists and dicts whose leaves are anything else
(Tensors, numbers, None), as ``torch.utils._pytree`` sees the arguments and results of torch.func's.

A spec records the containers (their types, dict keys, lengths) so :func:`unflatten` rebuilds the same
nesting from a flat list of leaves. :func:`broadcast_prefix` spreads a "prefix" tree (vmap's ``in_dims`` /
``out_dims``: an int at a node stands for every leaf below it) over a tree's leaves.
"""
from __future__ import annotations

_LEAF = None  # the spec of a leaf


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def flatten(tree):
    """(the leaves of ``tree`` in order, its spec)."""
    leaves = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree, leaves):
    if isinstance(tree, (tuple, list)):
        return (type(tree), None, [_flatten(x, leaves) for x in tree])
    if isinstance(tree, dict):
        return (type(tree), list(tree), [_flatten(tree[k], leaves) for k in tree])
    leaves.append(tree)
    return _LEAF


def unflatten(leaves, spec):
    """The tree of ``spec`` with ``leaves`` (in :func:`flatten`'s order) at its leaves."""
    return _unflatten(iter(leaves), spec)


def _unflatten(it, spec):
    if spec is _LEAF:
        return next(it)
    kind, keys, children = spec
    values = [_unflatten(it, c) for c in children]
    if keys is not None:
        return kind(zip(keys, values))
    if issubclass(kind, tuple) and hasattr(kind, "_fields"):
        return kind(*values)
    return kind(values)


def describe(spec) -> str:
    """A short readable form of a spec (``*`` a leaf), for error messages."""
    if spec is _LEAF:
        return "*"
    kind, keys, children = spec
    inner = ", ".join(describe(c) if keys is None else f"{k!r}: {describe(c)}" for k, c in zip(keys or children,
                                                                                              children))
    return {list: f"[{inner}]", dict: f"{{{inner}}}"}.get(kind, f"({inner}{',' if len(children) == 1 else ''})")


def broadcast_prefix(prefix, tree):
    """One value of ``prefix`` per leaf of ``tree``: a non-container value of ``prefix`` covers the whole
    subtree at its place. None when ``prefix`` does not match ``tree``'s containers there."""
    out = []
    return out if _broadcast(prefix, tree, out) else None


def _broadcast(prefix, tree, out) -> bool:
    if not isinstance(prefix, (tuple, list, dict)):
        out.extend([prefix] * len(flatten(tree)[0]))
        return True
    if isinstance(prefix, dict):
        if not isinstance(tree, dict) or set(prefix) != set(tree):
            return False
        return all(_broadcast(prefix[k], tree[k], out) for k in tree)
    if not isinstance(tree, (tuple, list)) or isinstance(tree, tuple) != isinstance(prefix, tuple):
        return False
    return len(prefix) == len(tree) and all(_broadcast(p, t, out) for p, t in zip(prefix, tree))
