"""``cat``/``stack`` and the joins built on them refuse shapes as PyTorch 2.13 does: its error types (a RuntimeError
for shapes, an IndexError for a dim out of range) and messages, while the refusals stay the ValueErrors distnn
raised before; PyTorch's 1-D empty tensors are skipped by ``cat`` whatever the others' shapes."""
import numpy as np
import pytest

import distnn
from tensor_ops_oracle import assert_refused_as_torch, compare, rand

torch = pytest.importorskip("torch")

E = np.zeros(0)  # (a 1-D empty tensor: PyTorch's cat leaves it out)

REFUSED = [
    ("sizes", lambda m, a, b: m.cat([a, b]), [rand(2, 3), rand(2, 4)],
     "Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 for tensor number 1"),
    ("sizes, third", lambda m, a, b, c: m.cat([a, b, c], 1), [rand(2, 3), rand(2, 1), rand(3, 3)],
     "Expected size 2 but got size 3 for tensor number 2 in the list"),
    ("ranks", lambda m, a, b: m.cat([a, b]), [rand(2, 3), rand(3)],
     "Tensors must have same number of dimensions: got 2 and 1"),
    ("ranks, empty", lambda m, a, b: m.cat([a, b]), [rand(2, 0), rand(2, 3, 0)],
     "Tensors must have same number of dimensions: got 2 and 3"),
    ("0-d", lambda m, a, b: m.cat([a, b], 5), [rand(2, 3), np.float64(1.0)],
     "zero-dimensional tensor (at position 1) cannot be concatenated"),
    ("dim", lambda m, a, b: m.cat([a, b], 2), [rand(2, 3), rand(2, 4)], "Dimension out of range"),
    ("dim negative", lambda m, a, b: m.cat([a, b], -3), [rand(2, 3), rand(2, 4)],
     "expected to be in range of [-2, 1], but got -3"),
    ("dim, after an empty", lambda m, e, a: m.cat([e, a], 2), [E, rand(2, 3)], "[-2, 1], but got 2"),
    ("concatenate", lambda m, a, b: m.concatenate([a, b], axis=1), [rand(2, 3), rand(3, 3)],
     "Sizes of tensors must match except in dimension 1"),
    ("hstack", lambda m, a, b: m.hstack([a, b]), [rand(2, 3), rand(3, 3)],
     "Expected size 2 but got size 3 for tensor number 1"),
    ("vstack", lambda m, a, b: m.vstack([a, b]), [rand(2, 3), rand(4)], "Expected size 3 but got size 4"),
    ("dstack", lambda m, a, b: m.dstack([a, b]), [rand(2, 3), rand(2, 2)], "Expected size 3 but got size 2"),
    ("column_stack", lambda m, a, b: m.column_stack([a, b]), [rand(2, 3), rand(3)], "Expected size 2 but got size 3"),
    ("stack sizes", lambda m, a, b: m.stack([a, b]), [rand(2, 3), rand(2, 4)],
     "stack expects each tensor to be equal size, but got [2, 3] at entry 0 and [2, 4] at entry 1"),
    ("stack dim", lambda m, a, b: m.stack([a, b], 3), [rand(2, 3), rand(2, 3)], "[-3, 2], but got 3"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_join_errors_torch(case):
    assert_refused_as_torch(torch, case)


def test_shape_refusals_are_runtime_and_value_errors():
    # PyTorch's code catches RuntimeError, distnn's older code ValueError: both catch it.
    a, b = distnn.zeros(2, 3), distnn.zeros(2, 4)
    for join in (lambda: distnn.cat([a, b]), lambda: distnn.stack([a, b]), lambda: distnn.vstack([a, b])):
        with pytest.raises(RuntimeError):
            join()
        with pytest.raises(ValueError):
            join()
    with pytest.raises(ValueError, match=r"torch.cat\(\): expected a non-empty list of Tensors"):
        distnn.cat([])  # (PyTorch's ValueError)
    with pytest.raises(RuntimeError, match="stack expects a non-empty TensorList"):
        distnn.stack([])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [
    (lambda m, e, a: m.cat([e, a]), [E, rand(2, 3)]),
    (lambda m, a, e, b: m.cat([a, e, b], 1), [rand(2, 3), E, rand(2, 1)]),
    (lambda m, a, e: m.cat([a, e], -1), [rand(2, 3, 4), E]),
    (lambda m, e, f: m.cat([e, f], 5), [E, E]),
    (lambda m, a, b: m.cat([a, b], -2), [rand(2, 0), rand(3, 0)]),
    (lambda m, a, b: m.stack([a, b], -1), [rand(2, 3), rand(2, 3)]),
])
def test_joins_match_torch(case, dtype):
    """Values and gradients, 1-D empty tensors skipped (their gradient an empty one) as in PyTorch."""
    fn, arrays = case
    compare(torch, fn, arrays, dtype=dtype)


def test_empty_tensor_takes_part_in_the_result_dtype():
    out = distnn.cat([distnn.zeros(0, dtype=distnn.float64), distnn.zeros(2, 3)])
    expected = torch.cat([torch.zeros(0, dtype=torch.float64), torch.zeros(2, 3)])
    assert out.dtype == np.float64 and expected.dtype == torch.float64 and tuple(out.shape) == (2, 3)
