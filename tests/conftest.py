"""Shared pytest setup: float64 printing, PyTorch oracle skip helper, rank-aware tmp dirs, per-test seeding
of the shared random generators, a guard against tests that leave process-wide state changed."""
import importlib.util
import os
import random
import signal
import sys
import zlib

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Child processes (the scripts of tests/mpi_scripts under mpiexec, CLI runs, writer processes) import the distnn
# under test, as this process does: a script's directory, not the repository, leads its sys.path, so with distnn
# installed in editable mode from another checkout (a git worktree beside it) the child imported that
# checkout's distnn and the test ran the other code.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


class _TorchOracleMissing:
    """Without PyTorch installed, an ``import torch`` made by the tests' own code (a test module, a helper module
    of tests/) skips that module or test, as ``pytest.importorskip`` would: PyTorch is the tests' oracle, which
    .ci/run installs, never a dependency of distnn, so ``./tests/run.sh`` on a fresh clone runs the rest. An
    import of torch made elsewhere (distnn probing for it) fails as usual, with ImportError."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "torch" and not name.startswith("torch."):
            return None
        frame = sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename.startswith("<frozen") or
                                     "importlib" in frame.f_code.co_filename):
            frame = frame.f_back
        if frame is None or not os.path.abspath(frame.f_code.co_filename).startswith(TESTS_DIR + os.sep):
            return None
        raise pytest.skip.Exception("PyTorch (torch==2.13.0) is the test oracle; .ci/run installs it",
                                    allow_module_level=True)


def _torch_missing() -> bool:
    try:
        return importlib.util.find_spec("torch") is None
    except (ImportError, ValueError):
        return True


if _torch_missing():
    sys.meta_path.insert(0, _TorchOracleMissing())

# tests/isolated/: test files run only in a child pytest of their own (a wrapper test starts it), because what
# they exercise changes the process for good (tests/test_control_flow.py says why)
collect_ignore = [] if os.environ.get("DISTNN_TESTS_ISOLATED") else ["isolated"]


def pytest_configure(config):
    """Under mpiexec, a temporary-directory root of its own for each rank.

    The ranks are separate pytest sessions; sharing pytest's default root, each
    cleaned up old numbered directories while another did, and one now and then
    printed "PytestWarning: (rm_rf) error removing .../garbage-...".

    The root, not a fixed ``--basetemp``: pytest empties a given basetemp when a session starts, so two
    multi-rank sessions at once on one machine (two checkouts' tests) emptied each other's rank directories;
    a rank whose ``mpi_tmp_path`` then failed ended its session while the others waited in that fixture's
    broadcast, for ever. Under the root each session takes a numbered directory of its own (pytest keeps
    the newest three).
    """
    rank = next((os.environ[v] for v in ("PMI_RANK", "OMPI_COMM_WORLD_RANK") if os.environ.get(v, "").isdigit()),
                None)
    if rank is not None and config.option.basetemp is None:
        import tempfile

        root = os.path.join(os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir(),
                            f"pytest-distnn-{os.getuid()}-roots", f"rank{rank}")
        os.makedirs(root, mode=0o700, exist_ok=True)
        os.environ["PYTEST_DEBUG_TEMPROOT"] = root  # (read by pytest at the first tmp_path)


def import_torch():
    """The PyTorch oracle, or a visible skip when it is not installed."""
    first = "torch" not in sys.modules
    t = pytest.importorskip("torch", reason="PyTorch (torch==2.13.0) is the test oracle; .ci/run installs it")
    if first and _current_seed is not None:  # (imported during a test, after its seeding: seeded now, as if before)
        _seed_torch(t, _current_seed)
    return t


@pytest.fixture
def torch():
    t = import_torch()
    t.set_num_threads(1)
    return t


@pytest.fixture
def one_torch_thread():
    """PyTorch on one thread for the test (its CPU reductions split long inputs among threads, in another
    order: tests that copy its single-thread order ask for this)."""
    import torch as _torch

    threads = _torch.get_num_threads()
    _torch.set_num_threads(1)
    yield
    _torch.set_num_threads(threads)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def clean_preemption_flags():
    """No preemption request left over from another test, before or after (the flags are process-wide), and
    the SIGTERM/SIGUSR1 handlers put back after the test.

    ``checkpoint_setup.attach`` installs the training-time handler (it only sets the flag); ``Trainer.fit``
    or the job around it (``preemption.during_fit``, ``preemption.caller_signals``) puts the previous
    handlers back, but a preempted run leaves the signals ignored on purpose, and a test that attaches
    without fitting leaves the handler in place; either way pytest then went deaf to SIGTERM for the rest
    of the session (the state guard below fails such a test). A step guard that attach bound and no fit
    released still counts as watching the flag (a signal then only sets it): such a test fails here."""
    from distnn.train import preemption, preemption_handlers

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    watchers = preemption_handlers._watchers
    preemption.clear()
    yield
    preemption.clear()
    for s, handler in handlers.items():
        signal.signal(s, handler)
    left = preemption_handlers._watchers - watchers
    # (fewer than before is not this test's leak: a simulated rank abandoned by an earlier test may release its
    # guard late, from its own thread)
    if left > 0:  # (put back first: one leak fails one test, not the later ones it would change)
        preemption_handlers.add_watcher(-left)
        pytest.fail(f"{left:+d} step guard(s) left watching the preemption flag (a guard bound by attach() "
                    "and never fitted: give it back with checkpoint_setup.detach(trainer)); a signal in a later test "
                    "would only set the flag", pytrace=False)


# ---------------------------------------------------------------- per-test seeds
# Layers initialize their weights from distnn's default generator, and many tests draw data from it, from
# numpy's legacy global RNG, from Python's `random` or from torch's; all four are process-wide, so without
# this a test's draws depended on every test that ran before it in the process. A new test could then
# shift the draws of the tests after it and turn one red (a comparison ill-conditioned for those weights),
# and a failure seen in the full suite did not reproduce alone. Each test (and each fixture wider than a
# test, for whichever test sets it up first) now starts them from a seed of its own: a stable hash of its
# node id (crc32: Python's hash() of a str changes between processes), mixed with DISTNN_TEST_SEED (default
# 0), so a test sees the same draws alone, in a subset or in the full suite. A different DISTNN_TEST_SEED
# gives every test other draws: a test that passes only for lucky draws shows up. Under mpiexec every rank
# gets the same seed for the same test, as every rank got the same draws before (each rank's pytest
# session ran the same tests in the same order); a test that wants ranks to differ seeds by rank itself.
try:
    _SALT = int(os.environ.get("DISTNN_TEST_SEED", "0"))
except ValueError:
    raise pytest.UsageError(f"DISTNN_TEST_SEED must be an integer, got {os.environ['DISTNN_TEST_SEED']!r}") from None
_current_seed = None  # the seed of the test running (for the torch fixture, which may import torch later)


@pytest.fixture
def own_signal_handlers(monkeypatch):
    """The program's (or the calling Python's) own SIGTERM and SIGUSR1 handlers, recording the signals that
    reach them: yields ``(got, record)``; the previous handlers are put back after the test."""
    from distnn.train import preemption_faults

    got = []
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}

    def record(signum, frame):
        got.append(signum)

    for s in before:
        signal.signal(s, record)
    monkeypatch.setattr(preemption_faults, "_fired_points", set())  # (fault points fire once a process otherwise)
    yield got, record
    for s, h in before.items():
        signal.signal(s, h)


@pytest.fixture
def kl_registries_restored():
    """distnn's and torch's KL registries as they were before the test: a test that registers its own pairs
    must not leave them for a later one in the same process (which tests share a process is up to the
    scheduler when the suite runs on several workers)."""
    import distnn.distributions.kl as dkl

    saved = dict(dkl._KL_REGISTRY)
    tkl = None
    try:
        import torch.distributions.kl as tkl
    except ImportError:  # (no torch: only distnn's)
        pass
    tsaved = dict(tkl._KL_REGISTRY) if tkl is not None else None
    yield
    dkl._KL_REGISTRY.clear(), dkl._KL_REGISTRY.update(saved), dkl._KL_MEMOIZE.clear()
    if tkl is not None:
        tkl._KL_REGISTRY.clear(), tkl._KL_REGISTRY.update(tsaved), tkl._KL_MEMOIZE.clear()


def _seed_for(key: str) -> int:
    return int(np.random.SeedSequence([_SALT % (1 << 64), zlib.crc32(key.encode())]).generate_state(1)[0])


_cpu_only_torch = {}  # (per torch module object: whether its build has no device but the CPU)


def _seed_torch(t, seed: int) -> None:
    """``torch.manual_seed(seed)``, without its work for devices the torch build does not have.

    torch.manual_seed also queues a lazy seeding for each accelerator backend (CUDA, XPU, MTIA), each keeping
    the caller's formatted stack for an error report: about 2 ms a call at pytest's stack depth, paid by every
    test, where seeding the CPU generator takes microseconds. In a build with no accelerator compiled in, those
    queued seedings can never run, so seeding the CPU generator alone does the same; any other build gets
    torch.manual_seed itself."""
    cpu_only = _cpu_only_torch.get(id(t))
    if cpu_only is None:
        try:
            cpu_only = not (t.cuda._is_compiled() or t.xpu._is_compiled() or t.backends.mps.is_built()
                            or getattr(t.mtia, "_is_compiled", lambda: True)()
                            or hasattr(t, t._C._get_privateuse1_backend_name()))
            _cpu_only_torch[id(t)] = cpu_only
        except Exception:  # (a torch partly imported, or unexpected: the full seeding, and a look again next time)
            cpu_only = False
    if cpu_only:
        t.default_generator.manual_seed(seed)
    else:
        t.manual_seed(seed)


def _reseed(key: str) -> int:
    """Seed distnn's default generator (this thread's own), numpy's legacy global RNG, Python's `random`
    and, where already imported (never imported for this), torch's CPU generator from ``key``."""
    seed = _seed_for(key)
    random.seed(seed)
    np.random.seed(seed)
    dn = sys.modules.get("distnn")
    if dn is not None and hasattr(dn, "manual_seed"):  # (not imported yet: a fresh import starts it at seed 0)
        dn.manual_seed(seed)
    t = sys.modules.get("torch")
    if t is not None and hasattr(t, "manual_seed"):
        _seed_torch(t, seed)
        # (torch.compile's first use, e.g. inside torch's flex_attention, turns torch.distributions' argument
        # validation off for the rest of the process; the oracle tests compare refusals with it on, torch's default)
        dist = getattr(t, "distributions", None)
        if dist is not None and dist.Distribution._validate_args is not __debug__:
            dist.Distribution.set_default_validate_args(__debug__)
    return seed


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef, request):
    """A module- or session-scoped fixture draws as if first of its own: the same whichever test set it up."""
    if fixturedef.scope != "function":
        _reseed(f"{request.node.nodeid}::fixture {fixturedef.argname}")


