"""Layer benchmark: one training step (forward + loss + backward) of distnn vs PyTorch CPU, 1 thread.

Cases (the issue's targets: distnn within 2.0x of PyTorch on each):

1. ``lenet``        LeNet-5 on 28x28 images, batch 64, cross-entropy.
2. ``lstm``         2-layer LSTM, input and hidden 128, seq 32, batch 32.
3. ``transformer``  2-layer TransformerEncoder, d_model 128, 4 heads, feed-forward 512,
                    seq 64, batch 16, dropout 0 (``--dropout`` to change).
The LSTM and transformer cases also run the *floor*: the same step hand-written in
numpy with no graph (what a numpy implementation can at best reach).

Both frameworks get identical weights and inputs; the LSTM and transformer take
the loss ``sum(output * G)`` for a fixed random ``G``. Steps alternate between the
frameworks (round robin), so machine load hits them alike; after ``--warmup``
untimed steps, the median of ``--repeats`` timed steps is reported.

    python benchmarks/bench_layers.py                     # all cases
    python benchmarks/bench_layers.py --cases lstm --repeats 50
    python benchmarks/bench_layers.py --profile lstm      # cProfile of distnn's step
"""
from __future__ import annotations

from _this_tree import use_this_tree  # (this folder)

use_this_tree()  # distnn of the tree this script is in, not the installed checkout's

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_v] = "1"  # before numpy is imported: BLAS reads these once

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import distnn  # noqa: E402
import distnn.functional as F  # noqa: E402
from distnn import models, nn  # noqa: E402

TARGET = 2.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=["lenet", "lstm", "transformer"],
                   choices=["lenet", "lstm", "transformer"])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--dropout", type=float, default=0.0, help="transformer dropout (default 0)")
    p.add_argument("--profile", choices=["lenet", "lstm", "transformer"], default=None,
                   help="print a cProfile of distnn's step for this case instead of benchmarking")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        p.error(f"--repeats must be >= 1 and --warmup >= 0 (got {args.repeats}, {args.warmup})")
    return args


def _load(tm, dm):
    dm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})


# --------------------------------------------------------------------- cases
def case_lenet(torch, rng, args):
    N = 64
    dm = models.LeNet(in_channels=1, num_classes=10, image_size=28)
    T = torch.nn

    class TLeNet(T.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.pool = T.Conv2d(1, 6, 5, padding=2), T.MaxPool2d(2)
            self.conv2 = T.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = T.Linear(400, 120), T.Linear(120, 84), T.Linear(84, 10)

        def forward(self, x):
            x = self.pool(torch.relu(self.conv1(x)))
            x = self.pool(torch.relu(self.conv2(x))).flatten(1)
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    tm = TLeNet()
    _load(tm, dm)
    x = rng.standard_normal((N, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, N)
    xd, xt, yt = distnn.Tensor(x), torch.tensor(x), torch.tensor(y)

    def step_d():
        dm.zero_grad()
        F.cross_entropy(dm(xd), y).backward()

    def step_t():
        tm.zero_grad()
        torch.nn.functional.cross_entropy(tm(xt), yt).backward()

    return {"distnn": step_d, "torch": step_t}, "LeNet-5 28x28, batch 64"


def case_lstm(torch, rng, args):
    L, N, H = 32, 32, 128
    dm, tm = nn.LSTM(H, H, num_layers=2), torch.nn.LSTM(H, H, num_layers=2)
    _load(tm, dm)
    x = rng.standard_normal((L, N, H)).astype(np.float32)
    g = rng.standard_normal((L, N, H)).astype(np.float32)
    xd, gd, xt, gt = distnn.Tensor(x), distnn.Tensor(g), torch.tensor(x), torch.tensor(g)

    def step_d():
        dm.zero_grad()
        (dm(xd)[0] * gd).sum().backward()

    def step_t():
        tm.zero_grad()
        (tm(xt)[0] * gt).sum().backward()

    weights = [[dm.state_dict()[f"{n}_l{k}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
               for k in range(2)]
    floor = lambda: lstm_floor_step(x, g, weights)  # noqa: E731
    return {"distnn": step_d, "torch": step_t, "floor": floor}, "LSTM 2 layers, hidden 128, seq 32, batch 32"


def case_transformer(torch, rng, args):
    L, N, E, heads, ff = 64, 16, 128, 4, 512
    kw = dict(dim_feedforward=ff, dropout=args.dropout)
    dm = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, heads, **kw), 2)
    tm = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, heads, **kw), 2, enable_nested_tensor=False)
    _load(tm, dm)
    x = rng.standard_normal((L, N, E)).astype(np.float32)
    g = rng.standard_normal((L, N, E)).astype(np.float32)
    xd, gd, xt, gt = distnn.Tensor(x), distnn.Tensor(g), torch.tensor(x), torch.tensor(g)

    def step_d():
        dm.zero_grad()
        (dm(xd) * gd).sum().backward()

    def step_t():
        tm.zero_grad()
        (tm(xt) * gt).sum().backward()

    sd = dm.state_dict()
    weights = [[sd[f"layers.{k}.{n}"] for n in TRANSFORMER_PARAMS] for k in range(2)]
    steps = {"distnn": step_d, "torch": step_t}
    if args.dropout == 0:
        steps["floor"] = lambda: transformer_floor_step(x, g, weights, heads)
    return steps, (f"TransformerEncoder 2 layers, d_model 128, 4 heads, ff {ff}, "
                                                 f"seq 64, batch 16, dropout {args.dropout}")


