"""Graph backwards of the other linear-algebra ops: svd and svdvals (so matrix_norm 'nuc', 2 and -2 too), pinv
(so lstsq too), qr, matrix_exp, linalg.cross, vander, linalg.diagonal and lobpcg.

Each is PyTorch's formula (FunctionsManual.cpp) written with recorded ops (matmul, transposes, products with
constant masks, triangular solves and the ops themselves), whose graph backwards are these, so third
derivatives work too:

    svd:         J = (skew(U^T g_U) S + S skew(V^T g_V)) / E + diag(g_S),  E_ij = s_j^2 - s_i^2 (diag 1)
                 m > n: g_A = (U J + (I - U U^T) g_U S^{-1}) Vh;  m < n: g_A = U (J Vh + S^{-1} g_Vh (I - V Vh))
    svdvals:     g_A = U diag(g) Vh, with U and Vh recorded as an svd of A (they depend on A too)
    pinv:        PyTorch's pinv_backward, on A and A^+
    qr:          M = R g_R^T - g_Q^T Q,  g_A = (g_Q + Q copyltu(M)) R^{-T}  (wide: on the first m columns)
    matrix_exp:  g_A = the upper right block of exp([[A^T, g], [0, A^T]]), a recorded matrix_exp of a 2n block
    cross:       g_a = b x g,  g_b = g x a  (bilinear: recorded crosses)
    vander:      g_x = sum_j j x^(j-1) g_j  (x^(j-1) read from the recorded output)
    diagonal:    g_A = zeros with g on the diagonal (linear in g: that op's gradient is the diagonal again)
    lobpcg:      PyTorch's symeig_backward (linalg/lobpcg.py's symeig_grad, written with Tensor ops)

As in PyTorch, singular vectors need distinct singular values (and, for U and Vh, a loss that does not depend
on their signs); ``qr(mode='r')`` and ``qr(mode='complete')`` with more rows than columns have no gradient.
"""
from __future__ import annotations

from types import SimpleNamespace

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional import cat
from distnn.linalg import _common as LC
from distnn.linalg import triangular as TR
from distnn.linalg.lobpcg import LOBPCGFunction, symeig_grad
from distnn.linalg.matrix_exp import MatrixExp
from distnn.linalg.pinv import Pinv
from distnn.linalg.products import Cross, Diagonal, Vander
from distnn.linalg.qr import QR, RFactor
from distnn.linalg.svd import SVD, SVDVals

from . import recorded, register, saved_input, saved_output


def _zero(xp, g):
    """Whether the gradient Tensor ``g`` is all zeros: a factor no loss reads (PyTorch's undefined gradient),
    left out so that 0 / 0 stays out of the formula, as in the first-order backward."""
    return not bool(xp.any(g.data))


def _svd_grad(xp, u, s, vh, gu, gs, gvh):
    """PyTorch's ``svd_backward`` on the reduced factors, recorded (``gu``/``gvh`` None: no gradient)."""
    m, n = u.shape[-2], vh.shape[-1]
    if gu is None and gvh is None:
        return (u * gs.unsqueeze(-2)) @ vh
    s2 = s * s
    e = s2.unsqueeze(-2) - s2.unsqueeze(-1) + xp.eye(s.shape[-1], dtype=s.dtype)  # (the diagonal: 1)
    j = None
    if gu is not None:
        utgu = u.mT @ gu
        j = (utgu - utgu.mT) * s.unsqueeze(-2)
    if gvh is not None:
        vtgv = vh @ gvh.mT
        term = s.unsqueeze(-1) * (vtgv - vtgv.mT)
        j = term if j is None else j + term
    j = j / e + gs.diag_embed()  # (the skew parts are 0 on the diagonal, which is g_S's)
    if m > n and gu is not None:
        gu_sinv = gu / s.unsqueeze(-2)
        return (u @ j + gu_sinv - u @ (u.mT @ gu_sinv)) @ vh
    if m < n and gvh is not None:
        sinv_gvh = gvh / s.unsqueeze(-1)
        return u @ (j @ vh + sinv_gvh - (sinv_gvh @ vh.mT) @ vh)
    return u @ j @ vh


@register(SVD)
def _svd(node, g):
    xp = get_array_module(g.data)
    out = saved_output(node, LC.pack(xp, node.u, node.s, node.vh, batch=node.s.shape[:-1]))
    u, s, vh = LC.unpack(out, node.shapes)
    gu, gs, gvh = LC.unpack(g, node.shapes)
    k = s.shape[-1]
    if u.shape[-1] != k:  # (full_matrices: the first k columns of U and rows of Vh, as PyTorch)
        u, gu = u[..., :k], gu[..., :k]
    if vh.shape[-2] != k:
        vh, gvh = vh[..., :k, :], gvh[..., :k, :]
    gu = None if _zero(xp, gu) else gu
    gvh = None if _zero(xp, gvh) else gvh
    return (_svd_grad(xp, u, s, vh, gu, gs, gvh),)


@register(SVDVals)
def _svdvals(node, g):
    # (U and Vh, which the gradient reads, depend on A too: the SVD the forward computed becomes a recorded
    # svd node on A, whose graph backward is _svd)
    xp = get_array_module(g.data)
    u, s, vh = node.u, node.s, node.vh
    shapes = (u.shape, s.shape, vh.shape)
    packed = recorded(SVD, node.parents, node.input_shapes, LC.pack(xp, u, s, vh, batch=s.shape[:-1]),
                      u=u, s=s, vh=vh)
    packed._node.shapes = shapes  # (``shapes`` is recorded()'s own argument: the pieces' shapes set here)
    u, _, vh = LC.unpack(packed, shapes)
    return ((u * g.unsqueeze(-2)) @ vh,)


