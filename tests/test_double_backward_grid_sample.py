"""Double backward (``create_graph=True``) of ``F.grid_sample``: 2-D nearest, bilinear and bicubic, 3-D nearest
and trilinear, over the padding modes and align_corners. Second derivatives (and third) with respect to the
input and the grid against PyTorch's (GridSampler2DBackwardBackward0 / 3D), float64 tight and float32 loose,
and gradgradcheck. Each was refused by name before."""
import itertools

import numpy as np
import pytest

import distnn.functional as F
from distnn import Tensor, autograd
from test_double_backward import _compare, _run, assert_second_derivatives_match

RNG = np.random.default_rng(29)
X4 = RNG.standard_normal((2, 3, 5, 6))
X5 = RNG.standard_normal((2, 2, 3, 4, 5))
# grids reaching past the borders (further for reflection, which folds them back more than once)
NEAR = {"zeros": RNG.uniform(-1.3, 1.3, (2, 4, 3, 2)), "border": RNG.uniform(-1.3, 1.3, (2, 4, 3, 2)),
        "reflection": RNG.uniform(-3.2, 3.2, (2, 4, 3, 2))}
NEAR5 = {"zeros": RNG.uniform(-1.3, 1.3, (2, 2, 3, 2, 3)), "border": RNG.uniform(-1.3, 1.3, (2, 2, 3, 2, 3)),
         "reflection": RNG.uniform(-3.2, 3.2, (2, 2, 3, 2, 3))}
PADDINGS = ("zeros", "border", "reflection")


def _case(mode, padding, align, x, grid):
    # the input and the sample go through nonlinear functions, so every second derivative is nonzero
    def fn(F, X, L, a, g):
        return F.grid_sample(a.tanh(), g * 1.0, mode=mode, padding_mode=padding, align_corners=align) ** 2
    name = f"{mode}_{x.ndim}d_{padding}_{'aligned' if align else 'unaligned'}"
    return name, fn, (x, grid)


CASES = ([_case(m, p, a, X4, NEAR[p]) for m, p, a in itertools.product(("bilinear", "nearest", "bicubic"), PADDINGS,
                                                                       (False, True))]
         + [_case(m, p, a, X5, NEAR5[p]) for m, p, a in itertools.product(("bilinear", "nearest"), PADDINGS,
                                                                          (False, True))]
         + [("bilinear_grid_through_tanh",
             lambda F, X, L, a, g: F.grid_sample(a * a, (g * 1.5).tanh(), align_corners=False) * a.mean(),
             (X4, NEAR["zeros"])),
            ("affine_grid_then_bicubic",
             lambda F, X, L, a, t: F.grid_sample(a, F.affine_grid(t, (2, 3, 4, 5), align_corners=False),
                                                 mode="bicubic", padding_mode="border", align_corners=False).tanh(),
             (X4, RNG.standard_normal((2, 2, 3)) * 0.7))])


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_torch(torch, name, fn, arrays):
    assert_second_derivatives_match(torch, fn, arrays, f64=(1e-10, 1e-11), f32=(2e-3, 5e-4))


@pytest.mark.parametrize("name", ["bilinear_4d_zeros_unaligned", "bilinear_4d_reflection_aligned",
                                  "nearest_4d_border_unaligned", "bicubic_4d_reflection_unaligned",
                                  "bicubic_4d_zeros_aligned", "bilinear_5d_border_aligned",
                                  "bilinear_5d_reflection_unaligned", "bilinear_grid_through_tanh"])
def test_third_derivatives_match_torch(torch, name):
    _, fn, arrays = next(c for c in CASES if c[0] == name)
    _compare(_run("distnn", torch, fn, arrays, np.float64, order=3),
             _run("torch", torch, fn, arrays, np.float64, order=3), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode,padding,k", [("bilinear", "zeros", 2), ("bilinear", "reflection", 2),
                                            ("bicubic", "border", 2), ("bicubic", "zeros", 2),
                                            ("bilinear", "border", 3), ("nearest", "zeros", 2)])
def test_gradgradcheck(mode, padding, k):
    rng = np.random.default_rng(5)
    x = Tensor(rng.standard_normal((1, 2) + (3,) * k), requires_grad=True)
    grid = Tensor(rng.uniform(-1.2, 1.2, (1, 2, 2, k) if k == 2 else (1, 2, 1, 2, 3)), requires_grad=True)
    fn = lambda a, g: F.grid_sample(a, g, mode=mode, padding_mode=padding, align_corners=False)  # noqa: E731
    assert autograd.gradcheck(fn, (x, grid)) is True
    assert autograd.gradgradcheck(fn, (x, grid)) is True


def test_only_the_grid_or_only_the_input_needs_a_gradient(torch):
    """A gradient penalty through grid_sample with only one input requiring grad: the other is a constant."""
    x, grid = X4, NEAR["border"]
    for which in (0, 1):
        got = []
        for lib in ("distnn", "torch"):
            T = (lambda a, r: Tensor(a, requires_grad=r)) if lib == "distnn" else \
                (lambda a, r: torch.tensor(a, requires_grad=r))
            Fm, grad = (F, autograd.grad) if lib == "distnn" else (torch.nn.functional, torch.autograd.grad)
            ins = [T(x, which == 0), T(grid, which == 1)]
            y = (Fm.grid_sample(ins[0], ins[1], mode="bicubic", padding_mode="border", align_corners=True) ** 2).sum()
            d, = grad(y, ins[which], create_graph=True)
            h, = grad((d.tanh() * d).sum(), ins[which])
            got.append([np.asarray(d.data if lib == "distnn" else d.detach().numpy()),
                        np.asarray(h.data if lib == "distnn" else h.numpy())])
        for a, b in zip(*got):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11)
