"""The LOBPCG iteration of :func:`distnn.lobpcg` (PyTorch's ``torch._lobpcg.LOBPCG``, on raw numpy/cupy arrays,
one matrix at a time, as PyTorch's): Knyazev's method with the Rayleigh-Ritz and orthogonalization steps of
Duersch et al. 2018 ('basic': the original; 'ortho', the default: B-orthonormal search bases built by SVQB).

A worker keeps PyTorch's state names (``X``, ``E``, ``R``, ``S``, ``iparams``, ``fparams``, ``bparams``,
``ivars``, ``fvars``, ``bvars``, ``tvars``), which a ``tracker`` called after each step may read (and stop the
iteration by setting ``bvars['force_stop']``).
"""
from __future__ import annotations

from distnn.backend import get_array_module


def _mm(a, b):
    """``a @ b``, ``a`` None meaning the identity (PyTorch's ``_utils.matmul``: B and iK are optional)."""
    return b if a is None else a @ b


def _qform(a, s):
    return s.T @ _mm(a, s)


def _symeig(xp, a, largest=False):
    """Eigenvalues ascending (``largest``: descending) and vectors, from the upper triangle (PyTorch's UPLO='U')."""
    e, z = xp.linalg.eigh(a, UPLO="U")
    return (e[::-1], z[:, ::-1]) if largest else (e, z)


def _fro(xp, a):
    return float(xp.sqrt((a * a).sum()))


