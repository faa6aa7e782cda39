"""PyTorch's Tensor methods that are one of distnn's functions with the tensor first (a mixin of :class:`Tensor`).

``x.tril(1)`` is ``distnn.tril(x, 1)``, and so on for every name in ``_METHODS``; each method carries its
function's docstring. Kept apart from ``tensor_methods.py``, whose methods have bodies of their own.
"""
from __future__ import annotations

import importlib

# module under distnn.functional -> the functions that are also Tensor methods
_METHODS = {
    "shape_more": ("tril", "triu", "diag", "diagonal", "diag_embed", "diagflat", "trace", "movedim", "moveaxis",
                   "swapaxes", "swapdims", "t", "tile", "repeat_interleave", "rot90", "fliplr", "flipud", "unflatten",
                   "ravel"),
    "shape_split": ("unbind", "tensor_split"),
    "matrix_more": ("outer", "ger", "inner", "dot", "vdot", "mm", "mv", "addmm", "addmv", "addbmm", "baddbmm",
                    "kron", "cross"),
    "scatter": ("scatter", "scatter_add", "scatter_reduce", "index_add", "index_copy", "index_fill",
                "masked_scatter"),
    "element_select": ("masked_select", "take", "take_along_dim", "nonzero", "argwhere"),
    "reduce_scan": ("cumprod", "cummax", "cummin", "logcumsumexp", "diff", "count_nonzero", "nansum", "nanmean",
                    "aminmax"),
    "order_stats": ("median", "nanmedian", "kthvalue", "mode", "quantile", "nanquantile"),
    "counting": ("unique", "unique_consecutive", "bincount", "histc"),
    "creation": ("bernoulli", "multinomial"),
}


# PyTorch's methods take no ``out`` (its functions do): the refusal in its words. Its methods written in Python
# name the class; those that take no keyword at all say so; the others are its parser's (for the names of several
# overloads the parser words it as an invalid combination, listing them: not written here).
_PYTHON_METHODS = frozenset(("unflatten", "unique", "unique_consecutive"))
_NO_KEYWORDS = frozenset(("trace", "t", "fliplr", "flipud", "ravel", "argwhere"))


def _out_refused(name: str) -> TypeError:
    if name in _NO_KEYWORDS:
        return TypeError(f"Tensor.{name}() takes no keyword arguments")
    return TypeError(f"{'Tensor.' if name in _PYTHON_METHODS else ''}{name}() got an unexpected keyword argument "
                     "'out'")


def _method(module: str, name: str):
    function = None

    def method(self, *args, **kwargs):
        nonlocal function
        if "out" in kwargs:
            raise _out_refused(name)
        if function is None:  # (imported on first use: the op modules import Tensor)
            function = getattr(importlib.import_module(f"distnn.functional.{module}"), name)
        return function(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``distnn.{name}(self, ...)``: see :func:`distnn.functional.{module}.{name}`."
    return method


class TensorOpMethods:
    __slots__ = ()

    def expand_as(self, other):
        """This tensor expanded to ``other``'s shape."""
        return self.expand(tuple(other.shape))

    def view_as(self, other):
        """``self.view(other.shape)``: refused where the strides allow no view, as PyTorch's."""
        return self.view(tuple(other.shape))

    def reshape_as(self, other):
        return self.reshape(tuple(other.shape))

    # (the method forms of these read a tensor argument more widely than the functions, as PyTorch's parser)
    def hsplit(self, indices_or_sections):
        """``distnn.hsplit(self, ...)``: see :func:`distnn.functional.shape_split.hsplit`."""
        from distnn.functional.shape_split import hsplit

        return hsplit(self, indices_or_sections, _method=True)

    def vsplit(self, indices_or_sections):
        """``distnn.vsplit(self, ...)``: see :func:`distnn.functional.shape_split.vsplit`."""
        from distnn.functional.shape_split import vsplit

        return vsplit(self, indices_or_sections, _method=True)

    def dsplit(self, indices_or_sections):
        """``distnn.dsplit(self, ...)``: see :func:`distnn.functional.shape_split.dsplit`."""
        from distnn.functional.shape_split import dsplit

        return dsplit(self, indices_or_sections, _method=True)


for _module, _names in _METHODS.items():
    for _name in _names:
        setattr(TensorOpMethods, _name, _method(_module, _name))
