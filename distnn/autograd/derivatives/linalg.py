"""Graph backwards of the linear-algebra ops: det, slogdet/logdet, inv (inv_ex, matrix_power with a negative
power), solve, solve_triangular, cholesky (cholesky_ex), eigh and eigvalsh.

Each is PyTorch's formula (FunctionsManual.cpp) written with recorded ops: matmul, transposes, elementwise
products with constant masks and the ops themselves (the inverse, the triangular solve, eigh), whose graph
backwards are these, so third derivatives work too:

    det:       g_A = g det(A) A^{-T}                 logabsdet / logdet: g_A = g A^{-T}
    inv:       g_A = -X^T g X^T   (X = A^{-1})      solve (A X = B):    g_B = solve(A^T, g), g_A = -g_B X^T
    cholesky:  P = tril(L^T g), P = (P + tril(P, -1)^T) / 2, g_A = L^{-T} P L^{-1} (two triangular solves)
    eigh:      g_A = V (diag(g_L) + skew(V^T g_V) / E) V^T,  E_ij = L_j - L_i

``det`` of a (nearly) singular matrix, ``|det A| < 100 eps`` as PyTorch's ``linalg_det_backward``, takes
PyTorch's other path instead: the cofactors through a recorded SVD, ``g sign U diag(prod_{j != i} s_j) Vh``
(``sign = det(U) det(Vh)``), which needs no inverse, so its double backward is PyTorch's too (through svd's).
"""
from __future__ import annotations

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional import cat
from distnn.linalg import _common as LC
from distnn.linalg import determinant as DT
from distnn.linalg import inverse as IV
from distnn.linalg.svd import svd as linalg_svd
from distnn.linalg import triangular as TR
from distnn.linalg.cholesky import Cholesky
from distnn.linalg.eigh import Eigh, Eigvalsh

from . import register, saved_input, saved_output


def _inv(a, op):
    """``A^{-1}``, recorded (its graph backward is :func:`_inv_backward`)."""
    return IV.Inv.apply(a, op=f"{op} (double backward: A^-1)")


def _mat(g):
    """A per-matrix scalar gradient ``(*)`` as ``(*, 1, 1)``, to scale matrices."""
    return g.unsqueeze(-1).unsqueeze(-1)


def _triangle_mask(xp, n, dtype, upper, strict=False):
    ones = xp.ones((n, n), dtype=dtype)
    if upper:
        return xp.triu(ones, 1 if strict else 0)
    return xp.tril(ones, -1 if strict else 0)


def _products_of_the_others(s):
    """``prod_{j != i} s_j`` for each ``i`` (last axis), recorded with multiplications only: zeros among the
    ``s_j`` are fine (prod/cumprod's graph backwards divide by their input). Each row of ``M`` holds the
    ``s_j`` with a 1 in place of ``s_i``; its product is taken by halving the columns, ``log2(n)`` steps."""
    xp = get_array_module(s.data)
    n = s.shape[-1]
    eye = xp.eye(n, dtype=s.dtype)
    m = s.unsqueeze(-2) * (1.0 - eye) + eye
    while m.shape[-1] > 1:
        if m.shape[-1] % 2:
            m = cat([m, Tensor(xp.ones(m.shape[:-1] + (1,), dtype=m.dtype))], dim=-1)
        m = m[..., 0::2] * m[..., 1::2]
    return m[..., 0]


def _det_singular(a, g):
    """PyTorch's gradient of det for a singular ``a``: the cofactors through a recorded SVD."""
    xp = get_array_module(a.data)
    u, s, vh = linalg_svd(a, full_matrices=False)
    sign = xp.linalg.det(u.data) * xp.linalg.det(vh.data)  # (+-1; PyTorch's gradient through it vanishes)
    return (u * (g * Tensor(sign)).unsqueeze(-1).unsqueeze(-1) * _products_of_the_others(s).unsqueeze(-2)) @ vh


@register(DT.Det)
def _det(node, g):
    a = saved_input(node, 0, node.a)
    if a.shape[-1] == 0:
        return (a * 0.0,)
    xp = get_array_module(g.data)
    det = saved_output(node, node.out)
    singular = xp.abs(node.out) < 100 * xp.finfo(node.out.dtype).eps  # (PyTorch's test, per matrix)
    if not bool(xp.any(singular)):
        return (_mat(g * det) * _inv(a, "linalg.det").mT,)
    if bool(xp.all(singular)):
        return (_det_singular(a, g),)
    # a batch of both kinds: each formula on its own matrices (A^{-1} of the singular ones would raise),
    # put back in place by a recorded gather (PyTorch's masked_fmap)
    n = a.shape[-1]
    flat = singular.reshape(-1)
    idx_s, idx_r = xp.nonzero(flat)[0], xp.nonzero(~flat)[0]
    a2, g1, d1 = a.reshape(-1, n, n), g.reshape(-1), det.reshape(-1)
    parts = cat([_det_singular(a2[idx_s], g1[idx_s]),
                 _mat(g1[idx_r] * d1[idx_r]) * _inv(a2[idx_r], "linalg.det").mT], dim=0)
    order = xp.argsort(xp.concatenate([idx_s, idx_r]))
    return (parts[order].reshape(a.shape),)


