"""Packed sequences (``torch.nn.utils.rnn``): a batch of sequences of different lengths, without padding.

A ``PackedSequence`` holds the steps of all sequences time-major, longest
sequence first: ``data`` (sum of lengths, *) has first the step-0 rows of every
sequence, then the step-1 rows of those at least 2 long, and so on;
``batch_sizes[t]`` counts the sequences still running at step t.
``sorted_indices`` (None when the batch came sorted) maps that longest-first
order to the caller's batch order and ``unsorted_indices`` back.
RNN, LSTM and GRU take one and give one back, each sequence run to its own end.

As in PyTorch, ``batch_sizes`` always lives on the host; here the index data
(``batch_sizes``, ``sorted_indices``, ``unsorted_indices``, the lengths that
``pad_packed_sequence`` returns) are int64 Tensors on the host, and ``data`` is
where the inputs were. Packing and unpacking are one gather / one scatter each,
so gradients flow through both to the padded input.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import device_of, get_array_module, to_numpy
from distnn.functional import shape as S

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "unpad_sequence", "pack_sequence", "unpack_sequence"]


def _ints(x, what):
    """A host int64 numpy array from a Tensor, array or list (None stays None)."""
    if x is None:
        return None
    a = to_numpy(x.data if isinstance(x, Tensor) else x)
    a = np.asarray(a)
    if a.dtype.kind not in "iuf" and a.size:
        raise TypeError(f"{what} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64)


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """``PackedSequence(data, batch_sizes, sorted_indices=None, unsorted_indices=None)``, as PyTorch's.

    Build one with :func:`pack_padded_sequence` or :func:`pack_sequence`, not by
    hand. ``unsorted_indices`` left out is the inverse of ``sorted_indices``.
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise TypeError("PackedSequence: batch_sizes is required")
        wrap = lambda a: None if a is None else Tensor(_ints(a, "PackedSequence indices"))  # noqa: E731
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, wrap(batch_sizes), wrap(sorted_indices), wrap(unsorted_indices))

    def to(self, dtype_or_device):
        """``data`` cast or moved (the index Tensors stay on the host, as PyTorch's batch_sizes)."""
        data = self.data.to(dtype_or_device)
        return self if data is self.data else self._replace(data=data)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    @property
    def is_cuda(self):
        return device_of(self.data.data) != "cpu"


def invert_permutation(permutation):
    """The inverse of an index permutation (None for None), as an int64 Tensor."""
    if permutation is None:
        return None
    p = _ints(permutation, "permutation")
    out = np.empty_like(p)
    out[p] = np.arange(p.size, dtype=np.int64)
    return Tensor(out)


# --------------------------------------------------------------- positions
def _positions(batch_sizes, order, T, batch_first):
    """For each packed row, its flat position in a padded (T, B) grid ((B, T) when batch_first) whose batch
    axis is in the caller's order (``order``: sorted_indices, None when already sorted)."""
    bs = np.asarray(batch_sizes)
    B = int(bs[0])
    t = np.repeat(np.arange(bs.size), bs)
    b = np.arange(t.size) - np.repeat(np.cumsum(bs) - bs, bs)  # the row's place in its step: its sorted batch index
    if order is not None:
        b = np.asarray(order)[b]
    return b * T + t if batch_first else t * B + b


def _gather_rows(x, pos):
    """Rows ``pos`` of x with its two leading axes flattened (a gather; its gradient scatters back)."""
    flat = S.Reshape.apply(x, shape=(x.shape[0] * x.shape[1],) + tuple(x.shape[2:]))
    return flat[get_array_module(x.data).asarray(pos)]


def _scatter_rows(data, pos, lead, value):
    """A (lead[0], lead[1], *) Tensor filled with ``value``, with data's rows written at flat positions ``pos``."""
    xp = get_array_module(data.data)
    rest = tuple(data.shape[1:])
    base = xp.full((lead[0] * lead[1],) + rest, value, dtype=data.dtype)
    out = S.SetItem.apply(base, data, index=xp.asarray(pos))
    return S.Reshape.apply(out, shape=tuple(lead) + rest)


def _padded_sorted(packed):
    """The packed data as a zero-padded (T, B, *) Tensor in its longest-first order (what the RNNs run)."""
    bs = packed.batch_sizes.data
    return _scatter_rows(packed.data, _positions(bs, None, bs.size, False), (bs.size, int(bs[0])), 0)


def _pack_sorted(x, batch_sizes):
    """The inverse of :func:`_padded_sorted`: the live rows of a (T, B, *) Tensor, packed."""
    return _gather_rows(x, _positions(batch_sizes, None, x.shape[0], False))


