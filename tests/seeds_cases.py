"""The lecture notes' leaf: a float64 tensor that requires grad, for the tests/test_seeds_examples_*.py files."""
import numpy as np

from distnn import Tensor


def leaf(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)
