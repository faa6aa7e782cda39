"""Early stop of the non-reentrant checkpoint's recomputation, against torch.utils.checkpoint (torch 2.13).

Each region calls a counter where its tail starts (after its last op that saves something for backward), so the
count says whether backward ran the tail again: distnn's counts must be torch's for the same region and flags
(``early_stop=``, ``set_checkpoint_early_stop``, the reentrant variant, which ignores both), and the gradients
those of the same code without checkpointing (bitwise) and torch's (to rounding).
"""
import functools

import numpy as np
import pytest

import distnn
import distnn.nn as nn
from distnn.utils.checkpoint import (CheckpointError, checkpoint, create_selective_checkpoint_contexts,
                                     set_checkpoint_early_stop)

torch = pytest.importorskip("torch")
from torch.utils import checkpoint as tcp  # noqa: E402

LIBS = {"distnn": (distnn, distnn.tensor, checkpoint, set_checkpoint_early_stop),
        "torch": (torch, torch.tensor, tcp.checkpoint, tcp.set_checkpoint_early_stop)}
_rng = np.random.default_rng(0)
X, W, V = _rng.standard_normal((4, 6)), _rng.standard_normal((6, 6)), _rng.standard_normal((6, 3))


def _numpy(t):
    return None if t is None else t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _tail_region(lib, count):
    """tanh saves its output; what follows (add, scalar mul, reshape, sum) saves nothing, in torch and distnn."""
    def region(x, w):
        h = lib.tanh(x @ w)
        count()
        return ((h + 1.0) * 2.0).reshape(-1).sum()
    return region


def _run(name, make_region=_tail_region, checkpointed=True, use=lambda out: out, **kwargs):
    """(times the region's tail ran, the gradients of x and w) with library ``name``."""
    lib, tensor, cp, _ = LIBS[name]
    calls = [0]

    def count():
        calls[0] += 1

    x, w = tensor(X, requires_grad=True), tensor(W, requires_grad=True)
    region = make_region(lib, count)
    out = cp(region, x, w, **kwargs) if checkpointed else region(x, w)
    use(out).backward()
    return calls[0], [_numpy(x.grad), _numpy(w.grad)]


def _assert_grads(mine, plain, theirs):
    for a, b, c in zip(mine, plain, theirs):
        assert np.array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("early_stop", [True, False])
def test_the_tail_is_recomputed_only_without_early_stop_as_torch(early_stop):
    calls, grads = _run("distnn", use_reentrant=False, early_stop=early_stop)
    their_calls, their_grads = _run("torch", use_reentrant=False, early_stop=early_stop)
    assert (calls, their_calls) == ((1, 1) if early_stop else (2, 2))
    _assert_grads(grads, _run("distnn", checkpointed=False)[1], their_grads)


def test_early_stop_is_on_by_default_as_torch():
    assert _run("distnn", use_reentrant=False)[0] == _run("torch", use_reentrant=False)[0] == 1


@pytest.mark.parametrize("block,argument", [(False, True), (True, False), (False, False), (True, True)])
def test_set_checkpoint_early_stop_overrides_the_argument_and_is_read_in_the_forward(block, argument):
    counts = []
    for name in ("distnn", "torch"):
        lib, tensor, cp, early_stop_block = LIBS[name]
        calls = [0]
        x, w = tensor(X, requires_grad=True), tensor(W, requires_grad=True)
        with early_stop_block(block):
            out = cp(_tail_region(lib, lambda: calls.__setitem__(0, calls[0] + 1)), x, w, use_reentrant=False,
                     early_stop=argument)
        with early_stop_block(not block):  # (what is open during backward does not matter)
            out.backward()
        counts.append(calls[0])
    assert counts[0] == counts[1] == (1 if block else 2)


def test_the_reentrant_variant_always_recomputes_everything_as_torch():
    for block in (True, False):
        counts = []
        for name in ("distnn", "torch"):
            with LIBS[name][3](block):
                counts.append(_run(name, use_reentrant=True, early_stop=True)[0])
        assert counts == [2, 2]


