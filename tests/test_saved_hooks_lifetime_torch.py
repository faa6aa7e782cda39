"""saved_tensors_hooks against torch.autograd.graph.saved_tensors_hooks (torch 2.13): what the graph keeps alive.

When pack_hook returns something other than the tensor it gets (a copy, a numpy array, bytes), the graph holds only
that: the tensor and its memory go once the user drops them (the point of offloading hooks). Checked with weakrefs
to the tensor (both libraries) and to its array (distnn), with tracemalloc on an MLP of in-place ReLUs, and through
the order of pack/unpack calls (an in-place op's node is packed once, after its write, with the tensor itself; no
unpack in the forward). As torch's, a node packed by hooks checks no version: an in-place change after the forward
is not refused, and backward computes with what unpack_hook returns.
"""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import distnn
import distnn.functional as DF
import distnn.nn as dnn

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

_rng = np.random.default_rng(0)
A, B = _rng.standard_normal((64, 64)), _rng.standard_normal((64, 64))
LIBS = {"distnn": (distnn, DF), "torch": (torch, TF)}


def _numpy(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.data if hasattr(t, "data") else t)


PACKS = {  # what pack_hook returns, and how unpack_hook makes a tensor of it again
    "clone": (lambda lib: lambda t: t.detach().clone(), lambda lib: lambda p: p),
    "numpy": (lambda lib: lambda t: _numpy(t).copy(), lambda lib: lambda p: lib.tensor(p)),
    "itself": (lambda lib: lambda t: t, lambda lib: lambda p: p),
}

# Each makes a non-leaf tensor ``y`` the user holds, which the graph saves (as an input or as an in-place result).
OPS = {
    "mul": lambda L, F, x, w: (lambda y: (y, (y * w).sum()))(x * w),
    "exp_of_it": lambda L, F, x, w: (lambda y: (y, y.exp().sum()))(x * w),
    "matmul": lambda L, F, x, w: (lambda y: (y, (y @ w).sum()))(x * w),
    "relu_inplace": lambda L, F, x, w: (lambda y: (y, F.relu(y, inplace=True).sum()))(x * w),
    "relu_": lambda L, F, x, w: (lambda y: (y, y.relu_().sum()))(x * w),
    "exp_": lambda L, F, x, w: (lambda y: (y, y.exp_().sum()))(x * w),
    "sigmoid_": lambda L, F, x, w: (lambda y: (y, y.sigmoid_().sum()))(x * w),
    "hardtanh_inplace": lambda L, F, x, w: (lambda y: (y, F.hardtanh(y, inplace=True).sum()))(x * w),
    "leaky_relu_inplace": lambda L, F, x, w: (lambda y: (y, F.leaky_relu(y, 0.1, inplace=True).sum()))(x * w),
    "elu_inplace": lambda L, F, x, w: (lambda y: (y, F.elu(y, inplace=True).sum()))(x * w),
    "silu_inplace": lambda L, F, x, w: (lambda y: (y, F.silu(y, inplace=True).sum()))(x * w),
    "dropout_inplace": lambda L, F, x, w: (lambda y: (y, F.dropout(y, 0.5, inplace=True).sum()))(x * w),
    "mul_": lambda L, F, x, w: (lambda y: (y, y.mul_(w).sum()))(x * 1.0),
}


