"""Early stop of the non-reentrant checkpoint against torch.utils.checkpoint (torch 2.13): where distnn departed.

Each region counts how often the code after its last op that saves something runs: distnn's count must be torch's
(torch stops its recomputation once it has saved as many tensors as the forward did). The ops here once departed:
an op whose saved tensor is 0-d (``exp`` of a full sum: distnn kept a numpy scalar, which early stop took for
metadata), a list index (torch saves it as an index tensor), ``tril``/``triu``/``diagonal``/``trace``/``lerp`` with
a number weight (torch saves nothing; distnn kept a mask, the view object, the operands), and a region whose last op
saves something (distnn ran the whole function again). Gradients: float64, those of the plain code (bitwise) and
torch's (rtol 1e-12). Then the refusals of a recomputation that differs from the forward: torch's CheckpointError
and first line, also with ``determinism_check="none"`` where torch's refuses; and the departures that remain
(distnn.utils.checkpoint's docstring).
"""
import numpy as np
import pytest

import distnn
import distnn.functional as DF
from distnn.utils.checkpoint import CheckpointError, checkpoint

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402
from torch.utils import checkpoint as tcp  # noqa: E402

LIBS = {"distnn": (distnn, DF, checkpoint), "torch": (torch, TF, tcp.checkpoint)}
_rng = np.random.default_rng(3)
X, W, M = _rng.standard_normal((4, 6)), _rng.standard_normal((6, 6)), _rng.random((4, 6)) > 0.5

TAILS = {  # what follows tanh(x @ w) and the counter
    "exp of a full sum": lambda L, F, h: h.sum().exp(),
    "sigmoid of a full sum": lambda L, F, h: h.sum().sigmoid(),
    "sqrt of a mean": lambda L, F, h: (h.mean() + 5.0).sqrt(),
    "tanh of a full sum": lambda L, F, h: h.sum().tanh(),
    "list index": lambda L, F, h: h[:, [0, 2]].sum(),
    "list index first": lambda L, F, h: h[[0, 2]].sum(),
    "bool index": lambda L, F, h: h[L.tensor(M)].sum(),
    "int index": lambda L, F, h: h[0].sum(),
    "tril": lambda L, F, h: h.tril().sum(),
    "triu": lambda L, F, h: h.triu(1).sum(),
    "diagonal": lambda L, F, h: h[:4, :4].diagonal().sum(),
    "trace": lambda L, F, h: h[:4, :4].trace(),
    "lerp number": lambda L, F, h: L.lerp(h, L.tensor(X), 0.3).sum(),
    "lerp tensor": lambda L, F, h: L.lerp(h, L.tensor(X), L.tensor(M * 0.5)).sum(),
    "nothing after": lambda L, F, h: h,
    "an input returned too": lambda L, F, h: (h, L.tensor(X)),
}


def _run(name, tail, early_stop, checkpointed=True):
    """(times the code after tanh ran, x's and w's gradients)."""
    lib, F, cp = LIBS[name]
    calls = [0]
    x, w = lib.tensor(X, requires_grad=True), lib.tensor(W, requires_grad=True)

    def region(x, w):
        h = lib.tanh(x @ w)
        calls[0] += 1
        return TAILS[tail](lib, F, h)

    out = cp(region, x, w, use_reentrant=False, early_stop=early_stop) if checkpointed else region(x, w)
    (out[0] if isinstance(out, tuple) else out).sum().backward()
    return calls[0], [t.grad.detach().numpy() if name == "torch" else np.asarray(t.grad) for t in (x, w)]


def _assert_grads(mine, plain, theirs):
    for a, b, c in zip(mine, plain, theirs):
        assert np.array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("early_stop", [True, False])
@pytest.mark.parametrize("tail", sorted(TAILS))
def test_the_code_after_the_last_op_that_saves_something_runs_again_as_often_as_torchs(tail, early_stop):
    mine, theirs = _run("distnn", tail, early_stop), _run("torch", tail, early_stop)
    assert mine[0] == theirs[0]
    _assert_grads(mine[1], _run("distnn", tail, early_stop, checkpointed=False)[1], theirs[1])


def test_the_ops_that_save_nothing_still_differentiate_twice_as_torchs():
    """tril/triu make their mask again, lerp with a number weight keeps no operand: second derivatives."""
    ops = {"tril": lambda L, t: t.tril(-1), "triu": lambda L, t: t.triu(1),
           "lerp": lambda L, t: L.lerp(t, L.tensor(X), 0.3)}
    for op in ops.values():
        grads = []
        for lib in (distnn, torch):
            x = lib.tensor(X, requires_grad=True)
            y = op(lib, x)
            g, = lib.autograd.grad((y * y * y).sum(), [x], create_graph=True)
            (g * g).sum().backward()
            grads.append((x.grad.detach().numpy() if lib is torch else np.asarray(x.grad)))
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-14)


