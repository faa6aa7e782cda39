"""PyTorch's refusals of mixed dtypes in the layers' ops: a float64 weight with a float32 (or integer) input,
or the reverse, is an error there (numpy would quietly compute in float64, and a model half-cast with
``.double()`` would train in a dtype nobody chose). The messages carry PyTorch's wording and dtype names.

The checks run in the ops' ``forward``, after :mod:`distnn.autocast` has cast the inputs: under autocast mixed
dtypes are fine, as in PyTorch.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd import autocast_state
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


def check_norm(x, weight=None, bias=None, running_mean=None, running_var=None, training=True):
    """The normalizations (layer, batch, group, instance), as PyTorch's CPU kernels: when the first of weight,
    bias, running_mean, running_var given has another dtype than the input ("mixed type"), all of them must be
    float32 and the input float16 (computed in float32); otherwise each must have the input's dtype (the first
    that has not named, in the order the kernel reads them: in ``training`` the running statistics first)."""
    given = [p for p in (weight, bias, running_mean, running_var) if p is not None]
    if not given:
        return
    named = ", ".join(sorted({torch_dtype_name(p.dtype) for p in given}))
    hint = (f"(the input is {torch_dtype_name(x.dtype)}, the parameters and running statistics {named}: cast the "
            "input or the module)")
    if given[0].dtype != x.dtype:
        if any(p.dtype != np.float32 for p in given):
            raise RuntimeError(f"mixed dtype (CPU): expect parameter to have scalar type of Float {hint}")
        if x.dtype != np.float16:
            raise RuntimeError(f"mixed dtype (CPU): all inputs must share same datatype. {hint}")
        return
    order = (running_mean, running_var, weight, bias) if training else (weight, bias, running_mean, running_var)
    for p in order:
        if p is not None and p.dtype != x.dtype:
            raise RuntimeError(f"expected scalar type {torch_dtype_name(x.dtype)} but found "
                               f"{torch_dtype_name(p.dtype)} {hint}")


def check_floating(x, kernel):
    """The normalizations have no integer (nor bool) kernels: PyTorch's NotImplementedError, naming its kernel
    (numpy would quietly normalize in float64)."""
    if x.dtype.kind in "biu":
        raise NotImplementedError(f'"{kernel}" not implemented for \'{torch_dtype_name(x.dtype)}\' (normalize a '
                                  "floating-point tensor: cast the input, e.g. x.float())")


def attn_mask_dtype(masks, query_dtype):
    """The dtype PyTorch's attention adds its masks in: a bool mask becomes the query's dtype (0 / -inf), float
    ones keep theirs, and an attention mask and a key padding mask are added (promoted). None without masks."""
    given = [np.dtype(m.dtype) if hasattr(m, "dtype") else np.asarray(m).dtype for m in masks if m is not None]
    dtypes = [query_dtype if d == np.bool_ else d for d in given]
    return np.result_type(*dtypes) if dtypes else None


def autocast_dtype_of(a):
    """The lower dtype of this thread's autocast for ``a``'s device (None when off)."""
    return autocast_state.current("cpu" if isinstance(a, np.ndarray) else "cuda")


def check_attn_mask(mask_dtype, query_dtype, fused, autocast_dtype=None):
    """PyTorch's refusals of a float mask of another dtype than the (projected) query's: its fused attention
    (F.scaled_dot_product_attention, MultiheadAttention with ``need_weights=False``) takes bool, float32 or the
    query's dtype; MultiheadAttention's weights path (a baddbmm) only the query's. Under autocast a float32 mask
    is cast to its lower dtype there (float64 is never cast)."""
    if mask_dtype is None or mask_dtype == query_dtype or (fused and mask_dtype in (np.bool_, np.float32)):
        return
    if autocast_dtype is not None and mask_dtype == np.float32 and query_dtype == autocast_dtype:
        return
    if fused:
        raise RuntimeError(f"Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                           f"attn_mask.dtype: {_lower(mask_dtype)} and  query.dtype: {_lower(query_dtype)} instead. "
                           "(cast the mask, e.g. mask.to(query.dtype))")
    raise RuntimeError(f"Input dtypes must be the same, got: input {_lower(mask_dtype)}, batch1: "
                       f"{_lower(query_dtype)}, batch2: {_lower(query_dtype)} (the attention mask's dtype and the "
                       "query's: cast the mask, e.g. attn_mask.to(query.dtype))")
