"""Seeded fuzz of distnn's layers and functional NN ops against PyTorch (the oracle) over their hyper-parameters.

The existing oracle tests (test_nn_layers, test_nn_rnn, test_nn_attention, ...) check chosen configurations.
Here each op draws random valid hyper-parameters and shapes from a seeded generator, builds the layer in
both libraries with the same (random, float64) weights and buffers, runs forward and backward with the
same input and upstream gradient, and compares outputs, input gradients, parameter gradients and
buffers (running statistics, a renormalized embedding table) after every step, to tight tolerances.
A configuration PyTorch accepts and distnn refuses fails too (distnn must take what PyTorch takes);
one PyTorch refuses is skipped. Each failure names the op, the case's seed and its configuration.

Covered (``distnn.nn``): Linear, Identity, Flatten, Unflatten, Conv1d, Conv2d, MaxPool2d, MaxUnpool2d,
AvgPool2d, AdaptiveAvgPool2d, BatchNorm1d, BatchNorm2d, LayerNorm, Embedding (and from_pretrained), RNN,
LSTM, GRU, RNNCell, LSTMCell, GRUCell, MultiheadAttention, TransformerEncoderLayer, TransformerEncoder,
ReLU, LeakyReLU, ELU, GELU, Tanh, Sigmoid, LogSigmoid, Softplus, Softmax, LogSoftmax, PReLU, Maxout,
Dropout, and the losses CrossEntropyLoss, NLLLoss, BCELoss, BCEWithLogitsLoss, MSELoss, L1Loss,
HuberLoss, MultiMarginLoss, GaussianNLLLoss, SoftMarginLoss, HingeEmbeddingLoss. Functional
(``distnn.functional``): conv1d, conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d, max_unpool2d,
batch_norm, layer_norm, embedding, one_hot, normalize, linear, dropout, pad, the activations and the
losses above, binary_hinge_loss (against its PyTorch composition). Not covered: BasicBlock (no PyTorch
counterpart; a composite of covered layers).

Left out, each at its generator with the reason: configurations where PyTorch itself is wrong or
inconsistent (a dilated max-pool window of padding only; circular padding wrapping more than once around
the cells a crop keeps; reflect padding to an empty result; batch_norm with a non-contiguous weight;
multi_margin_loss's mean over no samples; is_causal with add_bias_kv/add_zero_attn; BCELoss's target
gradient at p = 0 or 1, which PyTorch takes unclamped) and one deliberate refusal (max_unpool2d to an
empty plane with indices that cannot fit it).

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4: a few seconds in all),
``DISTNN_LAYER_FUZZ_START`` the first seed.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn import optim  # noqa: E402
from torch_twins import copy_distnn_weights, copy_torch_weights  # noqa: E402

TF = torch.nn.functional
CASES = int(os.environ.get("DISTNN_LAYER_FUZZ_CASES", "4"))
START = int(os.environ.get("DISTNN_LAYER_FUZZ_START", "0"))
RTOL = 1e-9  # float64 on both sides: only the order of the arithmetic differs
ATOL = 1e-11  # times the compared tensor's largest magnitude (at least 1)


# ---------------------------------------------------------------------------- values passed to both libraries
class G:
    """A float64 input that requires a gradient (compared after backward). With ``strided``, the leaf is
    an array twice as wide in the last dimension and the op gets every other column of it: a
    non-contiguous view, as a transposed or sliced activation would be."""

    def __init__(self, a, may_stride=True):
        self.a = np.asarray(a, dtype=np.float64)
        self.strided, self.may_stride = False, may_stride

    def leaf(self):
        if not self.strided:
            return self.a.copy()
        wide = np.zeros(self.a.shape[:-1] + (2 * self.a.shape[-1],))
        wide[..., ::2] = self.a
        wide[..., 1::2] = np.nan  # never read
        return wide


class C:
    """A constant tensor (no gradient): integer labels and indices, masks, targets."""

    def __init__(self, a):
        self.a = np.asarray(a)


def _to_d(v):
    if isinstance(v, G):
        return distnn.tensor(v.leaf(), requires_grad=True)
    if isinstance(v, C):
        return distnn.tensor(v.a.copy())
    if isinstance(v, (tuple, list)):
        return type(v)(_to_d(u) for u in v)
    return v


def _to_t(v):
    if isinstance(v, G):
        return torch.tensor(v.leaf(), requires_grad=True)
    if isinstance(v, C):
        return torch.from_numpy(v.a.copy())
    if isinstance(v, (tuple, list)):
        return type(v)(_to_t(u) for u in v)
    return v


def _leaves(args, dargs, targs, path="arg"):
    """(name, distnn tensor, torch tensor) for every G among the arguments."""
    out = []
    for i, (v, d, t) in enumerate(zip(args, dargs, targs)):
        if isinstance(v, G):
            out.append((f"{path}{i}", d, t))
        elif isinstance(v, (tuple, list)):
            out += _leaves(v, d, t, f"{path}{i}.")
    return out


def _views(args, leaves):
    """The arguments as the op takes them: a strided G's every other column of its leaf."""
    out = []
    for v, x in zip(args, leaves):
        if isinstance(v, G) and v.strided:
            x = x[..., ::2]
        elif isinstance(v, (tuple, list)):
            x = type(v)(_views(v, x))
        out.append(x)
    return out


def _strided(c, args):
    """Now and then, a G argument of at least one dimension passed as a non-contiguous view."""
    for v in args:
        if isinstance(v, G) and v.a.ndim and v.may_stride and c.coin(0.25):
            v.strided = True
        elif isinstance(v, (tuple, list)):
            _strided(c, v)


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [y for o in out for y in _flat(o)]
    return [out]


def _np(x):
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, distnn.Tensor):
        return np.asarray(x.data)
    return np.asarray(x)


