"""How :class:`~.data_parallel.DataParallel` synchronizes gradients during backward (a mixin of the
wrapper): weighting this rank's gradients by its share of the global batch, launching each bucket's
allreduce once its gradients are ready, and installing the averages when backward ends. The design is
described in :mod:`.data_parallel`."""
from __future__ import annotations

import math
import weakref

import numpy as np

from distnn.autograd.engine import (backward_context, backward_depth, queue_callback, queue_error_callback,
                                   register_backward_begin_hook)
from distnn.autograd.profiler_record import Range

from .buckets import build_buckets, release_buckets
from .sparse_sync import SparseGradientExchange, sparse_parameters
from .sync_abandoned import settle
from .sync_batchnorm_closing import close_for_exchange, mark_micro_batch, register_wrapper, watch_micro_batch
from .sync_batchnorm_rounds import history, model_comms
from .sync_micro_batch import hold_if_stale, mark_stale, reached, release_held
from .sync_failures import watch_backward
from .sync_finish import FinishSync
from .sync_refusals import WHERE, agreed_error, note, raise_unused
from .sync_step_ended import end_pass, still_ended

# backward_context() key: this pass's seed carries the rank's weight n_r / G (see _on_backward_begin).
RANK_WEIGHTED = "distnn.data_parallel.rank_weighted"
# backward_context() key: the weight n_r / G this rank's gradients of the pass get (by the seed or when
# packed; G may later be corrected by a factor common to all ranks). SyncBatchNorm's backward needs it.
RANK_SHARE = "distnn.data_parallel.rank_share"


