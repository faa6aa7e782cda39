"""PyTorch's tensor ``repr`` and ``set_printoptions``: how a Tensor prints.

:func:`tensor_repr` writes what ``repr(torch_tensor)`` writes: ``tensor(<values>, <suffixes>)`` with the
suffixes PyTorch adds: ``device='cuda:0'`` for a GPU tensor, ``size=(0, 3)`` for an empty tensor that is not
1-d, the dtype unless it is the default float dtype, int64, bool or the default complex dtype (spelled
``dtype=distnn.float64``, which pastes back where PyTorch's says ``dtype=torch.float64``), then
``grad_fn=<MulBackward0>`` (the node's ``name()``) or ``requires_grad=True``.

The values are formatted as PyTorch formats them (``torch/_tensor_str.py``): floats with
``precision`` digits after the point, all in one width, "1." style when every value is an integer, and
scientific notation when the values span more than 1000x, exceed 1e8 or go below 1e-4 (``sci_mode``: True
or False forces it, None decides so); more than ``threshold`` values are summarized to ``edgeitems`` at
each end of each dim ("..."), and a row's values are broken into lines by PyTorch's rule (as many values
of the common width as fit in ``linewidth`` less the indent). ``profile`` sets all four numbers to PyTorch's
``"default"`` (4, 1000, 3, 80), ``"short"`` (2, 1000, 2, 80) or ``"full"`` (4, inf, 3, 80) first.
Complex values have their real and imaginary parts formatted apart, as PyTorch's. These are the options from the start, as in PyTorch; ``set_printoptions`` changes them.
"""
from __future__ import annotations

import math
import sys

import numpy as np

__all__ = ["set_printoptions", "tensor_repr", "sparse_repr"]

_PROFILES = {"default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
             "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
             "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80)}
_options = dict(_PROFILES["default"], sci_mode=None)  # PyTorch's defaults until set_printoptions changes them


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None) -> None:
    """Set how tensors print (see the module docstring); an option left None keeps its value, as PyTorch's
    (``sci_mode=None`` is itself a value: automatic)."""
    global _options
    options = dict(_options)
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
        sci = high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4
        if o["sci_mode"] is not None:  # (a forced mode decides the width too, as in PyTorch)
            sci = o["sci_mode"]
        if sci:
            width = max(len(f"{v:.{precision}e}") for v in values)
        elif int_mode:
            width = max(len(f"{v:.0f}") + 1 for v in values)
        else:
            width = max(len(f"{v:.{precision}f}") for v in values)

    def fmt(v):
        v = float(v)
        if sci:
            text = f"{v:{width}.{precision}e}"
        elif int_mode:
            text = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
        else:
            text = f"{v:.{precision}f}"
        return text.rjust(width)
    return fmt, width


def _text_formatter(a):
    """PyTorch's ``_Formatter`` for integers and bools: ``str`` of each value, right-aligned to the widest."""
    width = max((len(str(v)) for v in a.ravel().tolist()), default=1)
    return (lambda v: str(v).rjust(width)), width


def _complex_formatter(a, o):
    """PyTorch's complex formatting: the real and the imaginary parts each by a float formatter of their own,
    joined as "1.5000+2.j"; the width counts both and the "j"."""
    real, real_width = _float_formatter(a.real, o)
    imag, imag_width = _float_formatter(a.imag, o)

    def fmt(v):
        imag_str = (imag(v.imag) + "j").lstrip()
        return real(v.real) + (imag_str if imag_str[0] in "+-" else "+" + imag_str)
    return fmt, real_width + imag_width + 1


