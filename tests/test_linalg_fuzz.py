"""Seeded fuzz of distnn.linalg against torch.linalg (the oracle): random batch dims (none to two, broadcast where
the op broadcasts), random matrix sizes (1 to 5) and arguments; float64 outputs and the inputs' gradients of a
random weighting of the outputs (eigh, svd: of a loss that does not depend on the singular vectors' signs)
compared tightly, with test_linalg.py's harness. Each failure names the op and the case's seed.

``DISTNN_LINALG_FUZZ_CASES`` sets the number of cases per op (default 6), ``DISTNN_LINALG_FUZZ_START`` the first
seed.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn.linalg as DL  # noqa: E402

from test_linalg import both, eigh_loss, svd_loss  # noqa: E402

TL = torch.linalg
CASES = int(os.environ.get("DISTNN_LINALG_FUZZ_CASES", "6"))
START = int(os.environ.get("DISTNN_LINALG_FUZZ_START", "0"))
GENERATORS = {}


def op(name):
    def register(fn):
        GENERATORS[name] = fn
        return fn
    return register


def batch(rng, k=2):
    return tuple(int(rng.integers(1, 4)) for _ in range(int(rng.integers(0, k + 1))))


def well(rng, shape):
    n = shape[-1]
    return rng.standard_normal(shape) + (n + 1) * np.eye(n) * rng.choice([-1.0, 1.0])


def spd(rng, shape):
    a = rng.standard_normal(shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


def distinct(rng, shape):
    """A matrix with well-separated singular values (the singular vectors' gradient divides by their gaps)."""
    m, n = shape[-2:]
    k = min(m, n)
    q1 = np.linalg.qr(rng.standard_normal(shape[:-2] + (m, m)))[0][..., :k]
    q2 = np.linalg.qr(rng.standard_normal(shape[:-2] + (n, n)))[0][..., :k]
    s = np.arange(k, 0, -1) + rng.uniform(0, 0.3, k) + 0.5
    return (q1 * s) @ np.swapaxes(q2, -1, -2)


@op("det")
def _det(rng):
    return DL.det, TL.det, [well(rng, batch(rng) + (int(rng.integers(1, 6)),) * 2)], {}


@op("slogdet")
def _slogdet(rng):
    return DL.slogdet, TL.slogdet, [well(rng, batch(rng) + (int(rng.integers(1, 6)),) * 2)], {}


@op("inv")
def _inv(rng):
    return DL.inv, TL.inv, [well(rng, batch(rng) + (int(rng.integers(1, 6)),) * 2)], {}


@op("solve")
def _solve(rng):
    n, k = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    left = bool(rng.integers(2))
    ba = batch(rng)
    bb = [ba, (), (1,) * len(ba), (2,) + ba][int(rng.integers(4))]  # (batch dims that broadcast with A's)
    if left and rng.random() < 0.3:
        b = rng.standard_normal(ba + (n,) if rng.random() < 0.5 else (n,))  # vectors
    else:
        b = rng.standard_normal(bb + ((n, k) if left else (k, n)))
    return (lambda a, x: DL.solve(a, x, left=left), lambda a, x: TL.solve(a, x, left=left),
            [well(rng, ba + (n, n)), b], {})


@op("lstsq")
def _lstsq(rng):
    m, n, k = int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 3))
    driver = str(rng.choice(["gelsy", "gelsd", "gelss", "gels"]))
    ba = batch(rng)
    b = rng.standard_normal(ba + (m,) if rng.random() < 0.3 else ba + (m, k))
    return (lambda a, x: DL.lstsq(a, x, driver=driver), lambda a, x: TL.lstsq(a, x, driver=driver),
            [distinct(rng, ba + (m, n)), b], {})


@op("cholesky")
def _cholesky(rng):
    upper = bool(rng.integers(2))
    return (lambda a: DL.cholesky(a, upper=upper), lambda a: TL.cholesky(a, upper=upper),
            [spd(rng, batch(rng) + (int(rng.integers(1, 6)),) * 2)], {})


@op("qr")
def _qr(rng):
    m, n = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    mode = "complete" if m <= n and rng.random() < 0.5 else "reduced"
    return (lambda a: DL.qr(a, mode), lambda a: TL.qr(a, mode), [distinct(rng, batch(rng) + (m, n))], {})


