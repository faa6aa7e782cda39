"""What an :class:`~distnn.distributed.mpi_comm.MPICommunicator` does when a collective waits too long:
tell the other ranks where this one waits, notice a peer that has exited or died, and at the deadline
print which ranks are missing and abort the job (a mixin of the communicator)."""
from __future__ import annotations

import os
import socket
import sys
import time
import traceback
import weakref

from . import exit_watch
from .watchdog import FORWARD_GRACE_S, report_grace

_DIAG_TAG = 7771

#: this process's communicators not yet freed: a rank waiting in one of them answers timeout reports sent on
#: any (SyncBatchNorm and DataParallel each use a split of their own: the ranks of a job that skipped a
#: forward wait in collectives of different communicators, and each must say where it waits, not look absent)
_live = weakref.WeakSet()


def _mpi():
    """mpi4py's MPI module (:func:`.mpi_comm._mpi`, looked up there when called: it imports MPI on first use)."""
    from .mpi_comm import _mpi

    return _mpi()


def _report_and_abort(text: str, status: int) -> None:
    from .mpi_comm import _report_and_abort

    _report_and_abort(text, status)


def _abort_world(world, code: int) -> None:
    from .mpi_comm import _abort_world

    _abort_world(world, code)


class MPIWatchdog:
    """The communicator's deadline side (mixed into :class:`~.mpi_comm.MPICommunicator`, whose ``_diag``
    duplicate, ``_heard``, ``_answered`` and ``_exit_key`` it uses). MPI and the abort are looked up in
    :mod:`.mpi_comm` when called, where they live."""

    def _where(self, what) -> tuple:
        """(rank, collectives started, the one we wait in, host, pid): what a timeout report says of a rank."""
        if isinstance(what, tuple):  # an allreduce's (seq, op, shape, dtype)
            what = f"collective #{what[0]} allreduce(op={what[1]!r}, shape={tuple(what[2])}, dtype={what[3]})"
        return (self.rank, self._seq, what, socket.gethostname(), os.getpid())

    def _watch_exits(self, key: str, world_ranks) -> None:
        self._exit_key, self._world_ranks = key, tuple(world_ranks)
        exit_watch.watch(self)

    def _waiting_long(self, what) -> None:
        """Called now and then while a collective waits long: a peer that has exited ends the job,
        and timeout reports of other ranks get their answer."""
        if self._exit_key is not None:
            gone = exit_watch.exited_member(self)
            if gone is not None:
                self._peer_exited(self._where(what)[2], *gone)
            died = exit_watch.died_member(self)
            if died is not None:
                self._peer_died(self._where(what)[2], *died)
        self._answer_reports(what)
        self._answer_reports_elsewhere(what)

    def _answer_reports_elsewhere(self, what) -> None:
        """Answer the timeout reports sent on this process's other communicators: we wait here, not there."""
        elsewhere = None
        for other in list(_live):
            if other is not self:
                elsewhere = elsewhere or f"{self._where(what)[2]} of another communicator"
                other._answer_reports(elsewhere)

    def _peer_exited(self, what, world_rank, host, pid, started) -> None:
        """Report that world rank ``world_rank`` ended its process and will never join ``what``; abort."""
        MPI = _mpi()
        me = MPI.COMM_WORLD.Get_rank()
        size = MPI.COMM_WORLD.Get_size()
        status = exit_watch.abort_status(world_rank)  # the job ends with the rank's own status (else 1)
        _report_and_abort(
            f"[distnn] rank {me} of {size}: rank {world_rank} ({host} pid {pid}) has ended its process "
            f"(sys.exit, or the end of its script) after starting {started} collective(s) here, so {what} "
            f"can never complete; aborting all {size} ranks"
            + (f" with its exit status {status}" if status != 1 else "") + ". Every rank must run the same "
            "collectives: a rank that stops early must make the others stop too.\n", status)

    def _peer_died(self, what, world_rank, pid) -> None:
        """Report that world rank ``world_rank``'s process (on this host) ended without an exit notice; abort."""
        MPI = _mpi()
        me, size = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()
        _report_and_abort(
            f"[distnn] rank {me} of {size}: rank {world_rank} ({socket.gethostname()} pid {pid}) has died "
            f"(killed by a signal, such as kill -9 or the out-of-memory killer, or crashed) without a word, so "
            f"{what} can never complete; aborting all {size} ranks.\n", 1)

    def _answer_reports(self, what) -> None:
        """While waiting long: tell each rank whose collective timed out where we wait.

        Its report then lists this rank as waiting in a collective (perhaps a
        different one) rather than as missing, even when our own timeout has
        not come yet.
        """
        MPI = _mpi()
        status = MPI.Status()
        while self._diag.iprobe(source=MPI.ANY_SOURCE, tag=_DIAG_TAG, status=status):
            src = status.Get_source()
            self._heard[src] = self._diag.recv(source=src, tag=_DIAG_TAG)
            self._answered.append(self._diag.isend(self._where(what), dest=src, tag=_DIAG_TAG))

    def _timed_out(self, what, waited: float) -> None:
        """Learn which ranks are missing, print a report, abort the job. Does not return."""
        MPI = _mpi()
        me = self._where(what)
        what = me[2]
        # Every rank that times out tells all others where it waits, and ranks waiting long answer
        # (_answer_reports); ranks that never answer within the grace period are in no collective.
        sends = [self._diag.isend(me, dest=r, tag=_DIAG_TAG) for r in range(self.size) if r != self.rank]
        answers = {**self._heard, self.rank: me}
        end = time.monotonic() + report_grace(self.timeout)
        status = MPI.Status()
        while len(answers) < self.size and time.monotonic() < end:
            if self._diag.iprobe(source=MPI.ANY_SOURCE, tag=_DIAG_TAG, status=status):
                msg = self._diag.recv(source=status.Get_source(), tag=_DIAG_TAG)
                answers[msg[0]] = msg
            else:
                self._answer_reports_elsewhere(what)  # (a rank timed out there may ask us at the same time)
                time.sleep(0.01)
        missing = [r for r in range(self.size) if r not in answers]
        where = "" if self._is_world else f" (world rank {self.world_rank})"  # a sub-communicator's ranks differ
        lines = [f"[distnn] rank {self.rank} of {self.size}{where}: {what} did not complete within {waited:.1f} s "
                 f"(DISTNN_COLLECTIVE_TIMEOUT={self.timeout}).",
                 f"[distnn] missing ranks (in no collective: no answer): {missing}"]
        for r in sorted(answers):
            _, seq, w, host, pid = answers[r]
            lines.append(f"[distnn]   rank {r} ({host} pid {pid}) waits in {w}")
        if len({answers[r][2] for r in answers}) > 1:
            lines.append("[distnn] ranks disagree about the collective: a collective was skipped or reordered "
                         "(e.g. called inside `if rank == 0`)")
        here = os.path.dirname(os.path.abspath(__file__))
        user_frames = [f for f in traceback.extract_stack()[-16:] if not f.filename.startswith(here)]
        lines.append("[distnn] waiting here:\n" + "".join(traceback.format_list(user_frames)))
        lines.append("[distnn] aborting the MPI job")
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
        time.sleep(FORWARD_GRACE_S)  # let the launcher forward the report before the abort
        del sends
        _abort_world(MPI.COMM_WORLD, 1)
