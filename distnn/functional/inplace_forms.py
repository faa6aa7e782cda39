"""PyTorch's top-level forms of in-place methods (``torch.exp_(t)`` is ``t.exp_()``, ``torch.clamp_(t, 0, 1)``
is ``t.clamp_(0, 1)``), made from a list of method names; ``fill``, PyTorch's out-of-place ``fill_``; and the
top-level activations and dropouts of ``distnn.functional`` with PyTorch's top-level signatures
(``torch.dropout(input, p, train)``, ``torch.dropout_``, ``torch.selu_`` ...)."""
from __future__ import annotations

from distnn.autograd.tensor import Tensor

from . import activation, activation_more, dropout_variants
from . import rrelu as _rrelu
from .activation_inplace import celu_, relu_, rrelu_, selu_, threshold_  # noqa: F401 - exported below

# the Tensor methods PyTorch also has as torch.<name>(input, ...)
_METHOD_NAMES = [
    "abs_", "neg_", "negative_", "reciprocal_", "rsqrt_", "square_", "sqrt_", "exp_", "exp2_", "expm1_", "log_",
    "log1p_", "log2_", "log10_", "sigmoid_", "logit_", "tanh_",
    "sin_", "cos_", "tan_", "asin_", "acos_", "atan_", "sinh_", "cosh_", "asinh_", "acosh_", "atanh_",
    "arcsin_", "arccos_", "arctan_", "arcsinh_", "arccosh_", "arctanh_", "deg2rad_", "rad2deg_",
    "erf_", "erfc_", "sinc_", "nan_to_num_", "xlogy_", "gcd_", "lcm_", "ldexp_",
    "round_", "floor_", "ceil_", "trunc_", "frac_", "fix_", "clamp_", "clip_", "clamp_min_", "clamp_max_",
    "zero_", "fill_", "index_put_", "addmv_", "detach_",
]


def _method_form(name: str):
    def form(input, *args, **kwargs):  # noqa: A002
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)

    form.__name__ = form.__qualname__ = name
    form.__doc__ = f"``torch.{name}(input, ...)``: ``input.{name}(...)``, in place (returns ``input``)."
    return form


globals().update({name: _method_form(name) for name in _METHOD_NAMES})


def fill(input, value):  # noqa: A002
    """``torch.fill``: a new tensor of ``input``'s shape and dtype with every element ``value`` (a number or a
    0-d tensor, whose gradient is the sum of the output's; ``input``'s is zero)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"fill(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    return input.clone().fill_(value)


def dropout(input, p, train):  # noqa: A002
    """``torch.dropout``: ``F.dropout(input, p, training=train)``."""
    return activation.dropout(input, p, train)


def dropout_(input, p, train):  # noqa: A002
    """``torch.dropout_``: ``F.dropout(input, p, training=train, inplace=True)``."""
    return activation.dropout(input, p, train, inplace=True)


def alpha_dropout(input, p, train):  # noqa: A002
    """``torch.alpha_dropout``: ``F.alpha_dropout(input, p, training=train)``."""
    return dropout_variants.alpha_dropout(input, p, train)


def alpha_dropout_(input, p, train):  # noqa: A002
    """``torch.alpha_dropout_``: ``F.alpha_dropout(input, p, training=train, inplace=True)``."""
    return dropout_variants.alpha_dropout(input, p, train, inplace=True)


def feature_alpha_dropout(input, p, train):  # noqa: A002
    """``torch.feature_alpha_dropout``: ``F.feature_alpha_dropout(input, p, training=train)``."""
    return dropout_variants.feature_alpha_dropout(input, p, train)


def feature_alpha_dropout_(input, p, train):  # noqa: A002
    """``torch.feature_alpha_dropout_``: ``F.feature_alpha_dropout(input, p, training=train, inplace=True)``."""
    return dropout_variants.feature_alpha_dropout(input, p, train, inplace=True)


def selu(input):  # noqa: A002
    """``torch.selu``: ``F.selu``."""
    return activation_more.selu(input)


def celu(input, alpha=1.0):  # noqa: A002
    """``torch.celu``: ``F.celu``."""
    return activation_more.celu(input, alpha)


def threshold(input, threshold, value):  # noqa: A002
    """``torch.threshold``: ``F.threshold`` (``value`` where ``input <= threshold``)."""
    return activation_more.threshold(input, threshold, value)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):  # noqa: A002
    """``torch.rrelu``: ``F.rrelu``."""
    return _rrelu.rrelu(input, lower, upper, training, generator=generator)

__all__ = [*_METHOD_NAMES, "fill", "dropout", "dropout_", "alpha_dropout", "alpha_dropout_", "feature_alpha_dropout",
           "feature_alpha_dropout_", "selu", "celu", "threshold", "rrelu", "relu_", "selu_", "celu_", "threshold_",
           "rrelu_"]
