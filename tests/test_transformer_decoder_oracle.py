"""TransformerDecoderLayer, TransformerDecoder and nn.Transformer against PyTorch (the oracle).

float64, weights copied by state_dict key (the key lists must be PyTorch's, in its order), dropout 0 in
training mode or any dropout in eval mode: the output and the gradients of tgt, memory (src for the whole
model) and every parameter compared at rtol 1e-9 (relative to each array's largest magnitude) over seeded
random configurations: norm_first, batch_first, bias, activation ('relu', 'gelu', a callable),
layer_norm_eps, unbatched inputs, boolean / float / per-head masks, key padding masks, causal masks with
and without the ``is_causal`` hints. (No query has all its keys masked: PyTorch's fused path and distnn's
give 0 there but its composed path NaN; test_nn_attention covers that.)

Also: initialisation (PyTorch's Xavier reset of nn.Transformer, custom encoders and decoders), the static
causal mask, refusals, and a small decoder trained through the public API (its loss must fall).

``DISTNN_TRANSFORMER_DECODER_CASES`` sets the number of seeded cases per test (default 10),
``DISTNN_TRANSFORMER_DECODER_START`` the first seed.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn, optim  # noqa: E402
from oracle_checks import close  # noqa: E402
from torch_twins import copy_torch_weights  # noqa: E402

CASES = int(os.environ.get("DISTNN_TRANSFORMER_DECODER_CASES", "10"))
START = int(os.environ.get("DISTNN_TRANSFORMER_DECODER_START", "0"))
SEEDS = range(START, START + CASES)
pytestmark = [pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
              pytest.mark.filterwarnings("ignore:Support for mismatched")]


def copy_weights(tm, dm, rng):
    """Random weights (LayerNorm scales near 1) in PyTorch's model, copied into distnn's by key."""
    with torch.no_grad():
        for name, p in tm.named_parameters():
            v = rng.uniform(-0.6, 0.6, tuple(p.shape))
            p.copy_(torch.tensor(1.0 + v / 2 if name.split(".")[-2].startswith("norm") and
                                 name.endswith("weight") else v))
    copy_torch_weights(tm, dm, same_keys=True)


class Masks:
    """Random masks for queries of length L over keys of length S, each query keeping key 0 visible."""

    def __init__(self, rng):
        self.rng = rng

    def attn(self, L, S, N, nhead, allow_causal=True):
        """(distnn mask, torch mask, is_causal hint) or Nones."""
        rng = self.rng
        kind = rng.choice(["none", "causal-bool", "causal-float", "bool", "float", "heads"] if allow_causal
                          else ["none", "bool", "float", "heads"])
        if kind == "none" or (kind == "heads" and N is None):
            return None, None, False
        if kind.startswith("causal"):
            m = np.triu(np.ones((L, S), bool), k=1)
            if kind == "causal-float":
                m = np.where(m, -np.inf, 0.0)
            return m, torch.tensor(m), bool(rng.integers(2))
        if kind == "bool":
            m = rng.random((L, S)) < 0.4
            m[:, 0] = False
            return m, torch.tensor(m), False
        shape = (L, S) if kind == "float" else (N * nhead, L, S)
        m = rng.standard_normal(shape)
        m[rng.random(shape) < 0.2] = -np.inf
        m[..., 0] = 0.0
        return m, torch.tensor(m), False

    def padding(self, N, S):
        if self.rng.random() < 0.4:
            return None, None
        m = self.rng.random(S if N is None else (N, S)) < 0.4
        m[..., 0] = False
        return m, torch.tensor(m)


def draw_config(rng):
    nhead, head_dim = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    act = str(rng.choice(["relu", "gelu", "callable"]))
    train = bool(rng.integers(2))
    kw = dict(dim_feedforward=int(rng.integers(1, 9)), dropout=0.0 if train else 0.3,
              layer_norm_eps=float(rng.choice([1e-5, 1e-3])), batch_first=bool(rng.integers(2)),
              norm_first=bool(rng.integers(2)), bias=bool(rng.random() < 0.8))
    acts = ((torch.tanh, DF.tanh) if act == "callable" else (act, act))
    N = None if rng.random() < 0.2 else int(rng.integers(1, 4))
    return nhead * head_dim, nhead, kw, acts, train, N, int(rng.integers(1, 6)), int(rng.integers(1, 6))


def seq(rng, N, L, E, batch_first):
    shape = (L, E) if N is None else (N, L, E) if batch_first else (L, N, E)
    a = rng.standard_normal(shape)
    return distnn.Tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True)


def compare(dm, tm, out_d, out_t, inputs, rng):
    close(out_d.data, out_t.detach().numpy(), "output")
    w = rng.standard_normal(tuple(out_t.shape))
    (out_d * distnn.Tensor(w)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    for name, (d, t) in inputs.items():
        close(d.grad, t.grad.numpy(), f"gradient of {name}")
    dparams = dict(dm.named_parameters())
    assert set(dparams) == {n for n, _ in tm.named_parameters()}
    for name, p in tm.named_parameters():
        close(dparams[name].grad, p.grad.numpy(), f"gradient of {name}")


@pytest.mark.parametrize("kind", ["layer", "decoder"])
@pytest.mark.parametrize("seed", SEEDS)
def test_decoder_matches_torch(kind, seed):
    rng = np.random.default_rng([seed, kind == "decoder"])
    E, nhead, kw, (act_t, act_d), train, N, T, S = draw_config(rng)
    tl = torch.nn.TransformerDecoderLayer(E, nhead, activation=act_t, dtype=torch.float64, **kw)
    dl = nn.TransformerDecoderLayer(E, nhead, activation=act_d, dtype=np.float64, **kw)
    if kind == "decoder":
        L, with_norm = int(rng.integers(1, 4)), bool(rng.integers(2))
        tm = torch.nn.TransformerDecoder(tl, L, torch.nn.LayerNorm(E, dtype=torch.float64) if with_norm else None)
        dm = nn.TransformerDecoder(dl, L, nn.LayerNorm(E, dtype=np.float64) if with_norm else None)
    else:
        tm, dm = tl, dl
    copy_weights(tm, dm, rng)
    tm.train(train)
    dm.train(train)
    bf = kw["batch_first"]
    tgt_d, tgt_t = seq(rng, N, T, E, bf)
    mem_d, mem_t = seq(rng, N, S, E, bf)
    masks = Masks(rng)
    tmask_d, tmask_t, tgt_causal = masks.attn(T, T, N, nhead)
    mmask_d, mmask_t, mem_causal = masks.attn(T, S, N, nhead)
    tkpm_d, tkpm_t = masks.padding(N, T)
    mkpm_d, mkpm_t = masks.padding(N, S)
    kw_d = dict(tgt_mask=tmask_d, memory_mask=mmask_d, tgt_key_padding_mask=tkpm_d, memory_key_padding_mask=mkpm_d,
                tgt_is_causal=tgt_causal, memory_is_causal=mem_causal)
    kw_t = dict(tgt_mask=tmask_t, memory_mask=mmask_t, tgt_key_padding_mask=tkpm_t, memory_key_padding_mask=mkpm_t,
                tgt_is_causal=tgt_causal, memory_is_causal=mem_causal)
    compare(dm, tm, dm(tgt_d, mem_d, **kw_d), tm(tgt_t, mem_t, **kw_t),
            {"tgt": (tgt_d, tgt_t), "memory": (mem_d, mem_t)}, rng)


@pytest.mark.parametrize("seed", SEEDS)
def test_transformer_matches_torch(seed):
    rng = np.random.default_rng([seed, 2])
    E, nhead, kw, (act_t, act_d), train, N, T, S = draw_config(rng)
    n_enc, n_dec = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    tm = torch.nn.Transformer(E, nhead, n_enc, n_dec, activation=act_t, dtype=torch.float64, **kw)
    dm = nn.Transformer(E, nhead, n_enc, n_dec, activation=act_d, dtype=np.float64, **kw)
    copy_weights(tm, dm, rng)
    tm.train(train)
    dm.train(train)
    bf = kw["batch_first"]
    src_d, src_t = seq(rng, N, S, E, bf)
    tgt_d, tgt_t = seq(rng, N, T, E, bf)
    masks = Masks(rng)
    smask_d, smask_t, src_causal = masks.attn(S, S, N, nhead)
    tmask_d, tmask_t, tgt_causal = masks.attn(T, T, N, nhead)
    mmask_d, mmask_t, _ = masks.attn(T, S, N, nhead, allow_causal=False)
    skpm_d, skpm_t = masks.padding(N, S)
    tkpm_d, tkpm_t = masks.padding(N, T)
    # (None: PyTorch's encoder and decoder detect a causal mask themselves; the result is the same)
    src_causal = src_causal if rng.random() < 0.5 else None
    tgt_causal = tgt_causal if rng.random() < 0.5 else None
    out_d = dm(src_d, tgt_d, src_mask=smask_d, tgt_mask=tmask_d, memory_mask=mmask_d, src_key_padding_mask=skpm_d,
               tgt_key_padding_mask=tkpm_d, memory_key_padding_mask=skpm_d, src_is_causal=src_causal,
               tgt_is_causal=tgt_causal)
    out_t = tm(src_t, tgt_t, src_mask=smask_t, tgt_mask=tmask_t, memory_mask=mmask_t, src_key_padding_mask=skpm_t,
               tgt_key_padding_mask=tkpm_t, memory_key_padding_mask=skpm_t, src_is_causal=src_causal,
               tgt_is_causal=tgt_causal)
    compare(dm, tm, out_d, out_t, {"src": (src_d, src_t), "tgt": (tgt_d, tgt_t)}, rng)


def test_causal_hint_without_a_mask_builds_the_causal_mask():
    """distnn's decoder (as its encoder) builds the mask for ``tgt_is_causal=True`` alone; PyTorch wants it."""
    rng = np.random.default_rng(0)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0, dtype=np.float64), 2)
    tgt, mem = distnn.Tensor(rng.standard_normal((5, 2, 4))), distnn.Tensor(rng.standard_normal((3, 2, 4)))
    mask = nn.Transformer.generate_square_subsequent_mask(5, dtype=np.float64)
    np.testing.assert_array_equal(dec(tgt, mem, tgt_is_causal=True).data, dec(tgt, mem, tgt_mask=mask).data)


