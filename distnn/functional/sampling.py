"""PyTorch's sampling functions ``normal``, ``poisson`` and ``binomial``.

They draw from ``generator`` (a ``numpy.random.Generator``) or distnn's default generator
(:func:`distnn.random.default_generator`), as :mod:`.creation`'s random functions do: the same seed gives
the same numbers, never PyTorch's. Through the default generator they follow the trainer's per-sample
streams (``random.use_generator``), so a draw in a training forward pass is the same on any number of ranks.
Draws are made on the host and put on the input's device.

Gradients are PyTorch's: ``normal`` and ``poisson`` outputs are in the graph with zero gradients for their
parameters (PyTorch does not reparameterize them); ``binomial``'s backward is not implemented, as PyTorch's.
"""
from __future__ import annotations

import numpy as np

from distnn import random
from distnn.autograd.function import Function
from distnn.autograd.grad_mode import is_grad_enabled
from distnn.autograd.mutation_guard import will_write
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.backend import default_dtype, get_array_module
from distnn.default_device import place

from ._elementwise_common import torch_broadcast_error
from .parser_refusal import invalid_combination, parser_type_name

__all__ = ["normal", "poisson", "binomial"]


def _gen(generator):
    return generator if generator is not None else random.default_generator()


class RandomSample(Function):
    """A draw whose parameters (inputs) get zero gradients, as PyTorch's NormalBackward/PoissonBackward."""
    saves_tensors = False

    def forward(self, *arrays, sample):
        self.shapes = [getattr(a, "shape", None) for a in arrays]
        return sample

    def backward(self, grad):
        xp = get_array_module(grad)
        return tuple(xp.zeros(s, dtype=grad.dtype) if needs else None
                     for s, needs in zip(self.shapes, self.needs_input_grad))


def _float_tensor(x, op_kernel):
    if x.dtype.kind != "f":
        raise NotImplementedError(f'"{op_kernel}" not implemented for \'{torch_dtype_name(x.dtype)}\'')
    return x


_NORMAL_SIGNATURES = (
    "(Tensor mean, Tensor std, *, torch.Generator generator = None, Tensor out = None)",
    "(Tensor mean, float std = 1, *, torch.Generator generator = None, Tensor out = None)",
    "(float mean, Tensor std, *, torch.Generator generator = None, Tensor out = None)",
    "(float mean, float std, tuple of ints size, *, torch.Generator generator = None, Tensor out = None, "
    "torch.dtype dtype = None, torch.layout layout = None, torch.device device = None, bool pin_memory = False, "
    "bool requires_grad = False)")


def _normal_refused(*given) -> TypeError:
    """PyTorch's refusal of two numbers without a size of ints, listing what was given by position (distnn's
    signature cannot tell ``size=`` from a third positional argument)."""
    return invalid_combination("normal", [parser_type_name(g) for g in given], _NORMAL_SIGNATURES)


def normal(mean, std=1.0, size=None, *, generator=None, out=None, dtype=None, requires_grad=False):
    """``torch.normal``, every overload: ``normal(mean: Tensor, std: Tensor)`` (broadcast),
    ``normal(mean: Tensor, std: float = 1.0)``, ``normal(mean: float, std: Tensor)`` (the tensor's shape and
    dtype), and ``normal(mean: float, std: float, size, dtype=None)`` (the default dtype). A negative
    ``std`` is refused (RuntimeError), as PyTorch's. The draw has the mean's dtype where the mean is a tensor (a
    std tensor of any real dtype is cast to it), else the std's; an integer one is refused (NotImplementedError).
    ``out``: the draw in ``out``'s dtype, of the shape PyTorch's overload gives it (:func:`_normal_into`)."""
    mean_t, std_t = isinstance(mean, Tensor), isinstance(std, Tensor)
    if not mean_t and not std_t:
        if size is None:
            raise _normal_refused(mean, std)
        if float(std) < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {float(std):g}")
        if not isinstance(size, (tuple, list)):
            raise _normal_refused(mean, std, size)
        shape = tuple(int(s) for s in size)
        if out is not None:  # (out resized to size silently, as PyTorch's resize_)
            return _normal_into(out, shape, lambda: _numbers_draw(generator, mean, std, shape, out.dtype), (),
                                warn=False)
        dtype = np.dtype(dtype or default_dtype())
        draws = _numbers_draw(generator, mean, std, shape, dtype)
        return place(Tensor(draws.astype(dtype), requires_grad=requires_grad))
    if size is not None:
        raise TypeError("normal() takes a size only with a float mean and a float std")
    if std_t and std.dtype.kind == "c":
        raise RuntimeError("normal expects standard deviation to be non-complex")
    # The draw takes the mean's dtype where the mean is a tensor (a std of any real dtype is cast to it), else the
    # std's, as PyTorch's; that dtype must be a float one (or complex, for a mean: PyTorch's too). With out=, out's
    # dtype must (_normal_into)
    ref = mean if mean_t else std
    if out is None and ref.dtype.kind != "c":
        _float_tensor(ref, "normal_kernel_cpu")
    if std_t and std.numel() and bool((std.data < 0).any()):
        raise RuntimeError("normal expects all elements of std >= 0.0")
    if not std_t and float(std) < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {float(std):g}")
    xp = get_array_module(ref.data)
    m = mean.data if mean_t else float(mean)
    s = std.data if std_t else float(std)
    try:
        shape = np.broadcast_shapes(np.shape(m), np.shape(s))
    except ValueError:
        raise torch_broadcast_error(np.shape(m), np.shape(s)) from None
    if out is not None:
        if mean_t and not std_t:  # (PyTorch draws into out's own shape, mean broadcast over it)
            error = torch_broadcast_error(mean.shape, out.shape)
            if error is not None:
                raise error
            shape = np.broadcast_shapes(mean.shape, tuple(out.shape))
        if mean_t and mean.dtype.kind == "c" and out.dtype.kind != "c":  # (its add_ of the complex mean)
            raise RuntimeError(f"result type {torch_dtype_name(mean.dtype)} can't be cast to the desired output "
                               f"type {torch_dtype_name(out.dtype)}")
        return _normal_into(out, shape, lambda: m + s * xp.asarray(_standard(generator, shape, out.dtype)),
                            (mean, std))
    out_dtype = ref.dtype
    if out_dtype.kind == "c" and is_grad_enabled() and any(getattr(t, "requires_grad", False) for t in (mean, std)):
        raise RuntimeError("normal does not support automatic differentiation for outputs with complex dtype.")
    z = xp.asarray(_standard(generator, shape, out_dtype))
    sample = (m + s * z).astype(out_dtype)
    return RandomSample.apply(mean, std, sample=sample)


