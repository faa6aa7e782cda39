"""Selective activation checkpointing (create_selective_checkpoint_contexts, CheckpointPolicy) and
create_graph through a checkpoint, against torch.utils.checkpoint (torch 2.13) and distnn without
checkpointing: saved ops are not run again in backward (counted), gradients and second derivatives are the
plain run's (bitwise) and torch's, what is kept in memory, saved dropout masks, and the refusals torch gives
(bad policies, a second backward, a cached output changed in place, arguments changed in place)."""
import functools
import tracemalloc

import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.functional.activation import Dropout, Tanh
from distnn.functional.matrix_multiply import MatMul
from distnn.utils.checkpoint import (CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts,
                                     set_checkpoint_early_stop)

torch = pytest.importorskip("torch")
from torch.utils import checkpoint as tcp  # noqa: E402

P = CheckpointPolicy
R = np.random.default_rng(0)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
X, W1, W2 = R.standard_normal((4, 5)), R.standard_normal((5, 6)), R.standard_normal((6, 3))


def _f(lib, w1, w2):
    return lambda a: lib.sigmoid(lib.tanh(a @ w1) @ w2).sum()


def _sac(policy, **kw):
    return functools.partial(create_selective_checkpoint_contexts, policy, **kw)


def _counting(monkeypatch, cls):
    calls = [0]
    forward = cls.forward

    def counted(self, *arrays, **params):
        calls[0] += 1
        return forward(self, *arrays, **params)

    monkeypatch.setattr(cls, "forward", counted)
    return calls


def _distnn_grads(context_fn=None, checkpointed=True):
    x, w1, w2 = (distnn.tensor(v.copy(), requires_grad=True) for v in (X, W1, W2))
    f = _f(distnn, w1, w2)
    kw = {} if context_fn is None else {"context_fn": context_fn}
    y = checkpoint(f, x, use_reentrant=False, **kw) if checkpointed else f(x)
    return y, lambda: (y.backward(), [t.grad for t in (x, w1, w2)])[1]


def _matmuls(policy_for_matmul):
    return lambda ctx, op, *args, **kwargs: policy_for_matmul if op is MatMul else P.PREFER_RECOMPUTE


@pytest.mark.parametrize("context_fn,reruns", [
    (_sac([MatMul]), 0), (_sac(_matmuls(P.MUST_SAVE)), 0), (_sac(_matmuls(P.PREFER_SAVE)), 0),
    (_sac(lambda ctx, op, *a, **k: op is MatMul), 0),  # a bool: True is MUST_SAVE
    (_sac(_matmuls(P.MUST_RECOMPUTE)), 2), (_sac(_matmuls(P.PREFER_CPU_OFFLOAD)), 2), (None, 2),
], ids=["list", "must-save", "prefer-save", "bool", "must-recompute", "cpu-offload", "plain-checkpoint"])
def test_saved_matmuls_are_not_run_again_and_gradients_are_the_plain_ones(monkeypatch, context_fn, reruns):
    _, backward = _distnn_grads(checkpointed=False)
    plain = [g.copy() for g in backward()]
    matmuls, tanhs = _counting(monkeypatch, MatMul), _counting(monkeypatch, Tanh)
    y, backward = _distnn_grads(context_fn)
    assert matmuls[0] == 2 and tanhs[0] == 1  # the forward
    grads = backward()
    assert matmuls[0] == 2 + reruns and tanhs[0] == 2  # the recomputation: tanh always runs again
    assert all(np.array_equal(a, b) for a, b in zip(grads, plain))


def test_selective_checkpoint_matches_torch():
    y, backward = _distnn_grads(_sac([MatMul]))
    grads = backward()
    tx, t1, t2 = (torch.tensor(v, requires_grad=True) for v in (X, W1, W2))
    ty = tcp.checkpoint(_f(torch, t1, t2), tx, use_reentrant=False,
                        context_fn=_sac_torch([torch.ops.aten.mm.default]))
    ty.backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    for mine, theirs in zip(grads, (tx, t1, t2)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-11, atol=1e-13)


