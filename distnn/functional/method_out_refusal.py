"""PyTorch's parser's refusals of reduction calls that match none of their overloads ("received an invalid
combination of arguments"): ``out=`` on the Tensor methods ``std``, ``var``, ``all`` and ``any``, which take none;
``std``/``var``/``var_mean``/``std_mean``'s bool ``unbiased`` where ``dim`` goes beside other arguments
(:func:`bool_unbiased`); their None for a bool, ``unbiased`` beside ``correction`` or beside ``keepdim`` without
``dim`` (:func:`refuse_spread_flags`); ``max``/``min`` given ``dim=None`` or ``keepdim`` alone
(:func:`refuse_extremum_arguments`).

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

from distnn.autograd.unset_defaults import EVERY_DIM, NO_OUT, NOT_KEPT, UNBIASED

from .parser_refusal import invalid_combination, keywords_as_listed, parser_type_name

__all__ = ["bool_unbiased", "check_spread_method", "refuse_extremum_arguments", "refuse_method_out",
           "refuse_spread_flags"]

_SPREAD = ("(tuple of ints dim, bool unbiased = True, bool keepdim = False)",
           "(tuple of ints dim = None, *, Number correction = None, bool keepdim = False)",
           "(bool unbiased = True)")
_LOGICAL = ("()", "(tuple of ints dim = None, bool keepdim = False)", "(int dim, bool keepdim = False)")
SIGNATURES = {"std": _SPREAD, "var": _SPREAD, "all": _LOGICAL, "any": _LOGICAL}
_OUT = ", *, Tensor out = None"
# (the functions': ``std``/``var`` take an ``out`` in their first two overloads, ``var_mean``/``std_mean`` none)
_FUNCTION_SPREAD = {
    paired: ("(Tensor input, tuple of ints dim, bool unbiased = True, bool keepdim = False" + ("" if paired else _OUT)
             + ")", "(Tensor input, tuple of ints dim = None, *, Number correction = None, bool keepdim = False"
             + ("" if paired else ", Tensor out = None") + ")", "(Tensor input, bool unbiased = True)")
    for paired in (False, True)}


def refuse_method_out(name: str, out, dim, keepdim, unbiased=None, correction=None) -> None:
    """Raise PyTorch's TypeError for ``x.name(dim, ..., out=out)`` (``keepdim``: ``NOT_KEPT`` where left out;
    ``unbiased``, ``correction``: ``std``'s and ``var``'s, None where left out)."""
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
    types = [parser_type_name(value) for _, value in positional]
    notes = _notes(SIGNATURES[name], types, [key for key, _ in reversed(keywords)])
    raise invalid_combination(name, types, SIGNATURES[name], keywords=keywords_as_listed(keywords), notes=notes)


def _notes(signatures, types: list, listed: list) -> dict:
    """PyTorch's note under each signature with as many parameters as arguments given (``types``: the positional
    ones' names; ``listed``: the keywords' names, last given first): the keywords that name no parameter, else
    every argument's type marked invalid but a Tensor input's (its parser's reading of these signatures)."""
    notes = {}
    for index, signature in enumerate(signatures):
        entries = signature[1:-1].split(", ")
        if len(entries) != len(types) + len(listed):
            continue
        names = {entry.split()[-1] for entry in entries if entry}
        wrong = [key for key in listed if key not in names]
        if wrong:
            notes[index] = "didn't match because some of the keywords were incorrect: " + ", ".join(wrong)
        elif not listed:
            marked = [t if i == 0 and t == "Tensor" and entries[0] == "Tensor input" else f"!{t}!"
                      for i, t in enumerate(types)]
            notes[index] = "didn't match because some of the arguments have invalid types: (" + ", ".join(marked) + ")"
    return notes


def bool_unbiased(name: str, method: bool, flag, beside) -> None:
    """A bool where ``dim`` goes is PyTorch's overload ``(bool unbiased)`` (``x.std(True)``: over all dims,
    unbiased; the caller takes it so). ``beside``: ``(name, value)`` of the other arguments in the signature's
    order, None (or ``NOT_KEPT``, or a False ``keepdim``) where left out; with any of them given, the call matches
    no overload: PyTorch's parser's TypeError (the others listed as keywords, the flag by position)."""
    given = [(key, value) for key, value in beside
             if value is not None and value is not NOT_KEPT and not (key == "keepdim" and value is False)]
    if not given:
        return
    signatures = SIGNATURES[name] if method else _FUNCTION_SPREAD[name.endswith("_mean")]
    # (an unbiased beside it was given by position, x.std(True, True), and a keepdim after that one too)
    leading = 1 + (given[0][0] == "unbiased") + (given[0][0] == "unbiased" and len(given) > 1
                                                  and given[1][0] == "keepdim")
    positional = ([] if method else ["Tensor"]) + [parser_type_name(flag)]
    positional += [parser_type_name(value) for _, value in given[:leading - 1]]
    keywords = given[leading - 1:]
    raise invalid_combination(name, positional, signatures, keywords=keywords_as_listed(keywords),
                              notes=_notes(signatures, positional, [key for key, _ in reversed(keywords)]))


def check_spread_method(name: str, out, dim, keepdim, unbiased, correction) -> None:
    """``x.std(...)``/``x.var(...)`` given ``out`` (refused) or a bool ``dim`` (refused beside other arguments)."""
    if out is not NO_OUT:
        refuse_method_out(name, out, dim, keepdim, unbiased, correction)
    bool_unbiased(name, True, dim, (("unbiased", unbiased), ("keepdim", keepdim), ("correction", correction)))


def refuse_spread_flags(name: str, dim, unbiased, keepdim, correction, a=None, out=None) -> None:
    """``x.std(...)``/``x.var(...)`` (``std(a, ...)``/``var(a, ...)`` where ``a`` is given; ``dim``: ``EVERY_DIM``,
    ``unbiased``: ``UNBIASED``, ``keepdim``: ``NOT_KEPT`` where left out) matching none of PyTorch's overloads:
    None for ``unbiased`` or ``keepdim`` (bools), ``unbiased`` beside ``correction``, or beside ``keepdim`` (or
    the function's ``out``) without ``dim``: its parser's TypeError; nothing otherwise. The arguments listed as
    :func:`refuse_method_out` lists them, a None given counting as given."""
    given = unbiased is not UNBIASED
    if unbiased is not None and keepdim is not None and not (
            given and (correction is not None or dim is EVERY_DIM and (keepdim is not NOT_KEPT or out is not None))):
        return
    order = [("dim", dim), ("unbiased", unbiased)] + ([("keepdim", keepdim)] if given else [])
    positional, keywords, gap = [], [], False
    for key, value in order:
        unset = value is EVERY_DIM or value is UNBIASED or value is NOT_KEPT
        gap = gap or unset
        (keywords if gap else positional).extend([] if unset else [(key, value)])
    rest = [("correction", correction)] + ([] if given else [("keepdim", keepdim)]) + [("out", out)]
    keywords += [(key, value) for key, value in rest  # (a None keepdim was given; correction and out left out)
                 if value is not NOT_KEPT and (value is not None or key == "keepdim")]
    types = ([] if a is None else [parser_type_name(a)]) + [parser_type_name(value) for _, value in positional]
    signatures = SIGNATURES[name] if a is None else _FUNCTION_SPREAD[False]
    notes = _notes(signatures, types, [key for key, _ in reversed(keywords)])
    raise invalid_combination(name, types, signatures, keywords=keywords_as_listed(keywords), notes=notes)


_EXTREMUM = {True: ("()", "(Tensor other)", "(int dim, bool keepdim = False)"),
             False: ("(Tensor input, *, Tensor out = None)", "(Tensor input, Tensor other, *, Tensor out = None)",
                     "(Tensor input, int dim, bool keepdim = False, *, tuple of Tensors out = None)")}


def refuse_extremum_arguments(name: str, method: bool, a, dim, keepdim, axis=None, keepdims=None) -> None:
    """``max``/``min`` (``x.max(...)`` where ``method``) given ``dim=None`` or ``keepdim`` without ``dim``
    (``dim``: ``EVERY_DIM``, ``keepdim``: ``NOT_KEPT`` where left out), which match none of PyTorch's overloads:
    its parser's TypeError (both taken as given by keyword, ``x.max(dim=None)``); nothing otherwise, nor with
    numpy's ``axis``/``keepdims`` given (they take them). (Its callers call it only where ``dim`` is None or
    ``keepdim`` is given without ``dim``: a plain ``x.max()`` pays one comparison.)"""
    if dim is not None and dim is not EVERY_DIM or dim is EVERY_DIM and keepdim is NOT_KEPT \
            or axis is not None or keepdims is not None:
        return
    keywords = [(key, value) for key, value in (("dim", dim), ("keepdim", keepdim))
                if value is not EVERY_DIM and value is not NOT_KEPT]
    if method and len(keywords) == 2:  # (only the overload with dim takes two arguments: its own refusal)
        raise TypeError(f"{name}(): argument 'dim' must be int, not NoneType")
    positional = [] if method else [parser_type_name(a)]
    listed = [key for key, _ in reversed(keywords)]
    raise invalid_combination(name, positional, _EXTREMUM[method], keywords=keywords_as_listed(keywords),
                              notes=_notes(_EXTREMUM[method], positional, listed))