# ------------------------------------------------------- the numpy floor (LSTM)
def lstm_floor_step(x, g, weights):
    """Forward and backward of a multi-layer LSTM in plain numpy: no graph, no checks, PyTorch gate order."""
    T, N, _ = x.shape
    inp, caches = x, []
    for w_ih, w_hh, b_ih, b_hh in weights:
        H = w_hh.shape[1]
        xw = (inp.reshape(T * N, -1) @ w_ih.T + (b_ih + b_hh)).reshape(T, N, 4 * H)
        h, c = np.zeros((N, H), np.float32), np.zeros((N, H), np.float32)
        hs, cs, acts = [h], [c], []
        for t in range(T):
            a = xw[t] + h @ w_hh.T
            i, f = 1 / (1 + np.exp(-a[:, :H])), 1 / (1 + np.exp(-a[:, H:2 * H]))
            gg, o = np.tanh(a[:, 2 * H:3 * H]), 1 / (1 + np.exp(-a[:, 3 * H:]))
            c = f * c + i * gg
            tc = np.tanh(c)
            h = o * tc
            hs.append(h)
            cs.append(c)
            acts.append((i, f, gg, o, tc))
        caches.append((inp, hs, cs, acts))
        inp = np.stack(hs[1:])
    dout = g
    for (inp, hs, cs, acts), (w_ih, w_hh, b_ih, b_hh) in zip(reversed(caches), reversed(weights)):
        H = w_hh.shape[1]
        dh, dc = np.zeros((N, H), np.float32), np.zeros((N, H), np.float32)
        da = np.empty((T, N, 4 * H), np.float32)
        for t in range(T - 1, -1, -1):
            i, f, gg, o, tc = acts[t]
            dh = dh + dout[t]
            dc = dc + dh * o * (1 - tc * tc)
            da[t, :, :H] = dc * gg * i * (1 - i)
            da[t, :, H:2 * H] = dc * cs[t] * f * (1 - f)
            da[t, :, 2 * H:3 * H] = dc * i * (1 - gg * gg)
            da[t, :, 3 * H:] = dh * tc * o * (1 - o)
            dc = dc * f
            dh = da[t] @ w_hh
        da2 = da.reshape(T * N, 4 * H)
        _dw_ih = da2.T @ inp.reshape(T * N, -1)
        _dw_hh = da2.T @ np.stack(hs[:-1]).reshape(T * N, H)
        _db = da2.sum(0)
        dout = (da2 @ w_ih).reshape(T, N, -1)
    return dout


# ------------------------------------------------- the numpy floor (transformer)
TRANSFORMER_PARAMS = ("self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                      "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                      "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")


def _ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    rstd = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    xh = xc * rstd
    return xh * w + b, (xh, rstd, w)


def _ln_back(dy, cache):
    xh, rstd, w = cache
    dxh = dy * w
    dx = rstd * (dxh - dxh.mean(-1, keepdims=True) - xh * (dxh * xh).mean(-1, keepdims=True))
    return dx, (dy * xh).sum(0), dy.sum(0)


