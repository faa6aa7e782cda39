"""distnn.nn.attention.flex_attention against PyTorch 2.13's torch.nn.attention.flex_attention (the oracle).

Outputs, logsumexp and max_scores against PyTorch's eager reference (``math_attention``, what its
flex_attention runs without torch.compile), and gradients of query, key, value and of tensors a score_mod
captures (PyTorch refuses backward on CPU, so its reference's autograd is the gradient oracle): score_mods
(relative bias table, ALiBi, tanh softcap), mask_mods (causal, sliding window, prefix-LM, documents via
and_masks / or_masks, batch- and head-dependent, rows with every key masked), GQA, a broadcast key/value
batch; float64 tight, float32 loose; a seeded fuzz over shapes and arguments. The public function itself
against PyTorch's on a few cases (its compile warning silenced); BlockMask's lists, to_dense, sparsity, str,
indexing against PyTorch's for block sizes dividing the lengths and not; create_mask; the refusals.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn.nn.attention import flex_attention as DFX  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

import torch.nn.attention.flex_attention as TFX  # noqa: E402
from torch._higher_order_ops.flex_attention import math_attention  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile"),
              pytest.mark.filterwarnings("ignore:return_lse is deprecated")]
LN2 = math.log(2.0)
TOL = {np.float64: dict(rtol=1e-10, atol=1e-11), np.float32: dict(rtol=2e-4, atol=2e-5)}

# ---- mods, written once for both libraries: ``lib`` is torch or distnn, ``t`` the captured tensors


def _causal(lib, t):
    return lambda b, h, q, kv: q >= kv


MASKS = {
    "none": None,
    "causal": _causal,
    "sliding_window": lambda lib, t: DFX.and_masks(_causal(lib, t), lambda b, h, q, kv: q - kv <= 2)
    if lib is distnn else TFX.and_masks(_causal(lib, t), lambda b, h, q, kv: q - kv <= 2),
    "prefix_lm": lambda lib, t: (DFX if lib is distnn else TFX).or_masks(lambda b, h, q, kv: kv < 2, _causal(lib, t)),
    "documents": lambda lib, t: (DFX if lib is distnn else TFX).and_masks(
        lambda b, h, q, kv: t["docs"][q] == t["docs"][kv], _causal(lib, t)),
    "batch_head": lambda lib, t: lambda b, h, q, kv: (kv + b + 2 * h) % 3 != 0,
    "empty_rows": lambda lib, t: (DFX if lib is distnn else TFX).and_masks(_causal(lib, t),
                                                                          lambda b, h, q, kv: q % 3 != 1),
}
SCORES = {
    "none": None,
    "relative_bias": lambda lib, t: lambda s, b, h, q, kv: s + t["bias"][q - kv + t["off"]],
    "alibi": lambda lib, t: lambda s, b, h, q, kv: s + t["slopes"][h] * (kv - q),
    "softcap": lambda lib, t: lambda s, b, h, q, kv: lib.tanh(s / 3.0) * 3.0,
    "where_causal": lambda lib, t: lambda s, b, h, q, kv: lib.where(q >= kv, s, float("-inf")),
}
PAIRS = [("none", "none"), ("relative_bias", "causal"), ("alibi", "sliding_window"), ("softcap", "prefix_lm"),
         ("relative_bias", "documents"), ("alibi", "batch_head"), ("softcap", "empty_rows"),
         ("where_causal", "none")]


def _make(rng, B, Hq, Hkv, L, S, E, Ev, Bkv=None):
    Bkv = B if Bkv is None else Bkv
    arrays = dict(q=rng.standard_normal((B, Hq, L, E)), k=rng.standard_normal((Bkv, Hkv, S, E)),
                  v=rng.standard_normal((Bkv, Hkv, S, Ev)), bias=rng.standard_normal(L + S - 1),
                  slopes=rng.random(Hq))
    docs = np.sort(rng.integers(0, 3, max(L, S)))
    return arrays, docs


def _both(arrays, docs, dtype, L, S):
    """(distnn tensors, torch tensors) of the arrays, all requiring a gradient; docs and the offset beside."""
    d = {n: distnn.tensor(a.astype(dtype), requires_grad=True) for n, a in arrays.items()}
    t = {n: torch.tensor(a.astype(dtype), requires_grad=True) for n, a in arrays.items()}
    d.update(docs=distnn.tensor(docs), off=S - 1)
    t.update(docs=torch.tensor(docs), off=S - 1)
    return d, t


def _mods(lib, tensors, score, mask):
    s = SCORES[score](lib, tensors) if SCORES[score] else None
    m = MASKS[mask](lib, tensors) if MASKS[mask] else None
    return s, m


def _torch_reference(t, score, mask, B, Hq, L, S, scale, block=(2, 3)):
    """PyTorch's eager flex reference: (out, lse, max_scores) with lse and max in natural log, as its
    flex_attention returns them."""
    s, m = _mods(torch, t, score, mask)
    bm = TFX.create_block_mask(m or TFX.noop_mask, B, Hq, L, S, device="cpu", BLOCK_SIZE=block)
    scale = 1.0 / math.sqrt(t["q"].shape[-1]) if scale is None else scale
    out, lse, mx = math_attention(t["q"], t["k"], t["v"], s or (lambda x, b, h, q, kv: x), bm.as_tuple(), scale, {})
    return out, lse * LN2, mx * LN2


def _distnn(d, score, mask, B, Hq, L, S, scale, block=(2, 3), gqa=True):
    s, m = _mods(distnn, d, score, mask)
    bm = None if m is None else DFX.create_block_mask(m, B, Hq, L, S, BLOCK_SIZE=block)
    return DFX.flex_attention(d["q"], d["k"], d["v"], score_mod=s, block_mask=bm, scale=scale, enable_gqa=gqa,
                              return_aux=DFX.AuxRequest(lse=True, max_scores=True))


def _close(ours, theirs, tol, what):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, what
    assert np.array_equal(np.isneginf(ours), np.isneginf(theirs)), f"{what}: -inf entries differ"
    np.testing.assert_allclose(np.where(np.isinf(ours), 0, ours), np.where(np.isinf(theirs), 0, theirs),
                               err_msg=what, **tol)


def _compare(rng, dtype, score, mask, B, Hq, Hkv, L, S, E, Ev, scale=None, Bkv=None, block=(2, 3)):
    arrays, docs = _make(rng, B, Hq, Hkv, L, S, E, Ev, Bkv)
    d, t = _both(arrays, docs, dtype, L, S)
    out, aux = _distnn(d, score, mask, B, Hq, L, S, scale, block)
    t_out, t_lse, t_max = _torch_reference(t, score, mask, B, Hq, L, S, scale, block)
    tol = TOL[dtype]
    assert out.dtype == dtype and aux.lse.dtype == np.dtype(np.float64 if dtype == np.float64 else np.float32)
    _close(out.data, t_out.detach().numpy(), tol, "output")
    _close(aux.lse.data, t_lse.detach().numpy(), tol, "lse")
    _close(aux.max_scores.data, t_max.detach().numpy(), tol, "max_scores")
    # gradients of a weighted sum of the output and the finite logsumexps
    w, wl = rng.standard_normal(out.shape).astype(dtype), rng.standard_normal(aux.lse.shape).astype(dtype)
    t_fin = torch.where(torch.isinf(t_lse), 0, t_lse)
    ((t_out * torch.tensor(w)).sum() + (t_fin * torch.tensor(wl)).sum()).backward()
    fin = distnn.where(distnn.isinf(aux.lse), 0.0, aux.lse)
    ((out * distnn.tensor(w)).sum() + (fin * distnn.tensor(wl)).sum()).backward()
    for name in ("q", "k", "v", "bias", "slopes"):
        theirs = t[name].grad
        ours = d[name].grad
        if theirs is None:
            assert ours is None or not np.any(ours), f"{name}: a gradient where PyTorch has none"
            continue
        assert np.isfinite(ours).all(), f"{name}: non-finite gradient"
        _close(ours, theirs.numpy(), tol, f"gradient of {name}")
    return out, aux


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("score,mask", PAIRS, ids=[f"{s}-{m}" for s, m in PAIRS])
def test_matches_torch_eager_reference_with_gqa(score, mask, dtype):
    rng = np.random.default_rng(sum(map(ord, score + mask)))
    _compare(rng, dtype, score, mask, B=2, Hq=4, Hkv=2, L=5, S=7, E=3, Ev=4, scale=0.6)


def test_fully_masked_rows_give_zero_output_minus_inf_lse_and_zero_gradients():
    rng = np.random.default_rng(1)
    out, aux = _compare(rng, np.float64, "softcap", "empty_rows", B=1, Hq=2, Hkv=2, L=6, S=6, E=3, Ev=2)
    dead = np.arange(6) % 3 == 1
    assert not np.any(out.data[:, :, dead]) and np.all(np.isneginf(aux.lse.data[:, :, dead]))
    assert np.all(np.isneginf(aux.max_scores.data[:, :, dead])) and np.isfinite(aux.lse.data[:, :, ~dead]).all()


@pytest.mark.parametrize("seed", range(5))
def test_fuzz_shapes_and_arguments_against_torch(seed):
    """Shapes (GQA groups, L != S, Ev != E, a key/value batch of 1 broadcast under a block mask), scale, block
    sizes and mod pairs drawn from a seed."""
    rng = np.random.default_rng(100 + seed)
    Hkv, G = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    B, L, S = int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 9))
    score, mask = PAIRS[int(rng.integers(len(PAIRS)))]
    if B == 2 and mask != "none" and rng.random() < 0.5:
        Bkv = 1
    else:
        Bkv = None
    block = (int(rng.integers(1, 9)), int(rng.integers(1, 9)))
    scale = None if rng.random() < 0.5 else float(rng.uniform(0.2, 2.0))
    dtype = np.float64 if seed % 2 == 0 else np.float32
    _compare(rng, dtype, score, mask, B, Hkv * G, Hkv, L, S, int(rng.integers(1, 5)), int(rng.integers(1, 5)),
             scale, Bkv, block)


@pytest.mark.parametrize("score,mask", [("relative_bias", "documents"), ("softcap", "empty_rows"), ("none", "none")])
def test_public_flex_attention_equals_torchs(score, mask):
    """torch.nn.attention.flex_attention itself (eager, no grad: PyTorch refuses backward on CPU), with the
    deprecated return_lse (a FutureWarning: PyTorch's only once a process, distnn's as Python shows warnings)
    and with return_aux."""
    rng = np.random.default_rng(7)
    B, Hq, Hkv, L, S = 2, 2, 1, 4, 6
    arrays, docs = _make(rng, B, Hq, Hkv, L, S, 3, 2)
    d, t = _both(arrays, docs, np.float64, L, S)
    t = {n: (x.detach() if isinstance(x, torch.Tensor) else x) for n, x in t.items()}
    ts, tm = _mods(torch, t, score, mask)
    ds, dm = _mods(distnn, d, score, mask)
    tbm = None if tm is None else TFX.create_block_mask(tm, B, Hq, L, S, device="cpu", BLOCK_SIZE=3)
    dbm = None if dm is None else DFX.create_block_mask(dm, B, Hq, L, S, BLOCK_SIZE=3)
    t_out, t_lse = TFX.flex_attention(t["q"], t["k"], t["v"], ts, tbm, enable_gqa=True, return_lse=True)
    with pytest.warns(FutureWarning, match="return_lse is deprecated"):
        out, lse = DFX.flex_attention(d["q"], d["k"], d["v"], ds, dbm, enable_gqa=True, return_lse=True)
    _close(out.data, t_out.numpy(), TOL[np.float64], "output")
    _close(lse.data, t_lse.numpy(), TOL[np.float64], "lse")
    out2, aux = DFX.flex_attention(d["q"], d["k"], d["v"], ds, dbm, enable_gqa=True, return_aux=DFX.AuxRequest())
    assert aux == DFX.AuxOutput(None, None) and np.array_equal(out2.data, out.data)
    plain = DFX.flex_attention(d["q"], d["k"], d["v"], ds, dbm, enable_gqa=True)
    assert isinstance(plain, distnn.Tensor) and np.array_equal(plain.data, out.data)


def test_without_mods_it_is_scaled_dot_product_attention_and_mixed_dtypes_follow_the_query():
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((2, 4, 5, 3)), rng.standard_normal((2, 2, 6, 3)), rng.standard_normal((2, 2, 6, 2))
    d = [distnn.tensor(a) for a in (q, k, v)]
    ours = DFX.flex_attention(*d, scale=0.7, enable_gqa=True)
    np.testing.assert_allclose(ours.data, DF.scaled_dot_product_attention(*d, scale=0.7, enable_gqa=True).data,
                               rtol=1e-12, atol=1e-13)
    for qd, kd in ((np.float64, np.float32), (np.float32, np.float64)):  # (PyTorch accepts these: no refusal)
        mixed = [distnn.tensor(q.astype(qd)), distnn.tensor(k.astype(kd)), distnn.tensor(v.astype(kd))]
        theirs = TFX.flex_attention(*[torch.tensor(x.data) for x in mixed], enable_gqa=True)
        got = DFX.flex_attention(*mixed, enable_gqa=True)
        assert got.dtype == theirs.numpy().dtype
        np.testing.assert_allclose(got.data, theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_gradients_pass_the_finite_difference_check_through_a_captured_bias():
    rng = np.random.default_rng(5)
    bm = DFX.create_block_mask(lambda b, h, q, kv: (q >= kv) | (kv == 3), 1, 2, 4, 5, BLOCK_SIZE=2)

    def f(q, k, v, bias):
        out, aux = DFX.flex_attention(q, k, v, lambda s, b, h, qi, ki: s + bias[qi - ki + 4], bm,
                                      return_aux=DFX.AuxRequest(lse=True, max_scores=True))
        return out.sum() + aux.lse.sum() * 0.5 + aux.max_scores.sum() * 0.25

    assert check_grad(f, rng.standard_normal((1, 2, 4, 3)), rng.standard_normal((1, 2, 5, 3)),
                      rng.standard_normal((1, 2, 5, 2)), rng.standard_normal(8))


def test_double_backward_matches_torch():
    """create_graph through the output, the logsumexp and max_scores (a fully masked row among them) against
    PyTorch's eager reference (a softcap with a position term: PyTorch has no double backward through a
    captured table's indexing under its vmap)."""
    rng = np.random.default_rng(11)
    arrays = rng.standard_normal((1, 2, 4, 3)), rng.standard_normal((1, 2, 5, 3)), rng.standard_normal((1, 2, 5, 2))
    results = []
    for lib in (torch, distnn):
        ins = [lib.tensor(a, requires_grad=True) for a in arrays]
        mask = (TFX if lib is torch else DFX).and_masks(lambda b, h, q, kv: q >= kv, lambda b, h, q, kv: q != 2)
        score = lambda s, b, h, q, kv: lib.tanh(s / 2) * 2 + (q - kv) * 0.3  # noqa: E731
        if lib is torch:
            bm = TFX.create_block_mask(mask, 1, 2, 4, 5, device="cpu", BLOCK_SIZE=2)
            out, lse, mx = math_attention(*ins, score, bm.as_tuple(), 0.7, {})
            lse, mx = lse * LN2, mx * LN2
            grad = torch.autograd.grad
        else:
            bm = DFX.create_block_mask(mask, 1, 2, 4, 5, BLOCK_SIZE=2)
            out, (lse, mx) = DFX.flex_attention(*ins, score, bm, scale=0.7, return_aux=DFX.AuxRequest(True, True))
            grad = distnn.autograd.grad
        lse, mx = (lib.where(lib.isinf(t), 0.0, t) for t in (lse, mx))
        gs = grad((out ** 2).sum() + (lse ** 2).sum() + (mx ** 2).sum(), ins, create_graph=True)
        sum((g ** 2).sum() for g in gs).backward()
        results.append([np.asarray(t.grad) for t in ins])
    for theirs, ours in zip(*results):
        np.testing.assert_allclose(ours, theirs, **TOL[np.float64])