@register(Pinv)
def _pinv(node, g):
    a = saved_input(node, 0, node.a)
    p = saved_output(node, node.out)
    pt, gt = p.mT, g.mT
    m, n = a.shape[-2:]
    if m <= n:
        k = gt @ p
        kpt = k @ pt
        return (-(p @ k).mT + kpt - (a @ p) @ kpt + (pt @ p) @ (gt - k @ a),)
    k = p @ gt
    ptk = pt @ k
    return (-(k @ p).mT + (gt - a @ k) @ p @ pt + ptk - ptk @ p @ a,)


def _qr_square(xp, q, r, gq, gr):
    """The gradient for ``m >= n`` (``r`` square, upper triangular), recorded."""
    n = r.shape[-1]
    m = r @ gr.mT - gq.mT @ q
    low = xp.tril(xp.ones((n, n), dtype=m.dtype))
    strict = xp.tril(xp.ones((n, n), dtype=m.dtype), -1)
    copyltu = m * low + (m * strict).mT
    x = gq + q @ copyltu
    return TR.SolveTriangular.apply(r.mT, x, upper=False, left=False)  # (X R^{-T}: G R^T = X)


@register(QR)
def _qr(node, g):
    xp = get_array_module(g.data)
    out = saved_output(node, LC.pack(xp, node.q, node.r, batch=node.q.shape[:-2]))
    q, r = LC.unpack(out, node.shapes)
    gq, gr = LC.unpack(g, node.shapes)
    m, n = q.shape[-2], r.shape[-1]
    if node.mode == "complete" and m > n:
        raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
    if m >= n:
        return (_qr_square(xp, q, r, gq, gr),)
    # A = [X | Y], R = [U | V]: Y = Q V, so g_Y = Q g_V and X sees g_Q + Y g_V^T
    right = node.a_right
    # (A's array is not kept, only its columns past m: the first m are zeros here, and only sliced off)
    full = xp.concatenate([xp.zeros(right.shape[:-1] + (m,), dtype=right.dtype), right], axis=-1)
    y = saved_input(node, 0, full)[..., m:]
    gu, gv = gr[..., :m], gr[..., m:]
    gx = _qr_square(xp, q, r[..., :m], gq + y @ gv.mT, gu)
    return (cat([gx, q @ gv], dim=-1),)


@register(RFactor)
def _qr_r(node, g):
    return node.backward(g.data)  # (raises PyTorch's error: Q is not computed with mode='r')


@register(MatrixExp)
def _matrix_exp(node, g):
    xp = get_array_module(g.data)
    at = saved_input(node, 0, node.a).mT
    zeros = Tensor._make(xp.zeros(tuple(at.shape), dtype=g.dtype), None)
    block = cat([cat([at, g], dim=-1), cat([zeros, at], dim=-1)], dim=-2)
    n = at.shape[-1]
    return (MatrixExp.apply(block)[..., :n, n:],)


@register(Cross)
def _cross(node, g):
    a = saved_input(node, 0, node.a)
    b = saved_input(node, 1, node.b)
    ga = Cross.apply(b, g, axis=node.axis) if node.needs_input_grad[0] else None
    gb = Cross.apply(g, a, axis=node.axis) if node.needs_input_grad[1] else None
    return ga, gb


@register(Vander)
def _vander(node, g):
    xp = get_array_module(g.data)
    out = saved_output(node, node.out)
    j = xp.arange(1, out.shape[-1], dtype=out.dtype)
    return ((g[..., 1:] * j * out[..., :-1]).sum(-1),)



class _DiagonalGrad(Function):
    """``g`` on the diagonal of zeros of A's shape (Diagonal's first-order backward, as an op): its gradient is
    the diagonal again, so the pair differentiates to any order."""

    saves_tensors = False

    def forward(self, g, shape=None, args=None):
        self.args = args  # (Diagonal's own backward, run on A's shape and diagonal's arguments)
        return Diagonal.backward(SimpleNamespace(shape=shape, args=args), g)[0]

    def backward(self, gg):
        return (get_array_module(gg).diagonal(gg, *self.args).copy(),)


@register(Diagonal)
def _diagonal(node, g):
    return (_DiagonalGrad.apply(g, shape=node.shape, args=node.args),)


@register(_DiagonalGrad)
def _diagonal_grad(node, gg):
    offset, dim1, dim2 = node.args
    return (Diagonal.apply(gg, offset=offset, dim1=dim1, dim2=dim2),)


@register(LOBPCGFunction)
def _lobpcg(node, g):
    if node.b is not None:
        raise ValueError("lobpcg.backward does not support backward with B != I yet.")
    xp = get_array_module(g.data)
    a = saved_input(node, 0, node.a)
    e, x = LC.unpack(saved_output(node, LC.pack(xp, node.e, node.x, batch=node.a.shape[:-2])), node.shapes)
    ge, gx = LC.unpack(g, node.shapes)
    return (symeig_grad(ge, gx, a, e, x, node.largest),)
