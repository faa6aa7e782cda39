"""The older, hook-based ``weight_norm`` / ``remove_weight_norm`` and ``spectral_norm`` / ``remove_spectral_norm``
of ``torch.nn.utils`` (PyTorch keeps them beside the parametrizations, :mod:`.parametrizations`, which it
recommends instead).

A forward pre-hook recomputes ``module.<name>`` (a plain attribute, not a parameter) from parameters of other
names before every call: ``<name>_g`` and ``<name>_v`` for weight norm; ``<name>_orig`` and the buffers
``<name>_u``, ``<name>_v`` of the power iteration for spectral norm: PyTorch's state dict keys. The formulas
are shared with the parametrizations.
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn.autograd.mutation_guard import will_write
from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor

from ..conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..module import Parameter
from .parametrizations import _weight_norm, norm_except_dim

__all__ = ["remove_spectral_norm", "remove_weight_norm", "spectral_norm", "weight_norm"]


def _pre_hooks(module) -> dict:
    return module.__dict__.get("_forward_pre_hooks", {})


def _find(module, kind, name):
    """The handle id and hook of ``kind`` on ``name``, or None."""
    for key, (hook, _, _) in _pre_hooks(module).items():
        if isinstance(hook, kind) and hook.name == name:
            return key, hook
    return None


class WeightNorm:
    """The forward pre-hook of :func:`weight_norm`: ``module.<name> = g * v / ||v||``."""

    def __init__(self, name: str, dim: int | None):
        self.name, self.dim = name, -1 if dim is None else dim

    def compute_weight(self, module):
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))

    def remove(self, module):
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.data.copy()))


def weight_norm(module, name: str = "weight", dim: int | None = 0):
    """Deprecated in PyTorch for :func:`distnn.nn.utils.parametrizations.weight_norm` (a FutureWarning, as
    there): replace ``module.<name>`` by the parameters ``<name>_g`` (its norm over every dimension but ``dim``;
    ``None``: the whole tensor) and ``<name>_v`` (its direction), recombined before each forward."""
    warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                  "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    if _find(module, WeightNorm, name):
        raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    fn = WeightNorm(name, dim)
    weight = getattr(module, name)
    from ..lazy import UninitializedParameter

    if isinstance(weight, UninitializedParameter):
        raise ValueError("The module passed to `WeightNorm` can't have uninitialized parameters. Make sure to run "
                         "the dummy forward before applying weight normalization")
    del module._parameters[name]
    with no_grad():
        g = norm_except_dim(weight, fn.dim)
    module.register_parameter(name + "_g", Parameter(g.data.copy()))
    module.register_parameter(name + "_v", Parameter(weight.data))
    setattr(module, name, fn.compute_weight(module))
    module.register_forward_pre_hook(fn)
    return module


def remove_weight_norm(module, name: str = "weight"):
    """Undo :func:`weight_norm`: ``module.<name>`` is a parameter again, holding the current weight."""
    return _remove(module, WeightNorm, name, "weight_norm")


class SpectralNorm:
    """The forward pre-hook of :func:`spectral_norm`: ``module.<name> = <name>_orig / sigma``, the power
    iteration (``v`` then ``u``, PyTorch's order here) run in training mode only."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12):
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.name, self.dim, self.n_power_iterations, self.eps = name, dim, n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def _normalize(self, x):
        return x / max(float(np.sqrt((x * x).sum())), self.eps)

    def compute_weight(self, module, do_power_iteration: bool):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            for _ in range(self.n_power_iterations):  # in place: the buffers keep their identity
                will_write(u)
                will_write(v)
                v.data[...] = self._normalize(mat.data.T @ u.data)
                u.data[...] = self._normalize(mat.data @ v.data)
            u._bump_version()
            v._bump_version()
        sigma = (Tensor(u.data.copy()) * (mat @ Tensor(v.data.copy()))).sum()
        return weight / sigma

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.data.copy()))


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None):
    """Spectral normalization by a forward pre-hook, as ``torch.nn.utils.spectral_norm``: the parameter
    ``<name>_orig``, the buffers ``<name>_u`` and ``<name>_v`` (started from distnn's generator) and
    ``module.<name> = <name>_orig / sigma`` recomputed before each forward. ``dim`` defaults to 1 for
    transposed convolutions, else 0."""
    if _find(module, SpectralNorm, name):
        raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    fn = SpectralNorm(name, n_power_iterations, dim, eps)
    weight = module._parameters[name]
    from distnn import random as drandom

    mat = fn.reshape_weight_to_matrix(weight).data
    h, w = mat.shape
    gen = drandom.default_generator()
    from distnn.backend import get_array_module

    xp = get_array_module(mat)
    u = fn._normalize(xp.asarray(gen.standard_normal(h).astype(mat.dtype)))
    v = fn._normalize(xp.asarray(gen.standard_normal(w).astype(mat.dtype)))
    delattr(module, name)
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, Tensor(weight.data))
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module, name: str = "weight"):
    """Undo :func:`spectral_norm`: ``module.<name>`` is a parameter again, holding the current weight."""
    return _remove(module, SpectralNorm, name, "spectral_norm")


def _remove(module, kind, name: str, what: str):
    """Take ``module``'s ``kind`` pre-hook of ``name`` off and put the plain parameter back (PyTorch's error if
    there is none)."""
    found = _find(module, kind, name)
    if found is None:
        raise ValueError(f"{what} of '{name}' not found in {module}")
    key, hook = found
    hook.remove(module)
    del _pre_hooks(module)[key]
    return module