# ---- BlockMask and the mask helpers

LISTS = ["kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks", "q_indices",
         "full_q_num_blocks", "full_q_indices"]


def _same_block_mask(ours, theirs):
    for name in LISTS:
        a, b = getattr(ours, name), getattr(theirs, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == np.int32 and np.array_equal(a.data, b.numpy()), name
    assert np.array_equal(ours.to_dense().data, theirs.to_dense().numpy()) and ours.to_dense().dtype == np.int32
    assert ours.shape == theirs.shape and ours.BLOCK_SIZE == theirs.BLOCK_SIZE and ours.numel() == theirs.numel()
    assert ours.sparsity() == pytest.approx(theirs.sparsity(), rel=1e-12)


@pytest.mark.parametrize("B,H,L,S,block,separate", [
    (2, 3, 8, 12, 4, True), (2, 3, 7, 10, 3, True), (None, 2, 9, 5, (2, 4), True), (1, None, 6, 6, 128, True),
    (2, 1, 7, 11, (4, 3), False)], ids=["dividing", "not_dividing", "rect_blocks", "default_block", "no_full"])
def test_block_mask_equals_torchs(B, H, L, S, block, separate):
    docs = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3])

    def mod(lib):
        tab = (distnn if lib is distnn else torch).tensor(docs)
        return lambda b, h, q, kv: ((q >= kv) & (tab[q] == tab[kv])) | ((kv + h + b) % 4 == 0)

    theirs = TFX.create_block_mask(mod(torch), B, H, L, S, device="cpu", BLOCK_SIZE=block,
                                   separate_full_blocks=separate)
    ours = DFX.create_block_mask(mod(distnn), B, H, L, S, BLOCK_SIZE=block, separate_full_blocks=separate)
    _same_block_mask(ours, theirs)
    assert str(ours) == str(theirs)
    assert repr(ours) == repr(theirs).replace("torch.Size([", "(").replace("])", ")").replace(",)", ")")
    assert ours.to_string(grid_size=-1, limit=2) == theirs.to_string(grid_size=-1, limit=2)
    for index in (0, (1, 0), (slice(0, 1), slice(None), slice(1, 2)), -1):
        if isinstance(index, tuple) and len(index) > 1 and (B or 1) < 2:
            continue
        _same_block_mask(ours[index], theirs[index])
    assert len(ours.as_tuple()) == len(theirs.as_tuple()) and len(ours.as_tuple(False)) == len(theirs.as_tuple(False))


