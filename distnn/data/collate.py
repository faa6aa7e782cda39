"""``default_collate``: a list of samples -> one batch (``torch.utils.data.default_collate``);
``default_convert``: one sample's numpy arrays -> Tensors (``torch.utils.data.default_convert``, the
DataLoader's default with ``batch_size=None``).

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



def default_convert(data):
    """One sample with its numpy arrays and numpy scalars made distnn Tensors, as PyTorch's
    ``default_convert`` (the DataLoader's ``collate_fn`` with batching off): Tensors, Python numbers,
    strings and numpy arrays of strings or objects stay as they are; mappings, namedtuples and other
    sequences are converted element by element (a tuple gives a list, as PyTorch's)."""
    from ..autograd import Tensor

    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if data.dtype.kind in "SUaO" else Tensor(data)
    if isinstance(data, (np.bool_, np.number)):
        return Tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(data[key]) for key in data}
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update(converted)
                return clone
            return type(data)(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return type(data)([default_convert(d) for d in data])
        except TypeError:  # (a sequence that cannot be rebuilt, e.g. range)
            return [default_convert(d) for d in data]
    return data
