"""The machinery of the random autograd programs (tests/test_autograd_fuzz.py, tests/test_autograd_api_fuzz.py): a
program's values, each a distnn/PyTorch pair (Pair); running one op in both libraries (both raise or both return);
building a program from its seed and the backward that compares every leaf's gradient and every hook's
(ProgramRunner); the op generators are tests/autograd_fuzz_ops.py's Program.

``DISTNN_FUZZ_PROGRAMS`` sets the number of programs (default 500), ``DISTNN_FUZZ_START`` the first seed."""
from __future__ import annotations

import contextlib
import os
import random
import re

import numpy as np
import pytest

import distnn
from distnn.autograd.function import Function

torch = pytest.importorskip("torch")

TF = torch.nn.functional
PROGRAMS = int(os.environ.get("DISTNN_FUZZ_PROGRAMS", "500"))
START = int(os.environ.get("DISTNN_FUZZ_START", "0"))
RTOL, ATOL = 1e-9, 1e-10


class Skip(Exception):
    """The op drawn does not apply to the operands drawn (shape, range): draw another."""


class Pair:
    """One value of the program: distnn's tensor ``d`` and PyTorch's ``t``."""

    def __init__(self, d, t, name, view=False):
        self.d, self.t, self.name, self.view = d, t, name, view

    @property
    def rg(self):
        return bool(self.t.requires_grad)

    @property
    def shape(self):
        return tuple(self.t.shape)

    def values(self):
        return self.t.detach().numpy()


def _both(fd, ft):
    """Run ``fd`` (distnn) and ``ft`` (torch); both raise, or both return. Returns (d, t) or raises
    Mismatch / Refused."""
    errs = []
    out = []
    for f in (fd, ft):
        try:
            out.append(f())
            errs.append(None)
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            out.append(None)
            errs.append(e)
    return out, errs


class Mismatch(AssertionError):
    pass


def _unannotated_refusal(message: str) -> bool:
    """distnn's version-check error names the node; True when that op does not declare ``reads`` (it may
    check more than PyTorch: accepted and documented), or distnn's documented refusal of an in-place op
    on a tensor another tensor views by reshape/transpose/detach."""
    if "other than by indexing" in message or "views its memory" in message or "another live tensor" in message:
        return True
    m = re.search(r"of (\w+) is at version", message)
    if not m:
        return False
    name = m.group(1)
    classes = {c.__name__: c for c in _all_functions()}
    cls = classes.get(name)
    return cls is not None and cls.reads is None


def _all_functions():
    seen, todo = [], [Function]
    while todo:
        c = todo.pop()
        for s in c.__subclasses__():
            if s not in seen:
                seen.append(s)
                todo.append(s)
    return seen