def test_sliced_block_mask_cannot_be_used_as_torchs():
    ours = DFX.create_block_mask(lambda b, h, q, kv: q >= kv, 2, 1, 4, 4, BLOCK_SIZE=2)[1:]
    q = distnn.tensor(np.ones((1, 1, 4, 2)))
    with pytest.raises(RuntimeError, match="Cannot use mask_mod from a sliced BlockMask"):
        DFX.flex_attention(q, q, q, block_mask=ours)


def test_create_mask_and_the_combinators_equal_torchs():
    pairs = [(lambda b, h, q, kv: (q - kv) % 3 == h, lambda b, h, q, kv: (q - kv) % 3 == h),
             (lambda s, b, h, q, kv: torch.where(q > kv + b, float("-inf"), s + 1),
              lambda s, b, h, q, kv: distnn.where(q > kv + b, float("-inf"), s + 1)),
             (TFX.noop_mask, DFX.noop_mask), (TFX.and_masks(), DFX.and_masks()), (TFX.or_masks(), DFX.or_masks())]
    for theirs, ours in pairs:
        t, d = TFX.create_mask(theirs, 2, 3, 4, 5, device="cpu"), DFX.create_mask(ours, 2, 3, 4, 5)
        assert d.dtype == np.bool_ and np.array_equal(d.data, t.numpy())
    for lib in (TFX, DFX):
        with pytest.raises(RuntimeError, match="All inputs should be callable mask_mods"):
            lib.or_masks(lambda b, h, q, kv: q >= kv, 3)


