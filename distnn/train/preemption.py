"""Preemption signals and the per-step agreement: stop for a scheduler, skip or fail on non-finite values.

Preemption (SLURM ``--signal=USR1@60``, ``scancel``, a node drain, ``kill``):
SIGTERM or SIGUSR1 only *sets a flag* here (:class:`PreemptionHandler`);
nothing is written from a signal handler. At the next step boundary every
rank learns, in the same tiny collective, whether ANY rank was signalled
(``mpiexec`` forwards SIGTERM/SIGUSR1 to every rank, a scheduler may signal
only some), and all of them stop at that same step: the checkpoint callback
writes a checkpoint and raises :class:`Preempted`; ``distnn train`` then exits
with :data:`EXIT_PREEMPTED` (75, ``EX_TEMPFAIL``: "try again"), and
``--resume auto`` continues. A second signal during the save only sets the
flag again; the atomic write protocol (:mod:`distnn.train.checkpoint`) keeps
the checkpoint directory consistent whatever happens.

Non-finite loss or gradients (``train.nonfinite``): the same collective tells
every rank whether any rank saw a NaN/inf (one rank's bad batch, an injected
fault); with ``"skip"`` every rank skips the optimizer step together (counted
in ``trainer.state.skipped_steps`` and logged), with ``"error"`` every rank
raises :class:`NonFiniteError` naming the step before the update, so no NaN
reaches the weights or any checkpoint.

Fault injection for tests (environment): ``DISTNN_FAULT_KILL_AT=RANK:STEP``
kills that rank with SIGKILL when it reaches global step STEP (1-based, the
step being taken); ``DISTNN_FAULT_NONFINITE_AT=RANK:STEP[,...]`` puts a NaN
into that rank's gradient at that step (after the gradient average, so only
that rank sees it); ``DISTNN_FAULT_SIGNAL_AT=RANK:STEP[:SIG]`` sends this
process SIG (default SIGTERM) at that step; ``DISTNN_FAULT_STEP_DELAY=SECONDS``
sleeps at every step (to make a short job long enough to signal).
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time

import numpy as np

#: exit status of a run that stopped for preemption after writing its checkpoint (sysexits EX_TEMPFAIL)
EXIT_PREEMPTED = 75
DEFAULT_SIGNALS = ("SIGTERM", "SIGUSR1")
NONFINITE_POLICIES = ("error", "skip", "off")

_requested: int | None = None  # the signal number received (process-wide), or None


class Preempted(Exception):
    """Training stopped at an agreed step because of a preemption signal (a checkpoint was attempted)."""

    exit_code = EXIT_PREEMPTED

    def __init__(self, step: int, signum: int | None, checkpoint: str | None, error: str | None = None):
        self.step, self.signum, self.checkpoint, self.error = step, signum, checkpoint, error
        name = signal.Signals(signum).name if signum else "a preemption request"
        if checkpoint:
            msg = f"preempted by {name}: stopped after step {step}; checkpoint {checkpoint} written"
        else:
            msg = f"preempted by {name}: stopped after step {step}; NO checkpoint written ({error or 'disabled'})"
        super().__init__(msg)


class NonFiniteError(ValueError):
    """A NaN or inf loss or gradient with ``train.nonfinite = "error"`` (raised on every rank at the same step)."""


def requested() -> int | None:
    """The preemption signal received by this process, or None."""
    return _requested


def request(signum: int = signal.SIGTERM) -> None:
    """Mark this process as preempted (what the signal handler does; tests call it directly)."""
    global _requested
    _requested = int(signum)


def clear() -> None:
    global _requested
    _requested = None


class PreemptionHandler:
    """Installs flag-setting handlers for ``signals`` (names or numbers); :meth:`uninstall` restores the old ones.

    Handlers can only be installed from the main thread; elsewhere (simulated
    ranks) this is a no-op and :func:`request` stands in for a signal.
    """

    def __init__(self, signals=DEFAULT_SIGNALS):
        self.signals = [_signum(s) for s in signals]
        self._previous = {}

    def install(self) -> "PreemptionHandler":
        if threading.current_thread() is not threading.main_thread():
            return self
        clear()
        for s in self.signals:
            self._previous[s] = signal.signal(s, _handler)
        return self

    def uninstall(self) -> None:
        for s, prev in self._previous.items():
            try:
                signal.signal(s, prev if prev is not None else signal.SIG_DFL)
            except (ValueError, TypeError):
                pass
        self._previous.clear()

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.uninstall()


def ignore_further_signals(signals=DEFAULT_SIGNALS) -> None:
    """After the preemption checkpoint: ignore more of these signals until the process exits.

    Python puts its own handlers back to the default action during interpreter
    shutdown, so a late duplicate SIGTERM (``mpiexec`` forwards each one it
    gets) would otherwise kill a rank that is already exiting cleanly.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for s in signals:
        try:
            signal.signal(_signum(s), signal.SIG_IGN)
        except (ValueError, OSError):
            pass


def _handler(signum, frame):
    # Only a flag: a handler may run between any two bytecodes, even inside a checkpoint write.
    request(signum)


def _signum(s) -> int:
    if isinstance(s, int):
        return s
    name = str(s).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    if not hasattr(signal, name):
        raise ValueError(f"unknown signal {s!r} (expected e.g. SIGTERM, SIGUSR1)")
    return int(getattr(signal, name))


