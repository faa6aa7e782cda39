"""The harness of the seeded layer fuzz (tests/test_layer_fuzz_*.py) against PyTorch (the oracle): values given to both
libraries (G: requires grad, C: constant), a Case that draws a configuration from its seed and runs a layer in
both libraries (forward, backward, buffers) comparing to tight tolerances, op_registry (each fuzz file's own
``@op(name)`` registry), run_cases over the CASES seeds from START, and the float32 and training checks that
other fuzz files use.

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4: a few seconds in all),
``DISTNN_LAYER_FUZZ_START`` the first seed."""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as DF
from distnn import optim

from torch_twins import copy_distnn_weights, copy_torch_weights


torch = pytest.importorskip("torch")
TF = torch.nn.functional
CASES = int(os.environ.get("DISTNN_LAYER_FUZZ_CASES", "4"))
START = int(os.environ.get("DISTNN_LAYER_FUZZ_START", "0"))
RTOL = 1e-9  # float64 on both sides: only the order of the arithmetic differs
ATOL = 1e-11  # times the compared tensor's largest magnitude (at least 1)


class G:
    """A float64 input that requires a gradient (compared after backward). With ``strided``, the leaf is
    an array twice as wide in the last dimension and the op gets every other column of it: a
    non-contiguous view, as a transposed or sliced activation would be."""

    def __init__(self, a, may_stride=True):
        self.a = np.asarray(a, dtype=np.float64)
        self.strided, self.may_stride = False, may_stride

    def leaf(self):
        if not self.strided:
            return self.a.copy()
        wide = np.zeros(self.a.shape[:-1] + (2 * self.a.shape[-1],))
        wide[..., ::2] = self.a
        wide[..., 1::2] = np.nan  # never read
        return wide


class C:
    """A constant tensor (no gradient): integer labels and indices, masks, targets."""

    def __init__(self, a):
        self.a = np.asarray(a)


def to_distnn(v):
    if isinstance(v, G):
        return distnn.tensor(v.leaf(), requires_grad=True)
    if isinstance(v, C):
        return distnn.tensor(v.a.copy())
    if isinstance(v, (tuple, list)):
        return type(v)(to_distnn(u) for u in v)
    return v


def to_torch(v):
    if isinstance(v, G):
        return torch.tensor(v.leaf(), requires_grad=True)
    if isinstance(v, C):
        return torch.from_numpy(v.a.copy())
    if isinstance(v, (tuple, list)):
        return type(v)(to_torch(u) for u in v)
    return v


def leaves_of(args, dargs, targs, path="arg"):
    """(name, distnn tensor, torch tensor) for every G among the arguments."""
    out = []
    for i, (v, d, t) in enumerate(zip(args, dargs, targs)):
        if isinstance(v, G):
            out.append((f"{path}{i}", d, t))
        elif isinstance(v, (tuple, list)):
            out += leaves_of(v, d, t, f"{path}{i}.")
    return out


def views_of(args, leaves):
    """The arguments as the op takes them: a strided G's every other column of its leaf."""
    out = []
    for v, x in zip(args, leaves):
        if isinstance(v, G) and v.strided:
            x = x[..., ::2]
        elif isinstance(v, (tuple, list)):
            x = type(v)(views_of(v, x))
        out.append(x)
    return out


def strided(c, args):
    """Now and then, a G argument of at least one dimension passed as a non-contiguous view."""
    for v in args:
        if isinstance(v, G) and v.a.ndim and v.may_stride and c.coin(0.25):
            v.strided = True
        elif isinstance(v, (tuple, list)):
            strided(c, v)


def flat_outputs(out):
    if isinstance(out, (tuple, list)):
        return [y for o in out for y in flat_outputs(o)]
    return [out]


def as_numpy(x):
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, distnn.Tensor):
        return np.asarray(x.data)
    return np.asarray(x)


