"""ctc_loss / nn.CTCLoss against PyTorch (the oracle): losses and gradients of the log-probabilities in
float64 (tight) and float32 (loose), every reduction, padded and concatenated targets, zero_infinity,
infeasible alignments (inf loss, NaN gradient), repeated labels that need a blank between them, empty
targets, input lengths of 0, a blank other than 0, unbatched input; the refusals; a finite-difference
check through log_softmax (where PyTorch's gradient is the true one)."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.testing import check_grad

REDUCTIONS = ["mean", "sum", "none"]
TOL = {np.float64: (1e-11, 1e-12), np.float32: (2e-5, 2e-6)}

# (T, C, blank, targets per sample, input lengths): repeats (1, 1 needs 3 frames), a repeat at the end,
# an empty target, an input length of 0 with an empty target (loss -0) and with a non-empty one (inf), a
# target too long for its frames (inf), one that just fits (every frame fixed), labels equal to the blank
CASES = {
    "plain": (7, 5, 0, [[1, 2, 3], [4, 4], [2], [1, 1, 1]], [7, 6, 7, 5]),
    "repeats_just_fit": (6, 4, 0, [[1, 1, 2, 2], [3, 3, 3], [2, 1, 2]], [6, 5, 3]),
    "empty_and_no_frames": (5, 4, 0, [[], [1, 2], [], [3]], [5, 0, 0, 4]),
    "infeasible": (5, 4, 0, [[1, 1, 1], [2, 3], [1, 2, 3, 1]], [4, 5, 3]),
    "blank_last": (6, 5, 4, [[0, 1, 3], [2, 2], [0]], [6, 6, 2]),
    "blank_in_target": (6, 4, 1, [[1, 2], [3, 1, 1]], [6, 6]),
}


def _log_probs(rng, T, N, C, dtype):
    z = rng.standard_normal((T, N, C)) * 2
    return (z - np.log(np.exp(z).sum(-1, keepdims=True))).astype(dtype)


def _targets(seqs, concat, rng):
    """The targets padded (N, S + 1, junk past each length) or concatenated, and their lengths."""
    lengths = [len(s) for s in seqs]
    if concat:
        return np.array([v for s in seqs for v in s], dtype=np.int64), lengths
    pad = np.full((len(seqs), max(lengths) + 1), 0, dtype=np.int64)
    for i, s in enumerate(seqs):
        pad[i, :len(s)] = s
        pad[i, len(s):] = rng.integers(0, 3, max(lengths) + 1 - len(s))  # junk that must not be read
    return pad, lengths


def _both(torch, x, tg, il, tl, module, **kw):
    xd = distnn.tensor(x.copy(), requires_grad=True)
    xt = torch.tensor(x.copy(), requires_grad=True)
    if module:
        ld = nn.CTCLoss(**kw)(xd, tg, il, tl)
        lt = torch.nn.CTCLoss(**kw)(xt, torch.from_numpy(tg), il, tl)
    else:
        ld = F.ctc_loss(xd, tg, il, tl, **kw)
        lt = torch.nn.functional.ctc_loss(xt, torch.from_numpy(tg), il, tl, **kw)
    return xd, xt, ld, lt


def _compare(a, b, dtype, what):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_ctc_loss_matches_torch(torch, case, zero_infinity, reduction, dtype):
    T, C, blank, seqs, il = CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    x = _log_probs(rng, T, len(seqs), C, dtype)
    for concat in (False, True):
        tg, tl = _targets(seqs, concat, rng)
        xd, xt, ld, lt = _both(torch, x, tg, il, tl, concat, blank=blank, reduction=reduction,
                               zero_infinity=zero_infinity)
        assert ld.dtype == dtype
        _compare(ld.numpy(), lt.detach().numpy(), dtype, f"{case} loss (concat={concat})")
        g = rng.standard_normal(tuple(lt.shape))
        lt.backward(torch.tensor(g, dtype=lt.dtype))
        ld.backward(np.asarray(g, dtype=dtype))
        assert xd.grad.dtype == dtype
        _compare(xd.grad, xt.grad.numpy(), dtype, f"{case} gradient (concat={concat})")


def test_infeasible_alignment_is_inf_with_nan_gradient_unless_zero_infinity(torch):
    """Three frames cannot hold (1, 1, 1) (it needs 5: blanks between the repeats), nor a 4-label target."""
    rng = np.random.default_rng(0)
    x = _log_probs(rng, 3, 3, 4, np.float64)
    tg, tl, il = np.array([[1, 1, 1], [1, 2, 3], [1, 2, 0]]), [3, 3, 2], [3, 3, 3]
    loss = F.ctc_loss(distnn.tensor(x), tg, il, tl, reduction="none").numpy()
    assert loss[0] == np.inf and np.isfinite(loss[1:]).all()
    xd, xt, ld, lt = _both(torch, x, tg, il, tl, False, reduction="sum")
    ld.backward()
    lt.backward()
    assert np.isnan(xd.grad[:, 0]).all() and np.isfinite(xd.grad[:, 1:]).all()  # PyTorch's NaN, the sample's only
    _compare(xd.grad, xt.grad.numpy(), np.float64, "gradient")
    xd, xt, ld, lt = _both(torch, x, tg, il, tl, True, reduction="mean", zero_infinity=True)
    ld.backward()
    assert (xd.grad[:, 0] == 0).all() and np.isfinite(ld.numpy())
    lt.backward()
    _compare(xd.grad, xt.grad.numpy(), np.float64, "gradient with zero_infinity")


def test_a_repeat_needs_a_blank_between():
    """With 2 frames and two classes, target (1, 1) has no alignment; (1, 2) has exactly one: 1 then 2."""
    x = np.log(np.array([[[0.2, 0.5, 0.3]], [[0.1, 0.6, 0.3]]]))
    assert F.ctc_loss(distnn.tensor(x), [[1, 1]], [2], [2], reduction="sum").item() == np.inf
    np.testing.assert_allclose(F.ctc_loss(distnn.tensor(x), [[1, 2]], [2], [2], reduction="sum").item(),
                               -np.log(0.5 * 0.3), rtol=1e-14)
    # one label over 2 frames: (1, 1), (blank, 1), (1, blank)
    np.testing.assert_allclose(F.ctc_loss(distnn.tensor(x), [[1]], [2], [1], reduction="sum").item(),
                               -np.log(0.5 * 0.6 + 0.2 * 0.6 + 0.5 * 0.1), rtol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_unbatched_and_tensor_lengths_match_torch(torch, reduction):
    rng = np.random.default_rng(3)
    x = _log_probs(rng, 6, 1, 5, np.float64)[:, 0]
    for tg, il, tl in [(np.array([1, 3, 3]), [6], [3]), (np.array([[2, 4]]), np.array(5), np.array(2)),
                       (np.array([1, 3, 3]), distnn.tensor(np.array([6])), distnn.tensor(np.array([3])))]:
        xd, xt = distnn.tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
        ld = F.ctc_loss(xd, tg, il, tl, reduction=reduction)
        to_t = (lambda v: torch.from_numpy(np.asarray(v.data if isinstance(v, distnn.Tensor) else v)))
        lt = torch.nn.functional.ctc_loss(xt, torch.from_numpy(tg), to_t(il), to_t(tl), reduction=reduction)
        assert ld.shape == tuple(lt.shape) == ()
        _compare(ld.numpy(), lt.detach().numpy(), np.float64, "loss")
        ld.backward()
        lt.backward()
        _compare(xd.grad, xt.grad.numpy(), np.float64, "gradient")


def test_gradient_through_log_softmax_is_the_finite_difference():
    """After a log_softmax, PyTorch's (and distnn's) gradient is the loss's own: checked numerically."""
    z = np.random.default_rng(5).standard_normal((6, 3, 4))
    tg, il, tl = np.array([[1, 1, 2], [3, 0, 0], [2, 3, 0]]), [6, 5, 6], [3, 1, 2]
    for reduction in REDUCTIONS:
        check_grad(lambda a: F.ctc_loss(F.log_softmax(a, dim=-1), tg, il, tl, reduction=reduction), z)


