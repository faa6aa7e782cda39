"""The dataset registry: what a dataset source returns (``RawData``), how a source is registered
(``register_dataset``) and looked up (``get_dataset_entry``, ``list_datasets``, ``list_dataset_options``).

Separate from ``datasets.py`` (loading and splitting) and ``builtin_datasets.py`` (the sources) so that both
can use it without importing each other: the built-in sources register themselves here, and the config checks
(``train/config_data_checks.py``) ask it what a dataset takes before any data is loaded.
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field

from .errors import DataError


@dataclass
class RawData:
    """What a source function returns before splitting.

    parts: ``{"all": (x, y)}`` to be split, or some of ``train``/``val``/``test``
    (missing val/test are carved from train). split: ``"stratified"``,
    ``"shuffle"`` (no stratification) or ``"same"`` (every split is all data).
    """

    parts: dict
    num_classes: int
    class_names: list | None = None
    meta: dict = field(default_factory=dict)
    split: str = "stratified"


@dataclass
class DatasetEntry:
    name: str
    description: str
    source: object  # callable(**options) -> RawData
    needs_path: bool = False  # the source cannot work without data.path
    split: str = "stratified"  # the RawData.split its source returns (a config checks the split keys by it)

    def options(self) -> dict:
        """The source's options and their defaults (``path`` is required when it has no default)."""
        sig = inspect.signature(self.source)
        return {k: (None if p.default is inspect.Parameter.empty else p.default) for k, p in sig.parameters.items()}

    def check_option(self, key: str, value) -> str | None:
        """None if ``value`` has the type the source declares for ``key``, else the expected type in words."""
        hints = inspect.get_annotations(self.source, eval_str=True)
        allowed = hints.get(key)
        if allowed is None:
            default = self.options().get(key)
            allowed = type(default) if default is not None else None
        if allowed is None:
            return None
        kinds = tuple(dict.fromkeys(getattr(allowed, "__args__", (allowed,))))
        ok = any(isinstance(value, k) and not (k is int and isinstance(value, bool) and bool not in kinds)
                 for k in kinds if k is not type(None))
        ok = ok or (float in kinds and isinstance(value, int) and not isinstance(value, bool))
        if ok:
            return None
        words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        return " or ".join(words.get(k, k.__name__) for k in kinds if k is not type(None))


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, description: str, needs_path: bool = False, split: str = "stratified"):
    """Decorator: register ``fn(**options) -> RawData`` under ``name``. ``split``: the ``RawData.split`` the
    source returns, declared so that a config's split keys can be checked before any data is loaded
    (:func:`split_keys_ignored`)."""
    def deco(fn):
        _REGISTRY[name] = DatasetEntry(name, description, fn, needs_path, split)
        return fn
    return deco


#: why a dataset of each split kind (``DatasetEntry.split``) ignores split keys, in words
SPLIT_KINDS = {"same": "every split is all of its data",
               "given": "it cuts its own splits in order, with no random draw for a seed to change"}


def split_keys_ignored(name: str) -> tuple:
    """The ``[data]`` split keys (``val_fraction``, ``test_fraction``, ``split_seed``) registered dataset
    ``name`` never reads: all three where every split is the same data (xor), ``split_seed`` (and the
    fractions unless it takes them as options, as charlm does) where the source cuts its own splits."""
    entry = get_dataset_entry(name)
    if entry.split not in SPLIT_KINDS:
        return ()
    taken = entry.options() if entry.split == "given" else {}
    return tuple(k for k in ("val_fraction", "test_fraction", "split_seed") if k not in taken)


def list_datasets() -> list[tuple[str, str]]:
    """``[(name, one-line description), ...]`` of every registered dataset (``dict()`` it for a lookup)."""
    return [(name, e.description) for name, e in _REGISTRY.items()]


def get_dataset_entry(name: str) -> DatasetEntry:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DataError(f"unknown dataset '{name}'{hint}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def list_dataset_options(name: str) -> dict:
    """{option: default} accepted by dataset ``name`` (besides the split/standardize options)."""
    return {k: v for k, v in get_dataset_entry(name).options().items() if k not in ("val_fraction", "test_fraction")}
