"""Shared by the resume tests: a state dict saved and loaded back as a checkpoint takes it."""
import io
import pickle

import numpy as np

from distnn.optim import flatten_state, unflatten_state


def saved_and_loaded(state, via):
    """``state`` written and read back, ``via`` "pickle" or "npz" (``np.savez`` of ``flatten_state``, then
    ``unflatten_state``: no pickle involved)."""
    if via == "pickle":
        return pickle.loads(pickle.dumps(state))
    buf = io.BytesIO()
    np.savez(buf, **flatten_state(state))
    buf.seek(0)
    with np.load(buf) as z:
        return unflatten_state(dict(z))
