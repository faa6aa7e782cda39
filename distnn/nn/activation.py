"""Activation modules: thin wrappers over ``distnn.functional``, plus PReLU and Maxout."""
from __future__ import annotations

import numpy as np

from distnn.backend import default_dtype
from distnn import functional as F
from distnn.functional.activation_more import PReLU as _PReLU  # noqa: F401 (its old home, for callers)

from .linear import _finish
from .module import Module, Parameter


class ReLU(Module):
    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace  # as PyTorch's: the input tensor itself becomes the output

    def forward(self, x):
        return F.relu(x, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope, inplace=self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x):
        return F.elu(x, self.alpha, inplace=self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class RReLU(Module):
    """Randomized leaky ReLU (see ``F.rrelu``): a random slope in [lower, upper] per element while
    training, (lower + upper) / 2 in eval mode. ``generator`` and ``batch_dim``: as ``Dropout``'s."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False, generator=None,
                 batch_dim: int | None = None):
        super().__init__()
        self.lower, self.upper, self.inplace, self.generator = lower, upper, inplace, generator
        self.batch_dim = None if batch_dim is None else int(batch_dim)

    def forward(self, x):
        return F.rrelu(x, self.lower, self.upper, self.training, self.inplace, generator=self.generator,
                       batch_dim=self.batch_dim)

    def extra_repr(self):
        return (f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace else "")
                + (f", batch_dim={self.batch_dim}" if self.batch_dim is not None else ""))


class GELU(Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class LogSigmoid(Module):
    """log(sigmoid(x)), stable for any |x| (see ``F.logsigmoid``)."""

    def forward(self, x):
        return F.logsigmoid(x)


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """Softmax along ``dim`` (default: the last dimension, with a warning where PyTorch would pick another)."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax2d(Module):
    """Softmax over the channels of each location: dim -3 of a (C, H, W) or (N, C, H, W) input (PyTorch's
    ValueError for any other number of dims)."""

    def forward(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {x.ndim}D instead")
        return F.softmax(x, dim=-3)


class LogSoftmax(Module):
    """Log-softmax along ``dim`` (default: the last dimension, with a warning where PyTorch would pick another)."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class PReLU(Module):
    """Parametric ReLU; ``num_parameters`` is 1 (shared) or the number of channels (dim 1). Slopes start at ``init``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = int(num_parameters)
        self.init = init
        self.weight = Parameter(np.full(self.num_parameters, init, dtype=np.dtype(dtype or default_dtype())))
        _finish(self, device)

    def forward(self, x):
        shape = tuple(x.shape)
        if self.num_parameters != 1:
            channels = shape[1] if len(shape) >= 2 else (shape[0] if shape else 0)
            if channels != self.num_parameters:
                raise ValueError(
                    f"{self.where()}: num_parameters={self.num_parameters} must match the channel dimension "
                    f"(dim 1) of the input, got shape {shape}"
                )
            if len(shape) == 1:  # a single unbatched (C,) vector: slope per element (PyTorch refuses it)
                return F.prelu(x.reshape(1, -1), self.weight).reshape(shape)
        return F.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Maxout(Module):
    """Maxout (Goodfellow et al.): split dimension ``dim`` into groups of ``pool_size`` and keep each group's max.

    Input features F along ``dim`` must be divisible by ``pool_size``; output has F // pool_size there.
    Group j holds features j*pool_size ... (j+1)*pool_size - 1.
    """

    def __init__(self, pool_size: int, dim: int = 1):
        super().__init__()
        if pool_size < 1:
            raise ValueError(f"Maxout: pool_size must be >= 1, got {pool_size}")
        self.pool_size, self.dim = int(pool_size), dim

    def forward(self, x):
        shape = tuple(x.shape)
        d = self.dim % len(shape) if shape else 0
        if not shape or shape[d] % self.pool_size:
            raise ValueError(
                f"{self.where()}: dimension {self.dim} of input shape {shape} is not divisible by "
                f"pool_size={self.pool_size}"
            )
        grouped = x.reshape(*shape[:d], shape[d] // self.pool_size, self.pool_size, *shape[d + 1:])
        return grouped.max(axis=d + 1)

    def extra_repr(self):
        return f"pool_size={self.pool_size}, dim={self.dim}"


# ---------------------------------------------------------------- more of PyTorch's activations
def _inplace_repr(inplace):
    return "inplace=True" if inplace else ""


class _InplaceActivation(Module):
    """An activation whose only argument is PyTorch's ``inplace``; ``_fn`` names its function."""

    _fn = None

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return getattr(F, self._fn)(x, inplace=self.inplace)

    def extra_repr(self):
        return _inplace_repr(self.inplace)


class SiLU(_InplaceActivation):
    """x * sigmoid(x) (swish)."""
    _fn = "silu"


class Mish(_InplaceActivation):
    """x * tanh(softplus(x))."""
    _fn = "mish"


class Hardswish(_InplaceActivation):
    """x * relu6(x + 3) / 6."""
    _fn = "hardswish"


class Hardsigmoid(_InplaceActivation):
    """relu6(x + 3) / 6."""
    _fn = "hardsigmoid"


class SELU(_InplaceActivation):
    """Scaled ELU with PyTorch's constants (self-normalizing networks)."""
    _fn = "selu"


class ReLU6(_InplaceActivation):
    """min(max(x, 0), 6), gradient 0 at 0 and 6 (PyTorch's hardtanh(x, 0, 6))."""
    _fn = "relu6"


class Hardtanh(Module):
    """clamp(x, min_val, max_val), gradient 0 at and beyond the bounds."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if not max_val > min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class CELU(Module):
    """max(0, x) + min(0, alpha * (e^(x / alpha) - 1))."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x):
        return F.celu(x, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Threshold(Module):
    """x where x > threshold, else value."""

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, x):
        return F.threshold(x, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, x):
        return F.softsign(x)


class Tanhshrink(Module):
    """x - tanh(x)."""

    def forward(self, x):
        return F.tanhshrink(x)


class Softshrink(Module):
    """x -+ lambd outside [-lambd, lambd], 0 inside."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return F.softshrink(x, self.lambd)

    def extra_repr(self):
        return f"{self.lambd}"


class Hardshrink(Softshrink):
    """x outside [-lambd, lambd], 0 inside."""

    def forward(self, x):
        return F.hardshrink(x, self.lambd)


class GLU(Module):
    """Gated linear unit: first half of ``dim`` times the sigmoid of the second."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.glu(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmin(Module):
    """softmax(-x) along ``dim``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmin(x, dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