@pytest.fixture(autouse=True)
def _reseed_shared_generators(request):
    global _current_seed
    _current_seed = _reseed(request.node.nodeid)
    yield
    _current_seed = None


@pytest.fixture
def per_test_rng(request):
    """A numpy Generator of this test's own, seeded like the shared generators above (its node id mixed with
    DISTNN_TEST_SEED). A test file that keeps a module-level generator ``R`` for its helpers swaps this in per
    test (an autouse fixture: ``monkeypatch.setattr(module, "R", per_test_rng)``): a module-level generator's
    draws depended on which of the file's tests ran before in the process (under xdist, on how the file was
    split over workers), so a failure for unlucky draws came and went."""
    return np.random.default_rng(_seed_for(f"{request.node.nodeid}::per_test_rng"))


_draw_per_test_modules = []  # (the test modules imported so far that set DRAW_PER_TEST; see below)
_modules_seen = 0


def _modules_drawing_per_test():
    global _modules_seen
    if len(sys.modules) != _modules_seen:  # (a module imported since: look again)
        _modules_seen = len(sys.modules)
        _draw_per_test_modules[:] = [m for name, m in list(sys.modules.items())
                                     if name.startswith("test_") and getattr(m, "DRAW_PER_TEST", False) is True]
    return _draw_per_test_modules


