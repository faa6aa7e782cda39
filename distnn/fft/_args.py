"""torch.fft's argument rules: input dtypes, ``n``/``s``, ``dim``, ``norm`` and ``out=``, with its errors.

Shared by every transform in :mod:`distnn.fft.transforms`, so that each refuses bad input as PyTorch does
(the same exception types, the gist of its messages).
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.grad_mode import is_grad_enabled
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.backend import default_dtype
from distnn.functional._dims import wrap_dim
from distnn.functional.shape_more import as_tensor

NORMS = ("backward", "ortho", "forward")
_COMPLEX_OF = {np.dtype(np.float32): np.dtype(np.complex64), np.dtype(np.float64): np.dtype(np.complex128)}


def complex_of(dtype) -> np.dtype:
    """The complex dtype of a real one (float32 -> complex64, float64 -> complex128); a complex one itself."""
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "c" else _COMPLEX_OF[dtype]


def dual(norm: str) -> str:
    """The norm of the adjoint transform: a transform scaled by ``1/n`` has an unscaled adjoint and back."""
    return {"backward": "forward", "forward": "backward"}.get(norm, norm)


def check_norm(name: str, norm) -> str:
    if norm is None:
        return "backward"
    if not isinstance(norm, str):
        raise TypeError(f"fft_{name}(): argument 'norm' must be str, not {type(norm).__name__}")
    if norm not in NORMS:
        raise RuntimeError(f'Invalid normalization mode: "{norm}" (expected one of {", ".join(NORMS)}, or None)')
    return norm


def _int(name: str, arg: str, v) -> int:
    if not isinstance(v, numbers.Integral) or isinstance(v, bool):
        raise TypeError(f"fft_{name}(): argument '{arg}' must be int, not {type(v).__name__}")
    return int(v)


def _ints(name: str, arg: str, v) -> tuple:
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return (int(v),)
    if not isinstance(v, (tuple, list)):
        raise TypeError(f"fft_{name}(): argument '{arg}' must be tuple of ints, not {type(v).__name__}")
    return tuple(_int(name, arg, i) for i in v)


def _points(n: int) -> int:
    if n < 1:
        raise RuntimeError(f"Invalid number of data points ({n}) specified")
    return n


def promote(name: str, x, *, real=False) -> Tensor:
    """``x`` as a tensor torch.fft would transform: integers and bool in the default dtype, a complex input refused
    where ``real`` is asked (rfft, ihfft). A real input to a complex transform is not cast here: the transform
    takes it as it is (its gradient is then real, PyTorch's rule for a real input of a complex op)."""
    x = as_tensor(x)
    kind = x.dtype.kind
    if kind in "biu":
        x = x.to(default_dtype())
    elif kind == "f" and x.dtype not in _COMPLEX_OF:  # (half: numpy has no complex32, PyTorch's CPU refuses it too)
        raise RuntimeError(f"Unsupported dtype {torch_dtype_name(x.dtype)} (torch.fft on numpy/cupy covers float32, "
                           "float64 and their complex dtypes)")
    if real and x.dtype.kind == "c":
        raise RuntimeError(f"{name} expects a real input tensor, but got {torch_dtype_name(x.dtype)}")
    return x


def dim_and_n(name: str, x: Tensor, n, dim) -> tuple:
    """A one-dimensional transform's axis and length (None: the input's)."""
    dim = _int(name, "dim", dim)
    if x.ndim == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    axis = wrap_dim(dim, x.ndim, f"fft.{name}")
    return axis, (None if n is None else _points(_int(name, "n", n)))


def dims_and_shape(name: str, x: Tensor, s, dim, *, at_least_one=False) -> tuple:
    """PyTorch's ``canonicalize_fft_shape_and_dim_args``: the axes (in the order given) and the signal size
    along each (``-1`` in ``s``: the input's). ``s`` without ``dim``: its last ``len(s)`` axes; neither: all."""
    axes = None
    if dim is not None:
        axes = tuple(wrap_dim(d, x.ndim, f"fft.{name}") for d in _ints(name, "dim", dim))
        if len(set(axes)) != len(axes):
            raise RuntimeError("FFT dims must be unique")
    if s is not None:
        s = _ints(name, "s", s)
        if axes is not None and len(axes) != len(s):
            raise RuntimeError("When given, dim and shape arguments must have the same length")
        if len(s) > x.ndim:
            raise RuntimeError(f"Got shape with {len(s)} values but input tensor only has {x.ndim} dimensions.")
        if axes is None:
            axes = tuple(range(x.ndim - len(s), x.ndim))
        shape = tuple(x.shape[a] if n == -1 else _points(n) for a, n in zip(axes, s))
    else:
        axes = tuple(range(x.ndim)) if axes is None else axes
        shape = tuple(x.shape[a] for a in axes)
    if at_least_one and not axes:
        raise RuntimeError(f"{name} must transform at least one axis")
    return axes, shape


def c2r_last_size(s, x: Tensor, axes: tuple, shape: tuple) -> int:
    """The real output's length along the last axis of a complex-to-real transform: ``s[-1]``, or (None, -1)
    ``2 * (m - 1)`` from the input's ``m`` bins."""
    if s is None or _ints("", "s", s)[-1] == -1:
        return _points(2 * (x.shape[axes[-1]] - 1))
    return shape[-1]


def write_out(name: str, result: Tensor, out, *, inputs=(), warning=None) -> Tensor:
    """``result`` written into ``out`` (resized when its shape differs, as PyTorch's, which warns when ``out``
    was not empty) and ``out`` returned; torch's refusals: a complex result into a real ``out`` (or back), and
    ``out=`` while recording a gradient. ``warning``: the resize's warning, where it is not PyTorch's usual one."""
    if out is None:
        return result
    if not isinstance(out, Tensor):
        raise TypeError(f"fft_{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in (*inputs, out)):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic differentiation, "
                           "but one of the arguments requires grad.")
    if result.dtype.kind == "c" and out.dtype.kind != "c":
        raise RuntimeError(f"{name} expects a complex output tensor, but got {torch_dtype_name(out.dtype)}")
    if result.dtype.kind == "f" and out.dtype.kind != "f":
        raise RuntimeError(f"{name} expects a floating point output tensor, but got {torch_dtype_name(out.dtype)}")
    from distnn.functional.out_write import write_into_out

    write_into_out(out, result.data, warning)
    return out
