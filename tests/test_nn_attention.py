"""MultiheadAttention and Transformer encoder layers vs PyTorch with copied weights; gradient checks."""
import numpy as np
import pytest

import distnn
from distnn import nn
from distnn.functional.attention import MultiheadAttentionCore
from distnn.testing import check_grad

from test_nn_rnn import close
from torch_twins import copy_torch_weights


def weighted_sum(outs, ws, T):
    total = None
    for o, w in zip(outs, ws):
        term = (o * T(w)).sum()
        total = term if total is None else total + term
    return total


def run_mha(torch, rng, *, batch_first=False, mode="self", need_weights=True, average=True, kpm=None,
            attn_mask=None, causal=False, unbatched=False, L=5, S=6, N=3, E=8, H=2, **options):
    """Run torch and distnn MHA on the same data; compare outputs, weights and every gradient. ``options``:
    more constructor arguments (kdim, vdim, add_bias_kv, add_zero_attn)."""
    tm, dm = torch.nn.MultiheadAttention(E, H, batch_first=batch_first, **options), nn.MultiheadAttention(
        E, H, batch_first=batch_first, **options)
    copy_torch_weights(tm, dm, same_keys=True)
    if mode == "self":
        S = L
    kdim, vdim = options.get("kdim") or E, options.get("vdim") or E

    def make(n, dim=E):
        shape = (n, dim) if unbatched else ((N, n, dim) if batch_first else (n, N, dim))
        return rng.standard_normal(shape).astype(np.float32)

    arrays = {"self": lambda: [make(L)], "kv": lambda: [make(L), make(S, kdim)],
              "cross": lambda: [make(L), make(S, kdim), make(S, vdim)]}
    arrs = arrays[mode]()
    ts = [torch.tensor(a, requires_grad=True) for a in arrs]
    ds = [distnn.Tensor(a.copy(), requires_grad=True) for a in arrs]
    qkv = {"self": lambda t: (t[0], t[0], t[0]), "kv": lambda t: (t[0], t[1], t[1]), "cross": lambda t: tuple(t)}
    kw_t = dict(need_weights=need_weights, average_attn_weights=average)
    kw_d = dict(kw_t)
    if kpm is not None:
        kw_t["key_padding_mask"], kw_d["key_padding_mask"] = torch.tensor(kpm), kpm
    if attn_mask is not None:
        kw_t["attn_mask"], kw_d["attn_mask"] = torch.tensor(attn_mask), attn_mask
    if causal:  # PyTorch wants the mask with the hint; distnn builds it
        kw_t["attn_mask"] = torch.nn.Transformer.generate_square_subsequent_mask(L)
        kw_t["is_causal"] = kw_d["is_causal"] = True
    out_t, w_t = tm(*qkv[mode](ts), **kw_t)
    out_d, w_d = dm(*qkv[mode](ds), **kw_d)
    assert (w_d is None) == (w_t is None)
    outs_t = [out_t] + ([w_t] if w_t is not None else [])
    outs_d = [out_d] + ([w_d] if w_d is not None else [])
    ws = [rng.standard_normal(o.shape).astype(np.float32) for o in outs_t]
    weighted_sum(outs_t, ws, torch.tensor).backward()
    weighted_sum(outs_d, ws, distnn.Tensor).backward()
    for a, b, what in zip(outs_d, outs_t, ["output", "weights"]):
        close(a.numpy(), b.detach().numpy(), what=what)
    dparams = dict(dm.named_parameters())
    for name, p in tm.named_parameters():
        close(dparams[name].grad, p.grad.numpy(), what=f"grad of {name}")
    for d, t in zip(ds, ts):
        close(d.grad, t.grad.numpy(), what="grad of input")


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("mode", ["self", "kv", "cross"])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_matches_torch(torch, rng, batch_first, mode, need_weights):
    run_mha(torch, rng, batch_first=batch_first, mode=mode, need_weights=need_weights)


