"""``einsum`` and ``bmm``, as PyTorch's.

einsum's forward is ``xp.einsum``; the gradient of operand ``i`` is again an einsum: of the output's
gradient and the other operands, into operand ``i``'s subscripts. Letters that appear only in operand
``i`` (summed there alone) are broadcast back; a letter repeated in one operand (``'ii->i'``, a
diagonal) gets the gradient on that diagonal only. Explicit (``'ij,jk->ik'``) and implicit
(``'ij,jk'``) forms, and ``...`` for leading or broadcast dims, are supported.
"""
from __future__ import annotations

import string

from distnn.autograd.dtype_rules import torch_operands
from distnn.autograd.function import Function
from distnn.backend import get_array_module, unwrap

from .matrix_multiply import Bmm
from .shape_checks import ShapeError


def parse_equation(equation: str, shapes) -> tuple:
    """(operand subscripts, output subscripts), one letter per dim: the ellipsis and the implicit output
    resolved as numpy and PyTorch resolve them."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string, got {type(equation).__name__}")
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: equation {equation!r} has {len(terms)} operand(s), got {len(shapes)} tensor(s)")
    for t in terms + [rhs]:
        if any(c not in string.ascii_letters for c in t.replace("...", "")) or t.count("...") > 1:
            raise ValueError(f"einsum: invalid subscripts {t!r} in {equation!r} (letters a-z, A-Z, at most one ...)")
    ellipsis = []
    for t, shape in zip(terms, shapes):
        letters = len(t.replace("...", ""))
        n = len(shape) - letters if "..." in t else 0
        if n < 0 or ("..." not in t and letters != len(shape)):
            raise ValueError(f"einsum: subscripts {t!r} do not match operand of shape {tuple(shape)} "
                             f"({len(shape)} dims)")
        ellipsis.append(n)
    wide = max(ellipsis, default=0)
    free = [c for c in string.ascii_letters if c not in eq][:wide]
    if len(free) < wide:
        raise ValueError(f"einsum: too many dims under '...' in {equation!r}")
    terms = [t.replace("...", "".join(free[wide - n:])) for t, n in zip(terms, ellipsis)]
    if arrow:  # (broadcast dims the output leaves out are summed, as in PyTorch)
        rhs = rhs.replace("...", "".join(free))
    else:  # implicit: the broadcast dims, then the letters used once, in alphabetical order
        counts = {}
        for t in terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        rhs = "".join(free) + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in free))
    used = set("".join(terms))
    if len(set(rhs)) != len(rhs) or not set(rhs) <= used:
        raise ValueError(f"einsum: output subscripts {rhs!r} of {equation!r} must be distinct letters of the inputs")
    return terms, rhs


class _Einsum(Function):
    """An einsum of a fixed number of operands (see :func:`_einsum_class`)."""

    def forward(self, *arrays, terms, rhs):
        xp = get_array_module(*arrays)
        self.terms, self.rhs, self.shapes = terms, rhs, [a.shape for a in arrays]
        needs = self.needs_input_grad
        for j, a in enumerate(arrays):  # (kept as attributes: see Function's docstring)
            if any(needs[i] for i in range(len(arrays)) if i != j):
                setattr(self, f"a{j}", a)
        return _contract(xp, terms, rhs, arrays)

    def backward(self, g):
        xp = get_array_module(g)
        n = len(self.terms)
        return tuple(self._grad(xp, g, i) if self.needs_input_grad[i] else None for i in range(n))

    def _grad(self, xp, g, i):
        term, shape = self.terms[i], self.shapes[i]
        unique = "".join(dict.fromkeys(term))  # (its letters, each once, in order)
        size = {c: shape[term.index(c)] for c in unique}
        others = [j for j in range(len(self.terms)) if j != i]
        reachable = set(self.rhs).union(*(self.terms[j] for j in others))
        target = "".join(c for c in unique if c in reachable)
        G = _contract(xp, [self.rhs] + [self.terms[j] for j in others], target,
                      [g] + [getattr(self, f"a{j}") for j in others])
        sizes = dict(zip(target, G.shape))
        if len(target) < len(unique):  # letters summed in this operand alone: their gradient is the same along them
            G = G.reshape([sizes.get(c, 1) for c in unique])
            G = xp.broadcast_to(G, [sizes.get(c, size[c]) for c in unique])
        broadcast = tuple(k for k, c in enumerate(unique) if size[c] == 1 and G.shape[k] != 1)
        if broadcast:  # a dim of size 1 the other operands broadcast: summed back
            G = G.sum(axis=broadcast, keepdims=True)
        if len(unique) == len(term):
            return G if unique == term else xp.transpose(G, [unique.index(c) for c in term])
        out = xp.zeros(shape, dtype=G.dtype)  # a repeated letter: the gradient lies on its diagonal
        index = tuple(xp.arange(size[c]).reshape([-1 if u == c else 1 for u in unique]) for c in term)
        out[index] = G
        return out


def _contract(xp, terms, rhs, arrays):
    spec = ",".join(terms) + "->" + rhs
    if len(arrays) > 2:
        return xp.einsum(spec, *arrays, optimize=True)
    return xp.einsum(spec, *arrays)


_CLASSES: dict = {}


def _einsum_class(n: int):
    """The einsum Function of ``n`` operands: each operand's gradient reads the others (``reads``)."""
    cls = _CLASSES.get(n)
    if cls is None:
        reads = tuple(tuple(j for j in range(n) if j != i) for i in range(n))
        cls = _CLASSES[n] = type(f"Einsum{n}", (_Einsum,), {"reads": reads, "__module__": __name__})
    return cls


def einsum(equation, *operands):
    """``torch.einsum``: sum of products over the letters of ``equation`` (``'bij,bjk->bik'``; operands also as
    one list). Operands of different dtypes are cast as PyTorch's other n-ary ops cast them."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: no operands")
    operands = torch_operands(*operands)
    terms, rhs = parse_equation(equation, [unwrap(o).shape for o in operands])
    for c in set("".join(terms)):
        sizes = {unwrap(o).shape[t.index(c)] for o, t in zip(operands, terms) if c in t}
        if len(sizes - {1}) > 1:
            raise ValueError(f"einsum: subscript {c!r} of {equation!r} has sizes {sorted(sizes)} in different "
                             "operands (they must be equal, or 1 to broadcast)")
    for o, t in zip(operands, terms):
        shape = unwrap(o).shape
        for c in set(t):
            if len({shape[k] for k, x in enumerate(t) if x == c}) > 1:
                raise ValueError(f"einsum: subscript {c!r} repeats in {t!r} over dims of different sizes {shape}")
    return _einsum_class(len(operands)).apply(*operands, terms=terms, rhs=rhs)


def bmm(input, mat2, *, out=None):  # noqa: A002
    """``torch.bmm``: batched matrix product of (b, n, m) and (b, m, p) tensors, no broadcasting; ``out``:
    PyTorch's rules (:mod:`.matmul_out`)."""
    if out is not None:
        from .matmul_out import matmul_into_out

        return matmul_into_out(bmm, input, mat2, out, name="bmm")
    a, b = unwrap(input), unwrap(mat2)
    for name, operand in (("batch1", a), ("batch2", b)):  # (PyTorch's refusals: a ShapeError is a ValueError too)
        if operand.ndim != 3:
            raise ShapeError(f"{name} must be a 3D tensor")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ShapeError(f"Expected size for first two dimensions of batch2 tensor to be: [{a.shape[0]}, "
                         f"{a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    return Bmm.apply(input, mat2)