def test_float_targets_are_truncated_as_in_torch(torch):
    x = _log_probs(np.random.default_rng(1), 4, 2, 4, np.float64)
    got = F.ctc_loss(distnn.tensor(x), np.array([[1.0, 2.9], [3.2, 0.0]]), [4, 4], [2, 1]).item()
    want = torch.nn.functional.ctc_loss(torch.from_numpy(x), torch.tensor([[1.0, 2.9], [3.2, 0.0]]), [4, 4], [2, 1])
    np.testing.assert_allclose(got, want.item(), rtol=1e-13)


_TG = np.array([[1, 2, 2], [1, 0, 0]])
# (what changes from a valid call, the error, its message): PyTorch's checks (its RuntimeErrors are ValueErrors
# here), and labels out of range, which PyTorch does not check (it reads past its memory)
REFUSALS = [
    (dict(blank=4), ValueError, "blank must be in label range"),
    (dict(blank=-1), ValueError, "blank must be in label range"),
    (dict(input_lengths=[5]), ValueError, "input_lengths must be of size batch_size"),
    (dict(target_lengths=[3]), ValueError, "target_lengths must be of size batch_size"),
    (dict(input_lengths=[5, 6]), ValueError, "input_lengths must be at most"),
    (dict(input_lengths=[5, -1]), ValueError, "input_lengths must be at least 0"),
    (dict(target_lengths=[-1, 1]), ValueError, "target_lengths must be at least 0"),
    (dict(target_lengths=[4, 1]), ValueError, "targets must be"),
    (dict(targets=np.array([1, 2, 2, 1]), target_lengths=[3, 2]), ValueError, "sum\\(target_lengths\\) = 5"),
    (dict(targets=_TG.reshape(2, 3, 1)), ValueError, "1-D .* or 2-D"),
    (dict(targets=_TG + 3), ValueError, "target labels must be in \\[0, 3\\]"),
    (dict(input_lengths=np.array([5.0, 5.0])), TypeError, "input_lengths must be integral"),
    (dict(reduction="foo"), ValueError, "reduction"),
    (dict(log_probs=np.zeros((5, 2, 3, 4))), ValueError, "3-D \\(T, N, C\\) or 2-D"),
    (dict(log_probs=np.zeros((5, 0, 4))), ValueError, "must not be empty"),
    (dict(log_probs=np.zeros((5, 2, 4), dtype=np.int64)), TypeError, "floating"),
]


@pytest.mark.parametrize("change,err,match", REFUSALS, ids=[m for _, _, m in REFUSALS])
def test_refusals_match_torch(change, err, match):
    kw = dict(log_probs=_log_probs(np.random.default_rng(2), 5, 2, 4, np.float64), targets=_TG,
              input_lengths=[5, 5], target_lengths=[3, 1])
    kw.update(change)
    kw["log_probs"] = distnn.tensor(kw["log_probs"])
    with pytest.raises(err, match=match):
        F.ctc_loss(**kw)


def test_module_refuses_a_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        nn.CTCLoss(reduction="avg")


def test_module_repr_and_empty_state():
    assert repr(nn.CTCLoss()) == "CTCLoss()"
    assert repr(nn.CTCLoss(blank=3, reduction="sum", zero_infinity=True)) == "CTCLoss(reduction='sum')"
    assert nn.CTCLoss().state_dict() == {}
