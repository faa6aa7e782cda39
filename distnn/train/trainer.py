"""The training loop: sharded data, averaged gradients, agreed decisions, callbacks.

Every rank runs the same :class:`Trainer` on its own shard of the data:

* ``batch_size`` is the GLOBAL batch of one optimizer step. Each epoch the
  training indices are permuted with a seed every rank shares (reseeded per
  epoch), and rank ``r`` of ``world`` takes every ``world``-th index starting at
  ``r``. Its ``k``-th local batch is positions ``k*b .. k*b+b`` of its shard,
  with ``b = batch_size / world``; the union over ranks of their ``k``-th
  batches is exactly the ``k``-th global batch of a 1-rank run. That is what
  makes 1 rank with batch B match 2 ranks with B/2 each, dropout and
  augmentation included: their random draws belong to a sample's place in
  the global batch, not to a rank (:mod:`distnn.data.batch_random`).
* When the data does not split evenly, shards are padded with repeated
  samples; the padded ones are masked out of the loss and out of every metric
  (targets set to ``ignore_index``), never counted twice.
* The loss of a step is the mean over this rank's valid samples;
  :class:`~distnn.distributed.DataParallel` averages gradients weighted by each
  rank's sample count, so the update equals the 1-rank mean over the global
  batch. Gradient accumulation splits a step into micro-batches; all but the
  last run under ``no_sync()``.
* Validation metrics are sums and counts reduced over ranks, so every rank
  holds the same values; decisions (stop, LR change) are agreed: rank 0's
  value broadcast (``agree``), or a stop any rank asks for (an allgather), so
  ranks cannot take different paths.

The loop itself is short; early stopping, LR schedules, progress, metrics files
and plots are callbacks. All run state is reachable from :meth:`state_dict`.

What lives where: this module holds the loop (``fit``, epochs, the
validation); one optimizer step (``train_step``: accumulation, the gradient
exchange, the step guard) is :mod:`distnn.train.trainer_step`'s; the per-step
forward pass and loss (adversarial inputs, the L1 gradient) are
:mod:`distnn.train.trainer_objective`'s; :class:`TrainState`
and the checkpoint methods (``state_dict``, ``load_state_dict``,
``replica_state``) are :mod:`distnn.train.trainer_state`'s; batched
evaluation over arrays (``eval_outputs``, ``evaluate_arrays``) is
:mod:`distnn.train.batch_eval`'s and ``Trainer.evaluate`` (a dataset split
over ranks) :mod:`distnn.train.trainer_evaluation`'s; the collective decisions (``agree``,
``request_stop``, the agreed stop, sums over ranks, the run's best) are
:mod:`distnn.train.trainer_agreement`'s; mixed precision is
:mod:`distnn.train.mixed_precision`'s. The names are re-exported here.
"""
from __future__ import annotations

import math
import time

import numpy as np

from distnn import random as dn_random
from distnn.backend import get_array_module
from distnn.optim.regularization import split_decay_parameters

from .batch_eval import eval_outputs, evaluate_arrays
from .callbacks.base import CallbackList
from .logging_utils import get_logger
from .mixed_precision import MixedPrecision
from .preemption import during_fit, fault_point
from .trainer_agreement import RankAgreementMixin
from .trainer_objective import StepObjectiveMixin
from .trainer_evaluation import EvaluationMixin
from .trainer_data import check_batch_sizes, check_dataset, collate_xy, input_dtype, train_batches
from .trainer_state import TrainerStateMixin, TrainState
from .trainer_step import TrainStepMixin

# (eval_outputs, evaluate_arrays and TrainState live in the modules above and are importable from here too)
__all__ = ["Trainer", "TrainState", "default_comm", "shard", "eval_outputs", "evaluate_arrays"]


def default_comm():
    """This process's communicator: MPI under an MPI launcher, else a single local rank."""
    from distnn.distributed import init

    return init()


def shard(n: int, comm, shuffle: bool, seed: int = 0, drop_last: bool = False):
    """This rank's :class:`~distnn.distributed.DistributedSampler` over ``n`` samples (no communication)."""
    from distnn.distributed import DistributedSampler

    return DistributedSampler(n, num_replicas=comm.size, rank=comm.rank, shuffle=shuffle, seed=seed,
                              drop_last=drop_last)


def _changes_gradients(ddp_kwargs) -> bool:
    """Whether DataParallel with these options changes gradients beyond averaging (PowerSGD does)."""
    from distnn.distributed.powersgd import get_powersgd

    return get_powersgd((ddp_kwargs or {}).get("compression")) is not None


