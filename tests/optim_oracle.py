"""Shared by the optimizer oracle tests (distnn's optimizer against torch.optim's, same weights and gradients):
the two-group split they step, the steps themselves, and each parameter's state read from torch and compared with distnn's."""
import numpy as np


def two_groups(params, split, overrides):
    """``params[:split]`` with the optimizer's defaults, ``params[split:]`` with ``overrides``."""
    return [{"params": params[:split]}, {"params": params[split:], **overrides}]


def train_steps(opt, params, grads, t0, t1):
    """Steps ``t0`` to ``t1 - 1`` of ``opt``: before each, every parameter's gradient is ``grads(t)``'s (None: no
    gradient), in the parameter's dtype."""
    for t in range(t0, t1):
        for p, g in zip(params, grads(t)):
            p.grad = None if g is None else g.astype(p.data.dtype)
        opt.step()


def paired_steps(torch, opt, topt, params, tparams, grads, steps):
    """``steps`` steps of distnn's ``opt`` and torch's ``topt`` on the same gradients (``grads(t)``: an array or
    None per parameter); yields ``t`` after each, for the caller to compare."""
    for t in range(steps):
        for p, tp, g in zip(params, tparams, grads(t)):
            p.grad = None if g is None else g.copy()
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        yield t


def load_torchs_state_and_continue(torch, topt, tparams, make_ours, grads, check_loaded=None, steps=4):
    """torch's ``topt`` steps ``steps`` times on ``grads(t)``; distnn's optimizer ``make_ours(params)``, over
    copies of the weights torch reached, loads ``topt.state_dict()`` (``check_loaded(opt)``, where given, checks
    what it loaded); then both step ``steps`` times more on the same gradients. Returns distnn's parameters,
    for the caller to compare with ``tparams``."""
    from distnn.nn import Parameter

    for t in range(steps):
        for tp, g in zip(tparams, grads(t)):
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        topt.step()
    params = [Parameter(tp.detach().numpy().copy()) for tp in tparams]
    opt = make_ours(params)
    opt.load_state_dict(topt.state_dict())
    if check_loaded is not None:
        check_loaded(opt)
    for _ in paired_steps(torch, opt, topt, params, tparams, lambda t: grads(t + steps), steps):
        pass
    return params


def torch_state(topt, tparams):
    """torch's per-parameter state as ``{index in tparams: {key: numpy array or plain value}}`` (parameters
    without state left out, as distnn's ``state_dict()["state"]`` leaves them out)."""
    out = {}
    for i, p in enumerate(tparams):
        s = topt.state.get(p)
        if s:
            out[i] = {k: (v.detach().numpy() if hasattr(v, "detach") else v) for k, v in s.items()}
    return out


def compare_state(ours, theirs, where, rtol, atol):
    """The same parameters with state, the same keys for each; ``step`` a Python int equal to torch's,
    every other entry torch's shape and dtype and within ``rtol``/``atol`` of its values."""
    assert sorted(ours) == sorted(theirs), where
    for i in theirs:
        assert sorted(ours[i]) == sorted(theirs[i]), (where, i)
        for k, tv in theirs[i].items():
            ov = ours[i][k]
            if k == "step":
                assert type(ov) is int and ov == float(tv), (where, i, k)
            else:
                ov, tv = np.asarray(ov), np.asarray(tv)
                assert ov.shape == tv.shape and ov.dtype == tv.dtype, (where, i, k, ov.shape, tv.shape, ov.dtype,
                                                                       tv.dtype)
                np.testing.assert_allclose(ov, tv, rtol=rtol, atol=atol, err_msg=f"{where}: state {i}.{k}")