class Case:
    """One drawn configuration: ``cfg`` (printed on failure) and the generators that drew it."""

    def __init__(self, op, seed):
        self.op, self.seed = op, seed
        self.rng = np.random.default_rng([seed, sum(map(ord, op))])
        self.cfg = {}
        self.strided_note = ""

    # ---- drawing
    def int(self, lo, hi):
        """An integer in [lo, hi]."""
        return int(self.rng.integers(lo, hi + 1))

    def pick(self, *options):
        return options[int(self.rng.integers(len(options)))]

    def dim(self, hi):
        """A size in [1, hi], or now and then 0 (an empty batch or tensor)."""
        return 0 if self.coin(0.05) else self.int(1, hi)

    def coin(self, p=0.5):
        return bool(self.rng.random() < p)

    def normal(self, *shape, ties=False):
        if ties and self.coin(0.3):  # small integers: exact ties and zeros (max pooling, relu's corner)
            return self.rng.integers(-2, 3, size=shape).astype(np.float64)
        return self.rng.standard_normal(shape)

    def draw(self, **kw):
        """Record drawn values in the configuration; return them (one value: itself)."""
        self.cfg.update(kw)
        vals = tuple(kw.values())
        return vals[0] if len(vals) == 1 else vals

    def where(self, extra=""):
        return f"{self.op} seed={self.seed} {self.cfg}{self.strided_note}{extra}"

    # ---- comparing
    def close(self, d, t, what):
        d, t = _np(d), _np(t)
        if t is None or d is None:
            assert d is None and t is None, self.where(f": {what}: distnn {d is None and 'None'} vs torch "
                                                       f"{t is None and 'None'}")
            return
        assert d.shape == t.shape, self.where(f": {what}: shape {d.shape} vs torch {t.shape}")
        if t.dtype.kind in "biu":
            assert d.dtype.kind in "biu", self.where(f": {what}: dtype {d.dtype} vs torch {t.dtype}")
            assert np.array_equal(d, t), self.where(f": {what} differ:\n{d}\nvs torch\n{t}")
            return
        assert d.dtype == t.dtype, self.where(f": {what}: dtype {d.dtype} vs torch {t.dtype}")
        finite = np.abs(t[np.isfinite(t)])
        scale = max(1.0, float(finite.max()) if finite.size else 0.0)
        np.testing.assert_allclose(d, t, rtol=RTOL, atol=ATOL * scale, equal_nan=True,
                                   err_msg=self.where(f": {what}"))

    def randomize(self, dmod, positive=()):
        """Random weights and buffers in ``dmod`` (float64), so the affine and bias paths are all exercised."""
        dmod.double()
        for name, p in dmod.named_parameters():
            p.data[...] = self.rng.standard_normal(p.shape) / (1.0 if p.ndim <= 1 else math.sqrt(max(p.shape[-1], 1)))
        for name, b in dmod.named_buffers():
            if b is None:
                continue
            if "num_batches_tracked" in name:
                b.data[...] = self.int(0, 4)
            elif "var" in name or any(s in name for s in positive):
                b.data[...] = self.rng.uniform(0.5, 2.0, b.shape)
            elif b.dtype.kind == "f":
                b.data[...] = self.rng.standard_normal(b.shape)

    def run(self, fd, ft, args, dmod=None, tmod=None, steps=1, modes=None, backward=True):
        """Run ``fd(*args)`` in distnn and ``ft(*args)`` in PyTorch ``steps`` times (``args`` a list, or a
        function of the step giving one; ``modes[step]``: the modules' training flag), comparing outputs,
        gradients of the G arguments, parameter gradients and buffers after each. Returns False when
        PyTorch refused the configuration."""
        if dmod is not None:
            copy_distnn_weights(dmod, tmod.double())
        for step in range(steps):
            a = args(step) if callable(args) else args
            if modes is not None and dmod is not None:
                dmod.train(modes[step])
                tmod.train(modes[step])
            _strided(self, a)
            self.strided_note = " (strided: " + ", ".join(str(i) for i, v in enumerate(a) if isinstance(v, G) and
                                                           v.strided) + ")"
            dleaves, tleaves = _to_d(a), _to_t(a)
            dargs, targs = _views(a, dleaves), _views(a, tleaves)
            tag = f" step {step}" if steps > 1 else ""
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tout = ft(*targs)
            except (RuntimeError, ValueError, IndexError, TypeError) as e:
                self.refused = e
                if step == 0:
                    try:  # (distnn may be laxer: noted for the hunt's statistics, not a failure)
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            fd(*dargs)
                        self.laxer = True
                    except Exception:  # noqa: BLE001
                        pass
                    return False  # not a valid configuration
                # a later step PyTorch refuses (a batch norm's batch of one in training): distnn refuses it too
                with pytest.raises((ValueError, RuntimeError, IndexError, TypeError)):
                    fd(*dargs)
                return True
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    dout = fd(*dargs)
            except Exception as e:  # noqa: BLE001 - any refusal is a finding
                raise AssertionError(self.where(f": distnn refused a configuration PyTorch accepts{tag}: "
                                                f"{type(e).__name__}: {e}")) from e
            dflat, tflat = _flat(dout), _flat(tout)
            assert len(dflat) == len(tflat), self.where(f": {len(dflat)} outputs vs torch {len(tflat)}")
            for i, (d, t) in enumerate(zip(dflat, tflat)):
                self.close(d, t, f"output {i}{tag}")
            if backward:
                self._backward(dflat, tflat, tag)
                for name, dl, tl in _leaves(a, dleaves, tleaves):
                    self.close(_grad(dl, tl.shape), _grad(tl, tl.shape), f"gradient of {name}{tag}")
            if dmod is not None:
                tparams = dict(tmod.named_parameters())
                dparams = dict(dmod.named_parameters())
                assert sorted(dparams) == sorted(tparams), self.where(f": parameters {sorted(dparams)} vs "
                                                                      f"{sorted(tparams)}")
                for name, p in dparams.items():
                    self.close(p.data, tparams[name], f"parameter {name}{tag}")
                    if backward:
                        self.close(_grad(p, p.shape), _grad(tparams[name], p.shape), f"gradient of {name}{tag}")
                    p.grad = None
                    tparams[name].grad = None
                tbufs = dict(tmod.named_buffers())
                for name, b in dmod.named_buffers():
                    self.close(b, tbufs.get(name), f"buffer {name}{tag}")
        return True

    def _backward(self, dflat, tflat, tag):
        sd = st = None
        for d, t in zip(dflat, tflat):
            if not (isinstance(t, torch.Tensor) and t.requires_grad):
                continue
            assert isinstance(d, distnn.Tensor) and d.requires_grad, self.where(f": an output needs no gradient{tag}")
            g = self.rng.standard_normal(tuple(t.shape))
            td = (d * distnn.tensor(g)).sum()
            tt = (t * torch.from_numpy(g)).sum()
            sd, st = (td, tt) if sd is None else (sd + td, st + tt)
        if st is not None:
            st.backward()
            sd.backward()


def _grad(x, shape):
    """A leaf's gradient as an array; zeros where none came (PyTorch leaves None for an unused input)."""
    g = x.grad
    if g is None:
        return np.zeros(shape)
    return _np(g)


# ---------------------------------------------------------------------------- the ops
def op_registry():
    """A fresh ``{name: generator}`` dict of fuzzed ops and the decorator ``@op(name)`` that adds one to it
    (each fuzz file has its own)."""
    ops = {}

    def op(name):
        def register(f):
            ops[name] = f
            return f
        return register
    return ops, op


OPS, op = op_registry()


def _pair_or_int(c, lo, hi):
    return c.pick(c.int(lo, hi), (c.int(lo, hi), c.int(lo, hi)))


def _input(c, shape):
    """A layer's input: it requires grad, or now and then not (a first layer: parameter gradients only)."""
    return G(c.normal(*shape)) if c.coin(0.85) else C(c.normal(*shape))