def _standard(generator, shape, dtype):
    """Standard normal draws of ``shape``; for a complex ``dtype`` PyTorch's: the real and imaginary parts each of
    variance 1/2 (its ``normal_`` of a complex tensor fills the real view with ``std / sqrt(2)``), drawn
    interleaved, as that view lies in memory."""
    if np.dtype(dtype).kind != "c":
        return _gen(generator).standard_normal(shape)
    pairs = _gen(generator).standard_normal(tuple(shape) + (2,)) * np.sqrt(0.5)
    return pairs[..., 0] + 1j * pairs[..., 1]


def _numbers_draw(generator, mean, std, shape, dtype):
    """``normal(mean, std, size)``'s draws (two numbers) for a result of ``dtype``: a complex one has ``mean`` on
    both parts (PyTorch's ``normal_(mean, std)`` of its real view)."""
    if np.dtype(dtype).kind != "c":
        return _gen(generator).normal(float(mean), float(std), shape)
    return complex(float(mean), float(mean)) + float(std) * _standard(generator, shape, dtype)


def _normal_into(out, shape, draw, inputs, warn=True):
    """``draw()`` (an array of ``shape``) written into ``out`` in its dtype, as PyTorch's ``normal`` with ``out``:
    a non-float ``out`` refused as its kernel refuses it; ``out`` of another shape resized to ``shape`` (with
    PyTorch's deprecation warning where ``warn`` and it had elements); then its memory-overlap refusals of an
    ``out`` that partly overlaps a Tensor mean or std, or whose elements share memory (its kernel fills ``out``
    before it reads them)."""
    from .out_overlap import check_out_overlap
    from .out_write import resize_out, write_resized

    if out.dtype.kind not in "fc":
        raise NotImplementedError(f'"normal_kernel_cpu" not implemented for \'{torch_dtype_name(out.dtype)}\'')
    moved_from = resize_out(out, tuple(shape), warn=warn)
    check_out_overlap(out, *[t for t in inputs if isinstance(t, Tensor)])
    will_write(out)
    write_resized(out, get_array_module(out.data).asarray(draw()).astype(out.dtype, copy=False), moved_from)
    return out


def poisson(input, generator=None):  # noqa: A002
    """``torch.poisson``: a Poisson count per element of the (float) rates, in the rates' dtype. A negative
    rate is refused (RuntimeError); the rates get zero gradients, as PyTorch's."""
    _float_tensor(input, "poisson_cpu")
    if input.numel() and bool((input.data < 0).any()):
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    xp = get_array_module(input.data)
    rates = np.asarray(input.data.get() if hasattr(input.data, "get") else input.data, dtype=np.float64)
    sample = xp.asarray(_gen(generator).poisson(rates)).astype(input.dtype)
    return RandomSample.apply(input, sample=sample)


class _Binomial(Function):
    saves_tensors = False

    def forward(self, count, prob, sample):
        return sample

    def backward(self, grad):
        raise NotImplementedError("the derivative for 'binomial' is not implemented.")


def binomial(count, prob, generator=None):
    """``torch.binomial``: the number of successes in ``count`` trials of probability ``prob`` (both float
    tensors, broadcast), in ``count``'s dtype. Its backward is not implemented, as PyTorch's."""
    if count.dtype.kind != "f":
        raise ValueError(f"binomial only supports floating-point dtypes for count, got: {count.dtype}")
    if prob.dtype.kind != "f":
        raise ValueError(f"binomial only supports floating-point dtypes for prob, got: {prob.dtype}")
    if count.numel() and bool((count.data < 0).any()):
        raise RuntimeError("binomial expects count >= 0")
    p = prob.data
    if p.size and not bool(((p >= 0) & (p <= 1)).all()):
        raise RuntimeError("binomial expects 0 <= prob <= 1")
    xp = get_array_module(count.data)
    host = [np.asarray(a.get() if hasattr(a, "get") else a) for a in (count.data, p)]
    sample = xp.asarray(_gen(generator).binomial(host[0].astype(np.int64), host[1])).astype(count.dtype)
    return _Binomial.apply(count, prob, sample)
