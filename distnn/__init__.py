"""distnn: data-parallel neural-network training on its own autograd engine.

numpy on the CPU, cupy on a GPU, MPI (mpi4py) between processes. Importing
distnn needs only numpy.
"""
from ._early_signals import install_if_starting_the_cli as _note_early_signals

_note_early_signals()  # first: `python -m distnn` is not killed by a preemption signal while it imports

from ._malloc import tune_malloc as _tune_malloc
from ._threads import limit_blas_threads as _limit_blas_threads

_tune_malloc()
_limit_blas_threads()  # before numpy loads: several ranks on a host must not each start a machine-wide BLAS pool

from . import backend, random  # noqa: E402
from .autograd import (Function, Tensor, enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,  # noqa: E501
                       no_grad, set_grad_enabled)
from .backend import get_array_module, to_numpy
from .random import manual_seed
from . import functional
from .serialization import load, save  # torch.save / torch.load's file format (no PyTorch needed)

__version__ = "0.1.0"

import builtins as _builtins  # (distnn.bool, .int, .float, .any, .all are PyTorch's names: see dtypes.py)
import math as _math

import numpy as _np

float32 = _np.float32
float64 = _np.float64


from .autograd.number_range import (REAL_NUMBERS as _REAL_NUMBERS, numbers_array as _numbers_array,  # noqa: E402
                                    scalar_for_dtype as _scalar_for_dtype)
from .functional import torch_ranges as _torch_ranges  # noqa: E402


def tensor(data, requires_grad=False, dtype=None) -> Tensor:
    """A new Tensor holding a copy of ``data``, as ``torch.tensor`` (Python floats get the default dtype, float32
    unless :func:`set_default_dtype` changed it; arrays keep
    their dtype). Never the caller's array: :func:`from_numpy` (and ``Tensor(array)``) share its memory."""
    if isinstance(data, Tensor):
        data = data.data
    elif dtype is not None and isinstance(data, (list, tuple, _builtins.int, _builtins.float, _np.generic)):
        array = _numbers_array(data, _np.dtype(dtype))  # (PyTorch checks Python numbers against the dtype, not an
        # array's values)
        if array is not None:  # (a new array, in dtype: no copy)
            return Tensor(array, requires_grad=requires_grad)
    if hasattr(data, "dtype") and hasattr(data, "copy"):
        data = data.copy()
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape, dtype=None, requires_grad=False) -> Tensor:
    """``torch.zeros``: in ``dtype`` (default: the default dtype, :func:`get_default_dtype`)."""
    dtype = dtype if dtype is not None else backend.default_dtype()
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_np.zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad=False) -> Tensor:
    """``torch.ones``: in ``dtype`` (default: the default dtype, :func:`get_default_dtype`)."""
    dtype = dtype if dtype is not None else backend.default_dtype()
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_np.ones(shape, dtype=dtype), requires_grad=requires_grad)


