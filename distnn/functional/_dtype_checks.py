"""PyTorch's refusals of mixed dtypes in the layers' ops: a float64 weight with a float32 (or integer) input,
or the reverse, is an error there (numpy would quietly compute in float64, and a model half-cast with
``.double()`` would train in a dtype nobody chose). The messages carry PyTorch's wording and dtype names.

The checks run in the ops' ``forward``, after :mod:`distnn.autocast` has cast the inputs: under autocast mixed
dtypes are fine, as in PyTorch.
"""
from __future__ import annotations

from distnn.autograd.tensor_inplace_methods import torch_dtype_name

_LOWER = {"float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int", "int32": "int",
          "int16": "short int", "int8": "signed char", "uint8": "unsigned char", "bool": "bool"}


def _lower(dtype) -> str:
    """PyTorch's lower-case C name of a dtype ("float", "double"), which some of its messages use."""
    return _LOWER.get(getattr(dtype, "name", str(dtype)), torch_dtype_name(dtype).lower())


def check_linear(x, weight, bias=None):
    """``F.linear``: the input, the weight and the bias share one dtype. (PyTorch words it as its matrix
    product does without a bias, as its addmm does with one.)"""
    if x.dtype != weight.dtype and bias is None:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_lower(x.dtype)} != "
                           f"{_lower(weight.dtype)} (cast the input, e.g. x.to(weight.dtype), or the module)")
    if x.dtype != weight.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {torch_dtype_name(x.dtype)} and "
                           f"{torch_dtype_name(weight.dtype)} (cast the input, e.g. x.to(weight.dtype), or the "
                           "module, e.g. model.float())")
    if bias is not None and bias.dtype != weight.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got {torch_dtype_name(bias.dtype)} and "
                           f"{torch_dtype_name(weight.dtype)} (the bias's dtype and the weight's)")


def check_conv(x, weight, bias=None, check_bias=True, bias_first=True):
    """The convolutions: the input's dtype is the bias's and the weight's (checked in PyTorch's order)."""
    if bias_first and check_bias:
        _check_conv_bias(x, bias)
    if x.dtype != weight.dtype:
        raise RuntimeError(f"expected scalar type {torch_dtype_name(x.dtype)} but found "
                           f"{torch_dtype_name(weight.dtype)} (the input's dtype and the weight's; cast the input, "
                           "e.g. x.to(weight.dtype), or the module)")
    if check_bias and not bias_first and bias is not None and bias.dtype != x.dtype:  # (worded as the weight's)
        raise RuntimeError(f"expected scalar type {torch_dtype_name(x.dtype)} but found "
                           f"{torch_dtype_name(bias.dtype)} (the input's dtype and the bias's)")


def _check_conv_bias(x, bias):
    if bias is not None and bias.dtype != x.dtype:
        raise RuntimeError(f"Input type ({_lower(x.dtype)}) and bias type ({_lower(bias.dtype)}) should be the "
                           "same")


def check_norm(x, *params):
    """The normalizations (layer, batch, group, instance): the weight, bias and running statistics given have
    the input's dtype, or (PyTorch's one mixed case) the input is float16 and they are all float32."""
    dtypes = {p.dtype.name for p in params if p is not None}
    if not dtypes or dtypes == {x.dtype.name} or (x.dtype.name == "float16" and dtypes == {"float32"}):
        return
    named = ", ".join(sorted(torch_dtype_name(d) for d in dtypes))
    if x.dtype.name in ("float32", "float16"):
        raise RuntimeError(f"mixed dtype (CPU): expect parameter to have scalar type of Float (the input is "
                           f"{torch_dtype_name(x.dtype)}, the parameters {named}: cast the input or the module)")
    raise RuntimeError(f"mixed dtype (CPU): all inputs must share same datatype. (the input is "
                       f"{torch_dtype_name(x.dtype)}, the parameters {named}: cast the input or the module)")


def check_floating(x, kernel):
    """The normalizations have no integer (nor bool) kernels: PyTorch's NotImplementedError, naming its kernel
    (numpy would quietly normalize in float64)."""
    if x.dtype.kind in "biu":
        raise NotImplementedError(f'"{kernel}" not implemented for \'{torch_dtype_name(x.dtype)}\' (normalize a '
                                  "floating-point tensor: cast the input, e.g. x.float())")
