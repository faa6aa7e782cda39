"""Seeded fuzz of the functional gaps closed for torch 2.13 against PyTorch (the oracle), with
tests/layer_fuzz_harness.py: random valid arguments and shapes, float64, outputs and the gradients of every
tensor argument compared to tight tolerances (now and then through non-contiguous views); a configuration
PyTorch takes and distnn refuses fails.

Covered: F.grid_sample on 5-D inputs (bilinear, nearest) and 4-D 'bicubic' (every padding mode, both
align_corners, grids inside and outside [-1, 1], on quarter points now and then: voxels hit exactly,
borders and rounding ties), F.conv_tbc (positive, zero and negative pads), F.multi_head_attention_forward
(batched and unbatched, packed or separate projections, biases, bias_k/bias_v, add_zero_attn, static_k/v,
bool and float masks, is_causal, need_weights, average_attn_weights; no dropout: its masks cannot match
PyTorch's stream, see test_mha_forward.py).

Left out: a query whose keys are all masked with need_weights (NaN in both; the NaN gradient is not
compared), which the generator avoids by keeping the first key visible.

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4), ``DISTNN_LAYER_FUZZ_START`` the
first seed, as for tests/layer_fuzz_harness.py.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn.functional as DF  # noqa: E402

from layer_fuzz_harness import C, G, op_registry, run_cases  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


def _grid(c, lead, k):
    reach = c.draw(reach=c.pick(1.0, 1.5, 4.0))
    g = c.rng.uniform(-reach, reach, lead + (k,))
    return np.round(g * 4) / 4 if c.draw(quarter=c.coin(0.4)) else g


def _grid_sample(c, k, modes):
    mode, padding, ac = c.draw(mode=c.pick(*modes), padding=c.pick("zeros", "border", "reflection"),
                               align_corners=c.coin())
    N, C_ = c.int(1, 3), c.int(1, 3)
    x = c.draw(x=(N, C_) + tuple(c.int(1, 5) for _ in range(k)))
    out = c.draw(out=(N,) + tuple(c.int(1, 4) for _ in range(k)))
    kw = dict(mode=mode, padding_mode=padding, align_corners=ac)
    return c.run(lambda a, g: DF.grid_sample(a, g, **kw), lambda a, g: TF.grid_sample(a, g, **kw),
                 [G(c.normal(*x)), G(_grid(c, out, k))])


@op("grid_sample_5d")
def _grid_sample_5d(c):
    return _grid_sample(c, 3, ("bilinear", "nearest"))


@op("grid_sample_bicubic")
def _grid_sample_bicubic(c):
    return _grid_sample(c, 2, ("bicubic",))


@op("conv_tbc")
def _conv_tbc(c):
    T, B, Ci, Co = c.int(1, 6), c.int(1, 3), c.int(1, 4), c.int(1, 4)
    kw, pad = c.draw(kw=c.int(1, T + 2), pad=c.int(-1, 2))
    c.draw(shape=(T, B, Ci), out_channels=Co)
    return c.run(lambda x, w, b: DF.conv_tbc(x, w, b, pad), lambda x, w, b: TF.conv_tbc(x, w, b, pad),
                 [G(c.normal(T, B, Ci)), G(c.normal(kw, Ci, Co)), G(c.normal(Co))])


@op("multi_head_attention_forward")
def _mha(c):
    h = c.draw(heads=c.pick(1, 2, 3))
    E = h * c.int(1, 3)
    L, S, N = c.int(1, 4), c.int(1, 4), c.int(1, 3)
    batched, sep, bias, bkv, zero, static = c.draw(batched=c.coin(0.8), separate=c.coin(0.3), bias=c.coin(0.7),
                                                   bias_kv=c.coin(0.3), zero_attn=c.coin(0.3), static=c.coin(0.2))
    static = static and not bkv
    kd, vd = (c.int(1, 4), c.int(1, 4)) if sep else (E, E)
    lead = (N,) if batched else ()
    need, avg, which = c.draw(need_weights=c.coin(), average=c.coin(), masks=c.pick("none", "bool", "float",
                                                                                  "padding", "both", "causal"))
    args = [G(c.normal(L, *lead, E)), G(c.normal(S, *lead, kd)), G(c.normal(S, *lead, vd))]
    w = dict(in_proj_weight=None if sep else G(c.normal(3 * E, E)), in_proj_bias=G(c.normal(3 * E)) if bias else None,
             bias_k=G(c.normal(1, 1, E)) if bkv else None, bias_v=G(c.normal(1, 1, E)) if bkv else None,
             out_proj_weight=G(c.normal(E, E)), out_proj_bias=G(c.normal(E)) if bias else None,
             q_proj_weight=G(c.normal(E, E)) if sep else None, k_proj_weight=G(c.normal(E, kd)) if sep else None,
             v_proj_weight=G(c.normal(E, vd)) if sep else None,
             static_k=G(c.normal(N * h, S, E // h)) if static else None,
             static_v=G(c.normal(N * h, S, E // h)) if static else None)
    masks = {}
    if which in ("bool", "both", "causal"):
        m = c.rng.random((L, S)) < 0.3 if which != "causal" else np.triu(np.ones((L, S), bool), 1)
        m[:, 0] = False  # (every query sees a key: no all-masked row, see the docstring)
        masks["attn_mask"] = C(m)
    if which == "float":
        masks["attn_mask"] = G(c.normal(N * h, L, S) if c.coin() else c.normal(L, S))
    if which in ("padding", "both"):
        kp = c.rng.random(lead + (S,)) < 0.3
        kp[..., 0] = False
        masks["key_padding_mask"] = C(kp)
    names = list(w) + list(masks)
    kw = dict(embed_dim_to_check=E, num_heads=h, add_zero_attn=zero, dropout_p=0.0, need_weights=need,
              use_separate_proj_weight=sep, average_attn_weights=avg, is_causal=which == "causal")

    def call(F):
        return lambda q, k, v, *rest: F.multi_head_attention_forward(q, k, v, **dict(zip(names, rest)), **kw)

    return c.run(call(DF), call(TF), args + [w[n] for n in w] + [masks[n] for n in masks])


@pytest.mark.parametrize("name", sorted(OPS))
def test_functional_gaps_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])
