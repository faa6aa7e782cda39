"""distnn.distributions.transforms and constraint_registry against torch (2.13) as the oracle: every
transform's forward, inverse and log_abs_det_jacobian on the same inputs (float64), with the gradients of a
weighted sum with respect to the input and the transform's parameters; shapes, domain/codomain, sign,
bijective, caching, inverses and equality; biject_to/transform_to of each constraint applied to the same
unconstrained values, landing inside the constraint."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TT = torch.distributions.transforms
TC = torch.distributions.constraints

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402
from distnn.distributions import constraints as C  # noqa: E402
from distnn.distributions import transforms as T  # noqa: E402

R = np.random.default_rng(7)  # (module-level draws only, at import: each test draws from its own below)


DRAW_PER_TEST = True  # (R: each test draws from its own generator, conftest's per_test_rng)


def _spd(shape, n):
    a = R.standard_normal(shape + (n, n)) * 0.4
    return a @ np.swapaxes(a, -1, -2) + np.eye(n)


def _corr_cholesky(shape, n):
    return np.linalg.cholesky(_spd(shape, n) / 1.0) / 1.0


# name -> (build(lib, params) -> transform, params dict of arrays, x (a domain point), event shapes)
def _params(**kw):
    return kw


CASES = {
    "Exp": (lambda L, p: L.ExpTransform(), {}, R.standard_normal((3, 4))),
    "Power": (lambda L, p: L.PowerTransform(p["e"]), {"e": R.uniform(0.3, 2.5, (4,))}, R.uniform(0.2, 3, (3, 4))),
    "PowerNeg": (lambda L, p: L.PowerTransform(p["e"]), {"e": -R.uniform(0.3, 2.5, (4,))},
                 R.uniform(0.2, 3, (3, 4))),
    "Sigmoid": (lambda L, p: L.SigmoidTransform(), {}, R.standard_normal((3, 4)) * 3),
    "Tanh": (lambda L, p: L.TanhTransform(), {}, R.standard_normal((3, 4)) * 2),
    "Softplus": (lambda L, p: L.SoftplusTransform(), {}, R.standard_normal((3, 4)) * 3),
    "Affine": (lambda L, p: L.AffineTransform(p["loc"], p["scale"]), {"loc": R.standard_normal((4,)),
                                                                        "scale": R.standard_normal((3, 4))},
               R.standard_normal((3, 4))),
    "AffineNumbers": (lambda L, p: L.AffineTransform(1.5, -2.0), {}, R.standard_normal((2, 3))),
    "AffineEvent": (lambda L, p: L.AffineTransform(p["loc"], p["scale"], event_dim=1),
                    {"loc": R.standard_normal((4,)), "scale": R.uniform(0.5, 2, (4,))}, R.standard_normal((3, 4))),
    "StickBreaking": (lambda L, p: L.StickBreakingTransform(), {}, R.standard_normal((2, 3, 4))),
    "CorrCholesky": (lambda L, p: L.CorrCholeskyTransform(), {}, R.standard_normal((2, 6))),
    "Compose": (lambda L, p: L.ComposeTransform([L.ExpTransform(), L.AffineTransform(p["loc"], 2.0),
                                                  L.StickBreakingTransform()]),
                {"loc": R.standard_normal((3,))}, R.standard_normal((2, 3)) * 0.5),
    "Independent": (lambda L, p: L.IndependentTransform(L.SigmoidTransform(), 2), {}, R.standard_normal((2, 3, 4))),
    "Reshape": (lambda L, p: L.ReshapeTransform((2, 3), (6,)), {}, R.standard_normal((4, 2, 3))),
    "InverseExp": (lambda L, p: L.ExpTransform().inv, {}, R.uniform(0.1, 3, (3,))),
    "Cat": (lambda L, p: L.CatTransform([L.ExpTransform(), L.SigmoidTransform(), L.identity_transform], dim=1,
                                        lengths=[1, 2, 1]), {}, R.standard_normal((3, 4))),
    "CatEvent": (lambda L, p: L.CatTransform([L.StickBreakingTransform(), L.StickBreakingTransform()], dim=0,
                                             lengths=[2, 2]), {}, R.standard_normal((4, 3))),
    "Stack": (lambda L, p: L.StackTransform([L.ExpTransform(), L.TanhTransform()], dim=1), {},
              R.standard_normal((3, 2))),
}


def _lib_params(params, lib):
    make = (lambda v: distnn.tensor(v, requires_grad=True)) if lib == "distnn" else (
        lambda v: torch.tensor(v, requires_grad=True))
    return {k: make(v) for k, v in params.items()}


def _close(a, b, rtol=1e-10, atol=1e-12, msg=""):
    a = np.asarray(a.data if isinstance(a, distnn.Tensor) else a, dtype=np.float64)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (msg, a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=msg)


@pytest.mark.parametrize("name", list(CASES))
def test_forward_inverse_and_log_abs_det_jacobian_and_their_gradients_match_torch(name):
    build, params, x = CASES[name]
    pd, pt = _lib_params(params, "distnn"), _lib_params(params, "torch")
    td, tt = build(T, pd), build(TT, pt)
    xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = td(xd), tt(xt)
    _close(yd, yt, msg="forward")
    ld, lt = td.log_abs_det_jacobian(xd, yd), tt.log_abs_det_jacobian(xt, yt)
    _close(ld, lt, msg="log_abs_det_jacobian")
    y = yt.detach().numpy()
    xd_back, xt_back = td.inv(distnn.tensor(y, requires_grad=True)), tt.inv(torch.tensor(y, requires_grad=True))
    _close(xd_back, xt_back, rtol=1e-8, atol=1e-9, msg="inverse")
    assert tuple(td.forward_shape(x.shape)) == tuple(tt.forward_shape(torch.Size(x.shape)))
    assert tuple(td.inverse_shape(y.shape)) == tuple(tt.inverse_shape(torch.Size(y.shape)))
    assert td.bijective == tt.bijective
    assert repr(td.domain) == repr(tt.domain) and repr(td.codomain) == repr(tt.codomain)
    assert td.domain.event_dim == tt.domain.event_dim and td.codomain.event_dim == tt.codomain.event_dim
    u, v = R.standard_normal(y.shape), R.standard_normal(tuple(lt.shape))
    ((yd * distnn.tensor(u)).sum() + (ld * distnn.tensor(v)).sum()).backward()
    ((yt * torch.tensor(u)).sum() + (lt * torch.tensor(v)).sum()).backward()
    _close(xd.grad, xt.grad, rtol=1e-9, atol=1e-11, msg="gradient of x")
    for k in params:
        _close(pd[k].grad, pt[k].grad, rtol=1e-9, atol=1e-11, msg=f"gradient of {k}")


@pytest.mark.parametrize("name", ["Softmax", "Abs", "LowerCholesky", "PositiveDefinite"])
def test_non_bijective_transforms_match_torch_forward_and_right_inverse(name):
    build = {"Softmax": lambda L: L.SoftmaxTransform(), "Abs": lambda L: L.AbsTransform(),
             "LowerCholesky": lambda L: L.LowerCholeskyTransform(),
             "PositiveDefinite": lambda L: L.PositiveDefiniteTransform()}[name]
    x = R.standard_normal((2, 3, 3))
    td, tt = build(T), build(TT)
    xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = td(xd), tt(xt)
    _close(yd, yt, msg="forward")
    _close(td.inv(distnn.tensor(yt.detach().numpy())), tt.inv(yt.detach()), rtol=1e-9, atol=1e-10)
    assert bool(td.codomain.check(yd).all())
    assert td.bijective is False and tt.bijective is False
    u = R.standard_normal(x.shape)
    (yd * distnn.tensor(u)).sum().backward()
    (yt * torch.tensor(u)).sum().backward()
    _close(xd.grad, xt.grad, rtol=1e-10, msg="gradient")


def test_sign_bijective_event_dim_and_repr_as_torch():
    pairs = [(T.ExpTransform(), TT.ExpTransform()), (T.SigmoidTransform(), TT.SigmoidTransform()),
             (T.AffineTransform(0.0, -3.0), TT.AffineTransform(0.0, -3.0)),
             (T.ComposeTransform([T.ExpTransform(), T.AffineTransform(1.0, -2.0)]),
              TT.ComposeTransform([TT.ExpTransform(), TT.AffineTransform(1.0, -2.0)])),
             (T.ExpTransform().inv, TT.ExpTransform().inv), (T.TanhTransform(), TT.TanhTransform())]
    for td, tt in pairs:
        assert td.sign == tt.sign and td.bijective == tt.bijective and td.event_dim == tt.event_dim
        assert repr(td) == repr(tt)
    assert repr(T.IndependentTransform(T.ExpTransform(), 1)) == repr(TT.IndependentTransform(TT.ExpTransform(), 1))
    np.testing.assert_array_equal(T.PowerTransform(distnn.tensor([2.0, -1.0])).sign.data,
                                  TT.PowerTransform(torch.tensor([2.0, -1.0])).sign.numpy())
    with pytest.raises(NotImplementedError):
        T.AbsTransform().sign  # noqa: B018
    with pytest.raises(ValueError, match="domain.event_dim or .codomain.event_dim"):
        T.CorrCholeskyTransform().event_dim  # noqa: B018  (a vector to a matrix: no one event dim)
    with pytest.raises(ValueError, match="domain.event_dim or .codomain.event_dim"):
        TT.CorrCholeskyTransform().event_dim  # noqa: B018


def test_inverse_of_inverse_equality_and_cache_as_torch():
    t = T.ExpTransform()
    assert t.inv.inv is t and t.inv == T.ExpTransform().inv and t == T.ExpTransform()
    assert T.AffineTransform(1.0, 2.0) == T.AffineTransform(1.0, 2.0) != T.AffineTransform(1.0, 3.0)
    assert T.ComposeTransform([T.ExpTransform()]) == T.ComposeTransform([T.ExpTransform()])
    assert T.PowerTransform(distnn.tensor(2.0)) == T.PowerTransform(distnn.tensor(2.0))
    with pytest.raises(TypeError):
        hash(T.ExpTransform())  # (unhashable, as torch's: __eq__ without __hash__)
    cached = T.ExpTransform(cache_size=1)
    x = distnn.tensor([0.5, 1.0])
    y = cached(x)
    assert cached(x) is y and cached.inv(y) is x
    uncached = T.ExpTransform()
    assert uncached.inv(uncached(x)) is not x
    assert cached.with_cache(1) is cached and uncached.with_cache(1)._cache_size == 1
    with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
        T.ExpTransform(cache_size=2)
    with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
        TT.ExpTransform(cache_size=2)


def test_shape_errors_as_torch():
    with pytest.raises(ValueError, match="different numbers of elements"):
        T.ReshapeTransform((2, 3), (5,))
    with pytest.raises(ValueError, match="Shape mismatch"):
        T.ReshapeTransform((2, 3), (6,)).forward_shape((4, 3, 2))
    with pytest.raises(ValueError, match="flattened lower-diagonal"):
        T.CorrCholeskyTransform().forward_shape((4,))
    with pytest.raises(ValueError, match="not square"):
        T.CorrCholeskyTransform().inverse_shape((3, 4))
    with pytest.raises(ValueError, match="Too few dimensions"):
        T.StickBreakingTransform().forward_shape(())
    with pytest.raises(ValueError, match="must equal length"):
        T.CatTransform([T.ExpTransform(), T.ExpTransform()], dim=0)(distnn.tensor(np.zeros(3)))


def test_cumulative_distribution_transform_matches_torch():
    loc, scale = R.standard_normal(3), R.uniform(0.5, 2, 3)
    td = T.CumulativeDistributionTransform(D.Normal(distnn.tensor(loc), distnn.tensor(scale)))
    tt = TT.CumulativeDistributionTransform(torch.distributions.Normal(torch.tensor(loc), torch.tensor(scale)))
    x = R.standard_normal((2, 3))
    yd, yt = td(distnn.tensor(x)), tt(torch.tensor(x))
    _close(yd, yt)
    _close(td.inv(yd), tt.inv(yt), rtol=1e-9)
    _close(td.log_abs_det_jacobian(distnn.tensor(x), yd), tt.log_abs_det_jacobian(torch.tensor(x), yt))
    assert repr(td.domain) == repr(tt.domain) and td.sign == 1


CONSTRAINTS = [
    ("real", lambda M: M.real, (3,)),
    ("positive", lambda M: M.positive, (3,)),
    ("nonnegative", lambda M: M.nonnegative, (3,)),
    ("greater_than", lambda M: M.greater_than(-1.5), (3,)),
    ("greater_than_eq", lambda M: M.greater_than_eq(2.0), (3,)),
    ("less_than", lambda M: M.less_than(0.5), (3,)),
    ("interval", lambda M: M.interval(-2.0, 3.0), (3,)),
    ("half_open_interval", lambda M: M.half_open_interval(-1.0, 1.0), (3,)),
    ("unit_interval", lambda M: M.unit_interval, (3,)),
    ("simplex", lambda M: M.simplex, (2, 4)),
    ("real_vector", lambda M: M.real_vector, (2, 4)),
    ("independent_positive", lambda M: M.independent(M.positive, 1), (2, 4)),
    ("corr_cholesky", lambda M: M.corr_cholesky, (2, 6)),
    ("lower_cholesky", lambda M: M.lower_cholesky, (2, 3, 3)),
    ("positive_definite", lambda M: M.positive_definite, (2, 3, 3)),
    ("positive_semidefinite", lambda M: M.positive_semidefinite, (3, 3)),
    ("cat", lambda M: M.cat([M.positive, M.interval(0.0, 2.0)], dim=-1, lengths=[2, 1]), (4, 3)),
    ("stack", lambda M: M.stack([M.positive, M.real, M.unit_interval], dim=-1), (4, 3)),
]


@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
@pytest.mark.parametrize("name,make,shape", CONSTRAINTS, ids=[c[0] for c in CONSTRAINTS])
def test_biject_to_and_transform_to_match_torch(registry, name, make, shape):
    cd, ct = make(C), make(TC)
    assert repr(cd) == repr(ct)
    reg_d = getattr(D, registry)
    reg_t = getattr(torch.distributions, registry)
    try:
        tt = reg_t(ct)
    except NotImplementedError:
        with pytest.raises(NotImplementedError, match="Cannot transform"):
            reg_d(cd)
        return
    td = reg_d(cd)
    assert type(td).__name__ == type(tt).__name__ and td.bijective == tt.bijective
    x = R.standard_normal(shape)
    xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = td(xd), tt(xt)
    _close(yd, yt, rtol=1e-10, atol=1e-12)
    assert bool(np.all(cd.check(yd))) and bool(ct.check(yt).all())
    u = R.standard_normal(tuple(yt.shape))
    (yd * distnn.tensor(u)).sum().backward()
    (yt * torch.tensor(u)).sum().backward()
    _close(xd.grad, xt.grad, rtol=1e-9, atol=1e-11)
    if td.bijective:
        _close(td.inv(yd), x, rtol=1e-7, atol=1e-8)
        _close(td.log_abs_det_jacobian(xd, yd), tt.log_abs_det_jacobian(xt, yt), rtol=1e-9, atol=1e-10)


def test_constraint_registry_register_and_refusals():
    class MyConstraint(C.Constraint):
        def check(self, value):
            return distnn.tensor(True)

    registry = type(D.biject_to)()
    registry.register(MyConstraint, lambda c: T.ExpTransform())
    assert isinstance(registry(MyConstraint()), T.ExpTransform)
    with pytest.raises(NotImplementedError, match="Cannot transform _Boolean constraints"):
        D.biject_to(C.boolean)
    with pytest.raises(TypeError, match="Constraint subclass or instance"):
        registry.register(int, lambda c: None)


def test_new_constraints_check_as_torch():
    good = _corr_cholesky((2,), 3)
    good = good / np.linalg.norm(good, axis=-1, keepdims=True)
    bad = good * 1.1
    for v in (good, bad):
        np.testing.assert_array_equal(C.corr_cholesky.check(distnn.tensor(v)),
                                      TC.corr_cholesky.check(torch.tensor(v)).numpy())
    psd = np.array([[1.0, 1.0], [1.0, 1.0]])
    for v in (psd, -psd):
        assert bool(C.positive_semidefinite.check(distnn.tensor(v))) == bool(TC.positive_semidefinite.check(
            torch.tensor(v)))
    v = np.array([[1.0, 0.5, -1.0], [2.0, 3.0, 0.5]])
    cd = C.cat([C.positive, C.unit_interval], dim=1, lengths=[2, 1])
    ct = TC.cat([TC.positive, TC.unit_interval], dim=1, lengths=[2, 1])
    np.testing.assert_array_equal(cd.check(distnn.tensor(v)), ct.check(torch.tensor(v)).numpy())
    sd, st = C.stack([C.positive, C.real], dim=0), TC.stack([TC.positive, TC.real], dim=0)
    np.testing.assert_array_equal(sd.check(distnn.tensor(v[:, :2].T)), st.check(torch.tensor(v[:, :2].T)).numpy())
    assert cd.event_dim == ct.event_dim and sd.event_dim == st.event_dim
