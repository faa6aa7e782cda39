"""F.scaled_dot_product_attention against PyTorch 2.13 (the oracle): outputs and the gradients of query, key,
value and a float attn_mask, in float64 (tight) and float32 (loose), over a seeded fuzz of shapes, broadcast
leading dimensions, bool and float masks, is_causal, scale and enable_gqa; PyTorch's refusals; a query whose
keys are all masked (0, as PyTorch 2.13's math backend and its fused CPU kernel give); and dropout_p, whose
masks cannot be PyTorch's: their statistics, exact properties, and the same masks on any number of ranks.

Left out of the fuzz: broadcast leading dimensions with no queries (L = 0) or no keys (S = 0), where PyTorch
returns an empty result of query's leading shape unbroadcast (q (1, 0, E) with k, v (3, S, E): (1, 0, Ev); it
does not even refuse leading dimensions that cannot broadcast); distnn gives the broadcast shape, as for
non-empty inputs.

``DISTNN_LAYER_FUZZ_CASES`` / ``DISTNN_LAYER_FUZZ_START`` as for test_layer_fuzz.py (default 4 cases per op).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn import random as dn_random  # noqa: E402
from distnn.data.batch_random import BatchShareGenerator  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

from layer_fuzz_harness import CASES, START, C, Case, G, op_registry, run_cases  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()
SDPA_D, SDPA_T = DF.scaled_dot_product_attention, TF.scaled_dot_product_attention


def _lead(c, base):
    """A tensor's leading dimensions: ``base`` with each dimension now and then 1 (broadcast), and now and
    then the first ones left out."""
    lead = [1 if c.coin(0.2) else n for n in base]
    return tuple(lead[c.int(0, len(lead)) if c.coin(0.2) else 0:])


def _mask(c, shape):
    """A mask broadcasting to the scores ``shape``: None, bool (True: take part), or float (with -inf now and
    then; it requires a gradient or not). Whole rows masked now and then."""
    kind = c.draw(mask=c.pick(None, "bool", "float", "float_const"))
    if kind is None:
        return None
    mshape = tuple(1 if c.coin(0.3) else n for n in shape)
    mshape = mshape[c.int(0, len(mshape) - 1) if c.coin(0.3) else 0:]
    c.draw(mask_shape=mshape)
    if kind == "bool":
        m = c.rng.random(mshape) < 0.7
        return C(m)
    m = c.rng.standard_normal(mshape)
    m[c.rng.random(mshape) < 0.2] = -np.inf
    return C(m) if kind == "float_const" else G(m)


@op("scaled_dot_product_attention")
def _sdpa(c):
    nlead = c.draw(nlead=c.int(0, 3))
    base = tuple(c.int(1, 3) for _ in range(nlead))
    L, S, E, Ev = c.draw(L=c.dim(4), S=c.dim(4), E=c.int(1, 4), Ev=c.int(1, 4))
    gqa = c.draw(enable_gqa=nlead >= 1 and c.coin(0.3))
    if gqa:  # the query has g times the heads (dimension -3) of key and value (or of one of them)
        g = c.int(2, 3)
        qlead = base[:-1] + (base[-1] * g,)
        klead = base if c.coin(0.7) else qlead
        vlead = base if c.coin(0.7) else qlead
        q, k, v = c.normal(*qlead, L, E), c.normal(*klead, S, E), c.normal(*vlead, S, Ev)
        shape = qlead + (L, S)
    else:  # (no queries or no keys: PyTorch returns query's leading shape unbroadcast, see the module docstring)
        lead = (lambda: _lead(c, base)) if L and S else (lambda: base)
        q, k, v = c.normal(*lead(), L, E), c.normal(*lead(), S, E), c.normal(*lead(), S, Ev)
        shape = np.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (L, S)
    c.draw(q=q.shape, k=k.shape, v=v.shape)
    causal = c.draw(is_causal=c.coin(0.25))
    mask = None if causal else _mask(c, shape)
    scale = c.draw(scale=c.pick(None, None, 0.3, 2.0))
    args = [G(q) if c.coin(0.9) else C(q), G(k), G(v) if c.coin(0.9) else C(v), mask]

    def call(f):
        return lambda q_, k_, v_, m_: f(q_, k_, v_, attn_mask=m_, is_causal=causal, scale=scale, enable_gqa=gqa)
    return c.run(call(SDPA_D), call(SDPA_T), args)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(OPS))
def test_sdpa_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])


def test_the_fuzz_draws_what_it_says():
    """(The generator must reach masks, gqa, causal and fully masked rows in the default cases, not only in
    theory: counted over the default seeds.)"""
    seen = set()
    for seed in range(START, START + max(CASES, 4) * 10):
        case = Case("scaled_dot_product_attention", seed)
        _sdpa(case)
        seen.update(k for k in ("enable_gqa", "is_causal") if case.cfg.get(k))
        seen.add(case.cfg.get("mask"))
    assert {"enable_gqa", "is_causal", "bool", "float", "float_const", None} <= seen


# ---------------------------------------------------------------------------- chosen cases, tight
def _pair(q, k, v, mask=None, dtype=np.float64, mask_grad=True, **kw):
    """distnn and torch outputs and gradients (query, key, value, mask) for one upstream gradient."""
    arrays = [np.asarray(a, dtype=dtype) for a in (q, k, v)]
    dq, dk, dv = (distnn.tensor(a.copy(), requires_grad=True) for a in arrays)
    tq, tk, tv = (torch.tensor(a.copy(), requires_grad=True) for a in arrays)
    dm = tm = None
    grad_mask = mask is not None and np.asarray(mask).dtype.kind == "f" and mask_grad
    if mask is not None:
        dm, tm = distnn.tensor(np.array(mask), requires_grad=grad_mask), torch.tensor(np.array(mask),
                                                                                      requires_grad=grad_mask)
    yd, yt = SDPA_D(dq, dk, dv, attn_mask=dm, **kw), SDPA_T(tq, tk, tv, attn_mask=tm, **kw)
    g = np.random.default_rng(9).standard_normal(tuple(yt.shape)).astype(dtype)
    (yd * distnn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    dres = [yd.data] + [t.grad for t in (dq, dk, dv)] + ([dm.grad] if grad_mask else [])
    tres = [yt.detach().numpy()] + [t.grad.numpy() for t in (tq, tk, tv)] + ([tm.grad.numpy()] if grad_mask else [])
    return [np.asarray(a) for a in dres], tres


def _same(d, t, rtol):
    for i, (a, b) in enumerate(zip(d, t)):
        assert a.shape == b.shape and a.dtype == b.dtype, (i, a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max(initial=0)),
                                   err_msg=f"result {i} (output, dq, dk, dv, dmask)")


R = np.random.default_rng(0)
CASES_CHOSEN = {
    "plain": ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), None, {}),
    "float_mask_2d": ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), R.standard_normal((4, 6)), {}),
    "bool_mask_per_batch": ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), R.random((2, 1, 4, 6)) < 0.6, {}),
    "broadcast_lead": ((4, 5), (2, 3, 6, 5), (1, 6, 7), R.standard_normal((3, 1, 6)), {}),
    "gqa": ((2, 4, 4, 5), (2, 2, 6, 5), (2, 1, 6, 7), R.standard_normal((4, 1, 6)), dict(enable_gqa=True)),
    "causal_L_gt_S": ((2, 3, 6, 5), (2, 3, 4, 5), (2, 3, 4, 7), None, dict(is_causal=True)),
    "causal_L_lt_S_scale": ((2, 4, 5), (2, 6, 5), (2, 6, 7), None, dict(is_causal=True, scale=0.3)),
    "unbatched": ((4, 5), (6, 5), (6, 3), R.random((4, 6)) < 0.5, {}),
    "no_keys": ((3, 4, 5), (3, 0, 5), (3, 0, 7), None, {}),
    "no_queries": ((3, 0, 5), (3, 6, 5), (3, 6, 7), None, {}),
    "E_0": ((3, 4, 0), (3, 2, 0), (3, 2, 7), None, {}),
}


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("name", sorted(CASES_CHOSEN))
def test_sdpa_matches_pytorch(name, dtype, rtol):
    qs, ks, vs, mask, kw = CASES_CHOSEN[name]
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal(s) for s in (qs, ks, vs))
    if mask is not None and mask.dtype.kind == "f":
        mask = mask.astype(dtype)
    _same(*_pair(q, k, v, mask, dtype, **kw), rtol)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # (inf in q: NaN in dk, as PyTorch's)
@pytest.mark.parametrize("kind", ["bool", "float", "inf_query"])
def test_a_query_that_sees_no_key_gets_zeros_as_pytorch(kind):
    """PyTorch 2.13's math backend (its _safe_softmax) and fused CPU kernel give such a query an output of 0 and
    gradients of 0 (no NaN reaches q, k, v or the mask); so does distnn. (An earlier PyTorch gave NaN.)"""
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 3, 6, 7))
    if kind == "bool":
        mask = rng.random((2, 1, 4, 6)) < 0.6
        mask[:, :, 1] = False
    elif kind == "float":
        mask = rng.standard_normal((4, 6))
        mask[2] = -np.inf
    else:  # every score of query 0 is -inf without a mask: +inf in q against keys of negative sign
        mask = None
        q[0, 0, 0] = [np.inf, 0, 0, 0, 0]
        k[0, 0, :, 0] = -1.0
    d, t = _pair(q, k, v, mask)
    _same(d, t, 1e-12)
    out = d[0]
    row = (slice(None), slice(None), 1) if kind == "bool" else (slice(None), slice(None), 2) if kind == "float" \
        else (0, 0, 0)
    assert (out[row] == 0).all()
    if kind != "inf_query":
        assert all(np.isfinite(a).all() for a in d)


def test_a_float32_mask_with_float64_inputs_gets_a_float32_gradient():
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 6, 5)), rng.standard_normal((2, 6, 3))
    mask = rng.standard_normal((4, 6)).astype(np.float32)
    d, t = _pair(q, k, v, mask)
    assert d[4].dtype == t[4].dtype == np.float32
    _same(d, t, 1e-6)


def test_gradients_pass_the_gradient_checker():
    rng = np.random.default_rng(4)
    q, k, v = rng.standard_normal((2, 4, 3, 5)), rng.standard_normal((2, 2, 4, 5)), rng.standard_normal((2, 2, 4, 3))
    mask = rng.standard_normal((4, 1, 4))
    check_grad(lambda a, b, c, m: SDPA_D(a, b, c, attn_mask=m, enable_gqa=True), q, k, v, mask)
    check_grad(lambda a, b, c: SDPA_D(a, b, c, is_causal=True, scale=0.7), q, k[:, :1], v[:, :1])


# ---------------------------------------------------------------------------- refusals
REFUSALS = {
    "mask_and_causal": (((2, 4, 5), (2, 6, 5), (2, 6, 5)), dict(attn_mask=np.ones((4, 6), bool), is_causal=True),
                        ValueError, "attn_mask should not be set when is_causal"),
    "gqa_not_divisible": (((2, 3, 4, 5), (2, 2, 6, 5), (2, 2, 6, 5)), dict(enable_gqa=True), ValueError,
                          "must divide the number of heads in query"),
    "gqa_fewer_query_heads": (((2, 2, 4, 5), (2, 4, 6, 5), (2, 4, 6, 5)), dict(enable_gqa=True), ValueError,
                              "must divide"),
    "gqa_value_not_divisible": (((2, 4, 4, 5), (2, 2, 6, 5), (2, 3, 6, 5)), dict(enable_gqa=True), ValueError,
                                "must divide"),
    "gqa_no_heads_dim": (((4, 5), (6, 5), (6, 5)), dict(enable_gqa=True), IndexError, "heads dimension"),
    "one_dimensional": (((5,), (6, 5), (6, 5)), {}, ValueError, "at least 2 dimensional"),
    "E_differs": (((2, 4, 5), (2, 6, 4), (2, 6, 5)), {}, ValueError, "last dimension"),
    "S_differs": (((2, 4, 5), (2, 6, 5), (2, 7, 5)), {}, ValueError, "same length S"),
    "batch_differs": (((2, 4, 5), (3, 6, 5), (3, 6, 5)), {}, ValueError, "do not broadcast"),
    "mask_shape": (((2, 4, 5), (2, 6, 5), (2, 6, 5)), dict(attn_mask=np.zeros((4, 5))), ValueError,
                   "does not broadcast"),
    "mask_more_dims": (((2, 4, 5), (2, 6, 5), (2, 6, 5)), dict(attn_mask=np.zeros((3, 2, 4, 6))), ValueError,
                       "does not broadcast"),
    "mask_int": (((2, 4, 5), (2, 6, 5), (2, 6, 5)), dict(attn_mask=np.ones((4, 6), np.int64)), RuntimeError,
                 "Expected attn_mask dtype to be bool or float or to match query dtype, but got attn_mask.dtype: "
                 "long int and  query.dtype: double"),
    "dropout_above_1": (((2, 4, 5), (2, 6, 5), (2, 6, 5)), dict(dropout_p=1.5), ValueError, "between 0 and 1"),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusals_are_pytorchs(name):
    """PyTorch raises RuntimeError (IndexError without a heads dimension for enable_gqa); distnn its own
    ValueError (TypeError for query's, key's or value's dtype, PyTorch's RuntimeError for a mask's, IndexError as
    PyTorch), with the gist of PyTorch's message."""
    shapes, kw, err, match = REFUSALS[name]
    arrays = [np.zeros(s) for s in shapes]
    tkw = {key: torch.from_numpy(val) if isinstance(val, np.ndarray) else val for key, val in kw.items()}
    with pytest.raises(IndexError if err is IndexError else RuntimeError):
        SDPA_T(*(torch.from_numpy(a) for a in arrays), **tkw)
    with pytest.raises(err, match=match):
        SDPA_D(*(distnn.tensor(a) for a in arrays), **kw)


