"""Model zoo: each model loads the equivalent PyTorch model's state_dict and reproduces its outputs
(and gradients); build_model registry; the graph is freed after backward; clear errors."""
import gc
import weakref

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import models

from test_nn_rnn import close
from torch_twins import copy_torch_weights


def compare(torch, tm, dm, x, rng, train=True, grads=True):
    """Outputs (train and eval mode), and grads of every parameter for a random weighting of the output."""
    tm.train(train)
    dm.train(train)
    xt = torch.tensor(x)
    out_t, out_d = tm(xt), dm(distnn.Tensor(x) if x.dtype.kind == "f" else x)
    close(out_d.numpy(), out_t.detach().numpy(), what=f"output ({'train' if train else 'eval'})")
    if grads:
        w = rng.standard_normal(out_t.shape).astype(np.float32)
        (out_t * torch.tensor(w)).sum().backward()
        (out_d * distnn.Tensor(w)).sum().backward()
        dparams = dict(dm.named_parameters())
        for name, p in tm.named_parameters():
            # (atol: a bias right before a BatchNorm has a gradient of exactly 0, which comes out as float32
            # noise of a sum over the batch in both frameworks; its size depends on the random weights)
            close(dparams[name].grad, p.grad.numpy(), rtol=2e-4, atol=5e-6, what=f"grad of {name}")
    for name, b in tm.named_buffers():  # BatchNorm running statistics after the step
        close(dict(dm.named_buffers())[name].numpy(), b.numpy(), what=f"buffer {name}")


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_mlp_matches_torch_sequential(torch, rng, norm):
    dm = models.MLP([12, 16, 8, 3], activation="tanh", norm=norm)
    T = torch.nn
    layers = []
    for a, b in [(12, 16), (16, 8)]:
        layers.append(T.Linear(a, b))
        if norm:
            layers.append(T.BatchNorm1d(b) if norm == "batch" else T.LayerNorm(b))
        layers.append(T.Tanh())

    class FlatSequential(T.Sequential):  # same parameter names, flattens like MLP does
        def forward(self, x):
            return super().forward(x.flatten(1))

    tm = FlatSequential(*layers, T.Linear(8, 3))
    copy_torch_weights(tm, dm, same_keys=True)
    x = rng.standard_normal((5, 3, 4)).astype(np.float32)  # flattened to 12 features
    compare(torch, tm, dm, x, rng, train=True)
    compare(torch, tm, dm, x, rng, train=False, grads=False)


def _torch_lenet(torch, k, p1, p2, fc_in, in_ch=1, classes=10):
    T = torch.nn

    class TLeNet(T.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = T.Conv2d(in_ch, 6, k, padding=p1)
            self.pool = T.MaxPool2d(2)
            self.conv2 = T.Conv2d(6, 16, k, padding=p2)
            self.fc1, self.fc2, self.fc3 = T.Linear(fc_in, 120), T.Linear(120, 84), T.Linear(84, classes)

        def forward(self, x):
            r = torch.relu
            x = self.pool(r(self.conv1(x)))
            x = self.pool(r(self.conv2(x))).flatten(1)
            return self.fc3(r(self.fc2(r(self.fc1(x)))))

    return TLeNet()


@pytest.mark.parametrize("size", [8, 28])
def test_lenet_matches_torch(torch, rng, size):
    dm = models.LeNet(in_channels=1, num_classes=10, image_size=size)
    tm = _torch_lenet(torch, *((5, 2, 0, 400) if size == 28 else (3, 1, 1, 64)))
    copy_torch_weights(tm, dm, same_keys=True)
    compare(torch, tm, dm, rng.standard_normal((2, 1, size, size)).astype(np.float32), rng)


def _torch_resnet(torch, layers, widths, in_ch, classes):
    T = torch.nn

    class Block(T.Module):
        def __init__(self, inp, planes, stride):
            super().__init__()
            self.conv1 = T.Conv2d(inp, planes, 3, stride, 1, bias=False)
            self.bn1 = T.BatchNorm2d(planes)
            self.conv2 = T.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = T.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inp != planes:
                self.downsample = T.Sequential(T.Conv2d(inp, planes, 1, stride, bias=False), T.BatchNorm2d(planes))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + idt)

    class Net(T.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = T.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False)
            self.bn1 = T.BatchNorm2d(widths[0])
            inp = widths[0]
            for i, (n, w) in enumerate(zip(layers, widths)):
                blocks = []
                for j in range(n):
                    blocks.append(Block(inp, w, 2 if i > 0 and j == 0 else 1))
                    inp = w
                setattr(self, f"layer{i + 1}", T.Sequential(*blocks))
            self.fc = T.Linear(inp, classes)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            for i in range(len(layers)):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.fc(x.mean(dim=(2, 3)))

    return Net()


