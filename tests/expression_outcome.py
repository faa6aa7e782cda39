"""What a library makes of a test's expression on a tensor ``x`` of ``data`` (float32): the error's type and
message, or each result's dtype, shape and values (rounded to 4 places). The oracle tests compare distnn's with
torch's (``m`` is either module); :func:`same_as_torch` is that comparison for a test's own outcome function."""
import numpy as np


def outcome(m, expression, data):
    x = m.tensor(np.asarray(data, dtype=np.float64), dtype=m.float32)  # noqa: F841 - the expressions read it
    try:
        result = eval(expression)  # noqa: S307 - the test's own expressions
    except Exception as e:  # noqa: BLE001 - the error's type and message are what is compared
        return type(e).__name__, str(e)
    return "ok", [(str(r.dtype).split(".")[-1], tuple(r.shape), np.round(r.numpy().astype(np.float64), 4).tolist())
                  for r in (result if isinstance(result, tuple) else (result,))]


def same_as_torch(outcome, expression, expected):
    """Assert that torch's ``outcome(torch, expression)`` is ``expected`` ("ok" or an error type's name) and that
    distnn's is the same, message and values included."""
    import torch

    import distnn

    theirs = outcome(torch, expression)
    assert theirs[0] == expected
    assert outcome(distnn, expression) == theirs
