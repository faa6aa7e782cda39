"""torch.masked's ``MaskedTensor`` (a prototype in torch 2.13): a data tensor and a boolean mask of its shape,
True where an element is specified. ``masked_tensor``, ``as_masked_tensor``, ``is_masked_tensor``; ``get_data``,
``get_mask``, ``to_tensor(value)``; torch's repr (``--`` at masked-out elements); indexing. Its elementwise ops and
reductions are in :mod:`distnn.masked.maskedtensor_ops`.

Autograd runs on the data tensor: ``masked_tensor(data, mask, requires_grad=True)`` is a leaf (a copy of
``data``, cut from its graph, as torch's), whose ``.grad`` is a MaskedTensor with its mask; ``as_masked_tensor``
stays in ``data``'s graph, so the gradient reaches ``data`` (as a plain gradient here: torch stores a
MaskedTensor in ``data.grad``). A gradient's masked-out elements are unspecified, as torch's. distnn has no
``__torch_function__``: the ops are MaskedTensor methods and operators, ``distnn.where`` and the
``distnn.masked`` functions, not every ``distnn.*`` function.
"""
from __future__ import annotations

import warnings

import numpy as np

import distnn as dn
from distnn import backend
from distnn.autograd import Tensor

# the dtypes torch's MaskedTensor takes
_DTYPES = {np.dtype(t) for t in (np.float16, np.float32, np.float64, np.bool_, np.int8, np.int16, np.int32,
                                 np.int64)}


def is_masked_tensor(obj, /) -> bool:
    """``torch.masked.is_masked_tensor``: whether ``obj`` is a MaskedTensor."""
    return isinstance(obj, MaskedTensor)


def masked_tensor(data, mask, requires_grad=False) -> "MaskedTensor":
    """``torch.masked.masked_tensor``: a MaskedTensor of a copy of ``data`` (cut from its graph) and ``mask``;
    a leaf when ``requires_grad``."""
    return MaskedTensor(data, mask, requires_grad)


def as_masked_tensor(data, mask) -> "MaskedTensor":
    """``torch.masked.as_masked_tensor``: a MaskedTensor that stays in ``data``'s graph (differentiable)."""
    mt = MaskedTensor(data, mask)
    mt._masked_data = data.clone()  # (clone is differentiable: the gradient reaches data)
    return mt


