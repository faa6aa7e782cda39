"""What one key of the config schema is (:class:`Key`: type, default, doc, bounds, choices) and how its type
and bounds read in words (``TYPE_WORDS``, :func:`bound_text`), for messages and help screens.

Separate from the table of keys itself (``config_schema.py``, which re-exports these) because the value checks
(``config_values.py``) need only this, not the table.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    """One config key: type, default, doc, and optional bounds / choices.

    type: "int" | "float" | "bool" | "str" | "list[int]" | "list[float]" |
    "list[str]" | "list[table]". ``bounds`` is a tuple of (op, value) with op in
    ">", ">=", "<", "<=", applied to the value (to each element of a list).
    ``optional`` keys default to ``None`` (absent from TOML). Float values must
    be finite (NaN and inf are refused) unless ``allow_inf``: then ``inf`` is
    accepted as "no limit" (still never NaN or -inf). ``display`` keys change
    only what is shown (progress, log lines, plots), never what is trained: a
    resumed run does not count a change of one (see :data:`config_schema.DISPLAY_KEYS`).
    """

    type: str
    default: object
    doc: str
    bounds: tuple = ()
    choices: tuple | None = None
    optional: bool = False
    length: int | None = None
    allow_inf: bool = False
    display: bool = False


TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
              "list[int]": "a list of integers", "list[float]": "a list of numbers",
              "list[str]": "a list of strings", "list[table]": "a list of tables"}


def bound_text(bounds) -> str:
    """'> 0', 'in [0, 1)': the allowed range of a key, for messages and help."""
    if len(bounds) == 2:
        (op1, a), (op2, b) = bounds
        return f"in {'[' if op1 == '>=' else '('}{a}, {b}{']' if op2 == '<=' else ')'}"
    op, a = bounds[0]
    return f"{op} {a}"