def _lifetime(name, op, pack):
    """(whether ``y`` is alive after the user drops it, whether its array is: distnn only) under the hooks."""
    lib, F = LIBS[name]
    lib.manual_seed(0)
    x, w = lib.tensor(A, requires_grad=True), lib.tensor(B, requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(PACKS[pack][0](lib), PACKS[pack][1](lib)):
        y, loss = OPS[op](lib, F, x, w)
    alive = weakref.ref(y)
    memory = weakref.ref(y.data) if name == "distnn" else None
    del y
    gc.collect()
    result = (alive() is not None, memory() is not None if memory else None)
    loss.backward()  # (still works: the graph holds what it needs)
    return result, _numpy(x.grad), _numpy(w.grad)


@pytest.mark.parametrize("pack", sorted(PACKS))
@pytest.mark.parametrize("op", sorted(OPS))
def test_the_graph_keeps_the_users_tensor_alive_only_where_torchs_does(op, pack):
    (mine, memory), *grads = _lifetime("distnn", op, pack)
    (theirs, _), *their_grads = _lifetime("torch", op, pack)
    assert mine == theirs  # (leaky_relu_'s node keeps its result, the tensor itself, as torch's)
    assert memory == mine  # (the array too: nothing but pack_hook's result holds it)
    if pack != "itself":
        assert not mine
    if op != "dropout_inplace":  # (the masks are each library's own draws)
        for a, b in zip(grads, their_grads):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _calls(name, op):
    """The hooks' calls, in order: ("pack", shape, whether it got the user's tensor ``y`` itself) and unpacks."""
    lib, F = LIBS[name]
    log, held = [], {}

    def pack(t):
        log.append(("pack", tuple(t.shape), t is held.get("y")))
        return t.detach().clone()

    def unpack(p):
        log.append(("unpack", tuple(p.shape)))
        return p

    x = lib.tensor(A, requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = held["y"] = x * 2.0  # (saves nothing: a number)
        log.append("op")
        out = op(lib, F, y)
        log.append("backward")
    out.sum().backward()
    return log, _numpy(x.grad)


INPLACE = {
    "relu_inplace": lambda L, F, y: F.relu(y, inplace=True),
    "nn.ReLU(inplace=True)": lambda L, F, y: (dnn if L is distnn else torch.nn).ReLU(inplace=True)(y),
    "relu_": lambda L, F, y: F.relu_(y),
    "hardtanh_inplace": lambda L, F, y: F.hardtanh(y, -0.5, 0.5, inplace=True),
    "threshold_inplace": lambda L, F, y: F.threshold(y, 0.1, 0.0, inplace=True),
    "leaky_relu_inplace": lambda L, F, y: F.leaky_relu(y, 0.1, inplace=True),
    "elu_inplace": lambda L, F, y: F.elu(y, inplace=True),
    "silu_inplace": lambda L, F, y: F.silu(y, inplace=True),
    "celu_": lambda L, F, y: F.celu_(y, 0.5),
    "exp_": lambda L, F, y: y.exp_(),
    "tanh_": lambda L, F, y: y.tanh_(),
    "exp_of_full_sum": lambda L, F, y: y.sum().exp(),  # (a 0-d result, saved: a tensor packed, as torch's)
}


@pytest.mark.parametrize("op", sorted(INPLACE))
def test_an_in_place_ops_node_is_packed_once_after_the_write_with_the_tensor_itself_as_torchs(op):
    mine, grad = _calls("distnn", INPLACE[op])
    theirs, their_grad = _calls("torch", INPLACE[op])
    assert mine == theirs
    assert mine.index("backward") < max(i for i, c in enumerate(mine) if c[0] == "unpack")  # (none in the forward)
    np.testing.assert_allclose(grad, their_grad, rtol=1e-12, atol=1e-12)


def _offloaded_mlp_bytes(inplace):
    """Bytes tracemalloc sees held after a forward under hooks that move every saved tensor into bytes, less those
    bytes; and one activation's size."""
    distnn.manual_seed(0)
    layers = []
    for _ in range(6):
        layers += [dnn.Linear(256, 256, dtype=np.float64), dnn.ReLU(inplace=inplace), dnn.Tanh()]
    model = dnn.Sequential(*layers)
    x = distnn.tensor(_rng.standard_normal((128, 256)))
    store = []

    def pack(t):
        store.append(np.asarray(t.data).tobytes())
        return len(store) - 1, tuple(t.shape), t.dtype

    def unpack(p):
        i, shape, dtype = p
        return distnn.tensor(np.frombuffer(store[i], dtype=np.dtype(dtype)).reshape(shape).copy())

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with distnn.autograd.graph.saved_tensors_hooks(pack, unpack):
            loss = model(x).sum()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before - sum(len(b) for b in store)
    finally:
        tracemalloc.stop()
    loss.backward()
    return held, 128 * 256 * 8


@pytest.mark.parametrize("inplace", [False, True])
def test_offloading_hooks_leave_no_activation_in_memory(inplace):
    """nn.ReLU(inplace=True)'s node kept its activation (a copy unpacked in the forward) before the fix: six of them."""
    held, activation = _offloaded_mlp_bytes(inplace)
    assert held < activation / 2, (held, activation)


def _changed_after_the_forward(name, pack, where):
    lib, _ = LIBS[name]
    a, w = lib.tensor(A[:3, :4], requires_grad=True), lib.tensor(B[:3, :4], requires_grad=True)
    index = lib.tensor(np.array([2, 0]))
    with lib.autograd.graph.saved_tensors_hooks(PACKS[pack][0](lib), PACKS[pack][1](lib)):
        x = a * 1.0
        if where == "input":
            y, target = x * w, x
        elif where == "output":
            y = (x * w).exp()
            target = y
        else:  # an index tensor, saved by the indexing node
            y, target = (x * w)[index] * 1.0, index
    with lib.no_grad():
        target.mul_(2) if where != "index" else target.sub_(1)
    y.sum().backward()
    return _numpy(a.grad), _numpy(w.grad)


@pytest.mark.parametrize("where", ["input", "output", "index"])
@pytest.mark.parametrize("pack", ["clone", "itself"])
def test_a_change_in_place_after_the_forward_is_not_refused_under_hooks_as_torchs(pack, where):
    """torch checks no version of a tensor saved with hooks: a copy gives the old values' gradients, the tensor
    kept itself the new ones'."""
    mine, theirs = _changed_after_the_forward("distnn", pack, where), _changed_after_the_forward("torch", pack, where)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_without_hooks_the_same_change_is_still_refused_as_torchs():
    for lib in (distnn, torch):
        x = lib.tensor(A[:3, :4], requires_grad=True) * 1.0
        y = (x * 2.0).exp()
        with lib.no_grad():
            y.mul_(2)
        with pytest.raises(RuntimeError):
            y.sum().backward()