@pytest.fixture(autouse=True)
def _module_draws_per_test(request):
    """A test file that sets ``DRAW_PER_TEST = True`` keeps a module-level generator ``R`` for its helpers: each
    test gets :func:`per_test_rng` there instead (put back after the test). Every such module's ``R`` is swapped,
    not only the test's own: a helper imported from another test file (``from test_linalg_lu import both``)
    draws from its own module's ``R``, which otherwise kept drawing in whatever order the tests came."""
    modules = _modules_drawing_per_test()
    if modules:
        monkeypatch, rng = request.getfixturevalue("monkeypatch"), request.getfixturevalue("per_test_rng")
        for module in modules:
            monkeypatch.setattr(module, "R", rng)


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


_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGUSR1", "SIGINT") if hasattr(signal, n))


def _signal_state():
    """The main thread's Python handlers for the signals a job reacts to, and its blocked-signal mask: a
    test that leaves SIGTERM ignored, handled by a distnn handler or blocked makes the rest of the session
    deaf to it (a CI runner's SIGTERM, a timeout's). Compared before/after each test, not against fixed
    values: pytest installs its own SIGINT handling."""
    return {"handlers": {signal.Signals(s).name: signal.getsignal(s) for s in _SIGNALS},
            "blocked": signal.pthread_sigmask(signal.SIG_BLOCK, []) & set(_SIGNALS)}