_TAILS = {  # ops that save nothing in torch and keep nothing in distnn
    "cat": lambda lib, h: lib.cat([h, h * 2.0], 0), "stack": lambda lib, h: lib.stack([h, h]),
    "expand": lambda lib, h: h[:1].expand(3, 6), "permute": lambda lib, h: h.permute(1, 0).flatten(),
    "cumsum": lambda lib, h: h.cumsum(1), "flip": lambda lib, h: h.flip(0).roll(1, 1),
    "repeat": lambda lib, h: h.repeat(2, 1), "to": lambda lib, h: h.to(lib.float32),
    "split": lambda lib, h: h.split(2, 0)[1] - 1.0, "neg_div": lambda lib, h: -h / 3.0,
}


@pytest.mark.parametrize("tail", sorted(_TAILS))
def test_ops_that_save_nothing_at_the_end_are_not_recomputed_as_torch(tail):
    def make(lib, count):
        def region(x, w):
            h = lib.tanh(x @ w)
            count()
            return _TAILS[tail](lib, h).sum()
        return region

    for early_stop in (True, False):
        mine = _run("distnn", make, use_reentrant=False, early_stop=early_stop)
        theirs = _run("torch", make, use_reentrant=False, early_stop=early_stop)
        assert mine[0] == theirs[0] == (1 if early_stop else 2)
        plain = _run("distnn", make, checkpointed=False)
        for a, b, c in zip(mine[1], plain[1], theirs[1]):
            assert np.array_equal(a, b)
            np.testing.assert_allclose(a, c, rtol=1e-6 if tail == "to" else 1e-12, atol=1e-6 if tail == "to" else 1e-14)


def _two_outputs(lib, count):
    """Output 0 is tanh's (saved), output 1 comes from x alone through ops that save nothing."""
    def region(x, w):
        h = lib.tanh(x @ w)
        count()
        return h * 3.0, (x + 1.0).sum()
    return region


def _an_output_of_the_recomputed_part(lib, count):
    """Output 0 is tanh's own (recomputed); output 1 reaches, through the tail, an op before tanh that saves
    nothing (``x * 2.0``)."""
    def region(x, w):
        a = x * 2.0
        h = lib.tanh(a @ w)
        count()
        return h, (a + 1.0).sum()
    return region


def _an_output_before_the_saved_ones(lib, count):
    """Output 1 (``x * 2.0``, which saves nothing) is recorded before the ops that save something; output 0 is the
    last of them, so there is no tail; a discarded computation follows."""
    def region(x, w):
        a = x * 2.0
        h = lib.tanh(a @ w)
        count()
        (h * 5.0).sum()  # (recorded, unused: no output reaches it)
        return h, a
    return region


@pytest.mark.parametrize("early_stop", [True, False])
@pytest.mark.parametrize("used", [(0,), (1,), (0, 1)])
@pytest.mark.parametrize("make", [_two_outputs, _an_output_of_the_recomputed_part, _an_output_before_the_saved_ones])
def test_a_backward_through_some_outputs_recomputes_as_torch(make, used, early_stop):
    """Output 1 alone reaches nothing saved: torch unpacks nothing and recomputes nothing, early stop or not."""
    def use(out):
        return sum(out[i].sum() for i in used)

    mine = _run("distnn", make, use=use, use_reentrant=False, early_stop=early_stop)
    theirs = _run("torch", make, use=use, use_reentrant=False, early_stop=early_stop)
    assert mine[0] == theirs[0]
    assert mine[0] == (1 if used == (1,) or early_stop else 2)
    plain = _run("distnn", make, checkpointed=False, use=use)
    for a, b, c in zip(mine[1], plain[1], theirs[1]):
        if c is None:  # (w gets no gradient through output 1: None in both)
            assert a is None and b is None
        else:
            _assert_grads([a], [b], [c])


