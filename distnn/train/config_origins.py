"""Where each key of a config came from (set by --set, from the config file, at its default, unset), and the
tag that says so on a problem of those keys: ``... (set by --set)``; :class:`Related`, a problem of several keys,
names them for that tag."""
from __future__ import annotations

from .config_schema import RECORDED_DEFAULTS, SCHEMA, TABLES
from .config_values import _get_path


SET_BY_OVERRIDE = "set by --set"
FROM_FILE = "from the config file"
DEFAULT = "at its default"
UNSET = "unset"


def key_origins(raw: dict, out: dict, override_keys) -> dict:
    """``{dotted key: origin}`` for every key of the resolved config ``out`` and of ``raw`` (the config file
    with the overrides applied; a key it holds that ``out`` has not is refused), and every unset schema
    key: set by --set, from the config file, at its default or unset; "given by --resume" for a key a
    command-line flag other than --set gave (:class:`~.config_overrides.FlagKey`)."""
    flags = {k: k.flag for k in override_keys if hasattr(k, "flag")}  # (--resume's key: not set by --set)
    override_keys = [k for k in override_keys if k not in flags]

    def set_by_override(path):
        return any(path == k or path.startswith(k + ".") for k in override_keys)

    origins = {path: UNSET for path in SCHEMA}

    def walk(table, prefix):
        for k, v in table.items():
            path = f"{prefix}{k}"
            if path == RECORDED_DEFAULTS:  # (no key of the config: the values it holds are the keys' own)
                continue
            if isinstance(v, dict) and path in TABLES:
                walk(v, path + ".")
            elif set_by_override(path):
                origins[path] = SET_BY_OVERRIDE
            else:
                origins[path] = FROM_FILE if _get_path(raw, path) is not None else DEFAULT

    walk(out, "")
    walk(raw, "")
    for path in SCHEMA:  # (an optional key cleared by --set key=none)
        if origins[path] == UNSET and set_by_override(path):
            origins[path] = SET_BY_OVERRIDE
    origins.update({path: f"given by {flag}" for path, flag in flags.items()})
    return origins


def origins_tag(origins: dict, keys) -> str:
    """The tag of a problem that involves ``keys`` (see :meth:`Config.origins_tag`)."""
    known = {k: origins[k] for k in dict.fromkeys(keys) if k in origins}
    if SET_BY_OVERRIDE not in known.values():
        return ""
    if all(o == SET_BY_OVERRIDE for o in known.values()):
        return f" ({SET_BY_OVERRIDE})"
    first = sorted(known, key=lambda k: known[k] != SET_BY_OVERRIDE)  # (what --set did, then the rest)
    return " (" + ", ".join(f"{k} {known[k]}" for k in first) + ")"


class Related(str):
    """A problem of several keys together (``optimizer.nesterov needs optimizer.momentum > 0``): ``keys``
    are the keys involved, whether the message names them or not, so that ``validate`` can say which of
    them --set gave and which the config file (``Config.origins_tag``)."""

    def __new__(cls, message: str, *keys: str):
        problem = super().__new__(cls, message)
        problem.keys = keys
        return problem