def _sac_torch(policy, **kw):
    return functools.partial(tcp.create_selective_checkpoint_contexts, policy, **kw)


def test_every_other_op_saved_in_a_mixed_model_gives_the_plain_gradients():
    """Linear, an in-place relu, layer norm, dropout, views, an in-place add, 0-d results: half the ops saved."""
    distnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8, dtype=np.float64), nn.ReLU(inplace=True), nn.Linear(8, 8, dtype=np.float64),
                          nn.Tanh(), nn.LayerNorm(8, dtype=np.float64), nn.Dropout(0.3),
                          nn.Linear(8, 3, dtype=np.float64))

    def f(a):
        h = model(a)
        flat = h.reshape(-1) * 2.0
        flat.add_(1.0)
        return (flat ** 2).sum() + h.t().sum()

    def every_other(ctx, op, *args, **kwargs):
        every_other.n += 1
        return P.MUST_SAVE if every_other.n % 2 == 0 else P.PREFER_RECOMPUTE

    grads = []
    for context_fn in ("plain", _sac(every_other)):
        every_other.n = 0
        x = distnn.tensor(X, requires_grad=True)
        model.zero_grad(set_to_none=True)
        distnn.manual_seed(7)
        y = f(x) if context_fn == "plain" else checkpoint(f, x, use_reentrant=False, context_fn=context_fn)
        y.backward()
        grads.append([x.grad] + [p.grad for p in model.parameters()])
    assert every_other.n > 10
    assert all(np.array_equal(a, b) for a, b in zip(*grads))


def test_the_policy_sees_each_op_its_inputs_and_output_in_the_forward_only():
    seen = []

    def policy(ctx, op, *args, **kwargs):
        seen.append((op, ctx.is_recompute, tuple(ctx.op_output.shape), [tuple(a.shape) for a in args]))
        return P.PREFER_RECOMPUTE

    _, backward = _distnn_grads(_sac(policy))
    ops = [s[0].__name__ for s in seen]
    assert ops == ["MatMul", "Tanh", "MatMul", "Sigmoid", "Sum"]
    assert seen[0][1:] == (False, (4, 6), [(4, 5), (5, 6)])
    backward()
    assert len(seen) == 5  # not asked again when recomputing (PyTorch 2.13's)


@pytest.mark.parametrize("case", ["string-in-list", "function-in-list", "not-callable", "tuple"])
def test_bad_policies_are_refused_as_torch_refuses_them(case):
    mine = {"string-in-list": ["MatMul"], "function-in-list": [distnn.matmul], "not-callable": 3,
            "tuple": (MatMul,)}[case]
    theirs = {"string-in-list": ["mm"], "function-in-list": [torch.matmul], "not-callable": 3,
              "tuple": (torch.ops.aten.mm.default,)}[case]
    with pytest.raises(Exception) as torch_error:
        tcp.create_selective_checkpoint_contexts(theirs)
    with pytest.raises(torch_error.type) as error:
        create_selective_checkpoint_contexts(mine)
    if torch_error.type is ValueError:
        assert "Expected op in `op_list` to be a distnn op" in str(error.value)
    else:
        assert str(error.value) == str(torch_error.value)
    if case == "function-in-list":
        assert "matmul is a function; list the op it records instead" in str(error.value)


def test_a_policy_returning_no_policy_is_refused_by_name():
    plain_apply = distnn.autograd.Function.__dict__["apply"]
    with pytest.raises(TypeError, match=r"returned 'save' \(of type str\) for the op MatMul; it must return a "
                                        r"CheckpointPolicy"):
        _distnn_grads(_sac(lambda ctx, op, *a, **k: "save"))
    # the ops' interception is gone with the failed forward: a plain op runs as usual again
    assert distnn.autograd.Function.__dict__["apply"] is plain_apply
    assert distnn.tensor(np.ones(2), requires_grad=True).sin()._node is not None