def test_dtype_refusals_are_pytorchs():
    q = np.zeros((2, 4, 5))
    for args in ((q, q.astype(np.float32), q), (q.astype(np.int64),) * 3):
        with pytest.raises(RuntimeError):
            SDPA_T(*(torch.from_numpy(a) for a in args))
        with pytest.raises(TypeError, match="same dtype|floating point"):
            SDPA_D(*(distnn.tensor(a) for a in args))


# ---------------------------------------------------------------------------- dropout
def _probabilities(dropout_p, seed, shape=(4, 2, 50, 50)):
    """The attention probabilities (of fixed q and k) without and with dropout (masks from ``seed``): value is
    the identity over S, so the output is them."""
    N, H, L, S = shape
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((N, H, L, 3)), rng.standard_normal((N, H, S, 3))
    v = np.broadcast_to(np.eye(S), (N, H, S, S)).copy()
    plain = SDPA_D(distnn.tensor(q), distnn.tensor(k), distnn.tensor(v)).numpy()
    dropped = SDPA_D(distnn.tensor(q), distnn.tensor(k), distnn.tensor(v), dropout_p=dropout_p,
                     generator=np.random.default_rng(seed)).numpy()
    return plain, dropped


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_zeroes_a_fraction_p_and_scales_the_rest(p):
    plain, dropped = _probabilities(p, 5)
    kept = dropped != 0
    assert abs(1 - kept.mean() - p) < 4 * np.sqrt(p * (1 - p) / kept.size)  # (20,000 draws: 4 sigma)
    np.testing.assert_allclose(dropped[kept], plain[kept] / (1 - p), rtol=1e-12)
    # unbiased: the mean over many masks is the undropped output
    many = np.mean([_probabilities(p, s, (1, 1, 8, 8))[1] for s in range(2000)], axis=0)
    np.testing.assert_allclose(many, _probabilities(p, 0, (1, 1, 8, 8))[0], atol=8 * np.sqrt(p / (1 - p) / 2000))


