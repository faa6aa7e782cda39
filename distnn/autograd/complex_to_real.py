"""PyTorch's refusals of a complex number where a real dtype is asked for: a fill value for a real tensor
(``masked_fill``, ``masked_fill_``), and Python data for ``tensor(data, dtype=real)``.

For a fill value, PyTorch converts the value to the tensor's scalar type with an overflow check (``checked_convert``): a complex
value with a nonzero imaginary part cannot be a real number, and is refused as an overflow
(``value cannot be converted to type float without overflow``, C++'s type name); one with a zero imaginary part
is its real part. A bool tensor takes any complex value (nonzero is True); a complex tensor any.

For ``tensor()``, PyTorch's parser reads each Python number as the dtype's Python type (``float(1j)``,
``int(1j)``), which refuses any complex number, even one with a zero imaginary part; a bool dtype takes it.
"""
from __future__ import annotations

import numpy as np

__all__ = ["real_fill_value", "refuse_python_complex"]

# (the names c10's ``checked_convert`` gives the scalar types in its refusal)
_CPP_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
              "int64": "int64_t", "int32": "int", "int16": "int16_t", "int8": "int8_t", "uint8": "uint8_t",
              "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t"}


def real_fill_value(value, dtype):
    """``value`` (a number, or a 0-d Tensor) to fill a tensor of ``dtype`` with: a complex one as PyTorch takes
    it for a real (non-bool) ``dtype`` (see the module docstring); anything else as given."""
    kind = np.dtype(dtype).kind
    if kind in "cb":
        return value
    if isinstance(value, complex):  # (np.complex128 too: a subclass)
        if value.imag != 0:
            raise _overflow(dtype)
        return value.real
    value_dtype = getattr(value, "dtype", None)
    if value_dtype is not None and getattr(value, "ndim", 1) == 0 and np.dtype(value_dtype).kind == "c":
        if complex(value.data if hasattr(value, "_node") else value).imag != 0:
            raise _overflow(dtype)
        return value.real
    return value


def _overflow(dtype) -> RuntimeError:
    name = np.dtype(dtype).name
    return RuntimeError(f"value cannot be converted to type {_CPP_NAMES.get(name, name)} without overflow")


def refuse_python_complex(dtype) -> None:
    """PyTorch's refusal of Python complex data for ``dtype`` (see the module docstring)."""
    kind = np.dtype(dtype).kind
    if kind == "f":
        raise TypeError("must be real number, not complex")
    if kind in "iu":
        raise TypeError("'complex' object cannot be interpreted as an integer")
