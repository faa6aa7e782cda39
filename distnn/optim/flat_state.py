"""``flatten_state`` / ``unflatten_state``: a nested state dict as ``{key: numpy array}`` for ``.npz``, without pickle.

Split out of :mod:`distnn.optim.optimizer`, which still exports both names.
"""
from __future__ import annotations

import json
import math

import numpy as np

from distnn.backend import to_numpy

from .state_values import _is_array

__all__ = ["flatten_state", "unflatten_state"]


def flatten_state(obj, prefix: str = "") -> dict:
    """Flatten a (nested) state dict into ``{key: numpy array}`` for ``np.savez``.

    Arrays become entries of their own; everything else (numbers, strings,
    tuples, lists, dicts with str/int keys, inf/nan) goes into a JSON
    description under ``prefix + "__structure__"``. ``unflatten_state``
    inverts it exactly, with no pickle involved.

    An array's key is its path joined with dots (``prefix + ".m.0"``); paths
    can coincide (``{"a.0": x, "a": [y]}``), so a key already taken gets a
    ``"~1"``, ``"~2"``, ... suffix. The structure records each array's key,
    so ``unflatten_state`` needs no rule to find it, and files written before
    the suffix existed load as before.
    """
    arrays = {prefix + "__structure__": None}  # reserved: no array may take the structure's key

    def enc(v, path):
        if _is_array(v):
            key, n = prefix + path, 0
            while key in arrays:
                n += 1
                key = f"{prefix}{path}~{n}"
            arrays[key] = to_numpy(v).copy()
            return {"__array__": key}
        if isinstance(v, dict):
            return {"__dict__": [[enc_key(k), enc(x, f"{path}.{k}")] for k, x in v.items()]}
        if isinstance(v, tuple):
            return {"__tuple__": [enc(x, f"{path}.{i}") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [enc(x, f"{path}.{i}") for i, x in enumerate(v)]
        if isinstance(v, float) and not math.isfinite(v):
            return {"__float__": repr(v)}
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise TypeError(f"cannot store a {type(v).__name__} in a flat state file (at {path!r})")

    def enc_key(k):
        if isinstance(k, (str, int)) and not isinstance(k, bool):
            return k
        raise TypeError(f"state dict keys must be str or int, got {k!r}")

    structure = enc(obj, "")
    arrays[prefix + "__structure__"] = np.array(json.dumps(structure))
    return arrays


def unflatten_state(arrays, prefix: str = ""):
    """Inverse of ``flatten_state``: rebuild the nested state from ``{key: array}`` (e.g. ``np.load``)."""

    def dec(v):
        if isinstance(v, dict):
            if "__array__" in v:
                return np.array(arrays[v["__array__"]])
            if "__dict__" in v:
                return {k: dec(x) for k, x in v["__dict__"]}
            if "__tuple__" in v:
                return tuple(dec(x) for x in v["__tuple__"])
            if "__float__" in v:
                return float(v["__float__"])
        if isinstance(v, list):
            return [dec(x) for x in v]
        return v

    return dec(json.loads(str(np.asarray(arrays[prefix + "__structure__"]))))