def _saves_nothing(lib, count):
    def region(x, w):
        count()
        return (x.reshape(-1) * 2.0 + w.sum()).sum()
    return region


@pytest.mark.parametrize("early_stop", [True, False])
def test_a_region_that_saves_nothing_is_not_recomputed_as_torch(early_stop):
    mine = _run("distnn", _saves_nothing, use_reentrant=False, early_stop=early_stop)
    theirs = _run("torch", _saves_nothing, use_reentrant=False, early_stop=early_stop)
    assert mine[0] == theirs[0] == 1
    _assert_grads(mine[1], _run("distnn", _saves_nothing, checkpointed=False)[1], theirs[1])


def _side_effects_in_the_middle(lib, count):
    """Ops that save something after the counter: the counter is not in the tail."""
    def region(x, w):
        h = x @ w
        count()
        return lib.tanh(h).sum() + 1.0
    return region


@pytest.mark.parametrize("early_stop", [True, False])
def test_a_side_effect_before_the_last_op_that_saves_something_is_redone_as_torch(early_stop):
    mine = _run("distnn", _side_effects_in_the_middle, use_reentrant=False, early_stop=early_stop)
    theirs = _run("torch", _side_effects_in_the_middle, use_reentrant=False, early_stop=early_stop)
    assert mine[0] == theirs[0] == 2


def _nested(lib, count):
    """An inner checkpoint with its own tail, then ops that save something, then the outer tail."""
    cp = LIBS["distnn" if lib is distnn else "torch"][2]

    def inner(x, w):
        h = lib.tanh(x @ w)
        count()
        return h * 2.0 - 1.0

    def region(x, w):
        h = cp(inner, x, w, use_reentrant=False)
        g = lib.sin(h @ w)
        count()
        return (g + h).sum()
    return region


def _nested_last(lib, count):
    """The inner checkpoint is the outer region's last op that saves something; the outer tail follows."""
    cp = LIBS["distnn" if lib is distnn else "torch"][2]

    def inner(x, w):
        h = lib.tanh(x @ w)
        count()
        return h + 1.0

    def region(x, w):
        h = cp(inner, x * 2.0, w, use_reentrant=False)
        count()
        return (h * 3.0).sum()
    return region


@pytest.mark.parametrize("early_stop", [True, False])
@pytest.mark.parametrize("make", [_nested, _nested_last])
def test_nested_checkpoints_stop_early_as_torch(make, early_stop):
    """One departure: where the inner checkpoint is the outer region's last op that saves something, torch's outer
    recomputation stops once the inner one has saved its arguments, before running its function; distnn's inner
    region is one node made after its function runs, so the outer recomputation runs the inner function once
    (not its backward's recomputation, which stops early): one call more."""
    with LIBS["distnn"][3](early_stop):
        mine = _run("distnn", make, use_reentrant=False)
    with LIBS["torch"][3](early_stop):
        theirs = _run("torch", make, use_reentrant=False)
    assert mine[0] == theirs[0] + (make is _nested_last and early_stop)
    _assert_grads(mine[1], _run("distnn", make, checkpointed=False)[1], theirs[1])


def test_dropout_in_the_region_is_replayed_with_early_stop():
    """The masks of the recomputed part are the forward's (the plain run's gradients); the tail is not rerun."""
    distnn.manual_seed(7)
    drop = nn.Dropout(0.5)

    def make(lib, count):
        def region(x, w):
            h = lib.tanh(drop(x @ w))
            count()
            return (h * 2.0).sum()
        return region

    distnn.manual_seed(11)
    plain = _run("distnn", make, checkpointed=False)
    distnn.manual_seed(11)
    calls, grads = _run("distnn", make, use_reentrant=False)
    assert calls == 1
    assert all(np.array_equal(a, b) for a, b in zip(grads, plain[1]))
    assert not np.array_equal(plain[1][1], _run("distnn", checkpointed=False)[1][1])  # (dropout did drop)


