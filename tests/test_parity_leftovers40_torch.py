"""PyTorch 2.13 parity leftovers, each against torch running the same code (:mod:`torch_outcome`): ``sum``/``prod``
given ``out=`` without a ``dim`` (refused by PyTorch's parser, in its two wordings), the complex max/min
refusals, ``abs`` of bool, ``where`` with a condition that is not bool (uint8 warned once a process), sparse
products of two dtypes (no promotion), ``x[index] = v`` with a ``v`` that is neither a Tensor nor a number, and
the sign of ``sqrt``'s NaN at a negative number (clear, as PyTorch's; numpy's is set)."""
import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from torch_outcome import both

import distnn

X = np.array([[1.5, -2.5, 3.5], [4.0, 0.25, -6.25]], dtype=np.float32)
C = np.array([[1 + 2j, -3 + 0.5j, 2 - 1j], [0.5j, 4, -1 - 1j]], dtype=np.complex64)

NO_DIM = {
    "sum(x, out)": lambda L, o: L.sum(L.tensor(X), out=o),
    "sum(x, dtype, out)": lambda L, o: L.sum(L.tensor(X), dtype=L.float32, out=o),
    "sum(x, keepdim, out)": lambda L, o: L.sum(L.tensor(X), keepdim=True, out=o),
    "sum(x, keepdim=False, out)": lambda L, o: L.sum(L.tensor(X), keepdim=False, out=o),
    "sum(x, out=None)": lambda L, o: L.sum(L.tensor(X), out=None),
    "sum(x, dtype, out=None)": lambda L, o: L.sum(L.tensor(X), dtype=L.float64, out=None),
    "sum(x, out=list)": lambda L, o: L.sum(L.tensor(X), out=[1.0]),
    "sum(list, out)": lambda L, o: L.sum([1.0], out=o),
    "sum(x, None, out)": lambda L, o: L.sum(L.tensor(X), None, out=o),
    "sum(x, dim=None, out)": lambda L, o: L.sum(L.tensor(X), dim=None, out=o),
    "sum(x, (), out)": lambda L, o: L.sum(L.tensor(X), (), out=o),
    "sum(x, None, True, out)": lambda L, o: L.sum(L.tensor(X), None, True, out=o),
    "sum(x, axis=None, out)": lambda L, o: L.sum(L.tensor(X), axis=None, out=o),
    "sum(x, axis=1, out)": lambda L, o: L.sum(L.tensor(X), axis=1, out=o),
    "sum(x, 1, out=None)": lambda L, o: L.sum(L.tensor(X), 1, out=None),
    "sum(x)": lambda L, o: L.sum(L.tensor(X)),
    "prod(x, out)": lambda L, o: L.prod(L.tensor(X), out=o),
    "prod(x, dtype, out)": lambda L, o: L.prod(L.tensor(X), dtype=L.float32, out=o),
    "prod(x, keepdim, out)": lambda L, o: L.prod(L.tensor(X), keepdim=True, out=o),
    "prod(x, out=None)": lambda L, o: L.prod(L.tensor(X), out=None),
    "prod(x, None, out)": lambda L, o: L.prod(L.tensor(X), None, out=o),
    "prod(x, 1, out=None)": lambda L, o: L.prod(L.tensor(X), 1, out=None),
    "prod(x, 1, True, out)": lambda L, o: L.prod(L.tensor(X), 1, True, out=o),
    "prod(x)": lambda L, o: L.prod(L.tensor(X)),
}


@pytest.mark.parametrize("case", NO_DIM)
def test_sum_and_prod_take_out_only_beside_a_dim(case):
    expected, got = both(lambda L: (NO_DIM[case](L, L.zeros(())), None))
    assert got == expected


EXTREMA = {
    "amax": lambda L, x: L.amax(x), "amax dim": lambda L, x: L.amax(x, 1), "amin": lambda L, x: L.amin(x),
    "amin dims": lambda L, x: L.amin(x, (0, 1), keepdim=True), "x.amax()": lambda L, x: x.amax(),
    "amax out": lambda L, x: L.amax(x, 1, out=L.zeros(2, dtype=x.dtype)),
    "max": lambda L, x: L.max(x), "max dim": lambda L, x: L.max(x, 1), "x.min()": lambda L, x: x.min(),
    "min dim": lambda L, x: L.min(x, 0, keepdim=True),
}