class ProgramRunner:
    """A random program's state and the steps every op shares (draw a value, run in both libraries, compare),
    the whole program built from its seed and its backward compared; the ops themselves are a subclass's
    ``op_*`` methods, drawn by its ``step()``."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.np = np.random.default_rng(seed)
        self.seed = seed
        self.pool: list[Pair] = []
        self.leaves: list[Pair] = []
        self.retained: list[Pair] = []
        self.log = {"d": [], "t": []}
        self.trace: list[str] = []
        self.lax = 0  # accepted differences (distnn stricter in an unannotated op)
        # views with a register_hook hook: PyTorch drops such a hook (it never runs) once the view or its base is
        # changed in place, as it regenerates the view's grad_fn; distnn keeps it, as PyTorch documents for
        # tensors. No in-place op is drawn on their memory.
        self.hooked_views = []

    # ------------------------------------------------------------ values
    def leaf(self, shape, rg=True, positive=False, name=None):
        a = self.np.standard_normal(shape)
        if positive:
            a = np.abs(a) + 0.5
        d = distnn.tensor(a.copy(), requires_grad=rg)
        t = torch.tensor(a.copy(), dtype=torch.float64, requires_grad=rg)
        p = Pair(d, t, name or f"leaf{len(self.pool)}")
        self.pool.append(p)
        if rg:
            self.leaves.append(p)
        return p

    def const(self, shape):
        return self.np.standard_normal(shape)

    def pick(self, pred=lambda p: True):
        cands = [p for p in self.pool if pred(p)]
        if not cands:
            raise Skip
        # later values more often: deeper programs
        weights = [1 + i for i in range(len(cands))]
        return self.rng.choices(cands, weights)[0]

    def add(self, d, t, name, view=False):
        p = Pair(d, t, name, view)
        self.pool.append(p)
        return p

    # ------------------------------------------------------------ running an op in both
    def run(self, name, fd, ft, keep=True, view=False):
        (d, t), (ed, et) = _both(fd, ft)
        self.trace.append(name)
        if (ed is None) != (et is None):
            if ed is not None and _unannotated_refusal(str(ed)):
                self.lax += 1
                raise Skip
            raise Mismatch(f"seed {self.seed}: {name}: distnn {'raised ' + repr(ed) if ed else 'ran'}, torch "
                           f"{'raised ' + repr(et) if et else 'ran'}\n" + "\n".join(self.trace))
        if ed is not None:
            raise Skip  # both refused: a valid outcome, nothing to keep
        if keep:
            p = self.add(d, t, name, view)
            self.check_values(p)
            return p
        return None

    def check_values(self, p):
        dv = np.asarray(p.d.data)
        tv = p.values()
        if dv.shape != tv.shape:
            raise Mismatch(f"seed {self.seed}: {p.name}: shape {dv.shape} != torch {tv.shape}\n"
                           + "\n".join(self.trace))
        if dv.dtype.kind == "f" and dv.dtype != tv.dtype:
            raise Mismatch(f"seed {self.seed}: {p.name}: dtype {dv.dtype} != torch {tv.dtype}")
        np.testing.assert_allclose(dv, tv, rtol=RTOL, atol=ATOL, equal_nan=True,
                                   err_msg=f"seed {self.seed}: values of {p.name}\n" + "\n".join(self.trace))


    # ------------------------------------------------------------ the whole program
    def build(self):
        self.leaf((3, 4), name="x")
        self.leaf((3, 4), positive=True, name="y")
        self.leaf((4, 4), name="W")
        self.leaf((4,), name="b")
        self.leaf((3, 1), name="s")
        self.leaf((3, 4), rg=False, name="C")
        steps = self.rng.randrange(4, 14)
        done = 0
        tries = 0
        while done < steps and tries < 200:
            tries += 1
            try:
                self.step()
                done += 1
            except Skip:
                continue

    def backward_and_compare(self):
        outs = [p for p in self.pool if p.rg]
        chosen = outs[-3:] + self.rng.sample(outs, min(2, len(outs)))
        weights = [self.const(p.shape) for p in chosen]
        passes = self.rng.choice([1, 1, 2])
        for lib in ("d", "t"):
            total = None
            for p, w in zip(chosen, weights):
                x = p.d if lib == "d" else p.t
                term = (x * (distnn.tensor(w) if lib == "d" else torch.tensor(w))).sum()
                total = term if total is None else total + term
            setattr(self, "loss_" + lib, total)
        results = {}
        for lib in ("d", "t"):
            loss = getattr(self, "loss_" + lib)
            err = None
            try:
                for i in range(passes):
                    loss.backward(retain_graph=i + 1 < passes)
            except RuntimeError as e:
                err = e
            results[lib] = err
        ed, et = results["d"], results["t"]
        self.trace.append(f"backward x{passes} of {[p.name for p in chosen]}")
        if (ed is None) != (et is None):
            if ed is not None and _unannotated_refusal(str(ed)):
                self.lax += 1
                return "lax"
            raise Mismatch(f"seed {self.seed}: backward: distnn {ed!r} torch {et!r}\n" + "\n".join(self.trace))
        if ed is not None:
            return "raised"
        ctx = "\n".join(self.trace)
        for p in self.leaves + self.retained:
            gd, gt = p.d.grad, p.t.grad
            if (gd is None) != (gt is None):
                # a leaf no gradient reached: PyTorch leaves None, distnn too; a zero gradient is the same
                if not ((gd is None and not np.any(gt.numpy())) or (gt is None and not np.any(np.asarray(gd)))):
                    raise Mismatch(f"seed {self.seed}: grad of {p.name}: distnn {gd} torch {gt}\n{ctx}")
                continue
            if gd is not None:
                np.testing.assert_allclose(np.asarray(gd), gt.numpy(), rtol=1e-8, atol=1e-9, equal_nan=True,
                                           err_msg=f"seed {self.seed}: grad of {p.name}\n{ctx}")
        # (the order between hooks of different tensors is the engine's schedule: compared per hook)
        ld, lt = (sorted(self.log[k], key=lambda e: e[0]) for k in ("d", "t"))
        if [t for t, _ in ld] != [t for t, _ in lt]:
            raise Mismatch(f"seed {self.seed}: hook calls distnn {[t for t, _ in ld]} torch {[t for t, _ in lt]}"
                           f"\n{ctx}")
        for (tag, a), (_, b) in zip(ld, lt):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-9, equal_nan=True,
                                       err_msg=f"seed {self.seed}: gradient seen by {tag}\n{ctx}")
        return "ok"


class _Diverged(Exception):
    pass


def _broadcasts(s1, s2):
    try:
        np.broadcast_shapes(s1, s2)
        return True
    except ValueError:
        return False


def _broadcasts_to(src, dst):
    try:
        return np.broadcast_shapes(src, dst) == tuple(dst)
    except ValueError:
        return False


@contextlib.contextmanager
def _quiet_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