@pytest.mark.parametrize("mode,options", [("cross", dict(kdim=3, vdim=5)), ("kv", dict(kdim=6, vdim=6)),
                                          ("cross", dict(kdim=4)), ("self", dict(add_bias_kv=True)),
                                          ("cross", dict(add_zero_attn=True)),
                                          ("cross", dict(kdim=3, vdim=2, add_bias_kv=True, add_zero_attn=True))])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_kdim_vdim_bias_kv_zero_attn_match_torch(torch, rng, mode, options, need_weights, batch_first):
    # found by tests/test_layer_fuzz_*.py: kdim/vdim other than embed_dim, add_bias_kv and add_zero_attn
    # raised NotImplementedError
    S = 5 if mode == "self" else 6
    kpm = rng.random((3, S)) < 0.3
    kpm[:, 0] = False
    run_mha(torch, rng, mode=mode, need_weights=need_weights, batch_first=batch_first, kpm=kpm,
            attn_mask=np.triu(np.ones((5, S), bool), 1), **options)
    run_mha(torch, rng, mode=mode, need_weights=need_weights, batch_first=batch_first, unbatched=True, **options)
    assert list(nn.MultiheadAttention(8, 2, **options).state_dict()) == \
        list(torch.nn.MultiheadAttention(8, 2, **options).state_dict())


def test_mha_parameter_names(torch):
    assert list(nn.MultiheadAttention(8, 2).state_dict()) == list(torch.nn.MultiheadAttention(8, 2).state_dict())


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_key_padding_mask(torch, rng, need_weights):
    kpm = np.zeros((3, 5), bool)
    kpm[0, 3:] = True
    kpm[2, 0] = True
    run_mha(torch, rng, mode="self", need_weights=need_weights, kpm=kpm, average=False)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_causal(torch, rng, need_weights):
    run_mha(torch, rng, mode="self", batch_first=True, need_weights=need_weights, causal=True)


def test_mha_attn_masks(torch, rng):
    run_mha(torch, rng, mode="cross", need_weights=False, attn_mask=rng.standard_normal((5, 6)).astype(np.float32))
    bool_mask = rng.random((3 * 2, 5, 6)) < 0.3
    bool_mask[:, :, 0] = False  # keep at least one key per query
    run_mha(torch, rng, mode="kv", batch_first=True, need_weights=True, attn_mask=bool_mask)
    kpm = np.zeros((3, 6), bool)
    kpm[1, 4:] = True
    run_mha(torch, rng, mode="cross", need_weights=False, attn_mask=bool_mask[0], kpm=kpm)


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_unbatched(torch, rng, batch_first):
    run_mha(torch, rng, mode="self", unbatched=True, batch_first=batch_first, need_weights=True)
    run_mha(torch, rng, mode="cross", unbatched=True, batch_first=batch_first, need_weights=False)


def test_mha_masks_actually_mask(rng):
    """Changing a masked key's value must not change the output."""
    m = nn.MultiheadAttention(4, 2, batch_first=True)
    x = rng.standard_normal((1, 4, 4)).astype(np.float32)
    kpm = np.array([[False, False, False, True]])
    a = m(distnn.Tensor(x), distnn.Tensor(x), distnn.Tensor(x), key_padding_mask=kpm, need_weights=False)[0]
    v = x.copy()
    v[0, 3] += 10.0
    b = m(distnn.Tensor(x), distnn.Tensor(v), distnn.Tensor(v), key_padding_mask=kpm, need_weights=False)[0]
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    c = m(distnn.Tensor(x), distnn.Tensor(v), distnn.Tensor(v), need_weights=False)[0]
    assert not np.allclose(a.numpy(), c.numpy())


@pytest.mark.parametrize("seq_first", [False, True])
def test_attention_core_check_grad_float64(rng, seq_first):
    N, L, S, E, H = 2, 3, 4, 4, 2
    lay = (lambda n: (n, N, E)) if seq_first else (lambda n: (N, n, E))
    q, k, v = rng.standard_normal(lay(L)), rng.standard_normal(lay(S)), rng.standard_normal(lay(S))
    mask = np.where(rng.random((N, 1, L, S)) < 0.3, -np.inf, 0.0)
    mask[..., 0] = 0.0
    drop = (rng.random((N, H, L, S)) > 0.2) / 0.8
    check_grad(lambda q, k, v: MultiheadAttentionCore.apply(q, k, v, mask, drop, num_heads=H, seq_first=seq_first),
               q, k, v)
    packed = rng.standard_normal(lay(L)[:-1] + (3 * E,))
    check_grad(lambda p: MultiheadAttentionCore.apply(p, None, None, None, drop[..., :L], num_heads=H,
                                                      seq_first=seq_first), packed)


