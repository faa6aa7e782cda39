"""PyTorch's matrix and vector products beyond matmul: outer/ger, inner, dot/vdot, mm, mv, the ``add*``
family (``beta * input + alpha * product``), tensordot, kron, cross and cdist.

All but ``cdist`` are compositions of matmul, reshapes and elementwise ops, so their gradients are those
ops'; each checks its operands' shapes first, with PyTorch's messages.
"""
from __future__ import annotations

import numbers

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.backend import get_array_module

from ._dims import wrap_dim
from .matrix_multiply import MatMul
from .select import roll
from .shape_more import as_tensor, broadcast_tensors


def _need(x, ndim, op, what):
    if x.ndim != ndim:
        raise RuntimeError(f"{op}: Expected {ndim}-D argument {what}, but got {x.ndim}-D")


def outer(input, vec2):  # noqa: A002
    """``torch.outer`` (``ger``): ``out[i, j] = input[i] * vec2[j]`` for two vectors."""
    a, b = as_tensor(input), as_tensor(vec2)
    _need(a, 1, "outer", "self")
    _need(b, 1, "outer", "vec2")
    return a.reshape(-1, 1) * b.reshape(1, -1)


ger = outer


def dot(input, other, *, out=None):  # noqa: A002
    """``torch.dot``: the inner product of two vectors of one length and dtype (0-d)."""
    if out is not None:  # (PyTorch's rules: :mod:`.matmul_out`)
        from .matmul_out import matmul_into_out

        return matmul_into_out(dot, input, other, out, name="dot")
    a, b = as_tensor(input), as_tensor(other)
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.dtype != b.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found {a.dtype} and {b.dtype}")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] to have "
                           f"the same number of elements, but got {a.shape[0]} and {b.shape[0]} elements respectively")
    return MatMul.apply(a, b)


def vdot(input, other):  # noqa: A002
    """``torch.vdot``: :func:`dot` of the conjugate of ``input`` with ``other`` (for real vectors, ``dot``)."""
    from .complex_numbers import conj

    return dot(conj(as_tensor(input)), other)


def inner(input, other):  # noqa: A002
    """``torch.inner``: sums over the last dim of both (a 0-d operand multiplies)."""
    a, b = as_tensor(input), as_tensor(other)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.shape[-1] != b.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but got shapes "
                           f"{list(a.shape)} and {list(b.shape)}")
    return tensordot(a, b, dims=([a.ndim - 1], [b.ndim - 1]))


def mm(input, mat2, *, out=None):  # noqa: A002
    """``torch.mm``: the product of two matrices (no broadcasting); a sparse COO operand as
    :func:`distnn.sparse.products.mm`'s (``sparse @ sparse`` sparse, otherwise dense)."""
    if out is not None:  # (PyTorch's rules: :mod:`.matmul_out`)
        from .matmul_out import matmul_into_out

        if _sparse_operand(input, mat2):
            from .matmul_out import sparse_mm_into_out

            return sparse_mm_into_out(mm, input, mat2, out)
        return matmul_into_out(mm, input, mat2, out, name="mm")
    if _sparse_operand(input, mat2):
        from distnn.sparse.products import mm as sparse_mm

        return sparse_mm(input, mat2)
    a, b = as_tensor(input), as_tensor(mat2)
    if a.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if b.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                           f"{b.shape[0]}x{b.shape[1]})")
    return MatMul.apply(a, b)


def _sparse_operand(*xs) -> bool:
    from distnn.autograd import tensor_operators

    return any(type(x) is tensor_operators._sparse_type for x in xs)


def mv(input, vec, *, out=None):  # noqa: A002
    """``torch.mv``: a matrix times a vector."""
    if out is not None:  # (PyTorch's rules: :mod:`.matmul_out`)
        from .matmul_out import matmul_into_out

        return matmul_into_out(mv, input, vec, out, name="mv")
    a, v = as_tensor(input), as_tensor(vec)
    if a.ndim != 2 or v.ndim != 1:
        # (PyTorch's mv is addmv into a fresh 1-D result, whose rank the refusal names first)
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {a.ndim}, {v.ndim}")
    if a.shape[1] != v.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({a.shape[0]}), mat ({a.shape[0]}x{a.shape[1]}), "
                           f"vec ({v.shape[0]})")
    return MatMul.apply(a, v)


