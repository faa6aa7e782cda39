"""distnn: data-parallel neural-network training on its own autograd engine.

numpy on the CPU, cupy on a GPU, MPI (mpi4py) between processes. Importing
distnn needs only numpy.
"""
from ._malloc import tune_malloc as _tune_malloc

_tune_malloc()

from . import backend, random  # noqa: E402
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import get_array_module, to_numpy
from .random import manual_seed
from . import functional

__version__ = "0.1.0"

import numpy as _np

float32 = _np.float32
float64 = _np.float64


def tensor(data, requires_grad=False, dtype=None) -> Tensor:
    """Create a Tensor (Python floats become float32; numpy arrays keep their dtype)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape, dtype=float32, requires_grad=False) -> Tensor:
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_np.zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=float32, requires_grad=False) -> Tensor:
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_np.ones(shape, dtype=dtype), requires_grad=requires_grad)


def randn(*shape, dtype=float32, requires_grad=False, generator=None) -> Tensor:
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    gen = generator if generator is not None else random.default_generator()
    return Tensor(gen.standard_normal(shape).astype(dtype), requires_grad=requires_grad)


def rand(*shape, dtype=float32, requires_grad=False, generator=None) -> Tensor:
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    gen = generator if generator is not None else random.default_generator()
    return Tensor(gen.random(shape).astype(dtype), requires_grad=requires_grad)


# numpy-style free functions on tensors
from .functional import (  # noqa: E402
    abs, cat, clip, concat, exp, log, matmul, maximum, minimum, pad, reshape, split, sqrt, stack, transpose, where,
)
from .functional.reduce import max, mean, min, std, sum, var  # noqa: E402

_LAZY_SUBMODULES = {"nn", "optim", "distributed", "data", "train", "models", "testing", "cli"}


def __getattr__(name):
    # Submodules load on first use, so `import distnn` stays light and never imports mpi4py.
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"distnn.{name}")
    raise AttributeError(f"module 'distnn' has no attribute {name!r}")


__all__ = [
    "Tensor", "Function", "tensor", "zeros", "ones", "randn", "rand", "no_grad", "enable_grad", "manual_seed",
    "functional", "backend", "get_array_module", "to_numpy", "float32", "float64",
]
