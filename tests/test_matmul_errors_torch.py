"""``matmul``'s (and ``bmm``'s, ``mv``'s, ``linalg.matmul``'s, ``@``'s) refusals against PyTorch 2.13: each shape
case in the words of the kernel PyTorch runs it with (dot, mv, mm, a batch folded into mm/mv where PyTorch folds,
bmm of broadcast batches where it does not: which depends on whether the smaller operand requires grad and on the
larger one's strides), mixed dtypes in each kernel's words after the shapes, and the error type: PyTorch's
RuntimeError, still a ValueError (as distnn's always were). An ``out`` that partly overlaps an operand is not
refused, as PyTorch's (the product's values are checked only where PyTorch's do not depend on its kernel's order
of reads and writes). Each case runs in torch and in distnn and compares the outcome (:mod:`torch_outcome`)."""
import pytest
from torch_outcome import both

import distnn

SHAPES = [((), (3,)), ((3,), ()), ((2, 3), (2, 3)), ((3,), (4,)), ((2, 3), (4,)), ((4,), (3, 2)),
          ((2, 2, 3), (2, 4, 5)), ((2, 2, 3), (4, 5)), ((2, 3), (2, 4, 5)), ((2, 2, 3), (3, 4, 5)),
          ((3, 1, 2, 3), (2, 4, 5)), ((2, 2, 3), (4,)), ((4,), (2, 3, 5)), ((4,), (2, 1, 5)), ((0, 3), (4, 0)),
          ((2, 0), (3, 2)), ((2, 3, 4), (2, 5)), ((5,), (2, 3, 4)), ((2, 1, 3), (3, 3, 4)), ((0, 2, 3), (4, 5)),
          ((2, 3), (3, 2)), ((2, 2, 3), (3, 2)), ((3,), (2, 3, 2)), ((2, 2, 3), (3,))]
DTYPES = [("float32", "float32"), ("float32", "float64"), ("int64", "float32")]


def _operand(L, shape, dtype, requires_grad=False, transposed=False):
    if transposed:  # (the last two dims' layout swapped: PyTorch does not fold such a batch)
        t = L.ones((*shape[:-2], shape[-1], shape[-2]), dtype=getattr(L, dtype)).transpose(-1, -2)
    else:
        t = L.ones(shape, dtype=getattr(L, dtype))
    return t.requires_grad_(requires_grad) if requires_grad else t


@pytest.mark.parametrize("a_shape,b_shape", SHAPES)
@pytest.mark.parametrize("a_dtype,b_dtype,grad", [(a, b, grad) for a, b in DTYPES for grad in ("none", "a", "b")
                                                  if grad == "none" or "int64" not in (a, b)])
def test_matmul_refusals(a_shape, b_shape, a_dtype, b_dtype, grad):
    def run(L):
        a = _operand(L, a_shape, a_dtype, grad == "a")
        b = _operand(L, b_shape, b_dtype, grad == "b")
        return L.matmul(a, b)

    expected, got = both(run)
    assert got[:3] == expected[:3]  # (the outcome, the error's type and message, or the result's state)


@pytest.mark.parametrize("a_shape,b_shape", [((2, 2, 3), (4, 5)), ((4,), (2, 3, 5)), ((2, 4, 3), (4,))])
@pytest.mark.parametrize("which", ["a", "b"])
def test_matmul_refusals_of_transposed_batches(a_shape, b_shape, which):
    def run(L):
        a = _operand(L, a_shape, "float32", transposed=which == "a" and len(a_shape) >= 2)
        b = _operand(L, b_shape, "float32", transposed=which == "b" and len(b_shape) >= 2)
        return a @ b

    expected, got = both(run)
    assert expected[0] == "error" and got == expected


@pytest.mark.parametrize("a_shape,b_shape", [((2, 3), (2, 3)), ((2, 2, 3), (3, 4, 5)), ((), (3,))])
def test_shape_refusals_are_runtime_errors_and_value_errors(a_shape, b_shape):
    with pytest.raises(RuntimeError) as caught:
        distnn.ones(a_shape) @ distnn.ones(b_shape)
    assert isinstance(caught.value, ValueError)


BMM = [((2, 2, 3), (2, 4, 5)), ((2, 2, 3), (3, 3, 5)), ((2, 3), (2, 3, 4)), ((2, 2, 3), (2, 3)),
       ((1, 2, 3), (2, 3, 4)), ((2, 2, 3, 1), (2, 3, 4))]


@pytest.mark.parametrize("a_shape,b_shape", BMM)
def test_bmm_refusals(a_shape, b_shape):
    expected, got = both(lambda L: L.bmm(L.ones(a_shape), L.ones(b_shape)))
    assert expected[0] == "error" and got == expected


@pytest.mark.parametrize("a_shape,b_shape", [((3,), (3,)), ((2, 3), (3, 1)), ((2, 3, 1), (3,)), ((2, 3), (4,))])
def test_mv_refusals(a_shape, b_shape):
    expected, got = both(lambda L: L.mv(L.ones(a_shape), L.ones(b_shape)))
    assert expected[0] == "error" and got == expected


@pytest.mark.parametrize("op", ["mm", "matmul", "bmm", "mv"])
def test_out_partly_overlapping_an_operand_is_not_refused(op):
    """PyTorch checks no overlap of a matrix product's ``out`` with its operands (only ``out``'s own): the call
    goes through. (Its values are then its BLAS kernel's order of reads and writes; distnn's are the product.)"""
    def run(L):
        base = L.arange(20.0)
        if op == "bmm":
            return L.bmm(base[:8].view(2, 2, 2), L.ones(2, 2, 2), out=base[4:12].view(2, 2, 2)).shape
        if op == "mv":
            return L.mv(L.ones(2, 3), base[:3], out=base[2:4]).shape
        return getattr(L, op)(base[:6].view(2, 3), L.ones(3, 2), out=base[2:6].view(2, 2)).shape

    expected, got = both(run)
    assert expected[0] == "ok" and got == expected
