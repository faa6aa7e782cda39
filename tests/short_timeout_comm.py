"""A communicator of every MPI rank whose collectives time out after a few seconds, for the tests of a failure on
one rank: a rank left waiting ends the job with the watchdog's report there, so a wrong fix fails by timing out
instead of hanging the suite."""
from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def short_timeout_communicator(seconds: float):
    """An ``MPICommunicator`` of every rank with a ``seconds`` collective timeout (``DISTNN_COLLECTIVE_TIMEOUT`` set
    to it meanwhile, for the communicators that the code under test makes itself), put back afterwards."""
    from distnn.distributed.mpi_comm import MPICommunicator

    previous = os.environ.get("DISTNN_COLLECTIVE_TIMEOUT")
    os.environ["DISTNN_COLLECTIVE_TIMEOUT"] = str(seconds)
    try:
        yield MPICommunicator(timeout=seconds)
    finally:
        if previous is None:
            os.environ.pop("DISTNN_COLLECTIVE_TIMEOUT", None)
        else:
            os.environ["DISTNN_COLLECTIVE_TIMEOUT"] = previous


def short_timeout_fixture(seconds: float):
    """A module-scoped pytest fixture of :func:`short_timeout_communicator` (``seconds``): a communicator of every MPI
    rank whose collectives time out after ``seconds`` (the job ends with the report), so a rank left waiting fails
    the test there. Bind it to the name the tests ask for: ``short_timeout_comm = short_timeout_fixture(20.0)``."""
    import pytest

    @pytest.fixture(scope="module")
    def short_timeout_comm():
        with short_timeout_communicator(seconds) as comm:
            yield comm

    return short_timeout_comm
