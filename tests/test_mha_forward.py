"""F.multi_head_attention_forward against PyTorch (the oracle): a seeded fuzz over batched and unbatched
inputs, heads, packed and separate projection weights, biases, bias_k/bias_v, add_zero_attn, static_k/v,
bool and float masks (with is_causal), need_weights and average_attn_weights, comparing outputs, weights
and the gradients to every tensor argument (float64 tight, float32 loose); the gradient to a float mask;
nn.MultiheadAttention's output through the functional; dropout's exact properties; PyTorch's refusals.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn as dn  # noqa: E402
import distnn.functional as F  # noqa: E402

TF = torch.nn.functional


def _case(rng, case):
    """The arrays, masks and keyword arguments of one fuzz case (the case number picks the options)."""
    E, h = 6, (1, 2, 3)[case % 3]
    L, S, N = (int(v) for v in rng.integers(1, 5, 3))
    sep = case % 4 == 1
    kd, vd = (E, E) if not sep else (int(rng.integers(2, 5)), int(rng.integers(2, 5)))
    batched = case % 5 != 0
    bkv, zero, bias = case % 3 == 1, case % 4 == 2, case % 5 != 3
    static = not bkv and case % 7 == 3
    lead = (N,) if batched else ()
    arr = {"query": rng.standard_normal((L,) + lead + (E,)), "key": rng.standard_normal((S,) + lead + (kd,)),
           "value": rng.standard_normal((S,) + lead + (vd,))}
    if sep:
        arr.update(in_proj_weight=None, q_proj_weight=rng.standard_normal((E, E)),
                   k_proj_weight=rng.standard_normal((E, kd)), v_proj_weight=rng.standard_normal((E, vd)))
    else:
        arr["in_proj_weight"] = rng.standard_normal((3 * E, E))
    arr["in_proj_bias"] = rng.standard_normal(3 * E) if bias else None
    arr["out_proj_weight"] = rng.standard_normal((E, E))
    arr["out_proj_bias"] = rng.standard_normal(E) if bias else None
    arr["bias_k"] = rng.standard_normal((1, 1, E)) if bkv else None
    arr["bias_v"] = rng.standard_normal((1, 1, E)) if bkv else None
    if static:
        nb = N if batched else 1
        arr["static_k"], arr["static_v"] = (rng.standard_normal((nb * h, S, E // h)) for _ in range(2))
    masks, which = {}, case % 8
    if which in (1, 2):
        masks["attn_mask"] = rng.random((L, S)) < 0.3
    if which == 3:
        masks["attn_mask"] = rng.standard_normal(((N if batched else 1) * h, L, S))
    if which in (2, 4, 5):
        masks["key_padding_mask"] = rng.random(lead + (S,)) < 0.3
    causal = which in (5, 6)
    if causal:
        masks["attn_mask"] = np.triu(np.ones((L, S), bool), 1)
    kw = dict(embed_dim_to_check=E, num_heads=h, add_zero_attn=zero, dropout_p=0.0, need_weights=case % 2 == 0,
              use_separate_proj_weight=sep, average_attn_weights=case % 6 < 3, is_causal=causal)
    return arr, masks, kw, case % 2 == 1 and not sep  # (the last: key and value one tensor)


def _compare(arr, masks, kw, kv_same, rng, dtype, tol, gtol):
    ta = {k: None if v is None else torch.tensor(v.astype(dtype), requires_grad=True) for k, v in arr.items()}
    da = {k: None if v is None else dn.Tensor(v.astype(dtype), requires_grad=True) for k, v in arr.items()}
    if kv_same:
        ta["value"], da["value"] = ta["key"], da["key"]
    masks = {k: m if m.dtype == bool else m.astype(dtype) for k, m in masks.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (mismatched mask types: checked below)
        ot, wt = TF.multi_head_attention_forward(**ta, **{k: torch.tensor(v) for k, v in masks.items()}, **kw)
        od, wd = F.multi_head_attention_forward(**da, **masks, **kw)
    assert (wt is None) == (wd is None) and od.shape == tuple(ot.shape) and od.dtype == dtype
    np.testing.assert_allclose(od.data, ot.detach().numpy(), rtol=tol, atol=tol)  # (NaN where torch has NaN)
    if wt is not None:
        assert wd.shape == tuple(wt.shape)
        np.testing.assert_allclose(wd.data, wt.detach().numpy(), rtol=tol, atol=tol)
    if np.isnan(ot.detach().numpy()).any():  # (a query that sees no key, with need_weights)
        return
    u = rng.standard_normal(ot.shape).astype(dtype)
    lt, ld = (ot * torch.tensor(u)).sum(), (od * dn.Tensor(u)).sum()
    if wt is not None:
        uw = rng.standard_normal(wt.shape).astype(dtype)
        lt, ld = lt + (wt * torch.tensor(uw)).sum(), ld + (wd * dn.Tensor(uw)).sum()
    lt.backward()
    ld.backward()
    for k, t in ta.items():
        if t is not None and t.grad is not None:
            np.testing.assert_allclose(np.asarray(da[k].grad), t.grad.numpy(), rtol=gtol, atol=gtol, err_msg=k)


@pytest.mark.parametrize("block", range(4))
def test_fuzz_matches_pytorch_float64(block):
    torch.set_num_threads(1)
    rng = np.random.default_rng(block)
    for case in range(block * 40, block * 40 + 40):
        _compare(*_case(rng, case), rng, np.float64, 1e-10, 1e-9)


def test_fuzz_matches_pytorch_float32():
    rng = np.random.default_rng(7)
    for case in range(40):
        _compare(*_case(rng, case), rng, np.float32, 1e-4, 1e-3)


@pytest.mark.parametrize("need_weights", [True, False])
def test_float_mask_gets_the_gradient_pytorch_gives(need_weights):
    rng = np.random.default_rng(3)
    L, S, N, E, h = 3, 4, 2, 4, 2
    q, k, m = rng.standard_normal((L, N, E)), rng.standard_normal((S, N, E)), rng.standard_normal((N * h, L, S))
    w, wo = rng.standard_normal((3 * E, E)), rng.standard_normal((E, E))
    md, mt = dn.Tensor(m, requires_grad=True), torch.tensor(m, requires_grad=True)
    args = (E, h, w, None, None, None, False, 0.0, wo, None)
    od, _ = F.multi_head_attention_forward(dn.Tensor(q), dn.Tensor(k), dn.Tensor(k), *args, attn_mask=md,
                                           need_weights=need_weights)
    ot, _ = TF.multi_head_attention_forward(torch.tensor(q), torch.tensor(k), torch.tensor(k),
                                            *(torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args),
                                            attn_mask=mt, need_weights=need_weights)
    (od ** 2).sum().backward()
    (ot ** 2).sum().backward()
    np.testing.assert_allclose(np.asarray(md.grad), mt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_module_parameters_through_the_functional_give_the_module_output():
    mha = dn.nn.MultiheadAttention(8, 2, add_bias_kv=True, dtype=np.float64)
    rng = np.random.default_rng(4)
    x = dn.Tensor(rng.standard_normal((5, 3, 8)))
    kp = rng.random((3, 5)) < 0.3
    kp[:, 0] = False
    for need in (True, False):
        om, wm = mha(x, x, x, key_padding_mask=kp, need_weights=need)
        of, wf = F.multi_head_attention_forward(x, x, x, 8, 2, mha.in_proj_weight, mha.in_proj_bias, mha.bias_k,
                                                mha.bias_v, False, 0.0, mha.out_proj.weight, mha.out_proj.bias,
                                                key_padding_mask=kp, need_weights=need)
        np.testing.assert_allclose(of.data, om.data, rtol=1e-12, atol=1e-12)
        assert (wf is None) == (wm is None)
        if need:
            np.testing.assert_allclose(wf.data, wm.data, rtol=1e-12, atol=1e-12)


def test_dropout_applies_in_training_only_and_scales_the_weights_kept():
    rng = np.random.default_rng(5)
    L, N, E, h, p = 6, 4, 4, 2, 0.5
    x = dn.Tensor(rng.standard_normal((L, N, E)))
    args = (E, h, dn.Tensor(rng.standard_normal((3 * E, E))), None, None, None, False, p,
            dn.Tensor(np.eye(E)), None)
    ref, wref = F.multi_head_attention_forward(x, x, x, *args, training=False, average_attn_weights=False)
    out, w = F.multi_head_attention_forward(x, x, x, *args, average_attn_weights=False)
    kept = w.data != 0
    assert 0.3 < kept.mean() < 0.7  # (p = 0.5 over 288 weights)
    np.testing.assert_allclose(w.data[kept], wref.data[kept] / (1 - p), rtol=1e-6)
    # the output is the dropped weights times the values (out_proj is the identity here)
    v = (x.data @ args[2].data[2 * E:].T).reshape(L, N, h, E // h).transpose(1, 2, 0, 3)
    np.testing.assert_allclose(out.data, (w.data @ v).transpose(2, 0, 1, 3).reshape(L, N, E), rtol=1e-5, atol=1e-6)
    same, _ = F.multi_head_attention_forward(x, x, x, *args, training=False, need_weights=False)
    np.testing.assert_allclose(same.data, ref.data, rtol=1e-5, atol=1e-6)


def _refusals():
    E = 4
    q3, q2 = np.zeros((2, 3, E)), np.zeros((2, E))
    w = np.zeros((3 * E, E))
    return [
        (dict(query=np.zeros((1, 1, 2, E))), AssertionError, "unbatched 2D or batched 3D"),
        (dict(key=np.zeros((2, E))), AssertionError, "expected `key` and `value` to be 3-D"),
        (dict(query=q2, key=q2, value=q2, key_padding_mask=np.zeros((3, 2), bool)), AssertionError, "1-D"),
        (dict(key_padding_mask=np.zeros(2, bool)), AssertionError, "`key_padding_mask` to be `None` or 2-D"),
        (dict(attn_mask=np.zeros((1, 1, 2, 2), bool)), AssertionError, "`attn_mask` to be `None`, 2-D or 3-D"),
        (dict(query=q2, key=q2, value=q2, attn_mask=np.zeros((3, 2, 2), bool)), AssertionError,
         "Expected `attn_mask` shape"),
        (dict(attn_mask=np.zeros((2, 2), np.int64)), AssertionError, "only bool and floating types of attn_mask"),
        (dict(is_causal=True), RuntimeError, "Need attn_mask if specifying the is_causal hint"),
        (dict(embed_dim_to_check=5), AssertionError, "was expecting embedding dimension of 5"),
        (dict(num_heads=3), AssertionError, "not divisible by num_heads"),
        (dict(value=np.zeros((3, 3, E))), AssertionError, "does not match value shape"),
        (dict(in_proj_weight=None), AssertionError, "in_proj_weight is None"),
        (dict(use_separate_proj_weight=True), AssertionError, "q_proj_weight is None"),
        (dict(attn_mask=np.zeros((2, 3), bool)), RuntimeError, "The shape of the 2D attn_mask"),
        (dict(attn_mask=np.zeros((2, 2, 2), bool)), RuntimeError, "The shape of the 3D attn_mask"),
        (dict(bias_k=np.zeros((1, 1, E))), AssertionError, "bias_k is set but bias_v is None"),
        (dict(bias_k=np.zeros((1, 1, E)), bias_v=np.zeros((1, 1, E)), static_k=np.zeros((3, 2, 4))),
         AssertionError, "bias cannot be added to static key"),
        (dict(static_k=np.zeros((2, 2, 4))), AssertionError, "expecting static_k.size\\(0\\) of 3"),
        (dict(static_v=np.zeros((3, 2, 2))), AssertionError, "expecting static_v.size\\(2\\) of 4"),
        (dict(key_padding_mask=np.zeros((2, 2), bool)), AssertionError, "key_padded_mask.shape\\[0\\] to be 3"),
        (dict(key_padding_mask=np.zeros((3, 3), bool)), AssertionError, "key_padded_mask.shape\\[1\\] to be 2"),
    ], dict(query=q3, key=q3, value=q3, embed_dim_to_check=E, num_heads=1, in_proj_weight=w, in_proj_bias=None,
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0, out_proj_weight=np.zeros((E, E)),
            out_proj_bias=None)


@pytest.mark.parametrize("index", range(len(_refusals()[0])))
def test_refusals_match_pytorch(index):
    cases, base = _refusals()
    kw, error, match = cases[index]
    kw = dict(base, **kw)
    tensor_args = {k for k, v in kw.items() if isinstance(v, np.ndarray) and k not in ("attn_mask",
                                                                                      "key_padding_mask")}
    with pytest.raises(error, match=match):
        F.multi_head_attention_forward(**{k: dn.Tensor(v) if k in tensor_args else v for k, v in kw.items()})
    with pytest.raises(error, match=match):
        TF.multi_head_attention_forward(**{k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                                           for k, v in kw.items()})


def test_mismatched_mask_types_warn_as_pytorch():
    x = dn.Tensor(np.zeros((2, 1, 4)))
    with pytest.warns(UserWarning, match="mismatched key_padding_mask and attn_mask is deprecated"):
        F.multi_head_attention_forward(x, x, x, 4, 1, dn.Tensor(np.zeros((12, 4))), None, None, None, False, 0.0,
                                       dn.Tensor(np.zeros((4, 4))), None, key_padding_mask=np.zeros((1, 2), bool),
                                       attn_mask=np.zeros((2, 2)))
