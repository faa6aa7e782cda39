"""``default_collate``: a list of samples -> one batch (``torch.utils.data.default_collate``).

The structure of a sample is kept and each leaf gains a leading batch axis, as
PyTorch's: distnn Tensors and numpy arrays are stacked into a distnn Tensor;
Python ints (and bools) become an int64 (bool) Tensor, Python floats a float64
one, numpy scalars a Tensor of their dtype; strings and bytes stay a list;
dicts (and other mappings) are collated per key, namedtuples per field, other
sequences per position (a tuple gives a list, as PyTorch's). Samples of
different sizes are PyTorch's ``RuntimeError``s; an element of no known kind,
or a numpy array of strings or objects, its ``TypeError``.
"""
from __future__ import annotations

import collections.abc
import copy

import numpy as np

_ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _stack(arrays):
    """The arrays (each one sample) stacked on a new first axis, as a Tensor; PyTorch's error if sizes differ."""
    from ..autograd import Tensor
    from ..functional import stack

    tensors = [a if isinstance(a, Tensor) else Tensor(np.asarray(a)) for a in arrays]
    first = tuple(tensors[0].shape)
    for i, t in enumerate(tensors[1:], 1):
        if tuple(t.shape) != first:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first)} at entry 0 "
                               f"and {list(t.shape)} at entry {i}")
    return stack(tensors, 0)


def _numpy_array(batch):
    if batch[0].dtype.kind in "SUaO":  # strings and objects have no tensor
        raise TypeError(_ERROR.format(batch[0].dtype))
    return _stack(batch)


def _tensor_of(batch, dtype=None):
    from ..autograd import Tensor

    return Tensor(np.asarray(batch, dtype=dtype))


def _leaf_collate(elem):
    """The collate function for a leaf element (PyTorch's ``default_collate_fn_map``), or None."""
    from ..autograd import Tensor

    if isinstance(elem, Tensor):
        return _stack
    if isinstance(elem, np.ndarray):
        return _numpy_array
    if isinstance(elem, (np.bool_, np.number, np.object_)):
        return _tensor_of
    if isinstance(elem, float):
        return lambda batch: _tensor_of(batch, np.float64)
    if isinstance(elem, int):  # (bool too: a bool Tensor, as torch.tensor([True, False]))
        return _tensor_of
    if isinstance(elem, (str, bytes)):
        return lambda batch: batch
    return None


def default_collate(batch):
    """Collate ``batch`` (a list of samples of one structure) into a batch of that structure (module doc)."""
    elem = batch[0]
    leaf = _leaf_collate(elem)
    if leaf is not None:
        return leaf(batch)
    elem_type = type(elem)
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update(collated)
                return clone
            return elem_type(collated)
        except TypeError:  # a mapping that cannot be built from a dict
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if not all(len(e) == size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        collated = [default_collate(samples) for samples in zip(*batch)]  # (tuples: strings stay tuples, as PyTorch's)
        if isinstance(elem, tuple):
            return collated  # a list, as PyTorch's (its "backwards compatibility")
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, value in enumerate(collated):
                    clone[i] = value
                return clone
            return elem_type(collated)
        except TypeError:
            return collated
    raise TypeError(_ERROR.format(elem_type))

