"""Parity leftovers against PyTorch 2.13: ``x[index] = v`` with a ``v`` that cannot be broadcast (PyTorch's
RuntimeError, in ``copy_``'s or ``index_put_``'s words, still a ValueError), ``masked_fill``/``masked_fill_`` with
a complex value on a real tensor, ``tensor(complex, dtype=real)``, the in-place ops' refusals without a
``name_: `` prefix, ``pow`` with a bool tensor exponent, and the joins (``cat``, ``concat``, ``concatenate``,
``stack``: distinct functions in both libraries) refusing one Tensor in place of a sequence under their own
names. Each case runs the same code in torch and in distnn and compares the outcome (:mod:`torch_outcome`)."""
import numpy as np
import pytest
from torch_outcome import both

import distnn

SETITEM = {
    "ellipsis, short": (lambda L: Ellipsis, (2,)),
    "ellipsis, leading ones": (lambda L: Ellipsis, (1, 1, 2)),
    "ellipsis, too many dims": (lambda L: Ellipsis, (4, 2, 3)),
    "row, matrix": (lambda L: 0, (2, 3)),
    "row, short": (lambda L: 0, (2,)),
    "column, long": (lambda L: (slice(None), 0), (3,)),
    "slice": (lambda L: slice(0, 1), (2, 2)),
    "new axis": (lambda L: None, (2,)),
    "index tensor": (lambda L: L.tensor([0, 1]), (2,)),
    "repeated index tensor": (lambda L: L.tensor([0, 1, 1]), (2, 3)),
    "mask": (lambda L: L.tensor([[False, True, False], [True, False, False]]), (3,)),
    "index and slice": (lambda L: (L.tensor([0, 1]), slice(None)), (4,)),
    "broadcastable": (lambda L: Ellipsis, (1, 3)),
    "broadcastable index tensor": (lambda L: L.tensor([1, 0]), (3,)),
}


@pytest.mark.parametrize("case", SETITEM)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_setitem_of_a_value_that_cannot_be_broadcast(case, dtype):
    def run(L):
        y = L.zeros(2, 3)
        index, shape = SETITEM[case]
        y[index(L)] = L.ones(shape, dtype=getattr(L, dtype))
        return y

    expected, got = both(run)
    assert got == expected


def test_setitem_refusal_is_a_runtime_error_and_a_value_error():
    with pytest.raises(RuntimeError) as caught:
        distnn.zeros(2, 3)[...] = distnn.ones(2)
    assert isinstance(caught.value, ValueError)


FILL_DTYPES = ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool", "complex64"]
# (a list: the value as a 0-d tensor)
FILL_VALUES = {"complex": 1 + 1j, "complex, real": 2 + 0j, "complex 0-d tensor": [1 + 1j],
               "complex 0-d tensor, real": [3 + 0j], "float": 2.5, "float 0-d tensor": [2.5], "int 0-d tensor": [7]}


@pytest.mark.parametrize("dtype", FILL_DTYPES)
@pytest.mark.parametrize("value", FILL_VALUES)
@pytest.mark.parametrize("inplace", [False, True])
def test_masked_fill_with_a_complex_value(dtype, value, inplace):
    def run(L):
        x = L.zeros(2, dtype=getattr(L, dtype))
        fill = FILL_VALUES[value]
        if isinstance(fill, list):
            fill = L.tensor(fill[0])
        mask = L.tensor([True, False])
        return x.masked_fill_(mask, fill) if inplace else x.masked_fill(mask, fill)

    expected, got = both(run)
    assert got == expected


TENSOR_DATA = {"complex": lambda: [1 + 1j], "complex scalar": lambda: 1 + 1j, "complex, real": lambda: [1, 2 + 0j],
               "nested": lambda: [[1.0], [2j]], "numpy complex array": lambda: np.array([1 + 1j])}


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32", "uint8", "bool", "complex64"])
@pytest.mark.parametrize("data", TENSOR_DATA)
def test_tensor_of_complex_data_with_a_real_dtype(dtype, data):
    expected, got = both(lambda L: L.tensor(TENSOR_DATA[data](), dtype=getattr(L, dtype)))
    assert got == expected