def _data_parallel(model, comm, **kwargs):
    from distnn.distributed import DataParallel

    return DataParallel(model, comm, **kwargs)


class Trainer(TrainStepMixin, StepObjectiveMixin, TrainerStateMixin, EvaluationMixin, RankAgreementMixin):
    """Data-parallel training of ``model`` on ``train_data``: a :class:`distnn.data.Dataset`, an ``(x, y)``
    pair of arrays, or any map-style dataset of ``(x, y)`` samples (``TensorDataset``, your own
    ``__getitem__``), sharded over ranks by the Trainer's own sampler (:mod:`distnn.train.trainer_data`).

    Arguments: ``optimizer`` (a distnn optimizer over ``model.parameters()``);
    ``val_data`` (evaluated every epoch; metrics ``val_loss``, ``val_accuracy``);
    ``comm`` (a Communicator; default ``distnn.distributed.init()``);
    ``batch_size`` (GLOBAL samples per optimizer step); ``epochs``;
    ``callbacks`` (called in the order given, except that checkpoint callbacks such as
    :class:`~distnn.train.callbacks.checkpoint.ModelCheckpoint` run after all the others in every hook,
    as in PyTorch Lightning, so a checkpoint holds the outcome of every other callback, e.g. early
    stopping's; :class:`~distnn.train.callbacks.base.CallbackList`); ``transform``/``eval_transform`` (per-batch ``t(x, rng)``:
    augmentation + standardization for training, standardization for eval);
    ``clip_grad_norm`` (max global L2 norm, or None); ``accumulation_steps``
    (micro-batches per step); ``seed`` (data order, augmentation and dropout);
    ``shuffle``/``drop_last`` (training order; drop the epoch's last incomplete GLOBAL batch,
    so an epoch has ``len(train_data) // batch_size`` steps on any number of ranks);
    ``eval_batch_size`` (samples per evaluation batch; ranks evaluate whole batches in turn);
    ``eval_every`` (validate every N epochs; the last epoch is validated too, as a report that
    monitors skip: ``validation_counts`` is False then; at the end it counts for the run's best);
    ``max_steps`` (stop after this many optimizer steps); ``label_smoothing``;
    ``l1`` (L1 regularization strength: ``l1 * sum |w|`` over ``l1_params``, by default the weights
    of :func:`~distnn.optim.split_decay_parameters`, never the biases or normalization parameters);
    ``max_norm`` (max-norm constraint: after each optimizer step, each unit's incoming weight vector
    with an L2 norm above ``max_norm`` is scaled back to it, :func:`~distnn.optim.max_norm_`; 0 or
    None: off) over ``max_norm_params`` (by default those same weights, never the biases);
    ``adversarial_eps``/``adversarial_weight`` (adversarial training, Goodfellow et al.: the loss is
    ``w * J(x) + (1 - w) * J(x_adv)`` with FGSM inputs ``x_adv`` (:mod:`distnn.train.adversarial`)
    made from each rank's transformed batch, so ``eps`` is in standardized units; 0: off);
    ``monitor`` (metric tracked as the run's best, e.g. ``val_loss``);
    ``data_parallel`` (False: no DataParallel on several ranks, so gradients are not averaged and
    each rank steps on its own shard; for a model that synchronizes itself: checkpoints hold every
    rank's replica, so each rank resumes its own);
    ``ddp_kwargs`` (options of :class:`~distnn.distributed.DataParallel`); ``precision``/``grad_scaler``
    ("32", or "16-mixed": float16 autocast and a loss scaler, :mod:`distnn.train.mixed_precision`).
    """

    def __init__(self, model, optimizer, train_data, val_data=None, *, comm=None, batch_size: int = 64,
                 epochs: int = 10, callbacks=(), transform=None, eval_transform=None, clip_grad_norm=None,
                 accumulation_steps: int = 1, seed: int = 0, shuffle: bool = True, drop_last: bool = False,
                 eval_batch_size: int | None = None, eval_every: int = 1, max_steps: int | None = None,
                 label_smoothing: float = 0.0, l1: float = 0.0, l1_params=None, max_norm=None, max_norm_params=None,
                 adversarial_eps: float = 0.0, adversarial_weight: float = 0.5,
                 monitor: str = "val_loss", monitor_mode: str = "auto",
                 data_parallel: bool = True, ddp_kwargs: dict | None = None, log=None, precision: str = "32",
                 grad_scaler=None):
        self.comm = comm if comm is not None else default_comm()
        self.rank, self.world = int(self.comm.rank), int(self.comm.size)
        self.is_main = self.rank == 0
        self.log = log or get_logger("train")
        self.model = model
        self.optimizer = optimizer
        # (x, y) arrays (the fast path), or None for a map-style dataset; bad datasets are refused here
        self._train_arrays = check_dataset(train_data, "train_data")
        if val_data is not None:
            check_dataset(val_data, "val_data")
        self.train_data, self.val_data = train_data, val_data
        self.batch_size, self.epochs = int(batch_size), int(epochs)
        self.accumulation_steps = int(accumulation_steps)
        self.transform, self.eval_transform = transform, eval_transform
        self.clip_grad_norm = clip_grad_norm
        self.seed = int(seed)
        self.eval_batch_size = int(eval_batch_size or max(256, self.batch_size))
        self.eval_every = max(1, int(eval_every))
        self.max_steps = int(max_steps) if max_steps else None
        self.label_smoothing = float(label_smoothing)
        if not (l1 >= 0 and math.isfinite(l1)):
            raise ValueError(f"l1 must be a finite number >= 0, got {l1!r}")
        self.l1 = float(l1)
        max_norm = float(max_norm or 0.0)
        if not (max_norm >= 0 and math.isfinite(max_norm)):
            raise ValueError(f"max_norm must be a finite number >= 0 (0 = off), got {max_norm!r}")
        self.max_norm = max_norm
        weights = None  # the default parameter list of both: the weights, never biases or normalization parameters
        if self.l1 and l1_params is None or self.max_norm and max_norm_params is None:
            weights = split_decay_parameters(model)[0]
        if self.l1:
            self.l1_params = list(l1_params) if l1_params is not None else weights
        if self.max_norm:
            self.max_norm_params = list(max_norm_params) if max_norm_params is not None else list(weights)
        from .adversarial import check_adversarial

        self.adversarial_eps, self.adversarial_weight = check_adversarial(adversarial_eps, adversarial_weight,
                                                                          input_dtype(train_data))
        self.evaluated = False  # whether this epoch ran validation (eval_every)
        self.validation_counts = False  # whether monitors judge it (see _epochs: not the last epoch's extra one)
        from .callbacks.base import monitor_mode as _mode

        self.monitor, self.monitor_mode = monitor, _mode(monitor, monitor_mode)
        self._check_sizes(len(train_data), drop_last)
        self.local_batch = self.batch_size // self.world
        self.micro_batch = self.local_batch // self.accumulation_steps
        from distnn.data.loader import DataLoader

        # With drop_last the sampler drops the tail too (no padding): then a rank's complete local batches
        # are exactly the complete global batches, (n // W) // (B // W) == n // B, whatever W is.
        self.sampler = shard(len(train_data), self.comm, shuffle, self.seed, drop_last)
        # (a map-style dataset: its samples stacked by collate_xy, transformed by train_batches)
        fast = self._train_arrays is not None
        self.loader = DataLoader(train_data, batch_size=self.local_batch, sampler=self.sampler, drop_last=drop_last,
                                 collate_fn=None if fast else collate_xy, transform=transform if fast else None,
                                 seed=self.seed, rank=self.rank, with_mask=True)
        self.steps_per_epoch = len(self.loader)
        self.callbacks = CallbackList(callbacks)
        #: optional ``guard(trainer, local_loss_sum) -> skip``: called on every rank after the gradient
        #: average and before clipping and the update (see distnn.train.step_guard.StepGuard)
        self.step_guard = None
        #: the training-time signal handler ``attach`` installed (checkpoint_setup): fit gives it back at its end
        self._preemption_handler = None
        self.state = TrainState()
        self.history: list[dict] = []
        self.start_epoch = 0
        # The training forward pass draws (dropout) from its samples' generator (_sample_draws); anything
        # else that draws from distnn.random's per-thread generator gets one stream per rank.
        dn_random.manual_seed(np.random.SeedSequence([self.seed, self.rank, 17]))
        self._batch_drawn = None  # (epoch, batch, rows) of the batch train_epoch is training
        # DataParallel talks to the other ranks when built (replica check, weight broadcast), so it is made
        # at the start of fit(): constructing a Trainer is communication-free, and a setup error on one rank
        # cannot leave the others stuck in a mismatched collective.
        # (on one rank too with PowerSGD compression: it changes the gradients, so one rank trains as N do)
        self._ddp_kwargs = dict(ddp_kwargs or {}) if data_parallel and (
            self.world > 1 or _changes_gradients(ddp_kwargs)) else None
        # without DataParallel each rank steps on its own shard: its replica may differ from rank 0's, so a
        # checkpoint holds every rank's (see replica_state)
        self.own_replicas = not data_parallel and self.world > 1
        self.ddp = None
        self._pending_ddp_state = None  # load_state_dict's DataParallel state until fit builds the wrapper
        self._epoch_end_riders = None  # the payloads of exchange_at_epoch_end, while the epoch end takes them
        params = list(model.parameters())
        self.xp = get_array_module(params[0].data) if params else np
        # inputs are cast to the parameters' floating dtype (float64 runs); token ids stay integers
        self.dtype = next((p.data.dtype for p in params if p.data.dtype.kind == "f"), np.dtype(np.float32))
        self.amp = MixedPrecision(precision, "cpu" if self.xp is np else "cuda", self.dtype, grad_scaler)

    # ------------------------------------------------------------------ setup
    def _check_sizes(self, n, drop_last):
        check_batch_sizes(self.batch_size, self.world, self.accumulation_steps, self.epochs, n, drop_last)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # -------------------------------------------------------------- the loop
    def fit(self) -> list[dict]:
        """Train for ``epochs`` (or until an agreed stop); returns the per-epoch history.

        ``fit`` continues from where the trainer is (a resumed or an earlier run): it never restarts.
        Called again after the last epoch (or an early stop) it trains no more, and says so; the
        callbacks' ``on_train_begin``/``on_train_end`` still run, so that a run resumed after its last
        step ends as an uninterrupted one does (best weights restored, files written).

        The signal handlers ``attach`` installed for this training are given back when it ends
        (:func:`~distnn.train.preemption.during_fit`).
        """
        with during_fit(self._preemption_handler):
            return self._fit()

    def _fit(self) -> list[dict]:
        self.start_epoch = len(self.history)
        if self.history and (self.start_epoch >= self.epochs or self.state.stopped_early or (
                self.max_steps is not None and self.state.global_step >= self.max_steps)):
            self.log.info("fit: nothing left to train (%d of %d epochs run%s)", self.start_epoch, self.epochs,
                          ", stopped early" if self.state.stopped_early else "")
        t_start = self._fit_started = time.perf_counter()
        if self._ddp_kwargs is not None and self.ddp is None:
            self.ddp = _data_parallel(self.model, self.comm, **self._ddp_kwargs)  # collective
        self._apply_ddp_state()
        try:
            self.callbacks.on_train_begin(self)
            # A NaN or inf is the non-finite policy's to report (skip, counted and logged, or stop naming
            # the step): numpy's floating-point warnings would come first, once per kind and place.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                self._epochs(t_start)
            self.callbacks.on_loop_end(self)
            self._count_final_report()
            self.state.elapsed += time.perf_counter() - t_start
            self._fit_started = None
            self.callbacks.on_train_end(self, self.history[-1] if self.history else {})
        except BaseException as e:
            self.callbacks.on_exception(self, e)  # local clean-up (progress bar, checkpoint spares), no collective
            raise
        finally:
            self._fit_started = None
        return self.history

    def _epochs(self, t_start):
        """The epoch loop of :meth:`fit`: train, validate, call back, until the last epoch or an agreed stop."""
        for epoch in range(len(self.history), self.epochs):
            if self.state.stopped_early:
                break
            # (a checkpoint after an epoch's last step resumes with batch_in_epoch == steps_per_epoch:
            # the epoch's validation and end are still to come)
            if self.state.epoch != epoch or self.state.batch_in_epoch > self.steps_per_epoch:
                if self.max_steps is not None and self.state.global_step >= self.max_steps:
                    break  # (a run that max_steps ended, resumed: no empty epoch is added)
                self._start_epoch(epoch)
            self.callbacks.on_epoch_begin(self)
            logs = {"epoch": epoch + 1, **self.train_epoch()}
            last = epoch + 1 == self.epochs or (self.max_steps is not None
                                                and self.state.global_step >= self.max_steps)
            # (the last epoch is always validated, also when max_steps ends it: the final weights get a score)
            on_schedule = (epoch + 1) % self.eval_every == 0
            self.evaluated = self.val_data is not None and (on_schedule or last)
            # That extra validation off the eval_every schedule is a report: early stopping, plateau schedules,
            # the best checkpoint and the run's best skip it, so a run resumed with more epochs goes on as the
            # longer run does (which did not validate this epoch)
            self.validation_counts = self.evaluated and on_schedule
            if self.evaluated:
                # (tests: DISTNN_FAULT_SIGNAL_AT / _RAISE_AT=RANK:validation; fires once, at the first one)
                fault_point("validation", int(getattr(self.comm, "world_rank", self.comm.rank)))
                logs.update(self.evaluate(self.val_data, prefix="val_"))
            logs["lr"] = self.lr
            logs["wall_time"] = self.state.elapsed + time.perf_counter() - t_start
            self._track_best(logs)
            self.history.append(logs)
            self._epoch_end_riders = {}  # (open to exchange_at_epoch_end during the callbacks' on_epoch_end)
            try:
                self.callbacks.on_epoch_end(self, logs)
            except BaseException:
                self._epoch_end_riders = None
                raise
            if self.max_steps is not None and self.state.global_step >= self.max_steps:
                self._agreed_stop(agree=False)  # (the callbacks' payloads only: no stop to agree on)
                self.log.info("reached train.max_steps = %d", self.max_steps)
                break
            if self._agreed_stop():
                self.state.stopped_early = True
                self.log.info("%s", self.state.stop_reason or "stopping")

    def _start_epoch(self, epoch):
        self.state.epoch, self.state.batch_in_epoch = epoch, 0
        self.state.epoch_sums = {k: 0.0 for k in self.state.epoch_sums}

    def _batch_failed(self, exc: Exception) -> None:
        """Loading or transforming this rank's next batch raised ``exc``: the other ranks train that step, so it
        ends on every rank with ``exc`` named (:meth:`~distnn.distributed.DataParallel.fail_step`), not at the
        collective timeout. (Past ``max_steps`` no rank trains it: raised on this rank alone, as before.)"""
        if self.ddp is None or self.max_steps is not None and self.state.global_step >= self.max_steps:
            raise exc
        self.ddp.fail_step(exc)

    def _step_failed(self, exc: Exception, syncs: int) -> None:
        """``train_step`` raised ``exc`` on this rank: before the step's gradient exchange (in the forward or loss of
        one micro-batch, the trainer's own code) the others wait for this rank there, so the step ends on every rank
        with ``exc`` named (:func:`~distnn.distributed.sync_loop_failure.step_failed`); after it, or an error every
        rank raised already, it is raised as it is."""
        if self.ddp is not None:
            from distnn.distributed.sync_loop_failure import step_failed

            step_failed(self.ddp, exc, syncs)  # (raises the agreed error when the others wait for this rank)

    def train_epoch(self) -> dict:
        """One pass over this rank's shard; returns the epoch's (all-rank) training metrics."""
        self.model.train()
        sums = self.state.epoch_sums
        t0 = time.perf_counter()
        # The loader reseeds the sampler for this epoch and resumes at batch_in_epoch (mid-epoch resume).
        batches = train_batches(self.loader, self.transform, self.state.epoch, self.state.batch_in_epoch,
                                self._train_arrays is not None)
        while True:
            try:
                xb, yb, valid = next(batches)
            except StopIteration:
                break
            except Exception as exc:  # (this rank's data: the others wait in the step's exchange, told why)
                self._batch_failed(exc)
            step = self.state.batch_in_epoch
            if self.max_steps is not None and self.state.global_step >= self.max_steps:
                break  # the same step count on every rank: no collective needed
            self._batch_drawn = (self.state.epoch, self.loader.batch_index - 1, len(yb))
            syncs = self.ddp.num_syncs if self.ddp is not None else 0
            try:
                loss, n = self.train_step(xb, yb, valid)
            except Exception as exc:  # (before the step's exchange: the others wait in it, told why)
                self._step_failed(exc, syncs)
                raise
            finally:
                self._batch_drawn = None
            self.state.batch_in_epoch = step + 1
            self.state.global_step += 1
            now = time.perf_counter()  # the time so far is in the sums a mid-epoch checkpoint saves
            sums["time"] += now - t0
            t0 = now
            if self.callbacks.callbacks:
                self.callbacks.on_batch_end(self, {"loss": loss, "samples": n, "step": step + 1,
                                                   "global_samples": self._global_count(step)})
        sums["time"] += time.perf_counter() - t0
        # One collective per epoch; the time is averaged so samples/s is the same on every rank.
        loss_sum, correct, count, samples, secs = self._reduce(
            [sums["loss"], sums["correct"], sums["count"], sums["samples"], sums["time"]])
        return {"train_loss": loss_sum / count if count else float("nan"),
                "train_accuracy": correct / count if count else float("nan"),
                "samples_per_sec": samples / max(secs / self.world, 1e-12)}
