"""``distnn.nn.utils.parametrizations``: ``orthogonal``, ``weight_norm`` and ``spectral_norm`` as parametrizations
(:mod:`.parametrize`), PyTorch's (``torch.nn.utils.parametrizations``) maps, buffers and state dict keys.

The maps are written with distnn's differentiable ops, so the gradients reaching the originals are those of
the same formulas as PyTorch's. Random draws (spectral_norm's power-iteration start, orthogonal's completion of
a non-square matrix to a square one) come from distnn's generator: they cannot equal PyTorch's, but they are
buffers (``_u``, ``_v``, ``base``) that a state dict carries.
"""
from __future__ import annotations

import numpy as np

import distnn
from distnn import linalg
from distnn.autograd.mutation_guard import will_write
from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional.normalize import normalize

from ..conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..module import Module
from . import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]

_MAPS = ("matrix_exp", "cayley", "householder")


# ---------------------------------------------------------------------------------------------- orthogonal
def _householder_product(a, tau):
    """The first k columns of ``H_1 ... H_k``, ``H_i = I - tau_i v_i v_i^T``, ``v_i`` the i-th column of ``a``
    below the diagonal with a 1 on it (LAPACK's orgqr, PyTorch's ``linalg.householder_product``).
    A loop over the k reflectors (not over elements), each a differentiable rank-one update."""
    n, k = a.shape[-2], a.shape[-1]
    xp = get_array_module(a.data)
    eye = xp.eye(n, dtype=a.dtype)
    q = Tensor(xp.broadcast_to(eye[:, :k], a.shape[:-2] + (n, k)).copy())
    for i in reversed(range(k)):  # Q = H_1 (H_2 (... (H_k I[:, :k])))
        v = a[..., :, i] + Tensor(eye[:, i])  # a's column is zero on and above the diagonal here
        vq = (v.unsqueeze(-1) * q).sum(-2, keepdim=True)  # v^T Q
        q = q - (tau[..., i].unsqueeze(-1).unsqueeze(-1) * v.unsqueeze(-1)) * vq
    return q


