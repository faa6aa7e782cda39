"""A number argument taken to an integer kernel's dtype as PyTorch takes it (``c10::checked_convert``): the
``value`` of ``torch.addcmul`` on integer tensors, where a float ``value`` is truncated, not promoting the result.
"""
from __future__ import annotations

import numpy as np

# the C++ type names PyTorch's message gives (its scalar_t of each integer dtype)
_C_NAMES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int", "int64": "int64_t"}


def integer_scalar(value, dtype) -> int:
    """``value`` (a float or complex number) as an integer of ``dtype``: truncated toward zero. Refused, as
    PyTorch refuses it, where it is NaN, has an imaginary part or lies outside the dtype's range (compared as
    doubles, so 2**63 passes for int64 and wraps to -2**63, as the C cast gives on x86)."""
    info = np.iinfo(dtype)
    real = value.real if isinstance(value, (complex, np.complexfloating)) else value
    f = float(real)
    if f != f or real != value or f < float(info.min) or f > float(info.max):
        name = _C_NAMES.get(np.dtype(dtype).name, np.dtype(dtype).name)
        raise RuntimeError(f"value cannot be converted to type {name} without overflow")
    span = 1 << info.bits
    return (int(f) - int(info.min)) % span + int(info.min)