def test_selective_checkpointing_with_early_stop_gives_the_plain_gradients_and_torchs_counts():
    from distnn.functional.matrix_multiply import MatMul

    ops = {"distnn": [MatMul], "torch": [torch.ops.aten.mm.default]}
    results = {}
    for name in ("distnn", "torch"):
        context_fn = functools.partial(create_selective_checkpoint_contexts if name == "distnn"
                                       else tcp.create_selective_checkpoint_contexts, ops[name])
        results[name] = _run(name, use_reentrant=False, context_fn=context_fn)
    assert results["distnn"][0] == results["torch"][0] == 1
    _assert_grads(results["distnn"][1], _run("distnn", checkpointed=False)[1], results["torch"][1])


def _second_derivatives(name, checkpointed, early_stop=True):
    lib, tensor, cp, _ = LIBS[name]
    calls = [0]
    x, w = tensor(X, requires_grad=True), tensor(W, requires_grad=True)
    region = _tail_region(lib, lambda: calls.__setitem__(0, calls[0] + 1))
    y = cp(region, x, w, use_reentrant=False, early_stop=early_stop) if checkpointed else region(x, w)
    gx, gw = lib.autograd.grad(y, [x, w], create_graph=True)
    ((gx * gx).sum() + (gw * gw).sum()).backward()
    return calls[0], [_numpy(x.grad), _numpy(w.grad)]


@pytest.mark.parametrize("early_stop", [True, False])
def test_create_graph_through_a_checkpoint_that_stopped_early(early_stop):
    """The tail is not rerun by either pass with early stop. Without it, torch reruns the whole function in the
    second pass as well (its gradients' graph unpacks the saved tensors again); distnn's gradients' graph is the
    recomputed region itself, kept alive, so only the first pass recomputes."""
    mine = _second_derivatives("distnn", True, early_stop)
    theirs = _second_derivatives("torch", True, early_stop)
    assert (mine[0], theirs[0]) == ((1, 1) if early_stop else (2, 3))
    _assert_grads(mine[1], _second_derivatives("distnn", False)[1], theirs[1])


@pytest.mark.parametrize("early_stop", [True, False])
def test_each_backward_with_retain_graph_stops_early_again(early_stop):
    def twice(out):
        out.backward(retain_graph=True)
        return out * 1.0

    mine = _run("distnn", use=twice, use_reentrant=False, early_stop=early_stop)
    theirs = _run("torch", use=twice, use_reentrant=False, early_stop=early_stop)
    assert mine[0] == theirs[0] == (1 if early_stop else 3)
    _assert_grads(mine[1], _run("distnn", checkpointed=False, use=twice)[1], theirs[1])


def _in_place_tail(lib, count):
    def region(x, w):
        h = lib.tanh(x @ w)
        count()
        y = h * 1.0
        y.add_(1.0)
        y.mul_(0.5)
        return y.t().sum(0)
    return region


def test_in_place_ops_and_views_in_the_tail():
    mine = _run("distnn", _in_place_tail, use=lambda o: (o * o).sum(), use_reentrant=False)
    theirs = _run("torch", _in_place_tail, use=lambda o: (o * o).sum(), use_reentrant=False)
    assert mine[0] == theirs[0] == 1
    _assert_grads(mine[1], _run("distnn", _in_place_tail, checkpointed=False, use=lambda o: (o * o).sum())[1],
                  theirs[1])


def test_a_recomputation_that_runs_other_ops_before_the_stop_is_refused():
    """The tail is joined to the recomputed nodes by position, so those must be the forward's ops."""
    state = {"forward": True}

    def make(lib, count):
        def region(x, w):
            h = lib.tanh(x @ w) if state["forward"] else lib.sin(x @ w)
            state["forward"] = False
            return h.sum() + 1.0
        return region

    with pytest.raises(CheckpointError, match="stopped early"):
        _run("distnn", make, use_reentrant=False, determinism_check="none")