def _make_orthogonal(xp, a):
    """The Q of ``a``'s QR decomposition with the signs making ``diag(R)`` positive (a raw array; no gradient)."""
    q, r = xp.linalg.qr(a)
    return q * xp.sign(xp.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def _is_orthogonal(xp, q) -> bool:
    n, k = q.shape[-2], q.shape[-1]
    eps = 10.0 * n * np.finfo(q.dtype).eps
    return bool(xp.allclose(np.swapaxes(q, -1, -2) @ q, xp.eye(k, dtype=q.dtype), atol=eps))


class _Orthogonal(Module):
    """PyTorch's ``_Orthogonal``: maps the original (a tall matrix after transposing a wide one) onto the
    (semi-)orthogonal matrices by the matrix exponential or the Cayley map of a skew-symmetric matrix made
    from its lower triangle, or by the Householder reflectors stored below its diagonal; with
    ``use_trivialization`` the result is multiplied by ``base``, a buffer set by ``right_inverse``."""

    def __init__(self, weight, orthogonal_map: str, *, use_trivialization: bool = True):
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, x):
        n, k = x.shape[-2], x.shape[-1]
        transposed = n < k
        if transposed:
            x = x.mT
            n, k = k, n
        xp = get_array_module(x.data)
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            x = x.tril()
            if n != k:  # embed into a square matrix
                x = distnn.cat([x, Tensor(xp.zeros(x.shape[:-2] + (n, n - k), dtype=x.dtype))], dim=-1)
            a = x - x.mT  # skew-symmetric
            if self.orthogonal_map == "matrix_exp":
                q = linalg.matrix_exp(a)
            else:  # the Cayley retraction (I + A/2)(I - A/2)^{-1}
                eye = Tensor(xp.eye(n, dtype=a.dtype))
                q = linalg.solve(eye - 0.5 * a, eye + 0.5 * a)
            if n != k:
                q = q[..., :k]
        else:
            a = x.tril(-1)
            tau = 2.0 / (1.0 + (a * a).sum(-2))
            q = _householder_product(a, tau)
            # the diagonal of x is +-1: it picks the signs and is neither differentiated nor updated (PyTorch)
            signs = xp.diagonal(x.data, axis1=-2, axis2=-1).astype(np.int64).astype(x.dtype)
            q = q * Tensor(signs[..., None, :])
        if "base" in self._buffers:
            q = self.base @ q
        if transposed:
            q = q.mT
        return q

    def right_inverse(self, q):
        """An original giving ``q`` (orthogonalized by QR when it is not orthogonal), as PyTorch's."""
        if tuple(q.shape) != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                             f"Got a tensor of shape {tuple(q.shape)}.")
        q_init = q
        q = q.data
        xp = get_array_module(q)
        n, k = q.shape[-2], q.shape[-1]
        transpose = n < k
        if transpose:
            q = xp.swapaxes(q, -1, -2)
            n, k = k, n
        if "base" not in self._buffers:
            if self.orthogonal_map != "householder":
                raise NotImplementedError("It is not possible to assign to the matrix exponential "
                                          "or the Cayley parametrizations when use_trivialization=False.")
            h, tau = np.linalg.qr(distnn.to_numpy(q), mode="raw")  # (LAPACK's geqrf, h transposed)
            a = np.swapaxes(h, -1, -2).copy()
            diag = np.einsum("...ii->...i", a[..., :k, :k])  # (a writable view of the diagonal)
            diag[...] = np.sign(diag) * np.where(tau == 0.0, -1.0, 1.0)
            a = xp.asarray(a)
            return Tensor(xp.swapaxes(a, -1, -2).copy() if transpose else a)
        if n == k:
            q = _make_orthogonal(xp, q) if not _is_orthogonal(xp, q) else q.copy()
        else:  # complete q to an n x n orthogonal matrix
            from distnn import random as drandom

            extra = drandom.default_generator().standard_normal(q.shape[:-2] + (n, n - k)).astype(q.dtype)
            q = _make_orthogonal(xp, xp.concatenate([q, xp.asarray(extra)], axis=-1))
        self.base = Tensor(q)
        # -Id: the Householder map of it is the identity, and so are the others (their lower triangle's
        # skew-symmetric part is zero)
        neg_id = xp.zeros(q_init.shape, dtype=q_init.dtype)
        diag = xp.arange(k)
        neg_id[..., diag, diag] = -1.0
        return Tensor(neg_id)


def orthogonal(module, name: str = "weight", orthogonal_map: str | None = None, *, use_trivialization: bool = True):
    """Constrain ``module.<name>`` (a matrix or batch of matrices) to be orthogonal (semi-orthogonal when not
    square), as ``torch.nn.utils.parametrizations.orthogonal``: ``orthogonal_map`` is "matrix_exp" (the
    default for square matrices), "cayley" or "householder" (the default otherwise)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _MAPS:
        raise ValueError('orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


# --------------------------------------------------------------------------------------------- weight_norm
def norm_except_dim(v, dim: int):
    """The 2-norm of ``v`` over every dimension but ``dim``, keeping them as size 1 (PyTorch's
    ``norm_except_dim``); ``dim=-1`` is PyTorch's "whole tensor" (a 0-d norm), not the last dimension."""
    if dim == -1:
        return (v * v).sum().sqrt()
    if not -v.ndim <= dim < v.ndim:  # (wrapping it would silently norm over another dimension)
        raise IndexError(f"Dimension out of range (expected to be in range of [{-v.ndim}, {v.ndim - 1}], but got "
                         f"{dim})")
    dim = dim % v.ndim
    others = tuple(d for d in range(v.ndim) if d != dim)
    return (v * v).sum(others, keepdim=True).sqrt() if others else abs(v)