def test_generate_square_subsequent_mask_is_torchs():
    for sz in (1, 4):
        t = torch.nn.Transformer.generate_square_subsequent_mask(sz, dtype=torch.float32)
        d = nn.Transformer.generate_square_subsequent_mask(sz)
        assert d.data.dtype == np.float32
        np.testing.assert_array_equal(d.data, t.numpy())
    assert nn.Transformer.generate_square_subsequent_mask(3, dtype=np.float64).data.dtype == np.float64


def test_defaults_names_and_initialisation():
    dm = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=64)
    tm = torch.nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=64)
    assert list(dm.state_dict()) == list(tm.state_dict())
    for (name, p), (_, q) in zip(dm.named_parameters(), tm.named_parameters()):
        assert p.shape == tuple(q.shape) and p.data.dtype == np.float32, name
        if p.ndim > 1:  # PyTorch's reset: every matrix Xavier-uniform
            bound = np.sqrt(6.0 / (p.shape[0] + p.shape[1]))
            assert np.abs(p.data).max() <= bound, name
            assert abs(p.data.std() - bound / np.sqrt(3)) < 0.15 * bound, name
        else:  # vectors keep their own init: LayerNorm 1 / 0, attention biases 0, Linear biases uniform
            np.testing.assert_array_equal(p.data == 0, q.detach().numpy() == 0, err_msg=name)
    ref = nn.Transformer()  # PyTorch's defaults
    assert (ref.d_model, ref.nhead, ref.batch_first) == (512, 8, False)
    assert len(ref.encoder.layers) == len(ref.decoder.layers) == 6
    layer = ref.decoder.layers[0]
    assert layer.linear1.weight.shape == (2048, 512) and layer.dropout.p == 0.1 and layer.norm1.eps == 1e-5
    assert layer.norm_first is False and layer.activation is DF.relu