class GradientSync(FinishSync):
    """The synchronization side of :class:`~.data_parallel.DataParallel`: its buckets and engine hooks (set up
    here, called by the wrapper's ``__init__``), and what they do in a backward. The wrapper sets up the rest of
    the state used here (``_comm``, the sample counts, ``step_flags``)."""

    _failure_token = None  # set while a pass that raises must agree on it (.sync_failures)
    _finishing = False     # set while finish_gradient_synchronization() makes the step's exchange

    def _build_buckets(self):
        # Sparse-gradient parameters (sparse embeddings) are exchanged apart, when backward ends (.sparse_sync)
        self._bn_comms = model_comms(self.module)  # (SyncBatchNorm's, ended at each exchange: close_for_exchange)
        for c in self._bn_comms:  # (whose micro-batch a round's ABORT ends: .sync_batchnorm_closing)
            history(c).owner = weakref.ref(self)
        register_wrapper(self)  # (and those of SyncBatchNorm layers outside the model on its communicator)
        sparse = sparse_parameters(self.module, self._train_params)
        self._sparse = SparseGradientExchange(sparse) if sparse else None
        sparse_ids = {id(p) for _, p in sparse}
        dense = [(n, p) for n, p in self._train_params if id(p) not in sparse_ids]
        self._buckets = build_buckets(dense, self.bucket_mb * (1 << 20), self.codec)
        # The step meta (sample count, step flags, ranks that refuse the step) rides in the last bucket
        # when its dtype holds counts exactly (float32: up to 2**24); otherwise (or with no bucket at all)
        # it gets a tiny float64 allreduce of its own.
        meta_size = 2 + self.num_step_flags
        last = self._buckets[-1] if self._buckets else None
        if last is not None and last.dtype.kind == "f" and last.dtype.itemsize >= 4:
            last.extra, self._step_meta = meta_size, None
        else:
            self._step_meta = self._comm.allreduce_init(np.zeros(meta_size))
        for b in self._buckets:  # collective, in bucket order: sets up each persistent allreduce
            b.allocate(self._comm)
        self._slot = {}
        for b in self._buckets:
            for j, p in enumerate(b.params):
                self._slot[id(p)] = (b, j)
        for p in self._sparse.params if self._sparse is not None else ():
            self._slot[id(p)] = None  # (no bucket: exchanged when backward ends)

    def _register_hooks(self):
        ref = weakref.ref(self)
        for _, p in self._train_params:
            slot = self._slot[id(p)]

            def hook(tensor, _slot=slot):
                dp = ref()
                if dp is not None:
                    if _slot is None:
                        dp._sparse_grad_ready()
                    else:
                        dp._grad_ready(*_slot)

            self._hooks.append(p.register_post_accumulate_grad_hook(hook))

        def begin(root, leaves):
            dp = ref()
            return None if dp is None else dp._on_backward_begin(root, leaves)

        handle = register_backward_begin_hook(begin)
        self._hooks.append(handle)
        weakref.finalize(self, handle.remove)
        # A DataParallel dropped without remove_hooks() (a Trainer that is done) still lets go of its
        # parameters' gradient destinations, frees its persistent MPI requests and hands its communicator
        # back. (Once only: after remove_hooks() the communicator may already serve another wrapper.)
        self._finalizer = weakref.finalize(self, release_buckets, self._buckets, self._step_meta, self._private)

    def _register_single_rank_hook(self):
        """One rank: nothing to exchange, but a synchronizing backward still ends a step as on several
        ranks: ``step_flags`` become ``step_flags_sum`` (a sum over one rank) and ``num_syncs`` counts it."""
        ref = weakref.ref(self)
        slot = {id(p) for p in self._params}

        def begin(root, leaves):
            dp = ref()
            if dp is None or backward_depth() != 1 or not any(id(t) in slot for t in leaves):
                return
            release_held(dp)  # (a failed micro-batch's partial gradients not reset by now: this step is refused)
            if dp._require_sync:
                queue_callback(dp._end_single_rank_step)
            else:  # (a micro-batch cut short leaves partial gradients, as on several ranks: .sync_micro_batch)
                queue_error_callback(lambda exc: mark_stale(dp))

        handle = register_backward_begin_hook(begin)
        self._hooks.append(handle)
        weakref.finalize(self, handle.remove)

    def _end_single_rank_step(self):
        release_held(self)  # (finish_gradient_synchronization() with no backward: its step ends here)
        self.step_flags_sum = self.step_flags.copy()
        self.step_flags[...] = 0
        self.num_syncs += 1
        self._synced_since_finish = True
        if self._notes:  # refused as on several ranks (.sync_micro_batch): the step's gradients are dropped
            notes, self._notes = self._notes, []
            for p in self._params:
                p.grad = None
            raise agreed_error([notes], [], 0)
        if not self.find_unused_parameters:
            # The check N ranks make when they pack (a parameter whose .grad is None when the synchronizing
            # backward ends), at the same point, so a model that would fail under mpiexec fails on one rank
            # too (PyTorch's DDP raises on one rank as well). Only with the flag: the default pays nothing.
            unused = [f"'{name}' (no gradient on 1 of 1 ranks)" for name, p in self._train_params if p.grad is None]
            if unused:
                raise_unused(unused)

    def remove_hooks(self) -> None:
        """Detach from the model's parameters (the model then trains without synchronization)."""
        for h in self._hooks:
            h.remove()
        self._hooks = []
        if self._finalizer is not None:
            self._finalizer()
        self._step_meta = None

    def _on_backward_begin(self, root, leaves):
        """Engine hook: the seed factor ``n_r / G`` for a synchronizing backward over this model alone."""
        slot = self._slot
        mine = others = False
        for t in leaves:
            if id(t) in slot:
                mine = True
            else:
                others = True
        if self._ended_step is not None and mine and self._require_sync and backward_depth() == 1 \
                and still_ended(self):
            end_pass(self)  # (this rank's step ended early: its end makes no exchange, .sync_step_ended)
            return None
        if mine and (self._in_sync or self._require_sync and (self._forwards or self._abandoned)) \
                and backward_depth() == 1:
            settle(self, in_pass=True)  # a step this rank abandoned ends first (.sync_abandoned)
        if mine and backward_depth() == 1:
            # (before this pass accumulates: a failed micro-batch's partial gradients reset by now, after the next
            # forward too, are reset exactly; the last synchronization's, for finish_gradient_synchronization)
            hold_if_stale(self)
            if not self._require_sync:
                self._latch_reset()
                self._micro_passes += 1  # (a micro-batch of the step: how many, told to a rank whose step ended early)
            reached(self)  # (the micro-batches' forwards: .sync_micro_batch)
            mark_micro_batch(self)  # (whether its micro-batch ran a head: .sync_batchnorm_closing._abort_split)
        if self._in_sync:
            if mine and backward_depth() == 1:  # (still: the interrupted exchange was the completion's own)
                raise RuntimeError(  # (PyTorch DDP's words for a reduction left unfinished)
                    "DataParallel: Expected to have finished reduction in the prior iteration before starting a new "
                    "one: the previous backward was interrupted while its gradient synchronization completed")
            return None
        if mine and self._require_sync:  # a pass that raises still synchronizes, and every rank raises (.sync_failures)
            watch_backward(self)
        elif mine and backward_depth() == 1:  # (no_sync: a raise leaves partial gradients, ends SyncBatchNorm's rounds)
            watch_micro_batch(self)
        if mine and self._notes and backward_depth() == 1:  # (noted by a backward that raised before it synchronized;
            self._notes = []  # not another's pass: simulated ranks' passes run every rank's hook, mid-step too)
        if mine and self._require_sync and backward_depth() == 1:
            self._sync_clock = self._clock
            release_held(self)  # (a failure's leftover gradients refuse this step: .sync_micro_batch)
        if mine and self.weight_by_samples and self._pending_samples() is None:
            why = ("no forward went through the wrapper with an array input (a call of .module(...), or inputs "
                   "without an array)")
            advice = "Call the wrapper (ddp(x)) or set_num_samples(n) before backward."
            if not self._require_sync:  # (no_sync: this backward makes no collective, so it may raise here)
                raise RuntimeError(f"DataParallel: no sample count is known on this rank: {why}. {advice}")
            # The other ranks will wait for this one in the synchronization: go through it with no samples
            # (zeros sent) and refuse on every rank when it ends (.sync_refusals)
            note(self._notes, RuntimeError,
                 f"this backward synchronizes gradients, but no sample count is known {WHERE}: {why}", advice)
            self._weight = None
            return None
        context = backward_context()
        if context is not None and mine:
            context[RANK_SHARE] = self._share(self._pending_samples())
        if not self._require_sync or others:
            return None  # another leaf (an input, another model) must get its own, unweighted gradient
        self._weight = None  # (a stale seed of a backward that raised)
        for p in self._params:
            if p.grad is not None:
                return None  # accumulated gradients: weighted when packed
        samples = self._local_samples()
        w = self._share(samples)
        if not (w > 0.0 and math.isfinite(w)):
            return None  # no samples here: packing writes zeros (also over a nan of an empty mean)
        self._samples, self._weight = samples, 1.0  # the gradients arrive weighted
        if context is not None:
            context[RANK_WEIGHTED] = True  # for SyncBatchNorm's backward
        return w

    def _share(self, samples):
        return samples / self._count_guess if self.weight_by_samples else 1.0 / self.comm.size

    def _start_sync(self):
        """The first gradient of a synchronizing backward: the synchronization ends with the backward."""
        self._enter_sync()
        if self._failure_token is None:  # (a pass whose begin hook did not watch it: a nested one)
            watch_backward(self)
        queue_callback(self._end_of_backward)

    def _enter_sync(self):
        if self._join_config.enable:  # inside dp.join(): this step's round first (data_parallel_join.py)
            # (the round's own error, throw_on_early_termination's, is raised by every rank alike: not agreed)
            watching, self._failure_token = self._failure_token, None
            self._join_notify()
            self._failure_token = watching
        self._in_sync = True

    def _sparse_grad_ready(self):
        if self._require_sync and not self._in_sync:
            self._start_sync()

    def _grad_ready(self, bucket, j):
        if not self._require_sync:
            return
        if not self._in_sync:
            self._start_sync()
        if bucket.ready[j]:
            return
        bucket.ready[j] = True
        bucket.pending -= 1
        if bucket.pending == 0 and bucket.index == self._launched:
            self._launch_ready()
        elif self._probed < self._launched:
            # MPI progresses nonblocking collectives only inside MPI calls: give it one.
            if self._buckets[self._probed].test():
                self._probed += 1

    def _launch_ready(self, final=False):
        buckets = self._buckets
        # The bucket carrying the step meta waits for the end of backward (``final``): its refusal count must
        # come after the pass's last user code (a hook, a callback), which may still raise (.sync_failures).
        # (Usually it is the last to be ready anyway: its parameters come first in the model.)
        end = len(buckets) if final or self._step_meta is not None else len(buckets) - 1
        while self._launched < end and buckets[self._launched].pending == 0:
            self._launch(buckets[self._launched])
            self._launched += 1

    def _pending_samples(self) -> int:
        """This rank's sample count for the coming synchronization: set, else counted in forward, else the last."""
        if self._explicit_samples is not None:
            return self._explicit_samples
        if self._forward_samples is not None:
            return self._forward_samples
        return self._last_samples

    def _local_samples(self) -> int:
        n = self._pending_samples()
        if n is None:  # no count: a refused synchronization (see _on_backward_begin) sends no samples
            return 0
        self._last_samples = n
        return n

    def _launch(self, b):
        with Range("DataParallel.allreduce_bucket", shapes=[[b.numel]]):  # (packing and starting its sum)
            self._launch_bucket(b)

    def _fix_weight(self):
        if self._weight is None:  # fixed for the whole synchronization: every bucket packs alike
            self._samples = self._local_samples()
            self._weight = self._share(self._samples)

    def _launch_bucket(self, b):
        self._fix_weight()
        if self.powersgd is not None:  # (its error feedback keeps M - share * approximation)
            self.powersgd.share = self._share(self._samples)
        # (the last bucket carries the step meta; it asks for it after packing, so its own refusals count)
        b.launch(self._comm, self._weight, self._notes, self._meta_values if b.extra else None)

    def _meta_values(self):
        """The step meta: this rank's samples, its step flags, and 1 when it refuses the step (.sync_refusals)."""
        return [float(self._samples)] + self.step_flags.tolist() + [1.0 if self._notes else 0.0]

    def _end_of_backward(self):
        if self._in_sync:
            self._complete_sync()

    def _complete_sync(self):
        """Launch what is left (missing gradients as zeros), wait for everything, install averages."""
        self._failure_token = None  # (an error from here on is the synchronization's own, raised alike)
        with Range("DataParallel.synchronize"):
            self._finish_sync()

    def _finish_sync(self):
        for b in self._buckets[self._launched:]:
            b.pending = 0
        self._launch_ready(final=True)
        close_for_exchange(self)  # a rank still in a SyncBatchNorm collective of the step is answered first
        self._fix_weight()  # (already fixed when a bucket was launched; not without dense parameters)
        waiting = [b.handle for b in self._buckets]
        if self._step_meta is not None:
            self._step_meta.array[...] = self._meta_values()
            meta_handle = self._step_meta.start()
            waiting.append(meta_handle)
        with Range("DataParallel.wait_gradients"):  # (the part of the exchange backward did not hide)
            self._comm.wait_all(waiting)  # one polling loop for all of them
            counts = {}
            for b in self._buckets:
                b.wait()
                counts[b.index], meta = b.counts()  # the last one's meta: the step meta
            if self._step_meta is not None:
                meta = meta_handle.wait().tolist()
        total, refusing = meta[0], meta[-1]
        self.step_flags_sum = np.array(meta[1:-1])
        self.step_flags[...] = 0
        # Ranks packed with n_r / G; when the global count N differs (an epoch's short last
        # batch), turn the sums into the average with n_r / N. Every rank sees the same N.
        factor = 1.0
        if self.weight_by_samples and total > 0 and total != self._count_guess:
            factor = self._count_guess / total
            for b in self._buckets:
                b.scale(factor)
            self._count_guess = total  # the next step packs against this step's global count
        join_step = self._join_step  # (None unless inside dp.join())
        if join_step is not None and join_step.scale != 1.0:  # (weight_by_samples=False: over the active ranks)
            factor *= join_step.scale
            for b in self._buckets:
                b.scale(join_step.scale)
        if self.powersgd is not None:  # the errors, now that the step's units are known (see .powersgd)
            for b in self._buckets:
                b.exchange.settle_error(b.values, factor, self.powersgd.share * factor)
        size = self.comm.size if join_step is None else join_step.active  # (joined ranks send no gradients)
        partly_unused, refused = [], []
        if self._sparse is not None:  # after the buckets, on every rank: one order of collectives
            with Range("DataParallel.exchange_sparse"):
                sparse_counts, refused = self._sparse.exchange(self._comm, self._weight, factor)
            self._sparse.install(sparse_counts)
            partly_unused += [f"'{name}' (no gradient on {size - c} of {size} ranks)"
                              for name, c in zip(self._sparse.names, sparse_counts) if c < size]
        for b in self._buckets:
            b.install(counts[b.index])
            partly_unused += [f"'{name}' (no gradient on {size - c} of {size} ranks)"
                              for name, c in zip(b.names, counts[b.index]) if c < size]
            b.reset()
        self._launched = self._probed = 0
        self._weight = None
        self._explicit_samples = None
        self._forward_samples = None
        self._forwards, self._resets = [], {}  # (.sync_abandoned)
        micro_passes, self._micro_passes = self._micro_passes, 0
        self._in_sync = False
        self._synced_since_finish = True
        self._reset_latched = False
        self.num_syncs += 1
        if self.powersgd is not None:
            self.powersgd.step_done()
        if self.broadcast_buffers and self._synced_buffers:
            # (in a join: from an active rank; rank 0 may have joined and hold stale statistics)
            self._broadcast_tensors(self._synced_buffers, root=0 if join_step is None else join_step.root)
        if join_step is not None:
            self._join_step = None
        elif self.check_every and self.num_syncs % self.check_every == 0:  # (a joined rank's replica lags)
            self.check_replicas()
        if refusing or refused:  # the same sum and sparse table on every rank: every rank refuses alike
            # (every rank's notes, and whether its finish_gradient_synchronization() made this exchange, gathered
            # only now that some rank refuses: the normal step pays nothing)
            notes, self._notes = self._notes, []
            every = self._comm.allgather_object((notes, self._finishing, micro_passes))
            for p in self._params:  # (zeros stood in for refused gradients: the step's average is not one)
                p.grad = None
            # (a finish_gradient_synchronization() next, with no forward or count since, is a no-op only when some
            # rank's finish made this exchange, which ended its step there: .sync_finish)
            self._synced_since_finish = "refused" if any(f for _, f, _ in every) else "refused in backward"
            passes = max(p for _, _, p in every)  # (the step's micro-batches, for a step ended early: .sync_step_ended)
            every = [n for n, _, _ in every] if refusing else []
            error = agreed_error(every, refused, self.comm.rank)
            error.micro_passes = passes
            raise error
        if partly_unused and not self.find_unused_parameters:
            raise_unused(partly_unused)
