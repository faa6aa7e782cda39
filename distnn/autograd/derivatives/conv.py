"""Graph backwards of the convolutions: conv1d/conv2d (:class:`Conv2d`), conv3d, conv_transpose1d/2d.

Without its bias a convolution is bilinear, ``y = B(x, w)``, and so are its two gradients:
``gx = Bx^T(g; w)`` and ``gw = Bw^T(x; g)``. The three maps differentiate into each other, as PyTorch's
``convolution_backward`` derivative does:

    d<h, B(x, w)>      / dx = Bx^T(h; w)     / dw = Bw^T(x; h)
    d<h, Bx^T(g; w)>   / dg = B(h, w)        / dw = Bw^T(h; g)
    d<h, Bw^T(x; g)>   / dx = Bx^T(g; h)     / dg = B(x, h)

:class:`Bilinear` is one of the three as an op (``kind``: "fwd", "vx", "vw"), computed by a fresh node of the
convolution's own class on arrays (its forward, then its backward), so groups, stride, padding, dilation and
output padding are the op's own code; its graph backward is made of the other two, to any order. The node
keeps what its backward reads (the weight, the input's columns), not the tensors: the weight is reshaped
back, the input put back together from its columns (:func:`_uncols`; a cell no window reads is left 0,
which no map of the three can see).
"""
from __future__ import annotations

import itertools

from distnn.autograd.function import Function
from distnn.backend import get_array_module
from distnn.functional.conv import Conv2d
from distnn.functional.conv3d import Conv3d
from distnn.functional.conv_transpose import ConvTranspose2d

from . import register, saved_input


def _run(spec, kind, a, b):
    """``kind`` of the convolution ``spec`` = (class, params, x shape, w shape) on arrays ``a``, ``b``."""
    cls, params, xshape, wshape = spec
    xp = get_array_module(a)
    fn = object.__new__(cls)
    if kind == "fwd":
        fn.needs_input_grad = (False, False, False)
        return fn.forward(a, b, None, **params)
    if kind == "vx":  # a = g, b = w: the input's value does not matter (zeros of its shape)
        fn.needs_input_grad = (True, False, False)
        fn.forward(xp.zeros(xshape, dtype=a.dtype), b, None, **params)
        return fn.backward(a)[0]
    fn.needs_input_grad = (False, True, False)  # "vw": a = x, b = g
    fn.forward(a, xp.zeros(wshape, dtype=a.dtype), None, **params)
    return fn.backward(b)[1]


class Bilinear(Function):
    """One of a convolution's three bilinear maps as an op (module docstring): inputs (x, w) for "fwd",
    (g, w) for "vx", (x, g) for "vw"."""

    saves_tensors = False

    def forward(self, a, b, spec, kind):
        self.a, self.b, self.spec, self.kind = a, b, spec, kind
        return _run(spec, kind, a, b)

    def backward(self, h):
        na, nb = self.needs_input_grad
        ka, kb = _PARTNERS[self.kind]
        ga = _run(self.spec, ka[0], *_args(ka, self.a, self.b, h)) if na else None
        gb = _run(self.spec, kb[0], *_args(kb, self.a, self.b, h)) if nb else None
        return ga, gb


# Per kind: (map, first argument, second argument) of the gradient of input a and of input b, where "h" is
# the output's gradient and "a", "b" the inputs (the table of the module docstring).
_PARTNERS = {
    "fwd": (("vx", "h", "b"), ("vw", "a", "h")),
    "vx": (("fwd", "h", "b"), ("vw", "h", "a")),
    "vw": (("vx", "b", "h"), ("fwd", "a", "h")),
}


def _args(entry, a, b, h):
    pick = {"a": a, "b": b, "h": h}
    return pick[entry[1]], pick[entry[2]]


@register(Bilinear)
def _bilinear(node, h):
    na, nb = node.needs_input_grad
    a, b = saved_input(node, 0, node.a), saved_input(node, 1, node.b)
    out = []
    for need, entry in zip((na, nb), _PARTNERS[node.kind]):
        out.append(Bilinear.apply(*_args(entry, a, b, h), spec=node.spec, kind=entry[0]) if need else None)
    return tuple(out)


def _uncols(xp, cols, xshape, kernel, stride, padding, dilation, out):
    """The input (N, C, *spatial) back from its im2col columns (N, C * prod(kernel), prod(out))."""
    N, C = xshape[:2]
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(xshape[2:], padding))
    xpad = xp.zeros((N, C) + padded, dtype=cols.dtype)
    c = cols.reshape((N, C) + tuple(kernel) + tuple(out))
    for offs in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(offs, dilation, stride, out))
        xpad[(slice(None), slice(None)) + window] = c[(slice(None), slice(None)) + offs]
    inside = tuple(slice(lo, lo + n) for n, (lo, _) in zip(xshape[2:], padding))
    return xpad[(slice(None), slice(None)) + inside]


def _conv_graph(node, g, spec, x_of, w_of, bias_axes):
    need = node.needs_input_grad
    gx = gw = gb = None
    if need[0]:
        gx = Bilinear.apply(g, saved_input(node, 1, w_of()), spec=spec, kind="vx")
    if need[1]:
        gw = Bilinear.apply(saved_input(node, 0, x_of()), g, spec=spec, kind="vw")
    if len(need) > 2 and need[2]:
        gb = g.sum(dim=bias_axes)
    return gx, gw, gb


@register(Conv2d)
def _conv2d(node, g):
    N, C, H, W, O, Cg, kh, kw, Ho, Wo, sh, sw, dh, dw, pt, pl, Hp, Wp, G = node.geom
    padding = ((pt, Hp - H - pt), (pl, Wp - W - pl))
    params = dict(stride=(sh, sw), padding=padding, dilation=(dh, dw), groups=G)
    spec = (Conv2d, params, (N, C, H, W), node.weight_shape)
    xp = get_array_module(g.data)
    return _conv_graph(node, g, spec,
                       lambda: _uncols(xp, node.cols, (N, C, H, W), (kh, kw), (sh, sw), padding, (dh, dw), (Ho, Wo)),
                       lambda: node.w2.reshape(node.weight_shape), (0, 2, 3))


@register(Conv3d)
def _conv3d(node, g):
    xshape, wshape, out, stride, padding, dilation, G = node.geom
    spec = (Conv3d, dict(stride=stride, padding=padding, dilation=dilation, groups=G), xshape, wshape)
    xp = get_array_module(g.data)
    return _conv_graph(node, g, spec,
                       lambda: _uncols(xp, node.cols, xshape, wshape[2:], stride, padding, dilation, out),
                       lambda: node.w2.reshape(wshape), (0, 2, 3, 4))


@register(ConvTranspose2d)
def _conv_transpose2d(node, g):
    N, C, H, W, O, kh, kw, stride, padding, dilation, G = node.geom
    # output_padding is not kept: the output's size gives it back
    full = ((H - 1) * stride[0] + dilation[0] * (kh - 1) + 1 - 2 * padding[0],
            (W - 1) * stride[1] + dilation[1] * (kw - 1) + 1 - 2 * padding[1])
    output_padding = (g.shape[2] - full[0], g.shape[3] - full[1])
    params = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=G)
    spec = (ConvTranspose2d, params, (N, C, H, W), node.weight_shape)
    return _conv_graph(node, g, spec, lambda: node.x4.reshape(N, C, H, W),
                       lambda: node.w2.reshape(node.weight_shape), (0, 2, 3))