def test_dropout_p_edges_are_pytorchs():
    """p = 1 drops everything (PyTorch: zeros); p <= 0 drops nothing (PyTorch accepts a negative p silently)."""
    rng = np.random.default_rng(6)
    q, k, v = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 6, 5)), rng.standard_normal((2, 6, 3))
    assert (SDPA_D(distnn.tensor(q), distnn.tensor(k), distnn.tensor(v), dropout_p=1.0).numpy() == 0).all()
    assert (SDPA_T(*(torch.from_numpy(a) for a in (q, k, v)), dropout_p=1.0).numpy() == 0).all()
    for p in (0.0, -0.1):
        d, t = _pair(q, k, v, dropout_p=p)
        _same(d, t, 1e-12)


def test_dropout_gradient_is_that_of_its_mask():
    """With the same mask in every evaluation (a fresh generator of one seed), the gradients of q, k, v and
    the mask pass the gradient checker: the dropped probabilities' backward is the mask's."""
    rng = np.random.default_rng(7)
    q, k, v, m = (rng.standard_normal(s) for s in ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3), (3, 5)))
    check_grad(lambda a, b, c, mm: SDPA_D(a, b, c, attn_mask=mm, dropout_p=0.4,
                                          generator=np.random.default_rng(11)), q, k, v, m)