def test_resnet_matches_torch(torch, rng):
    dm = models.ResNet(layers=(1, 2), widths=(4, 8), in_channels=3, num_classes=5)
    tm = _torch_resnet(torch, (1, 2), (4, 8), 3, 5)
    copy_torch_weights(tm, dm, same_keys=True)
    assert "layer2.0.downsample.1.running_var" in dm.state_dict()
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    compare(torch, tm, dm, x, rng, train=True)
    compare(torch, tm, dm, x, rng, train=False, grads=False)


@pytest.mark.parametrize("tokens,bidirectional", [(True, False), (False, True)])
def test_lstm_classifier_matches_torch(torch, rng, tokens, bidirectional):
    T = torch.nn
    D = 2 if bidirectional else 1

    class TLSTMClf(T.Module):
        def __init__(self):
            super().__init__()
            if tokens:
                self.embedding = T.Embedding(7, 5)
            self.lstm = T.LSTM(5, 6, 2, batch_first=True, bidirectional=bidirectional)
            self.fc = T.Linear(6 * D, 3)

        def forward(self, x):
            h = self.embedding(x) if tokens else x
            _, (hn, _) = self.lstm(h)
            return self.fc(hn[-D:].permute(1, 0, 2).reshape(x.shape[0], -1))

    kw = dict(vocab_size=7, embedding_dim=5) if tokens else dict(input_size=5)
    dm = models.LSTMClassifier(hidden_size=6, num_layers=2, num_classes=3, bidirectional=bidirectional, **kw)
    tm = TLSTMClf()
    copy_torch_weights(tm, dm, same_keys=True)
    x = rng.integers(0, 7, (3, 6)) if tokens else rng.standard_normal((3, 6, 5)).astype(np.float32)
    compare(torch, tm, dm, x, rng)


def _torch_transformer_stack(torch, d, nhead, ff, layers, norm_first, act):
    T = torch.nn
    layer = T.TransformerEncoderLayer(d, nhead, ff, 0.0, act, batch_first=True, norm_first=norm_first)
    return T.TransformerEncoder(layer, layers, norm=T.LayerNorm(d) if norm_first else None,
                                enable_nested_tensor=False)


