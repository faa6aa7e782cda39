"""The GPU (cupy) against the CPU (numpy) for the layers (nn modules), same weights and inputs, training and
evaluation: outputs, parameter and input gradients, and the state (running statistics) after the step. Host
index data (key padding masks, packed batches, targets) beside device arrays; dropout masks drawn on the host
(the same on both devices). gpu_oracle.py says how the devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend, nn

from gpu_oracle import NO_GPU, on
from test_torch_reference import assert_close

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


# (constructor, input shape, integer inputs below this bound or None for floats)
LAYERS = {
    "Linear": (lambda: nn.Linear(7, 5), (4, 7), None),
    "Conv1d": (lambda: nn.Conv1d(4, 6, 3, padding=2, dilation=2, groups=2), (3, 4, 11), None),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 9, 8), None),
    "Conv2d-depthwise": (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), (2, 4, 6, 6), None),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
                        (2, 4, 5, 6), None),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(3, 4, 3, stride=2, dilation=2), (2, 3, 7), None),
    "MaxPool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 8), None),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), (2, 3, 8, 6), None),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5), None),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d((3, 2)), (2, 3, 7, 5), None),
    "MaxPool1d": (lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 9), None),
    "AvgPool1d": (lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 9), None),
    "AdaptiveAvgPool1d": (lambda: nn.AdaptiveAvgPool1d(4), (2, 3, 9), None),
    "AdaptiveMaxPool1d": (lambda: nn.AdaptiveMaxPool1d(4), (2, 3, 9), None),
    "MaxPool3d": (lambda: nn.MaxPool3d(3, stride=(1, 2, 2), padding=1, dilation=(1, 1, 2)), (2, 3, 5, 6, 7), None),
    "AvgPool3d": (lambda: nn.AvgPool3d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                  (2, 3, 5, 6, 7), None),
    "AdaptiveAvgPool3d": (lambda: nn.AdaptiveAvgPool3d((2, 3, 4)), (2, 3, 5, 6, 7), None),
    "AdaptiveMaxPool3d": (lambda: nn.AdaptiveMaxPool3d((2, 3, 4)), (2, 3, 5, 6, 7), None),
    # (the window starts' samples drawn on the host, as dropout's masks; the gather and scatter on the device)
    "FractionalMaxPool2d": (lambda: nn.FractionalMaxPool2d((3, 2), output_ratio=0.6), (2, 3, 9, 8), None),
    "FractionalMaxPool3d": (lambda: nn.FractionalMaxPool3d(2, output_size=(2, 3, 4), return_indices=True),
                            (2, 3, 5, 6, 7), None),
    "AdaptiveLogSoftmaxWithLoss": (lambda: _AdaptiveSoftmax(), (6, 8), None),
    "LPPool1d": (lambda: nn.LPPool1d(2, 3, stride=2, ceil_mode=True), (2, 3, 9), None),
    "LPPool2d": (lambda: nn.LPPool2d(4, (2, 3)), (2, 3, 7, 8), None),
    "LPPool3d-inf": (lambda: nn.LPPool3d(float("inf"), 2), (2, 3, 4, 5, 6), None),
    "MaxUnpool1d": (lambda: _PoolUnpool(nn.MaxPool1d(3, 2, 1, return_indices=True), nn.MaxUnpool1d(3, 2, 1)),
                    (2, 3, 9), None),
    "MaxUnpool3d": (lambda: _PoolUnpool(nn.MaxPool3d(2, return_indices=True), nn.MaxUnpool3d(2)), (2, 3, 4, 5, 6),
                    None),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(6), (8, 6), None),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), (4, 3, 5, 5), None),
    "LayerNorm": (lambda: nn.LayerNorm((4, 5)), (3, 4, 5), None),
    "GroupNorm": (lambda: nn.GroupNorm(2, 6), (3, 6, 4, 5), None),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True), (2, 3, 4, 5), None),
    "Dropout": (lambda: nn.Dropout(0.3), (16, 10), None),
    "Dropout1d": (lambda: nn.Dropout1d(0.3), (4, 6, 5), None),
    "Dropout2d": (lambda: nn.Dropout2d(0.3), (4, 6, 3, 2), None),
    "Dropout3d": (lambda: nn.Dropout3d(0.3), (3, 4, 2, 3, 2), None),
    "AlphaDropout": (lambda: nn.AlphaDropout(0.3), (16, 10), None),
    "FeatureAlphaDropout": (lambda: nn.FeatureAlphaDropout(0.3), (4, 6, 5), None),
    "RReLU": (lambda: nn.RReLU(0.1, 0.4), (4, 9), None),  # (training: a slope per element, drawn on the host)
    "GELU-tanh": (lambda: nn.GELU(approximate="tanh"), (4, 9), None),
    "GELU": (lambda: nn.GELU(), (4, 9), None),
    "ELU": (lambda: nn.ELU(0.7), (4, 9), None),
    "Softplus": (lambda: nn.Softplus(beta=2.0, threshold=5.0), (4, 9), None),
    "PReLU": (lambda: nn.PReLU(3), (4, 3, 5), None),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=-1), (4, 9), None),
    "Maxout": (lambda: nn.Maxout(3), (5, 6), None),
    "Embedding": (lambda: nn.Embedding(11, 6, padding_idx=0), (4, 7), 11),
    "RNN": (lambda: nn.RNN(5, 6, num_layers=2, batch_first=True), (3, 4, 5), None),
    "LSTM": (lambda: nn.LSTM(5, 6, batch_first=True, bidirectional=True), (3, 4, 5), None),
    "GRU": (lambda: nn.GRU(5, 6, batch_first=True), (3, 4, 5), None),
    "LSTM-proj": (lambda: nn.LSTM(5, 6, num_layers=2, proj_size=3, bidirectional=True), (4, 3, 5), None),
    "RMSNorm": (lambda: nn.RMSNorm((4, 5)), (3, 4, 5), None),
    "Conv3d": (lambda: nn.Conv3d(4, 6, (2, 3, 3), stride=(1, 2, 1), padding=1, groups=2), (2, 4, 3, 6, 5), None),
    "BatchNorm3d": (lambda: nn.BatchNorm3d(3), (4, 3, 2, 3, 3), None),
    "ConvTranspose3d": (lambda: nn.ConvTranspose3d(4, 6, (2, 3, 3), stride=(1, 2, 2), padding=1,
                                                   output_padding=(0, 1, 1), groups=2, dilation=(2, 1, 1)),
                        (2, 4, 3, 4, 5), None),
    "InstanceNorm3d": (lambda: nn.InstanceNorm3d(3, affine=True, track_running_stats=True), (2, 3, 2, 3, 4), None),
    "Upsample-bilinear": (lambda: nn.Upsample(scale_factor=1.7, mode="bilinear"), (2, 3, 5, 6), None),
    "Upsample-nearest": (lambda: nn.Upsample(size=(7, 4, 9)), (2, 3, 3, 5, 4), None),
    "Upsample-linear": (lambda: nn.Upsample(size=11, mode="linear", align_corners=True), (2, 3, 5), None),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(3, alpha=0.5, beta=0.7, k=1.5), (2, 5, 4, 3), None),
    "CrossMapLRN2d": (lambda: nn.CrossMapLRN2d(3, alpha=0.5, beta=0.7, k=1.5), (2, 5, 4, 3), None),
    "Upsample-bicubic": (lambda: nn.Upsample(size=(8, 4), mode="bicubic", align_corners=True), (2, 3, 5, 6), None),
    "Unfold": (lambda: nn.Unfold((2, 3), dilation=2, padding=1, stride=(2, 1)), (2, 3, 7, 6), None),
    "Fold": (lambda: nn.Fold((5, 6), 2, padding=1, stride=2), (2, 12, 12), None),
    "RNN-sigmoid": (lambda: nn.RNN(5, 6, num_layers=2, nonlinearity="sigmoid", dropout=0.3, bidirectional=True),
                    (4, 3, 5), None),  # (time-major: the inter-layer dropout's masks are (T, N, H))
    "RNNCell-sigmoid": (lambda: nn.RNNCell(5, 6, nonlinearity="sigmoid"), (3, 5), None),
    "LogSigmoid": (lambda: nn.LogSigmoid(), (4, 9), None),
    "MultiheadAttention": (lambda: _SelfAttention(), (3, 5, 8), None),
    "TransformerEncoder": (lambda: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, batch_first=True), num_layers=2),
        (3, 5, 8), None),
    "TransformerDecoder": (lambda: _Decoder(), (3, 5, 8), None),
    "Transformer": (lambda: _Seq2Seq(), (3, 5, 8), None),
    "LSTM-packed": (lambda: _Packed(nn.LSTM(5, 6, num_layers=2, dropout=0.3, bidirectional=True)), (4, 3, 5), None),
    "GRU-packed": (lambda: _Packed(nn.GRU(5, 6, batch_first=True)), (4, 3, 5), None),
    "BasicBlock": (lambda: nn.BasicBlock(3, 4, stride=2), (2, 3, 8, 8), None),
    "MLP+loss": (lambda: _MLPLoss(), (6, 8), None),
    "BatchNorm1d-valid_rows-device-mask": (lambda: _ValidRowsBatchNorm(), (6, 4), None),
    "ReflectionPad2d": (lambda: nn.ReflectionPad2d((1, 2, 3, 0)), (2, 3, 5, 6), None),
    "ReplicationPad3d": (lambda: nn.ReplicationPad3d((1, 0, 2, 1, 0, 2)), (2, 3, 3, 4, 5), None),
    "CircularPad1d": (lambda: nn.CircularPad1d((3, -1)), (2, 3, 5), None),
    "ConstantPad3d": (lambda: nn.ConstantPad3d((1, -1, 0, 2, 1, 1), 0.5), (3, 3, 4, 5), None),
    "ZeroPad2d": (lambda: nn.ZeroPad2d(2), (2, 3, 4, 5), None),
    "PixelShuffle": (lambda: nn.PixelShuffle(2), (2, 8, 3, 4), None),
    "PixelUnshuffle": (lambda: nn.PixelUnshuffle(2), (2, 3, 4, 6), None),
    "ChannelShuffle": (lambda: nn.ChannelShuffle(2), (2, 6, 3, 4), None),
    "Softmax2d": (lambda: nn.Softmax2d(), (2, 5, 3, 4), None),
    # parametrizations (nn.utils.parametrizations) and the hook-based norms: their buffers move with the model
    "orthogonal-matrix_exp": (lambda: nn.utils.parametrizations.orthogonal(nn.Linear(5, 7)), (3, 5), None),
    "orthogonal-cayley": (lambda: nn.utils.parametrizations.orthogonal(nn.Linear(7, 5), orthogonal_map="cayley"),
                          (3, 7), None),
    "orthogonal-householder": (lambda: nn.utils.parametrizations.orthogonal(
        nn.Linear(7, 5), orthogonal_map="householder", use_trivialization=False), (3, 7), None),
    "weight_norm": (lambda: nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 4, 3), dim=1), (2, 3, 6, 6), None),
    "spectral_norm": (lambda: nn.utils.parametrizations.spectral_norm(nn.Linear(6, 5), n_power_iterations=3),
                      (3, 6), None),
    "spectral_norm-hooked": (lambda: nn.utils.spectral_norm(nn.Conv2d(3, 4, 3)), (2, 3, 6, 6), None),
    # pruning (nn.utils.prune): the mask buffers move with the model, the pre-hook recomputes the weight there
    "pruned-Conv2d": (lambda: nn.utils.prune.l1_unstructured(nn.utils.prune.random_structured(
        nn.Conv2d(3, 4, 3), "weight", amount=1, dim=0), "bias", amount=2), (2, 3, 6, 6), None),
}


class _ValidRowsBatchNorm(nn.Module):
    """Batch norm inside ``valid_rows`` with a mask on the input's device (valid_rows took it through np.asarray,
    which refuses a cupy array): statistics over rows 0, 2, 3 and 5 only."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        from distnn.distributed.sync_batchnorm import valid_rows

        mask = on(backend.device_of(x.data), np.array([True, False, True, True, False, True]))
        with valid_rows(mask):
            return self.bn(x)


