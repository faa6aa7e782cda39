"""State-dict hooks and extra state against PyTorch: the same script on the same model, the hooks recording
what they receive (order, prefixes, keys), changing the state dict and the key lists in place."""
import numpy as np
import pytest

import distnn.nn as nn


def _model(lib):
    class Counter(lib.Module):
        """A module with extra state (a step count) besides a parameter."""

        def __init__(self):
            super().__init__()
            self.lin = lib.Linear(3, 2)
            self.steps = 0

        def get_extra_state(self):
            return {"steps": self.steps}

        def set_extra_state(self, state):
            self.steps = state["steps"]

    return lib.Sequential(lib.Linear(2, 3), Counter())


def _script(lib):
    log = []
    model = _model(lib)
    model[1].steps = 7
    for name, m in (("root", model), ("0", model[0]), ("1", model[1]), ("1.lin", model[1].lin)):
        m.register_state_dict_pre_hook(lambda mod, prefix, keep_vars, name=name: log.append(
            ("sd pre", name, prefix, keep_vars)))
        m.register_state_dict_post_hook(lambda mod, sd, prefix, meta, name=name: log.append(
            ("sd post", name, prefix, sorted(sd))))
        m.register_load_state_dict_pre_hook(
            lambda mod, sd, prefix, meta, strict, missing, unexpected, errors, name=name: log.append(
                ("load pre", name, prefix, strict)))
        m.register_load_state_dict_post_hook(lambda mod, keys, name=name: log.append(
            ("load post", name, sorted(keys.missing_keys), sorted(keys.unexpected_keys))))
    sd = model.state_dict()
    log.append(("keys", list(sd), sd["1._extra_state"]))

    # a post-hook that adds a key; a load pre-hook that renames an old key; a post-hook that forgives it
    model[0].register_state_dict_post_hook(lambda mod, sd, prefix, meta: sd.__setitem__(prefix + "note", 1))
    sd = model.state_dict()
    log.append(("with note", list(sd)))
    old = {k.replace("1.lin.", "1.old_lin."): v for k, v in sd.items() if k != "0.note"}
    old["1._extra_state"] = {"steps": 42}

    def rename(mod, sd, prefix, meta, strict, missing, unexpected, errors):
        for k in [k for k in sd if k.startswith(prefix + "old_lin.")]:
            sd[k.replace("old_lin.", "lin.")] = sd.pop(k)

    model[1].register_load_state_dict_pre_hook(rename)
    res = model.load_state_dict(old)
    log.append(("loaded", sorted(res.missing_keys), sorted(res.unexpected_keys), model[1].steps))
    with pytest.raises(Exception) as err:
        model.load_state_dict({**old, "extra.key": old["0.weight"]})
    log.append(("unexpected raises", "extra.key" in str(err.value)))
    model.register_load_state_dict_post_hook(lambda mod, keys: keys.unexpected_keys.clear())
    model.load_state_dict({**old, "extra.key": old["0.weight"]})
    log.append(("forgiven", model[1].steps))
    model[1].register_state_dict_post_hook(lambda *a: {})
    with pytest.raises(RuntimeError, match="state_dict post-hook must return None"):
        model.state_dict()
    return log, model


def _plain(log):
    """Arrays and tensors out of the log (the keys and order are what is compared)."""
    return [tuple(x if not hasattr(x, "shape") else "array" for x in e) for e in log]


def test_state_dict_hooks_and_extra_state_match_torch(torch):
    ours, model = _script(nn)
    theirs, tmodel = _script(torch.nn)
    assert _plain(ours)[:9] == _plain(theirs)[:9]  # state_dict: the hooks interleaved as PyTorch's
    # load_state_dict: distnn runs every pre-hook, loads, then every post-hook (module_state_hooks.py); each
    # kind in PyTorch's order (stable sort by kind), with the same arguments
    assert sorted(_plain(ours), key=lambda e: e[0]) == sorted(_plain(theirs), key=lambda e: e[0])
    entries = {e[0]: e for e in ours}
    assert entries["loaded"] == ("loaded", [], [], 42) and entries["forgiven"] == ("forgiven", 42)
    assert entries["unexpected raises"] == ("unexpected raises", True)
    assert entries["with note"][1] == ["0.weight", "0.bias", "0.note", "1._extra_state", "1.lin.weight", "1.lin.bias"]


def test_load_post_hook_may_add_a_missing_key_that_strict_then_refuses(torch):
    for lib in (nn, torch.nn):
        m = lib.Linear(2, 2)
        sd = m.state_dict()
        m.register_load_state_dict_post_hook(lambda mod, keys: keys.missing_keys.append("made.up"))
        with pytest.raises((KeyError, RuntimeError), match="made.up"):
            m.load_state_dict(sd)
        assert m.load_state_dict(sd, strict=False).missing_keys == ["made.up"]


def test_extra_state_round_trip_and_a_missing_one(torch):
    for lib in (nn, torch.nn):
        a, b = _model(lib), _model(lib)
        a[1].steps = 3
        b.load_state_dict(a.state_dict())
        assert b[1].steps == 3
        sd = a.state_dict()
        del sd["1._extra_state"]
        with pytest.raises((KeyError, RuntimeError), match="1._extra_state"):
            b.load_state_dict(sd)
        assert b.load_state_dict(sd, strict=False).missing_keys == ["1._extra_state"]
        sd = a.state_dict()
        sd["0._extra_state"] = 1  # (a module without set_extra_state: unexpected)
        assert b.load_state_dict(sd, strict=False).unexpected_keys == ["0._extra_state"]


def test_removed_hooks_and_refusals():
    calls = []
    m = nn.Linear(2, 2)
    h = m.register_state_dict_pre_hook(lambda *a: calls.append(a))
    m.state_dict()
    h.remove()
    m.state_dict()
    assert len(calls) == 1
    with pytest.raises(TypeError, match="must be callable"):
        m.register_load_state_dict_post_hook(None)
    m.register_load_state_dict_post_hook(lambda mod, keys: keys)
    with pytest.raises(AssertionError, match="not expected to return new values"):
        m.load_state_dict(m.state_dict())
    assert np.array_equal(nn.Linear(2, 2).load_state_dict(m.state_dict()), ([], []))