def test_mha_bad_input_names_layer():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2)

    m = Holder()
    x = distnn.Tensor(np.zeros((5, 3, 6), np.float32))
    with pytest.raises(ValueError, match=r"MultiheadAttention 'attn'.*E=embed_dim=8.*\(5, 3, 6\)"):
        m.attn(x, x, x)
    y = distnn.Tensor(np.zeros((5, 3, 8), np.float32))
    with pytest.raises(ValueError, match=r"MultiheadAttention 'attn'.*key_padding_mask.*\(3, 5\)"):
        m.attn(y, y, y, key_padding_mask=np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(6, 4)


# ------------------------------------------------------------------ transformer encoder
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_torch(torch, rng, norm_first, activation, batch_first):
    kw = dict(dim_feedforward=16, dropout=0.0, activation=activation, batch_first=batch_first, norm_first=norm_first)
    tm, dm = torch.nn.TransformerEncoderLayer(8, 2, **kw), nn.TransformerEncoderLayer(8, 2, **kw)
    copy_torch_weights(tm, dm, same_keys=True)
    _compare_encoder(torch, rng, tm, dm, batch_first, {}, {})


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_stack_with_masks_matches_torch(torch, rng, norm_first):
    kw = dict(dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=norm_first)
    tm = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, **kw), 2, norm=torch.nn.LayerNorm(8),
                                     enable_nested_tensor=False)
    dm = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, **kw), 2, norm=nn.LayerNorm(8))
    copy_torch_weights(tm, dm, same_keys=True)
    assert dm.layers[1].self_attn.where() == "MultiheadAttention 'layers.1.self_attn'"
    assert dm.layers[0].linear1.weight is not dm.layers[1].linear1.weight
    kpm = np.zeros((3, 5), bool)
    kpm[0, 3:] = True
    _compare_encoder(torch, rng, tm, dm, True, {"src_key_padding_mask": torch.tensor(kpm)},
                     {"src_key_padding_mask": kpm})
    causal = torch.nn.Transformer.generate_square_subsequent_mask(5)
    _compare_encoder(torch, rng, tm, dm, True, {"mask": causal, "is_causal": True}, {"is_causal": True})


def _compare_encoder(torch, rng, tm, dm, batch_first, kw_t, kw_d):
    x = rng.standard_normal((3, 5, 8) if batch_first else (5, 3, 8)).astype(np.float32)
    xt, xd = torch.tensor(x, requires_grad=True), distnn.Tensor(x.copy(), requires_grad=True)
    for m in (tm, dm):
        for p in m.parameters():
            p.grad = None
    out_t, out_d = tm(xt, **kw_t), dm(xd, **kw_d)
    close(out_d.numpy(), out_t.detach().numpy(), what="encoder output")
    # A random weighting: sum(out**2) after a LayerNorm is nearly constant and would test nothing.
    w = rng.standard_normal(out_t.shape).astype(np.float32)
    (out_t * torch.tensor(w)).sum().backward()
    (out_d * distnn.Tensor(w)).sum().backward()
    close(xd.grad, xt.grad.numpy(), what="grad of input")
    dparams = dict(dm.named_parameters())
    for name, p in tm.named_parameters():
        close(dparams[name].grad, p.grad.numpy(), what=f"grad of {name}")


def test_encoder_dropout_is_reproducible_and_off_in_eval(torch, rng):
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.3, generator=np.random.default_rng(5))
    dm = nn.TransformerEncoder(layer, 2)
    gens = {id(m.generator) for m in dm.modules() if getattr(m, "generator", None) is not None}
    assert len(gens) == 1  # the copies share one stream
    x = distnn.Tensor(rng.standard_normal((5, 2, 8)).astype(np.float32))
    state = dm.layers[0].dropout.generator.bit_generator.state
    a = dm(x).numpy()
    dm.layers[0].dropout.generator.bit_generator.state = state
    b = dm(x).numpy()
    np.testing.assert_array_equal(a, b)
    dm.eval()
    e1, e2 = dm(x).numpy(), dm(x).numpy()
    np.testing.assert_array_equal(e1, e2)
    assert not np.allclose(a, e1)