# ---- refusals: PyTorch's error types and messages' gist

def _r(*shape):
    return np.random.default_rng(0).standard_normal(shape)


REFUSALS = {
    "1d": (lambda L, X: L.flex_attention(X(_r(4)), X(_r(3, 4)), X(_r(3, 4))), ValueError, "at least 2 dimensional"),
    "3d": (lambda L, X: L.flex_attention(X(_r(2, 3, 4)), X(_r(2, 3, 4)), X(_r(2, 3, 4))), NotImplementedError,
           "must be 4D tensors"),
    "embed_dim": (lambda L, X: L.flex_attention(X(_r(1, 2, 3, 4)), X(_r(1, 2, 3, 5)), X(_r(1, 2, 3, 4))), ValueError,
                  "same embedding dimension"),
    "heads": (lambda L, X: L.flex_attention(X(_r(1, 4, 3, 4)), X(_r(1, 2, 3, 4)), X(_r(1, 2, 3, 4))), ValueError,
              "same number of heads"),
    "gqa_heads": (lambda L, X: L.flex_attention(X(_r(1, 3, 3, 4)), X(_r(1, 2, 3, 4)), X(_r(1, 2, 3, 4)),
                                                enable_gqa=True), ValueError, "multiple of kv heads"),
    "value_length": (lambda L, X: L.flex_attention(X(_r(1, 2, 3, 4)), X(_r(1, 2, 3, 4)), X(_r(1, 2, 5, 4))),
                     RuntimeError, None),
    "no_keys": (lambda L, X: L.flex_attention(X(_r(1, 2, 3, 4)), X(_r(1, 2, 0, 4)), X(_r(1, 2, 0, 4))), IndexError,
                "non-zero size"),
    "batch": (lambda L, X: L.flex_attention(X(_r(2, 2, 3, 4)), X(_r(1, 2, 3, 4)), X(_r(1, 2, 3, 4))), ValueError,
              "same batch size"),
    "batch_broadcast": (lambda L, X: L.flex_attention(X(_r(2, 2, 3, 4)), X(_r(3, 2, 3, 4)), X(_r(3, 2, 3, 4)),
                                                      block_mask=_bm(L, 2, 3, 3)), RuntimeError, "must broadcast"),
    "block_mask_small": (lambda L, X: L.flex_attention(X(_r(1, 2, 5, 4)), X(_r(1, 2, 5, 4)), X(_r(1, 2, 5, 4)),
                                                       block_mask=_bm(L, 1, 3, 3)), ValueError, "smaller length"),
    "block_mask_large": (lambda L, X: L.flex_attention(X(_r(1, 2, 3, 4)), X(_r(1, 2, 3, 4)), X(_r(1, 2, 3, 4)),
                                                       block_mask=_bm(L, 1, 5, 5)), ValueError, "larger length"),
    "lse_and_aux": (lambda L, X: L.flex_attention(X(_r(1, 1, 3, 4)), X(_r(1, 1, 3, 4)), X(_r(1, 1, 3, 4)),
                                                  return_lse=True, return_aux=L.AuxRequest(lse=True)),
                    ValueError, "Cannot specify both return_lse and return_aux"),
    "backend": (lambda L, X: L.flex_attention(X(_r(1, 1, 3, 4)), X(_r(1, 1, 3, 4)), X(_r(1, 1, 3, 4)),
                                              kernel_options={"BACKEND": "X"}), ValueError, "Invalid BACKEND"),
    "int_mask": (lambda L, X: L.create_block_mask(lambda b, h, q, kv: (q >= kv).int() if L is TFX else
                                                  (q >= kv).long(), 1, 1, 3, 3, "cpu"), AssertionError,
                 "mask.dtype must be"),
    "score_mod_as_mask": (lambda L, X: L.create_block_mask(lambda s, b, h, q, kv: s, 1, 1, 3, 3, "cpu"),
                          AssertionError, "requires a mask_mod"),
    "arity": (lambda L, X: L.create_mask(lambda b, h: b, 1, 1, 3, 3, "cpu"), AssertionError, "4 or 5 positional"),
}


def _bm(L, B, Q, KV):
    return L.create_block_mask(lambda b, h, q, kv: q >= kv, B, 2, Q, KV, "cpu")


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_match_torch(case):
    fn, kind, gist = REFUSALS[case]
    with pytest.raises(kind, match=gist):
        fn(TFX, torch.tensor)
    with pytest.raises(kind, match=gist):
        fn(DFX, distnn.tensor)


def test_no_queries_give_an_empty_output_and_no_statistics_as_torchs():
    q, k = _r(1, 2, 0, 3), _r(1, 2, 4, 3)
    t_out, t_lse = TFX.flex_attention(torch.tensor(q), torch.tensor(k), torch.tensor(k), return_lse=True)
    out, aux = DFX.flex_attention(distnn.tensor(q), distnn.tensor(k), distnn.tensor(k),
                                  return_aux=DFX.AuxRequest(lse=True, max_scores=True))
    assert out.shape == tuple(t_out.shape) and t_lse is None and aux == DFX.AuxOutput(None, None)


def test_distnn_refuses_integer_inputs_which_torch_computes_into_garbage():
    x = distnn.tensor(np.ones((1, 1, 2, 2), dtype=np.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError, match="floating point"):
            DFX.flex_attention(x, x, x)