def test_dropout_draws_from_distnns_generator():
    rng = np.random.default_rng(8)
    q, k, v = (distnn.tensor(rng.standard_normal(s)) for s in ((2, 4, 5), (2, 6, 5), (2, 6, 3)))
    distnn.manual_seed(3)
    a = SDPA_D(q, k, v, dropout_p=0.5).numpy()
    b = SDPA_D(q, k, v, dropout_p=0.5).numpy()
    distnn.manual_seed(3)
    np.testing.assert_array_equal(SDPA_D(q, k, v, dropout_p=0.5).numpy(), a)
    assert not np.array_equal(a, b)


SEED = [5, 0, 2, 1]


def _rank_run(x, rows, total):
    """Output and query gradient of rows ``rows`` of a global batch, under their per-sample generator, as one
    rank of the trainer sees them (self-attention of x (N, H, L, E), dropout 0.5, a causal mask)."""
    q = distnn.tensor(x[rows], requires_grad=True)
    with dn_random.use_generator(BatchShareGenerator(SEED, total, rows)):
        out = SDPA_D(q, q * 0.5, q, dropout_p=0.5, is_causal=True)
    (out * out).sum().backward()
    return out.numpy(), np.asarray(q.grad)


@pytest.mark.parametrize("total, world", [(6, 2), (6, 3), (4, 4)])
def test_dropout_is_the_same_on_any_number_of_ranks(total, world):
    # L = total: the samples' axis cannot be guessed from the scores' shape (N, H, L, L) alone
    x = np.random.default_rng(1).standard_normal((total, 2, total, 3))
    whole = _rank_run(x, np.arange(total), total)
    for rank in range(world):
        rows = np.arange(rank, total, world)  # the trainer deals a global batch round-robin
        for name, a, b in zip(("output", "query grad"), _rank_run(x, rows, total), whole):
            np.testing.assert_allclose(a, b[rows], rtol=1e-12, atol=1e-12, err_msg=f"{name}, rank {rank}")
    q = distnn.tensor(x)
    assert not np.allclose(whole[0], SDPA_D(q, q * 0.5, q, is_causal=True).numpy())  # (dropout was on)