class _SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x)[0]


_PAD = np.array([[False] * 4 + [True], [False] * 5, [False] * 2 + [True] * 3])  # (N, S) host key padding masks


class _Decoder(nn.Module):
    """A causal decoder over x, its memory x / 2 with a host key padding mask."""

    def __init__(self):
        super().__init__()
        self.dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.1, batch_first=True), 2,
                                         nn.LayerNorm(8))

    def forward(self, x):
        return self.dec(x, x * 0.5, tgt_is_causal=True, memory_key_padding_mask=_PAD)


class _Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Transformer(8, 2, 1, 2, 16, dropout=0.1, batch_first=True, norm_first=True)

    def forward(self, x):
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(4)
        return self.model(x, x[:, 1:], tgt_mask=tgt_mask, src_key_padding_mask=_PAD,
                          memory_key_padding_mask=_PAD)


class _Packed(nn.Module):
    """A recurrent layer on a packed batch of unsorted lengths (host index data beside device arrays)."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        from distnn.nn.utils import rnn as rnn_utils

        lengths = [2, 3, 1, 3][: x.shape[0 if self.rnn.batch_first else 1]]
        out, _ = self.rnn(rnn_utils.pack_padded_sequence(x, lengths, batch_first=self.rnn.batch_first,
                                                         enforce_sorted=False))
        return rnn_utils.pad_packed_sequence(out, batch_first=self.rnn.batch_first, total_length=x.shape[1 if
                                             self.rnn.batch_first else 0])[0]


class _AdaptiveSoftmax(nn.Module):
    """AdaptiveLogSoftmaxWithLoss's output, loss and log_prob in one vector (host targets in every cluster)."""

    def __init__(self):
        super().__init__()
        self.asm = nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 9, 15], div_value=2.0, head_bias=True)

    def forward(self, x):
        out, loss = self.asm(x, np.array([0, 5, 19, 12, 3, 10]))
        return dn.cat([out, loss.reshape(1), self.asm.log_prob(x).reshape(-1)])


