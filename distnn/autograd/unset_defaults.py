"""Default values that tell an argument left out from one passed as its default value, where PyTorch's parser tells
them apart: ``torch.sum(x, out=o)`` matches no overload (the one without ``dim`` takes no ``out``), but
``torch.sum(x, None, out=o)`` sums every element into ``o``; ``torch.sum(x, keepdim=False, out=o)`` is refused in
other words than ``torch.sum(x, out=o)``. Each stands in for its plain default wherever it is used."""
from __future__ import annotations

__all__ = ["EVERY_DIM", "NOT_KEPT", "NO_OUT", "UNBIASED"]


class _Unset:
    """A default that is falsy (``keepdim``'s stands for False) and says what it stands for."""

    __slots__ = ("_text",)

    def __init__(self, text: str):
        self._text = text

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return self._text


#: ``dim`` left out: every dim (``None``)
EVERY_DIM = _Unset("None")
#: ``keepdim`` left out: ``False``
NOT_KEPT = _Unset("False")
#: ``out`` left out: ``None``
NO_OUT = _Unset("None")
#: ``std``/``var``'s ``unbiased`` left out (PyTorch's parser refuses a None given): unbiased
UNBIASED = _Unset("True")