def _put_signals_back(before) -> dict:
    """Restore the :func:`_signal_state` ``before``; return what had changed: {what: (found, expected)}."""
    after, changed = _signal_state(), {}
    for name, handler in after["handlers"].items():
        if handler != before["handlers"][name]:
            changed[f"{name} handler"] = (handler, before["handlers"][name])
            if before["handlers"][name] is not None:  # (None: a handler not set from Python, not restorable)
                signal.signal(getattr(signal, name), before["handlers"][name])
    if after["blocked"] != before["blocked"]:
        changed["blocked signals"] = tuple(sorted(s.name for s in state["blocked"]) for state in (after, before))
        signal.pthread_sigmask(signal.SIG_SETMASK,
                               signal.pthread_sigmask(signal.SIG_BLOCK, []) - after["blocked"] | before["blocked"])
    return changed


@pytest.fixture(scope="module", autouse=True)
def _no_signal_handlers_leaked_by_module_fixtures(request):
    """The per-test guard below is set up after the module-scoped fixtures (a trained run shared by a file's
    tests): this one, set up before them and torn down after, sees what they leave."""
    before = _signal_state()
    yield
    changed = _put_signals_back(before)
    if changed:
        pytest.fail(f"{request.node.nodeid}'s module-scoped fixtures left signal handling changed: "
                    + ", ".join(f"{k} {v!r} (expected {e!r})" for k, (v, e) in changed.items()), pytrace=False)


@pytest.fixture(autouse=True)
def _no_leaked_global_state(request):
    """Fails a test that leaves the default dtype, grad mode, autocast, anomaly mode, numpy's errstate, or
    the handler or mask of SIGTERM, SIGUSR1 or SIGINT changed (at its teardown, after its other fixtures'
    teardowns: autouse fixtures are set up first). Such a leak makes later tests depend on the order they
    run in. The settings are put back first, so one leak fails one test, not every test after it."""
    signals_before = _signal_state()
    yield
    expected = dict(_EXPECTED)
    leaked = {k: v for k, v in _global_state().items() if v != expected[k]}
    for k, (found, wanted) in _put_signals_back(signals_before).items():
        leaked[k], expected[k] = found, wanted
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
                + ", ".join(f"{k} {v!r} (expected {expected[k]!r})" for k, v in leaked.items()), pytrace=False)
