"""float16 comparisons shared by the float16 tests against PyTorch: how many float16 steps apart two results are."""
import numpy as np


def units_apart(a, b):
    """How many float16 steps separate a and b, elementwise (NaNs at the same places count 0)."""
    def ordered(h):
        bits = np.asarray(h, np.float16).view(np.uint16).astype(np.int64)
        return np.where(bits & 0x8000, 0x8000 - bits, bits)
    both_nan = np.isnan(np.asarray(a, np.float32)) & np.isnan(np.asarray(b, np.float32))
    return np.where(both_nan, 0, np.abs(ordered(a) - ordered(b)))


#: every float16 bit pattern once, as float16 values (NaNs, infinities, subnormals and both zeros included)
EVERY_HALF = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)


def half_bits(x):
    """The bits of a float16 distnn or torch tensor (or array) as uint16, every NaN as one NaN."""
    import torch

    x = x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x.data)
    assert x.dtype == np.float16
    return np.where(np.isnan(x), np.uint16(0x7E00), x.view(np.uint16))  # (any NaN is a NaN)


def assert_same_half_bits(fn_dn, fn_torch, values=EVERY_HALF):
    """``fn_dn`` of a distnn tensor of ``values`` and ``fn_torch`` of a torch one give the same float16 bits."""
    import torch

    import distnn as dn

    np.testing.assert_array_equal(half_bits(fn_dn(dn.tensor(values))), half_bits(fn_torch(torch.tensor(values))))
