"""Shared pytest setup: float64 printing, PyTorch oracle skip helper, rank-aware tmp dirs."""
import os

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
