"""A tiny TOML writer (the standard library only reads TOML).

Enough for configs: tables and sub-tables, strings, integers, floats
(including inf/nan), booleans, arrays and inline tables. ``None`` values are
left out (TOML has no null; an absent key means "use the default").
``tomllib.loads(dumps(d)) == d`` for any such ``d`` without ``None``.
"""
from __future__ import annotations

import math
import re

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def format_key(key: str) -> str:
    key = str(key)
    return key if _BARE_KEY.match(key) else format_string(key)


def format_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def format_value(v) -> str:
    """One TOML value (inline form)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # shortest round-trip form: 0.1, 1e-05, 1e+16 are all valid TOML floats
    if isinstance(v, str):
        return format_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        items = [f"{format_key(k)} = {format_value(x)}" for k, x in v.items() if x is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if hasattr(v, "item") and not hasattr(v, "__len__"):  # numpy scalar
        return format_value(v.item())
    if hasattr(v, "tolist"):  # numpy array
        return format_value(v.tolist())
    raise TypeError(f"cannot write {type(v).__name__} value {v!r} as TOML")


def dumps(data: dict, header: str = "") -> str:
    """TOML text for the nested dict ``data`` (dicts become [tables])."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    if lines:
        lines.append("")

    def emit(path, table):
        scalars = [(k, v) for k, v in table.items() if v is not None and not isinstance(v, dict)]
        tables = [(k, v) for k, v in table.items() if isinstance(v, dict)]
        if path and (scalars or not tables):
            lines.append("[" + ".".join(format_key(p) for p in path) + "]")
        for k, v in scalars:
            lines.append(f"{format_key(k)} = {format_value(v)}")
        if path and (scalars or not tables) or (not path and scalars):
            lines.append("")
        for k, v in tables:
            emit(path + [k], v)

    emit([], data)
    return "\n".join(lines).rstrip("\n") + "\n"