def test_custom_encoder_and_decoder_are_used_and_reset():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 1)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), 3)
    before = enc.layers[0].linear1.weight.data.copy()
    model = nn.Transformer(8, 2, custom_encoder=enc, custom_decoder=dec)
    assert model.encoder is enc and model.decoder is dec and len(model.decoder.layers) == 3
    assert not np.array_equal(before, enc.layers[0].linear1.weight.data)  # (Xavier-reset, as PyTorch's)
    tm = torch.nn.Transformer(8, 2, custom_encoder=torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(8, 2, 16), 1), custom_decoder=torch.nn.TransformerDecoder(
        torch.nn.TransformerDecoderLayer(8, 2, 16), 3))
    assert list(model.state_dict()) == list(tm.state_dict())


def test_refusals_say_what_is_wrong():
    with pytest.raises(ValueError, match="activation must be 'relu' or 'gelu'"):
        nn.TransformerDecoderLayer(4, 2, activation="swish")
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2), 0)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.TransformerDecoderLayer(6, 4)
    model = nn.Transformer(4, 2, 1, 1, 8, batch_first=True)
    x = distnn.Tensor(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="batch number of src and tgt must be equal"):
        model(x, distnn.Tensor(np.zeros((3, 3, 4), np.float32)))
    with pytest.raises(ValueError, match="must be equal to d_model=4"):
        model(x, distnn.Tensor(np.zeros((2, 3, 5), np.float32)))
    with pytest.raises(ValueError, match=r"memory_mask|attn_mask must be"):
        model(x, x, memory_mask=np.zeros((3, 4), bool))


def test_small_decoder_learns():
    """A one-layer Transformer learns to copy its source (teacher forcing, causal target): its loss falls."""
    distnn.manual_seed(0)
    rng = np.random.default_rng(0)
    V, E, L = 5, 16, 4

    class Copy(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V + 1, E)  # (token V: the start token)
            self.model = nn.Transformer(E, 2, 1, 1, 32, dropout=0.0, batch_first=True)
            self.out = nn.Linear(E, V)

        def forward(self, src, tgt_in):
            mask = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1])
            return self.out(self.model(self.embed(src), self.embed(tgt_in), tgt_mask=mask, tgt_is_causal=True))

    net = Copy()
    opt = optim.Adam(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    src = rng.integers(0, V, (32, L))
    tgt_in = np.concatenate([np.full((32, 1), V), src[:, :-1]], axis=1)
    losses = []
    for _ in range(40):
        logits = net(distnn.Tensor(src), distnn.Tensor(tgt_in))
        loss = loss_fn(logits.reshape(-1, V), distnn.Tensor(src.reshape(-1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
