"""``add``/``sub`` with ``alpha`` in float32, rounded once, as PyTorch's CPU kernel (a fused multiply-add).

PyTorch computes ``a + alpha * b`` as ``fmadd(b, alpha, a)`` in float32 (``sub`` is ``add`` with ``-alpha``):
one rounding. ``a + (alpha * b)`` in numpy rounds twice and differs in ~30 % of the elements for ``alpha=3``.
Here ``alpha * b`` is exact in float64 (24-bit times 24-bit significands), and the float64 sum is made
round-to-odd (its TwoSum error decides the last bit) so that the final rounding to float32 is the correctly
rounded one: 53 bits >= 24 + 2 make round-to-odd followed by round-to-nearest a single rounding.
"""
import numpy as np

from distnn.autograd.function import Function

from .torch_layout import torch_layout

_F32 = np.dtype(np.float32)


def fused_scaled_sum(a, b, alpha):
    """``a + alpha * b`` rounded once to float32 (``a``, ``b`` float32 arrays or 0-d; ``alpha`` a real number,
    taken as float32, as PyTorch's opmath for float)."""
    factor = np.float64(np.float32(alpha))
    with np.errstate(all="ignore"):  # (inf * 0, inf - inf: NaN, silently, as PyTorch's)
        product = np.asarray(b, np.float64) * factor  # (exact)
        wide_a = np.asarray(a, np.float64)
        total = wide_a + product
        # TwoSum: the exact rounding error of ``total`` (NaN where total is inf or NaN)
        b_virtual = total - wide_a
        error = (wide_a - (total - b_virtual)) + (product - b_virtual)
        total = np.asarray(total)
        bits = total.view(np.int64)
        inexact_even = (error != 0) & np.isfinite(error) & ((bits & 1) == 0)
        if inexact_even.any():
            # round-to-odd: an inexact even result moves one ulp toward the exact sum (either way it is odd)
            step = np.where((error > 0) == (total > 0), 1, -1)
            bits = bits + np.where(inexact_even, step, 0)
            total = bits.view(np.float64)
        return total.astype(_F32)


def fused_applies(a, b, alpha) -> bool:
    """Whether ``a + alpha * b`` (arrays) takes the single-rounding path: float32 operands, a real non-bool
    ``alpha`` other than 1."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.dtype != _F32 or b.dtype != _F32:
        return False  # (cupy: its own kernels; other dtypes: the two-op path)
    if type(alpha) not in (int, float) or alpha == 1:
        return False
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:  # (the two-op path raises PyTorch's message)
        return False
    return True


class AddScaled(Function):
    """``input + alpha * other`` (``sign`` 1) or ``input - alpha * other`` (``sign`` -1), float32, one rounding.
    The gradients are PyTorch's: ``g`` and ``(sign * g) * alpha``."""
    torch_name = "AddBackward0"
    saves_tensors = False
    sign = 1

    def forward(self, a, b, *, alpha):
        self.alpha = alpha
        sign = self.sign
        return torch_layout(fused_scaled_sum(a, b, sign * alpha), a, b)

    def backward(self, g):
        na, nb = self.needs_input_grad
        scaled = ((g if self.sign > 0 else -g) * self.alpha) if nb else None
        return (g if na else None), scaled


class SubScaled(AddScaled):
    torch_name = "SubBackward0"
    sign = -1
