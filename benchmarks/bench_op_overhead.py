"""Per-op overhead: the fixed cost of one small tensor op, distnn vs PyTorch (the peer) vs bare numpy (the floor).

Each op runs on tensors small enough that the arithmetic is negligible, so the figure is the Python (and C++)
around it: graph recording, checks, layout rules. Every figure is the minimum over ``--repeats`` timings of
``--number`` calls each (the minimum: the machine is shared, and load only ever adds time).

    python benchmarks/bench_op_overhead.py                    # distnn vs torch vs numpy, one table
    python benchmarks/bench_op_overhead.py --trees /tmp/old .  # distnn of two source trees, interleaved

Each implementation (or with ``--trees``, each tree's distnn, ``PYTHONPATH`` set to the tree) runs in a child process
of its own, the children taking turns ``--rounds`` times; each op's figure is its minimum over the rounds, so a
burst of load during one turn cannot make that column look slower than the others.
"""
from __future__ import annotations

from _this_tree import use_this_tree  # (this folder)

use_this_tree()  # distnn of the tree this script is in, not the installed checkout's

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
import timeit

import op_overhead_activations  # (this script's folder: relu, elu, silu... with and without inplace)
import op_overhead_functional  # (this script's folder: more rows, the functional forms' and the in-place methods')
import op_overhead_inplace