@pytest.mark.parametrize("op", EXTREMA)
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_max_and_min_refuse_complex(op, dtype):
    expected, got = both(lambda L: EXTREMA[op](L, L.tensor(C.astype(dtype))))
    assert got == expected and expected[0] == "error"


ABS = {
    "abs": lambda L, x: L.abs(x), "x.abs()": lambda L, x: x.abs(), "abs_": lambda L, x: x.abs_(),
    "builtin abs": lambda L, x: abs(x), "absolute": lambda L, x: L.absolute(x),
    "out bool": lambda L, x: L.abs(x, out=L.zeros(3, dtype=L.bool)),
    "out float": lambda L, x: L.abs(x, out=L.zeros(3)), "out int64": lambda L, x: L.abs(x, out=L.zeros(3).long()),
}


@pytest.mark.parametrize("call", ABS)
def test_abs_of_bool(call):
    expected, got = both(lambda L: ABS[call](L, L.tensor([True, False, True])))
    assert got == expected and expected[0] == "error"


WHERE = {
    "tensors": lambda L, c, x: L.where(c, x, -x), "number other": lambda L, c, x: L.where(c, x, 0.0),
    "numbers": lambda L, c, x: L.where(c, 1.0, 0.0), "method": lambda L, c, x: x.where(c, -x),
    "out": lambda L, c, x: L.where(c, x, -x, out=L.zeros(2, 3)),
}


@pytest.mark.parametrize("call", WHERE)
@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "float32", "float64", "complex64", "bool"])
def test_where_condition_dtype(call, dtype):
    expected, got = both(lambda L: WHERE[call](L, L.tensor(X > 2).to(getattr(L, dtype)), L.tensor(X)))
    assert got == expected


def test_where_uint8_condition_warns_once_a_process():
    """uint8 is taken, with PyTorch's deprecation warning, once a process (each library run in a fresh one)."""
    script = textwrap.dedent("""
        import sys, warnings
        import numpy as np
        L = __import__(sys.argv[1])
        seen = []
        for _ in range(3):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                r = L.where(L.tensor(np.array([1, 0, 2], dtype=np.uint8)), L.ones(3), L.zeros(3))
            seen.append([(w.category.__name__, str(w.message).split(" (Triggered internally at")[0], w.filename)
                         for w in caught])
        print(repr((r.tolist(), seen)))
        """)
    outs = [subprocess.run([sys.executable, "-c", script, name], capture_output=True, text=True, timeout=300,
                           cwd=str(__import__("pathlib").Path(distnn.__file__).parents[1]))
            for name in ("torch", "distnn")]
    assert [o.returncode for o in outs] == [0, 0], [o.stderr[-2000:] for o in outs]
    expected, got = (o.stdout for o in outs)
    assert got == expected and "where received a uint8 condition tensor" in expected


