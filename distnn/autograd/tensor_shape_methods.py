"""Tensor's shape methods (``reshape``, ``view``, ``transpose``, ``permute``, ``T``, ``expand``, ``broadcast_to``,
``squeeze``, ``unsqueeze``, ``flatten``): a mixin of :class:`~distnn.autograd.tensor.Tensor`, each method one op of
:mod:`distnn.functional.shape` (``view``: :mod:`distnn.functional.view_strides`).

The modules these methods call import Tensor themselves: their names are bound by :func:`_bind_late`, which
:func:`.tensor_operators._bind_late` calls once the class exists.
"""
from __future__ import annotations

import numbers


class TensorShapeMethods:
    """The shape methods of :class:`~distnn.autograd.tensor.Tensor` (no state of its own)."""

    __slots__ = ()

    def reshape(self, *shape):
        """This tensor with ``shape`` (one size may be -1): a view where one exists, else a copy; sizes refused
        as PyTorch's (see :func:`distnn.functional.shape.reshape`)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return S.reshape(self, shape)

    def view(self, *shape, **kwargs):
        """``Tensor.view(*shape)``: the same memory with another shape, refused where PyTorch's stride rules refuse
        it (a diagonal, a transpose or a stepped slice flattened: use ``reshape``, which copies there).
        ``Tensor.view(dtype)``: the same bytes read as ``dtype``, as PyTorch's (no gradient; see
        :mod:`distnn.functional.view_dtype`)."""
        return VS.view_call(self, shape, kwargs)

    def transpose(self, *axes):
        """No axes: reverse them. Two axes: swap them (PyTorch). Else: a permutation (numpy)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) == 1 and isinstance(axes[0], numbers.Integral):
            raise TypeError('transpose() missing 1 required positional arguments: "dim1"')
        if len(axes) == 2:
            # (PyTorch's range: a dim out of it is an IndexError, not wrapped around; a 0-d tensor takes 0 or -1)
            a, b = (wrap_dim(ax, self.ndim, "transpose") for ax in axes)
            if not self.ndim:
                return self[...]  # (a view of its own, as PyTorch's)
            perm = list(range(self.ndim))
            perm[a], perm[b] = perm[b], perm[a]
            return S.TransposeDims.apply(self, axes=tuple(perm))
        return S.Transpose.apply(self, axes=axes or None)

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return S.Transpose.apply(self, axes=dims)

    @property
    def T(self):
        return S.Transpose.apply(self, axes=None)

    def expand(self, *shape):
        if not shape:  # (PyTorch's: the sizes are required; ``expand(())`` of a 0-d tensor is the way to give none)
            raise TypeError('expand() missing 1 required positional arguments: "size"')
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return S.BroadcastTo.apply(self, shape=tuple(shape))  # (-1 keeps a dim's size)

    def broadcast_to(self, shape):
        return S.BroadcastTo.apply(self, shape=tuple(shape))

    def squeeze(self, dim=None, *, axis=None):
        return S.squeeze(self, dim, axis=axis)

    def unsqueeze(self, dim=None, *, axis=None):
        return S.unsqueeze(self, dim, axis=axis)

    def flatten(self, start_dim=0, end_dim=-1):
        return S.flatten(self, start_dim, end_dim)


def _bind_late() -> None:
    """Bind the modules the methods call, which import Tensor (see the module docstring)."""
    global S, VS, wrap_dim
    from distnn.functional import shape as S
    from distnn.functional import view_strides as VS
    from distnn.functional._dims import wrap_dim