@pytest.mark.parametrize("tokens", [True, False])
def test_transformer_classifier_matches_torch(torch, rng, tokens):
    T = torch.nn

    class TClf(T.Module):
        def __init__(self):
            super().__init__()
            if tokens:
                self.embedding = T.Embedding(7, 8, padding_idx=0)
            else:
                self.input_proj = T.Linear(5, 8)
            self.pos_embedding = T.Parameter(torch.zeros(6, 8))
            self.encoder = _torch_transformer_stack(torch, 8, 2, 16, 2, True, "gelu")
            self.fc = T.Linear(8, 3)

        def forward(self, x):
            h = self.embedding(x) if tokens else self.input_proj(x)
            h = h + self.pos_embedding[: h.shape[1]]
            if not tokens:
                return self.fc(self.encoder(h).mean(1))
            pad = x == 0
            h = self.encoder(h, src_key_padding_mask=pad)
            keep = (~pad).float()[:, :, None]
            return self.fc((h * keep).sum(1) / keep.sum(1).clamp(min=1))

    kw = dict(vocab_size=7, padding_idx=0) if tokens else dict(input_size=5)
    dm = models.TransformerClassifier(d_model=8, nhead=2, num_layers=2, dim_feedforward=16, dropout=0.0,
                                      num_classes=3, max_len=6, **kw)
    tm = TClf()
    copy_torch_weights(tm, dm, same_keys=True)
    if tokens:
        x = rng.integers(1, 7, (3, 5))
        x[0, 3:] = 0  # padding
    else:
        x = rng.standard_normal((3, 5, 5)).astype(np.float32)
    compare(torch, tm, dm, x, rng)


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_charlm_matches_torch(torch, rng, arch):
    T = torch.nn

    class TLM(T.Module):
        def __init__(self):
            super().__init__()
            self.embedding = T.Embedding(9, 8)
            if arch == "transformer":
                self.pos_embedding = T.Parameter(torch.randn(6, 8) * 0.02)
                self.encoder = _torch_transformer_stack(torch, 8, 2, 16, 2, True, "gelu")
            else:
                self.lstm = T.LSTM(8, 10, 2, batch_first=True)
            self.head = T.Linear(8 if arch == "transformer" else 10, 9)

        def forward(self, ids):
            h = self.embedding(ids)
            if arch == "lstm":
                return self.head(self.lstm(h)[0])
            L = ids.shape[1]
            mask = T.Transformer.generate_square_subsequent_mask(L)
            return self.head(self.encoder(h + self.pos_embedding[:L], mask=mask, is_causal=True))

    # (each arch's own arguments: one of the other arch is refused)
    own = dict(nhead=2, dim_feedforward=16, max_len=6) if arch == "transformer" else dict(hidden_size=10)
    dm = models.CharLM(vocab_size=9, arch=arch, d_model=8, num_layers=2, **own)
    tm = TLM()
    copy_torch_weights(tm, dm, same_keys=True)
    compare(torch, tm, dm, rng.integers(0, 9, (2, 6)), rng)


def test_charlm_is_causal_and_generates(rng):
    m = models.CharLM(vocab_size=5, d_model=8, nhead=2, num_layers=1, dim_feedforward=16, max_len=8)
    ids = rng.integers(0, 5, (1, 6))
    a = m(ids).numpy()
    ids2 = ids.copy()
    ids2[0, 4:] = (ids2[0, 4:] + 1) % 5  # changing the future must not change earlier logits
    b = m(ids2).numpy()
    np.testing.assert_allclose(a[0, :4], b[0, :4], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[0, 4:], b[0, 4:])
    out = m.generate(ids[:, :3], 5, generator=np.random.default_rng(0))
    assert out.shape == (1, 8) and out.min() >= 0 and out.max() < 5
    np.testing.assert_array_equal(out, m.generate(ids[:, :3], 5, generator=np.random.default_rng(0)))


def test_charlm_learns_a_repeating_text():
    from distnn import optim

    distnn.manual_seed(0)
    text = np.array([0, 1, 2, 3, 1, 2] * 6)
    x = np.stack([text[i : i + 8] for i in range(0, 24, 2)])
    y = np.stack([text[i + 1 : i + 9] for i in range(0, 24, 2)])
    m = models.CharLM(vocab_size=4, d_model=16, nhead=2, num_layers=1, dim_feedforward=32, max_len=8)
    opt = optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(m(x).reshape(-1, 4), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::8]


def test_build_model_registry():
    m = models.build_model("LeNet", num_classes=10, input_shape=[1, 8, 8])
    assert isinstance(m, models.LeNet) and m(distnn.Tensor(np.zeros((2, 1, 8, 8), np.float32))).shape == (2, 10)
    m = models.build_model("mlp", hidden_sizes=[32], num_classes=10, input_shape=[64])
    assert [p.shape for p in m.parameters()][0] == (32, 64)
    assert models.build_model("lstm", input_shape=[1, 8, 8], num_classes=10).lstm.input_size == 8
    assert models.build_model("transformer", input_shape=[12], vocab_size=5, num_classes=2).max_len == 12
    assert models.build_model("charlm", num_classes=30, input_shape=[16]).vocab_size == 30
    assert models.build_model("resnet", input_shape=[1, 8, 8], num_classes=3).conv1.weight.shape[1] == 1
    with pytest.raises(ValueError, match="unknown model 'vgg'.*lenet"):
        models.build_model("vgg")
    with pytest.raises(TypeError, match="LeNet takes"):
        models.build_model("lenet", num_classes=10, widht=3)
    with pytest.raises(ValueError, match="vocab_size"):
        models.build_model("lstm", input_shape=[12], num_classes=2)


