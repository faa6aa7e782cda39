"""distnn.optim.swa_utils.SWALR against torch.optim.swa_utils.SWALR: the same rate sequences (both strategies,
several anneal_epochs including 0, one swa_lr or one per group, after another schedule changed the rate),
torch's refusals, and a resumed run's rates equal an uninterrupted one's."""
import pickle

import numpy as np
import pytest
import torch
import torch.optim.swa_utils as tswa

import distnn.nn as nn
from distnn.optim import SGD, lr_scheduler, swa_utils


def optimizers(lrs=(0.5, 0.2)):
    """torch's and distnn's SGD with one group per rate."""
    tparams = [torch.nn.Parameter(torch.zeros(2)) for _ in lrs]
    dparams = [nn.Parameter(np.zeros(2)) for _ in lrs]
    topt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(tparams, lrs)], lr=0.1)
    dopt = SGD([{"params": [p], "lr": lr} for p, lr in zip(dparams, lrs)], lr=0.1)
    return topt, dopt


def rates(opt):
    return [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("swa_lr", [0.05, [0.05, 0.3]], ids=["one", "per-group"])
@pytest.mark.parametrize("anneal_epochs", [0, 1, 3, 10])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_rate_sequence_matches_torch(strategy, anneal_epochs, swa_lr):
    topt, dopt = optimizers()
    ts = tswa.SWALR(topt, swa_lr=swa_lr, anneal_epochs=anneal_epochs, anneal_strategy=strategy)
    ds = swa_utils.SWALR(dopt, swa_lr=swa_lr, anneal_epochs=anneal_epochs, anneal_strategy=strategy)
    seq_t, seq_d = [rates(topt)], [rates(dopt)]
    for _ in range(anneal_epochs + 4):
        topt.step()
        ts.step()
        dopt.step()
        ds.step()
        seq_t.append(rates(topt))
        seq_d.append(rates(dopt))
        assert ds.get_last_lr() == ts.get_last_lr()
    assert seq_d == seq_t  # the same float operations: exactly equal
    assert seq_d[-1] == ([swa_lr] * 2 if not isinstance(swa_lr, list) else swa_lr)  # it ends at swa_lr
    assert [g["swa_lr"] for g in dopt.param_groups] == [g["swa_lr"] for g in topt.param_groups]


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_anneals_from_the_rate_another_schedule_left(strategy):
    """PyTorch's usage: SWALR built at the start, a cosine schedule steps until swa_start, then SWALR."""
    topt, dopt = optimizers()
    tcos = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=20)
    dcos = lr_scheduler.CosineAnnealingLR(dopt, T_max=20)
    ts = tswa.SWALR(topt, swa_lr=0.01, anneal_epochs=4, anneal_strategy=strategy)
    ds = swa_utils.SWALR(dopt, swa_lr=0.01, anneal_epochs=4, anneal_strategy=strategy)
    for epoch in range(15):
        topt.step()
        dopt.step()
        if epoch < 6:
            tcos.step()
            dcos.step()
        else:
            ts.step()
            ds.step()
        np.testing.assert_allclose(rates(dopt), rates(topt), rtol=1e-13, err_msg=f"epoch {epoch}")
    assert rates(dopt) == [0.01, 0.01]


def test_refusals_match_torch():
    topt, dopt = optimizers()
    for mod, opt in ((tswa, topt), (swa_utils, dopt)):
        with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear'"):
            mod.SWALR(opt, swa_lr=0.1, anneal_strategy="exp")
        for bad in (-1, 2.5, "3"):
            with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0"):
                mod.SWALR(opt, swa_lr=0.1, anneal_epochs=bad)
        with pytest.raises(ValueError, match="swa_lr must have the same length as optimizer.param_groups"):
            mod.SWALR(opt, swa_lr=[0.1, 0.2, 0.3])
    # resuming (last_epoch given) needs the groups' initial_lr, as every torch scheduler
    topt, dopt = optimizers()
    for mod, opt in ((tswa, topt), (swa_utils, dopt)):
        with pytest.raises(KeyError, match="initial_lr"):
            mod.SWALR(opt, swa_lr=0.1, last_epoch=3)


def test_not_composable_says_so():
    _, dopt = optimizers()
    s = swa_utils.SWALR(dopt, swa_lr=0.1)
    with pytest.raises(TypeError, match="step it on its own"):
        lr_scheduler.ChainedScheduler([s])


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_resumed_rates_equal_uninterrupted(strategy):
    total, cut = 12, 5
    _, ref_opt = optimizers()
    ref = swa_utils.SWALR(ref_opt, swa_lr=[0.05, 0.3], anneal_epochs=7, anneal_strategy=strategy)
    want = []
    for _ in range(total):
        ref.step()
        want.append(rates(ref_opt))

    _, opt = optimizers()
    s = swa_utils.SWALR(opt, swa_lr=[0.05, 0.3], anneal_epochs=7, anneal_strategy=strategy)
    got = []
    for _ in range(cut):
        s.step()
        got.append(rates(opt))
    saved_opt, saved = pickle.dumps(opt.state_dict()), pickle.dumps(s.state_dict())  # plain values only
    assert "optimizer" not in s.state_dict()

    _, opt2 = optimizers(lrs=(0.9, 0.9))  # a new run: its own rates until the states are loaded
    opt2.load_state_dict(pickle.loads(saved_opt))
    s2 = swa_utils.SWALR(opt2, swa_lr=[0.05, 0.3], anneal_epochs=7, anneal_strategy=strategy)
    s2.load_state_dict(pickle.loads(saved))
    assert s2.get_last_lr() == got[-1] and rates(opt2) == got[-1]
    for _ in range(total - cut):
        s2.step()
        got.append(rates(opt2))
    assert got == want
    assert s2.state_dict() == ref.state_dict()
