"""PyTorch's top-level forms of in-place methods (``torch.exp_(t)`` is ``t.exp_()``, ``torch.clamp_(t, 0, 1)``
is ``t.clamp_(0, 1)``), made from a list of method names; ``fill``, PyTorch's out-of-place ``fill_``; and the
in-place activations (``torch.selu_`` ...). The out-of-place top-level activations and the dropouts (``torch.dropout(input,
p, train)``, ``torch.dropout_``) are :mod:`distnn.torch_toplevel_nn`'s."""
from __future__ import annotations

from distnn.autograd.tensor import Tensor

from .activation_inplace import celu_, relu_, rrelu_, selu_, threshold_  # noqa: F401 - exported below

# the Tensor methods PyTorch also has as torch.<name>(input, ...)
_METHOD_NAMES = [
    "abs_", "neg_", "negative_", "reciprocal_", "rsqrt_", "square_", "sqrt_", "exp_", "exp2_", "expm1_", "log_",
    "log1p_", "log2_", "log10_", "sigmoid_", "logit_", "tanh_",
    "sin_", "cos_", "tan_", "asin_", "acos_", "atan_", "sinh_", "cosh_", "asinh_", "acosh_", "atanh_",
    "arcsin_", "arccos_", "arctan_", "arcsinh_", "arccosh_", "arctanh_", "deg2rad_", "rad2deg_",
    "erf_", "erfc_", "sinc_", "i0_", "nan_to_num_", "xlogy_", "gcd_", "lcm_", "ldexp_",
    "round_", "floor_", "ceil_", "trunc_", "frac_", "fix_", "clamp_", "clip_", "clamp_min_", "clamp_max_",
    "zero_", "fill_", "index_put_", "addmv_", "detach_", "resize_as_",
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


def _clamp_form(name: str):
    """``torch.clamp_``/``torch.clip_``: PyTorch's argument rules first, so its errors are the function's
    (they list ``input``), then the method."""
    def form(input, *args, **kwargs):  # noqa: A002
        from .clamp_arguments import clamp_bounds, clamp_call

        if not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
        lo, hi, call = clamp_call(name, input, args, kwargs)
        return getattr(input, name)(*clamp_bounds(name, input, lo, hi, call=call))

    form.__name__ = form.__qualname__ = name
    form.__doc__ = (f"``torch.{name}(input, min=None, max=None)``: ``input.{name}(min, max)``, in place (returns "
                    "``input``).")
    return form


def _clamp_one_form(name: str, which: str):
    """``torch.clamp_min_``/``torch.clamp_max_``: the bound is required (PyTorch's TypeError names the function)."""
    def form(input, *args, **kwargs):  # noqa: A002
        from .clamp_arguments import one_bound_call

        if not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
        return getattr(input, name)(one_bound_call(name, input, args, kwargs, which)[0])

    form.__name__ = form.__qualname__ = name
    form.__doc__ = f"``torch.{name}(input, {which})``: ``input.{name}({which})``, in place (returns ``input``)."
    return form


clamp_, clip_ = _clamp_form("clamp_"), _clamp_form("clip_")
clamp_min_, clamp_max_ = _clamp_one_form("clamp_min_", "min"), _clamp_one_form("clamp_max_", "max")


def fill(input, value):  # noqa: A002
    """``torch.fill``: a new tensor of ``input``'s shape and dtype with every element ``value`` (a number or a
    0-d tensor, whose gradient is the sum of the output's; ``input``'s is zero)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"fill(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    return input.clone().fill_(value)


__all__ = [*_METHOD_NAMES, "fill", "relu_", "selu_", "celu_", "threshold_", "rrelu_"]
