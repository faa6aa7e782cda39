"""One config value against its schema key: type, coercion, range and choices (:func:`_check_value`), a table
where a value belongs (:func:`value_not_section`), TOML's 64-bit integers, whether a value is one TOML can hold
(:func:`_plain`), and dotted-path access to nested dicts."""
from __future__ import annotations

import difflib
import math

from .config_schema import LIBRARY_ONLY, TYPE_WORDS as _TYPE_WORDS, Key, bound_text
from .toml_writer import format_value as toml_value


def _describe(v) -> str:
    kind = {bool: "boolean", int: "integer", float: "float", str: "string", list: "list", dict: "table"}.get(
        type(v), type(v).__name__)
    return f"{v!r} ({kind})"


_OPS = {">": lambda v, a: v > a, ">=": lambda v, a: v >= a, "<": lambda v, a: v < a, "<=": lambda v, a: v <= a}


def _check_value(path: str, key: Key, value, problems: list):
    """Type-check, coerce and range-check one value; returns the coerced value (or None on error)."""
    t = key.type

    def scalar(v, kind):
        if kind == "int":
            return v if isinstance(v, int) and not isinstance(v, bool) else _BAD
        if kind == "float":
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else _BAD
        if kind == "bool":
            return v if isinstance(v, bool) else _BAD
        if kind == "str":
            return v if isinstance(v, str) else _BAD
        if kind == "table":
            return v if isinstance(v, dict) else _BAD
        raise AssertionError(kind)

    if t.startswith("list["):
        inner = t[5:-1]
        if not isinstance(value, list):
            problems.append(f"{path} must be {_TYPE_WORDS[t]}, got {_describe(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            c = scalar(item, inner)
            if c is _BAD:
                problems.append(f"{path}[{i}] must be {_TYPE_WORDS[inner] if inner != 'table' else 'a table'}, "
                                f"got {_describe(item)}")
                return None
            out.append(c)
        if key.length is not None and len(out) != key.length:
            problems.append(f"{path} must have {key.length} entries, got {len(out)}")
            return None
        items = [(f"{path}[{i}]", raw, v) for i, (raw, v) in enumerate(zip(value, out))]
    else:
        c = scalar(value, t)
        if c is _BAD:
            problems.append(f"{path} must be {_TYPE_WORDS[t]}, got {_describe(value)}")
            return None
        out = c
        items = [(path, value, c)]
    for where, raw, v in items:
        rng = bound_text(key.bounds) if key.bounds else ""
        if isinstance(v, float) and not math.isfinite(v) and not (key.allow_inf and v == math.inf):
            # inf passes a one-sided bound ("> 0") and would only surface later, as skipped steps
            # and a "diverging" run; NaN fails every bound. Both are refused here, naming the key.
            allowed = f"{rng} (or inf: no limit)" if key.allow_inf else f"a finite number {rng}".rstrip()
            problems.append(f"{where} must be {allowed}, got {raw!r}")
            return None
        if key.bounds and isinstance(v, (int, float)) and not all(_OPS[op](v, a) for op, a in key.bounds):
            problems.append(f"{where} must be {rng}{' (or inf: no limit)' if key.allow_inf else ''}, got {raw!r}")
            return None
        if key.choices is not None and v not in key.choices:
            close = difflib.get_close_matches(str(v), key.choices, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            if str(v).lower() in LIBRARY_ONLY.get(path, {}):
                hint = f" ({LIBRARY_ONLY[path][str(v).lower()]})"
            problems.append(f"{where} must be one of {', '.join(map(repr, key.choices))}; got {raw!r}{hint}")
            return None
    return out


_BAD = object()


def value_not_section(path: str, table: dict, expected: str) -> str | None:
    """The problem of a table where a value belongs (``--set optimizer.lr.x=1``, or ``[optimizer.lr]`` in a
    file): the keys under it name nothing, which says more than "must be a number, got {'x': 1} (table)".
    None for an empty table (nothing is named under it: the type error says it)."""
    leaves = []

    def walk(t, prefix):
        for k, v in t.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}.{k}")
            else:
                try:
                    text = toml_value(v)  # as it would be written
                except TypeError:  # (a TOML date or time)
                    text = str(v)
                leaves.append(f"'{prefix}.{k}' = {text}")

    walk(table, path)
    if not leaves:
        return None
    verb = "names" if len(leaves) == 1 else "name"
    return f"{path} is a value ({expected}), not a section: {', '.join(leaves)} {verb} no key"


def _set_path(d: dict, path: str, value):
    parts = path.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        cur = nxt
    if value is None:
        cur.pop(parts[-1], None)
    else:
        cur[parts[-1]] = value


def _get_path(d: dict, path: str, default=None):
    cur = d
    for p in path.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return default
        cur = cur[p]
    return cur


def _int64_problems(value, path: str, problems: list) -> None:
    """TOML integers are 64-bit (the spec); Python's parser takes any size, which numpy then refuses
    with a message that names no key ("Maximum allowed size exceeded") or not at all (a seed)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _int64_problems(v, f"{path}.{k}" if path else str(k), problems)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _int64_problems(v, f"{path}[{i}]", problems)
    elif isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        problems.append(f"{path} must be an integer in the 64-bit range of TOML (-2**63 .. 2**63 - 1), got {value}")


def _plain(value) -> bool:
    """Whether ``value`` is a TOML value (a default a config can hold): a number, string, boolean, or a
    list of them."""
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, (bool, int, float, str))
