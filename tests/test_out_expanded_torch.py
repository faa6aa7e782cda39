"""An expanded tensor (elements sharing memory) as ``out=``, against PyTorch 2.13, op by op: of the result's shape,
the reductions write it (``sum``/``prod``/``amax``/``amin`` reduce over the dims it repeats too), ``mv``/``bmm``
and matmul's cases run by them write it (the last value written to a location stays), and the rest refuse it
(pointwise ops, ``mean``, ``mm`` and matmul's cases run by it, ``cat``/``stack``, the ``*_copy`` functions, the
FFTs, ``fftfreq``); of another shape, every op that resizes ``out`` resizes it (contiguous after: its base's
memory gets the first elements, as PyTorch's grows the storage under it), with PyTorch's warning. Each case runs
the same code in torch and in distnn and compares the outcome (:mod:`torch_outcome`)."""
import numpy as np
import pytest
from torch_outcome import both

# (values whose sums, products and maxima are exact: comparable bitwise in any order)
VALUES = np.array([[1.5, 2.5, 3.5], [4.0, 0.25, 6.25]], dtype=np.float32)


def _x(L):
    return L.tensor(VALUES)


OPS = {
    "sum": (lambda L, o: L.sum(_x(L), 1, out=o), (2,)),
    "sum keepdim": (lambda L, o: L.sum(_x(L), 0, keepdim=True, out=o), (1, 3)),
    "sum into int64": (lambda L, o: L.sum(_x(L), 1, out=o), (2,)),
    "prod": (lambda L, o: L.prod(_x(L), 1, out=o), (2,)),
    "mean": (lambda L, o: L.mean(_x(L), 1, out=o), (2,)),
    "amax": (lambda L, o: L.amax(_x(L), 1, out=o), (2,)),
    "amin dims": (lambda L, o: L.amin(_x(L), (0,), keepdim=True, out=o), (1, 3)),
    "abs": (lambda L, o: L.abs(_x(L), out=o), (2, 3)),
    "sqrt": (lambda L, o: L.sqrt(_x(L), out=o), (2, 3)),
    "add": (lambda L, o: L.add(_x(L), 1.0, out=o), (2, 3)),
    "where": (lambda L, o: L.where(_x(L) > 2, _x(L), _x(L), out=o), (2, 3)),
    "clamp": (lambda L, o: L.clamp(_x(L), 0, 2, out=o), (2, 3)),
    "matmul mm": (lambda L, o: L.matmul(_x(L), _x(L).t(), out=o), (2, 2)),
    "matmul mv": (lambda L, o: L.matmul(_x(L), _x(L)[0], out=o), (2,)),
    "matmul vm": (lambda L, o: L.matmul(_x(L)[0], _x(L).t(), out=o), (2,)),
    "matmul bmm": (lambda L, o: L.matmul(_x(L)[None], _x(L).t()[None], out=o), (1, 2, 2)),
    "matmul batch mm": (lambda L, o: L.matmul(_x(L)[None], _x(L).t(), out=o), (1, 2, 2)),
    "matmul vector batch": (lambda L, o: L.matmul(_x(L)[0], _x(L).t()[None], out=o), (1, 2)),
    "mm": (lambda L, o: L.mm(_x(L), _x(L).t(), out=o), (2, 2)),
    "mv": (lambda L, o: L.mv(_x(L), _x(L)[0], out=o), (2,)),
    "bmm": (lambda L, o: L.bmm(_x(L)[None], _x(L).t()[None], out=o), (1, 2, 2)),
    "dot": (lambda L, o: L.dot(_x(L)[0], _x(L)[1], out=o), ()),
    "linalg.matmul": (lambda L, o: L.linalg.matmul(_x(L), _x(L).t(), out=o), (2, 2)),
    "cat": (lambda L, o: L.cat([_x(L), _x(L)], out=o), (4, 3)),
    "stack": (lambda L, o: L.stack([_x(L), _x(L)], out=o), (2, 2, 3)),
    "t_copy": (lambda L, o: L.t_copy(_x(L), out=o), (3, 2)),
    "alias_copy": (lambda L, o: L.alias_copy(_x(L), out=o), (2, 3)),
    "as_strided_copy": (lambda L, o: L.as_strided_copy(_x(L), (2, 3), (3, 1), out=o), (2, 3)),
    "fft": (lambda L, o: L.fft.fft(_x(L).to(L.complex64), out=o), (2, 3)),
    "fftfreq": (lambda L, o: L.fft.fftfreq(6, out=o), (6,)),
}
KINDS = {  # (out expanded from a base: every dim from one element, the last dim's row repeated, or another shape)
    "one element": lambda L, shape, dtype: L.zeros(1, dtype=dtype),
    "row": lambda L, shape, dtype: L.zeros(shape[-1], dtype=dtype),
    "other shape": lambda L, shape, dtype: L.zeros(1, dtype=dtype),
    "other shape, a view": lambda L, shape, dtype: L.zeros(8, dtype=dtype),
}
EXPANDED = {
    "one element": lambda base, shape: base.expand(shape),
    "row": lambda base, shape: base.expand(shape),
    "other shape": lambda base, shape: base.expand(5),
    "other shape, a view": lambda base, shape: base[2:3].expand(4),
}


def _cases():
    for op, (_, shape) in OPS.items():
        for kind in KINDS:
            if kind == "row" and len(shape) < 2 or kind == "one element" and not shape:
                continue
            yield op, kind


@pytest.mark.parametrize("op,kind", list(_cases()))
def test_expanded_out(op, kind):
    call, shape = OPS[op]

    def run(L):
        dtype = L.complex64 if op == "fft" else L.int64 if op == "sum into int64" else L.float32
        base = KINDS[kind](L, shape, dtype)
        result = call(L, EXPANDED[kind](base, shape))
        return result, base  # (the result, and its base's memory after the call)

    expected, got = both(run)
    assert got == expected


@pytest.mark.parametrize("op", ["sum", "prod", "amax", "amin"])
def test_a_reduction_reduces_the_locations_it_repeats(op):
    """Over the dims an expanded ``out`` repeats one location along, the reduction continues: ``out``'s old
    values are not part of it."""
    def run(L):
        base = L.full((3,), 7.0)
        out = base.expand(2, 3)  # (2, 3): each column one location
        x = L.tensor(np.arange(1.0, 13.0).reshape(2, 2, 3) / 4, dtype=L.float32)  # (quarters: exact results)
        return getattr(L, op)(x, 1, out=out), base

    expected, got = both(run)
    assert got == expected and expected[0] == "ok"


def test_writes_land_in_the_base():
    """The resized ``out`` views its base's memory, as PyTorch's: the base sees the first element."""
    def run(L):
        base = L.zeros(1)
        out = base.expand(5)
        L.sum(L.tensor(VALUES), 1, out=out)
        return out, base

    expected, got = both(run)
    assert got == expected and got[1][2] != np.zeros(1, np.float32).tobytes()
