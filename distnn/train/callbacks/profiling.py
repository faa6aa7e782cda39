"""``run.profile`` (``distnn train --profile DIR``): a few training steps profiled with distnn.profiler.

Every rank profiles itself (under mpiexec a process, with --simulate-ranks a thread: see
:class:`distnn.profiler.profile`) on the schedule ``run.profile_steps = [wait, warmup, active]``, counted in
optimizer steps from the start of this session's training (a resumed run profiles the steps after its
checkpoint). Once the active steps are recorded the profiler stops, and the rest of the run pays nothing.
A step's range (``ProfilerStep#N``, torch's name, N from 0) holds what runs from the end of the step before
to its own end: at an epoch's start, the epoch's validation and callbacks before it too.
Each rank writes ``DIR/rank-R.json`` (a Chrome trace: chrome://tracing, https://ui.perfetto.dev); rank 0
writes ``DIR/summary-rank0.txt``, the ``key_averages`` table of its ops by self CPU time, and under it its
collectives and gradient exchange, which a short table may otherwise cut off.

Profiling records host times and changes nothing that is computed: the trained weights are the same
bitwise with and without it.
"""
from __future__ import annotations

import os

from .base import Callback

TRACE = "rank-{rank}.json"
SUMMARY = "summary-rank0.txt"
ROW_LIMIT = 25  # rows of the summary's main table


def is_communication(name: str) -> bool:
    """Whether a profiled range is a collective ("mpi:allreduce", "inprocess:barrier") or DataParallel's
    gradient exchange ("DataParallel.allreduce_bucket", "DataParallel.wait_gradients")."""
    backend, colon, _ = name.partition(":")
    return name.startswith("DataParallel.") or (colon == ":" and backend.isidentifier() and " " not in name)


class ProfileSteps(Callback):
    """Profile steps ``wait + warmup`` to ``wait + warmup + active - 1`` (0-based) of this rank's training
    into ``directory`` (created if missing): ``rank-<rank>.json`` and, with ``summary=True`` (rank 0),
    ``summary-rank0.txt``. Local only: no collective, so a rank never waits for another's files."""

    def __init__(self, directory: str, rank: int, wait: int = 1, warmup: int = 1, active: int = 3,
                 summary: bool = False, log=None):
        from distnn.profiler import schedule

        self.directory, self.rank, self.summary, self.log = os.fspath(directory), int(rank), summary, log
        self.wait, self.warmup, self.active = wait, warmup, active
        self.schedule = schedule(wait=wait, warmup=warmup, active=active, repeat=1)  # (checks the counts)
        self.prof = None

    @property
    def total(self) -> int:
        return self.wait + self.warmup + self.active

    def on_train_begin(self, trainer) -> None:
        from distnn.profiler import profile

        os.makedirs(self.directory, exist_ok=True)  # (checked writable before training: job.check_profile_dir)
        self.prof = profile(schedule=self.schedule, on_trace_ready=self._write)
        self.prof.start()

    def on_batch_end(self, trainer, logs: dict) -> None:
        if self.prof is None:
            return
        self.prof.step()  # (after the last active step: the recording is handed to _write)
        if self.prof.step_num >= self.total:
            self._stop()

    def on_loop_end(self, trainer) -> None:
        # training ended inside the schedule (fewer steps than it spans): what was recorded is written
        if self.prof is not None:
            steps = self.prof.step_num
            self._stop()
            if self.log is not None and self.summary:
                what = "nothing was recorded" if steps <= self.wait + self.warmup else "the recording is shorter"
                self.log.warning("run.profile: training ran %d steps, fewer than the %d of run.profile_steps = "
                                 "[%d, %d, %d]: %s", steps, self.total, self.wait, self.warmup, self.active, what)

    def on_exception(self, trainer, exception: BaseException) -> None:
        if self.prof is not None:  # (stop recording; a failed run's partial trace is not written)
            self.prof.on_trace_ready = None
            self._stop()

    def _stop(self) -> None:
        prof, self.prof = self.prof, None
        prof.stop()

    def _write(self, prof) -> None:
        events = prof.events()
        path = os.path.join(self.directory, TRACE.format(rank=self.rank))
        events.export_chrome_trace(path)
        if self.summary:
            with open(os.path.join(self.directory, SUMMARY), "w") as f:
                f.write(summary_text(events, self.rank, (self.wait, self.warmup, self.active)))
        if self.log is not None and self.summary:
            self.log.info("profile of this session's steps %d-%d written to %s: %s of each rank, %s",
                          self.wait + self.warmup + 1, self.total, self.directory, TRACE.format(rank="R"), SUMMARY)


def summary_text(events, rank: int, steps) -> str:
    """The summary of one rank's recording: the ops by self CPU time, then the communication rows."""
    wait, warmup, active = steps
    averages = events.key_averages()
    first = wait + warmup
    head = (f"distnn profile, rank {rank}: optimizer steps {first + 1}-{first + active} of this session's training "
            f"(ProfilerStep#{first}-#{first + active - 1}; run.profile_steps = [{wait}, {warmup}, {active}]); "
            "host (CPU) times\n")
    comm = type(averages)(a for a in averages if is_communication(a.key))
    out = [head, f"top {ROW_LIMIT} by self CPU time:\n",
           averages.table(sort_by="self_cpu_time_total", row_limit=ROW_LIMIT)]
    if comm:
        out += ["\ncommunication (collectives and DataParallel's gradient exchange; % of these rows):\n",
                comm.table(sort_by="self_cpu_time_total", row_limit=-1)]
    else:
        out.append("\ncommunication: none recorded (one rank)\n")
    return "".join(out)