def _parse_at(env: str) -> list[tuple]:
    out = []
    for item in os.environ.get(env, "").split(","):
        parts = item.strip().split(":")
        if len(parts) >= 2 and parts[0].strip().isdigit() and parts[1].strip().isdigit():
            out.append((int(parts[0]), int(parts[1]), *parts[2:]))
    return out


class StepGuard:
    """Called by the trainer once per optimizer step, after the gradient average and before the update.

    ``nonfinite``: ``"error"``, ``"skip"`` or ``"off"``; ``max_nonfinite``
    consecutive skipped steps are an error too. ``preemption``: watch the
    preemption flag. Returns True when the step must be skipped. One
    allgather of two numbers per step (only in multi-rank runs, and only when
    something is watched); afterwards :attr:`preempt_signal` is the agreed
    signal (or None) and :attr:`last_bad_ranks` the ranks that saw non-finite values.
    """

    def __init__(self, comm, nonfinite: str = "skip", preemption: bool = True, max_nonfinite: int = 10, log=None):
        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"train.nonfinite must be one of {', '.join(NONFINITE_POLICIES)}, got {nonfinite!r}")
        if int(max_nonfinite) < 1:
            raise ValueError(f"train.max_nonfinite must be >= 1, got {max_nonfinite!r}")
        self.comm, self.nonfinite, self.preemption = comm, nonfinite, bool(preemption)
        self.max_nonfinite = int(max_nonfinite)
        self.consecutive = 0  # steps skipped in a row (a resumed run starts counting afresh)
        self.rank, self.world = int(comm.rank), int(comm.size)
        self.preempt_signal: int | None = None
        self.last_bad_ranks: list[int] = []
        self.log = log
        self._kill = [(r, s) for r, s, *_ in _parse_at("DISTNN_FAULT_KILL_AT") if r == self.rank]
        self._nan = {s for r, s, *_ in _parse_at("DISTNN_FAULT_NONFINITE_AT") if r == self.rank}
        self._sig = [(s, (rest[0] if rest else "SIGTERM")) for r, s, *rest in _parse_at("DISTNN_FAULT_SIGNAL_AT")
                     if r == self.rank]
        self._delay = float(os.environ.get("DISTNN_FAULT_STEP_DELAY", "0") or 0)

    @property
    def active(self) -> bool:
        return self.nonfinite != "off" or self.preemption

    def __call__(self, trainer, loss_sum: float) -> bool:
        step = trainer.state.global_step + 1  # the step being taken
        self._inject(trainer, step)
        bad = self.nonfinite != "off" and not (math.isfinite(loss_sum) and _grads_finite(trainer.model))
        sig = (_requested or 0) if self.preemption else 0
        if self.world > 1 and self.active:
            flags = np.asarray(self.comm.allgather(np.array([float(bad), float(sig)])))
            bad_ranks = [r for r in range(self.world) if flags[r, 0]]
            sig = int(flags[:, 1].max())
        else:
            bad_ranks = [self.rank] if bad else []
        self.last_bad_ranks = bad_ranks
        if sig and self.preempt_signal is None:
            self.preempt_signal = sig
        if not bad_ranks:
            self.consecutive = 0
            return False
        where = (f"step {step} (epoch {trainer.state.epoch + 1}, batch {trainer.state.batch_in_epoch + 1}) "
                 f"on rank(s) {bad_ranks}")
        if self.nonfinite == "error":
            raise self._agreed(NonFiniteError(
                f"non-finite loss or gradients at {where}; the step was not applied and nothing was saved "
                f"from it (set train.nonfinite = \"skip\" to skip such steps)"))
        self.consecutive += 1
        if self.consecutive >= self.max_nonfinite:
            raise self._agreed(NonFiniteError(
                f"non-finite loss or gradients at {where}: {self.consecutive} steps in a row "
                f"(train.max_nonfinite = {self.max_nonfinite}); the run is diverging (lower optimizer.lr, "
                f"or set train.grad_clip)"))
        trainer.state.skipped_steps = getattr(trainer.state, "skipped_steps", 0) + 1
        if self.log is not None:
            self.log.warning("skipped %s: non-finite loss or gradients (%d step(s) skipped so far)", where,
                             trainer.state.skipped_steps)
        return True

    def _agreed(self, exc):
        exc.report = self.rank == 0  # raised on every rank at the same step: rank 0 reports it
        return exc

    def _inject(self, trainer, step):
        if self._delay:
            time.sleep(self._delay)
        for r, s in self._kill:
            if s == step:
                os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(10)
        for s, name in self._sig:
            if s == step:
                os.kill(os.getpid(), _signum(name))
        if step in self._nan:
            for p in trainer.model.parameters():
                if p.grad is not None:
                    p.grad.reshape(-1)[0] = np.nan
                    break


def _grads_finite(model) -> bool:
    """One reduction per gradient (a sum is NaN/inf iff some entry is, barring float overflow)."""
    from distnn.backend import get_array_module

    for p in model.parameters():
        g = p.grad
        if g is not None:
            xp = get_array_module(g)
            if not bool(xp.isfinite(g.sum())):
                return False
    return True