def _two(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _batch(c, *rest):
    """(N, *rest) (N = 0 now and then: an empty batch) or, now and then, unbatched ``rest``."""
    return ((c.int(0, 3) if c.coin(0.1) else c.int(1, 3),) if c.coin(0.8) else ()) + tuple(rest)


# ---- linear, identity, flatten
@op("Linear")
def _linear(c):
    fin, fout, bias = c.draw(fin=c.int(1, 6), fout=c.int(1, 6), bias=c.coin())
    shape = c.draw(shape=tuple(c.dim(3) for _ in range(c.int(0, 2))) + (fin,))
    dm, tm = dnn.Linear(fin, fout, bias=bias), torch.nn.Linear(fin, fout, bias=bias)
    c.randomize(dm)
    return c.run(dm, tm, [_input(c, shape)], dm, tm)


@op("F.linear")
def _f_linear(c):
    fin, fout, bias = c.draw(fin=c.int(1, 6), fout=c.int(1, 6), bias=c.coin())
    shape = c.draw(shape=tuple(c.dim(3) for _ in range(c.int(0, 2))) + (fin,))
    args = [G(c.normal(*shape)), G(c.normal(fout, fin)), G(c.normal(fout)) if bias else None]
    return c.run(DF.linear, TF.linear, args)


@op("Identity/Flatten/Unflatten")
def _flatten(c):
    nd = c.int(1, 4)
    shape = tuple(c.dim(3) for _ in range(nd))
    which = c.draw(which=c.pick("Identity", "Flatten", "Unflatten"), shape=shape)[0]
    if which == "Identity":
        dm, tm = dnn.Identity(3, k=1), torch.nn.Identity(3, k=1)
    elif which == "Flatten":
        s, e = c.draw(start=c.int(-nd, nd - 1), end=c.int(-nd, nd - 1))
        dm, tm = dnn.Flatten(s, e), torch.nn.Flatten(s, e)
    else:
        d = c.draw(dim=c.int(-nd, nd - 1))
        size = shape[d]
        split = c.pick((size,), (1, size), (size, 1), (1, size, 1))
        dm, tm = dnn.Unflatten(d, split), torch.nn.Unflatten(d, split)
    return c.run(dm, tm, [G(c.normal(*shape))])


# ---- convolutions
def _conv_config(c, nd):
    groups = c.pick(1, 1, 2, 3)
    cin, cout = groups * c.int(1, 2), groups * c.int(1, 3)
    k = c.pick(c.int(1, 4), tuple(c.int(1, 4) for _ in range(nd)))
    stride = c.pick(1, c.int(1, 3), tuple(c.int(1, 3) for _ in range(nd)))
    dilation = c.pick(1, c.int(1, 3), tuple(c.int(1, 3) for _ in range(nd)))
    padding = c.pick(0, c.int(0, 3), tuple(c.int(0, 3) for _ in range(nd)), "valid", "same")
    if padding == "same" and stride != 1 and stride != (1,) * nd:
        stride = 1  # PyTorch refuses 'same' with strides
    bias = c.coin(0.7)
    size = tuple(c.int(1, 9) for _ in range(nd))
    shape = _batch(c, cin, *size)
    return c.draw(groups=groups, cin=cin, cout=cout, k=k, stride=stride, dilation=dilation, padding=padding,
                  bias=bias, shape=shape)


def _padding_mode(c):
    return c.draw(padding_mode=c.pick("zeros", "zeros", "reflect", "replicate", "circular"))


def _conv_module(c, nd, name):
    """Conv1d/Conv2d (``name``) in both libraries from one drawn configuration."""
    groups, cin, cout, k, stride, dilation, padding, bias, shape = _conv_config(c, nd)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias,
              padding_mode=_padding_mode(c))
    try:
        tm = getattr(torch.nn, name)(cin, cout, k, **kw)
    except (ValueError, RuntimeError):
        return False
    dm = getattr(dnn, name)(cin, cout, k, **kw)
    c.randomize(dm)
    return c.run(dm, tm, [_input(c, shape)], dm, tm)


@op("Conv2d")
def _conv2d(c):
    return _conv_module(c, 2, "Conv2d")


@op("Conv1d")
def _conv1d(c):
    return _conv_module(c, 1, "Conv1d")


