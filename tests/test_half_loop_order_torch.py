"""float16 results that hang on how PyTorch's CPU loops walk a tensor, bitwise against torch 2.13:

* ``add``/``sub`` with ``alpha`` (out of place, in place, ``out=``): the last ``n % 32`` elements of a contiguous
  operand pair are PyTorch's scalar tail, ``self + alpha * other`` in float16 arithmetic (the product rounded
  first), the rest its vectors' fma; for every length 1..300 and a few up to 32768 (one chunk of its loop);
* ``prod`` of a transposed, permuted or flipped tensor over every element: its values in memory order.
Guards (unchanged rules, pass on the old code too): broadcast and number operands of add, the float32 add, and
prod over one dim of a permuted tensor."""
import numpy as np
import pytest
import torch

import distnn as dn

ALPHAS = [0.3, 3.0, -1.7, 0.1, 1e-3, 2.5, 60000.0]
LENGTHS = list(range(1, 301)) + [1000, 4099, 32767, 32768]


def _bits(x):
    x = x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x.data)
    assert x.dtype == np.float16
    return np.where(np.isnan(x), np.uint16(0x7E00), x.view(np.uint16))


def _pair(rng, shape, dtype=np.float16):
    return ((rng.standard_normal(shape) * 4).astype(dtype), (rng.standard_normal(shape) * 4).astype(dtype))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_add_and_sub_with_alpha_follow_torchs_scalar_tail(alpha):
    rng = np.random.default_rng(int(abs(alpha) * 1000))
    for n in LENGTHS:
        for shape in [(n,), (1, n)] + ([(n // 4, 4)] if n % 4 == 0 else []):
            a, b = _pair(rng, shape)
            for ours, theirs in [(dn.add, torch.add), (dn.sub, torch.sub)]:
                np.testing.assert_array_equal(_bits(ours(dn.tensor(a), dn.tensor(b), alpha=alpha)),
                                              _bits(theirs(torch.tensor(a), torch.tensor(b), alpha=alpha)),
                                              err_msg=f"{ours.__name__} n={n} shape={shape}")


@pytest.mark.parametrize("alpha", [0.3, -1.7])
def test_in_place_and_out_add_follow_torchs_scalar_tail(alpha):
    rng = np.random.default_rng(7)
    for n in [5, 31, 33, 77, 200, 1023]:
        a, b = _pair(rng, (n,))
        expected = torch.tensor(a).add_(torch.tensor(b), alpha=alpha)
        x = dn.tensor(a.copy())
        x.add_(dn.tensor(b), alpha=alpha)
        np.testing.assert_array_equal(_bits(x), _bits(expected))
        y = dn.tensor(a.copy())
        y.sub_(dn.tensor(b), alpha=-alpha)
        np.testing.assert_array_equal(_bits(y), _bits(expected))
        out = dn.tensor(np.empty(n, np.float16))
        dn.add(dn.tensor(a), dn.tensor(b), alpha=alpha, out=out)
        np.testing.assert_array_equal(_bits(out), _bits(expected))


def test_add_with_alpha_gradient_is_torchs():
    rng = np.random.default_rng(8)
    a, b = _pair(rng, (45,))
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    da, db = dn.tensor(a, requires_grad=True), dn.tensor(b, requires_grad=True)
    out_t, out_d = torch.add(ta, tb, alpha=0.3), dn.add(da, db, alpha=0.3)
    np.testing.assert_array_equal(_bits(out_d), _bits(out_t))
    g = (rng.standard_normal(45)).astype(np.float16)
    out_t.backward(torch.tensor(g))
    out_d.backward(dn.tensor(g))
    np.testing.assert_array_equal(_bits(db.grad), _bits(tb.grad))
    np.testing.assert_array_equal(_bits(da.grad), _bits(ta.grad))


def test_float32_add_and_broadcast_half_add_keep_their_rules():
    """Guards: float32 (one fma everywhere) and a broadcast float16 row: as before."""
    rng = np.random.default_rng(9)
    a, b = _pair(rng, (77,), np.float32)
    np.testing.assert_array_equal(dn.add(dn.tensor(a), dn.tensor(b), alpha=0.3).numpy(),
                                  torch.add(torch.tensor(a), torch.tensor(b), alpha=0.3).numpy())
    h, row = _pair(rng, (64, 64))
    np.testing.assert_array_equal(_bits(dn.add(dn.tensor(h), dn.tensor(row[0]), alpha=0.3)),
                                  _bits(torch.add(torch.tensor(h), torch.tensor(row[0]), alpha=0.3)))


LAYOUTS = [((7, 5), (1, 0)), ((6, 4, 3), (2, 0, 1)), ((30, 40), (1, 0)), ((3, 4, 5), (1, 2, 0)),
           ((5, 1, 7), (2, 1, 0)), ((50, 70), (1, 0)), ((8, 9, 10), (2, 1, 0))]


@pytest.mark.parametrize("shape,perm", LAYOUTS)
def test_full_prod_of_a_strided_tensor_is_torchs_memory_order(shape, perm):
    rng = np.random.default_rng(len(shape) * 100 + shape[0])
    for _ in range(8):
        base = rng.uniform(0.9, 1.1, shape).astype(np.float16)
        for view in [lambda t: t.permute(*perm), lambda t: t.flip(0).permute(*perm)]:
            got, expected = view(dn.tensor(base)).prod(), view(torch.tensor(base)).prod()
            np.testing.assert_array_equal(_bits(got).reshape(-1), _bits(expected).reshape(-1))


@pytest.mark.parametrize("shape,perm", LAYOUTS[:4])
def test_prod_over_one_dim_of_a_permuted_tensor_keeps_its_rule(shape, perm):
    """Guard: already PyTorch's."""
    base = np.random.default_rng(3).uniform(0.9, 1.1, shape).astype(np.float16)
    for d in range(len(shape)):
        got = dn.tensor(base).permute(*perm).prod(d)
        expected = torch.tensor(base).permute(*perm).prod(d)
        np.testing.assert_array_equal(_bits(got), _bits(expected))
