"""PyTorch's refusal of ``out=`` on the Tensor methods ``std``, ``var``, ``all`` and ``any``, which take none: its
parser matches none of their overloads, and lists them as "received an invalid combination of arguments".

Under a signature PyTorch writes a note ("didn't match because some of the keywords were incorrect: out") where
the number of arguments given equals its number of parameters, as its parser counts them: each comma-separated
entry, the ``*`` too, and "()" counting as one; the keywords named are those given (last given first) that are no
parameter's name, the name being an entry's last word (so a parameter with a default, ``bool keepdim = False``,
never matches: PyTorch's own quirk, reproduced). A Python signature cannot tell an argument given by position
from one given by keyword, nor None given from None left out: the arguments given (not None) are listed by
position up to the first one left out, the rest as keywords in the signature's order (``out`` last given);
``keepdim`` (a flag, mostly named) as a keyword, except after a positional ``unbiased``.
"""
from __future__ import annotations

from .parser_refusal import invalid_combination, keywords_as_listed, parser_type_name

__all__ = ["refuse_method_out"]

_SPREAD = ("(tuple of ints dim, bool unbiased = True, bool keepdim = False)",
           "(tuple of ints dim = None, *, Number correction = None, bool keepdim = False)",
           "(bool unbiased = True)")
_LOGICAL = ("()", "(tuple of ints dim = None, bool keepdim = False)", "(int dim, bool keepdim = False)")
SIGNATURES = {"std": _SPREAD, "var": _SPREAD, "all": _LOGICAL, "any": _LOGICAL}


def refuse_method_out(name: str, out, dim, keepdim, unbiased=None, correction=None) -> None:
    """Raise PyTorch's TypeError for ``x.name(dim, ..., out=out)`` (``keepdim``: ``NOT_KEPT`` where left out;
    ``unbiased``, ``correction``: ``std``'s and ``var``'s, None where left out)."""
    from distnn.autograd.unset_defaults import NOT_KEPT

    # (keepdim by position only after a positional unbiased, x.std(0, True, True); else taken as named)
    order = [("dim", dim), ("unbiased", unbiased)] + ([("keepdim", keepdim)] if unbiased is not None else [])
    positional, keywords, gap = [], [], False
    for key, value in order:
        gap = gap or value is None or value is NOT_KEPT
        if not gap:
            positional.append((key, value))
        elif value is not None and value is not NOT_KEPT:
            keywords.append((key, value))
    rest = [("keepdim", keepdim)] if unbiased is None else []
    keywords += [(key, value) for key, value in (("correction", correction), *rest)
                 if value is not None and value is not NOT_KEPT]
    keywords.append(("out", out))
    given = len(positional) + len(keywords)
    listed = [key for key, _ in reversed(keywords)]
    notes = {}
    for index, signature in enumerate(SIGNATURES[name]):
        entries = signature[1:-1].split(", ")
        if len(entries) == given:
            names = {entry.split()[-1] for entry in entries if entry}
            wrong = [key for key in listed if key not in names]
            if wrong:
                notes[index] = "didn't match because some of the keywords were incorrect: " + ", ".join(wrong)
    raise invalid_combination(name, [parser_type_name(value) for _, value in positional], SIGNATURES[name],
                              keywords=keywords_as_listed(keywords), notes=notes)
