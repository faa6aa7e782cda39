"""Shared pytest setup: float64 printing, PyTorch oracle skip helper, rank-aware tmp dirs, a guard against
tests that leave process-wide state changed."""
import os
import sys

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    """Under mpiexec, a temporary-directory root of its own for each rank.

    The ranks are separate pytest sessions; sharing pytest's default root, each
    cleaned up old numbered directories while another did, and one now and then
    printed "PytestWarning: (rm_rf) error removing .../garbage-...".
    """
    rank = next((os.environ[v] for v in ("PMI_RANK", "OMPI_COMM_WORLD_RANK") if os.environ.get(v, "").isdigit()),
                None)
    if rank is not None and config.option.basetemp is None:
        import tempfile

        config.option.basetemp = os.path.join(tempfile.gettempdir(), f"pytest-distnn-{os.getuid()}-rank{rank}")


def import_torch():
    """The PyTorch oracle, or a visible skip when it is not installed."""
    return pytest.importorskip("torch", reason="PyTorch (torch==2.13.0) is the test oracle; .ci/run installs it")


@pytest.fixture
def torch():
    t = import_torch()
    t.set_num_threads(1)
    return t


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def clean_preemption_flags():
    """No preemption request left over from another test, before or after (the flags are process-wide)."""
    from distnn.train import preemption

    preemption.clear()
    yield
    preemption.clear()


_NUMPY_ERR = np.geterr()  # (before any test: what every test must leave)


def _global_state():
    """The process-wide settings a test may change for a while and must put back. Read from the libraries
    already imported only: the guard imports nothing (a test of import-time behaviour stays meaningful)."""
    state = {"numpy errstate": np.geterr()}
    dn = sys.modules.get("distnn")
    if dn is not None and hasattr(dn, "get_default_dtype"):  # (a partly imported distnn: nothing to read)
        from distnn.amp import is_autocast_enabled
        from distnn.autograd import anomaly, grad_mode

        state.update({"distnn default dtype": np.dtype(dn.get_default_dtype()).name,
                      "distnn grad mode": grad_mode.is_grad_enabled(),
                      "distnn inference mode": grad_mode.is_inference_mode_enabled(),
                      "distnn autocast (cpu, cuda)": (is_autocast_enabled("cpu"), is_autocast_enabled("cuda")),
                      "distnn anomaly mode": anomaly.is_anomaly_enabled()})
    t = sys.modules.get("torch")
    if t is not None and hasattr(t, "get_default_dtype"):
        state.update({"torch default dtype": str(t.get_default_dtype()),
                      "torch grad mode": t.is_grad_enabled(),
                      "torch autocast (cpu)": t.is_autocast_enabled("cpu"),
                      "torch anomaly mode": t.is_anomaly_enabled()})
    return state


_EXPECTED = {"numpy errstate": _NUMPY_ERR, "distnn default dtype": "float32", "distnn grad mode": True,
             "distnn inference mode": False, "distnn autocast (cpu, cuda)": (False, False),
             "distnn anomaly mode": False, "torch default dtype": "torch.float32", "torch grad mode": True,
             "torch autocast (cpu)": False, "torch anomaly mode": False}


@pytest.fixture(autouse=True)
def _no_leaked_global_state(request):
    """Fails a test that leaves the default dtype, grad mode, autocast, anomaly mode or numpy's errstate
    changed (at its teardown, after its other fixtures' teardowns: autouse fixtures are set up first).
    Such a leak makes later tests depend on the order they run in. The settings are put back first, so
    one leak fails one test, not every test after it."""
    yield
    leaked = {k: v for k, v in _global_state().items() if v != _EXPECTED[k]}
    if not leaked:
        return
    np.seterr(**_NUMPY_ERR)
    dn, t = sys.modules.get("distnn"), sys.modules.get("torch")
    if any(k.startswith("distnn") for k in leaked):
        from distnn.autograd import autocast_state

        dn.set_default_dtype(dn.float32)
        dn.set_grad_enabled(True)
        dn.autograd.set_detect_anomaly(False)
        for device in ("cpu", "cuda"):
            autocast_state.enter(device, None)
    if any(k.startswith("torch") for k in leaked):
        t.set_default_dtype(t.float32)
        t.set_grad_enabled(True)
        t.autograd.set_detect_anomaly(False)
    pytest.fail(f"{request.node.nodeid} left process-wide state changed: "
                + ", ".join(f"{k} {v!r} (expected {_EXPECTED[k]!r})" for k, v in leaked.items()), pytrace=False)