@op("F.conv2d/F.conv1d")
def _f_conv(c):
    nd = c.draw(nd=c.int(1, 2))
    groups, cin, cout, k, stride, dilation, padding, bias, shape = _conv_config(c, nd)
    if len(shape) == nd + 1:
        shape = (1,) + shape  # (the functional forms take a batch)
    kk = (k,) * nd if isinstance(k, int) else k
    args = [G(c.normal(*shape)), G(c.normal(cout, cin // groups, *kk)), G(c.normal(cout)) if bias else None,
            stride, padding, dilation, groups]
    return c.run(DF.conv1d if nd == 1 else DF.conv2d, TF.conv1d if nd == 1 else TF.conv2d, args)


# ---- pooling
def _pool_config(c, dilation=True):
    k = _pair_or_int(c, 1, 4)
    kk = (k, k) if isinstance(k, int) else k
    stride = c.pick(None, _pair_or_int(c, 1, 3))
    padding = c.pick(0, c.int(0, min(kk) // 2), (c.int(0, kk[0] // 2), c.int(0, kk[1] // 2)))
    d = _pair_or_int(c, 1, 2) if dilation else 1
    ceil = c.coin()
    shape = _batch(c, c.int(1, 3), c.int(1, 9), c.int(1, 9))
    return c.draw(k=k, stride=stride, padding=padding, dilation=d, ceil_mode=ceil, shape=shape)


def padding_only_window(max_pool, x, k, kw):
    """Whether PyTorch's ``max_pool`` (F.max_pool1d/2d) has a window of padding only on ``x``.

    A dilated window may hold padding only (its cells skip the input): PyTorch's output there is -inf
    and its index (and gradient) goes to a cell outside the window, distnn's nowhere. Left out.
    """
    try:
        return bool(torch.isinf(max_pool(torch.from_numpy(x), k, **{**kw, "return_indices": False})).any())
    except RuntimeError:
        return False


@op("MaxPool2d")
def _maxpool(c):
    k, stride, padding, d, ceil, shape = _pool_config(c)
    ri = c.draw(return_indices=c.coin())
    kw = dict(stride=stride, padding=padding, dilation=d, ceil_mode=ceil, return_indices=ri)
    x = c.normal(*shape, ties=True)
    if padding_only_window(TF.max_pool2d, x, k, kw):
        return False
    if c.coin():
        dm, tm = dnn.MaxPool2d(k, **kw), torch.nn.MaxPool2d(k, **kw)
    else:
        def dm(x):
            return DF.max_pool2d(x, k, **kw)

        def tm(x):
            return TF.max_pool2d(x, k, **kw)
    return c.run(dm, tm, [G(x)])


@op("MaxUnpool2d")
def _maxunpool(c):
    k, stride, padding, _, _, shape = _pool_config(c, dilation=False)
    kw = dict(stride=stride, padding=padding)
    x = torch.from_numpy(c.normal(*shape, ties=True))
    try:
        pooled, idx = TF.max_pool2d(x, k, return_indices=True, **kw)
    except RuntimeError:
        return False
    size = None
    if c.coin(0.3):
        size = c.draw(output_size=tuple(x.shape[-2:]) if c.coin() or x.ndim == 3 else tuple(x.shape))
    elif min((pooled.shape[d] - 1) * s - 2 * p + kk for d, s, p, kk in zip(
            (-2, -1), _two(stride if stride is not None else k), _two(padding), _two(k))) <= 0:
        # PyTorch returns an empty plane for a default output size of 0 without looking at the indices
        # (which cannot fit there); distnn refuses them. Left out (see the finding list).
        return False
    dm, tm = dnn.MaxUnpool2d(k, **kw), torch.nn.MaxUnpool2d(k, **kw)
    if size is None:
        return c.run(dm, tm, [G(c.normal(*pooled.shape)), C(idx.numpy())])
    return c.run(lambda a, i: dm(a, i, size), lambda a, i: tm(a, i, size), [G(c.normal(*pooled.shape)),
                                                                           C(idx.numpy())])


@op("AvgPool2d")
def _avgpool(c):
    k, stride, padding, _, ceil, shape = _pool_config(c, dilation=False)
    cip, div = c.draw(count_include_pad=c.coin(), divisor_override=c.pick(None, None, c.int(1, 5)))
    kw = dict(stride=stride, padding=padding, ceil_mode=ceil, count_include_pad=cip, divisor_override=div)
    if c.coin():
        dm, tm = dnn.AvgPool2d(k, **kw), torch.nn.AvgPool2d(k, **kw)
    else:
        def dm(x):
            return DF.avg_pool2d(x, k, **kw)

        def tm(x):
            return TF.avg_pool2d(x, k, **kw)
    return c.run(dm, tm, [G(c.normal(*shape))])


@op("AdaptiveAvgPool2d")
def _adaptive(c):
    shape = _batch(c, c.int(1, 3), c.int(1, 9), c.int(1, 9))
    size = c.pick(c.int(1, 10), (c.int(1, 10), c.int(1, 10)), (None, c.int(1, 10)), (c.int(1, 10), None))
    c.draw(output_size=size, shape=shape)
    if c.coin():
        dm, tm = dnn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size)
    else:
        def dm(x):
            return DF.adaptive_avg_pool2d(x, size)

        def tm(x):
            return TF.adaptive_avg_pool2d(x, size)
    return c.run(dm, tm, [G(c.normal(*shape))])


# ---- normalization
@op("BatchNorm")
def _batchnorm(c):
    which = c.draw(which=c.pick("1d", "2d"))
    C_ = c.int(1, 4)
    shape = (c.dim(4), C_) + ((c.int(1, 3),) * c.int(0, 1) if which == "1d" else (c.int(1, 3), c.int(1, 3)))
    affine, track, momentum, eps = c.draw(affine=c.coin(), track=c.coin(0.7),
                                          momentum=c.pick(0.1, 0.5, None, 0.0, 1.0), eps=c.pick(1e-5, 1e-3, 0.5))
    modes = c.draw(modes=[c.coin(0.7) for _ in range(4)])
    c.draw(shape=shape)
    kw = dict(eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
    dcls, tcls = (dnn.BatchNorm1d, torch.nn.BatchNorm1d) if which == "1d" else (dnn.BatchNorm2d, torch.nn.BatchNorm2d)
    dm, tm = dcls(C_, **kw), tcls(C_, **kw)
    c.randomize(dm)
    inputs = [c.normal(*shape) * c.pick(1.0, 3.0) + c.pick(0.0, 2.0) for _ in range(4)]
    return c.run(dm, tm, lambda s: [G(inputs[s])], dm, tm, steps=4, modes=modes)


@op("F.batch_norm")
def _f_batchnorm(c):
    C_ = c.int(1, 4)
    shape = c.draw(shape=(c.dim(4), C_) + tuple(c.int(1, 3) for _ in range(c.int(0, 2))))
    training, momentum, eps, w, b, running = c.draw(training=c.coin(), momentum=c.pick(0.1, 0.7, 0.0),
                                                    eps=c.pick(1e-5, 0.1), weight=c.coin(), bias=c.coin(),
                                                    running=c.coin(0.7))
    # (PyTorch's batch_norm backward reads a non-contiguous weight as if it were contiguous: NaN or wrong
    # input gradients. Its weight and bias are kept contiguous here.)
    return run_functional_norm(c, shape, C_, w, b, running, lambda *a: DF.batch_norm(*a, training, momentum, eps),
                               lambda *a: TF.batch_norm(*a, training, momentum, eps))


def run_functional_norm(c, shape, C_, w, b, running, f_distnn, f_torch):
    """A functional norm ``f(x, running_mean, running_var, weight, bias)`` in both libraries: outputs and
    gradients, then (``running``) the running statistics each updated, from the same random start."""
    rm, rv = c.rng.standard_normal(C_), c.rng.uniform(0.5, 2, C_)
    store = {}

    def fd(x, wt, bs):
        store["d"] = (distnn.tensor(rm.copy()), distnn.tensor(rv.copy())) if running else (None, None)
        return f_distnn(x, *store["d"], wt, bs)

    def ft(x, wt, bs):
        store["t"] = (torch.tensor(rm.copy()), torch.tensor(rv.copy())) if running else (None, None)
        return f_torch(x, *store["t"], wt, bs)

    ok = c.run(fd, ft, [G(c.normal(*shape)), G(c.normal(C_), False) if w else None,
                        G(c.normal(C_), False) if b else None])
    if ok and running:
        for d, t, name in zip(store["d"], store["t"], ("running_mean", "running_var")):
            c.close(d, t, name)
    return ok


@op("LayerNorm")
def _layernorm(c):
    nd = c.int(1, 3)
    shape = tuple(c.dim(4) for _ in range(nd + c.int(0, 2)))
    ns = c.draw(shape=shape, normalized_shape=shape[len(shape) - nd:])[1]
    affine, bias, eps = c.draw(affine=c.coin(0.7), bias=c.coin(0.7), eps=c.pick(1e-5, 0.1))
    if c.coin(0.7):
        norm_arg = ns[0] if len(ns) == 1 and c.coin() else list(ns)
        dm = dnn.LayerNorm(norm_arg, eps=eps, elementwise_affine=affine, bias=bias)
        tm = torch.nn.LayerNorm(norm_arg, eps=eps, elementwise_affine=affine, bias=bias)
        c.randomize(dm)
        return c.run(dm, tm, [_input(c, shape)], dm, tm)
    args = [G(c.normal(*shape)), G(c.normal(*ns)) if affine else None, G(c.normal(*ns)) if bias else None]
    return c.run(lambda x, w, b: DF.layer_norm(x, ns, w, b, eps), lambda x, w, b: TF.layer_norm(x, ns, w, b, eps),
                 args)


# ---- embedding
@op("Embedding")
def _embedding(c):
    num, dim = c.draw(num=c.int(1, 8), dim=c.int(1, 5))
    pad = c.draw(padding_idx=c.pick(None, c.int(-num, num - 1)))
    max_norm = c.draw(max_norm=c.pick(None, None, c.rng.uniform(0.3, 2.0)))
    norm_type = c.draw(norm_type=c.pick(2.0, 1.0, 3.0, 0.5, math.inf))
    sgf = c.draw(scale_grad_by_freq=c.coin(0.3))
    ishape = c.draw(ishape=tuple(c.dim(4) for _ in range(c.int(0, 3))))
    idx = c.rng.integers(0, num, size=ishape)
    kw = dict(padding_idx=pad, max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=sgf)
    how = c.draw(how=c.pick("module", "functional", "from_pretrained"))
    if how == "functional":
        w = c.normal(num, dim)
        return c.run(lambda i, wt: DF.embedding(i, wt, **kw), lambda i, wt: TF.embedding(i, wt, **kw),
                     [C(idx), G(w)])
    if how == "from_pretrained":
        freeze = c.draw(freeze=c.coin())
        w = c.normal(num, dim)
        dm = dnn.Embedding.from_pretrained(w.copy(), freeze=freeze, **kw)
        tm = torch.nn.Embedding.from_pretrained(torch.from_numpy(w.copy()), freeze=freeze, **kw)
    else:
        dm, tm = dnn.Embedding(num, dim, **kw), torch.nn.Embedding(num, dim, **kw)
        c.randomize(dm)
    return c.run(dm, tm, [C(idx)], dm, tm, steps=2)


@op("F.one_hot")
def _one_hot(c):
    n = c.draw(num_classes=c.pick(-1, c.int(1, 6)))
    ishape = c.draw(ishape=tuple(c.dim(4) for _ in range(c.int(0, 3))))
    idx = c.rng.integers(0, 6 if n == -1 else n, size=ishape)
    return c.run(lambda i: DF.one_hot(i, n), lambda i: TF.one_hot(i, n), [C(idx)], backward=False)


# ---- recurrent
def _rnn_module(c, kind):
    I, H, L, bias, bf, bi = c.draw(input_size=c.int(1, 4), hidden=c.int(1, 4), num_layers=c.int(1, 3),
                                   bias=c.coin(0.7), batch_first=c.coin(), bidirectional=c.coin())
    train = c.draw(train=c.coin())
    kw = dict(num_layers=L, bias=bias, batch_first=bf, bidirectional=bi,
              dropout=c.draw(dropout=0.0 if train else c.pick(0.0, 0.5)))  # (eval: dropout does nothing)
    if kind == "RNN":
        kw["nonlinearity"] = c.draw(nonlinearity=c.pick("tanh", "relu"))
    dm, tm = getattr(dnn, kind)(I, H, **kw), getattr(torch.nn, kind)(I, H, **kw)
    dm.train(train)
    tm.train(train)
    return dm, tm, I, H, L * (2 if bi else 1), bf


@op("RNN/LSTM/GRU")
def _rnn(c):
    kind = c.draw(kind=c.pick("RNN", "LSTM", "GRU"))
    dm, tm, I, H, DL, bf = _rnn_module(c, kind)
    c.randomize(dm)
    T, N = c.draw(T=c.int(1, 5), N=c.pick(None, c.dim(3)))
    x = c.normal(*((T, I) if N is None else (N, T, I) if bf else (T, N, I)))
    hshape = (DL, H) if N is None else (DL, N, H)
    h0 = c.draw(h0=c.pick(None, "const", "grad"))
    if h0 is None:
        return c.run(dm, tm, [G(x)], dm, tm)
    wrap = C if h0 == "const" else G
    hx = (wrap(c.normal(*hshape)), wrap(c.normal(*hshape))) if kind == "LSTM" else wrap(c.normal(*hshape))
    return c.run(dm, tm, [G(x), hx], dm, tm)


@op("RNNCell/LSTMCell/GRUCell")
def _cells(c):
    kind = c.draw(kind=c.pick("RNNCell", "LSTMCell", "GRUCell"))
    I, H, bias = c.draw(input_size=c.int(1, 4), hidden=c.int(1, 4), bias=c.coin(0.7))
    kw = dict(bias=bias)
    if kind == "RNNCell":
        kw["nonlinearity"] = c.draw(nonlinearity=c.pick("tanh", "relu"))
    dm, tm = getattr(dnn, kind)(I, H, **kw), getattr(torch.nn, kind)(I, H, **kw)
    c.randomize(dm)
    N = c.draw(N=c.pick(None, c.dim(3)))
    x = c.normal(*((I,) if N is None else (N, I)))
    hshape = (H,) if N is None else (N, H)
    h0 = c.draw(h0=c.pick(None, "const", "grad"))
    if h0 is None:
        return c.run(dm, tm, [G(x)], dm, tm)
    wrap = C if h0 == "const" else G
    hx = (wrap(c.normal(*hshape)), wrap(c.normal(*hshape))) if kind == "LSTMCell" else wrap(c.normal(*hshape))
    return c.run(dm, tm, [G(x), hx], dm, tm)


# ---- attention
def _masks(c, N, L, S, heads, unbatched):
    """attn_mask and key_padding_mask drawn together, never hiding every key from a query (PyTorch's paths
    differ there: NaN or 0, documented in distnn.nn.attention)."""
    blocked = np.zeros((N, heads, L, S), dtype=bool)
    am = kp = None
    kind = c.draw(attn_mask=c.pick(None, "bool", "float", "bool3d", "float3d"))
    if kind is not None:
        three = kind.endswith("3d")
        shape = (N * heads, L, S) if three else (L, S)
        if kind.startswith("bool"):
            am = c.rng.random(shape) < 0.3
            blocked |= am.reshape((N, heads, L, S)) if three else am[None, None]
        else:
            am = c.rng.standard_normal(shape)
            am[c.rng.random(shape) < 0.2] = -np.inf
            blocked |= np.isinf(am).reshape((N, heads, L, S)) if three else np.isinf(am)[None, None]
        if three and unbatched:
            am = am.reshape(heads, L, S)
    kkind = c.draw(key_padding_mask=c.pick(None, "bool", "float"))
    if kkind is not None:
        kp = c.rng.random((N, S)) < 0.3
        blocked |= kp[:, None, None, :]
        if kkind == "float":
            kp = np.where(kp, -np.inf, c.rng.standard_normal((N, S)))
        if unbatched:
            kp = kp[0]
    if blocked.all(axis=-1).any():
        return None
    return am, kp


@op("MultiheadAttention")
def _mha(c):
    heads = c.int(1, 3)
    E = heads * c.int(1, 3)
    bias, bf, kind = c.draw(heads=heads, E=E, bias=c.coin(0.7), batch_first=c.coin(),
                            kind=c.pick("self", "kv_same", "cross"))[2:]
    N, L, S = c.draw(N=c.pick(None, c.dim(3)), L=c.int(1, 4), S=c.int(1, 4))
    if kind == "self":
        S = L
    need, avg, train = c.draw(need_weights=c.coin(), average=c.coin(), train=c.coin())
    kdim = vdim = None
    if kind != "self" and c.coin(0.3):
        kdim = c.draw(kdim=c.int(1, 5))
        vdim = kdim if kind == "kv_same" else c.draw(vdim=c.pick(None, c.int(1, 5)))
    kw = dict(bias=bias, batch_first=bf, kdim=kdim, vdim=vdim, add_bias_kv=c.draw(add_bias_kv=c.coin(0.25)),
              add_zero_attn=c.draw(add_zero_attn=c.coin(0.25)),
              dropout=c.draw(dropout=0.0 if train else c.pick(0.0, 0.5)))  # (eval: dropout does nothing)
    dm, tm = dnn.MultiheadAttention(E, heads, **kw), torch.nn.MultiheadAttention(E, heads, **kw)
    c.randomize(dm)

    def layout(n, dim=E):
        return (n, dim) if N is None else (N, n, dim) if bf else (n, N, dim)

    masks = _masks(c, 1 if N is None else N, L, S, heads, N is None)
    if masks is None:
        return False
    am, kp = masks
    causal = c.draw(is_causal=False)
    # is_causal with the causal mask (PyTorch's hint). Not with bias_k or the zero key: PyTorch's need_weights=False
    # path then hands is_causal to its fused kernel, which hides those appended keys from all but the last
    # query, unlike its own need_weights=True path and the same mask without the hint (distnn's result).
    if am is None and kp is None and L == S and not (kw["add_bias_kv"] or kw["add_zero_attn"]) and c.coin(0.2):
        am, causal = np.triu(np.ones((L, L), dtype=bool), 1), c.draw(is_causal=True)
    q = c.normal(*layout(L))

    def call(m):
        def f(query, key, value, amask, kpm):
            if kind == "self":
                key = value = query
            elif kind == "kv_same":
                value = key
            return m(query, key, value, key_padding_mask=kpm, need_weights=need, attn_mask=amask,
                     average_attn_weights=avg, is_causal=causal)
        return f

    args = [G(q), G(c.normal(*layout(S, kdim or E))), G(c.normal(*layout(S, vdim or E))),
            None if am is None else C(am), None if kp is None else C(kp)]
    return c.run(call(dm), call(tm), args, dm, tm, modes=[train])


@op("TransformerEncoder")
def _transformer(c):
    heads = c.int(1, 2)
    E = heads * c.int(1, 3)
    ff, act, nf, bf, bias, eps = c.draw(heads=heads, E=E, ff=c.int(1, 6), activation=c.pick("relu", "gelu"),
                                        norm_first=c.coin(), batch_first=c.coin(), bias=c.coin(0.8),
                                        eps=c.pick(1e-5, 0.1))[2:]
    stack, layers, final_norm = c.draw(stack=c.coin(), layers=c.int(1, 2), final_norm=c.coin())
    train = c.draw(train=c.coin())
    kw = dict(dim_feedforward=ff, activation=act, layer_norm_eps=eps, batch_first=bf, norm_first=nf, bias=bias,
              dropout=c.draw(dropout=0.0 if train else c.pick(0.0, 0.3)))  # (eval: dropout does nothing)
    dl, tl = dnn.TransformerEncoderLayer(E, heads, **kw), torch.nn.TransformerEncoderLayer(E, heads, **kw)
    if stack:
        dm = dnn.TransformerEncoder(dl, layers, norm=dnn.LayerNorm(E) if final_norm else None)
        tm = torch.nn.TransformerEncoder(tl, layers, norm=torch.nn.LayerNorm(E) if final_norm else None,
                                         enable_nested_tensor=False)
    else:
        dm, tm = dl, tl
    c.randomize(dm)
    N, L = c.draw(N=c.pick(None, c.dim(3)), L=c.int(1, 4))
    masks = _masks(c, 1 if N is None else N, L, L, heads, N is None)
    if masks is None:
        return False
    am, kp = masks
    shape = (L, E) if N is None else (N, L, E) if bf else (L, N, E)
    if stack:
        def call(m):
            return lambda x, amask, kpm: m(x, mask=amask, src_key_padding_mask=kpm)
    else:
        def call(m):
            return lambda x, amask, kpm: m(x, src_mask=amask, src_key_padding_mask=kpm)
    args = [G(c.normal(*shape)), None if am is None else C(am), None if kp is None else C(kp)]
    return c.run(call(dm), call(tm), args, dm, tm, modes=[train])


# ---- activations
def _act_input(c):
    shape = tuple(c.dim(4) for _ in range(c.int(0, 4)))
    x = c.normal(*shape, ties=True) * c.pick(1.0, 10.0)
    return c.draw(shape=shape), x


@op("activations")
def _activations(c):
    name = c.draw(act=c.pick("ReLU", "LeakyReLU", "ELU", "GELU", "Tanh", "Sigmoid", "LogSigmoid", "Softplus",
                             "Softmax", "LogSoftmax"))
    shape, x = _act_input(c)
    kw = {}
    if name == "LeakyReLU":
        kw = dict(negative_slope=c.pick(0.01, 0.2, -0.5, 2.0))
    elif name == "ELU":
        kw = dict(alpha=c.pick(1.0, 0.5, 2.0))
    elif name == "GELU":
        kw = dict(approximate=c.pick("none", "tanh"))
    elif name == "Softplus":
        kw = dict(beta=c.pick(1.0, 0.5, 2.0, -1.0), threshold=c.pick(20.0, 1.0, 5.0))
    elif name in ("Softmax", "LogSoftmax"):
        if not shape:
            return False
        kw = dict(dim=c.int(-len(shape), len(shape) - 1))
    # (PyTorch's in-place leaky_relu refuses backward with a negative slope)
    inplace = name in ("ReLU", "LeakyReLU", "ELU") and kw.get("negative_slope", 0) >= 0 and c.coin(0.3)
    if inplace:
        kw["inplace"] = True
    c.draw(**kw)
    functional = c.draw(functional=c.coin())
    if functional:
        fname = {"LogSigmoid": "logsigmoid", "LogSoftmax": "log_softmax", "LeakyReLU": "leaky_relu"}.get(
            name, name.lower())
        fd, ft = getattr(DF, fname), (getattr(torch, fname) if fname in ("tanh", "sigmoid") else getattr(TF, fname))
        if fname in ("softmax", "log_softmax"):
            dim = kw["dim"]
            fd, ft = (lambda f: lambda a: f(a, dim=dim))(fd), (lambda f: lambda a: f(a, dim=dim))(ft)
        else:
            fd, ft = (lambda f: lambda a: f(a, **kw))(fd), (lambda f: lambda a: f(a, **kw))(ft)
    else:
        fd, ft = getattr(dnn, name)(**kw), getattr(torch.nn, name)(**kw)
    if inplace:  # on a non-leaf, as in a network (a leaf that requires grad cannot change in place)
        fd, ft = (lambda f: lambda a: f(a * 1.0))(fd), (lambda f: lambda a: f(a * 1.0))(ft)
    return c.run(fd, ft, [G(x)])


@op("PReLU")
def _prelu(c):
    nd = c.int(1, 4)
    shape = tuple(c.dim(4) for _ in range(nd))
    ch = shape[1] if nd >= 2 else shape[0]
    n = c.draw(shape=shape, num_parameters=c.pick(1, ch))[1]
    dm, tm = dnn.PReLU(n, init=0.25), torch.nn.PReLU(n, init=0.25)
    c.randomize(dm)
    return c.run(dm, tm, [G(c.normal(*shape, ties=True))], dm, tm)


@op("Maxout")
def _maxout(c):
    nd = c.int(1, 4)
    d = c.int(-nd, nd - 1)
    k = c.int(1, 3)
    shape = [c.dim(3) for _ in range(nd)]
    shape[d] = k * c.int(1, 3)
    c.draw(shape=tuple(shape), dim=d, pool_size=k)

    def tm(x):  # PyTorch has no Maxout: group the dimension, keep each group's maximum (max's gradient)
        dd = d % nd
        return x.unflatten(dd, (shape[dd] // k, k)).max(dim=dd + 1).values
    return c.run(dnn.Maxout(k, dim=d), tm, [G(c.normal(*shape))])


@op("Dropout")
def _dropout(c):
    p, training = c.draw(p=c.pick(0.0, 1.0, 0.5), training=c.coin())
    shape = tuple(c.dim(4) for _ in range(c.int(0, 3)))
    if p == 0.5 and training:
        return False  # random masks: not comparable
    if c.coin():
        dm, tm = dnn.Dropout(p), torch.nn.Dropout(p)
        return c.run(lambda x: dm(x * 1.0), lambda x: tm(x * 1.0), [G(c.normal(*shape))], dm, tm, modes=[training])
    return c.run(lambda x: DF.dropout(x, p, training), lambda x: TF.dropout(x, p, training), [G(c.normal(*shape))])


# ---- functional shape and normalization ops
@op("F.normalize")
def _normalize(c):
    shape = tuple(c.dim(4) for _ in range(c.int(1, 3)))
    p, dim, eps = c.draw(shape=shape, p=c.pick(2.0, 1.0, 3.0, 0.5, math.inf), dim=c.int(-len(shape), len(shape) - 1),
                         eps=c.pick(1e-12, 0.5))[1:]
    x = c.normal(*shape)
    if c.coin(0.2):
        x[...] = 0
    return c.run(lambda a: DF.normalize(a, p, dim, eps), lambda a: TF.normalize(a, p, dim, eps), [G(x)])


@op("F.pad")
def _pad(c):
    mode = c.draw(mode=c.pick("constant", "reflect", "replicate", "circular"))
    if mode == "constant":
        shape = tuple(c.dim(4) for _ in range(c.int(1, 4)))
        n = c.int(1, len(shape))
    else:  # (PyTorch: the last 1 to 3 dims of an input with one or two more)
        n = c.int(1, 3)
        shape = tuple(c.dim(4) for _ in range(n + c.int(1, 2)))
    pad = tuple(c.int(-1, 3) for _ in range(2 * n))
    if mode == "circular" and any(max(lo, hi) > size - max(-lo, 0) - max(-hi, 0) for lo, hi, size in
                                  zip(pad[::2], pad[1::2], shape[::-1])):
        # Wrapping more than once around the cells a crop keeps: PyTorch's forward copies them right, but its
        # gradient misses copies (F.pad(x, (-1, 2), mode="circular") on (4, 2) gives x[:, 1] the gradient
        # of one output, not of three). Left out.
        return False
    if mode != "constant" and any(size + lo + hi == 0 for lo, hi, size in zip(pad[::2], pad[1::2], shape[::-1])):
        # An empty result: PyTorch refuses most; where it takes one (reflect on 4-D and 5-D inputs) its input
        # gradient is not zero but garbage. distnn returns the empty tensor, gradient zero. Left out.
        return False
    kw = dict(mode=mode)
    if mode == "constant" and c.coin():
        kw["value"] = c.pick(0.0, 1.5)
    c.draw(shape=shape, pad=pad, **kw)
    return c.run(lambda a: DF.pad(a, pad, **kw), lambda a: TF.pad(a, pad, **kw), [G(c.normal(*shape))])


# ---- losses
REDUCTIONS = ("mean", "sum", "none")


@op("CrossEntropyLoss/NLLLoss")
def _class_losses(c):
    name = c.draw(loss=c.pick("CrossEntropyLoss", "NLLLoss"))
    Cn = c.int(1, 5)
    extra = tuple(c.int(1, 3) for _ in range(c.int(0, 2)))
    unbatched = c.coin(0.15)
    shape = (Cn,) if unbatched else (c.dim(4), Cn) + extra
    tshape = () if unbatched else (shape[0],) + extra
    red = c.draw(shape=shape, reduction=c.pick(*REDUCTIONS))[1]
    ignore = c.draw(ignore_index=c.pick(-100, c.int(0, Cn - 1), 7))
    weight = c.normal(Cn) ** 2 + 0.1 if c.coin() else None
    ls = c.draw(weighted=weight is not None, label_smoothing=c.pick(0.0, 0.0, 0.1, 0.5, 1.0) if name[0] == "C" else 0)[1]
    target = c.rng.integers(0, Cn, size=tshape)
    if c.coin(0.4):
        target[c.rng.random(tshape) < 0.4] = ignore
    target = C(target)
    if name[0] == "C" and c.draw(probabilities=c.coin(0.3)):  # class probabilities: a float target like the input
        p = c.rng.random(shape)
        target = (G if c.draw(target_grad=c.coin()) else C)(p / p.sum(axis=0 if unbatched else 1, keepdims=True))
        if c.coin(0.8):
            ignore = c.draw(ignore_index=-100)  # (any other: refused by both)
    kw = dict(ignore_index=ignore, reduction=red)
    if name[0] == "C":
        kw["label_smoothing"] = ls
    functional = c.draw(functional=c.coin())
    x = c.normal(*shape)
    if name == "NLLLoss":
        x = x - np.log(np.exp(x).sum(axis=0 if unbatched else 1, keepdims=True))
    if functional:
        fd, ft = (DF.cross_entropy, TF.cross_entropy) if name[0] == "C" else (DF.nll_loss, TF.nll_loss)
        return c.run(lambda a, t, w: fd(a, t, w, **kw), lambda a, t, w: ft(a, t, w, **kw),
                     [G(x), target, None if weight is None else C(weight)])
    dm = getattr(dnn, name)(weight=None if weight is None else distnn.tensor(weight), **kw)
    tm = getattr(torch.nn, name)(weight=None if weight is None else torch.from_numpy(weight), **kw)
    return c.run(dm, tm, [G(x), target])


@op("BCELoss/BCEWithLogitsLoss")
def _bce(c):
    name = c.draw(loss=c.pick("BCELoss", "BCEWithLogitsLoss"))
    shape = tuple(c.dim(4) for _ in range(c.int(0, 3)))
    red = c.draw(shape=shape, reduction=c.pick(*REDUCTIONS))[1]
    wshape = c.draw(wshape=c.pick(None, shape, shape[1:], (1,) * len(shape)))
    weight = None if wshape is None else c.rng.uniform(0.1, 2, wshape)
    x = c.normal(*shape) * 3
    y = c.rng.random(shape)
    if c.coin():
        y = np.round(y)
    ygrad = c.draw(target_grad=c.coin(0.3))
    kw = dict(reduction=red)
    if name == "BCELoss":
        x = np.array(1 / (1 + np.exp(-x)))
        # At p = 0 or 1 PyTorch's target gradient is -logit(p) = -+inf, distnn's the derivative of the loss it
        # returns, whose logs are clamped at -100: +-100. Saturated inputs only where the target needs none.
        if c.coin(0.2) and not ygrad:
            x[c.rng.random(shape) < 0.3] = c.pick(0.0, 1.0)
        fd, ft = DF.binary_cross_entropy, TF.binary_cross_entropy
        dmk, tmk = dnn.BCELoss, torch.nn.BCELoss
        extra = {}
    else:
        pshape = c.draw(pos_weight=c.pick(None, shape[-1:], shape))
        extra = {} if pshape is None else {"pos_weight": c.rng.uniform(0.1, 3, pshape)}
        fd, ft = DF.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits
        dmk, tmk = dnn.BCEWithLogitsLoss, torch.nn.BCEWithLogitsLoss
    yy = G(y) if ygrad else C(y)
    if c.draw(functional=c.coin()):
        dkw = {k: distnn.tensor(v) for k, v in extra.items()}
        tkw = {k: torch.from_numpy(v) for k, v in extra.items()}
        return c.run(lambda a, t, w: fd(a, t, w, **dkw, **kw), lambda a, t, w: ft(a, t, w, **tkw, **kw),
                     [G(x), yy, None if weight is None else C(weight)])
    dm = dmk(weight=None if weight is None else distnn.tensor(weight),
             **{k: distnn.tensor(v) for k, v in extra.items()}, **kw)
    tm = tmk(weight=None if weight is None else torch.from_numpy(weight),
             **{k: torch.from_numpy(v) for k, v in extra.items()}, **kw)
    return c.run(dm, tm, [G(x), yy])


@op("MSELoss/L1Loss/HuberLoss")
def _regression(c):
    name = c.draw(loss=c.pick("MSELoss", "L1Loss", "HuberLoss"))
    shape = tuple(c.dim(4) for _ in range(c.int(0, 3)))
    red, ygrad = c.draw(shape=shape, reduction=c.pick(*REDUCTIONS), target_grad=c.coin())[1:]
    kw = dict(reduction=red)
    if name == "HuberLoss":
        kw["delta"] = c.draw(delta=c.pick(1.0, 0.3, 2.5))
    x, y = c.normal(*shape, ties=True), c.normal(*shape, ties=True)
    yy = G(y) if ygrad else C(y)
    if c.draw(functional=c.coin()):
        fname = {"MSELoss": "mse_loss", "L1Loss": "l1_loss", "HuberLoss": "huber_loss"}[name]
        return c.run(lambda a, t: getattr(DF, fname)(a, t, **kw), lambda a, t: getattr(TF, fname)(a, t, **kw),
                     [G(x), yy])
    return c.run(getattr(dnn, name)(**kw), getattr(torch.nn, name)(**kw), [G(x), yy])


@op("MultiMarginLoss")
def _multimargin(c):
    Cn = c.int(1, 5)
    unbatched = c.coin(0.2)
    shape = (Cn,) if unbatched else (c.dim(4), Cn)
    p, margin, red = c.draw(shape=shape, p=c.pick(1, 2), margin=c.pick(1.0, 0.5, 2.0),
                            reduction=c.pick(*REDUCTIONS))[1:]
    weight = c.rng.uniform(0.1, 2, Cn) if c.draw(weighted=c.coin()) else None
    target = c.rng.integers(0, Cn, size=() if unbatched else shape[:1])
    if red == "mean" and shape[0] == 0:
        return False  # (PyTorch's mean over no samples is uninitialized memory, not NaN)
    kw = dict(p=p, margin=margin, reduction=red)
    x = c.normal(*shape, ties=True) * 0.5
    if c.draw(functional=c.coin()):
        return c.run(lambda a, t, w: DF.multi_margin_loss(a, t, weight=w, **kw),
                     lambda a, t, w: TF.multi_margin_loss(a, t, weight=w, **kw),
                     [G(x), C(target), None if weight is None else C(weight)])
    dm = dnn.MultiMarginLoss(weight=None if weight is None else distnn.tensor(weight), **kw)
    tm = torch.nn.MultiMarginLoss(weight=None if weight is None else torch.from_numpy(weight), **kw)
    return c.run(dm, tm, [G(x), C(target)])


@op("GaussianNLLLoss")
def _gaussian(c):
    shape = tuple(c.dim(4) for _ in range(c.int(1, 3)))
    i = c.int(0, len(shape) - 1)
    vshape = c.pick(shape, shape[:-1], shape[:i] + (1,) + shape[i + 1:])
    full, eps, red = c.draw(shape=shape, var_shape=vshape, full=c.coin(), eps=c.pick(1e-6, 0.3),
                            reduction=c.pick(*REDUCTIONS))[2:]
    var = c.rng.uniform(0.05, 2.0, vshape)
    kw = dict(full=full, eps=eps, reduction=red)
    args = [G(c.normal(*shape)), G(c.normal(*shape)) if c.coin() else C(c.normal(*shape)), G(var)]
    if c.draw(scalar_var=c.coin(0.15)):
        args[2] = c.rng.uniform(0.05, 2.0)
    if c.draw(functional=c.coin()):
        return c.run(lambda a, t, v: DF.gaussian_nll_loss(a, t, v, **kw),
                     lambda a, t, v: TF.gaussian_nll_loss(a, t, v, **kw), args)
    return c.run(dnn.GaussianNLLLoss(**kw), torch.nn.GaussianNLLLoss(**kw), args)


@op("SoftMarginLoss/HingeEmbeddingLoss/binary_hinge_loss")
def _margins(c):
    name = c.draw(loss=c.pick("SoftMarginLoss", "HingeEmbeddingLoss", "binary_hinge_loss"))
    shape = tuple(c.dim(4) for _ in range(c.int(0, 3)))
    red = c.draw(shape=shape, reduction=c.pick(*REDUCTIONS))[1]
    x = c.normal(*shape, ties=True)
    y = np.where(c.rng.random(shape) < 0.5, -1.0, 1.0)
    if name == "binary_hinge_loss":
        margin = c.draw(margin=c.pick(1.0, 0.5))

        def ft(a, t):
            loss = torch.relu(margin - a * t)
            return loss.mean() if red == "mean" else loss.sum() if red == "sum" else loss
        return c.run(lambda a, t: DF.binary_hinge_loss(a, t, margin, red), ft, [G(x), C(y)])
    kw = dict(reduction=red)
    if name == "HingeEmbeddingLoss":
        kw["margin"] = c.draw(margin=c.pick(1.0, 0.5, -0.5))
    if c.draw(functional=c.coin()):
        fname = "soft_margin_loss" if name[0] == "S" else "hinge_embedding_loss"
        return c.run(lambda a, t: getattr(DF, fname)(a, t, **kw), lambda a, t: getattr(TF, fname)(a, t, **kw),
                     [G(x), C(y)])
    return c.run(getattr(dnn, name)(**kw), getattr(torch.nn, name)(**kw), [G(x), C(y)])


# ---------------------------------------------------------------------------- the test
@pytest.mark.filterwarnings("ignore:dropout option adds dropout after all but last recurrent layer")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's, where a result is NaN as PyTorch's (empty means)
@pytest.mark.parametrize("name", sorted(OPS))
def test_layer_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])


# ---------------------------------------------------------------------------- shared by the other fuzz files
def run_cases(name, generate):
    """``generate(Case(name, seed))`` for the CASES seeds from START. It returns falsy where PyTorch refused
    the configuration drawn; with the default 4 cases or more, at least one must have run."""
    torch.set_num_threads(1)
    ran = sum(bool(generate(Case(name, seed))) for seed in range(START, START + CASES))
    assert ran or CASES < 4, f"{name}: PyTorch refused every configuration drawn: the generator is wrong"


def float32_pair(dm, tm, x, rtol=1e-4, atol=1e-5):
    """Forward and backward in float32 in both libraries (PyTorch's weights copied into distnn's module);
    of a tuple output (LSTM's), the first element."""
    copy_torch_weights(tm, dm)
    xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = dm(xd), tm(xt)
    yd, yt = (yd[0], yt[0]) if isinstance(yt, tuple) else (yd, yt)
    assert yd.dtype == np.float32
    g = np.random.default_rng(1).standard_normal(tuple(yt.shape)).astype(np.float32)
    (yd * distnn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(np.asarray(yd.data), yt.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(np.asarray(xd.grad.data), xt.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(tm.named_parameters())
    for name, p in dm.named_parameters():
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(np.asarray(p.grad.data), tparams[name].grad.numpy(), rtol=rtol, atol=1e-4)


def trains(model, x, target, steps, lr):
    """Adam on the MSE of model(x) (of a tuple output, its first element) against target: the first and
    last losses."""
    opt = optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = model(distnn.tensor(x))
        loss = DF.mse_loss(out[0] if isinstance(out, tuple) else out, distnn.tensor(target))
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses[0], losses[-1]