class Case:
    """One drawn configuration: ``cfg`` (printed on failure) and the generators that drew it."""

    def __init__(self, op, seed):
        self.op, self.seed = op, seed
        self.rng = np.random.default_rng([seed, sum(map(ord, op))])
        self.cfg = {}
        self.strided_note = ""

    # ---- drawing
    def int(self, lo, hi):
        """An integer in [lo, hi]."""
        return int(self.rng.integers(lo, hi + 1))

    def pick(self, *options):
        return options[int(self.rng.integers(len(options)))]

    def dim(self, hi):
        """A size in [1, hi], or now and then 0 (an empty batch or tensor)."""
        return 0 if self.coin(0.05) else self.int(1, hi)

    def coin(self, p=0.5):
        return bool(self.rng.random() < p)

    def normal(self, *shape, ties=False):
        if ties and self.coin(0.3):  # small integers: exact ties and zeros (max pooling, relu's corner)
            return self.rng.integers(-2, 3, size=shape).astype(np.float64)
        return self.rng.standard_normal(shape)

    def draw(self, **kw):
        """Record drawn values in the configuration; return them (one value: itself)."""
        self.cfg.update(kw)
        vals = tuple(kw.values())
        return vals[0] if len(vals) == 1 else vals

    def where(self, extra=""):
        return f"{self.op} seed={self.seed} {self.cfg}{self.strided_note}{extra}"

    # ---- comparing
    def close(self, d, t, what):
        d, t = as_numpy(d), as_numpy(t)
        if t is None or d is None:
            assert d is None and t is None, self.where(f": {what}: distnn {d is None and 'None'} vs torch "
                                                       f"{t is None and 'None'}")
            return
        assert d.shape == t.shape, self.where(f": {what}: shape {d.shape} vs torch {t.shape}")
        if t.dtype.kind in "biu":
            assert d.dtype.kind in "biu", self.where(f": {what}: dtype {d.dtype} vs torch {t.dtype}")
            assert np.array_equal(d, t), self.where(f": {what} differ:\n{d}\nvs torch\n{t}")
            return
        assert d.dtype == t.dtype, self.where(f": {what}: dtype {d.dtype} vs torch {t.dtype}")
        finite = np.abs(t[np.isfinite(t)])
        scale = max(1.0, float(finite.max()) if finite.size else 0.0)
        np.testing.assert_allclose(d, t, rtol=RTOL, atol=ATOL * scale, equal_nan=True,
                                   err_msg=self.where(f": {what}"))

    def randomize(self, dmod, positive=()):
        """Random weights and buffers in ``dmod`` (float64), so the affine and bias paths are all exercised."""
        dmod.double()
        for name, p in dmod.named_parameters():
            p.data[...] = self.rng.standard_normal(p.shape) / (1.0 if p.ndim <= 1 else math.sqrt(max(p.shape[-1], 1)))
        for name, b in dmod.named_buffers():
            if b is None:
                continue
            if "num_batches_tracked" in name:
                b.data[...] = self.int(0, 4)
            elif "var" in name or any(s in name for s in positive):
                b.data[...] = self.rng.uniform(0.5, 2.0, b.shape)
            elif b.dtype.kind == "f":
                b.data[...] = self.rng.standard_normal(b.shape)

    def run(self, fd, ft, args, dmod=None, tmod=None, steps=1, modes=None, backward=True):
        """Run ``fd(*args)`` in distnn and ``ft(*args)`` in PyTorch ``steps`` times (``args`` a list, or a
        function of the step giving one; ``modes[step]``: the modules' training flag), comparing outputs,
        gradients of the G arguments, parameter gradients and buffers after each. Returns False when
        PyTorch refused the configuration."""
        if dmod is not None:
            copy_distnn_weights(dmod, tmod.double())
        for step in range(steps):
            a = args(step) if callable(args) else args
            if modes is not None and dmod is not None:
                dmod.train(modes[step])
                tmod.train(modes[step])
            strided(self, a)
            self.strided_note = " (strided: " + ", ".join(str(i) for i, v in enumerate(a) if isinstance(v, G) and
                                                           v.strided) + ")"
            dleaves, tleaves = to_distnn(a), to_torch(a)
            dargs, targs = views_of(a, dleaves), views_of(a, tleaves)
            tag = f" step {step}" if steps > 1 else ""
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tout = ft(*targs)
            except (RuntimeError, ValueError, IndexError, TypeError) as e:
                self.refused = e
                if step == 0:
                    try:  # (distnn may be laxer: noted for the hunt's statistics, not a failure)
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            fd(*dargs)
                        self.laxer = True
                    except Exception:  # noqa: BLE001
                        pass
                    return False  # not a valid configuration
                # a later step PyTorch refuses (a batch norm's batch of one in training): distnn refuses it too
                with pytest.raises((ValueError, RuntimeError, IndexError, TypeError)):
                    fd(*dargs)
                return True
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    dout = fd(*dargs)
            except Exception as e:  # noqa: BLE001 - any refusal is a finding
                raise AssertionError(self.where(f": distnn refused a configuration PyTorch accepts{tag}: "
                                                f"{type(e).__name__}: {e}")) from e
            dflat, tflat = flat_outputs(dout), flat_outputs(tout)
            assert len(dflat) == len(tflat), self.where(f": {len(dflat)} outputs vs torch {len(tflat)}")
            for i, (d, t) in enumerate(zip(dflat, tflat)):
                self.close(d, t, f"output {i}{tag}")
            if backward:
                self._backward(dflat, tflat, tag)
                for name, dl, tl in leaves_of(a, dleaves, tleaves):
                    self.close(leaf_grad(dl, tl.shape), leaf_grad(tl, tl.shape), f"gradient of {name}{tag}")
            if dmod is not None:
                tparams = dict(tmod.named_parameters())
                dparams = dict(dmod.named_parameters())
                assert sorted(dparams) == sorted(tparams), self.where(f": parameters {sorted(dparams)} vs "
                                                                      f"{sorted(tparams)}")
                for name, p in dparams.items():
                    self.close(p.data, tparams[name], f"parameter {name}{tag}")
                    if backward:
                        self.close(leaf_grad(p, p.shape), leaf_grad(tparams[name], p.shape), f"gradient of {name}{tag}")
                    p.grad = None
                    tparams[name].grad = None
                tbufs = dict(tmod.named_buffers())
                for name, b in dmod.named_buffers():
                    self.close(b, tbufs.get(name), f"buffer {name}{tag}")
        return True

    def _backward(self, dflat, tflat, tag):
        sd = st = None
        for d, t in zip(dflat, tflat):
            if not (isinstance(t, torch.Tensor) and t.requires_grad):
                continue
            assert isinstance(d, distnn.Tensor) and d.requires_grad, self.where(f": an output needs no gradient{tag}")
            g = self.rng.standard_normal(tuple(t.shape))
            td = (d * distnn.tensor(g)).sum()
            tt = (t * torch.from_numpy(g)).sum()
            sd, st = (td, tt) if sd is None else (sd + td, st + tt)
        if st is not None:
            st.backward()
            sd.backward()


