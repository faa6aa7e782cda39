"""What every rank of the :class:`~distnn.train.trainer.Trainer` holds alike: rank 0's value, a stop any
rank asks for, sums over ranks, and the run's best metric judged from them.

Ranks must never take different paths: a decision taken on one rank's own value (a metric that differs in
its last bits, a clock, a file it sees) would leave the others waiting in a collective it skips. So every
decision goes through one of these: :meth:`~RankAgreementMixin.agree` (rank 0's value, broadcast), a stop
any rank asks for (:meth:`~RankAgreementMixin.request_stop`, agreed by an allgather after the epoch), or a
sum over ranks (the epoch's training metrics). A callback may send its own end-of-epoch payload with the
stop's allgather instead of a collective of its own (:meth:`~RankAgreementMixin.exchange_at_epoch_end`: the
async checkpoint's gather does). The run's best (``state.best_metric``/``best_epoch``) is
tracked from the epoch logs, whose validation metrics are already all-rank values. Separate from
:mod:`distnn.train.trainer` (the loop) because callbacks rely on these as the Trainer's protocol for
collective decisions, whatever loop calls them.
"""
from __future__ import annotations

import math

import numpy as np

from .callbacks.base import final_report, metric_counts


class RankAgreementMixin:
    """The Trainer's collective decisions (reads its comm, world, state, history, monitor and monitor_mode)."""

    def agree(self, value):
        """Rank 0's ``value`` on every rank: the basis of every collective decision."""
        return value if self.world == 1 else self.comm.broadcast_object(value, root=0)

    def request_stop(self, reason: str = "") -> None:
        """Ask to stop after this epoch; the trainer agrees on it across ranks before acting."""
        self.state.stop_requested = True
        self.state.stop_reason = self.state.stop_reason or reason

    def exchange_at_epoch_end(self, key, payload, receive) -> bool:
        """Send ``payload`` with this epoch end's stop agreement instead of a collective of one's own.

        For a callback, from its ``on_epoch_end`` (collectively: every rank, the same ``key``, at the
        same epoch end): the trainer gathers every rank's ``payload`` in the one allgather that agrees
        on a stop after every callback's ``on_epoch_end`` (also when ``max_steps`` ends training there),
        and calls ``receive(payloads)`` on every rank with the list in rank order, before it acts on the
        stop. Returns False, sending nothing, outside ``fit``'s epoch ends: the caller then makes its
        own collective.
        """
        riders = getattr(self, "_epoch_end_riders", None)
        if riders is None:
            return False
        if key in riders:
            raise ValueError(f"exchange_at_epoch_end: {key!r} already sends a payload at this epoch end")
        riders[key] = (payload, receive)
        return True

    def _agreed_stop(self, agree: bool = True) -> bool:
        """The end of an epoch's exchange: whether any rank asked to stop (``agree``), and the payloads of
        :meth:`exchange_at_epoch_end` delivered; with neither to exchange, no collective."""
        riders, self._epoch_end_riders = getattr(self, "_epoch_end_riders", None) or {}, None
        flag = bool(self.state.stop_requested)
        if self.world > 1 and riders:
            got = self.comm.allgather_object((flag, {key: payload for key, (payload, _) in riders.items()}))
            flag = any(f for f, _ in got)
            for key, (_, receive) in riders.items():
                receive([payloads[key] for _, payloads in got])
        elif self.world > 1 and agree:
            flag = any(self.comm.allgather_object(flag))
        else:
            for payload, receive in riders.values():
                receive([payload])
        return flag

    def _reduce(self, values) -> list[float]:
        """Sum ``values`` over ranks (float64)."""
        arr = np.asarray(values, dtype=np.float64)
        if self.world > 1:
            arr = np.asarray(self.comm.allreduce(arr), dtype=np.float64)
        return [float(v) for v in arr]

    def _count_final_report(self):
        """The last epoch's validation off the eval_every schedule scores the weights training ends with: a
        candidate for the run's best now that no epoch follows (after ``on_loop_end``'s last checkpoint took
        the state a resume goes on from; see callbacks.base.final_report)."""
        value = final_report(self, self.monitor, self.history[-1] if self.history else None)
        best = self.state.best_metric
        if value is not None and (best is None or (value < best if self.monitor_mode == "min" else value > best)):
            self.state.best_metric, self.state.best_epoch = value, len(self.history) - 1

    def _track_best(self, logs):
        if not metric_counts(self, self.monitor):
            return
        v = logs.get(self.monitor)
        if v is None or not math.isfinite(v):
            return
        best = self.state.best_metric
        if best is None or (v < best if self.monitor_mode == "min" else v > best):
            self.state.best_metric, self.state.best_epoch = float(v), self.state.epoch
