"""GPU training-step benchmark: distnn on cupy vs the cupy floor vs PyTorch CUDA, in one process.

MLP 784-512-256-10 (ReLU, cross-entropy, SGD momentum 0.9), float32, synthetic data already on the
GPU, at several batch sizes:
  * floor   the same math hand-written in cupy, no graph (what distnn on cupy can at best reach)
  * distnn  nn.Sequential + F.cross_entropy + loss.backward() + optim.SGD, arrays on the GPU
  * torch   the same model in torch.nn on CUDA (when torch sees a GPU)
Implementations take turns section by section (round robin), each section timed between device
synchronisations; the table shows the median section throughput and time ratios.

    python benchmarks/bench_gpu.py                    # batches 128 and 1024
    python benchmarks/bench_gpu.py --batches 64 --steps 50

A large batch shows the kernels (the floor's and torch's cuBLAS are the same GEMMs); a small batch
shows the per-op Python overhead that a GPU cannot hide.
"""
from __future__ import annotations

from _this_tree import use_this_tree  # (this folder)

use_this_tree()  # distnn of the tree this script is in, not the installed checkout's

import argparse
import statistics
import sys
import time

SIZES = (784, 512, 256, 10)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[128, 1024])
    p.add_argument("--steps", type=int, default=40, help="steps per timed section")
    p.add_argument("--sections", type=int, default=15)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--no-torch", action="store_true")
    return p.parse_args(argv)


def _init(rng):
    """He-uniform weights and zero biases, as float32 host arrays (shared by every implementation)."""
    import numpy as np

    ws = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = (6.0 / fan_in) ** 0.5
        ws.append((rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32), np.zeros(fan_out, np.float32)))
    return ws


def floor_step_fn(cp, init, lr):
    params = [cp.asarray(a) for wb in init for a in wb]
    bufs = [cp.zeros_like(p) for p in params]

    def step(x, y):
        (w1, b1, w2, b2, w3, b3) = params
        h1 = cp.maximum(x @ w1.T + b1, 0)
        h2 = cp.maximum(h1 @ w2.T + b2, 0)
        z = h2 @ w3.T + b3
        z = z - z.max(axis=1, keepdims=True)
        p = cp.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        n = x.shape[0]
        g3 = p
        g3[cp.arange(n), y] -= 1
        g3 /= n
        gh2 = (g3 @ w3) * (h2 > 0)
        gh1 = (gh2 @ w2) * (h1 > 0)
        grads = (gh1.T @ x, gh1.sum(0), gh2.T @ h1, gh2.sum(0), g3.T @ h2, g3.sum(0))
        for prm, buf, g in zip(params, bufs, grads):
            buf *= 0.9
            buf += g
            prm -= lr * buf
    return step


def distnn_step_fn(init, lr):
    import distnn as dn
    from distnn import nn, optim

    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for m, (w, b) in zip(linears, init):
        m.weight.data, m.bias.data = w.copy(), b.copy()
    model.to("cuda")
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        loss = dn.functional.cross_entropy(model(dn.Tensor(x)), y)
        loss.backward()
        opt.step()
    return step


def torch_step_fn(torch, init, lr):
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10)).cuda()
    with torch.no_grad():
        for m, (w, b) in zip([m for m in model if isinstance(m, torch.nn.Linear)], init):
            m.weight.copy_(torch.from_numpy(w))
            m.bias.copy_(torch.from_numpy(b))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = torch.nn.functional.cross_entropy

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def main(argv=None):
    import numpy as np

    args = parse_args(argv)  # (--help works without a GPU)
    try:
        import cupy as cp

        cp.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001 - no cupy, no driver, no device: one line, not a traceback
        print(f"bench_gpu: no usable GPU here ({type(e).__name__}: {' '.join(str(e).split())}); it needs cupy "
              "and a CUDA device", file=sys.stderr)
        return 2
    torch = None
    if not args.no_torch:
        try:
            import torch

            if not torch.cuda.is_available():
                torch = None
        except ImportError:
            torch = None
    dev = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    print(f"device: {dev['name'].decode()}, cupy {cp.__version__}" + (f", torch {torch.__version__}" if torch else ""))
    print(f"MLP {'-'.join(map(str, SIZES))}, float32, SGD momentum 0.9; median of {args.sections} sections of "
          f"{args.steps} steps, implementations interleaved")
    print(f"{'batch':>6} {'impl':>7} {'steps/s':>9} {'samples/s':>11} {'ms/step':>8} {'vs floor':>9} {'vs torch':>9}")
    for batch in args.batches:
        rng = np.random.default_rng(0)
        init = _init(rng)
        x_host = rng.standard_normal((batch, 784)).astype(np.float32)
        y_host = rng.integers(0, 10, batch)
        x, y, sync = cp.asarray(x_host), cp.asarray(y_host), cp.cuda.Device().synchronize
        impls = {"floor": (floor_step_fn(cp, init, args.lr), x, y, sync),
                 "distnn": (distnn_step_fn(init, args.lr), x, y, sync)}
        if torch is not None:
            impls["torch"] = (torch_step_fn(torch, init, args.lr), torch.from_numpy(x_host).cuda(),
                              torch.from_numpy(y_host).cuda(), torch.cuda.synchronize)
        times = {k: [] for k in impls}
        for name, (step, x, y, sync) in impls.items():
            for _ in range(args.warmup):
                step(x, y)
            sync()
        for _ in range(args.sections):
            for name, (step, x, y, sync) in impls.items():
                sync()
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step(x, y)
                sync()
                times[name].append((time.perf_counter() - t0) / args.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        for name, t in med.items():
            vs_torch = f"{t / med['torch']:9.2f}" if "torch" in med else f"{'-':>9}"
            print(f"{batch:>6} {name:>7} {1 / t:9.0f} {batch / t:11.0f} {1000 * t:8.3f} {t / med['floor']:9.2f} "
                  f"{vs_torch}")
    print("(ratios are time ratios: implementation time / reference time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
