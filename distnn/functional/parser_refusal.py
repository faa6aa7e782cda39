"""PyTorch's argument parser's refusal of a call that matches none of an op's overloads, built in one place:

    name() received an invalid combination of arguments - got (Tensor, int, out=Tensor), but expected one of:
     * (Tensor input, *, Tensor out = None)
     * (Tensor input, int dim, bool keepdim = False, *, Tensor out = None)
          didn't match because some of the keywords were incorrect: out

What was given is listed as PyTorch's parser lists it: the positional arguments' types in order, then the keywords
as ``key=type`` (PyTorch lists them last given first: :func:`keywords_as_listed`), and, where only keywords were
given, a trailing ", ". Each signature may carry a note on the line under it, as PyTorch writes one where the call
had as many arguments as the signature.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = ["invalid_combination", "keywords_as_listed", "marked_type_name", "parser_type_name"]

NOTE_INDENT = "      "


def invalid_combination(name: str, positional: Sequence[str], signatures: Sequence[str], *,
                        keywords: Sequence[str] = (), notes: Mapping[int, str] | None = None) -> TypeError:
    """PyTorch's TypeError for a call of ``name`` (as the message names it: ``clamp``, ``special_hermite_...``)
    that fits none of ``signatures`` (each without its leading " * ", e.g. ``"(Tensor input, *, Tensor out =
    None)"``). ``positional``: the types given by position (the input's first, for a function), as
    :func:`parser_type_name` names them; ``keywords``: ``"key=type"`` entries, in the order PyTorch lists them;
    ``notes``: the line written under the signature at that index (e.g. ``"didn't match because some of the
    keywords were incorrect: out"``)."""
    got = ", ".join([*positional, *keywords]) + (", " if keywords and not positional else "")
    lines = [f"{name}() received an invalid combination of arguments - got ({got}), but expected one of:\n"]
    notes = notes or {}
    for index, signature in enumerate(signatures):
        lines.append(f" * {signature}\n")
        if index in notes:
            lines.append(f"{NOTE_INDENT}{notes[index]}\n")
    return TypeError("".join(lines))


def keywords_as_listed(items: Iterable[tuple[str, object]]) -> list[str]:
    """``key=type`` for each keyword item as given, in PyTorch's order: last given first."""
    return [f"{key}={parser_type_name(value)}" for key, value in reversed(list(items))]


def parser_type_name(value) -> str:
    """The name PyTorch's parser gives an argument's type: a Tensor's class name (``Tensor``, ``Parameter``),
    ``torch.dtype`` for a dtype (distnn's are numpy's scalar types), builtins bare (``float``, ``NoneType``), others
    with their module (``numpy.ndarray``)."""
    import numpy as np

    from distnn.autograd.tensor import Tensor

    kind = type(value)
    if isinstance(value, np.dtype) or isinstance(value, type) and issubclass(value, np.generic):
        return "torch.dtype"
    if isinstance(value, Tensor) or kind.__module__ == "builtins":
        return kind.__name__
    return f"{kind.__module__}.{kind.__qualname__}"


def marked_type_name(value) -> str:
    """An argument's type as PyTorch's note of invalid types marks it: a list or tuple with its elements' types
    (``list of [float, int]``, ``tuple of (float, int)``), anything else as :func:`parser_type_name`."""
    if isinstance(value, list):
        return "list of [" + ", ".join(parser_type_name(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "tuple of (" + ", ".join(parser_type_name(v) for v in value) + ")"
    return parser_type_name(value)