SHAPE = (64, 64)       # the elementwise ops' operands
VIEWED = (64, 192)     # the view/reshape input


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--number", type=int, default=2000, help="calls per timing (default 2000)")
    p.add_argument("--repeats", type=int, default=20, help="timings per op; the minimum is reported (default 20)")
    p.add_argument("--trees", nargs="+", default=None, help="compare distnn of these source trees, interleaved")
    p.add_argument("--rounds", type=int, default=3, help="turns each tree or implementation takes (default 3)")
    p.add_argument("--cpu", action="store_true", help="time the process's CPU time, not the wall clock (a machine "
                   "shared with other jobs: waiting for a core is not counted)")
    p.add_argument("--only", default=None, help="op names to run, separated by '|' (default: all)")
    p.add_argument("--worker", choices=("distnn", "torch", "numpy"), default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def distnn_ops():
    import numpy as np

    import distnn
    import distnn.functional as F

    rng = np.random.default_rng(0)
    a_np, b_np = (rng.standard_normal(SHAPE, dtype=np.float32) for _ in range(2))
    a, b = distnn.Tensor(a_np), distnn.Tensor(b_np)
    ag, bg = distnn.Tensor(a_np, requires_grad=True), distnn.Tensor(b_np, requires_grad=True)
    x = distnn.Tensor(rng.standard_normal(VIEWED, dtype=np.float32))
    xt = x.t()
    m1, m2 = (distnn.Tensor(rng.standard_normal((16, 16), dtype=np.float32), requires_grad=True) for _ in range(2))
    mlp = distnn.nn.Sequential(distnn.nn.Linear(16, 32), distnn.nn.ReLU(), distnn.nn.Linear(32, 4))
    opt = distnn.optim.SGD(mlp.parameters(), lr=0.01)
    xb, yb = distnn.Tensor(rng.standard_normal((8, 16), dtype=np.float32)), distnn.Tensor(np.arange(8) % 4)

    def mlp_step():
        opt.zero_grad()
        F.cross_entropy(mlp(xb), yb).backward()
        opt.step()

    def step_alone(cls, **kw):  # an optimizer's step alone, on the gradients of one backward of its own MLP
        net = distnn.nn.Sequential(distnn.nn.Linear(16, 32), distnn.nn.ReLU(), distnn.nn.Linear(32, 4))
        o = cls(net.parameters(), **kw)
        F.cross_entropy(net(xb), yb).backward()
        return o.step

    steps = {"SGD": step_alone(distnn.optim.SGD, lr=0.01), "Adam": step_alone(distnn.optim.Adam, lr=1e-3)}
    changed = (distnn.Tensor(a_np.copy()), distnn.Tensor(np.zeros(SHAPE, np.float32)))
    big = _float32_tensors(lambda a, grad=False: distnn.Tensor(a, requires_grad=grad))
    ones = distnn.ones(SHAPE)
    lerp_backward = lambda: distnn.lerp(ag, bg, 0.1).backward(ones)  # noqa: E731
    return {**_ops(a, b, ag, bg, x, xt, m1, m2, F.relu, mlp_step, steps, changed), **_spread_and_product_ops(*big),
            **op_overhead_functional.clamp_sort_lerp_rows(a, ag, lerp_backward),
            **op_overhead_inplace.tensor_rows(distnn.Tensor),
            **op_overhead_functional.no_grad_view_rows(x, distnn.no_grad),
            **_half_sum_ops(distnn.Tensor), **op_overhead_functional.tensor_rows(distnn, distnn.Tensor),
            **op_overhead_activations.tensor_rows(F, distnn.Tensor, lambda a: distnn.Tensor(a, requires_grad=True),
                                                  ones)}


def torch_ops():
    import numpy as np
    import torch

    torch.set_num_threads(1)
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    a_np, b_np = (rng.standard_normal(SHAPE, dtype=np.float32) for _ in range(2))
    a, b = torch.from_numpy(a_np), torch.from_numpy(b_np)
    ag, bg = a.clone().requires_grad_(), b.clone().requires_grad_()
    x = torch.from_numpy(rng.standard_normal(VIEWED, dtype=np.float32))
    xt = x.t()
    m1, m2 = (torch.from_numpy(rng.standard_normal((16, 16), dtype=np.float32)).requires_grad_() for _ in range(2))
    mlp = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    opt = torch.optim.SGD(mlp.parameters(), lr=0.01)
    xb, yb = torch.from_numpy(rng.standard_normal((8, 16), dtype=np.float32)), torch.from_numpy(np.arange(8) % 4)

    def mlp_step():
        opt.zero_grad()
        F.cross_entropy(mlp(xb), yb).backward()
        opt.step()

    def step_alone(cls, **kw):
        net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
        o = cls(net.parameters(), **kw)
        F.cross_entropy(net(xb), yb).backward()
        return o.step

    steps = {"SGD": step_alone(torch.optim.SGD, lr=0.01), "Adam": step_alone(torch.optim.Adam, lr=1e-3)}
    big = _float32_tensors(lambda a, grad=False: torch.from_numpy(a).requires_grad_(grad))
    ones = torch.ones(SHAPE)
    lerp_backward = lambda: torch.lerp(ag, bg, 0.1).backward(ones)  # noqa: E731
    return {**_ops(a, b, ag, bg, x, xt, m1, m2, F.relu, mlp_step, steps, (a.clone(), torch.zeros(SHAPE))),
            **_spread_and_product_ops(*big),
            **op_overhead_functional.clamp_sort_lerp_rows(a, ag, lerp_backward),
            **op_overhead_inplace.tensor_rows(torch.from_numpy),
            **op_overhead_functional.no_grad_view_rows(x, torch.no_grad),
            **_half_sum_ops(torch.from_numpy), **op_overhead_functional.tensor_rows(torch, torch.from_numpy),
            **op_overhead_activations.tensor_rows(F, torch.from_numpy, lambda a: torch.from_numpy(a).requires_grad_(),
                                                  ones)}


def _ops(a, b, ag, bg, x, xt, m1, m2, relu, mlp_step, steps, changed):
    """The same calls for distnn and torch (their APIs agree on all of these); ``changed``: two tensors changed in
    place (the second zeros, so that doubling it never overflows)."""
    c, d = changed
    return {
        "a + b": lambda: a + b,
        "a - b": lambda: a - b,
        "a + b (grad)": lambda: ag + bg,
        "a * b (grad)": lambda: ag * bg,
        "a.exp()": lambda: a.exp(),
        "a / b": lambda: a / b,
        "a.cumsum(0)": lambda: a.cumsum(0),
        "x.view(64, -1)": lambda: x.view(64, -1),
        "x.reshape(64, -1)": lambda: x.reshape(64, -1),
        "x.t().reshape(192, 1, 64)": lambda: xt.reshape(192, 1, 64),
        "x.t().reshape(-1)": lambda: xt.reshape(-1),
        "x.t()": lambda: x.t(),
        "x[0]": lambda: x[0],
        "x.sum()": lambda: x.sum(),
        "x.isnan()": lambda: x.isnan(),
        "relu(a)": lambda: relu(ag),
        "m1 @ m2 16x16 (grad)": lambda: m1 @ m2,
        "MLP 16-32-4 step": mlp_step,
        "SGD.step() 16-32-4": steps["SGD"],
        "Adam.step() 16-32-4": steps["Adam"],
        "c.add_(1)": lambda: c.add_(1),
        "d.mul_(2)": lambda: d.mul_(2),
    }


def _float32_tensors(make):
    """The variance rows' inputs (4 and 1000 elements, a 256x256 matrix) and the 256x256 product's operands,
    made by ``make(array, grad)``: the same values for each implementation."""
    import numpy as np

    rng = np.random.default_rng(1)
    v4, v1000, m256 = (make(rng.standard_normal(s, dtype=np.float32)) for s in ((4,), (1000,), (256, 256)))
    p1, p2 = (make(rng.standard_normal((256, 256), dtype=np.float32), True) for _ in range(2))
    return v4, v1000, m256, p1, p2


def _spread_and_product_ops(v4, v1000, m256, p1, p2):
    """var/std (unbiased, PyTorch's default) and a larger matrix product: the same calls for distnn and torch."""
    return {
        "v4.var()": lambda: v4.var(),
        "v1000.var()": lambda: v1000.var(),
        "v1000.std()": lambda: v1000.std(),
        "m256.std(1)": lambda: m256.std(1),
        "m256.var(0)": lambda: m256.var(0),
        "p1 @ p2 256x256 (grad)": lambda: p1 @ p2,
    }


def _half_sum_ops(make, numpy_floor=False):
    """Sums and means of a 1024x1024 float16 array (PyTorch adds Half up in float32 and rounds once; so does
    distnn, and so the numpy floor here) over axis 0, 1 and all of it, and sums of the float32 one."""
    import numpy as np

    def page_aligned(a):  # (numpy's float32 sum(0) ran 1.6x slower on one heap placement than another: fix it)
        buf = np.empty(a.nbytes + 4096, np.uint8)
        start = -buf.ctypes.data % 4096
        out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
        out[...] = a
        return out

    rng = np.random.default_rng(2)
    h32 = page_aligned(rng.standard_normal((1024, 1024), dtype=np.float32))
    h16, f32 = make(page_aligned(h32.astype(np.float16))), make(h32)
    def half_row(op, axes):  # (the floor: numpy's float32 sum or mean, rounded once)
        if numpy_floor:
            return lambda: getattr(h16, op)(*axes, dtype=np.float32).astype(np.float16)
        return lambda: getattr(h16, op)(*axes)

    rows = {f"h16.{op}({','.join(map(str, axes))}) 1024^2": half_row(op, axes)
            for op in ("sum", "mean") for axes in ((0,), (1,), ())}
    return {**rows, "f32.sum(0) 1024^2": lambda: f32.sum(0), "f32.sum() 1024^2": lambda: f32.sum()}


def numpy_ops():
    """The floor: the same arithmetic on bare arrays, no graph, no checks."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(SHAPE, dtype=np.float32) for _ in range(2))
    x = rng.standard_normal(VIEWED, dtype=np.float32)
    xt = x.T
    c, d = a.copy(), np.zeros_like(a)
    m1, m2 = (rng.standard_normal((16, 16), dtype=np.float32) for _ in range(2))
    W1, b1 = rng.standard_normal((32, 16), dtype=np.float32), np.zeros(32, np.float32)
    W2, b2 = rng.standard_normal((4, 32), dtype=np.float32), np.zeros(4, np.float32)
    xb, yb = rng.standard_normal((8, 16), dtype=np.float32), np.arange(8) % 4
    rows = np.arange(8)

    def mlp_step():  # forward, softmax cross-entropy, backward, SGD: the arithmetic distnn records
        h = np.maximum(xb @ W1.T + b1, 0)
        z = h @ W2.T + b2
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[rows, yb]).mean()
        p[rows, yb] -= 1
        d2 = p / 8
        dh = (d2 @ W2) * (h > 0)
        for w, g in ((W1, dh.T @ xb), (b1, dh.sum(0)), (W2, d2.T @ h), (b2, d2.sum(0))):
            w -= 0.01 * g
        return loss

    params = [rng.standard_normal(s, dtype=np.float32) for s in ((32, 16), (32,), (4, 32), (4,))]
    grads = [rng.standard_normal(p.shape, dtype=np.float32) for p in params]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    scratch = [(np.empty_like(p), np.empty_like(p)) for p in params]
    adam_t = [0]

    def sgd_step():  # the update alone: p -= lr * g for each of the MLP's four parameters
        for w, g in zip(params, grads):
            w -= 0.01 * g

    def adam_step():  # Adam's arithmetic (bias-corrected, as torch's) on the same four, in place, no temporaries
        adam_t[0] += 1
        step_size, bc2 = 1e-3 / (1 - 0.9 ** adam_t[0]), (1 - 0.999 ** adam_t[0]) ** 0.5
        for w, g, (m, v), (s1, s2) in zip(params, grads, moments, scratch):
            np.subtract(g, m, out=s1)
            s1 *= 0.1
            m += s1
            v *= 0.999
            np.multiply(g, g, out=s1)
            s1 *= 0.001
            v += s1
            np.sqrt(v, out=s2)
            s2 /= bc2
            s2 += 1e-8
            np.divide(m, s2, out=s2)
            s2 *= -step_size
            w += s2

    ops = {
        "a + b": lambda: a + b,
        "a - b": lambda: a - b,
        "a * b (grad)": lambda: a * b,
        "a.exp()": lambda: np.exp(a),
        "a / b": lambda: a / b,
        "a.cumsum(0)": lambda: np.cumsum(a, 0),
        "x.view(64, -1)": lambda: x.reshape(64, -1),
        "x.t().reshape(192, 1, 64)": lambda: xt.reshape(192, 1, 64),
        "x.t().reshape(-1)": lambda: xt.reshape(-1),
        "x.t()": lambda: x.T,
        "x[0]": lambda: x[0],
        "x.sum()": lambda: x.sum(),
        "x.isnan()": lambda: np.isnan(x),
        "relu(a)": lambda: np.maximum(a, 0),
        "m1 @ m2 16x16 (grad)": lambda: m1 @ m2,
        "MLP 16-32-4 step": mlp_step,
        "SGD.step() 16-32-4": sgd_step,
        "Adam.step() 16-32-4": adam_step,
        "c.add_(1)": lambda: np.add(c, 1, out=c),
        "d.mul_(2)": lambda: np.multiply(d, 2, out=d),
    }
    ops["a + b (grad)"] = ops["a + b"]
    v4, v1000, m256, p1, p2 = _float32_tensors(lambda a, grad=False: a)
    ops.update({"v4.var()": lambda: v4.var(ddof=1), "v1000.var()": lambda: v1000.var(ddof=1),
                "v1000.std()": lambda: v1000.std(ddof=1), "m256.std(1)": lambda: m256.std(1, ddof=1),
                "m256.var(0)": lambda: m256.var(0, ddof=1), "p1 @ p2 256x256 (grad)": lambda: p1 @ p2})
    ops["x.reshape(64, -1)"] = ops["x.view(64, -1)"]
    ops["x.t() (no_grad)"], ops["x[0] (no_grad)"] = ops["x.t()"], ops["x[0]"]

    def lerp_backward():  # forward from the nearer end, then g * (1 - w) and g * w
        diff = b - a
        out = a + np.float32(0.1) * diff
        return out, np.float32(0.9) * ones, np.float32(0.1) * ones

    def sort():  # values and indices, as the libraries return them
        order = np.argsort(a, -1)
        return np.take_along_axis(a, order, -1), order

    ones = np.ones(SHAPE, np.float32)
    ops.update({"a.clamp(0, 1)": lambda: np.clip(a, 0, 1), "a.clamp(min=0) (grad)": lambda: np.maximum(a, 0),
                "a.sort(-1)": sort, "lerp(a, b, 0.1) + backward": lerp_backward})
    return {**ops, **op_overhead_inplace.numpy_rows(), **op_overhead_functional.numpy_rows(),
            **_half_sum_ops(lambda a: a, numpy_floor=True), **op_overhead_activations.numpy_rows()}


def measure(ops, number, repeats, only=None, timer=timeit.default_timer):
    out = {}
    for name, f in ops.items():
        if only and name not in only:
            continue
        for _ in range(max(number // 20, 10)):  # warm-up: caches, lazy imports, the allocator
            f()
        out[name] = 1e6 * min(timeit.repeat(f, number=number, repeat=repeats, timer=timer)) / number
    return out


def _run(kind, args, tree=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if tree is not None:
        env["PYTHONPATH"] = os.path.abspath(tree)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--number", str(args.number),
           "--repeats", str(args.repeats)] + (["--only", args.only] if args.only else []) + (["--cpu"] if args.cpu else [])
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=tree or None)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker ({tree or 'this tree'}) failed: exit code {proc.returncode}\n{proc.stdout}")
    return json.loads(proc.stdout.splitlines()[-1])


def _fold(best, got):
    for k, v in got.items():
        best[k] = min(best.get(k, float("inf")), v)


def main(argv=None):
    args = parse_args(argv)
    only = set(args.only.split("|")) if args.only else None
    if args.worker:
        ops = {"distnn": distnn_ops, "torch": torch_ops, "numpy": numpy_ops}[args.worker]()
        timer = time.process_time if args.cpu else timeit.default_timer
        print(json.dumps(measure(ops, args.number, args.repeats, only, timer)))
        return 0
    if args.trees:  # (the peer and the floor take their turns too, after the trees)
        others = ["torch", "numpy"] if importlib.util.find_spec("torch") else ["numpy"]
        best = {t: {} for t in args.trees + others}
        for r in range(args.rounds):
            for t in (args.trees if r % 2 == 0 else args.trees[::-1]):  # (each tree first half the time)
                _fold(best[t], _run("distnn", args, t))
            for k in others:
                _fold(best[k], _run(k, args))
        cols = [(os.path.basename(os.path.abspath(t)) or t, best[t]) for t in args.trees]
        extra = [(k, best[k]) for k in others]
        ratio = "last/first"
    else:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        kinds = ["distnn", "torch", "numpy"] if importlib.util.find_spec("torch") else ["distnn", "numpy"]
        best = {k: {} for k in kinds}
        for r in range(args.rounds):  # (the implementations take turns too)
            for k in (kinds if r % 2 == 0 else kinds[::-1]):
                _fold(best[k], _run(k, args, here if k == "distnn" else None))
        cols = [(k, best[k]) for k in kinds]
        extra, ratio = [], None
    # ratios: distnn / each other column; with --trees, the last tree / the first, and / the peer and the floor
    subject = cols[-1] if ratio else cols[0]
    cols = cols + extra
    others = [c for c in cols if c is not subject and (not ratio or c in extra)]
    names = list(cols[0][1])
    # each column as wide as its name needs, two spaces before it: a tree's name ("wt-runname") is often longer
    # than "distnn", and cut to fit it would run into the column before
    widths = [max(13, len(c) + 5) for c, _ in cols]
    rwidths = [max(9, len(c) + 3) for c, _ in others]
    head = [f"{c + ' us':>{w}}" for (c, _), w in zip(cols, widths)]
    if ratio:
        head.append(f"{ratio:>14}")
    head += [f"{'/' + c:>{w}}" for (c, _), w in zip(others, rwidths)]
    print(f"per-op overhead ({'CPU' if args.cpu else 'wall'} time), min of {args.repeats} x {args.number} calls, "
          f"{args.rounds} interleaved rounds" +
          (f"; columns: {', '.join(args.trees)} (ratios: the last tree / column)" if args.trees
           else "; ratios: distnn / column"))
    print(f"{'op':28}" + "".join(head))
    for n in names:
        vals = [c[1].get(n) for c in cols]
        row = "".join(f"{v:{w}.2f}" if v is not None else f"{'-':>{w}}" for v, w in zip(vals, widths))
        mine = subject[1].get(n)
        if ratio:
            row += f"{mine / vals[0]:14.2f}" if mine and vals[0] else f"{'-':>14}"
        row += "".join(f"{mine / c[1][n]:{w}.2f}" if mine and c[1].get(n) else f"{'-':>{w}}"
                       for c, w in zip(others, rwidths))
        print(f"{n:28}" + row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