def test_mlp_refuses_sizes_beside_hidden_sizes():
    # (hidden_sizes was ignored silently: MLP([4, 3], hidden_sizes=[64]) built 4 -> 3)
    for build in (lambda: models.MLP([4, 3], hidden_sizes=[64]),
                  lambda: models.MLP([4, 128, 3], hidden_sizes=(128,)),  # (the default's value, given)
                  lambda: models.build_model("mlp", sizes=[4, 3], hidden_sizes=[64], num_classes=3)):
        with pytest.raises(ValueError, match="MLP: sizes and hidden_sizes are both given"):
            build()
    assert models.MLP([4, 3]).sizes == [4, 3]  # (hidden_sizes' default is no conflict)
    assert models.MLP(num_classes=3, input_shape=[4]).sizes == [4, 128, 3]


def test_zoo_errors_name_the_model_and_shapes():
    m = models.LeNet(image_size=28)
    with pytest.raises(ValueError, match=r"LeNet.*expected input \(N, 1, 28, 28\), got \(2, 1, 8, 8\)"):
        m(distnn.Tensor(np.zeros((2, 1, 8, 8), np.float32)))
    clf = models.LSTMClassifier(input_size=5, num_classes=2)
    with pytest.raises(ValueError, match=r"LSTMClassifier.*expected features \(N, T, 5\), got \(2, 3, 4\)"):
        clf(distnn.Tensor(np.zeros((2, 3, 4), np.float32)))


def _saved_arrays(node):
    """Arrays a graph node keeps for its backward (directly or in tuples/lists)."""
    out = []
    for v in vars(node).values():
        for a in (v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(a, np.ndarray):
                out.append(a)
    return out


def test_resnet_step_frees_the_graph():
    """After backward no intermediate activation survives: every array that the graph's nodes
    saved for backward (other than parameters, buffers and the input) is freed while the loss
    tensor is still held, and no node keeps state. Before backward they are alive, so this can fail."""
    from distnn.autograd.function import Function

    distnn.manual_seed(0)
    model = models.ResNet(layers=(1, 1), widths=(4, 8), in_channels=1, num_classes=3)
    x = distnn.Tensor(np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32))
    y = np.array([0, 1, 2, 0])
    loss = F.cross_entropy(model(x), y)

    owned = {id(t.data) for t in list(model.parameters()) + list(model.buffers())} | {id(x.data), id(y)}
    refs, nodes, seen, stack = [], [], set(), [loss.grad_fn]
    while stack:  # walk the graph, weakly referencing every saved intermediate array
        node = stack.pop()
        if node is None or id(node) in seen or not isinstance(node, Function):
            continue
        seen.add(id(node))
        nodes.append(weakref.ref(node))
        for a in _saved_arrays(node):
            if id(a) not in owned and id(a.base) not in owned:
                refs.append(weakref.ref(a))
        stack.extend(p for p in (node.parents or ()) if isinstance(p, Function))
    gc.collect()
    assert len(seen) > 20 and sum(r() is not None for r in refs) > 20

    loss.backward()
    gc.collect()
    alive = [r() for r in refs if r() is not None]
    assert not alive, f"{len(alive)} saved arrays still alive after backward: {[a.shape for a in alive]}"
    # (a freed node keeps its edges, PyTorch's next_functions, and its name: nothing that holds an activation)
    holding = [n() for n in nodes if n() is not None and set(vars(n())) - {"freed_edges", "torch_name"}]
    assert not holding, f"graph nodes still holding state: {holding[:5]}"
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("arch", ["LSTMClassifier", "TransformerClassifier"])
def test_sequence_classifiers_read_integer_features_as_floats(arch, rng):
    # token ids given as 1-feature inputs (no vocab_size): the LSTM crashed in numpy (int64 gates) and the
    # transformer computed in float64 through its input projection
    kw = dict(d_model=8, nhead=2, num_layers=1, dim_feedforward=16, max_len=6) if arch[0] == "T" else {}
    dm = getattr(models, arch)(input_size=1, num_classes=3, dropout=0.0, **kw)
    ids = rng.integers(0, 10, (4, 6))
    out = dm(distnn.Tensor(ids))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), dm(distnn.Tensor(ids.astype(np.float32))).numpy())
    out.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in dm.parameters())