def randn(*shape, dtype=None, requires_grad=False, generator=None) -> Tensor:
    """``torch.randn`` (distnn's generator's numbers): in ``dtype`` (default: the default dtype)."""
    dtype = dtype if dtype is not None else backend.default_dtype()
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    gen = generator if generator is not None else random.default_generator()
    return Tensor(gen.standard_normal(shape).astype(dtype), requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad=False, generator=None) -> Tensor:
    """``torch.rand`` (distnn's generator's numbers): in ``dtype`` (default: the default dtype)."""
    dtype = dtype if dtype is not None else backend.default_dtype()
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    gen = generator if generator is not None else random.default_generator()
    return Tensor(gen.random(shape).astype(dtype), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    """PyTorch's ``arange``: integers give int64, a float anywhere the default dtype (unless ``dtype``)."""
    if end is None:
        start, end = 0, start
    floats = _builtins.any(isinstance(v, _builtins.float) for v in (start, end, step))
    dtype = dtype if dtype is not None else (backend.default_dtype() if floats else _np.int64)
    if floats and _np.dtype(dtype).kind in "iu":
        return Tensor(_integer_arange(start, end, step, _np.dtype(dtype)), requires_grad=requires_grad)
    values = _np.arange(start, end, step)
    if _torch_ranges.follows_torch(dtype):  # (float16: the values PyTorch's kernel computes)
        values = _torch_ranges.torch_arange(start, step, values.size)
    return Tensor(values.astype(dtype, copy=False), requires_grad=requires_grad)


def _integer_arange(start, end, step, dtype):
    """``arange`` of float bounds in an integer dtype, as PyTorch's: the values are ``int(start) + i *
    int(step)`` (truncated first); the count is that of the truncated bounds for int64, of the float ones
    (``ceil((end - start) / step)``) for the narrower integers. So ``arange(2.5, dtype=int64)`` is [0, 1] and
    ``arange(2.5, dtype=int32)`` is [0, 1, 2]."""
    first, last, stride = (_builtins.int(v) for v in (start, end, step))
    if dtype == _np.int64:
        start, end, step = first, last, stride
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    count = _math.ceil((end - start) / step) if dtype != _np.int64 else len(_builtins.range(start, end, step))
    return (first + _np.arange(count, dtype=_np.int64) * stride).astype(dtype)


_FLOAT_DTYPES = frozenset([_np.float16, _np.float32, _np.float64, *map(_np.dtype, ("float16", "float32", "float64"))])


def full(shape, fill_value, dtype=None, requires_grad=False) -> Tensor:
    """``fill_value`` everywhere; the dtype follows it as in PyTorch (bool, int64, the default complex dtype for a
    complex, else the default dtype)."""
    if dtype is None:
        dtype = (_builtins.bool if isinstance(fill_value, _builtins.bool) else _np.int64
                 if isinstance(fill_value, _builtins.int) else backend.default_complex_dtype()
                 if isinstance(fill_value, _builtins.complex) else backend.default_dtype())
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if not (type(fill_value) is _builtins.float and -65504.0 <= fill_value <= 65504.0  # (the common case first:
            and dtype in _FLOAT_DTYPES) and isinstance(fill_value, _REAL_NUMBERS):  # it fits)
        # (range-checked as PyTorch's Scalar argument, filled by its fill_)
        fill_value = _scalar_for_dtype(_np.dtype(dtype), fill_value, rounds_half=_math.prod(shape) == 1)
    from distnn.autograd.half_rounding import into_half  # (a float into float16 through float32, as PyTorch's)

    return Tensor(_np.full(shape, into_half(fill_value, _np.dtype(dtype)), dtype=dtype), requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False) -> Tensor:
    """Zeros of ``t``'s shape, dtype and device."""
    data = t.data if isinstance(t, Tensor) else _np.asarray(t)
    return Tensor(get_array_module(data).zeros_like(data, dtype=dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False) -> Tensor:
    data = t.data if isinstance(t, Tensor) else _np.asarray(t)
    return Tensor(get_array_module(data).ones_like(data, dtype=dtype), requires_grad=requires_grad)


def from_numpy(array) -> Tensor:
    """A tensor sharing ``array``'s memory (and keeping its dtype), as PyTorch's ``from_numpy``."""
    return Tensor(_np.asarray(array))


# numpy-style free functions on tensors
from .functional import (  # noqa: E402
    abs, cat, clip, concat, exp, log, matmul, maximum, minimum, pad, reshape, split, sqrt, stack, transpose, where,
)
from .functional.reduce import argmax, argmin, max, mean, min, norm, sum  # noqa: E402
from .functional.variance import std, var  # noqa: E402
from .functional.activation import log_softmax, relu, sigmoid, softmax, tanh  # noqa: E402
from .functional.shape import flatten, squeeze, unsqueeze  # noqa: E402
from .functional.reduce_more import amax, amin, cumsum, logsumexp, prod  # noqa: E402
from .functional.sort import argsort, sort, topk  # noqa: E402
from .functional.select import flip, index_select, narrow, roll  # noqa: E402
from .functional.einsum import bmm, einsum  # noqa: E402
from .functional.rounding import ceil, floor, round, sign, trunc  # noqa: E402
from .autograd.tensor_methods import allclose, equal  # noqa: E402
from .control_flow import cond, while_loop  # noqa: E402  (torch.cond, torch.while_loop: run eagerly)
# pointwise math (torch.sin, torch.isnan, torch.atan2, ...): every name in the modules' __all__
from .functional import pointwise_binary as _pw_binary, pointwise_division as _pw_division  # noqa: E402
from .functional import pointwise_unary as _pw_unary, predicates as _pw_predicates  # noqa: E402
from .functional.pointwise_unary import *  # noqa: E402,F401,F403
from .functional.pointwise_binary import *  # noqa: E402,F401,F403
from .functional.pointwise_division import *  # noqa: E402,F401,F403
from .functional.predicates import *  # noqa: E402,F401,F403
from .functional.gamma_functions import digamma, igamma, lgamma  # noqa: E402
from .functional.bessel import i0  # noqa: E402
from .functional.polygamma import polygamma  # noqa: E402

# linear algebra: the package, and PyTorch's top-level names for some of it (torch.det, torch.inverse, ...)
from . import linalg  # noqa: E402
from .linalg.aliases import (  # noqa: E402
    cholesky, det, geqrf, inverse, logdet, lu, lu_solve, lu_unpack, matrix_exp, matrix_power, orgqr, ormqr, pinverse,
    slogdet,
)

from .functional import clamp  # noqa: E402

_LAZY_SUBMODULES = {"distributions", "nn", "optim", "distributed", "data", "train", "models", "testing", "cli",
                    "func", "special", "fft", "signal", "profiler", "utils", "masked"}


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """``torch.vmap``: :func:`distnn.func.vmap` (a loop over the samples, exact; see there)."""
    from .func.vmap import vmap as _vmap  # (distnn.func loads on first use, as the lazy submodules)

    return _vmap(func, in_dims, out_dims, randomness, chunk_size=chunk_size)


def __getattr__(name):
    # Submodules load on first use, so `import distnn` stays light and never imports mpi4py.
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"distnn.{name}")
    raise AttributeError(f"module 'distnn' has no attribute {name!r}")


__all__ = [
    "Tensor", "Function", "tensor", "zeros", "ones", "randn", "rand", "no_grad", "enable_grad", "manual_seed",
    "inference_mode", "is_inference_mode_enabled", "set_grad_enabled", "is_grad_enabled", "save", "load",
    "arange", "full", "zeros_like", "ones_like", "from_numpy", "argmax", "vmap",
    "functional", "backend", "get_array_module", "to_numpy", "float32", "float64",
    "cumsum", "prod", "logsumexp", "amax", "amin", "sort", "argsort", "topk", "index_select", "narrow", "flip",
    "roll", "bmm", "einsum", "round", "floor", "ceil", "sign", "trunc", "allclose", "equal",
    "lgamma", "digamma", "igamma", "i0", "polygamma",
    "linalg", "det", "logdet", "slogdet", "inverse", "cholesky", "pinverse", "matrix_power", "matrix_exp",
    "lu", "lu_solve", "lu_unpack", "geqrf", "orgqr", "ormqr",
    *_pw_unary.__all__, *_pw_binary.__all__, *_pw_division.__all__, *_pw_predicates.__all__,
]

# PyTorch's shape, matrix, indexing/scatter, reduction and creation functions (see README "Tensor functions")
from .functional.shape_more import (  # noqa: E402
    atleast_1d, atleast_2d, atleast_3d, broadcast_shapes, broadcast_tensors, diag, diag_embed, diagflat, diagonal,
    dsplit, fliplr, flipud, hsplit, meshgrid, moveaxis, movedim, ravel, repeat_interleave, rot90, swapaxes, swapdims,
    t, tensor_split, tile, trace, tril, triu, unbind, unflatten, vsplit,
)
# PyTorch's memory formats (Tensor.is_contiguous / contiguous(memory_format=...))
from .functional.memory_format import (  # noqa: E402
    channels_last, channels_last_3d, contiguous_format, memory_format, preserve_format,
)
from .functional.matrix_more import (  # noqa: E402
    addbmm, addmm, addmv, baddbmm, cdist, cross, dot, ger, inner, kron, mm, mv, outer, tensordot, vdot,
)
from .functional.scatter import (  # noqa: E402
    argwhere, index_add, index_copy, index_fill, masked_scatter, masked_select, nonzero, nonzero_static, scatter,
    scatter_add, scatter_reduce, take, take_along_dim,
)
from .functional.reduce_scan import (  # noqa: E402
    aminmax, count_nonzero, cummax, cummin, cumprod, diff, logcumsumexp, nanmean, nansum, std_mean, var_mean,
)
from .functional.order_stats import kthvalue, median, mode, nanmedian, nanquantile, quantile  # noqa: E402
from .functional.counting import bincount, bucketize, histc, searchsorted, unique, unique_consecutive  # noqa: E402
from .functional.creation import (  # noqa: E402
    bernoulli, empty, empty_like, eye, full_like, linspace, logspace, multinomial, rand_like, randint, randint_like,
    randn_like, randperm,
)

__all__ += [
    "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_shapes", "broadcast_tensors", "diag", "diag_embed",
    "diagflat", "diagonal", "dsplit", "fliplr", "flipud", "hsplit", "meshgrid", "moveaxis", "movedim", "ravel",
    "repeat_interleave", "rot90", "swapaxes", "swapdims", "t", "tensor_split", "tile", "trace", "tril", "triu",
    "unbind", "unflatten", "vsplit",
    "addbmm", "addmm", "addmv", "baddbmm", "cdist", "cross", "dot", "ger", "inner", "kron", "mm", "mv", "outer",
    "tensordot", "vdot",
    "argwhere", "index_add", "index_copy", "index_fill", "masked_scatter", "masked_select", "nonzero", "nonzero_static",
    "scatter", "scatter_add", "scatter_reduce", "take", "take_along_dim",
    "aminmax", "count_nonzero", "cummax", "cummin", "cumprod", "diff", "logcumsumexp", "nanmean", "nansum",
    "std_mean", "var_mean", "kthvalue", "median", "mode", "nanmedian", "nanquantile", "quantile",
    "bincount", "bucketize", "histc", "searchsorted", "unique", "unique_consecutive",
    "bernoulli", "empty", "empty_like", "eye", "full_like", "linspace", "logspace", "multinomial", "rand_like",
    "randint", "randint_like", "randn_like", "randperm",
]

# the rest of PyTorch's everyday functions and dtype utilities (README "Tensor functions")
from .functional import method_forms as _method_forms, pointwise_bits as _pointwise_bits  # noqa: E402
from .functional import slice_scatter as _slice_scatter, statistics_more as _statistics_more  # noqa: E402
from . import dtypes as _dtypes  # noqa: E402
from .functional.method_forms import *  # noqa: E402,F401,F403
from .functional.pointwise_bits import *  # noqa: E402,F401,F403
from .functional.slice_scatter import *  # noqa: E402,F401,F403
from .functional.statistics_more import *  # noqa: E402,F401,F403
from .dtypes import *  # noqa: E402,F401,F403

__all__ += [*_method_forms.__all__, *_pointwise_bits.__all__, *_slice_scatter.__all__, *_statistics_more.__all__,
            *_dtypes.__all__]

# more of PyTorch's top-level functions: joins, index helpers, creation, as_tensor/asarray, in-place forms
from .functional import conversion as _conversion, creation_more as _creation_more  # noqa: E402
from .functional import index_math as _index_math, inplace_forms as _inplace_forms  # noqa: E402
from .functional import stacking as _stacking, view_copies as _view_copies  # noqa: E402
from .functional import as_strided as _as_strided  # noqa: E402
from .functional.conversion import *  # noqa: E402,F401,F403
from .functional.creation_more import *  # noqa: E402,F401,F403  (distnn.range is torch.range: use _builtins.range)
from .functional.index_math import *  # noqa: E402,F401,F403
from .functional.inplace_forms import *  # noqa: E402,F401,F403
from .functional.stacking import *  # noqa: E402,F401,F403
from .functional.view_copies import *  # noqa: E402,F401,F403
from .functional.as_strided import *  # noqa: E402,F401,F403
from .autograd.tensor_methods_meta import layout, strided  # noqa: E402  (torch.layout, torch.strided)

__all__ += [*_conversion.__all__, *_creation_more.__all__, *_index_math.__all__, *_inplace_forms.__all__,
            *_stacking.__all__, *_view_copies.__all__, *_as_strided.__all__,
            "layout", "strided"]

from . import amp  # noqa: E402
from .amp import autocast  # noqa: E402  (torch.autocast; also distnn.amp.autocast)

__all__ += ["amp", "autocast"]

# PyTorch's top-level NN, older linear-algebra and sampled-calculus forms (torch.conv2d, torch.svd, torch.gradient)
from . import torch_toplevel_calculus as _tl_calculus  # noqa: E402
from . import torch_toplevel_linalg as _tl_linalg, torch_toplevel_nn as _tl_nn  # noqa: E402
from .torch_toplevel_calculus import *  # noqa: E402,F401,F403
from .torch_toplevel_linalg import *  # noqa: E402,F401,F403
from .torch_toplevel_nn import *  # noqa: E402,F401,F403

__all__ += [*_tl_nn.__all__, *_tl_linalg.__all__, *_tl_calculus.__all__]
# PyTorch's removed linear-algebra names (torch.solve, torch.eig, ...): they raise, pointing to distnn.linalg
from .linalg.removed import eig, lstsq, matrix_rank, solve, symeig  # noqa: E402
from .linalg.lowrank import pca_lowrank, svd_lowrank  # noqa: E402
from .linalg.lobpcg import lobpcg  # noqa: E402

__all__ += ["eig", "lstsq", "matrix_rank", "solve", "symeig", "pca_lowrank", "svd_lowrank", "lobpcg"]

# sampling, RNG state, threads, print options, determinism, default device, complex numbers, windows
from . import toplevel_more as _toplevel_more  # noqa: E402
from .toplevel_more import *  # noqa: E402,F401,F403

_toplevel_more.wrap_creation_functions(globals())
__all__ += _toplevel_more.__all__

from .generator import Generator  # noqa: E402  (torch.Generator: a numpy Generator every generator= takes)

__all__ += ["Generator"]

# PyTorch's global settings and small queries; buffers and DLPack exchange
from . import interop as _interop, torch_settings as _torch_settings  # noqa: E402
from .interop import *  # noqa: E402,F401,F403
from .torch_settings import *  # noqa: E402,F401,F403

__all__ += [*_torch_settings.__all__, *_interop.__all__]

# ATen's native_* forms (their saved statistics and masks), the generic convolution
from . import torch_toplevel_native as _tl_native, torch_toplevel_rnn as _tl_rnn  # noqa: E402
from .torch_toplevel_native import *  # noqa: E402,F401,F403
from .torch_toplevel_rnn import *  # noqa: E402,F401,F403

__all__ += [*_tl_native.__all__, *_tl_rnn.__all__]

# the short-time Fourier transform (torch.stft / torch.istft; the transforms themselves: distnn.fft)
from .functional.stft import istft, stft  # noqa: E402

__all__ += ["stft", "istft"]

# ATen's sync-batchnorm kernels and segment_reduce
from . import torch_toplevel_segment as _tl_segment, torch_toplevel_syncbn as _tl_syncbn  # noqa: E402
from .torch_toplevel_segment import *  # noqa: E402,F401,F403
from .torch_toplevel_syncbn import *  # noqa: E402,F401,F403

__all__ += [*_tl_syncbn.__all__, *_tl_segment.__all__]

# Sparse COO tensors (torch.sparse_coo_tensor, torch.sparse_coo, torch.sparse): sparse embedding gradients
from . import sparse  # noqa: E402
from .autograd.tensor_methods_meta import sparse_coo  # noqa: E402
from .sparse import sparse_coo_tensor  # noqa: E402

__all__ += ["sparse", "sparse_coo", "sparse_coo_tensor"]
