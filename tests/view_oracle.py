"""The oracle of the view and in-place tests: a program run in both libraries (``program(L)``, L being torch or
distnn) gives the same values (rtol 1e-12), node names and other results, or the same refusal (the error's type
and message, word for word)."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")


def to_array(L, t):
    """``t``'s values as a numpy array (None stays None)."""
    return None if t is None else np.array(t.detach().numpy() if L is torch else t.data)


def node_name(t):
    """The name of ``t``'s graph node, or None for a tensor without one."""
    return t.grad_fn.name() if t.grad_fn is not None else None


def outcome(L, program):
    """``("ok", program(L))``, or the refusal's ``(type, message)``."""
    try:
        return "ok", program(L)
    except Exception as e:  # noqa: BLE001 (the refusal is compared with torch's)
        return type(e), str(e)


def same_as_torch(program):
    """Assert that ``program`` gives in distnn what it gives in torch (arrays within rtol 1e-12, anything else
    equal); returns torch's outcome."""
    ref, ours = outcome(torch, program), outcome(distnn, program)
    if ref[0] != "ok" or ours[0] != "ok":
        assert ours == ref
        return ref
    assert len(ours[1]) == len(ref[1])
    for want, got in zip(ref[1], ours[1]):
        if isinstance(want, np.ndarray):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
        else:
            assert got == want
    return ref