def _weight_norm(v, g, dim: int):
    """``v * (g / ||v||)``, the norm over every dimension but ``dim`` (PyTorch's ``_weight_norm``)."""
    return v * (g / norm_except_dim(v, dim))


class _WeightNorm(Module):
    """``weight = g * v / ||v||``, the originals ``original0 = g`` and ``original1 = v``."""

    def __init__(self, dim: int | None = 0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        return norm_except_dim(weight, self.dim), weight


def weight_norm(module, name: str = "weight", dim: int | None = 0):
    """Weight normalization (Salimans & Kingma) as a parametrization, as
    ``torch.nn.utils.parametrizations.weight_norm``: ``module.<name> = g * v / ||v||`` with ``g`` at
    ``parametrizations.<name>.original0`` and ``v`` at ``original1``; the norm is over every dimension but
    ``dim`` (``None``: over the whole tensor). A state dict of the older ``weight_norm`` (``<name>_g``,
    ``<name>_v``) loads into it, as in PyTorch."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def compat_hook(mod, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module.register_load_state_dict_pre_hook(compat_hook)
    return module


# ------------------------------------------------------------------------------------------- spectral_norm
class _SpectralNorm(Module):
    """``weight / sigma``, ``sigma`` the largest singular value of the weight seen as a matrix (``dim`` first),
    estimated by power iteration whose vectors ``_u`` and ``_v`` are buffers updated in training mode only."""

    def __init__(self, weight, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] "
                             f"but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            mat = self._reshape_weight_to_matrix(weight.data)
            h, w = mat.shape
            from distnn import random as drandom

            gen = drandom.default_generator()
            xp = get_array_module(mat)
            u = xp.asarray(gen.standard_normal(h).astype(mat.dtype))
            v = xp.asarray(gen.standard_normal(w).astype(mat.dtype))
            self.register_buffer("_u", Tensor(self._normalize(u)))
            self.register_buffer("_v", Tensor(self._normalize(v)))
            self._power_method(mat, 15)  # start from reasonable vectors

    def _normalize(self, x):
        xp = get_array_module(x)
        return x / max(float(xp.linalg.norm(x)), self.eps)

    def _reshape_weight_to_matrix(self, weight):
        """``weight`` with ``dim`` first, flattened to 2-D (a raw array or a Tensor)."""
        if self.dim != 0:
            order = (self.dim,) + tuple(d for d in range(weight.ndim) if d != self.dim)
            weight = weight.permute(*order) if isinstance(weight, Tensor) else weight.transpose(order)
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, mat, n_power_iterations: int) -> None:
        """Update ``_u`` and ``_v`` in place (the buffers keep their identity), from the raw matrix ``mat``."""
        for _ in range(n_power_iterations):
            will_write(self._u)
            will_write(self._v)
            self._u.data[...] = self._normalize(mat @ self._v.data)
            self._v.data[...] = self._normalize(mat.T @ self._u.data)
        self._u._bump_version()
        self._v._bump_version()

    def forward(self, weight):
        if weight.ndim == 1:  # exact: the norm of a vector
            return normalize(weight, dim=0, eps=self.eps)
        mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            with no_grad():
                self._power_method(mat.data, self.n_power_iterations)
        u, v = Tensor(self._u.data.copy()), Tensor(self._v.data.copy())  # (constants of this step's graph)
        sigma = (u * (mat @ v)).sum()
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None):
    """Spectral normalization (Miyato et al.) as a parametrization, as
    ``torch.nn.utils.parametrizations.spectral_norm``: ``module.<name>`` is divided by its largest singular
    value, estimated by ``n_power_iterations`` of power iteration per training-mode access (buffers
    ``parametrizations.<name>.0._u`` and ``._v``; eval mode uses them as they are). ``dim`` defaults to 1 for
    transposed convolutions, else 0. The power iteration starts from distnn's generator."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
