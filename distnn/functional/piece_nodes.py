"""The nodes of the pieces ``unbind``, ``split``/``chunk`` and ``split_with_sizes`` return, named as PyTorch's.

Each piece is recorded as the slice of the input it is (a :class:`~distnn.functional.indexing.GetItem`: the same
forward, backward, double backward and view rules), but PyTorch's pieces come from one multi-output node, named
after the op (``UnbindBackward0``, ``SplitBackward0``, ``SplitWithSizesBackward0``, ``UnsafeSplitBackward0``,
``UnsafeSplitWithSizesBackward0``), not after the slice
(``SelectBackward0``, ``SliceBackward0``). A subclass per op gives the name at no cost on the forward path.
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
