"""Writing an op's values into its ``out=`` tensor, resized as PyTorch's ``resize_output`` does.

An ``out`` of the result's shape is written in place (its strides kept). One of another shape is resized first,
with PyTorch's deprecation warning when it had elements, the way ``resize_`` resizes: contiguous from its storage
offset, on its storage when that is large enough. So an ``out`` that is a view stays a view of its base, and the
values land in the base's memory, as PyTorch's (an ``out`` with no elements included: ``base[2:2]`` takes the
result from offset 2).

Where the storage is too small, PyTorch grows it under every tensor that views it; numpy cannot, so ``out`` moves
to a larger copy, and the part of the result that falls inside the old storage is written there too: right after
the call the base holds what PyTorch's would. Later writes through ``out`` are no longer seen by the base.
"""
from __future__ import annotations

import warnings

from distnn._stacklevel import caller_stacklevel
from distnn.autograd.half_rounding import into_half
from distnn.autograd.mutation_guard import will_write
from distnn.autograd.tensor_storage import _contiguous_strides, resize_storage

from .out_overlap import INTERNAL, _has_internal_overlap

__all__ = ["resize_out", "warn_resized", "write_into_out", "write_resized"]


def warn_resized(out, shape) -> None:
    """PyTorch's warning for an ``out=`` tensor with elements resized to the result's ``shape`` (none when
    ``out`` is empty), at the user's line."""
    if out.numel():
        warnings.warn(f"An output with one or more elements was resized since it had shape {list(out.shape)}, "
                      f"which does not match the required output shape {list(shape)}. This behavior is "
                      "deprecated, and in a future PyTorch release outputs will not be resized unless they have "
                      "zero elements. You can explicitly reuse an out tensor t by resizing it, inplace, to zero "
                      "elements with t.resize_(0).", UserWarning, stacklevel=caller_stacklevel())


def write_into_out(out, values, warning: str | None = None, shared=None) -> None:
    """``values`` (an array of the result's shape; cast to ``out``'s dtype, which the caller has checked) written
    into ``out``, resized first when its shape differs (see the module docstring); bumps ``out``'s version.
    ``warning``: the text to warn with on that resize instead of PyTorch's usual one (an op that resizes ``out``
    on its own terms, as ``arange`` does), when ``out`` had elements.

    An ``out`` of the result's shape whose elements share memory (an expanded tensor; one of another shape is
    resized, which makes it contiguous) is refused as PyTorch's ``copy_`` refuses it, unless ``shared`` says how
    the op's kernel writes it (:func:`.out_shared.write_shared`: a ufunc combining the values that share a
    location, or "last")."""
    will_write(out)
    if tuple(out.shape) == tuple(values.shape) and not getattr(out.data.flags, "writeable", False) \
            and _has_internal_overlap(out.data):
        if shared is None:
            raise RuntimeError(INTERNAL)
        from .out_shared import write_shared

        write_shared(out, values, None if shared == "last" else shared)
        return
    moved_from = resize_out(out, tuple(values.shape), warning)
    write_resized(out, values, moved_from)


def resize_out(out, shape, warning: str | None = None, warn: bool = True):
    """``out`` resized to ``shape`` as :func:`write_into_out` does (nothing when it has that shape already), its
    values not yet written: for an op that resizes ``out`` before its other checks (``stack``). Returns what
    :func:`write_resized` takes after. ``warn``: False for an op that resizes ``out`` silently (PyTorch's
    ``resize_``, not ``resize_output``)."""
    if tuple(out.shape) == tuple(shape):
        return None
    if not warn:
        pass
    elif warning is None:
        warn_resized(out, shape)
    elif out.numel():
        warnings.warn(warning, UserWarning, stacklevel=caller_stacklevel())
    return resize_storage(out, shape, _contiguous_strides(shape))


def write_resized(out, values, moved_from=None) -> None:
    """``values`` written into ``out``, of their shape by now; ``moved_from``: what :func:`resize_out` returned
    (the old storage to write back into, where the resize moved ``out``)."""
    out.data[...] = into_half(values, out.data.dtype)  # (float64 into float16 through float32, as PyTorch's)
    if moved_from is not None:
        _write_back(out.data, moved_from)
    out._bump_version()


def _write_back(moved, old) -> None:
    """The first elements of ``moved``'s (new, larger) storage copied into the storage ``old`` views, which they
    replace."""
    from .as_strided import _storage_bytes, strided_view, writable_storage

    have = _storage_bytes(old) // old.dtype.itemsize
    if have:
        strided_view(writable_storage(old), (have,), (1,), 0)[...] = strided_view(moved, (have,), (1,), 0)