def _values_str(a, indent, summarize, edgeitems, linewidth, fmt, width):
    """PyTorch's ``_tensor_str_with_formatter``: nested brackets, its line breaks and its "..." rows."""
    cut = summarize and a.shape[0] > 2 * edgeitems
    rows = list(range(edgeitems)) + [None] + list(range(len(a) - edgeitems, len(a))) if cut else range(len(a))
    if a.ndim == 1:
        per_line = max(1, int((linewidth - indent) // (width + 2)))
        data = [(" ..." if edgeitems else "...") if i is None else fmt(a[i].item()) for i in rows]
        lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    parts = ["..." if i is None else _values_str(a[i], indent + 1, summarize, edgeitems, linewidth, fmt, width)
             for i in rows]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def format_values(array, prefix: str) -> str:
    """The values part of a tensor's repr (``array`` on the host, not empty), under the options set."""
    o = _options
    threshold = sys.maxsize if o["threshold"] == math.inf else int(o["threshold"])
    edgeitems = int(o["edgeitems"])
    summarize = array.size > threshold
    shown = _summarized(array, edgeitems) if summarize else array
    if array.dtype.kind == "c":
        fmt, width = _complex_formatter(shown, o)
    else:
        fmt, width = _float_formatter(shown, o) if array.dtype.kind == "f" else _text_formatter(shown)
    if array.ndim == 0:
        return fmt(array.item())
    return _values_str(array, len(prefix), summarize, edgeitems, int(o["linewidth"]), fmt, width)


def _dtype_suffix(dtype, empty: bool) -> str | None:
    """``dtype=distnn.<name>`` unless PyTorch leaves the dtype out: the default float dtype; for a tensor with
    values also int64, bool and the default complex dtype (an empty one names those)."""
    from distnn.backend import default_complex_dtype, default_dtype

    implied = {np.dtype(default_dtype())}
    if not empty:
        implied |= {np.dtype(default_complex_dtype()), np.dtype(np.int64), np.dtype(np.bool_)}
    return None if dtype in implied else f"dtype=distnn.{dtype.name}"


def tensor_repr(t, prefix: str = "tensor(") -> str:
    """``repr(t)`` of a dense Tensor, as PyTorch writes it (module docstring)."""
    from distnn.backend import to_numpy

    array = to_numpy(t.data)
    suffixes = []
    if not isinstance(t.data, np.ndarray):  # (a cupy array: PyTorch names the device of a non-CPU tensor)
        suffixes.append(f"device='cuda:{t.data.device.id}'")
    if array.size == 0:
        body = "[]"
        if array.ndim != 1:
            suffixes.append(f"size={tuple(array.shape)}")
    else:
        body = format_values(array, prefix=prefix)
        if not _options["edgeitems"]:  # (PyTorch's: with no edge items shown, the size says what is there)
            suffixes.append(f"size={tuple(array.shape)}")
    dtype = _dtype_suffix(array.dtype, array.size == 0)
    if dtype is not None:
        suffixes.append(dtype)
    if t._node is not None:
        suffixes.append(f"grad_fn=<{t._node.name().rsplit('::', 1)[-1]}>")  # (PyTorch's: the node's class name)
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, len(prefix))


def sparse_repr(indices, values, size, nnz, autograd_suffix) -> str:
    """``repr`` of a sparse COO tensor (host arrays ``indices``, ``values``) as PyTorch writes it: its size,
    nnz, dtype (PyTorch's rule for a tensor with values), layout and ``autograd_suffix`` (or None) on lines
    after the indices and values."""
    prefix, parts = "tensor(", []
    for name, array in (("indices", indices), ("values", values)):
        head = f"{name}=tensor("
        text = head + ("[]" if array.size == 0 else format_values(array, " " * (len(prefix) + len(head))))
        parts.append(text + (f", size={tuple(array.shape)}" if array.size == 0 else "") + ")")
    suffixes = [f"size={tuple(size)}", f"nnz={nnz}"]
    dtype = _dtype_suffix(values.dtype, empty=False)
    suffixes += ([dtype] if dtype else []) + ["layout=distnn.sparse_coo"]
    suffixes += [autograd_suffix] if autograd_suffix else []
    return _add_suffixes(prefix + (",\n" + " " * len(prefix)).join(parts), suffixes, len(prefix), True)


def _add_suffixes(text, suffixes, indent, force_newline=False):
    """PyTorch's ``_add_suffixes``: each suffix after ", ", or on a line of its own where it would pass
    ``linewidth`` (PyTorch's count, one more than the last line's length) or where ``force_newline`` puts
    the first."""
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if force_newline or last_line_len + len(suffix) + 2 > _options["linewidth"]:
            force_newline = False
            text += ",\n" + " " * indent + suffix
            last_line_len = indent + len(suffix)
        else:
            text += ", " + suffix
            last_line_len += len(suffix) + 2
    return text + ")"
