"""Attention masks' dtypes against torch 2.13: F.scaled_dot_product_attention takes a bool, float32 or
query-dtype mask; MultiheadAttention (module and F.multi_head_attention_forward) adds its masks up (a bool one
as the query's dtype) and needs the sum in the query's dtype (or float32 too with ``need_weights=False``);
integer masks are refused. Everything else is refused with torch's error and words (distnn cast the mask)."""
import itertools
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from torch_twins import copy_torch_weights

torch = pytest.importorskip("torch")

R = np.random.default_rng(0)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
MASKS = ["bool", "float16", "float32", "float64", "int64"]


def _mask(shape, dtype):
    if dtype == "bool":
        m = R.random(shape) < 0.3
        m[..., 0] = False  # (every query sees a key)
        return m
    return (R.standard_normal(shape) if dtype != "int64" else R.integers(-1, 1, shape)).astype(dtype)


def _outcome(call):
    """(output as float64, its dtype) or (error type, message)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's deprecation of a key padding mask of another dtype)
        try:
            y = call()
        except Exception as e:  # noqa: BLE001 (compared with torch's below)
            return type(e), str(e)
    y = y[0] if isinstance(y, tuple) else y
    a = y.detach().numpy() if isinstance(y, torch.Tensor) else np.asarray(y.data)
    return a.astype(np.float64), a.dtype


def _same(ours, theirs, tol):
    if isinstance(theirs[0], type):
        assert isinstance(ours[0], type), (ours, theirs)
        assert theirs[0].__name__ in {c.__name__ for c in ours[0].__mro__}, (ours, theirs)
        gist = theirs[1].split("\n")[0].rstrip(".")
        assert gist in ours[1], (ours[1], theirs[1])
    else:
        assert not isinstance(ours[0], type), (ours, theirs)
        assert ours[1] == theirs[1]
        np.testing.assert_allclose(ours[0], theirs[0], rtol=tol, atol=tol)


@pytest.mark.parametrize("q_dtype,mask_dtype", itertools.product(["float16", "float32", "float64"], MASKS))
def test_sdpa_takes_the_masks_torch_takes(q_dtype, mask_dtype):
    q = R.standard_normal((2, 3, 4, 8)).astype(q_dtype)
    m = _mask((4, 4), mask_dtype)
    theirs = _outcome(lambda: torch.nn.functional.scaled_dot_product_attention(*[torch.from_numpy(q)] * 3,
                                                                               attn_mask=torch.from_numpy(m)))
    ours = _outcome(lambda: F.scaled_dot_product_attention(*[distnn.tensor(q)] * 3, attn_mask=distnn.tensor(m)))
    _same(ours, theirs, 5e-3 if q_dtype == "float16" else 1e-5)


def _mha_pair(x_dtype):
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    ref = ref.double() if x_dtype == "float64" else ref
    ours = nn.MultiheadAttention(8, 2, batch_first=True, dtype=np.dtype(x_dtype))
    return ref, copy_torch_weights(ref, ours)


CASES = list(itertools.product(["float32", "float64"], MASKS + [None], [None, "bool", "float32", "float64"],
                               [True, False]))


@pytest.mark.parametrize("x_dtype,mask_dtype,kpm_dtype,need_weights", CASES)
def test_multihead_attention_takes_the_masks_torch_takes(x_dtype, mask_dtype, kpm_dtype, need_weights):
    ref, mod = _mha_pair(x_dtype)
    x = R.standard_normal((2, 4, 8)).astype(x_dtype)
    m = None if mask_dtype is None else _mask((4, 4), mask_dtype)
    kpm = None if kpm_dtype is None else _mask((2, 4), kpm_dtype)

    def t(a):
        return None if a is None else torch.from_numpy(a)

    def d(a):
        return None if a is None else distnn.tensor(a)
    kw = dict(need_weights=need_weights)
    theirs = _outcome(lambda: ref(*[t(x)] * 3, attn_mask=t(m), key_padding_mask=t(kpm), **kw))
    ours = _outcome(lambda: mod(*[d(x)] * 3, attn_mask=d(m), key_padding_mask=d(kpm), **kw))
    _same(ours, theirs, 1e-5)
    # the functional form (sequence first), with the module's weights
    args = lambda lib, conv, a: (*[conv(a.transpose(1, 0, 2).copy())] * 3, 8, 2,  # noqa: E731
                                 *[conv(getattr(ref, n).detach().numpy()) for n in ("in_proj_weight", "in_proj_bias")],
                                 None, None, False, 0.0,
                                 *[conv(p.detach().numpy()) for p in (ref.out_proj.weight, ref.out_proj.bias)])
    theirs = _outcome(lambda: torch.nn.functional.multi_head_attention_forward(
        *args(torch, t, x), attn_mask=t(m), key_padding_mask=t(kpm), **kw))
    ours = _outcome(lambda: F.multi_head_attention_forward(*args(distnn, d, x), attn_mask=d(m),
                                                           key_padding_mask=d(kpm), **kw))
    _same(ours, theirs, 1e-5)


@pytest.mark.parametrize("mask_dtype", ["float32", "float64", "bool"])
@pytest.mark.parametrize("need_weights", [True, False])
def test_under_autocast_a_float32_mask_is_cast_and_a_float64_one_refused(mask_dtype, need_weights):
    ref, mod = _mha_pair("float32")
    x = R.standard_normal((2, 4, 8)).astype(np.float32)
    m = _mask((4, 4), mask_dtype)
    with torch.autocast("cpu", dtype=torch.float16):
        theirs = _outcome(lambda: ref(*[torch.from_numpy(x)] * 3, attn_mask=torch.from_numpy(m),
                                      need_weights=need_weights))
    with distnn.autocast("cpu"):
        ours = _outcome(lambda: mod(*[distnn.tensor(x)] * 3, attn_mask=distnn.tensor(m), need_weights=need_weights))
    _same(ours, theirs, 2e-2)
