"""PyTorch's ``set_printoptions``: how a Tensor's ``repr`` shows its values.

Until ``set_printoptions`` is first called a repr keeps distnn's numpy formatting (numpy's defaults). From
then on, the values are formatted as PyTorch formats them (``torch/_tensor_str.py``): floats with
``precision`` digits after the point, all in one width, "1." style when every value is an integer, and
scientific notation when the values span more than 1000x, exceed 1e8 or go below 1e-4 (``sci_mode``: True
or False forces it, None decides so); more than ``threshold`` values are summarized to ``edgeitems`` at
each end of each dim ("..."), and lines are broken before ``linewidth`` characters (numpy decides where,
so the breaks can fall elsewhere than PyTorch's). ``profile`` sets all four numbers to PyTorch's
``"default"`` (4, 1000, 3, 80), ``"short"`` (2, 1000, 2, 80) or ``"full"`` (4, inf, 3, 80) first.
Complex values keep numpy's formatting, at ``precision``.
"""
from __future__ import annotations

import math
import sys

import numpy as np

__all__ = ["set_printoptions"]

_PROFILES = {"default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
             "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
             "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80)}
_options = None  # None: numpy's formatting, as before any set_printoptions; else a dict of the five options


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None) -> None:
    """Set how tensors print (see the module docstring); an option left None keeps its value, as PyTorch's
    (``sci_mode=None`` is itself a value: automatic)."""
    global _options
    options = dict(_PROFILES["default"], sci_mode=None) if _options is None else dict(_options)
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: unknown profile {profile!r}; expected one of {sorted(_PROFILES)}")
        options.update(_PROFILES[profile])
    for name, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                        ("linewidth", linewidth)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"set_printoptions: {name} must be a non-negative number, got {value!r}")
            options[name] = value
    if sci_mode is not None and not isinstance(sci_mode, bool):
        raise ValueError(f"set_printoptions: sci_mode must be True, False or None, got {sci_mode!r}")
    options["sci_mode"] = sci_mode
    _options = options


def _summarized(a, edgeitems):
    """The values PyTorch's formatter looks at: each dim's first and last ``edgeitems`` where it is longer."""
    for axis, n in enumerate(a.shape):
        if n > 2 * edgeitems:
            a = np.take(a, np.r_[0:edgeitems, n - edgeitems:n], axis=axis)
    return a


def _float_formatter(a, o):
    """PyTorch's ``_Formatter`` for a float array: one function giving every value the same width."""
    precision = int(o["precision"])
    values = a[np.isfinite(a) & (a != 0)].astype(np.float64)
    int_mode, sci, width = True, False, 1
    if values.size:
        magnitudes = np.abs(values)
        low, high = magnitudes.min(), magnitudes.max()
        int_mode = bool((values == np.ceil(values)).all())
        sci = high / low > 1000.0 or high > 1.0e8 or (not int_mode and low < 1.0e-4)
        if sci:
            width = max(len(f"{v:.{precision}e}") for v in values)
        elif int_mode:
            width = max(len(f"{v:.0f}") + 1 for v in values)
        else:
            width = max(len(f"{v:.{precision}f}") for v in values)
    if o["sci_mode"] is not None and values.size:  # (PyTorch's returns early, before this, when none)
        sci = o["sci_mode"]

    def fmt(v):
        v = float(v)
        if sci:
            text = f"{v:{width}.{precision}e}"
        elif int_mode:
            text = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
        else:
            text = f"{v:.{precision}f}"
        return text.rjust(width)
    return fmt


def format_values(array, prefix: str) -> str:
    """The values part of a tensor's repr (``array`` on the host), under the options set."""
    if _options is None:
        return np.array2string(array, separator=", ", prefix=prefix)
    o = _options
    threshold = sys.maxsize if o["threshold"] == math.inf else int(o["threshold"])
    edgeitems = int(o["edgeitems"])
    kwargs = dict(separator=", ", prefix=prefix, threshold=threshold, edgeitems=edgeitems,
                  max_line_width=int(o["linewidth"]), precision=int(o["precision"]))
    if array.dtype.kind == "f":
        shown = _summarized(array, edgeitems) if array.size > threshold else array
        kwargs["formatter"] = {"float_kind": _float_formatter(shown, o)}
    return np.array2string(array, **kwargs)