# ------------------------------------------------------------------ public
def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):  # noqa: A002
    """Pack a padded (T, B, *) batch ((B, T, *) when batch_first) whose sequence b is ``lengths[b]`` long.

    ``enforce_sorted=True`` wants lengths longest first (the packed batch keeps
    its order); False sorts them (stably) and records the order in
    ``sorted_indices``. Lengths must be in [1, T]. Returns a :class:`PackedSequence`.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"pack_padded_sequence: input must be a Tensor, got {type(input).__name__}")
    lengths = _ints(lengths, "pack_padded_sequence: lengths")
    if lengths.ndim != 1:
        raise ValueError(f"pack_padded_sequence: lengths must be 1-D, got shape {lengths.shape}")
    if input.ndim < 2:
        raise ValueError(f"pack_padded_sequence: input must have a time and a batch axis, got shape "
                         f"{tuple(input.shape)}")
    T, B = (input.shape[1], input.shape[0]) if batch_first else (input.shape[0], input.shape[1])
    if lengths.size == 0 or B == 0:
        raise ValueError("pack_padded_sequence: cannot pack an empty batch")
    if lengths.size != B:  # (PyTorch packs the first len(lengths) sequences, or reads past the batch)
        raise ValueError(f"pack_padded_sequence: expected {B} lengths (the batch size of input "
                         f"{tuple(input.shape)}), got {lengths.size}")
    if enforce_sorted and np.any(lengths[1:] > lengths[:-1]):
        raise ValueError("pack_padded_sequence: `lengths` array must be sorted in decreasing order when "
                         "`enforce_sorted` is True. You can pass `enforce_sorted=False` to pack_padded_sequence "
                         f"and/or pack_sequence to sidestep this requirement (got lengths {lengths.tolist()})")
    if np.any(lengths <= 0):
        raise ValueError("pack_padded_sequence: Length of all samples has to be greater than 0, but found an "
                         f"element in 'lengths' that is <= 0 (got {lengths.tolist()})")
    if np.any(lengths > T):  # (PyTorch reads past the padded input here)
        raise ValueError(f"pack_padded_sequence: lengths {lengths.tolist()} exceed the input's {T} time steps "
                         f"(input shape {tuple(input.shape)}, batch_first={batch_first})")
    order = None if enforce_sorted else np.argsort(-lengths, kind="stable")
    ls = lengths if order is None else lengths[order]
    batch_sizes = (ls[None, :] > np.arange(int(ls[0]))[:, None]).sum(axis=1).astype(np.int64)
    pos = _positions(batch_sizes, order, T, batch_first)  # (batch_first: positions in (B, T), still one gather)
    return PackedSequence(_gather_rows(input, pos), batch_sizes, order)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Unpack to ``(padded, lengths)``: padded (T, B, *) ((B, T, *) when batch_first) in the caller's batch
    order, ``padding_value`` past each end, T the longest length or ``total_length``; lengths int64."""
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence, got {type(sequence).__name__}")
    bs = sequence.batch_sizes.data
    T = bs.size
    if total_length is not None:
        if total_length < T:
            raise ValueError("Expected total_length to be at least the length of the longest sequence in input, "
                             f"but got total_length={total_length} and max sequence length being {T}")
        T = int(total_length)
    order = None if sequence.sorted_indices is None else sequence.sorted_indices.data
    B = int(bs[0])
    lead = (B, T) if batch_first else (T, B)
    padded = _scatter_rows(sequence.data, _positions(bs, order, T, batch_first), lead, padding_value)
    lengths = (bs[None, :] > np.arange(B)[:, None]).sum(axis=1).astype(np.int64)  # longest first
    if sequence.unsorted_indices is not None:
        lengths = lengths[sequence.unsorted_indices.data]
    return padded, Tensor(lengths)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack (L_i, *) Tensors into (max L, B, *) ((B, max L, *) when batch_first), padded with
    ``padding_value`` after each sequence (``padding_side="left"``: before it)."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    if isinstance(sequences, Tensor):
        sequences = [sequences[i] for i in range(sequences.shape[0])]
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence: received an empty list of sequences")
    for i, s in enumerate(sequences):
        if not isinstance(s, Tensor) or s.ndim < 1:
            raise TypeError(f"pad_sequence: sequence {i} must be a Tensor with a time axis, got "
                            f"{type(s).__name__} {tuple(getattr(s, 'shape', ()))}")
        if s.shape[1:] != sequences[0].shape[1:]:
            raise ValueError(f"pad_sequence: sequence {i} has shape {tuple(s.shape)}, but sequence 0 has "
                             f"{tuple(sequences[0].shape)}: all must agree past the time axis")
    lengths = np.array([s.shape[0] for s in sequences], dtype=np.int64)
    B, T = len(sequences), int(lengths.max())
    t = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    if padding_side == "left":
        t = t + np.repeat(T - lengths, lengths)
    b = np.repeat(np.arange(B), lengths)
    pos = b * T + t if batch_first else t * B + b
    data = sequences[0] if B == 1 else S.Concat.apply(*sequences, axis=0)
    return _scatter_rows(data, pos, (B, T) if batch_first else (T, B), padding_value)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of unpadded (L_i, *) sequences of a padded batch (the inverse of :func:`pad_sequence`)."""
    lengths = _ints(lengths, "unpad_sequence: lengths")
    if batch_first:
        return [padded_sequences[i, :n] for i, n in enumerate(lengths.tolist())]
    return [padded_sequences[:n, i] for i, n in enumerate(lengths.tolist())]


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of (L_i, *) Tensors (longest first unless ``enforce_sorted=False``)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """The list of (L_i, *) sequences in a :class:`PackedSequence`, in the caller's order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
