"""Double backward (``create_graph=True``) of the distances and of logcumsumexp: F.pairwise_distance and
F.normalize with p != 2 (p = 1, 1.5, 3, 0.5, inf, 0), F.cosine_similarity
(broadcast inputs too) and logcumsumexp (gradients of both signs). Second derivatives (and third) against
PyTorch's, float64 tight and float32 loose, plus gradgradcheck. Each was refused by name before.

cdist and pdist stay refused, as in PyTorch 2.13 (whose _cdist_backward and _pdist_backward have no
derivative): checked here."""
import numpy as np
import pytest

import distnn
import distnn.functional as Fd
from distnn import Tensor, autograd
from test_double_backward import _compare, _run, assert_second_derivatives_match

R = np.random.default_rng(43)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _n(*shape):
    return R.standard_normal(shape)


A = _n(4, 5)
B = _n(4, 5)
ROW = _n(1, 5)
X3 = _n(2, 3, 4)

# (name, f(F, X, L, *inputs) -> tensor, inputs)
CASES = [
    ("pairwise_distance_p1", lambda F, X, L, a, b: F.pairwise_distance(a, b, p=1.0) * a.sum(), (A, B)),
    ("pairwise_distance_p1_5", lambda F, X, L, a, b: F.pairwise_distance(a, b, p=1.5) ** 2, (A, B)),
    ("pairwise_distance_p3_keepdim", lambda F, X, L, a, b: F.pairwise_distance(a, b, p=3.0, keepdim=True) * a,
     (A, B)),
    ("pairwise_distance_p0_5", lambda F, X, L, a, b: F.pairwise_distance(a, b, p=0.5) ** 2, (A, B)),
    ("pairwise_distance_inf", lambda F, X, L, a, b: F.pairwise_distance(a, b, p=float("inf")) * b.sum(), (A, B)),
    ("normalize_p1", lambda F, X, L, a: F.normalize(a, p=1.0) ** 2, (A,)),
    ("normalize_p3_dim0", lambda F, X, L, a: F.normalize(a, p=3.0, dim=0) * a, (A,)),
    ("normalize_p0_5", lambda F, X, L, a: F.normalize(a, p=0.5, dim=2).tanh(), (X3,)),
    ("normalize_inf", lambda F, X, L, a: F.normalize(a, p=float("inf")) ** 3, (A,)),
    ("normalize_p0", lambda F, X, L, a: F.normalize(a, p=0.0) ** 3, (A,)),
    ("cosine_similarity", lambda F, X, L, a, b: F.cosine_similarity(a, b) ** 2, (A, B)),
    ("cosine_similarity_broadcast_dim0", lambda F, X, L, a, b: F.cosine_similarity(a, b, dim=1) * a[:, 0],
     (A, ROW)),
    ("logcumsumexp", lambda F, X, L, a: a.logcumsumexp(1) ** 2, (A,)),
    ("logcumsumexp_dim0_3d", lambda F, X, L, a: a.logcumsumexp(0) * a, (X3,)),
]


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_torch(torch, name, fn, arrays):
    assert_second_derivatives_match(torch, fn, arrays, f64=(1e-9, 1e-10), f32=(2e-3, 2e-3))


@pytest.mark.parametrize("name", ["pairwise_distance_p1_5", "pairwise_distance_p0_5", "normalize_p3_dim0",
                                  "cosine_similarity", "logcumsumexp"])
def test_third_derivatives_match_torch(torch, name):
    _, fn, arrays = next(c for c in CASES if c[0] == name)
    _compare(_run("distnn", torch, fn, arrays, np.float64, order=3),
             _run("torch", torch, fn, arrays, np.float64, order=3), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("fn,shapes", [
    (lambda a, b: Fd.pairwise_distance(a, b, p=3.0), [(2, 3), (2, 3)]),
    (lambda a, b: Fd.normalize(a * b.sum(), p=1.5), [(2, 3), (2,)]),
    (lambda a, b: Fd.cosine_similarity(a, b), [(2, 3), (2, 3)]),
    (lambda a, b: (a * b.sum()).logcumsumexp(1), [(2, 3), (2,)]),
])
def test_gradgradcheck(fn, shapes):
    rng = np.random.default_rng(11)
    inputs = tuple(Tensor(rng.uniform(-1, 1, s), requires_grad=True) for s in shapes)
    assert autograd.gradcheck(fn, inputs) is True
    assert autograd.gradgradcheck(fn, inputs) is True


@pytest.mark.parametrize("fn,op", [(lambda a: distnn.cdist(a, a[:2] * 2.0), "CDist"), (lambda a: Fd.pdist(a), "PDist")])
def test_cdist_pdist_stay_refused_as_in_torch(torch, fn, op):
    a = Tensor(_n(3, 4), requires_grad=True)
    with pytest.raises(NotImplementedError, match=f"create_graph=True: the op {op} "):
        autograd.grad(fn(a).sum(), a, create_graph=True)
    t = torch.tensor(_n(3, 4), requires_grad=True)
    for out in (torch.cdist(t, t[:2] * 2.0), torch.nn.functional.pdist(t)):
        g, = torch.autograd.grad(out.sum(), t, create_graph=True)
        with pytest.raises(RuntimeError, match="is not implemented"):
            g.sum().backward()