def _both(run):
    """``run(lib, tensor, cp, sac)`` with distnn and with torch: (exception type, message) or None each."""
    out = []
    for lib, tensor, cp, sac, mm in ((distnn, distnn.tensor, checkpoint, _sac, MatMul),
                                     (torch, torch.tensor, tcp.checkpoint, _sac_torch, torch.ops.aten.mm.default)):
        try:
            run(lib, tensor, cp, sac, mm)
            out.append(None)
        except RuntimeError as e:
            out.append(str(e))
    return out


def test_a_second_backward_through_saved_ops_is_refused_as_torch():
    def run(lib, tensor, cp, sac, mm):
        x, w = tensor(X, requires_grad=True), tensor(W1, requires_grad=True)
        y = cp(lambda a: lib.tanh(a @ w).sum(), x, use_reentrant=False, context_fn=sac([mm]))
        y.backward(retain_graph=True)
        y.backward()

    mine, theirs = _both(run)
    assert mine == theirs and theirs.startswith("Trying to backward an extra time")


@pytest.mark.parametrize("allow", [False, True])
def test_a_saved_output_changed_in_place_is_refused_unless_allowed(allow):
    grads = []

    def run(lib, tensor, cp, sac, mm):
        x, w = tensor(X, requires_grad=True), tensor(W1, requires_grad=True)

        def f(a):
            h = a @ w
            out = lib.tanh(h).sum()  # (tanh keeps its output: the forward's h is not needed later)
            h.mul_(2.0)
            return out

        cp(f, x, use_reentrant=False, context_fn=sac([mm], allow_cache_entry_mutation=allow)).backward()
        grads.append(x.grad if lib is distnn else x.grad.numpy())

    mine, theirs = _both(run)
    assert mine == theirs == (None if allow else "Tensor cached during selective activation checkpoint has been "
                                                 "mutated")
    if allow:  # the recomputation takes the changed value, as torch's does
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_a_saved_dropout_leaves_the_later_masks_as_in_the_forward():
    x = distnn.tensor(X, requires_grad=True)

    def f(a):
        return F.dropout(F.dropout(a, 0.5, training=True).sin(), 0.5, training=True).sum()

    def first_dropout(ctx, op, *args, **kwargs):
        first_dropout.n += op is Dropout
        return op is Dropout and first_dropout.n == 1

    grads = []
    for context_fn in (None, _sac([Dropout]), _sac(first_dropout)):
        first_dropout.n = 0
        distnn.manual_seed(3)
        x.grad = None
        (f(x) if context_fn is None else checkpoint(f, x, use_reentrant=False, context_fn=context_fn)).backward()
        grads.append(x.grad.copy())
    assert all(np.array_equal(grads[0], g) for g in grads[1:])


def test_saving_the_matmuls_keeps_their_outputs_only():
    depth, rows, width = 8, 256, 32
    ws = [distnn.tensor(R.standard_normal((width, width)) / 6, requires_grad=True) for _ in range(depth)]
    x = distnn.tensor(R.standard_normal((rows, width)), requires_grad=True)

    def f(h):
        for w in ws:
            z = h @ w
            h = distnn.sigmoid(z) * distnn.tanh(z)  # plain: keeps h, sigmoid's and tanh's outputs a layer
        return h

    def kept(run):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            out = run()
            return out, (tracemalloc.get_traced_memory()[0] - before) / (rows * width * 8)
        finally:
            tracemalloc.stop()

    plain, plain_kept = kept(lambda: f(x))
    selective, selective_kept = kept(lambda: checkpoint(f, x, use_reentrant=False, context_fn=_sac([MatMul])))
    _, checkpoint_kept = kept(lambda: checkpoint(f, x, use_reentrant=False))
    assert plain_kept > 2.8 * depth  # (measured: 3.0 activations a layer)
    assert depth < selective_kept < 1.5 * depth  # each matmul's output, not its input (measured: 1.2 a layer)
    assert checkpoint_kept < 1.5  # the output only (measured: 1.1)
    (plain ** 2).sum().backward()
    want = [t.grad.copy() for t in (x, *ws)]
    for t in (x, *ws):
        t.grad = None
    (selective ** 2).sum().backward()
    assert all(np.array_equal(a, t.grad) for a, t in zip(want, (x, *ws)))


