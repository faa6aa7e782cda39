"""Survey: which public ops print numpy's floating-point RuntimeWarnings ("overflow encountered in multiply",
"divide by zero encountered in log", ...) in distnn where PyTorch prints none, forward or backward.

Not a timing: every op that distnn and PyTorch both have (top level and ``nn.functional``) is called with the
same awkward float32 values (0, -0, 1e-45, 3e38, -3e38, inf, -inf, NaN, ...; two operands: every pair of them),
the same way in both (``f(x)``, else ``f(x, 0)``, and ``f(x, y)``), plus hand-written calls for the matmul
family and the losses. Each call that PyTorch accepts is run in distnn with its warnings recorded, then its
backward (a gradient of ones). Ops are listed where distnn warns and PyTorch does not, and where the two give
different inf/NaN positions.

    python benchmarks/survey_fp_warnings.py            # the list
    python benchmarks/survey_fp_warnings.py --verbose  # and every call tried
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # (this tree's distnn)

VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e-45, 1e20, 1e38, 3e38, -3e38, 100.0, -100.0, 1000.0,
          math.inf, -math.inf, math.nan]
# (stateful, random or I/O calls, and in-place forms: their values cannot be compared, or they change settings)
SKIP_WORDS = ("set_", "seed", "save", "load", "rand", "normal", "bernoulli", "poisson", "multinomial", "binomial", "dropout",
              "compile", "deterministic", "use_", "empty", "get_", "is_", "manual", "cuda", "device", "print",
              "fork", "from_", "frombuffer", "asarray", "tensor", "vmap", "grad", "jit", "sym", "cond", "while")


def _grid():
    """Unary operand: every value once; binary operands: every pair."""
    v = np.array(VALUES, dtype=np.float32)
    x, y = np.meshgrid(v, v, indexing="ij")
    return v, x.ravel().copy(), y.ravel().copy()


def hand_cases():
    """(name, call) where ``call(lib, F, T)`` builds the inputs with ``T(array)`` (a leaf requiring grad)."""
    big = np.full((3, 3), 1e30, np.float32)
    mixed = np.array([[1e30, 0.0, 1.0], [np.inf, 1.0, 0.0], [-1e30, 2.0, np.nan]], np.float32)
    v3 = np.array([1e30, 1e30, 0.0], np.float32)
    p01 = np.array([0.0, 1.0, 0.5, 1.0, 0.0], np.float32)
    t01 = np.array([1.0, 0.0, 0.5, 1.0, 0.0], np.float32)
    logits = np.array([[1e38, -1e38, 0.0], [np.inf, 1.0, 0.0], [-np.inf, -np.inf, 0.0], [1000.0, -1000.0, 0.0]],
                      np.float32)
    labels = np.array([0, 1, 2, 1])
    wide = np.array([1000.0, -1000.0, 1e38, -1e38, 0.0, 100.0], np.float32)
    zeros = np.zeros((2, 3), np.float32)

    def lab(lib):
        return lib.tensor(labels) if hasattr(lib, "tensor") else lib.Tensor(labels)

    return [
        ("mm overflow", lambda lib, F, T: lib.mm(T(big), T(big))),
        ("mm inf*0", lambda lib, F, T: lib.mm(T(mixed), T(mixed))),
        ("matmul overflow", lambda lib, F, T: lib.matmul(T(big), T(big))),
        ("@ overflow", lambda lib, F, T: T(big) @ T(big)),
        ("bmm overflow", lambda lib, F, T: lib.bmm(T(big[None]), T(big[None]))),
        ("dot overflow", lambda lib, F, T: lib.dot(T(v3), T(v3))),
        ("mv overflow", lambda lib, F, T: lib.mv(T(big), T(v3))),
        ("addmm overflow", lambda lib, F, T: lib.addmm(T(big), T(big), T(big))),
        ("baddbmm overflow", lambda lib, F, T: lib.baddbmm(T(big[None]), T(big[None]), T(big[None]))),
        ("einsum overflow", lambda lib, F, T: lib.einsum("ij,jk->ik", T(big), T(big))),
        ("tensordot overflow", lambda lib, F, T: lib.tensordot(T(big), T(big), dims=1)),
        ("outer overflow", lambda lib, F, T: lib.outer(T(v3), T(v3))),
        ("inner overflow", lambda lib, F, T: lib.inner(T(v3), T(v3))),
        ("linear overflow", lambda lib, F, T: F.linear(T(big), T(big), T(v3))),
        ("sum overflow", lambda lib, F, T: T(v3).sum()),
        ("mean overflow", lambda lib, F, T: T(v3).mean()),
        ("prod overflow", lambda lib, F, T: T(v3).prod()),
        ("cumsum overflow", lambda lib, F, T: T(v3).cumsum(0)),
        ("cumprod overflow", lambda lib, F, T: T(v3).cumprod(0)),
        ("var overflow", lambda lib, F, T: T(v3).var()),
        ("std overflow", lambda lib, F, T: T(v3).std()),
        ("norm overflow", lambda lib, F, T: T(v3).norm()),
        ("logsumexp big", lambda lib, F, T: lib.logsumexp(T(wide), 0)),
        ("square big", lambda lib, F, T: T(wide).square()),
        ("pow 2 big", lambda lib, F, T: T(wide) ** 2),
        ("pow -1 zero", lambda lib, F, T: T(wide) ** -1),
        ("rpow big", lambda lib, F, T: 2.0 ** T(wide)),
        ("rdiv zero", lambda lib, F, T: 1.0 / T(wide)),
        ("mul scalar big", lambda lib, F, T: T(wide) * 1e10),
        ("add scalar big", lambda lib, F, T: T(wide) + 3e38),
        ("softplus", lambda lib, F, T: F.softplus(T(wide))),
        ("softplus beta", lambda lib, F, T: F.softplus(T(wide), beta=2.0, threshold=50.0)),
        ("sigmoid", lambda lib, F, T: lib.sigmoid(T(wide))),
        ("logsigmoid", lambda lib, F, T: F.logsigmoid(T(wide))),
        ("silu", lambda lib, F, T: F.silu(T(wide))),
        ("mish", lambda lib, F, T: F.mish(T(wide))),
        ("gelu", lambda lib, F, T: F.gelu(T(wide))),
        ("gelu tanh", lambda lib, F, T: F.gelu(T(wide), approximate="tanh")),
        ("elu", lambda lib, F, T: F.elu(T(wide))),
        ("selu", lambda lib, F, T: F.selu(T(wide))),
        ("celu", lambda lib, F, T: F.celu(T(wide), alpha=0.5)),
        ("tanh", lambda lib, F, T: lib.tanh(T(wide))),
        ("softmax", lambda lib, F, T: F.softmax(T(logits), dim=1)),
        ("log_softmax", lambda lib, F, T: F.log_softmax(T(logits), dim=1)),
        ("cross_entropy", lambda lib, F, T: F.cross_entropy(T(logits), lab(lib))),
        ("cross_entropy smoothing", lambda lib, F, T: F.cross_entropy(T(logits), lab(lib), label_smoothing=0.1)),
        ("nll_loss", lambda lib, F, T: F.nll_loss(F.log_softmax(T(logits), dim=1), lab(lib))),
        ("binary_cross_entropy 0/1", lambda lib, F, T: F.binary_cross_entropy(T(p01), T(t01))),
        ("bce_with_logits", lambda lib, F, T: F.binary_cross_entropy_with_logits(T(wide), T(np.ones(6, np.float32)))),
        ("bce_with_logits pos_weight", lambda lib, F, T: F.binary_cross_entropy_with_logits(
            T(wide), T(np.zeros(6, np.float32)), pos_weight=T(np.full(6, 2.0, np.float32)))),
        ("kl_div", lambda lib, F, T: F.kl_div(T(np.log(t01 + 1e-3)), T(t01), reduction="sum")),
        ("kl_div log_target", lambda lib, F, T: F.kl_div(T(wide), T(wide), reduction="sum", log_target=True)),
        ("poisson_nll_loss", lambda lib, F, T: F.poisson_nll_loss(T(wide), T(np.abs(wide)))),
        ("poisson_nll_loss full", lambda lib, F, T: F.poisson_nll_loss(T(wide), T(np.abs(wide)), full=True)),
        ("gaussian_nll_loss", lambda lib, F, T: F.gaussian_nll_loss(T(wide), T(wide), T(np.abs(wide) + 1))),
        ("mse_loss big", lambda lib, F, T: F.mse_loss(T(wide), T(-wide))),
        ("l1_loss big", lambda lib, F, T: F.l1_loss(T(wide), T(-wide))),
        ("smooth_l1_loss big", lambda lib, F, T: F.smooth_l1_loss(T(wide), T(-wide))),
        ("huber_loss big", lambda lib, F, T: F.huber_loss(T(wide), T(-wide))),
        ("soft_margin_loss", lambda lib, F, T: F.soft_margin_loss(T(wide), T(-np.sign(wide) - (wide == 0)))),
        ("multilabel_soft_margin", lambda lib, F, T: F.multilabel_soft_margin_loss(T(logits), T(np.ones_like(logits)))),
        ("normalize zeros", lambda lib, F, T: F.normalize(T(zeros), dim=1)),
        ("cosine_similarity zeros", lambda lib, F, T: F.cosine_similarity(T(zeros), T(zeros), dim=1)),
        ("layer_norm inf", lambda lib, F, T: F.layer_norm(T(mixed), (3,))),
        ("layer_norm const", lambda lib, F, T: F.layer_norm(T(np.full((2, 3), 1e30, np.float32)), (3,))),
        ("pairwise_distance big", lambda lib, F, T: F.pairwise_distance(T(big), T(-big))),
        ("cdist big", lambda lib, F, T: lib.cdist(T(big), T(-big))),
    ]


class _TimedOut(Exception):
    pass


def _alarm(*_):
    raise _TimedOut()


def _numpy_warnings(record):
    return sorted({f"{w.category.__name__}: {w.message}" for w in record if "encountered" in str(w.message)})


def _to_np(t):
    return None if t is None else t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _same(a, b):
    """Same inf/NaN positions and roughly the same finite values (None: cannot say)."""
    try:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if a.shape != b.shape:
        return None
    if not np.array_equal(np.isnan(a), np.isnan(b)) or not np.array_equal(np.isposinf(a), np.isposinf(b)):
        return False
    if not np.array_equal(np.isneginf(a), np.isneginf(b)):
        return False
    fin = np.isfinite(a) & np.isfinite(b)
    with np.errstate(all="ignore"):
        return bool(np.allclose(a[fin], b[fin], rtol=1e-3, atol=1e-5))


def run_one(call, lib, F, T):
    """``(out, fwd_warnings, grads, bwd_warnings)`` or raises what the call raised."""
    leaves = []

    def make(arr):
        t = T(arr)
        leaves.append(t)
        return t

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = call(lib, F, make)
    fwd = _numpy_warnings(rec)
    if isinstance(out, tuple):
        out = out[0]
    grads, bwd = None, []
    if getattr(out, "requires_grad", False) and str(out.dtype).endswith(("float32", "float64")):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            out.backward(lib.ones_like(out))
        bwd = _numpy_warnings(rec)
        grads = [_to_np(t.grad) for t in leaves]
    return _to_np(out), fwd, grads, bwd


def auto_cases(names, lib_d, lib_t):
    v, x, y = _grid()
    for name in names:
        fd, ft = getattr(lib_d, name), getattr(lib_t, name)
        for label, args in ((f"{name}(x)", (v,)), (f"{name}(x, 0)", (v, 0)), (f"{name}(x, y)", (x, y))):
            def call(lib, F, T, _name=name, _args=args, _lib_d=lib_d, _lib_t=lib_t):
                f = getattr(_lib_d if lib.__name__ == "distnn" else _lib_t, _name)
                return f(*(T(a) if isinstance(a, np.ndarray) else a for a in _args))
            yield label, call


def public_names(mod_d, mod_t):
    names = []
    for n in sorted(set(dir(mod_d)) & set(dir(mod_t))):
        if n.startswith("_") or n.endswith("_") or any(w in n for w in SKIP_WORDS):
            continue
        fd, ft = getattr(mod_d, n), getattr(mod_t, n)
        if callable(fd) and callable(ft) and not isinstance(fd, type) and not isinstance(ft, type):
            names.append(n)
    return names


def survey(verbose=False):
    import torch
    import torch.nn.functional as TF

    import distnn
    import distnn.functional as DF

    def t_leaf(arr):
        return torch.tensor(arr, requires_grad=arr.dtype.kind == "f")

    def d_leaf(arr):
        return distnn.tensor(arr, requires_grad=arr.dtype.kind == "f")

    cases = list(auto_cases(public_names(distnn, torch), distnn, torch))
    cases += [(f"F.{l}", c) for l, c in auto_cases(public_names(DF, TF), DF, TF)]
    cases += hand_cases()
    signal.signal(signal.SIGALRM, _alarm)
    loud, differ, tried = [], [], 0
    for label, call in cases:
        if verbose:
            print(f"{label} ...", flush=True)
        try:
            signal.alarm(5)
            t_out, t_fwd, t_grads, t_bwd = run_one(call, torch, TF, t_leaf)
        except Exception:  # (PyTorch refuses this call: nothing to compare)
            continue
        finally:
            signal.alarm(0)
        try:
            signal.alarm(5)
            d_out, d_fwd, d_grads, d_bwd = run_one(call, distnn, DF, d_leaf)
        except Exception as exc:
            if verbose:
                print(f"  {label}: distnn raised {type(exc).__name__}: {str(exc)[:100]}")
            continue
        finally:
            signal.alarm(0)
        tried += 1
        extra_f = [w for w in d_fwd if w not in t_fwd]
        extra_b = [w for w in d_bwd if w not in t_bwd]
        if extra_f or extra_b:
            loud.append((label, extra_f, extra_b))
        same_out = _same(d_out, t_out)
        same_grads = None if d_grads is None or t_grads is None else all(
            _same(a, b) is not False for a, b in zip(d_grads, t_grads) if a is not None and b is not None)
        if same_out is False or same_grads is False:
            differ.append((label, "forward" if same_out is False else "backward"))
        if verbose:
            print(f"  {label}: fwd {d_fwd} bwd {d_bwd} same {same_out}/{same_grads}")
    return tried, loud, differ


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    tried, loud, differ = survey(args.verbose)
    print(f"{tried} calls compared (both libraries accepted them)")
    print(f"\n{len(loud)} warn in distnn and not in PyTorch:")
    for label, f, b in loud:
        print(f"  {label:40} forward: {'; '.join(f) or '-'}   backward: {'; '.join(b) or '-'}")
    print(f"\n{len(differ)} give other inf/NaN positions or values than PyTorch (not warnings; for the record):")
    for label, where in differ:
        print(f"  {label:40} {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