class LOBPCG:
    """Worker of the LOBPCG methods: ``run()`` iterates until ``k`` pairs converge or ``niter`` steps are done."""

    def __init__(self, A, B, X, iK, iparams, fparams, bparams, method, tracker):  # noqa: N803 - PyTorch's names
        self.xp = xp = get_array_module(X)
        self.A, self.B, self.iK = A, B, iK
        self.iparams, self.fparams, self.bparams = iparams, fparams, bparams
        self.method, self.tracker = method, tracker
        m, n = iparams["m"], iparams["n"]
        self.X = X
        self.E = xp.zeros((n,), dtype=X.dtype)
        self.R = xp.zeros((m, n), dtype=X.dtype)
        self.S = xp.zeros((m, 3 * n), dtype=X.dtype)
        self.tvars, self.ivars, self.fvars, self.bvars = {}, {"istep": 0}, {"_": 0.0}, {"_": False}

    def update(self):
        """One step: at the first, the norms that scale the convergence test."""
        xp = self.xp
        if self.ivars["istep"] == 0:
            x_norm = _fro(xp, self.X)
            self.fvars["X_norm"] = x_norm
            self.fvars["A_norm"] = _fro(xp, _mm(self.A, self.X)) / x_norm
            self.fvars["B_norm"] = _fro(xp, _mm(self.B, self.X)) / x_norm
            self.ivars["iterations_left"] = self.iparams["niter"]
            self.ivars["converged_count"] = 0
            self.ivars["converged_end"] = 0
        if self.method == "ortho":
            self._update_ortho()
        else:
            self._update_basic()
        self.ivars["iterations_left"] -= 1
        self.ivars["istep"] += 1

    def update_residual(self):
        self.R = _mm(self.A, self.X) - _mm(self.B, self.X) * self.E

    def update_converged_count(self):
        """The number of leading pairs whose relative residual is below ``tol`` (never decreasing)."""
        xp = self.xp
        prev = self.ivars["converged_count"]
        X, R, E = self.X, self.R, self.E  # noqa: N806
        norm = lambda a: xp.sqrt((a * a).sum(0))  # noqa: E731 - the columns' 2-norms
        rerr = norm(R) / (norm(X) * (self.fvars["A_norm"] + xp.abs(E[:X.shape[-1]]) * self.fvars["B_norm"]))
        count = 0
        for ok in (rerr < self.fparams["tol"]).tolist():
            if not ok:
                break
            count += 1
        if count < prev:
            raise AssertionError(f"the number of converged eigenpairs (was {prev}, got {count}) cannot decrease")
        self.ivars["converged_count"] = count
        self.tvars["rerr"] = rerr
        return count

    def stop_iteration(self):
        return (self.bvars.get("force_stop", False) or self.ivars["iterations_left"] == 0
                or self.ivars["converged_count"] >= self.iparams["k"])

    def run(self):
        self.update()
        if self.tracker is not None:
            self.tracker(self)
        while not self.stop_iteration():
            self.update()
            if self.tracker is not None:
                self.tracker(self)

    def _update_basic(self):
        xp = self.xp
        ns, nc, n = self.ivars["converged_end"], self.ivars["converged_count"], self.iparams["n"]
        largest = self.bparams["largest"]
        if self.ivars["istep"] == 0:
            ri = self._get_rayleigh_ritz_transform(self.X)
            e, z = _symeig(xp, _qform(_qform(self.A, self.X), ri), largest)
            self.X[:] = self.X @ (ri @ z)
            self.E[:] = e
            np_ = 0
            self.update_residual()
            nc = self.update_converged_count()
            self.S[:, :n] = self.X
            w = _mm(self.iK, self.R)
        else:
            s_ = self.S[:, nc:ns]
            ri = self._get_rayleigh_ritz_transform(s_)
            e_, z = _symeig(xp, _qform(_qform(self.A, s_), ri), largest)
            self.X[:, nc:] = s_ @ (ri @ z[:, :n - nc])
            self.E[nc:] = e_[:n - nc]
            p = s_ @ (ri @ z[:, n:2 * n - nc])
            np_ = p.shape[-1]
            self.update_residual()
            nc = self.update_converged_count()
            self.S[:, :n] = self.X
            self.S[:, n:n + np_] = p
            w = _mm(self.iK, self.R[:, nc:])
        self.ivars["converged_end"] = ns = n + np_ + w.shape[-1]
        self.S[:, n + np_:ns] = w

    def _update_ortho(self):
        xp = self.xp
        ns, nc, n = self.ivars["converged_end"], self.ivars["converged_count"], self.iparams["n"]
        largest = self.bparams["largest"]
        if self.ivars["istep"] == 0:  # (E stays zero at this step, as PyTorch's)
            ri = self._get_rayleigh_ritz_transform(self.X)
            _, z = _symeig(xp, _qform(_qform(self.A, self.X), ri), largest)
            self.X = self.X @ (ri @ z)
            self.update_residual()
            np_ = 0
            nc = self.update_converged_count()
            self.S[:, :n] = self.X
            w = self._get_ortho(self.R, self.X)
        else:
            s_ = self.S[:, nc:ns]
            e_, z = _symeig(xp, _qform(self.A, s_), largest)
            self.X[:, nc:] = s_ @ z[:, :n - nc]
            self.E[nc:] = e_[:n - nc]
            p = s_ @ (z[:, n - nc:] @ xp.linalg.qr(z[:n - nc, n - nc:].T)[0])
            np_ = p.shape[-1]
            self.update_residual()
            nc = self.update_converged_count()
            self.S[:, :n] = self.X
            self.S[:, n:n + np_] = p
            w = self._get_ortho(self.R[:, nc:], self.S[:, :n + np_])
        self.ivars["converged_end"] = ns = n + np_ + w.shape[-1]
        self.S[:, n + np_:ns] = w

    def _get_rayleigh_ritz_transform(self, s):
        """``Ri`` (upper triangular) with ``Ri^T S^T B S Ri = I``: the scaled Cholesky factor's inverse."""
        xp = self.xp
        sbs = _qform(self.B, s)
        d = xp.diagonal(sbs) ** -0.5
        upper = xp.linalg.cholesky(sbs * d * d[:, None]).T
        return xp.linalg.solve(upper.T, xp.diag(d)).T  # (Ri R = diag(d))

    def _get_svqb(self, u, drop, tau):
        """``U`` made B-orthonormal (SVQB); ``drop``: the columns that add little to its span left out."""
        xp = self.xp
        if u.size == 0:
            return u
        ubu = _qform(self.B, u)
        d = xp.diagonal(ubu)
        nz = xp.nonzero(xp.abs(d) != 0)[0]
        if nz.size < d.size:
            u = u[:, nz]
            if u.size == 0:
                return u
            ubu = _qform(self.B, u)
            d = xp.diagonal(ubu)
        d_col = (d ** -0.5)[:, None]
        e, z = _symeig(xp, ubu * d_col * d_col.T)
        t = tau * float(xp.abs(e).max())
        if drop:
            keep = xp.nonzero(e > t)[0]
            e, z, d_col = e[keep], z[:, keep], d_col[keep]
        else:
            e = xp.where(e < t, t, e)
        return (u * d_col.T) @ (z * e ** -0.5)

    def _get_ortho(self, U, V):  # noqa: N803
        """``U`` made B-orthonormal and B-orthogonal to ``V`` (Duersch's algorithm 3, or 6 with ``use_drop``)."""
        xp = self.xp
        tau_ortho, tau_drop = self.fparams["ortho_tol"], self.fparams["ortho_tol_drop"]
        tau_replace = self.fparams["ortho_tol_replace"]
        for key in [k for k in self.fvars if k.startswith("ortho_") and k.endswith("_rerr")]:
            self.fvars.pop(key)
        self.ivars.pop("ortho_i", 0)
        self.ivars.pop("ortho_j", 0)
        bv_norm = _fro(xp, _mm(self.B, V))
        BU = _mm(self.B, U)  # noqa: N806
        VBU = V.T @ BU  # noqa: N806
        i = j = 0
        for i in range(self.iparams["ortho_i_max"]):
            U = U - V @ VBU  # noqa: N806
            drop, tau_svqb = False, tau_drop
            for j in range(self.iparams["ortho_j_max"]):
                if self.bparams["ortho_use_drop"]:
                    U = self._get_svqb(U, drop, tau_svqb)  # noqa: N806
                    drop, tau_svqb = True, tau_replace
                else:
                    U = self._get_svqb(U, False, tau_replace)  # noqa: N806
                if U.size == 0:
                    self.ivars["ortho_i"], self.ivars["ortho_j"] = i, j
                    return U
                BU = _mm(self.B, U)  # noqa: N806
                UBU = U.T @ BU  # noqa: N806
                rerr = _fro(xp, UBU - xp.eye(UBU.shape[-1], dtype=UBU.dtype)) / (_fro(xp, BU) * _fro(xp, U))
                self.fvars[f"ortho_UBUmI_rerr[{i}, {j}]"] = rerr
                if rerr < tau_ortho:
                    break
            VBU = V.T @ BU  # noqa: N806
            rerr = _fro(xp, VBU) / (bv_norm * _fro(xp, U))
            self.fvars[f"ortho_VBU_rerr[{i}]"] = rerr
            if rerr < tau_ortho:
                break
            if self.iparams["m"] < U.shape[-1] + V.shape[-1]:
                raise ValueError(f"Overdetermined shape of U: #B-cols(={self.iparams['m']}) >= "
                                 f"#U-cols(={U.shape[-1]}) + #V-cols(={V.shape[-1]}) must hold")
        self.ivars["ortho_i"], self.ivars["ortho_j"] = i, j
        return U