@pytest.mark.parametrize("context", ["plain", "selective", "nested"])
def test_second_derivatives_through_a_checkpoint_match_torch_and_the_plain_run(context):
    def run(lib, tensor, cp, sac, mm, checkpointed=True):
        x, w = tensor(X[:, :4].copy(), requires_grad=True), tensor(W1[:4, :4].copy(), requires_grad=True)

        def f(a):
            return (lib.tanh(a @ w) ** 3).sum()

        kw = {"context_fn": sac([mm])} if context == "selective" else {}
        g = (lambda a: cp(f, a, use_reentrant=False)) if context == "nested" else f
        y = cp(g, x, use_reentrant=False, **kw) if checkpointed else f(x)
        gx, gw = lib.autograd.grad(y, [x, w], create_graph=True)
        (gx.sum() + (gw * gw).sum()).backward()
        return [t.detach().numpy() for t in (gx, gw)] + [x.grad.numpy() if lib is torch else x.grad,
                                                        w.grad.numpy() if lib is torch else w.grad]

    plain = run(distnn, distnn.tensor, checkpoint, _sac, MatMul, checkpointed=False)
    mine = run(distnn, distnn.tensor, checkpoint, _sac, MatMul)
    assert all(np.array_equal(a, b) for a, b in zip(mine, plain))
    theirs = run(torch, torch.tensor, tcp.checkpoint, _sac_torch, torch.ops.aten.mm.default,
                 checkpointed=context != "selective")  # (torch refuses create_graph through selective ones)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


def test_create_graph_through_the_reentrant_variant_gives_first_derivatives_as_torch():
    def first(lib, tensor, cp):
        x = tensor(X, requires_grad=True)
        cp(lambda a: (a ** 3).sum(), x, use_reentrant=True).backward(create_graph=True)
        return x.grad if lib is distnn else x.grad.detach().numpy()

    np.testing.assert_allclose(first(distnn, distnn.tensor, checkpoint), 3 * X ** 2, rtol=1e-15)
    np.testing.assert_allclose(first(torch, torch.tensor, tcp.checkpoint), 3 * X ** 2, rtol=1e-15)

    def grad(lib, tensor, cp, sac, mm):
        x = tensor(X, requires_grad=True)
        lib.autograd.grad(cp(lambda a: (a ** 3).sum(), x, use_reentrant=True), [x], create_graph=True)

    mine, theirs = _both(grad)
    assert mine == theirs and "use_reentrant=True" in mine


@pytest.mark.parametrize("use_reentrant", [False, True])
@pytest.mark.parametrize("leaf", [True, False])
def test_an_argument_changed_in_place_after_the_forward_is_refused_as_torch(use_reentrant, leaf):
    def run(lib, tensor, cp, sac, mm):
        x0 = tensor(X, requires_grad=True)
        x = x0 if leaf else x0 * 1.0
        w = tensor(W1, requires_grad=True)
        y = cp(lambda a: lib.tanh(a @ w).sum(), x, use_reentrant=use_reentrant)
        with lib.no_grad():
            x.mul_(2.0)
        y.backward()

    mine, theirs = _both(run)
    assert "modified by an inplace operation" in theirs
    assert mine is not None and "changed in place after the forward pass" in mine


def test_early_stop_switch_is_accepted_and_changes_no_gradient():
    _, backward = _distnn_grads(checkpointed=False)
    plain = [g.copy() for g in backward()]
    with set_checkpoint_early_stop(False):
        _, backward = _distnn_grads(_sac([MatMul]))
    assert all(np.array_equal(a, b) for a, b in zip(backward(), plain))