# ---------------------------------------------------------------------------- MultiheadAttention shares the kernel
def test_multihead_attention_without_weights_is_the_function_on_its_projections():
    """MultiheadAttention's fused path (need_weights=False) computes what F.scaled_dot_product_attention does
    on its projected, head-split q, k, v (both use functional.sdpa's kernel), with its True-is-masked bool
    mask turned into the function's True-takes-part one."""
    distnn.manual_seed(0)
    m = dnn.MultiheadAttention(6, 2, batch_first=True, dtype=np.float64)
    rng = np.random.default_rng(2)
    x = distnn.tensor(rng.standard_normal((3, 4, 6)))
    blocked = np.triu(np.ones((4, 4), bool), 1)
    out, _ = m(x, x, x, need_weights=False, attn_mask=blocked)
    W, b = m.in_proj_weight.data, m.in_proj_bias.data
    q, k, v = (np.asarray(x.data) @ W[i * 6:(i + 1) * 6].T + b[i * 6:(i + 1) * 6] for i in range(3))
    heads = [distnn.tensor(a.reshape(3, 4, 2, 3).transpose(0, 2, 1, 3)) for a in (q, k, v)]
    o = SDPA_D(*heads, attn_mask=~blocked).numpy().transpose(0, 2, 1, 3).reshape(3, 4, 6)
    expect = o @ m.out_proj.weight.data.T + m.out_proj.bias.data
    np.testing.assert_allclose(out.numpy(), expect, rtol=1e-12, atol=1e-12)