# PyTorch's refusals of an ``input`` whose dtype is not the product's (numpy would promote)
_MIXED = {"addmm": "self and mat2 must have the same dtype, but got {x} and {p}",
          "addbmm": "self and mat2 must have the same dtype, but got {x} and {p}",
          "addmv": "addmv input tensors must have the same dtype, but got {x} and {p}",
          "baddbmm": "Input dtypes must be the same, got: input {x}, batch1 and batch2: {p}"}


def _add_scaled(input, product, beta, alpha, op):  # noqa: A002
    """``beta * input + alpha * product``; ``beta == 0`` ignores ``input`` (NaN and inf in it too), as PyTorch."""
    x = as_tensor(input)
    if x.dtype != product.dtype:
        names = {k: torch_dtype_name(v.dtype) for k, v in (("x", x), ("p", product))}
        raise RuntimeError(_MIXED[op].format(**names))
    try:
        shape = tuple(get_array_module(x.data).broadcast_shapes(x.shape, product.shape))
    except (ValueError, AttributeError):
        shape = None
    if shape != tuple(product.shape):
        raise RuntimeError(f"The size of tensor a ({list(x.shape)}) must match the size of tensor b "
                           f"({list(product.shape)}): input cannot be broadcast to the product's shape")
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:
        return scaled
    return (x if beta == 1 else x * beta) + scaled


@autocast_policy("lower")
def addmm(input, mat1, mat2, *, beta=1, alpha=1):  # noqa: A002
    """``torch.addmm``: ``beta * input + alpha * (mat1 @ mat2)``."""
    return _add_scaled(input, mm(mat1, mat2), beta, alpha, "addmm")


def addmv(input, mat, vec, *, beta=1, alpha=1):  # noqa: A002
    """``torch.addmv``: ``beta * input + alpha * (mat @ vec)``."""
    return _add_scaled(input, mv(mat, vec), beta, alpha, "addmv")


def _batches(b1, b2, op):
    b1, b2 = as_tensor(b1), as_tensor(b2)
    if b1.ndim != 3 or b2.ndim != 3:
        raise RuntimeError(f"{op}: batch1 must be a 3D tensor" if b1.ndim != 3 else f"{op}: batch2 must be a 3D tensor")
    if b1.shape[0] != b2.shape[0] or b1.shape[2] != b2.shape[1]:
        raise RuntimeError(f"{op}: batch shapes {list(b1.shape)} and {list(b2.shape)} cannot be multiplied "
                           f"(need (b, n, m) and (b, m, p))")
    return MatMul.apply(b1, b2)


@autocast_policy("lower")
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):  # noqa: A002
    """``torch.baddbmm``: ``beta * input + alpha * (batch1 @ batch2)``, matrix by matrix."""
    return _add_scaled(input, _batches(batch1, batch2, "baddbmm"), beta, alpha, "baddbmm")


@autocast_policy("lower")
def addbmm(input, batch1, batch2, *, beta=1, alpha=1):  # noqa: A002
    """``torch.addbmm``: ``beta * input + alpha * sum_b(batch1[b] @ batch2[b])``."""
    return _add_scaled(input, _batches(batch1, batch2, "addbmm").sum(0), beta, alpha, "addbmm")


def tensordot(a, b, dims=2):
    """``torch.tensordot``: contract the last ``dims`` dims of ``a`` with the first ``dims`` of ``b`` (an int),
    or the listed dims (a pair of sequences)."""
    a, b = as_tensor(a), as_tensor(b)
    if isinstance(dims, numbers.Integral):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(a.ndim, b.ndim):
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        dims_a, dims_b = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        dims_a, dims_b = ([int(d)] if isinstance(d, numbers.Integral) else [int(i) for i in d] for d in dims)
    if len(dims_a) != len(dims_b):
        raise RuntimeError("both dimension lists should have same length")
    dims_a = [wrap_dim(d, a.ndim, "tensordot") for d in dims_a]
    dims_b = [wrap_dim(d, b.ndim, "tensordot") for d in dims_b]
    for i, j in zip(dims_a, dims_b):
        if a.shape[i] != b.shape[j]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a.shape[i]} in dim {i} "
                               f"and second has size {b.shape[j]} in dim {j}")
    free_a = [d for d in range(a.ndim) if d not in dims_a]
    free_b = [d for d in range(b.ndim) if d not in dims_b]
    k = 1
    for d in dims_a:
        k *= a.shape[d]
    left = a.permute(*free_a, *dims_a).reshape(-1, k) if a.ndim else a.reshape(1, 1)
    right = b.permute(*dims_b, *free_b).reshape(k, -1) if b.ndim else b.reshape(1, 1)
    out_shape = tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b)
    return MatMul.apply(left, right).reshape(out_shape)