INPLACE = {
    "pow_ float exponent": lambda L: L.tensor([1, 2]).pow_(2.5),
    "pow_ float tensor": lambda L: L.tensor([1, 2]).pow_(L.tensor([1.5])),
    "pow_ of bool": lambda L: L.tensor([True]).pow_(2),
    "pow_ complex": lambda L: L.tensor([1.0]).pow_(1j),
    "pow_ negative int": lambda L: L.tensor([1, 2]).pow_(-1),
    "pow_ bool tensor": lambda L: L.tensor([2, 3]).pow_(L.tensor([True, False])),
    "add_ broadcast": lambda L: L.ones(2, 3).add_(L.ones(4, 2, 3)),
    "add_ complex": lambda L: L.ones(2).add_(1.5j),
    "mul_ float": lambda L: L.ones(2, dtype=L.int64).mul_(1.5),
    "div_": lambda L: L.ones(2, dtype=L.int64).div_(2),
    "sqrt_": lambda L: L.ones(2, dtype=L.int64).sqrt_(),
}


@pytest.mark.parametrize("case", INPLACE)
def test_inplace_refusals_have_no_name_prefix(case):
    expected, got = both(INPLACE[case])
    assert got == expected


POW = {
    "float ** bool tensor": lambda L: L.pow(L.tensor([1.0, 2.0]), L.tensor([True, False])),
    "bool ** bool tensor": lambda L: L.pow(L.tensor([True, False]), L.tensor([True, False])),
    "int ** bool tensor": lambda L: L.pow(L.tensor([2, 3]), L.tensor([True, False])),
    "int8 ** bool tensor": lambda L: L.tensor([2], dtype=L.int8) ** L.tensor([True]),
    "uint8 ** bool tensor": lambda L: L.tensor([2], dtype=L.uint8) ** L.tensor([True]),
    "bool ** int8 tensor": lambda L: L.tensor([True]) ** L.tensor([2], dtype=L.int8),
    "number ** bool tensor": lambda L: 2.5 ** L.tensor([True]),
    "int number ** bool tensor": lambda L: L.pow(2, L.tensor([True, False])),
    "bool tensor ** True": lambda L: L.tensor([True]) ** True,
}


@pytest.mark.parametrize("case", POW)
def test_pow_with_a_bool_tensor(case):
    expected, got = both(POW[case])
    assert got == expected


@pytest.mark.parametrize("name", ["cat", "concat", "concatenate", "stack"])
def test_joins_refuse_a_lone_tensor_under_their_own_names(name):
    expected, got = both(lambda L: getattr(L, name)(L.ones(2, 2)))
    assert expected[0] == "error" and got == expected
    assert (distnn.cat is distnn.concat) is False  # (as torch.cat is not torch.concat)


SPARSE_MM = {
    "sparse @ dense": lambda L, s, d: (L.mm(s, d, out=L.zeros(2, 2)),),
    "resized silently": lambda L, s, d: (L.mm(s, d, out=L.zeros(5)),),
    "strided out kept": lambda L, s, d: (L.mm(s, d, out=L.zeros(2, 4)[:, ::2]),),
    "out float64": lambda L, s, d: L.mm(s, d, out=L.zeros(2, 2, dtype=L.float64)),
    "dense float64": lambda L, s, d: L.mm(s, d.double(), out=L.zeros(2, 2)),
    "dense int64": lambda L, s, d: L.mm(s, d.long(), out=L.zeros(2, 2)),
    "dense @ sparse": lambda L, s, d: L.mm(d, s, out=L.zeros(2, 2)),
    "sparse @ sparse": lambda L, s, d: L.mm(s, s, out=L.zeros(2, 2)),
    "shapes": lambda L, s, d: L.mm(s, L.ones(3, 2), out=L.zeros(2, 2)),
    "dense requires grad": lambda L, s, d: L.mm(s, d.requires_grad_(), out=L.zeros(2, 2)),
    "out a list": lambda L, s, d: L.mm(s, d, out=[1]),
}


@pytest.mark.parametrize("case", SPARSE_MM)
def test_mm_out_with_a_sparse_operand(case):
    def run(L):
        s = L.tensor([[0.0, 2.0], [3.0, 0.0]]).to_sparse()
        d = L.tensor([[1.0, 2.0], [3.0, 4.0]])
        got = SPARSE_MM[case](L, s, d)
        if isinstance(got, tuple):  # (the product's values, shape, strides and out returned)
            return got[0].tolist(), tuple(got[0].shape), got[0].stride()
        return got

    expected, got = both(run)
    assert got == expected
