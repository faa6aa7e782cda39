"""DataParallel's side of :class:`~.join.Join` (a mixin of the wrapper): uneven inputs across ranks.

``with dp.join():`` (PyTorch's ``DistributedDataParallel.join``) lets ranks
run different numbers of steps. Each synchronization of an active rank starts
with the context's round (:meth:`Join.notify_join_context`: one small
allreduce, only inside an enabled join; none otherwise). A rank that has
joined answers each round in which some rank is active with one *shadow*
synchronization: no gradients and zero samples, through the very code an
active rank's synchronization runs, so it makes the same collectives in the
same order (every bucket's allreduce, or the collectives of a compressed
bucket, PowerSGD's included; the step meta's allreduce when it has its own;
the sparse gradients' allgathers, with no rows of its own; the buffer broadcast). It then holds the step's averaged gradients like every
rank. (With PowerSGD's error feedback, a joined rank's remaining error goes
into its first shadow step, as it would into its next real one.)

The gradient of a step is the gradient of one process on the union of the
active ranks' batches: joined ranks count zero samples, so the sample-count
weighting (:mod:`.data_parallel`) averages over the active ranks' samples
only. That is the rule with ``weight_by_samples=True`` (the default), where
``divide_by_initial_world_size`` may be None or False and True is refused (a
sum divided by the initial world size is not a mean over samples). With
``weight_by_samples=False`` (a plain mean over ranks) PyTorch's rule applies:
True (and None) divides the sum of the active ranks' gradients by the initial
world size, False by the number of active ranks.

While a join is active:

* buffers are broadcast from the highest active rank, not rank 0, which may
  have joined and holds stale statistics (PyTorch's choice);
* the ``check_every`` replica check is skipped: a joined rank's parameters
  lag unless its optimizer is in the join;
* when every rank has joined, parameters and buffers are broadcast from the
  highest rank of the last round that had an active rank, so all replicas
  leave equal. To keep optimizer state equal too, put the optimizer in the
  join, ``with Join([dp, optimizer]):``: a joined rank then steps it with
  each round's averaged gradients (:class:`~.join.JoinableOptimizer`).

``no_sync()``: micro-batches under it make no collective and start no round;
the synchronizing backward that follows is one round (as PyTorch, whose join
shadows only synchronizing iterations). A round starts at the start of a
synchronization (the first gradient of a synchronizing backward, or
:meth:`finish_gradient_synchronization`), not in forward as in PyTorch, so
``throw_on_early_termination`` raises there. Models with SyncBatchNorm
layers are refused: their forward's collectives cannot be shadowed.
"""
from __future__ import annotations

from typing import NamedTuple

from .join import Join, Joinable, JoinHook
from .sync_abandoned import settle


class _JoinStep(NamedTuple):
    """What a synchronization inside a join needs: how many ranks are active, which one's buffers
    count, and the factor for ``weight_by_samples=False`` with ``divide_by_initial_world_size=False``."""
    active: int
    root: int
    scale: float


class DataParallelJoin(Joinable):
    """The join methods of :class:`~.data_parallel.DataParallel` (see the module docstring)."""

    _join_step = None  # this synchronization's _JoinStep while a join is active
    _join_divide = None  # the divide_by_initial_world_size of the current join

    def join(self, divide_by_initial_world_size=None, enable: bool = True, throw_on_early_termination: bool = False):
        """A :class:`~.join.Join` context over this model alone: ``with dp.join(): for batch in mine: ...``.

        ``divide_by_initial_world_size``: None (default) takes distnn's rule,
        the mean over the samples of the ranks still active (with
        ``weight_by_samples=False``: PyTorch's default, the sum over active
        ranks divided by the initial world size); see :mod:`.data_parallel_join`.
        ``enable=False``: a no-op context. ``throw_on_early_termination``:
        every rank raises once the first rank has run out of inputs.
        """
        settle(self)  # (the last step's, if this rank abandoned it: .sync_abandoned)
        return Join([self], enable=enable, throw_on_early_termination=throw_on_early_termination,
                    divide_by_initial_world_size=divide_by_initial_world_size)

    def join_hook(self, divide_by_initial_world_size=None, **kwargs) -> JoinHook:
        if divide_by_initial_world_size not in (None, True, False):
            raise TypeError(f"divide_by_initial_world_size must be None, True or False, "
                            f"got {divide_by_initial_world_size!r}")
        if divide_by_initial_world_size is True and self.weight_by_samples:
            raise ValueError("DataParallel.join: divide_by_initial_world_size=True needs weight_by_samples=False; "
                             "with sample weighting each step's gradient is the mean over the active ranks' "
                             "samples (pass None or False)")
        for name, m in self.module.named_modules():
            if type(m).__name__ == "SyncBatchNorm":
                raise ValueError(f"DataParallel.join: the model has a SyncBatchNorm layer ({name!r}), whose forward "
                                 "makes collectives a joined rank cannot shadow; use BatchNorm inside join")
        self._join_divide = divide_by_initial_world_size
        return _DataParallelJoinHook(self)

    @property
    def join_device(self):
        return None

    @property
    def join_process_group(self):
        return self._comm

    def _join_notify(self) -> None:
        """An active rank's start of a synchronization inside a join: the round, then this step's rule."""
        Join.notify_join_context(self)  # (a no-op when another participant notifies)
        ranks = self._join_config.join.active_ranks
        if ranks:
            self._join_step = self._join_step_for(ranks)

    def _join_step_for(self, ranks) -> _JoinStep:
        scale = 1.0
        if not self.weight_by_samples and self._join_divide is False:
            scale = self.comm.size / len(ranks)  # ranks packed 1 / size each
        return _JoinStep(len(ranks), max(ranks), scale)


class _DataParallelJoinHook(JoinHook):
    def __init__(self, dp):
        self.dp = dp

    def main_hook(self) -> None:
        """One shadow synchronization: zero samples, no gradients (so this rank counts as not having them)."""
        dp = self.dp
        if dp.comm.size == 1:
            return
        ranks = dp._join_config.join.active_ranks
        dp._join_step = dp._join_step_for(ranks)
        for p in dp._params:
            p.grad = None
        # (a step this rank abandoned just before it joined is this shadow: it sends no samples, drops nothing)
        dp._explicit_samples = 0
        dp._in_sync = True
        dp._complete_sync()
        dp._synced_since_finish = False

    def post_hook(self, is_last_joiner: bool) -> None:
        """Replicas leave equal: parameters and buffers from the highest rank of the last active round."""
        dp = self.dp
        ranks = dp._join_config.join.last_active_ranks
        if dp.comm.size > 1 and ranks:
            module = dp.module
            dp._broadcast_tensors([t for _, t in module.named_parameters()] + [b for _, b in module.named_buffers()],
                                  root=max(ranks))
