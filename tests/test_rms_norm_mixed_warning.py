"""F.rms_norm with an input and a weight of different dtypes, as torch 2.13 (CPU): a UserWarning ("Mismatch
dtype between input and weight: ... Cannot dispatch to fused implementation"), once a process (torch's
TORCH_WARN_ONCE), before an integer input's refusal; the result in the input's dtype. distnn computed the same
result silently."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn.functional import norm as norm_module

torch = pytest.importorskip("torch")

GIST = "Cannot dispatch to fused implementation."
DTYPES = ["float16", "float32", "float64"]


def _call(lib, x_dtype, w_dtype):
    """rms_norm's result dtype (or the refusal's type) and the warnings it gave: [(category, message up to the
    gist)]."""
    x, w = np.ones((2, 3), x_dtype), None if w_dtype is None else np.full(3, 2.0, w_dtype)
    make = torch.from_numpy if lib is torch else distnn.tensor
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = str(np.dtype((TF if lib is torch else F).rms_norm(make(x), (3,), None if w is None else make(w))
                                  .numpy().dtype))
        except Exception as e:  # (an integer input)
            result = type(e).__name__
    return result, [(c.category.__name__, str(c.message)[:str(c.message).find(GIST) + len(GIST)]) for c in caught]


TF = torch.nn.functional


@pytest.fixture
def warn_always(monkeypatch):
    """torch's once-a-process warnings on every call (torch.set_warn_always), distnn's once-flag cleared."""
    before = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    monkeypatch.setattr(norm_module, "_mixed_warned", False, raising=False)
    yield
    torch.set_warn_always(before)


@pytest.mark.parametrize("x_dtype", DTYPES + ["int64"])
@pytest.mark.parametrize("w_dtype", DTYPES + [None])
def test_a_weight_of_another_dtype_warns_as_torch(x_dtype, w_dtype, warn_always):
    theirs = _call(torch, x_dtype, w_dtype)
    ours = _call(distnn, x_dtype, w_dtype)
    assert ours == theirs
    assert bool(ours[1]) == (w_dtype is not None and w_dtype != x_dtype)  # (torch's are what we measured)


def test_warns_once_a_process_as_torch():
    """In a fresh process: the first mixed call warns, the next ones (other pairs too) do not, for either."""
    script = f"""
import json, warnings, sys
sys.path.insert(0, {os.getcwd()!r})
import tests.test_rms_norm_mixed_warning as t
print(json.dumps({{lib: [t._call(mod, x, w) for x, w in [("float16", "float32"), ("float16", "float32"),
                                                        ("float32", "float64"), ("int64", "float32")]]
                  for lib, mod in (("torch", t.torch), ("distnn", t.distnn))}}))
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["distnn"] == seen["torch"]
    assert [bool(w) for _, w in seen["distnn"]] == [True, False, False, False]
    assert seen["distnn"][0][1] == [["UserWarning", "Mismatch dtype between input and weight: input dtype = c10::Half, "
                                     f"weight dtype = float, {GIST}"]]
