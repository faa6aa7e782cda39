"""``add``/``sub`` with ``alpha`` other than 1 as PyTorch's: one kernel for ``input +- alpha * other`` in the
result's dtype (the operands cast to it first, a Python number as a tensor of it), rounded as PyTorch's CPU kernel
(:mod:`.scaled_sum`), recorded as PyTorch's ``AddBackward0``/``SubBackward0``."""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function

from .scaled_sum import check_integer_alpha, scaled_sum
from .torch_layout import torch_layout


class AddScaled(Function):
    """``input + alpha * other`` (``sign`` 1) or ``input - alpha * other`` (``sign`` -1), operands of one real
    float dtype. The gradients are PyTorch's: ``g`` and ``(sign * g) * alpha``."""
    torch_name = "AddBackward0"
    saves_tensors = False
    sign = 1

    def forward(self, a, b, *, alpha):
        self.alpha = alpha
        # (``sub`` is ``add`` with ``-alpha``, negated, as PyTorch's: a NaN alpha flips its sign bit, which
        # ``-1 * nan`` keeps; the product and sum then carry that NaN's sign into the result)
        return torch_layout(scaled_sum(a, b, alpha if self.sign > 0 else -alpha), a, b)

    def backward(self, g):
        na, nb = self.needs_input_grad
        scaled = None
        if nb:
            signed = g if self.sign > 0 else -g
            if signed.dtype == np.float16:  # (PyTorch's float16 product: in float32, rounded once to float16)
                scaled = (signed.astype(np.float32) * np.float32(self.alpha)).astype(np.float16)
            else:
                scaled = signed * self.alpha
        return (g if na else None), scaled

    def backward_graph(self, g):  # (create_graph: the same formula on the recorded Tensor gradient)
        na, nb = self.needs_input_grad
        return (g if na else None), (((g if self.sign > 0 else -g) * self.alpha) if nb else None)


class SubScaled(AddScaled):
    torch_name = "SubBackward0"
    sign = -1


def scaled_add(input, other, alpha, sign):  # noqa: A002
    """``input + sign * alpha * other`` by the one kernel, or None where the two-op path must run it (complex
    results, sparse or non-numpy operands, shapes that do not broadcast: its errors are PyTorch's). ``alpha``
    must already have passed PyTorch's ``alpha_check`` (``alpha_scaled``'s)."""
    from distnn.autograd.tensor import Tensor
    from distnn.dtypes import result_type

    if type(alpha) not in (bool, int, float) or type(input.data) is not np.ndarray:
        return None
    if isinstance(other, Tensor):
        if type(other.data) is not np.ndarray or getattr(other, "is_sparse", False):
            return None
        dtype = input.data.dtype if other.data.dtype == input.data.dtype else np.dtype(result_type(input, other))
        other_shape = other.data.shape
    elif type(other) in (bool, int, float):
        # (a real number never promotes a float tensor: its dtype, without result_type's cost)
        dtype = input.data.dtype if input.data.dtype.kind == "f" else np.dtype(result_type(input, other))
        other_shape = ()
    else:
        return None
    if dtype.kind not in "biuf" or dtype.itemsize > 8:  # (complex, longdouble: the two-op path)
        return None
    try:
        np.broadcast_shapes(input.data.shape, other_shape)
    except ValueError:
        return None
    if dtype.kind in "iu":
        check_integer_alpha(dtype, alpha)
    a = input if input.data.dtype == dtype else input.to(dtype)  # (differentiable: the gradient cast back)
    if isinstance(other, Tensor):
        b = other if other.data.dtype == dtype else other.to(dtype)
    else:
        with np.errstate(over="ignore"):  # (a number beyond float16's range is inf, silently, as PyTorch's)
            b = Tensor(np.asarray(other).astype(dtype))  # (a number cast to the result's dtype, as PyTorch's)
    if dtype.kind == "f":
        return (AddScaled if sign > 0 else SubScaled).apply(a, b, alpha=alpha)
    return Tensor(torch_layout(scaled_sum(a.data, b.data, alpha if sign > 0 else -alpha), a.data, b.data))