class _PoolUnpool(nn.Module):
    """A max pool's output put back at its indices (the unpooling's scatter and gather on the device)."""

    def __init__(self, pool, unpool):
        super().__init__()
        self.pool, self.unpool = pool, unpool

    def forward(self, x):
        out, idx = self.pool(x)
        return self.unpool(out, idx, output_size=x.shape[2:])


class _MLPLoss(nn.Module):
    """A loss as the model's output: cross-entropy with host labels on GPU logits (as the trainer passes them)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return nn.CrossEntropyLoss(label_smoothing=0.1)(self.net(x), np.array([0, 2, 1, 1, 0, 2])).reshape(1)


def _run_layer(name, device, train):
    make, shape, high = LAYERS[name]
    dn.manual_seed(0)
    model = make()
    model.train(train)
    if device != "cpu":
        model.to(device)
    rng = np.random.default_rng(1)
    x = rng.integers(0, high, shape) if high else rng.standard_normal(shape).astype(np.float32)
    xt = dn.Tensor(on(device, x), requires_grad=high is None)
    dn.manual_seed(2)  # the same dropout masks on both devices (drawn on the host)
    out = model(xt)
    out = out[0] if isinstance(out, tuple) else out  # recurrent layers: (output, hidden state)
    u = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
    (out * dn.Tensor(on(device, u))).sum().backward()
    grads = {n: backend.to_numpy(p.grad) for n, p in model.named_parameters() if p.grad is not None}
    if high is None:
        grads["input"] = backend.to_numpy(xt.grad)
    return backend.to_numpy(out.data), grads, {k: backend.to_numpy(v) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_on_the_gpu_matches_the_cpu(name, train):
    out_c, grads_c, state_c = _run_layer(name, "cpu", train)
    out_g, grads_g, state_g = _run_layer(name, "cuda", train)
    assert_close(out_g, out_c, 1e-4, "forward")
    assert grads_g.keys() == grads_c.keys()
    for k in grads_c:
        assert_close(grads_g[k], grads_c[k], 1e-4, f"gradient of {k}")
    for k in state_c:  # running statistics updated alike
        assert_close(state_g[k], state_c[k], 1e-4, f"state {k}")
