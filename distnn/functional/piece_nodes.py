"""The nodes of the pieces ``unbind``, ``split``/``chunk``, ``split_with_sizes`` and ``tensor_split`` return,
named as PyTorch's.

Each piece is recorded as the slice of the input it is (a :class:`~distnn.functional.indexing.GetItem`: the same
forward, backward, double backward and view rules), but PyTorch's pieces come from one multi-output node, named
after the op (``UnbindBackward0``, ``SplitBackward0``, ``SplitWithSizesBackward0``, ``UnsafeSplitBackward0``,
``UnsafeSplitWithSizesBackward0``), not after the slice
(``SelectBackward0``, ``SliceBackward0``). A subclass per op gives the name at no cost on the forward path.
``tensor_split``'s pieces (and ``narrow``'s view) are plain slices, but always recorded as one (:class:`SlicePiece`).
"""
from __future__ import annotations

from .indexing import GetItem


class _Piece(GetItem):
    torch_name_of_call = None  # (the op's name, not the slice's that GetItem reads from its index)


class UnbindPiece(_Piece):
    torch_name = "UnbindBackward0"


class SplitPiece(_Piece):
    torch_name = "SplitBackward0"


class SplitWithSizesPiece(_Piece):
    torch_name = "SplitWithSizesBackward0"


class UnsafeSplitPiece(SplitPiece):  # (unsafe_split's and unsafe_chunk's)
    torch_name = "UnsafeSplitBackward0"


class UnsafeSplitWithSizesPiece(SplitWithSizesPiece):
    torch_name = "UnsafeSplitWithSizesBackward0"


#: the node class of a piece, by the op name ``view_index.mark_pieces`` takes
PIECE_NODES = {"Unbind": UnbindPiece, "Split": SplitPiece, "SplitWithSizes": SplitWithSizesPiece}
#: the node class of an ``unsafe_*`` op's piece, by the class of the piece the safe op makes
UNSAFE_PIECE_NODES = {SplitPiece: UnsafeSplitPiece, SplitWithSizesPiece: UnsafeSplitWithSizesPiece}


class SlicePiece(GetItem):
    """A slice PyTorch records with ``slice`` whatever its bounds (``tensor_split``'s pieces, ``narrow``): named
    SliceBackward0 even where it keeps the whole dim, which ``x[:, 0:n]`` records as nothing (AliasBackward0)."""

    torch_name = "SliceBackward0"
    torch_name_of_call = None


def slice_view(x, index):
    """``x[index]`` (``index`` a tuple of slices) as a view recorded by :class:`SlicePiece`, noted as indexing
    notes its views (so an in-place change of either reaches the other)."""
    t = SlicePiece.apply(x, index=index)
    if t._vc is not None and t._vc is x._vc:
        t.__dict__["_view_of"] = (x, index)
    return t
