"""Double backward (``autograd.grad(..., create_graph=True)`` then a gradient of the gradient) through the views that
are not element for element of their base, plain and changed in place while recording, against torch (the oracle):
``real``/``imag``/``view_as_real`` of a complex tensor, ``view_as_complex`` of a real one, an ``expand`` of a 0-d
tensor, ``as_strided`` beyond its input's elements. The first and second gradients compared (rtol 1e-12,
complex128/float64)."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

Z = np.array([[0.3 + 0.8j, -1.1 + 0.4j, 0.7 - 0.2j], [1.2 - 0.9j, -0.5 + 1.3j, 0.6 + 0.1j]])
R = np.arange(1.0, 9.0).reshape(4, 2) / 5.0


def _np(L, t):
    return np.array(t.detach().numpy() if L is torch else t.detach().data)


def _outcome(L, program):
    try:
        return program(L)
    except RuntimeError as e:  # (torch's version check: distnn must refuse too; its message is its own)
        return RuntimeError


def _both(program):
    ref, ours = _outcome(torch, program), _outcome(distnn, program)
    if ref is RuntimeError or ours is RuntimeError:
        assert ours is ref
        return
    assert len(ours) == len(ref)
    for want, got in zip(ref, ours):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def _second(L, loss, x, w):
    """d loss / d x (create_graph), then d (sum of |that|^2 weighted) / d (x, w)."""
    (gx,) = L.autograd.grad(loss, [x], create_graph=True)
    weights = L.tensor(np.linspace(0.5, 1.5, gx.numel()).reshape(tuple(gx.shape)), dtype=L.float64)
    g2 = (((gx * gx.conj()).real if gx.is_complex() else gx * gx) * weights).sum()
    hx, hw = L.autograd.grad(g2, [x, w], allow_unused=True)
    return [_np(L, gx)] + [_np(L, h) if h is not None else np.zeros(()) for h in (hx, hw)]


COMPLEX_VIEWS = {
    "real": lambda L, b: b.real,
    "imag": lambda L, b: b.imag,
    "view_as_real": lambda L, b: L.view_as_real(b),
    "imag-T": lambda L, b: b.imag.t(),
}


@pytest.mark.parametrize("change", ["none", "view-mul-w", "view-setitem", "base-mul"])
@pytest.mark.parametrize("view", list(COMPLEX_VIEWS))
def test_parts_of_a_complex_tensor_twice_differentiated_as_torch(view, change):
    def program(L):
        z = L.tensor(Z, dtype=L.complex128, requires_grad=True)
        w = L.tensor(0.75, dtype=L.float64, requires_grad=True)
        b = z * z * (1.5 - 0.5j)
        v = COMPLEX_VIEWS[view](L, b)
        if change == "view-mul-w":
            v.mul_(w * w)
        elif change == "view-setitem":
            v[0] = w * v[0] * v[0]
        elif change == "base-mul":
            b.mul_(z * w)
        loss = (b * b.conj()).real.sum() + (v * v * v).sum() * 0.5
        return _second(L, loss, z, w)

    _both(program)


@pytest.mark.parametrize("change", ["none", "view-mul-w", "view-setitem", "base-mul"])
def test_view_as_complex_twice_differentiated_as_torch(change):
    def program(L):
        x = L.tensor(R, dtype=L.float64, requires_grad=True)
        w = L.tensor(np.array([0.5, 2.0]), dtype=L.float64, requires_grad=True)
        b = x * x
        c = L.view_as_complex(b)
        if change == "view-mul-w":
            c.mul_(L.view_as_complex(w * w))
        elif change == "view-setitem":
            c[1] = L.view_as_complex(w * x[0])
        elif change == "base-mul":
            b.mul_(w * x)
        loss = (c * c * c.conj()).real.sum() + (b * b).sum()
        return _second(L, loss, x, w)

    _both(program)


@pytest.mark.parametrize("change", ["none", "base-mul", "sibling-mul"])
@pytest.mark.parametrize("shape", [(3,), (2, 3)], ids=["3", "2x3"])
def test_expand_of_a_zero_dim_tensor_twice_differentiated_as_torch(shape, change):
    def program(L):
        x = L.tensor(1.25, dtype=L.float64, requires_grad=True)
        w = L.tensor(0.5, dtype=L.float64, requires_grad=True)
        b = x * x
        e = b.expand(*shape)
        if change == "base-mul":
            b.mul_(w * x)
        elif change == "sibling-mul":
            b.unsqueeze(0).mul_(w * w)
        loss = (e * e * e).sum() + b * b
        return _second(L, loss, x, w)

    _both(program)


STRIDED = {"before": ((2,), (1,), 0), "after": ((2,), (1,), 4), "over": ((3,), (2,), 0), "2d": ((2, 2), (1, 2), 1)}


def _strided_program(geometry, change, x0=np.arange(1.0, 7.0) / 3.0, w0=0.75, second=True):
    def program(L):
        x = L.tensor(x0, dtype=L.float64, requires_grad=True)
        w = L.tensor(w0, dtype=L.float64, requires_grad=True)
        b = x * x
        s = b[1:4]
        v = s.as_strided(*STRIDED[geometry])
        if change == "strided-mul":
            v.mul_(w * x[0])
        elif change == "input-mul":
            s.mul_(w * w)
        elif change == "root-mul":
            b.mul_(w * x)
        loss = (b * b * b).sum() + (v * v * v).sum() * 0.5 + (s * s).sum()
        if second:
            return _second(L, loss, x, w)
        (gx,) = L.autograd.grad(loss, [x], create_graph=True)
        return float(((gx * gx) * L.tensor(np.linspace(0.5, 1.5, 6), dtype=L.float64)).sum())

    return program


@pytest.mark.parametrize("change", ["none", "input-mul", "root-mul"])
@pytest.mark.parametrize("geometry", list(STRIDED))
def test_as_strided_beyond_its_input_twice_differentiated_as_torch(geometry, change):
    _both(_strided_program(geometry, change))


@pytest.mark.parametrize("geometry", list(STRIDED))
def test_as_strided_view_changed_in_place_twice_differentiated_as_finite_differences(geometry):
    """The as_strided view itself changed in place: the first gradient as torch's; the second as the central
    differences of the first (torch's second gradient of x[0] is off there, by 1e-4 relative and more: its own
    double backward through the CopySlices of an as_strided view)."""
    x0, eps = np.arange(1.0, 7.0) / 3.0, 1e-6
    ref, ours = _strided_program(geometry, "strided-mul")(torch), _strided_program(geometry, "strided-mul")(distnn)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-12)
    differences = [(_strided_program(geometry, "strided-mul", x0 + eps * e, second=False)(distnn)
                    - _strided_program(geometry, "strided-mul", x0 - eps * e, second=False)(distnn)) / (2 * eps)
                   for e in np.eye(6)]
    np.testing.assert_allclose(ours[1], differences, rtol=1e-6, atol=1e-6)
    dw = (_strided_program(geometry, "strided-mul", w0=0.75 + eps, second=False)(distnn)
          - _strided_program(geometry, "strided-mul", w0=0.75 - eps, second=False)(distnn)) / (2 * eps)
    np.testing.assert_allclose(ours[2], dw, rtol=1e-6, atol=1e-6)