RECOMPUTED = {  # (forward, recomputation) of the region after x @ w
    "fewer saved": (lambda L, h: L.tanh(h).sum(), lambda L, h: h.sum()),
    "more saved": (lambda L, h: L.tanh(h).sum(), lambda L, h: L.tanh(L.sin(h)).sum()),
    "more saved after the last": (lambda L, h: L.tanh(h).sum(), lambda L, h: L.sin(L.tanh(h)).sum()),
    "another shape": (lambda L, h: L.tanh(h).sum(), lambda L, h: L.tanh(h[:2]).sum()),
    "another dtype": (lambda L, h: L.tanh(h).sum(), lambda L, h: L.tanh(h.float()).sum()),
}


def _recomputed(name, case, early_stop, check):
    """What backward gives when the recomputation runs other code: ("ok", w's gradient) or (error type, text)."""
    lib, _, cp = LIBS[name]
    first = [True]

    def region(x, w):
        forward, recomputation = RECOMPUTED[case]
        out = (forward if first[0] else recomputation)(lib, x @ w)
        first[0] = False
        return out

    x, w = lib.tensor(X, requires_grad=True), lib.tensor(W, requires_grad=True)
    try:
        cp(region, x, w, use_reentrant=False, early_stop=early_stop, determinism_check=check).backward()
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return type(e).__name__, str(e)
    return "ok", w.grad.detach().numpy() if name == "torch" else np.asarray(w.grad)


CASES = [  # (case, early_stop, determinism_check): where distnn now answers as torch does
    ("fewer saved", False, "default"), ("fewer saved", False, "none"),
    ("more saved", False, "default"), ("more saved", False, "none"),
    ("more saved after the last", True, "default"), ("more saved after the last", True, "none"),
    ("more saved after the last", False, "default"), ("more saved after the last", False, "none"),
    ("another shape", True, "default"), ("another shape", False, "default"),
    ("another dtype", True, "default"), ("another dtype", False, "default"), ("another dtype", False, "none"),
]


@pytest.mark.parametrize("case,early_stop,check", CASES)
def test_a_recomputation_that_differs_is_refused_where_torchs_is(case, early_stop, check):
    mine, theirs = _recomputed("distnn", case, early_stop, check), _recomputed("torch", case, early_stop, check)
    assert mine[0] == theirs[0]
    if mine[0] == "ok":  # (a float32 recomputation: torch's forward graph and distnn's recomputed one round apart)
        tol = 1e-5 if case == "another dtype" else 1e-12
        np.testing.assert_allclose(mine[1], theirs[1], rtol=tol, atol=tol)
    else:  # (the first line, each library's name; distnn counts the ops that keep something, torch the tensors)
        assert mine[0] == "CheckpointError"
        first = theirs[1].split("\n")[0].split(":", 1)[1].split("Number of")[0]
        assert mine[1].startswith("distnn.utils.checkpoint:" + first), (mine[1], theirs[1])


@pytest.mark.parametrize("early_stop", [True, False])
def test_more_ops_recomputed_after_the_forwards_last_give_torchs_gradients_with_early_stop(early_stop):
    """sin then cos recomputed where the forward ran sin: early stop stops after sin (no error, sin's gradients),
    as torch's; without it both refuse: 'trying to save more tensors'."""
    results = []
    for name in ("distnn", "torch"):
        lib, _, cp = LIBS[name]
        runs = [0]

        def f(a):
            runs[0] += 1
            return a.sin().cos() if runs[0] > 1 else a.sin()

        x = lib.tensor(X, requires_grad=True)
        try:
            cp(f, x, use_reentrant=False, early_stop=early_stop, determinism_check="none").sum().backward()
            results.append(x.grad.detach().numpy() if name == "torch" else np.asarray(x.grad))
        except (CheckpointError, tcp.CheckpointError) as e:
            results.append(str(e).split(":", 1)[1].split("\n")[0])
    if early_stop:
        np.testing.assert_allclose(results[0], results[1], rtol=1e-12)
    else:
        assert results[0] == results[1] == (" trying to save more tensors during recomputation than during the "
                                            "original forward pass.")


DEPARTURES = [  # distnn refuses where torch computes with its forward's graph on the recomputed values
    ("more saved", True, "default"), ("more saved", True, "none"), ("another dtype", True, "none"),
    ("fewer saved", True, "none"),
]


@pytest.mark.parametrize("case,early_stop,check", DEPARTURES)
def test_a_recomputation_that_stopped_early_after_other_ops_is_refused_a_documented_departure(case, early_stop, check):
    """distnn joins the forward's tail to the recomputed nodes by position, so those must be the forward's ops
    (whatever determinism_check); torch's keeps its whole forward graph and takes any tensors of the right count."""
    mine = _recomputed("distnn", case, early_stop, check)
    assert mine[0] == "CheckpointError"
    assert "stopped early, did not run the operations the original forward did" in mine[1]
    assert _recomputed("torch", case, early_stop, check)[0] != "CheckpointError" or case == "fewer saved"
