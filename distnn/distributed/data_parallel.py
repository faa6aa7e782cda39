"""``DataParallel``: replicas of one model, one averaged gradient per step.

Wrap the model on every rank; train as usual. At construction every rank's
parameter names, shapes and dtypes are checked against the others (a mismatch
raises on every rank, naming the first differing parameter), then rank 0's
parameters and buffers are broadcast, so replicas start equal.

During ``loss.backward()`` gradients are averaged in buckets while backward
still runs (PyTorch DDP's design, ChainerMN's flat buffers):

* parameters are grouped, in reverse registration order (roughly the order
  gradients become final), into buckets of about ``bucket_mb`` MiB, the same
  layout on every rank (:mod:`.buckets`). A bucket is one flat buffer, and
  each parameter's gradient destination is its view of it: Linear and Conv2d
  write their weight and bias gradients straight there (the engine offers
  the view, see :func:`distnn.autograd.engine.set_grad_destination`), so
  there is nothing to pack; other ops' gradients are copied in;
* each parameter's post-accumulate-grad hook marks it ready; when a bucket's
  last gradient is ready, a nonblocking allreduce of the buffer starts (a
  persistent MPI-4 collective, set up once). Buckets always start in list
  order on every rank (a bucket that becomes ready early waits for the ones
  before it), as MPI requires. The flags and counts the step needs ride in
  the last bucket, started when backward ends: one collective per bucket;
* these collectives go over a communicator of the wrapper's own, split
  from ``comm`` at construction (:func:`_acquire_comm`): a bucket holding a
  parameter that got no gradient on some rank starts there only when
  backward ends, so the ranks start it at different places among the other
  collectives of that backward (SyncBatchNorm's, another wrapper's), which
  on one communicator would break MPI's rule of one order on every rank;
* when backward finishes (``distnn.autograd.engine.queue_callback``), buckets
  still waiting for parameters that got no gradient are sent with zeros for
  them, every allreduce is waited for, and each ``p.grad`` is its view of the
  bucket, holding the average. So after ``backward()`` returns the gradients
  are averaged, and ``optimizer.step()`` needs no extra call.

Averaging is exact for uneven shards: rank r's gradient is weighted by
``n_r / N`` (its sample count over the global count), so the result is the
gradient of the mean loss over the whole global batch, also when the last
batch leaves ranks with different numbers of samples. The local loss must be
the mean over the local samples (the default reduction). ``n_r`` is the
size along ``batch_dim`` (default 0; 1 for time-major ``(L, N, ...)`` inputs)
of the first array argument (positional, else keyword) of the forward calls
since the last synchronization, or what :meth:`set_num_samples` set. A synchronizing backward with no count at
all (no forward went through the wrapper, or its inputs had no array) is an error rather than a guess. ``N``
travels in the step's meta (no extra collective): ranks weight with ``n_r / G``, where
``G`` is the previous step's global count (the same on every rank), and
rescale by ``G / N`` in the rare step where the global count changed (an
epoch's last batch).

The weighting costs nothing in the usual step: at the start of a
synchronizing ``backward()`` (an engine backward-begin hook, see
:func:`distnn.autograd.engine.register_backward_begin_hook`) the root
gradient is multiplied by ``n_r / G``, so every gradient of the pass comes out
weighted (backward is linear in it) and the allreduce sum is the average.
That happens when every leaf the pass reaches is a parameter of this model
and no parameter holds a gradient yet (optimizer.zero_grad() with
set_to_none); otherwise (gradient accumulation with :meth:`no_sync`, a
backward that also reaches inputs or other models' parameters, a rank with
no samples) gradients are weighted while they are packed, one pass each.

A parameter that received no gradient on some rank contributes zeros there;
one that received none on any rank keeps ``grad = None``, as it would in a
single process. ``find_unused_parameters=False`` makes either an error
(raised on every rank when the synchronizing backward ends, naming the
parameters; on one rank as well, as PyTorch's DDP does).

What a synchronizing backward refuses (a gradient a bucket cannot take, a rank with no sample count), or an
exception user code raises in it (a hook, a custom Function: :mod:`.sync_failures`), is raised on every rank
when it ends, naming the problem and the ranks, even when one rank alone had it: that rank goes through the
step's collectives first, so no rank is left waiting (:mod:`.sync_refusals`). The step's gradients are dropped.
A step that fails BEFORE its backward on some ranks, the error caught by the loop (the forward or a forward
pre-hook of the model or of the wrapper, the loss, a ``KeyboardInterrupt``), ends on every rank alike too, never
paired with another step (:mod:`.sync_abandoned`), also while the other ranks wait in SyncBatchNorm's collectives
(:mod:`.sync_batchnorm_rounds`; under :meth:`no_sync` too: :mod:`.sync_micro_batch`). An error before the forward
in the loop's own code: :meth:`fail_step` (:mod:`.sync_loop_failure`, under :meth:`no_sync` too). Not covered:
several live DataParallels on one communicator with SyncBatchNorm layers on it (a round ended by one's failing step
sends a rank to the newest one's exchange), and a SyncBatchNorm outside the model on a communicator no DP is on.

Use :meth:`no_sync` for all but the last micro-batch of gradient accumulation. A trainer that may skip
backward on some rank (an empty micro-batch) calls :meth:`finish_gradient_synchronization` before the optimizer
step: it synchronizes if this rank's backward did not (a no-op otherwise), so no rank is left waiting.

:attr:`step_flags` is a small float array summed over ranks in the same
exchange (e.g. "this rank was asked to stop"): set it before the
synchronizing backward, read :attr:`step_flags_sum` after it.

Uneven inputs (ranks with different numbers of batches): train inside
``with dp.join():`` or ``with Join([dp, optimizer]):`` (:mod:`.join`,
:mod:`.data_parallel_join`).

Sparse gradients (the weights of ``Embedding``/``EmbeddingBag`` layers
with ``sparse=True``) stay out of the buckets: when backward ends every rank
gathers every rank's rows and values and sums them, so each holds the same
coalesced sparse gradient (PyTorch DDP's sparse allreduce; see
:mod:`.sparse_sync`). They are weighted as the dense ones and are never
compressed.

Gradients may be sent as fp16 or bf16 (``compression``, see
:mod:`.compression`), or as PowerSGD's low-rank approximations
(``compression="powersgd"`` or a :class:`~.powersgd.PowerSGDState`, see
:mod:`.powersgd`; it changes the gradients, so it runs on one rank too);
``check_every=K`` verifies every K steps (and
:meth:`check_replicas` on demand) that the parameters are bitwise equal on
all ranks.
"""
from __future__ import annotations

