"""The test pause (``DISTNN_FAULT_PAUSE_AT``): what ends it, so that no test waits for a signal already sent.

CI saw the race: in an ensemble on simulated ranks, member 1 signalled at its step 2 before member 0 reached
its pause at step 1; the pause counted requests from its own start, waited its full limit, and the job
outlived the test's timeout. A step guard's pause now counts from the job's start.
"""
import threading
import time

from distnn.train import preemption
from distnn.train.preemption import pause_for_test, request, request_count


def _pause_in_thread(name, since=None):
    done = threading.Event()
    threading.Thread(target=lambda: (pause_for_test(name, since=since), done.set()), daemon=True).start()
    return done


def _await_marker(path, done):
    """Wait until the pause in a thread wrote its marker: it has taken its count, so a request from now on is
    one it waits for (a fixed sleep instead let a thread scheduled late count the test's request as old)."""
    deadline = time.monotonic() + 60  # (a bound on the wait, not a timed assertion)
    while not path.exists() and not done.is_set() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert path.exists(), f"{path.name} was not written"


def test_a_request_noted_before_the_pause_ends_it_when_counted_from_before(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTNN_FAULT_MARKER_DIR", str(tmp_path))
    mark = request_count()
    request()  # another rank's signal, noted before this rank reaches its pause
    try:
        assert _pause_in_thread("paused", since=mark).wait(10)
        assert (tmp_path / "paused").exists()
    finally:
        preemption.clear()


def test_without_a_mark_only_a_later_request_or_the_release_file_ends_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTNN_FAULT_MARKER_DIR", str(tmp_path))
    request()  # before the pause: not the signal it waits for (a checkpoint write's pause waits for a new one)
    try:
        done = _pause_in_thread("paused")
        _await_marker(tmp_path / "paused", done)
        time.sleep(0.3)  # (a pause that wrongly ended on the old request would be done by now)
        assert not done.is_set()
        request()
        assert done.wait(10)
        done = _pause_in_thread("paused-again")
        _await_marker(tmp_path / "paused-again", done)
        time.sleep(0.3)
        assert not done.is_set()
        (tmp_path / "release").touch()
        assert done.wait(10)
    finally:
        preemption.clear()
