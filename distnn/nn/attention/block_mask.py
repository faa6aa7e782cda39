"""``BlockMask`` and ``create_block_mask``: PyTorch 2.13's block-sparse description of a flex_attention mask.

A BlockMask tiles the (Q_LEN, KV_LEN) scores into Q_BLOCK_SIZE x KV_BLOCK_SIZE blocks and lists, per row of
blocks, the blocks with some allowed entry: ``kv_num_blocks`` (..., rows) and ``kv_indices`` (..., rows, cols)
(the first ``kv_num_blocks`` entries of each row are block columns; the rest, the other columns, do not
count); ``full_kv_*`` the same for blocks whose every entry is allowed (``create_block_mask`` puts a block in
one list or the other, as PyTorch's does with ``separate_full_blocks``); ``q_*`` / ``full_q_*`` the
transposed lists. These are int32 Tensors computed as PyTorch computes them (``to_dense`` equals PyTorch's).

Only PyTorch's compiled kernels skip blocks. Its eager flex_attention, which distnn's follows, applies
``mask_mod`` to every score and ignores the block lists: the result does not depend on BLOCK_SIZE.
"""
from __future__ import annotations

import functools
import itertools
import operator

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_numpy

from ._mods import _array_module, create_mask, mod_arity, noop_mask

__all__ = ["BlockMask", "create_block_mask"]

_DEFAULT_SPARSE_BLOCK_SIZE = 128


def _raw(t):
    return t.data if isinstance(t, Tensor) else t


def _sliced_mask_mod_error(batch, head, token_q, token_kv):
    """The mask_mod of a sliced BlockMask (PyTorch's): using it is an error."""
    raise RuntimeError("Cannot use mask_mod from a sliced BlockMask. When you slice a BlockMask using [], the "
                       "mask_mod attribute is reset. You must set it from the original BlockMask's mask_mod.")


def _ordered_to_dense(num_blocks, indices, num_cols):
    """int32 (..., rows, num_cols): 1 at the first ``num_blocks`` block columns listed per row."""
    xp = get_array_module(indices)
    listed = xp.arange(indices.shape[-1]) < num_blocks[..., None]  # (..., rows, entries)
    hits = (indices[..., None] == xp.arange(num_cols)) & listed[..., None]  # (..., rows, entries, cols)
    return hits.any(axis=-2).astype(np.int32)


def _dense_to_ordered(dense):
    """(num_blocks, indices) of a 0/1 (..., rows, cols) array: per row the count, then the listed columns
    first in ascending order and the others after them (PyTorch's stable descending argsort)."""
    xp = get_array_module(dense)
    dense = dense.astype(np.int32)
    order = xp.argsort(1 - dense, axis=-1, kind="stable") if xp is np else xp.argsort(1 - dense, axis=-1)
    return dense.sum(axis=-1).astype(np.int32), order.astype(np.int32)


def _transpose_ordered(num_blocks, indices):
    return _dense_to_ordered(_ordered_to_dense(num_blocks, indices, indices.shape[-1]).swapaxes(-1, -2))