SPARSE = np.array([[1.0, 0, 2], [0, 3, 0]])
DENSE = np.array([[1.0, 2], [3, 4], [5, 6]])
def _quiet_beta(run):
    """``run()`` without torch's warning that its sparse CSR support (which its sparse product uses) is in beta."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return run()


PRODUCTS = {
    "sparse.mm": lambda L, s, d: L.sparse.mm(s, d), "mm": lambda L, s, d: L.mm(s, d),
    "matmul": lambda L, s, d: L.matmul(s, d), "matmul vector": lambda L, s, d: L.matmul(s, d[:, 0]),
    "dense @ sparse": lambda L, s, d: L.mm(d.t(), s.t()), "sparse.mm dense @ sparse": lambda L, s, d: L.sparse.mm(d.t(), s.t()),
    "sparse @ sparse": lambda L, s, d: _quiet_beta(lambda: L.mm(s, d.to_sparse()).to_dense()),
    "sparse.addmm": lambda L, s, d: L.sparse.addmm(L.zeros(2, 2, dtype=s.dtype), s, d),
    "mm out": lambda L, s, d: L.mm(s, d, out=L.zeros(2, 2, dtype=s.dtype)),
}


@pytest.mark.parametrize("call", PRODUCTS)
@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32"), ("float32", "int64"),
                                    ("int64", "int32"), ("float32", "complex64"), ("float64", "float64")], ids=str)
def test_sparse_products_of_two_dtypes(call, dtypes):
    def run(L):
        s = L.tensor(SPARSE, dtype=getattr(L, dtypes[0])).to_sparse()
        return PRODUCTS[call](L, s, L.tensor(DENSE, dtype=getattr(L, dtypes[1])))

    expected, got = both(run)
    assert got == expected


VALUES = {
    "list": [1.0, 2.0, 3.0], "nested list": [[1.0, 2.0, 3.0]] * 2, "tuple": (1.0, 2.0, 3.0), "empty list": [],
    "range": range(3), "str": "a", "None": None, "list of tensors": [torch.tensor(1.0)] * 3,
    "numpy float64": np.float64(2.5),
    "numpy int64": np.int64(3), "int": 3, "float": 2.5, "bool": True, "complex 1+0j": 1 + 0j, "complex 1j": 1j,
    "numpy complex128 2+0j": np.complex128(2 + 0j),
}


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("index", ["...", "0", ":"])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool", "float16", "complex64", "uint8"])
def test_item_assignment_takes_a_tensor_or_a_number(value, index, dtype):
    def run(L):
        y = L.zeros(2, 3, dtype=getattr(L, dtype))
        y[{"...": Ellipsis, "0": 0, ":": slice(None)}[index]] = VALUES[value]
        return y

    expected, got = both(run)
    assert got == expected


def test_item_assignment_takes_numpy_arrays():
    """distnn's own extension (PyTorch refuses them): numpy's arrays and scalars are distnn's arrays, taken as
    values, cast to the tensor's dtype."""
    y = distnn.zeros(2, 3)
    y[...] = np.array([1.0, 2.0, 3.0])
    y[1] = np.float32(5)
    y[0, 0] = np.array(7.5)
    assert y.dtype == distnn.float32 and y.tolist() == [[7.5, 2.0, 3.0], [5.0, 5.0, 5.0]]
    for L in (torch, distnn):  # (a list is refused by both)
        with pytest.raises(TypeError, match="can't assign a list to a torch.FloatTensor"):
            L.zeros(3)[...] = [1.0, 2.0, 3.0]


SQRT = {
    "sqrt": lambda L, x: L.sqrt(x), "x.sqrt()": lambda L, x: x.sqrt(), "sqrt_": lambda L, x: x.clone().sqrt_(),
    "strided sqrt_": lambda L, x: x.clone().t().sqrt_(), "x ** 0.5": lambda L, x: x ** 0.5,
    "pow(x, 0.5)": lambda L, x: L.pow(x, 0.5), "pow_(0.5)": lambda L, x: x.clone().pow_(0.5),
    "sqrt out": lambda L, x: L.sqrt(x, out=L.zeros(0, dtype=x.dtype)), "0-d": lambda L, x: L.sqrt(x[0, 1]),
    "grad": lambda L, x: L.sqrt(x.clone().requires_grad_()).detach(),
    "backward": lambda L, x: (lambda t: (L.sqrt(t).sum().backward(), t.grad)[1])(x.clone().requires_grad_()),
}


@pytest.mark.parametrize("call", SQRT)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_sqrt_nan_sign(call, dtype):
    """Negative numbers, -inf, -0.0 and NaNs of both signs: bitwise as torch's."""
    values = np.array([[-1.0, -2.5, -np.inf], [-0.0, -np.nan, np.nan], [4.0, 0.0, np.inf]])
    expected, got = both(lambda L: SQRT[call](L, L.tensor(values, dtype=getattr(L, dtype))))
    assert got == expected


def test_sqrt_of_minus_one_has_its_sign_bit_clear():
    for L in (torch, distnn):
        for dtype in (L.float32, L.float64):
            assert math.copysign(1, L.sqrt(L.tensor(-1.0, dtype=dtype)).item()) == 1.0
    sqrt_int = distnn.sqrt(distnn.tensor([-1, 4]))
    assert sqrt_int.dtype == distnn.float32 and math.copysign(1, sqrt_int[0].item()) == 1.0


def test_sqrt_leaves_numpy_error_state_and_warnings_alone():
    with np.errstate(invalid="raise"):
        distnn.sqrt(distnn.tensor([-1.0, 4.0]))  # (no FloatingPointError from distnn's own state)
        with pytest.raises(FloatingPointError):
            np.sqrt(np.array([-1.0]))  # (the caller's state is still in force after)