@register(DT.LogAbsDet)
def _logabsdet(node, g):
    a = saved_input(node, 0, node.a)
    if node.negative is not None:  # (logdet: a negative determinant's NaN passes no gradient, as the first pass)
        xp = get_array_module(g.data)
        g = g * (~xp.asarray(node.negative)).astype(g.dtype)
    return (_mat(g) * _inv(a, "linalg.slogdet").mT,)


@register(IV.Inv)
def _inv_backward(node, g):
    xt = saved_output(node, node.out).mT
    return (-(xt @ g @ xt),)


@register(IV.Solve)
def _solve(node, g):
    a = saved_input(node, 0, node.a_in)
    gm = g.unsqueeze(-1) if node.vector else g
    gb = IV.Solve.apply(a.mT, gm)
    ga = None
    if node.needs_input_grad[0]:
        x = saved_output(node, node.x[..., 0] if node.vector else node.x)
        ga = -(gb @ (x.unsqueeze(-1) if node.vector else x).mT)
    return ga, (gb.squeeze(-1) if node.vector else gb)


@register(TR.SolveTriangular)
def _solve_triangular(node, g):
    a = saved_input(node, 0, node.a)
    upper, unit = node.upper, node.unit
    # (the triangle of A^T on the other side is T^T: g_B solves the transposed system)
    gb = TR.SolveTriangular.apply(a.mT, g, upper=not upper, left=node.left, unit=unit)
    ga = None
    if node.needs_input_grad[0]:
        x = saved_output(node, node.x)
        ga = -(gb @ x.mT) if node.left else -(x.mT @ gb)
        xp = get_array_module(g.data)
        ga = ga * _triangle_mask(xp, a.shape[-1], ga.dtype, upper, strict=unit)  # (only the triangle was read)
    return ga, (gb if node.needs_input_grad[1] else None)


@register(Cholesky)
def _cholesky(node, g):
    xp = get_array_module(g.data)
    out = saved_output(node, LC.mT(node.low) if node.upper else node.low)
    low = out.mT if node.upper else out
    if node.upper:
        g = g.mT
    n = low.shape[-1]
    p = (low.mT @ g) * _triangle_mask(xp, n, g.dtype, upper=False)
    p = 0.5 * (p + (p * _triangle_mask(xp, n, g.dtype, upper=False, strict=True)).mT)
    p = TR.SolveTriangular.apply(low.mT, p, upper=True, left=True)
    return (TR.SolveTriangular.apply(low, p, upper=False, left=False),)


def _eigh_grad(w, v, gw, gv):
    """PyTorch's ``linalg_eig_backward`` for a symmetric matrix, on recorded Tensors (``gv`` None: values only)."""
    if gv is None:  # V diag(g_L) V^T: finite where eigenvalues repeat
        return (v * gw.unsqueeze(-2)) @ v.mT
    xp = get_array_module(w.data)
    eye = xp.eye(w.shape[-1], dtype=w.dtype)
    vtgv = v.mT @ gv
    e = w.unsqueeze(-2) - w.unsqueeze(-1) + eye  # (L_j - L_i; 1 on the diagonal, which is replaced by g_L)
    inner = (0.5 * (vtgv - vtgv.mT)) / e * (1.0 - eye) + gw.unsqueeze(-1) * eye
    return v @ inner @ v.mT


@register(Eigh)
def _eigh(node, g):
    xp = get_array_module(g.data)
    batch = node.w.shape[:-1]
    out = saved_output(node, LC.pack(xp, node.w, node.v, batch=batch))
    w, v = LC.unpack(out, node.shapes)
    gw, gv = LC.unpack(g, node.shapes)
    return (_eigh_grad(w, v, gw, None if not bool(xp.any(gv.data)) else gv),)


@register(Eigvalsh)
def _eigvalsh(node, g):
    # (the eigenvectors, which the gradient reads, depend on A too: they are recomputed recorded, by eigh)
    a = saved_input(node, 0, node.a)
    n = a.shape[-1]
    batch = tuple(a.shape[:-2])
    w, v = LC.unpack(Eigh.apply(a, uplo=node.uplo), [batch + (n,), batch + (n, n)])
    return (_eigh_grad(w, v, g, None),)