import contextlib

import numpy as np

from distnn.backend import device_of, get_array_module
from distnn.nn.module import Module

from .buckets import all_finite
from .comm_pool import _acquire_comm, _pools
from .compression import get_codec
from .data_parallel_join import DataParallelJoin
from .grad_sync import RANK_SHARE, RANK_WEIGHTED, GradientSync
from .powersgd import get_powersgd
from .replicas import ReplicaMismatchError, check_replicas, verify_same_model, warn_if_time_major
from .sync_abandoned import hooked_call, settle, watched_forward
from .sync_micro_batch import init_failure_state, micro_batch_raised, settle_micro_batches

# (importable from here too: the replica error users catch, SyncBatchNorm's context keys, the pool tests look into)
__all__ = ["DataParallel", "RANK_SHARE", "RANK_WEIGHTED", "ReplicaMismatchError", "_pools"]


class DataParallel(GradientSync, DataParallelJoin, Module):
    """Data-parallel wrapper: ``dp(x)`` runs ``module(x)``; backward averages gradients across ``comm``.

    Arguments: ``module`` (the model, identical on every rank); ``comm`` (a
    Communicator, default ``distnn.distributed.init()``); ``bucket_mb``
    (bucket size in MiB); ``compression`` (None, ``"fp16"``, ``"bf16"``,
    ``"powersgd"`` or a :class:`~.powersgd.PowerSGDState` with its options;
    the state is :attr:`powersgd`);
    ``find_unused_parameters`` (True: parameters without a gradient count
    as zeros; False: that is an error, raised when the synchronizing backward
    ends, on one rank too); ``check_every`` (verify replicas are
    bitwise equal every K steps, 0 = never); ``broadcast_buffers`` (copy rank
    0's buffers, e.g. BatchNorm running statistics, to all ranks after each
    step, as DDP does); ``weight_by_samples`` (weight ranks by sample count;
    False = plain mean over ranks, for losses that are not per-sample means);
    ``batch_dim`` (the axis of the forward input that counts samples: 0, or 1
    for time-major inputs; left unset with a time-major recurrent or attention
    layer inside, a warning says to choose). The weights of
    ``Embedding``/``EmbeddingBag`` layers with ``sparse=True`` get sparse
    gradients: they stay out of the buckets and are exchanged as sparse
    tensors when backward ends, uncompressed (see :mod:`.sparse_sync`).

    Ranks with different numbers of batches train inside ``with dp.join():``
    (PyTorch's ``DistributedDataParallel.join``; see :mod:`.data_parallel_join`).

    After a synchronized backward ``p.grad`` is a view of a bucket buffer,
    which the next step overwrites: keep no references to it across steps
    (copy it if you need it). A sparse embedding's ``p.grad`` is a new
    coalesced sparse tensor each step, the same on every rank.

    As with PyTorch's DDP, build the model completely first: parameters must
    not change dtype (an error) or ``requires_grad`` (not noticed; the
    replica check of ``check_every`` finds the drift) after wrapping. Forward
    calls with gradients enabled count samples even in eval mode: run
    evaluation under ``distnn.no_grad()``. float16 parameters: pass the global
    count, ``set_num_samples(n, n_global)`` (the Trainer does), else the first
    step and a step after a short batch weight with a too-small global count
    and can overflow.

    A step that fails on some ranks, caught by the training loop, never pairs one rank's step with another's. A
    forward (or forward pre-hook) that raises, gradients enabled, outside :meth:`no_sync`: every rank raises the
    same error, "DataParallel: forward raised on rank 1: FloatingPointError: ...". An error between forward and
    backward (the loss), or a caught ``KeyboardInterrupt``: the other ranks raise "DataParallel: the output of a
    forward on rank 1 never reached a synchronizing backward ..." ("backward was interrupted on rank 1"), which
    rank 1, having raised its own, gets as a warning at its next call to the wrapper. The step's gradients are
    dropped on every rank (:mod:`.sync_abandoned`; under :meth:`no_sync`: :mod:`.sync_micro_batch`).
    """

    num_step_flags = 5  # length of step_flags

    # Per-step state set on the hot path: plain attributes, past Module.__setattr__'s registration checks.
    _PLAIN = frozenset(("num_syncs", "_require_sync", "_explicit_samples", "_forward_samples", "_last_samples",
                        "_count_guess", "_in_sync", "_synced_since_finish", "_launched", "_probed", "_weight",
                        "_samples", "step_flags_sum", "_join_step", "_notes", "_failure_token", "_forwards",
                        "_abandoned", "_finishing", "_in_forward", "_micro_forwards", "_stale_grads", "_held_notes",
                        "_clock", "_resets", "_abandoned_at", "_sync_clock", "_explicit_clock", "_micro_last",
                        "_stale_samples", "_reset_latched", "_before_forward", "_split_mark",
                        "_split_prev", "_ended_step", "_micro_passes"))

    def __setattr__(self, name, value):
        if name in self._PLAIN:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def __init__(self, module: Module, comm=None, bucket_mb: float = 25.0, compression=None,
                 find_unused_parameters: bool = True, check_every: int = 0, broadcast_buffers: bool = True,
                 weight_by_samples: bool = True, batch_dim: int | None = None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel wraps a distnn.nn.Module, got {type(module).__name__}")
        from distnn.nn.lazy import has_uninitialized_params

        if has_uninitialized_params(module):  # (nothing to broadcast or bucket yet: PyTorch's DDP refuses too)
            raise ValueError("DataParallel: the model has uninitialized parameters (a lazy module such as "
                             "LazyLinear before its first forward); run a forward pass with a dummy batch to "
                             "initialize them before wrapping the model")
        if not bucket_mb > 0:
            raise ValueError(f"bucket_mb must be > 0, got {bucket_mb!r}")
        if check_every < 0:
            raise ValueError(f"check_every must be >= 0, got {check_every!r}")
        if comm is None:
            from . import init

            comm = init()
        self.module = module
        self.comm = comm
        self._comm = comm     # where this wrapper's own collectives go: a split of comm (see _acquire_comm)
        self._private = None  # the pool entry of that split
        self._finalizer = None
        self.bucket_mb = float(bucket_mb)
        self.powersgd = get_powersgd(compression)  # (None unless PowerSGD)
        if self.powersgd is not None:
            # its memory is keyed by bucket index: two wrappers would overwrite each other's
            if getattr(self.powersgd, "_in_use", False):
                raise ValueError("DataParallel: this PowerSGDState already serves another DataParallel; give "
                                 "each wrapper its own (its error feedback and Q's belong to one model)")
            self.powersgd._in_use = True
        self.codec = self.powersgd if self.powersgd is not None else get_codec(compression)
        self.compression = "powersgd" if self.powersgd is not None else compression
        self.find_unused_parameters = find_unused_parameters
        self.check_every = int(check_every)
        self.broadcast_buffers = broadcast_buffers
        self.weight_by_samples = weight_by_samples
        self.num_syncs = 0  # completed gradient synchronizations (= optimizer steps, normally)
        self._require_sync = True
        self._explicit_samples = None
        self._forward_samples = None  # samples seen by forward since the last sync (None: no forward)
        self._last_samples = None  # (None: no count yet; a synchronization then refuses to guess)
        self.batch_dim = 0 if batch_dim is None else int(batch_dim)
        if batch_dim is None and weight_by_samples:
            warn_if_time_major(module)
        self._count_guess = float(comm.size)  # G: the global sample count ranks pack against (common)
        self._in_sync = False
        self._synced_since_finish = False
        self._launched = 0
        self._probed = 0
        self._weight = None   # this sync's packing weight (1.0 when backward's seed already weighted)
        self._samples = None
        self._notes = []      # this synchronization's refusals found on this rank (.sync_refusals)
        init_failure_state(self)  # (what a failing step leaves to settle: .sync_abandoned, .sync_micro_batch)
        self._hooks = []
        self._buckets = []
        self._sparse = None   # the sparse embeddings' exchange (.sparse_sync), when the model has any
        self._step_meta = None  # the step meta's own persistent allreduce, when the last bucket cannot carry it
        self._train_params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._params = [p for _, p in self._train_params]
        self._synced_buffers = [b for _, b in module.named_buffers()]  # (not _buffers: Module's registry)
        self.step_flags = np.zeros(self.num_step_flags)      # this rank's, sent with the next sync
        self.step_flags_sum = np.zeros(self.num_step_flags)  # summed over ranks at the last sync
        if comm.size > 1:
            verify_same_model(module, comm)
        if comm.size > 1 or self.powersgd is not None:  # (PowerSGD changes the gradients on one rank too)
            if not self._train_params:
                raise ValueError("DataParallel: the model has no parameter that requires a gradient; there is "
                                 "nothing to synchronize (a frozen model needs no DataParallel)")
            self._private = _acquire_comm(comm)
            self._comm = self._private.comm
            self._broadcast_tensors([t for _, t in module.named_parameters()] + [b for _, b in module.named_buffers()])
            self._build_buckets()
            self._register_hooks()
        else:
            self._register_single_rank_hook()

    # -------------------------------------------------------------- forward
    def __call__(self, *args, **kwargs):  # (the wrapper's own pre-hooks are watched as the forward: .sync_abandoned)
        return self.forward(*args, **kwargs) if not self._forward_hooked else hooked_call(self, args, kwargs)

    def forward(self, *inputs, **kwargs):
        return watched_forward(self, inputs, kwargs)  # (counts samples; ends a step abandoned before: .sync_abandoned)

    def set_num_samples(self, n: int, n_global=None) -> None:
        """Weight this rank's gradient by ``n`` samples at the next synchronization.

        Overrides the count inferred from forward inputs (use it when padded
        rows are masked out of the loss). Cleared after each synchronization.
        ``n_global``: the sum of ``n`` over all ranks, when the caller knows it
        (e.g. from the sampler; the same on every rank): gradients are then
        weighted right the first time even in a step whose global count
        differs from the previous one. A wrong value is only slower (it is
        checked and corrected), never wrong.
        """
        if n < 0:
            raise ValueError(f"number of samples must be >= 0, got {n}")
        self._explicit_samples = int(n)
        self._explicit_clock = self._clock  # (a count set before an abandoned step's last forward was its own)
        if n_global is not None and n_global > 0:
            self._count_guess = float(n_global)

    set_sample_count = set_num_samples

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate local gradients (micro-batches of accumulation). After one that
        raised, call ``zero_grad()`` before the next backward: its partial gradients refuse the next step, on one
        rank too (:mod:`.sync_micro_batch`)."""
        settle_micro_batches(self)  # (a micro-batch this rank abandoned: .sync_micro_batch)
        settle(self)  # (the last step's, if this rank abandoned it)
        previous = self._require_sync
        self._require_sync = False
        try:
            yield
        except Exception as exc:  # (the loss raised between a micro-batch's forward and backward: end it alike)
            self._require_sync = previous
            micro_batch_raised(self, exc)  # raises the agreed error when SyncBatchNorm rounds end
            raise
        finally:
            self._require_sync = previous

    # -------------------------------------------------------- construction
    def _broadcast_tensors(self, tensors, root: int = 0):
        """Broadcast the tensors' data from ``root``, one flat message per (dtype, device)."""
        groups = {}
        for t in tensors:
            groups.setdefault((t.data.dtype.str, device_of(t.data)), []).append(t)
        for group in groups.values():
            xp = get_array_module(group[0].data)
            flat = xp.concatenate([t.data.reshape(-1) for t in group]) if len(group) > 1 else \
                group[0].data.reshape(-1).copy()
            self._comm.broadcast(flat, root=root)
            offset = 0
            for t in group:
                n = int(t.data.size)
                new = flat[offset:offset + n]
                offset += n
                # only a real change is one: a graph that saved an unchanged buffer may still backward.
                # Bits, not values: -0.0 == 0.0 and NaN payloads differ, and replicas must be bitwise equal
                if self.comm.rank != root and not xp.array_equal(
                        xp.ascontiguousarray(t.data).reshape(-1).view(xp.uint8), new.view(xp.uint8)):
                    t.data[...] = new.reshape(t.data.shape)
                    t._bump_version()

    def sync_state_dict(self) -> dict:
        """What an exact resume needs besides the model: the global sample count the next step weighs against,
        and with PowerSGD its iteration and warm-start ``Q``'s (the same on every rank).

        (Gradients are pre-weighted with the previous step's global count; a
        resumed run that started from another guess would round differently.)
        Each rank's own PowerSGD errors are :meth:`rank_sync_state_dict`'s.
        """
        state = {"global_count": float(self._count_guess)}
        if self.powersgd is not None:
            state["powersgd"] = self.powersgd.state_dict()
        return state

    def rank_sync_state_dict(self) -> dict:
        """This rank's own part of the resume state (PowerSGD's error feedback); empty without PowerSGD.
        A checkpoint stores every rank's and gives them to :meth:`load_sync_state_dict` as ``"ranks"``."""
        return {"powersgd": self.powersgd.rank_state_dict()} if self.powersgd is not None else {}

    def load_sync_state_dict(self, state: dict) -> None:
        """Restore :meth:`sync_state_dict` (also accepts checkpoints that stored ``_count_guess``).

        ``state["ranks"]``, when present, lists every saved rank's
        :meth:`rank_sync_state_dict`: on the same number of ranks each rank
        takes its own PowerSGD errors; on another number rank 0 takes their
        sum and the others start at zero (only the sum over ranks enters the
        next step, see :mod:`.powersgd`: the run goes on as it would have).
        """
        value = state.get("global_count", state.get("_count_guess"))
        if value is not None:
            if not value > 0:
                raise ValueError(f"DataParallel sync state: global_count must be > 0, got {value!r}")
            self._count_guess = float(value)
        if self.powersgd is not None and state.get("powersgd") is not None:
            ranks = [(r or {}).get("powersgd") for r in state.get("ranks") or []]
            self.powersgd.load_state_dict(state["powersgd"], ranks, self.comm.rank, self.comm.size)

    @property
    def bucket_layout(self) -> list:
        """Parameter names per bucket, in launch order."""
        return [list(b.names) for b in self._buckets]

    # --------------------------------------------------------------- checks
    def grads_finite(self) -> bool:
        """After a synchronized backward: True when every averaged gradient is finite.

        One reduction per bucket rather than one per parameter. The same bits on
        every rank, so every rank answers alike without communicating.
        """
        if self.comm.size == 1:
            return all(all_finite(p.grad._vals.data if getattr(p.grad, "is_sparse", False) else p.grad)
                       for p in self._params if p.grad is not None)
        return all(b.finite() for b in self._buckets) and (self._sparse is None or self._sparse.finite())

    def check_replicas(self) -> None:
        """Raise :class:`ReplicaMismatchError` on every rank unless parameters are bitwise equal everywhere.

        Collective. Buffers are compared too when ``broadcast_buffers`` keeps them equal.
        """
        check_replicas(self.module, self._comm, self.broadcast_buffers, self.num_syncs)