class MaskedTensor:
    """``torch.masked.MaskedTensor(data, mask, requires_grad=False)``: ``data`` and ``mask`` Tensors of one shape,
    ``mask`` bool, ``data`` float16/32/64, bool or a signed integer (torch's TypeErrors and ValueErrors
    otherwise). Constructing one warns, as torch's, that the API is a prototype."""

    _is_masked_tensor = True  # (read by distnn.where)

    def __init__(self, data, mask, requires_grad=False):
        if is_masked_tensor(data) or not isinstance(data, Tensor):
            raise TypeError("data must be a Tensor")
        if is_masked_tensor(mask) or not isinstance(mask, Tensor):
            raise TypeError("mask must be a Tensor")
        warnings.warn("The PyTorch API of MaskedTensors is in prototype stage and will change in the near future. "
                      "Please open a Github issue for features requests and see our documentation on the "
                      "torch.masked module for further information about the project.", UserWarning, stacklevel=2)
        if data.requires_grad:
            warnings.warn("It is not recommended to create a MaskedTensor with a tensor that requires_grad. To avoid "
                          "this, you can use data.detach().clone()", UserWarning, stacklevel=2)
        _validate(data, mask)
        self._masked_data = data.detach().clone()
        # (the mask on the data's device, so a host mask may go with GPU data)
        self._masked_mask = dn.tensor(backend.to_device(mask.data, backend.device_of(data.data)).copy())
        if requires_grad:
            self._masked_data.requires_grad_(True)

    @classmethod
    def _wrap(cls, data, mask) -> "MaskedTensor":
        """An op's result: ``data`` (in the graph) and ``mask`` as they are, checked, without the warnings."""
        _validate(data, mask)
        mt = cls.__new__(cls)
        mt._masked_data, mt._masked_mask = data, mask
        return mt

    # --- what it holds
    def get_data(self) -> Tensor:
        """The data tensor, every element (masked-out ones too), in the MaskedTensor's graph."""
        return self._masked_data

    def get_mask(self) -> Tensor:
        """The boolean mask tensor (True: specified)."""
        return self._masked_mask

    def to_tensor(self, value) -> Tensor:
        """A plain tensor: the data with ``value`` at the masked-out elements (differentiable)."""
        return self._masked_data.masked_fill(~self._masked_mask, value)

    @property
    def shape(self):
        return self._masked_data.shape

    @property
    def dtype(self):
        return self._masked_data.dtype

    @property
    def ndim(self) -> int:
        return self._masked_data.ndim

    def dim(self) -> int:
        return self._masked_data.ndim

    def size(self, dim=None):
        return self._masked_data.size(dim) if dim is not None else self._masked_data.size()

    def to(self, dtype) -> "MaskedTensor":
        """The data cast to ``dtype`` (differentiable), the same mask."""
        return MaskedTensor._wrap(self._masked_data.to(dtype), self._masked_mask)

    def __len__(self):
        return len(self._masked_data)

    def __getitem__(self, index) -> "MaskedTensor":
        return MaskedTensor._wrap(self._masked_data[index], self._masked_mask[index])

    # --- autograd
    @property
    def requires_grad(self) -> bool:
        return self._masked_data.requires_grad

    @property
    def grad(self):
        """The leaf's gradient as a MaskedTensor with its mask (None before a backward pass)."""
        g = self._masked_data.grad
        return None if g is None else MaskedTensor._wrap(dn.tensor(g), self._masked_mask)

    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Backpropagate from this MaskedTensor (a 0-d one needs no ``gradient``; a MaskedTensor gradient gives
        its data)."""
        if is_masked_tensor(gradient):
            gradient = gradient.get_data()
        self._masked_data.backward(gradient, retain_graph=retain_graph, create_graph=create_graph)

    def detach(self) -> "MaskedTensor":
        return MaskedTensor._wrap(self._masked_data.detach(), self._masked_mask)

    def clone(self) -> "MaskedTensor":
        return MaskedTensor._wrap(self._masked_data.clone(), self._masked_mask.clone())

    def __repr__(self):
        fmt = "{0:8.4f}"
        if self.ndim == 0:
            value, kept = self._masked_data.data.item(), bool(self._masked_mask.data.item())
            text = (fmt.format(value) if isinstance(value, float) else str(value)) if kept else "--"
            return f"MaskedTensor({text}, {kept})"
        s = _masked_str(np.asarray(dn.to_numpy(self._masked_data.data)), np.asarray(dn.to_numpy(
            self._masked_mask.data)), fmt)
        return "MaskedTensor(\n" + "\n".join("  " + line for line in s.split("\n")) + "\n)"


def _validate(data, mask):
    """torch's MaskedTensor checks, in its order."""
    if np.dtype(mask.dtype) != np.bool_:
        raise TypeError("mask must have dtype bool.")
    if np.dtype(data.dtype) not in _DTYPES:
        raise TypeError(f"torch.{np.dtype(data.dtype).name} is not supported in MaskedTensor.")
    if data.ndim != mask.ndim:
        raise ValueError("data.dim() must equal mask.dim()")
    if tuple(data.shape) != tuple(mask.shape):
        raise ValueError("data.size() must equal mask.size()")


def _masked_str(data, mask, fmt) -> str:
    """torch's _masked_tensor_str: the rows of the last dim with ``--`` right-aligned at masked-out elements."""
    if data.ndim == 1:
        items = [fmt.format(v) if isinstance(v, float) else str(v) for v in data.tolist()]
        width = max(8 if not m else len(e) for e, m in zip(items, mask.tolist()))
        return "[" + ", ".join(e if m else "--".rjust(width) for e, m in zip(items, mask.tolist())) + "]"
    subs = [_masked_str(d, m, fmt) for d, m in zip(data, mask)]
    subs = ["\n".join("  " + line for line in s.split("\n")) for s in subs]
    return "[\n" + ",\n".join(subs) + "\n]"
