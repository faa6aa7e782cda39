"""What every ``distnn.linalg`` op shares: PyTorch's input checks and messages, ``LinAlgError`` (naming the batch
element that failed, as PyTorch's), a matrix transpose on raw arrays, and the packing that lets one Function give
several differentiable outputs (``eigh``'s values and vectors, ``svd``'s U, S, Vh).

numpy's ``np.linalg`` works on stacks of matrices on the CPU, cupy's ``cupy.linalg`` on the GPU. LAPACK (numpy)
raises on a singular or indefinite matrix; cuSOLVER (cupy, by default) fills the output with NaN or inf
instead, so on a GPU a non-finite result is checked and the failing element is then found on the host.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.complex_grad import conj
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.backend import to_numpy, unwrap

class LinAlgError(RuntimeError):
    """A matrix the factorization or inversion cannot handle (singular, not positive-definite), as
    ``torch.linalg.LinAlgError`` (a ``RuntimeError``): the message names the batch element that failed."""


dtype_name = torch_dtype_name  # PyTorch's name of a dtype, for the messages ("Got Long")


def check_float(a, op: str, what: str = "input", complex_ok: bool = False, half_ok: bool = False):
    """Refuse a non-floating input as PyTorch does (``Expected a floating point or complex tensor as input``);
    float16 is refused too (LAPACK and cuSOLVER have no half precision; PyTorch's CPU kernels neither) unless
    ``half_ok`` (a reduction, as vector_norm, that PyTorch computes in float32). A complex input passes only where
    the op handles one (``complex_ok``): the others say so by name."""
    kind = a.dtype.kind
    if kind == "c" and not complex_ok:
        raise RuntimeError(f"{op}: complex inputs are not supported by distnn yet (got {dtype_name(a.dtype)})")
    if kind not in "fc":
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as {what}. Got {dtype_name(a.dtype)}")
    if a.dtype == np.float16 and not half_ok:
        raise RuntimeError(f"{op}: float16 is not supported (float32 or float64)")


def check_matrix(a, op: str, name: str = "A"):
    if a.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor {name} must have at least 2 dimensions.")


def check_square(a, op: str, name: str = "A"):
    check_matrix(a, op, name)
    if a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"{op}: {name} must be batches of square matrices, but they are "
                           f"{a.shape[-2]} by {a.shape[-1]} matrices")


def square_float(x, op: str, complex_ok: bool = False):
    """``x``'s array, checked as a float (batch of) square matrix (or a complex one, ``complex_ok``); the
    common entry check."""
    a = unwrap(x)
    if not hasattr(a, "ndim"):
        a = np.asarray(a)
    check_square(a, op)
    check_float(a, op, complex_ok=complex_ok)
    return a


def as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def mT(a):  # noqa: N802 - PyTorch's name
    """The last two dims of raw array ``a`` swapped."""
    return a.swapaxes(-1, -2)


def mH(a):  # noqa: N802 - PyTorch's name
    """The conjugate transpose of raw array ``a`` (the plain transpose, no copy, for a real one): the
    backward formulas below are written with it, so one formula serves real and complex matrices."""
    return conj(a.swapaxes(-1, -2))


def eye_like(xp, a):
    return xp.broadcast_to(xp.eye(a.shape[-1], dtype=a.dtype), a.shape)


def batch_prefix(shape, index) -> str:
    """``"(Batch element k): "`` for a batch (``shape`` has more than two dims), as PyTorch's messages."""
    return f"(Batch element {index}): " if len(shape) > 2 else ""


def finite_or_check(xp, out, a, on_host):
    """On a GPU (cupy fills a failed factorization with NaN/inf instead of raising), run ``on_host`` on the
    host copy of ``a`` when ``out`` is not all finite: it raises the error the CPU would."""
    if xp is not np and not bool(xp.isfinite(out).all()):
        on_host(to_numpy(a))
    return out


def first_zero_pivot(a) -> int:
    """The 1-based index of the first exactly-zero pivot of ``a``'s LU factorization with partial pivoting
    (LAPACK getrf's ``info``), 0 if none. Only on the error path: a loop over the columns."""
    u = np.array(a, dtype=np.float64)
    n = u.shape[0]
    for k in range(n):
        p = k + int(np.argmax(np.abs(u[k:, k])))
        if u[p, k] == 0:
            return k + 1
        u[[k, p]] = u[[p, k]]
        u[k + 1:, k:] -= np.outer(u[k + 1:, k] / u[k, k], u[k, k:])
    return 0


def singular_element(a_host):
    """(flat batch index, 1-based zero pivot) of the first singular matrix of the stack ``a_host``, or None."""
    stack = np.asarray(a_host).reshape((-1,) + a_host.shape[-2:])
    for b, m in enumerate(stack):
        pivot = first_zero_pivot(m)
        if pivot:
            return b, pivot
    return None


def pack(xp, *arrays, batch):
    """The arrays flattened past the batch dims ``batch`` and joined along one last dim (one Function output)."""
    nb = len(batch)  # (sizes spelled out: -1 is ambiguous for an empty batch)
    return xp.concatenate([xp.reshape(a, batch + (int(np.prod(a.shape[nb:])),)) for a in arrays], axis=-1)


def unpack_grad(xp, g, shapes):
    """Split the gradient of a packed output back into arrays of ``shapes`` (each with the batch dims)."""
    out, start, nb = [], 0, g.ndim - 1
    for shape in shapes:
        size = int(np.prod(shape[nb:]))
        out.append(xp.reshape(g[..., start:start + size], shape))
        start += size
    return out


def unpack(t: Tensor, shapes):
    """The differentiable pieces of a packed Function output ``t``, reshaped to ``shapes``."""
    pieces, start = [], 0
    nb = t.ndim - 1
    for shape in shapes:
        size = int(np.prod(shape[nb:]))
        pieces.append(t[..., start:start + size].reshape(tuple(shape)))
        start += size
    return pieces