def kron(input, other):  # noqa: A002
    """``torch.kron``: the Kronecker product (the operands padded with leading dims to the same number)."""
    a, b = as_tensor(input), as_tensor(other)
    n = max(a.ndim, b.ndim)
    sa, sb = (1,) * (n - a.ndim) + tuple(a.shape), (1,) * (n - b.ndim) + tuple(b.shape)
    # a's dims interleaved with b's: (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...) = (a0, b0, a1, b1, ...)
    left = a.reshape([s for d in sa for s in (d, 1)])
    right = b.reshape([s for d in sb for s in (1, d)])
    return (left * right).reshape([x * y for x, y in zip(sa, sb)])


def cross(input, other, dim=None):  # noqa: A002
    """``torch.cross``: the cross product of 3-vectors along ``dim`` (broadcasting); without ``dim``, the first
    dim of size 3 (PyTorch's deprecated default)."""
    a, b = as_tensor(input), as_tensor(other)
    if a.ndim != b.ndim:
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    a, b = broadcast_tensors(a, b)
    if dim is None:
        sizes = [d for d in range(a.ndim) if a.shape[d] == 3]
        if not sizes:
            raise RuntimeError("no dimension of size 3 in input")
        d = sizes[0]
    else:
        d = wrap_dim(dim, a.ndim, "cross")
    if a.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {d} must have length 3. Got {a.shape[d]} and "
                           f"{b.shape[d]}")
    # component i is a[i+1] b[i+2] - a[i+2] b[i+1] (indices mod 3): rolled copies do all three at once
    return roll(a, -1, d) * roll(b, -2, d) - roll(a, -2, d) * roll(b, -1, d)


class CDist(Function):
    """p-norm distances between the rows of ``x1`` (..., P, M) and of ``x2`` (..., R, M). The gradient of a zero
    distance is 0 (PyTorch's choice); p = inf sends it to the coordinates that reach the maximum."""
    autocast = "float32"  # under distnn.autocast: needs float32's range

    reads = ((0, 1, OUTPUT), (0, 1, OUTPUT))

    def forward(self, x1, x2, p):
        xp = get_array_module(x1)
        diff = x1[..., :, None, :] - x2[..., None, :, :]
        a = xp.abs(diff)
        if p == 0:
            out = (a != 0).sum(-1).astype(x1.dtype)
        elif p == float("inf"):
            out = a.max(-1) if a.shape[-1] else xp.zeros(a.shape[:-1], x1.dtype)
        elif p == 1:
            out = a.sum(-1)
        elif p == 2:
            out = xp.sqrt((a * a).sum(-1))
        else:
            out = (a ** p).sum(-1) ** (1.0 / p)
        self.x1, self.x2, self.out, self.p = x1, x2, out, p
        return out

    def backward(self, g):
        xp = get_array_module(g)
        p, out = self.p, self.out[..., None]
        diff = self.x1[..., :, None, :] - self.x2[..., None, :, :]
        zero = xp.zeros((), dtype=g.dtype)
        if p == 0:
            per = xp.zeros_like(diff)
        elif p == 1:
            per = xp.sign(diff)
        elif p == float("inf"):
            per = xp.sign(diff) * (xp.abs(diff) == out)
        else:
            safe = xp.where(out == 0, 1, out)
            per = xp.where(out == 0, zero, diff * xp.abs(diff) ** (p - 2) / safe ** (p - 1)) if p != 2 else \
                xp.where(out == 0, zero, diff / safe)
        per = per * g[..., None]
        return per.sum(-2), -per.sum(-3)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """``torch.cdist``: p-norm distances between each row of ``x1`` (B, P, M) and each of ``x2`` (B, R, M),
    giving (B, P, R) (batch dims broadcast; 2-D operands too). ``compute_mode`` is accepted and ignored: the
    distances are always computed directly (PyTorch's matrix-product route for p = 2 is a speed trade that
    loses precision)."""
    a, b = as_tensor(x1), as_tensor(x2)
    if a.ndim < 2 or b.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {a.ndim}D" if a.ndim < 2 else
                           f"cdist only supports at least 2D tensors, X2 got: {b.ndim}D")
    if a.shape[-1] != b.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {a.shape[-1]} X2: {b.shape[-1]}")
    if a.dtype.kind != "f" or b.dtype.kind != "f":
        raise RuntimeError(f"cdist only supports floating-point dtypes, X1 got: {a.dtype}")
    if not p >= 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    return CDist.apply(a, b, p=float(p))
