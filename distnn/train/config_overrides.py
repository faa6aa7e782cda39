"""``--set key=value`` overrides: parsing one (:func:`parse_override`) and applying them to a raw config
(:func:`apply_overrides`; a table given to a table sets the keys it names), and whether an ensemble's members'
overrides set a key (:func:`_members_change`)."""
from __future__ import annotations

import copy
import tomllib

from .config_object import ConfigError
from .config_schema import SCHEMA, TABLES
from .config_values import _set_path


class FlagOverride(tuple):
    """``(key, value)``: an override a command-line flag other than ``--set`` gives (``--resume`` sets
    ``checkpoint.resume``, ``--profile`` ``run.profile``). It applies as a ``--set`` does, but its key is
    not "set by --set": an error about it does not say so (:data:`~.config_origins.SET_BY_OVERRIDE`)."""

    def __new__(cls, key: str, value, flag: str):
        override = super().__new__(cls, (key, value))
        override.flag = flag
        return override


class FlagKey(str):
    """A dotted key a :class:`FlagOverride` set (``flag``: the flag), in :func:`apply_overrides`'s keys."""

    def __new__(cls, key: str, flag: str):
        path = super().__new__(cls, key)
        path.flag = flag
        return path


def parse_override(text: str) -> tuple[str, object]:
    """``"a.b=value"`` -> ("a.b", value parsed as a TOML literal, else the string)."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"--set expects key=value with a dotted key, got {text!r}")
    spec = SCHEMA.get(key)
    if spec is not None and spec.optional and raw.lower() in ("none", "null"):
        return key, None
    if spec is not None and spec.type == "str":
        # String keys take the text as written (unquoted if it was a quoted TOML string).
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
            return key, value if isinstance(value, str) else raw
        except tomllib.TOMLDecodeError:
            return key, raw
    try:
        return key, tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if spec is not None and spec.type == "list[str]":  # --set ensemble.vary=seed,bootstrap
            return key, [s.strip().strip("'\"") for s in raw.strip("[]").split(",") if s.strip()]
        return key, raw


def apply_overrides(raw: dict, overrides) -> tuple[dict, set]:
    """A copy of ``raw`` with the ``key=value`` overrides applied; also the set of keys they set (a
    :class:`FlagKey` for one a :class:`FlagOverride` set last).

    A table given to a table (``optimizer={lr=0.2}``) sets the keys it names, as ``optimizer.lr=0.2``
    does: the section's other keys stay (replacing the table silently reset them to their defaults)."""
    raw = copy.deepcopy(raw)
    keys = set()
    for item in overrides or ():
        key, value = parse_override(item) if isinstance(item, str) else item
        for path, leaf in _override_leaves(key, value):
            _set_path(raw, path, leaf)
            keys.discard(path)  # (the last one to set it says where it came from)
            keys.add(FlagKey(path, item.flag) if isinstance(item, FlagOverride) else path)
    return raw, keys


def _override_leaves(key: str, value):
    """``(dotted key, value)`` pairs an override sets: a table for a table is merged key by key."""
    if isinstance(value, dict) and (key in TABLES or key not in SCHEMA):
        for k, v in value.items():
            yield from _override_leaves(f"{key}.{k}", v)
    else:
        yield key, value


def override_paths(table: dict) -> set:
    """The dotted keys an override table (``{"schedule" = {name = "step"}}`` or ``{"schedule.name" = "step"}``,
    an ensemble member's) sets."""
    return {path for k, v in table.items() for path, _ in _override_leaves(k, v)}


def _members_change(out: dict, key: str) -> bool:
    """Whether an ensemble member's overrides set ``key`` (``model.name``); ``out``: a config, resolved or raw."""
    overrides = (out.get("ensemble") or {}).get("overrides") if isinstance(out.get("ensemble"), dict) else None
    return isinstance(overrides, list) and any(
        path == key for table in overrides if isinstance(table, dict) for k, value in table.items()
        for path, _ in _override_leaves(k, value))