def transformer_floor_step(x, g, weights, heads):
    """Post-norm ReLU encoder layers (seq-first, no dropout, no mask), forward and backward in plain numpy."""
    L, N, E = x.shape
    d = E // heads
    scale = np.float32(1 / np.sqrt(d))
    h2, caches = x.reshape(L * N, E), []

    def split(a):  # (L*N, E) -> (N, heads, L, d)
        return a.reshape(L, N, heads, d).transpose(1, 2, 0, 3)

    def merge(a):  # (N, heads, L, d) -> (L*N, E)
        return a.transpose(2, 0, 1, 3).reshape(L * N, E)

    for w_in, b_in, w_o, b_o, w1, b1, w2, b2, g1, be1, g2, be2 in weights:
        qkv = h2 @ w_in.T + b_in
        q, k, v = split(qkv[:, :E]), split(qkv[:, E:2 * E]), split(qkv[:, 2 * E:])
        s = (q * scale) @ k.swapaxes(-1, -2)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        o2 = merge(p @ v)
        y1, ln1 = _ln(h2 + o2 @ w_o.T + b_o, g1, be1)
        f1 = y1 @ w1.T + b1
        a1 = np.maximum(f1, 0)
        y2, ln2 = _ln(y1 + a1 @ w2.T + b2, g2, be2)
        caches.append((h2, q, k, v, p, o2, y1, ln1, f1, a1, ln2))
        h2 = y2
    dh = g.reshape(L * N, E)
    for (h_in, q, k, v, p, o2, y1, ln1, f1, a1, ln2), (w_in, _, w_o, _, w1, _, w2, _, _, _, _, _) in zip(
            reversed(caches), reversed(weights)):
        dr2, _dg2, _db2 = _ln_back(dh, ln2)
        _dw2, _db2 = dr2.T @ a1, dr2.sum(0)
        df1 = (dr2 @ w2) * (f1 > 0)
        _dw1, _db1 = df1.T @ y1, df1.sum(0)
        dr1, _dg1, _db1 = _ln_back(dr2 + df1 @ w1, ln1)
        _dwo, _dbo = dr1.T @ o2, dr1.sum(0)
        do4 = split(dr1 @ w_o)
        dv = p.swapaxes(-1, -2) @ do4
        dp = do4 @ v.swapaxes(-1, -2)
        ds = p * (dp - (dp * p).sum(-1, keepdims=True)) * scale
        dqkv = np.concatenate([merge(ds @ k), merge(ds.swapaxes(-1, -2) @ q), merge(dv)], axis=1)
        _dw_in, _db_in = dqkv.T @ h_in, dqkv.sum(0)
        dh = dr1 + dqkv @ w_in
    return dh.reshape(L, N, E)


# ------------------------------------------------------------------ driver
def bench(steps, warmup, repeats):
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    times = {k: [] for k in steps}
    for _ in range(repeats):  # round robin: load hits every framework alike
        for k, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


CASES = {"lenet": case_lenet, "lstm": case_lstm, "transformer": case_transformer}


def main(argv=None):
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("bench_layers: PyTorch is the peer of this benchmark and is not installed", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    torch.manual_seed(0)
    distnn.manual_seed(0)
    rng = np.random.default_rng(0)
    if args.profile:
        import cProfile
        import pstats

        steps, label = CASES[args.profile](torch, rng, args)
        for _ in range(args.warmup):
            steps["distnn"]()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.repeats):
            steps["distnn"]()
        prof.disable()
        print(f"cProfile of distnn, {args.repeats} steps of {label}")
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return 0
    print(f"bench_layers: 1 thread, warm-up {args.warmup}, median of {args.repeats} steps (ms per train step)")
    print(f"{'case':<12} {'distnn':>9} {'torch':>9} {'floor':>9} {'distnn/torch':>13} {'distnn/floor':>13}  target")
    worst = 0.0
    for name in args.cases:
        steps, label = CASES[name](torch, rng, args)
        ms = bench(steps, args.warmup, args.repeats)
        ratio = ms["distnn"] / ms["torch"]
        worst = max(worst, ratio)
        floor = f"{ms['floor']:9.2f}" if "floor" in ms else f"{'-':>9}"
        vs_floor = f"{ms['distnn'] / ms['floor']:13.2f}" if "floor" in ms else f"{'-':>13}"
        ok = "ok" if ratio <= TARGET else "MISSED"
        print(f"{name:<12} {ms['distnn']:9.2f} {ms['torch']:9.2f} {floor} {ratio:13.2f} {vs_floor}  "
              f"<= {TARGET} {ok}   ({label})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