def _block_sums(mask, q_block, kv_block):
    """The count of allowed entries per block of a bool (B, H, Q, KV) mask, padded with False to whole blocks."""
    xp = get_array_module(mask)
    B, H, Q, KV = mask.shape
    rows, cols = -(-Q // q_block), -(-KV // kv_block)
    padded = xp.zeros((B, H, rows * q_block, cols * kv_block), dtype=np.int32)
    padded[..., :Q, :KV] = mask
    return padded.reshape(B, H, rows, q_block, cols, kv_block).sum(axis=(3, 5))


class BlockMask:
    """PyTorch's ``BlockMask`` (see the module docstring): ``seq_lengths`` (Q_LEN, KV_LEN), the block lists as
    int32 Tensors, ``BLOCK_SIZE`` (Q_BLOCK_SIZE, KV_BLOCK_SIZE) and ``mask_mod``; ``shape``, ``numel()``,
    ``sparsity()`` (the percentage of blocks skipped), ``to_dense()``, ``as_tuple()``, ``to_string()``,
    indexing over batch, head and query-block rows. Made by ``create_block_mask`` or ``from_kv_blocks``."""

    def __init__(self, seq_lengths, kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, q_num_blocks,
                 q_indices, full_q_num_blocks, full_q_indices, BLOCK_SIZE=(128, 128), mask_mod=noop_mask):
        if _raw(kv_indices).ndim < 2:
            raise RuntimeError("BlockMask must have at least 2 dimensions")
        if (full_kv_num_blocks is None) != (full_kv_indices is None):
            raise AssertionError("full_kv_num_blocks and full_kv_indices must be both provided or omitted")
        if (full_q_num_blocks is None) != (full_q_indices is None):
            raise AssertionError("full_q_num_blocks and full_q_indices must be both provided or omitted")
        self.seq_lengths = tuple(seq_lengths)
        wrap = lambda t: None if t is None else (t if isinstance(t, Tensor) else Tensor(t))  # noqa: E731
        self.kv_num_blocks, self.kv_indices = wrap(kv_num_blocks), wrap(kv_indices)
        self.full_kv_num_blocks, self.full_kv_indices = wrap(full_kv_num_blocks), wrap(full_kv_indices)
        self.q_num_blocks, self.q_indices = wrap(q_num_blocks), wrap(q_indices)
        self.full_q_num_blocks, self.full_q_indices = wrap(full_q_num_blocks), wrap(full_q_indices)
        self.BLOCK_SIZE = tuple(BLOCK_SIZE)
        self.mask_mod = mask_mod

    @classmethod
    def from_kv_blocks(cls, kv_num_blocks, kv_indices, full_kv_num_blocks=None, full_kv_indices=None,
                       BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE, mask_mod=None, seq_lengths=None, compute_q_blocks=True):
        """A BlockMask from its kv lists, the q lists computed from them (PyTorch's ``from_kv_blocks``)."""
        kv_num_blocks, kv_indices = _raw(kv_num_blocks), _raw(kv_indices)
        full_kv_num_blocks, full_kv_indices = _raw(full_kv_num_blocks), _raw(full_kv_indices)
        if kv_indices.ndim < 2:
            raise RuntimeError("BlockMask must have at least 2 dimensions")
        if (full_kv_num_blocks is None) != (full_kv_indices is None):
            raise AssertionError("full_kv_num_blocks and full_kv_indices must be both provided or omitted")
        q_lists, full_q_lists = (None, None), (None, None)
        if compute_q_blocks:
            q_lists = _transpose_ordered(kv_num_blocks, kv_indices)
            if full_kv_num_blocks is not None:
                full_q_lists = _transpose_ordered(full_kv_num_blocks, full_kv_indices)
        if isinstance(BLOCK_SIZE, int):
            BLOCK_SIZE = (BLOCK_SIZE, BLOCK_SIZE)
        if seq_lengths is None:
            seq_lengths = (kv_indices.shape[-2] * BLOCK_SIZE[0], kv_indices.shape[-1] * BLOCK_SIZE[1])
        return cls(seq_lengths, kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, *q_lists,
                   *full_q_lists, BLOCK_SIZE=BLOCK_SIZE, mask_mod=noop_mask if mask_mod is None else mask_mod)

    @property
    def shape(self):
        """(*batch dims, Q_LEN, KV_LEN): usually (B, H, Q_LEN, KV_LEN)."""
        return tuple(self.kv_indices.shape[:-2]) + self.seq_lengths

    def numel(self):
        """The entries of ``shape``, sparsity not counted."""
        return functools.reduce(operator.mul, self.shape, 1)

    def sparsity(self):
        """The percentage of the scores in blocks that are listed in no list (PyTorch's formula)."""
        computed = int(_raw(self.kv_num_blocks).sum())
        if self.full_kv_num_blocks is not None:
            computed += int(_raw(self.full_kv_num_blocks).sum())
        return 100 * (1 - computed * self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1] / self.numel())

    def to_dense(self):
        """int32 (..., rows, cols) Tensor: 1 where a block is listed (partial or full), as PyTorch's."""
        indices = _raw(self.kv_indices)
        dense = _ordered_to_dense(_raw(self.kv_num_blocks), indices, indices.shape[-1])
        if self.full_kv_num_blocks is not None:
            full = _raw(self.full_kv_indices)
            dense |= _ordered_to_dense(_raw(self.full_kv_num_blocks), full, full.shape[-1])
        return Tensor(dense)

    def as_tuple(self, flatten=True):
        """PyTorch's tuple: seq_lengths, the eight block lists, its four dQ write-order fields (None in
        distnn, which has no deterministic flash backward), BLOCK_SIZE, mask_mod; ``flatten=False`` keeps
        seq_lengths and BLOCK_SIZE as pairs."""
        lengths, sizes = (self.seq_lengths, self.BLOCK_SIZE) if flatten else ((self.seq_lengths,), (self.BLOCK_SIZE,))
        return (*lengths, self.kv_num_blocks, self.kv_indices, self.full_kv_num_blocks, self.full_kv_indices,
                self.q_num_blocks, self.q_indices, self.full_q_num_blocks, self.full_q_indices,
                None, None, None, None, *sizes, self.mask_mod)

    def __getitem__(self, index):
        """The BlockMask of some batches, heads and query-block rows (PyTorch's indexing: an int keeps its
        dimension; the result's mask_mod is an error stub, as PyTorch's)."""
        index = index if isinstance(index, tuple) else (index,)
        padded = (*index, slice(None), slice(None), slice(None))[:3]
        sizes = self.kv_num_blocks.shape[:3]
        index = tuple((slice(i + n, i + n + 1) if -n <= i < 0 else slice(i, i + 1)) if isinstance(i, int)
                      else (_raw(i) if isinstance(i, Tensor) else i) for i, n in zip(padded, sizes))
        pick = lambda t: None if t is None else _raw(t)[index]  # noqa: E731
        return BlockMask.from_kv_blocks(pick(self.kv_num_blocks), pick(self.kv_indices),
                                        pick(self.full_kv_num_blocks), pick(self.full_kv_indices),
                                        BLOCK_SIZE=self.BLOCK_SIZE, mask_mod=_sliced_mask_mod_error,
                                        seq_lengths=self.seq_lengths, compute_q_blocks=self.q_indices is not None)

    def __repr__(self):
        def shape_or_none(t):
            return None if t is None else tuple(t.shape)

        name = getattr(self.mask_mod, "__name__", self.mask_mod)
        return (f"BlockMask(\n    kv_num_blocks={shape_or_none(self.kv_num_blocks)},\n"
                f"    kv_indices={shape_or_none(self.kv_indices)},\n"
                f"    full_kv_num_blocks={shape_or_none(self.full_kv_num_blocks)},\n"
                f"    full_kv_indices={shape_or_none(self.full_kv_indices)},\n"
                f"    q_num_blocks={shape_or_none(self.q_num_blocks)},\n"
                f"    q_indices={shape_or_none(self.q_indices)},\n"
                f"    full_q_num_blocks={shape_or_none(self.full_q_num_blocks)},\n"
                f"    full_q_indices={shape_or_none(self.full_q_indices)},\n    BLOCK_SIZE={self.BLOCK_SIZE},\n"
                f"    shape={self.shape},\n    sparsity={self.sparsity():.2f}%,\n    mask_mod={name}\n)")

    def __str__(self):
        return f"BlockMask(shape={self.shape}, sparsity={self.sparsity():.2f}%, \n{self.to_string().strip()}\n)"

    def to_string(self, grid_size=(20, 20), limit=4):
        """PyTorch's picture of the blocks: per (batch, head), a grid of at most ``grid_size`` cells, '█' where
        all the blocks a cell covers are listed, '░' where some are, ' ' where none; ``limit`` pictures."""
        dense = to_numpy(_raw(self.to_dense()))
        *batch_dims, rows, cols = dense.shape
        if isinstance(grid_size, int):
            grid_size = (rows, cols) if grid_size == -1 else (grid_size, grid_size)
        row_step, col_step = max(1, -(-rows // grid_size[0])), max(1, -(-cols // grid_size[1]))
        pictures = []
        for n, batch_idx in enumerate(itertools.product(*[range(i) for i in batch_dims])):
            if n == limit:
                pictures += ["...", "To print out more, set BlockMask.to_string(limit=N)",
                             "You can also index (BlockMask[batch, head]) to choose a specific batch or head"]
                break
            one = dense[batch_idx]
            lines = [f"{batch_idx}"]
            for r in range(0, rows, row_step):  # (a picture of at most grid_size cells: a loop over cells)
                share = [one[r:r + row_step, c:c + col_step].mean() for c in range(0, cols, col_step)]
                lines.append("".join(("█" if s == 1 else " " if s == 0 else "░") * 2 for s in share))
            pictures.append("\n".join(lines) + "\n")
        return "\n".join(pictures)


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device=None, BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE,
                      _compile=False, separate_full_blocks=True):
    """PyTorch's ``create_block_mask``: the BlockMask of a mask_mod over (B, H, Q_LEN, KV_LEN) (B or H None:
    1, shared by every batch or head), blocks of ``BLOCK_SIZE`` (an int, or (Q_BLOCK_SIZE, KV_BLOCK_SIZE));
    ``separate_full_blocks`` lists fully allowed blocks apart from partial ones. ``device``: distnn's default
    device when None. (``_compile`` is accepted and ignored: distnn has no compiler.)"""
    if mod_arity(mask_mod) != 4:
        raise AssertionError(f"create-block_mask requires a mask_mod function! Got {mask_mod}")
    q_block, kv_block = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
    if q_block <= 0 or kv_block <= 0:
        raise ValueError(f"create_block_mask: BLOCK_SIZE must be positive, got {BLOCK_SIZE}")
    _array_module(device)  # (refuses an unknown device)
    sums = _block_sums(_raw(create_mask(mask_mod, B, H, Q_LEN, KV_LEN, device)), q_block, kv_block)
    if separate_full_blocks:
        whole = q_block * kv_block
        partial, full = (sums > 0) & (sums < whole), sums == whole
        full_lists = _dense_to_ordered(full)
    else:
        partial, full_lists = sums > 0, (None, None)
    return BlockMask.from_kv_blocks(*_dense_to_ordered(partial), *full_lists, BLOCK_SIZE=(q_block, kv_block),
                                    mask_mod=mask_mod, seq_lengths=(Q_LEN, KV_LEN))