def leaf_grad(x, shape):
    """A leaf's gradient as an array; zeros where none came (PyTorch leaves None for an unused input)."""
    g = x.grad
    if g is None:
        return np.zeros(shape)
    return as_numpy(g)


def op_registry():
    """A fresh ``{name: generator}`` dict of fuzzed ops and the decorator ``@op(name)`` that adds one to it
    (each fuzz file has its own)."""
    ops = {}

    def op(name):
        def register(f):
            ops[name] = f
            return f
        return register
    return ops, op


def layer_input(c, shape):
    """A layer's input: it requires grad, or now and then not (a first layer: parameter gradients only)."""
    return G(c.normal(*shape)) if c.coin(0.85) else C(c.normal(*shape))


def batch_shape(c, *rest):
    """(N, *rest) (N = 0 now and then: an empty batch) or, now and then, unbatched ``rest``."""
    return ((c.int(0, 3) if c.coin(0.1) else c.int(1, 3),) if c.coin(0.8) else ()) + tuple(rest)


def padding_only_window(max_pool, x, k, kw):
    """Whether PyTorch's ``max_pool`` (F.max_pool1d/2d) has a window of padding only on ``x``.

    A dilated window may hold padding only (its cells skip the input): PyTorch's output there is -inf
    and its index (and gradient) goes to a cell outside the window, distnn's nowhere. Left out.
    """
    try:
        return bool(torch.isinf(max_pool(torch.from_numpy(x), k, **{**kw, "return_indices": False})).any())
    except RuntimeError:
        return False


