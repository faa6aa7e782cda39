"""The GPU (cupy) against the CPU (numpy) for attention, changed since the last run on a GPU (commit c209826),
written without a GPU (a static review): F.scaled_dot_product_attention with host masks (bool, float, a causal
one built with xp.tril) beside device inputs, a query whose keys are all masked (0, not NaN), grouped heads
(xp.repeat) and dropout drawn on the host; F.multi_head_attention_forward; nn.attention.flex_attention
(score_mod/mask_mod on device index tensors, captured device tables, the block lists built on the device, safe
softmax, logsumexp and row maxima). gpu_oracle.py says how a case draws its inputs and how the devices are
compared."""
from functools import partial

import numpy as np
import pytest

import distnn as dn
from distnn import backend
from distnn import functional as F

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)

_FX_DOCS = np.array([0, 0, 1, 1, 1, 2])


def _bool_mask(R):
    """A host bool mask in which query 1 sees no key."""
    m = R.random((2, 1, 4, 6)) < 0.6
    m[:, :, 1] = False
    return m


def _float_mask(R):
    m = R.standard_normal((4, 6))
    m[2, :3] = -np.inf
    return m


def _key_padding_mask(R):
    """A float key padding mask (as the attn_mask: mixed types warn) in which every query sees a key (no NaN
    from need_weights' softmax)."""
    m = R.random((3, 4)) < 0.3
    m[:, 0] = False
    return np.where(m, -np.inf, 0.0)


def _mha_functional(q, k, w, wo, bk, bv, m, key_padding_mask):
    """F.multi_head_attention_forward with weights, bias_k/v, a zero key, a float mask and padding."""
    out, weights = F.multi_head_attention_forward(q, k, k, 6, 2, w, None, bk, bv, True, 0.0, wo, None,
                                                  key_padding_mask=key_padding_mask.astype(m.dtype), attn_mask=m,
                                                  average_attn_weights=False)
    return out + weights.sum(axis=(1, 3)).T[:, :, None]


def _flex_bias_documents_gqa(q, k, v, bias):
    """flex_attention with a captured device bias table indexed by q_idx - kv_idx, a document mask from a host
    table moved to the device (and_masks with causal), GQA, the logsumexp and the rows' maxima (no row fully
    masked: the diagonal stays)."""
    from distnn.nn.attention import flex_attention as FX

    device = backend.device_of(q.data)
    docs = dn.Tensor(backend.to_device(_FX_DOCS, device))
    mask = FX.and_masks(lambda b, h, qi, ki: qi >= ki, lambda b, h, qi, ki: docs[qi] == docs[ki])
    bm = FX.create_block_mask(mask, 2, 4, 6, 6, device=device, BLOCK_SIZE=4)
    out, aux = FX.flex_attention(q, k, v, lambda s, b, h, qi, ki: s + bias[qi - ki + 5], bm, enable_gqa=True,
                                 return_aux=FX.AuxRequest(lse=True, max_scores=True))
    return out + aux.lse[..., None] * 0.5 + aux.max_scores[..., None] * 0.25


def _flex_softcap_empty_rows(q, k, v):
    """flex_attention with a tanh softcap and rows whose keys are all masked (output 0, no NaN)."""
    from distnn.nn.attention import flex_attention as FX

    bm = FX.create_block_mask(lambda b, h, qi, ki: (qi >= ki) & (qi % 3 != 1), None, None, 6, 5,
                              device=backend.device_of(q.data), BLOCK_SIZE=(4, 3))
    return FX.flex_attention(q, k, v, lambda s, b, h, qi, ki: dn.tanh(s / 2.0) * 2.0, bm, scale=0.8)


CASES = {
    "sdpa_float_mask_grad": lambda R: ([R.standard_normal((2, 3, 4, 5)), R.standard_normal((2, 3, 6, 5)),
                                        R.standard_normal((2, 3, 6, 7)), _float_mask(R)],
                                       lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m)),
    "sdpa_host_bool_mask_empty_row": lambda R: (
        [R.standard_normal((2, 3, 4, 5)), R.standard_normal((2, 3, 6, 5)), R.standard_normal((2, 3, 6, 7))],
        partial(lambda q, k, v, mask: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), mask=_bool_mask(R))),
    "sdpa_gqa_causal_dropout": lambda R: ([R.standard_normal((2, 4, 5, 3)), R.standard_normal((2, 2, 5, 3)),
                                           R.standard_normal((2, 1, 5, 4))],
                                          lambda q, k, v: F.scaled_dot_product_attention(
                                              q, k, v, dropout_p=0.3, is_causal=True, scale=0.5, enable_gqa=True,
                                              generator=np.random.default_rng(0))),
    "multi_head_attention_forward": lambda R: (
        [R.standard_normal((5, 3, 6)), R.standard_normal((4, 3, 6)), R.standard_normal((18, 6)),
         R.standard_normal((6, 6)), R.standard_normal((1, 1, 6)), R.standard_normal((1, 1, 6)),
         R.standard_normal((5, 4))],
        partial(_mha_functional, key_padding_mask=_key_padding_mask(R))),
    "flex_attention_bias_documents_gqa": lambda R: (
        [R.standard_normal((2, 4, 6, 3)), R.standard_normal((2, 2, 6, 3)), R.standard_normal((2, 2, 6, 4)),
         R.standard_normal(11)], _flex_bias_documents_gqa),
    "flex_attention_softcap_empty_rows": lambda R: (
        [R.standard_normal((2, 2, 6, 3)), R.standard_normal((2, 2, 5, 3)), R.standard_normal((2, 2, 5, 2))],
        _flex_softcap_empty_rows),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