@op("eigh")
def _eigh(rng):
    n = int(rng.integers(1, 6))
    uplo = str(rng.choice(["L", "U"]))
    q = np.linalg.qr(rng.standard_normal(batch(rng) + (n, n)))[0]
    a = (q * (np.arange(n) * 1.5 + rng.uniform(0, 0.4, n))) @ np.swapaxes(q, -1, -2)  # separated eigenvalues
    a = a + (np.triu(rng.standard_normal(a.shape), 1) if uplo == "L" else np.tril(rng.standard_normal(a.shape), -1))
    return lambda t: DL.eigh(t, uplo), lambda t: TL.eigh(t, uplo), [a], {"loss": eigh_loss}


@op("svd")
def _svd(rng):
    full = bool(rng.integers(2))
    a = distinct(rng, batch(rng) + (int(rng.integers(1, 6)), int(rng.integers(1, 6))))
    return lambda t: DL.svd(t, full), lambda t: TL.svd(t, full), [a], {"loss": svd_loss}


@op("svdvals_pinv_matrix_norm")
def _spectral(rng):
    a = distinct(rng, batch(rng) + (int(rng.integers(1, 6)), int(rng.integers(1, 6))))
    ordr = rng.choice(np.array(["fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2], dtype=object))
    keep = bool(rng.integers(2))
    return (lambda t: (DL.svdvals(t), DL.pinv(t), DL.matrix_norm(t, ordr, keepdim=keep)),
            lambda t: (TL.svdvals(t), TL.pinv(t), TL.matrix_norm(t, ordr, keepdim=keep)), [a], {})


@op("vector_norm")
def _vector_norm(rng):
    shape = batch(rng, 3) + (int(rng.integers(1, 5)),)
    x = np.where(rng.random(shape) < 0.15, 0.0, rng.standard_normal(shape))
    ordv = float(rng.choice([2, 1, 0, math.inf, -math.inf, 3, 0.5, 1.5, -1]))
    dims = [None] + [d for d in range(len(shape))] + ([tuple(range(len(shape)))[:2]] if len(shape) > 1 else [])
    dim = dims[int(rng.integers(len(dims)))]
    keep = bool(rng.integers(2))
    return lambda t: DL.vector_norm(t, ordv, dim, keep), lambda t: TL.vector_norm(t, ordv, dim, keep), [x], {}


@op("matrix_power")
def _matrix_power(rng):
    n = int(rng.integers(-3, 6))
    a = well(rng, batch(rng) + (int(rng.integers(1, 5)),) * 2) / 4
    return lambda t: DL.matrix_power(t, n), lambda t: TL.matrix_power(t, n), [a], {}


@op("matrix_exp")
def _matrix_exp(rng):
    a = rng.standard_normal(batch(rng) + (int(rng.integers(1, 6)),) * 2) * rng.choice([0.01, 1.0, 3.0])
    return DL.matrix_exp, TL.matrix_exp, [a], {"rtol": 1e-8}


@op("solve_triangular")
def _solve_triangular(rng):
    n, k = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    upper, left, unit = (bool(rng.integers(2)) for _ in range(3))
    b = rng.standard_normal(batch(rng, 1) + ((n, k) if left else (k, n)))
    return (lambda a, x: DL.solve_triangular(a, x, upper=upper, left=left, unitriangular=unit),
            lambda a, x: TL.solve_triangular(a, x, upper=upper, left=left, unitriangular=unit),
            [well(rng, (n, n)), b], {})


@op("cross_vander_diagonal")
def _small(rng):
    shape = batch(rng) + (3,)
    n_powers, offset, d1 = int(rng.integers(2, 5)), int(rng.integers(-2, 3)), int(rng.integers(0, len(shape)))
    d2 = (d1 + 1) % len(shape)

    def run(lib):
        def fn(a, b):
            out = (lib.cross(a, b), lib.vander(a, N=n_powers))
            return out + (lib.diagonal(a, offset=offset, dim1=d1, dim2=d2),) if len(shape) > 1 else out
        return fn
    return run(DL), run(TL), [rng.standard_normal(shape), rng.standard_normal(shape)], {}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_fuzz_against_torch(name):
    for seed in range(START, START + CASES):
        rng = np.random.default_rng([seed, list(GENERATORS).index(name)])
        fd, ft, arrays, opts = GENERATORS[name](rng)
        try:
            both(fd, ft, *arrays, **opts)
        except AssertionError as e:
            raise AssertionError(f"{name}, seed {seed}, shapes {[np.shape(a) for a in arrays]}: {e}") from None
