"""PyTorch's top-level functions that are a Tensor method with the tensor first (``torch.gather(x, 0, i)`` is
``x.gather(0, i)``), and the utilities ``is_tensor``, ``numel``, ``is_nonzero``, ``is_same_size``,
``is_signed``, ``absolute``, ``fix`` and ``msort``."""
from __future__ import annotations

from distnn.autograd.tensor import Tensor

from .shape_more import as_tensor


def _tensor(x, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(x).__name__}")
    return x


def is_tensor(obj) -> bool:
    """Whether ``obj`` is a distnn Tensor."""
    return isinstance(obj, Tensor)


def numel(input) -> int:  # noqa: A002
    return _tensor(input, "numel").numel()


def is_nonzero(input) -> bool:  # noqa: A002
    return _tensor(input, "is_nonzero").is_nonzero()


def is_same_size(input, other) -> bool:  # noqa: A002
    return _tensor(input, "is_same_size").is_same_size(other)


def is_signed(input) -> bool:  # noqa: A002
    return _tensor(input, "is_signed").is_signed()


def gather(input, dim, index):  # noqa: A002
    return as_tensor(input).gather(dim, index)


def chunk(input, chunks, dim=0):  # noqa: A002
    from .split_args import chunk_count

    return as_tensor(input).chunk(chunk_count(chunks, "chunk", 2), dim)  # (PyTorch's message: argument 2)


def masked_fill(input, mask, value):  # noqa: A002
    return as_tensor(input).masked_fill(mask, value)


def permute(input, dims):  # noqa: A002
    return as_tensor(input).permute(*dims)


def clone(input):  # noqa: A002
    return as_tensor(input).clone()


def detach(input):  # noqa: A002
    return as_tensor(input).detach()


def broadcast_to(input, size):  # noqa: A002
    return as_tensor(input).broadcast_to(size)


def add(input, other, *, alpha=1, out=None):  # noqa: A002
    """``input + alpha * other`` (``alpha`` checked against the result's dtype as PyTorch's: see
    :func:`~distnn.autograd.tensor_inplace_methods.alpha_scaled`). ``out``: the result written into that tensor,
    PyTorch's rules (:mod:`.out_common`)."""
    from distnn.autograd.tensor_inplace_methods import _add

    if out is not None:
        return _into_out("add", lambda a, b: add(a, b, alpha=alpha), out, input, other)
    if getattr(input, "is_sparse", False):  # (sparse + sparse: distnn.sparse's, PyTorch's entry order)
        return input.add(other, alpha=alpha)
    return _add(as_tensor(input), other, alpha=alpha)


def sub(input, other, *, alpha=1, out=None):  # noqa: A002
    """``input - alpha * other`` (a bool operand refused, as PyTorch's). ``out``: as :func:`add`'s."""
    from distnn.autograd.tensor_inplace_methods import _sub

    if out is not None:
        return _into_out("sub", lambda a, b: sub(a, b, alpha=alpha), out, input, other)
    if getattr(input, "is_sparse", False):
        return input.sub(other, alpha=alpha)
    return _sub(as_tensor(input), other, alpha=alpha)


def rsub(input, other, *, alpha=1):  # noqa: A002
    """``torch.rsub``: ``other - alpha * input`` (``other`` a tensor or a number; bools refused, and a float
    ``alpha`` with integer operands, as PyTorch's)."""
    from distnn.autograd.dtype_rules import refuse_bool_subtraction
    from distnn.autograd.tensor_inplace_methods import alpha_scaled

    x = as_tensor(input)
    refuse_bool_subtraction(other, x, arrays=True)
    return other - alpha_scaled(other, x, alpha)


def mul(input, other, *, out=None):  # noqa: A002
    """``input * other``. ``out``: as :func:`add`'s."""
    if out is not None:
        return _into_out("mul", mul, out, input, other)
    if _is_sparse(input):  # sparse * (number, dense, sparse): sparse (distnn.sparse)
        return input * other
    return as_tensor(input) * other


def _into_out(name, op, out, *inputs):
    from .out_common import pointwise_into_out

    return pointwise_into_out(name, op, out, *inputs)


def _is_sparse(x) -> bool:
    from distnn.autograd import tensor_operators

    return type(x) is tensor_operators._sparse_type


def div(input, other, *, rounding_mode=None, out=None):  # noqa: A002
    """``input / other`` (``rounding_mode`` None, "trunc" or "floor"). ``out``: as :func:`add`'s."""
    from .pointwise_division import divide

    if out is not None:
        return _into_out("div", lambda a, b: div(a, b, rounding_mode=rounding_mode), out, input, other)
    return divide(input, other, rounding_mode=rounding_mode)


def pow(input, exponent, *, out=None):  # noqa: A001,A002
    """``input ** exponent`` (either may be a number). ``out``: as :func:`add`'s."""
    if out is not None:
        return _into_out("pow", pow, out, input, exponent)
    return input ** exponent if isinstance(input, Tensor) else input ** as_tensor(exponent)


def all(input, dim=None, keepdim=False, *, out=None):  # noqa: A001,A002
    """``torch.all``: whether every element (over ``dim``) is non-zero. ``out``: bool or uint8, PyTorch's rules
    (:mod:`.reduce_out_more`)."""
    if out is not None:
        from .reduce_out_more import logical_into_out

        return logical_into_out("all", lambda x: as_tensor(x).all(dim, keepdim), input, out, dim)
    return as_tensor(input).all(dim, keepdim)


def any(input, dim=None, keepdim=False, *, out=None):  # noqa: A001,A002
    """``torch.any``: whether any element (over ``dim``) is non-zero. ``out``: as :func:`all`'s."""
    if out is not None:
        from .reduce_out_more import logical_into_out

        return logical_into_out("any", lambda x: as_tensor(x).any(dim, keepdim), input, out, dim)
    return as_tensor(input).any(dim, keepdim)


def adjoint(input):  # noqa: A002
    """``torch.adjoint``: the (conjugate) transpose of the last two dims."""
    return input.adjoint() if getattr(input, "is_sparse", False) is True else as_tensor(input).adjoint()


def absolute(input):  # noqa: A002
    """``torch.absolute``: ``abs``."""
    return as_tensor(input).abs()


def fix(input):  # noqa: A002
    """``torch.fix``: ``trunc`` (rounding towards zero)."""
    from .rounding import trunc

    return trunc(input)


def msort(input):  # noqa: A002
    """``torch.msort``: sorted along dim 0 (the values of ``sort(input, dim=0)``)."""
    from .sort import sort

    return sort(input, dim=0)[0]


__all__ = ["is_tensor", "numel", "is_nonzero", "is_same_size", "is_signed", "gather", "chunk", "masked_fill",
           "permute", "clone", "detach", "broadcast_to", "add", "sub", "rsub", "mul", "div", "pow", "all", "any",
           "adjoint", "absolute", "fix", "msort"]
