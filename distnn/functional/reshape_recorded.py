"""``reshape`` of a tensor that is not row-major, while recording, as PyTorch's nodes: where its strides allow a view,
a view named ReshapeAliasBackward0 (PyTorch's ``_reshape_alias``); else a row-major copy (CloneBackward0) seen in the
new shape (UnsafeViewBackward0), which is no view of the input (``_base`` None in PyTorch: its own version counter,
``detach_`` allowed). A row-major input's reshape is a ``view`` (ViewBackward0) in both; the values and gradients are
the same either way, only ``grad_fn`` and ``next_functions`` tell."""
from __future__ import annotations

from .shape import Reshape
from .strides import cached_view_strides, torch_strides


def reshape_recorded(a, data, shape):
    """``a`` (a Tensor that records, its array ``data`` not row-major) with ``shape`` (its sizes inferred)."""
    strides = cached_view_strides(data.shape, torch_strides(data), shape)
    if strides is not None:
        out = Reshape.apply(a, shape=shape, strides=strides if 1 in shape else None)
        if out._node is not None:
            out._node.__dict__["reshape_name"] = "ReshapeAliasBackward0"
        return out
    from .view_strides import Contiguous

    out = Reshape.apply(Contiguous.apply(a), shape=shape)
    out._vc = None  # (not a view of the copy, which nothing else sees)
    out.__dict__.pop("_view_of", None)
    if out._node is not None:
        out._node.viewed_input = None
        out._node.view_version = None
        out._node.__dict__["reshape_name"] = "UnsafeViewBackward0"
    return out