def run_functional_norm(c, shape, C_, w, b, running, f_distnn, f_torch):
    """A functional norm ``f(x, running_mean, running_var, weight, bias)`` in both libraries: outputs and
    gradients, then (``running``) the running statistics each updated, from the same random start."""
    rm, rv = c.rng.standard_normal(C_), c.rng.uniform(0.5, 2, C_)
    store = {}

    def fd(x, wt, bs):
        store["d"] = (distnn.tensor(rm.copy()), distnn.tensor(rv.copy())) if running else (None, None)
        return f_distnn(x, *store["d"], wt, bs)

    def ft(x, wt, bs):
        store["t"] = (torch.tensor(rm.copy()), torch.tensor(rv.copy())) if running else (None, None)
        return f_torch(x, *store["t"], wt, bs)

    ok = c.run(fd, ft, [G(c.normal(*shape)), G(c.normal(C_), False) if w else None,
                        G(c.normal(C_), False) if b else None])
    if ok and running:
        for d, t, name in zip(store["d"], store["t"], ("running_mean", "running_var")):
            c.close(d, t, name)
    return ok


# ---- activations
def activation_input(c):
    shape = tuple(c.dim(4) for _ in range(c.int(0, 4)))
    x = c.normal(*shape, ties=True) * c.pick(1.0, 10.0)
    return c.draw(shape=shape), x


# ---- losses
REDUCTIONS = ("mean", "sum", "none")


def run_cases(name, generate):
    """``generate(Case(name, seed))`` for the CASES seeds from START. It returns falsy where PyTorch refused
    the configuration drawn; with the default 4 cases or more, at least one must have run."""
    torch.set_num_threads(1)
    ran = sum(bool(generate(Case(name, seed))) for seed in range(START, START + CASES))
    assert ran or CASES < 4, f"{name}: PyTorch refused every configuration drawn: the generator is wrong"


def float32_pair(dm, tm, x, rtol=1e-4, atol=1e-5):
    """Forward and backward in float32 in both libraries (PyTorch's weights copied into distnn's module);
    of a tuple output (LSTM's), the first element."""
    copy_torch_weights(tm, dm)
    xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = dm(xd), tm(xt)
    yd, yt = (yd[0], yt[0]) if isinstance(yt, tuple) else (yd, yt)
    assert yd.dtype == np.float32
    g = np.random.default_rng(1).standard_normal(tuple(yt.shape)).astype(np.float32)
    (yd * distnn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(np.asarray(yd.data), yt.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(np.asarray(xd.grad.data), xt.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(tm.named_parameters())
    for name, p in dm.named_parameters():
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(np.asarray(p.grad.data), tparams[name].grad.numpy(), rtol=rtol, atol=1e-4)


def trains(model, x, target, steps, lr):
    """Adam on the MSE of model(x) (of a tuple output, its first element) against target: the first and
    last losses."""
    opt = optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = model(distnn.tensor(x))
        loss = DF.mse_loss(out[0] if isinstance(out, tuple) else out, distnn.tensor(target))
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses[0], losses[-1]
