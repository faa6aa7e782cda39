"""distnn.lobpcg against torch.lobpcg from the same starting block X: eigenvalues and eigenvectors (up to sign),
'ortho' and 'basic', largest and smallest, n > k, batches, B given, float64 tightly and float32 loosely; the gradient
in A (torch's symeig_backward, through the symmetric part) of losses that do not depend on the vectors' signs, and
check_grad; a backward with B raises as torch's; the tracker and force_stop; refusals as torch's."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

R = np.random.default_rng(3005)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _spd(m, batch=(), top=20.0):
    q, _ = np.linalg.qr(R.standard_normal(batch + (m, m)))
    return (q * np.linspace(1.0, top, m)) @ q.swapaxes(-1, -2)


def _host(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.data)


def _compare(a, x0, dtype=np.float64, rtol=1e-9, grad=True, **kw):
    """distnn's and torch's lobpcg from x0: values, |vectors|, and the gradient of a sign-free loss."""
    k = kw.get("k", x0.shape[-1])
    ad = distnn.tensor(a.astype(dtype), requires_grad=grad)
    at = torch.tensor(a.astype(dtype), requires_grad=grad)
    ed, xd = distnn.lobpcg(ad, X=distnn.tensor(x0.astype(dtype)), **kw)
    et, xt = torch.lobpcg(at, X=torch.tensor(x0.astype(dtype)), **kw)
    assert tuple(ed.shape) == tuple(et.shape) and tuple(xd.shape) == tuple(xt.shape) and ed.dtype == dtype
    np.testing.assert_allclose(_host(ed), _host(et), rtol=rtol)
    np.testing.assert_allclose(np.abs(_host(xd)), np.abs(_host(xt)), atol=rtol * 100)
    if not grad:
        return
    w, proj = R.standard_normal(k).astype(dtype), R.standard_normal(a.shape).astype(dtype)
    ((ed * distnn.tensor(w)).sum() + ((xd @ xd.mT) * distnn.tensor(proj)).sum()).backward()
    ((et * torch.tensor(w)).sum() + ((xt @ xt.mT) * torch.tensor(proj)).sum()).backward()
    np.testing.assert_allclose(_host(ad.grad), _host(at.grad), rtol=rtol * 100, atol=rtol * 100)


@pytest.mark.parametrize("method", ["ortho", "basic"])
@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k, n", [(1, 1), (2, 2), (2, 3)], ids=str)
def test_lobpcg_matches_torch(method, largest, k, n):
    _compare(_spd(12), R.standard_normal((12, n)), k=k, largest=largest, method=method)


def test_lobpcg_float32_matches_torch_loosely():
    _compare(_spd(10), R.standard_normal((10, 2)), dtype=np.float32, rtol=1e-4, grad=False)


def test_batches_and_a_non_symmetric_a_requiring_grad_match_torch():
    _compare(_spd(9, (2,)), R.standard_normal((2, 9, 2)), largest=False)
    a = _spd(9) + 0.01 * R.standard_normal((9, 9))  # (with grad: the symmetric part is solved, as torch)
    _compare(a, R.standard_normal((9, 2)))


def test_generalized_problem_matches_torch_and_its_backward_raises_as_torch():
    a, b, x0 = _spd(12), _spd(12, top=3.0), R.standard_normal((12, 2))
    ed, xd = distnn.lobpcg(distnn.tensor(a), B=distnn.tensor(b), X=distnn.tensor(x0))
    et, xt = torch.lobpcg(torch.tensor(a), B=torch.tensor(b), X=torch.tensor(x0))
    np.testing.assert_allclose(_host(ed), _host(et), rtol=1e-9)
    np.testing.assert_allclose(np.abs(_host(xd)), np.abs(_host(xt)), atol=1e-7)
    for lib in (torch, distnn):
        e, _ = lib.lobpcg(lib.tensor(a, requires_grad=True), B=lib.tensor(b), X=lib.tensor(x0))
        with pytest.raises(ValueError, match="does not support backward with B != I"):
            e.sum().backward()


def test_without_x_the_start_is_drawn_and_the_pairs_are_found():
    a = _spd(15)
    e, x = distnn.lobpcg(distnn.tensor(a), k=2)
    np.testing.assert_allclose(_host(e), torch.lobpcg(torch.tensor(a), k=2)[0].numpy(), rtol=1e-9)
    np.testing.assert_allclose(a @ _host(x), _host(x) * _host(e), atol=1e-6)


def test_tracker_is_called_and_can_stop_the_iteration():
    steps = []

    def tracker(worker):
        steps.append(worker.ivars["istep"])
        worker.bvars["force_stop"] = worker.ivars["istep"] >= 2

    distnn.lobpcg(distnn.tensor(_spd(30, top=1.1)), k=2, X=distnn.tensor(R.standard_normal((30, 2))), tracker=tracker)
    assert steps == [1, 2]


def test_check_grad_of_the_eigenvalues():
    x0 = R.standard_normal((9, 2))
    assert check_grad(lambda a: distnn.lobpcg(a, X=distnn.tensor(x0), tol=1e-12)[0], _spd(9), rtol=1e-4)


@pytest.mark.parametrize("shape, kw, error", [((5, 5), {"k": 2}, ValueError), ((6, 5), {"k": 1}, AssertionError),
                                              ((9, 9), {"X": np.ones((9, 4))}, ValueError)], ids=range(3))
def test_refusals_match_torch(shape, kw, error):
    kw_t = {key: torch.tensor(v) if isinstance(v, np.ndarray) else v for key, v in kw.items()}
    kw_d = {key: distnn.tensor(v) if isinstance(v, np.ndarray) else v for key, v in kw.items()}
    with pytest.raises(error) as te:
        torch.lobpcg(torch.tensor(np.ones(shape)), **kw_t)
    with pytest.raises(error) as de:
        distnn.lobpcg(distnn.tensor(np.ones(shape)), **kw_d)
    assert str(de.value) == str(te.value).replace("torch.Size([", "(").replace("])", ")")  # (shapes as tuples)
