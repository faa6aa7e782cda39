"""``embedding``: rows of a weight looked up by integer indices, as ``torch.nn.functional.embedding``.

With ``max_norm``, the rows looked up are first renormalized in place in the
weight (PyTorch's ``embedding_renorm_``), under no_grad: the weight's data
changes and the lookup reads the new rows; the gradient is the plain lookup's.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.mutation_guard import will_write
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._into import destinations
from .shape import scatter_add


class EmbeddingLookup(Function):
    """``weight[indices]``; backward scatter-adds rows (repeated indices accumulate).

    The row ``padding_idx`` (if any) gets no gradient, as in PyTorch. With ``scale_grad_by_freq``
    each gradient row is divided by the number of times its index occurs in ``indices``.
    """

    torch_name = "EmbeddingBackward0"

    # Backward reads only the indices, never the weight, as PyTorch's: a weight renormalized in place
    # (max_norm) by a later lookup still lets an earlier one backward; a Tensor of indices changed in place
    # before backward is refused (the gradient would go to the new rows).
    reads = ((1,), ())

    def forward(self, weight, indices, padding_idx=None, scale_grad_by_freq=False, sparse=False):
        self.indices, self.num, self.padding_idx = indices, weight.shape[0], padding_idx
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        return weight[indices]

    def backward(self, grad):
        xp = get_array_module(grad)
        dim = grad.shape[-1]
        flat_idx = self.indices.reshape(-1)
        flat_g = grad.reshape(-1, dim)
        if self.sparse:  # one gradient row per lookup, as PyTorch's sparse embedding backward
            if self.scale_grad_by_freq:
                raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with sparse gradients")
            from distnn.sparse.grads import sparse_weight_grad

            sparse = sparse_weight_grad(self, flat_idx, flat_g, self.num, self.padding_idx)
            if sparse is not None:
                return sparse, None
        if self.scale_grad_by_freq:  # each occurrence's row scaled before the sum, as PyTorch's CPU kernel
            counts = xp.bincount(flat_idx, minlength=self.num)
            flat_g = flat_g * (1.0 / counts[flat_idx]).astype(grad.dtype)[:, None]
        dest = destinations(self, 1)[0]  # the engine's destination for the weight gradient
        if dest is not None and dest.dtype == grad.dtype:
            out = dest
            out[...] = 0
        else:
            out = xp.zeros((self.num, dim), dtype=grad.dtype)
        scatter_add(out, flat_idx, flat_g)
        if self.padding_idx is not None:
            out[self.padding_idx] = 0
        return out, None


def _renorm_(weight, idx, max_norm, norm_type):
    """PyTorch's ``embedding_renorm_``: each distinct row of ``idx`` whose ``norm_type``-norm exceeds
    ``max_norm`` is scaled in place by max_norm / (norm + 1e-7)."""
    w = weight.data if isinstance(weight, Tensor) else weight
    xp = get_array_module(w)
    rows = xp.unique(idx)
    # The norm in the weight's dtype and the scale in float64 then rounded to it, as PyTorch computes them.
    norms = xp.linalg.norm(w[rows], ord=norm_type, axis=1).astype(np.float64)
    big = norms > max_norm
    if bool(big.any()):
        rows = rows[big]
        will_write(w)
        w[rows] *= (max_norm / (norms[big] + 1e-7)).astype(w.dtype)[:, None]
    if isinstance(weight, Tensor):
        weight._bump_version()  # an in-place change, as PyTorch's (even when no row was too long)


def _embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, who):
    """``embedding`` with ``who`` (the function's or the layer's name) in its error messages."""
    w = weight.data if isinstance(weight, Tensor) else weight
    if w.ndim != 2:
        raise ValueError(f"{who}: weight must be 2-D (num_embeddings, embedding_dim), got shape {tuple(w.shape)}")
    num = w.shape[0]
    xp = get_array_module(w)
    idx = xp.asarray(input.data if isinstance(input, Tensor) else input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{who}: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num):
        raise IndexError(
            f"{who}: index out of range: indices span [{int(idx.min())}, {int(idx.max())}] "
            f"but num_embeddings is {num}"
        )
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"{who}: padding_idx {padding_idx} must be within num_embeddings ({num})")
        padding_idx %= num
    if max_norm is not None:  # on the raw array: nothing is recorded, as under PyTorch's no_grad
        _renorm_(weight, idx, max_norm, norm_type)
    if isinstance(input, Tensor) and input.data is idx:  # (the caller's memory: kept a Tensor, version-checked)
        idx = input
    return EmbeddingLookup.apply(weight, idx, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq,
                                 sparse=bool(sparse))


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """``weight[input]``: integer indices of any shape -> ``input.shape + (embedding_dim,)``.

    As ``torch.nn.functional.embedding``: the ``padding_idx`` row gets no gradient; with ``max_norm``,
    the rows looked up whose ``norm_type``-norm exceeds it are first rescaled IN PLACE in ``weight`` to
    norm ``max_norm`` (so ``weight`` changes); ``scale_grad_by_freq`` divides each row's gradient by the
    count of its index in ``input``. ``sparse=True`` makes the gradient of a leaf ``weight`` a sparse COO
    tensor (:class:`distnn.sparse.SparseTensor`) with one entry per lookup (uncoalesced), as PyTorch's;
    a weight made by other ops gets a dense gradient.
    """
    return _embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, "embedding")


__all__ = ["embedding", "one_hot"]


def one_hot(tensor, num_classes=-1):
    """``torch.nn.functional.one_hot``: class indices of any shape -> ``tensor.shape + (num_classes,)`` int64
    zeros with a 1 at each index; ``num_classes=-1`` takes the largest index + 1. Any integer dtype is taken
    (PyTorch's takes int64 only); anything else is a TypeError."""
    xp = get_array_module(tensor.data if isinstance(tensor, Tensor) else tensor)
    idx = xp.asarray(tensor.data if isinstance(tensor, Tensor) else tensor)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: the input must hold integer class indices, got dtype {idx.dtype}")
    num_classes = int(num_classes)
    if num_classes == -1:
        if idx.size == 0:
            raise ValueError("one_hot: cannot infer the number of classes from an empty tensor; pass num_classes")
        num_classes = int(idx.max()) + 1
    elif num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be -1 (inferred) or >= 0, got {num_classes}")
    if idx.size and int(idx.min()) < 0:
        raise ValueError(f"one_hot: class values must be non-negative, got {int(idx.min())}")
    if idx.size and int(idx.max()) >= num_classes:
        raise ValueError(f"one_hot: class values must be smaller than num_classes ({num_classes}), got "
                         f"{int(idx.max())}")
    return Tensor((idx[..., None] == xp.arange(num_classes)).astype(np.int64))
