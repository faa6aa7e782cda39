"""float16 comparisons shared by the float16 tests against PyTorch: how many float16 steps apart two results are."""
import numpy as np


def units_apart(a, b):
    """How many float16 steps separate a and b, elementwise (NaNs at the same places count 0)."""
    def ordered(h):
        bits = np.asarray(h, np.float16).view(np.uint16).astype(np.int64)
        return np.where(bits & 0x8000, 0x8000 - bits, bits)
    both_nan = np.isnan(np.asarray(a, np.float32)) & np.isnan(np.asarray(b, np.float32))
    return np.where(both_nan, 0, np.abs(ordered(a) - ordered(b)))
