"""``DataParallel``: replicas of one model, one averaged gradient per step.

Wrap the model on every rank; train as usual. At construction every rank's
parameter names, shapes and dtypes are checked against the others (a mismatch
raises on every rank, naming the first differing parameter), then rank 0's
parameters and buffers are broadcast, so replicas start equal.

During ``loss.backward()`` gradients are averaged in buckets while backward
still runs (PyTorch DDP's design, ChainerMN's flat buffers):

* parameters are grouped, in reverse registration order (roughly the order
  gradients become final), into buckets of about ``bucket_mb`` MiB, the same
  layout on every rank (:mod:`.buckets`): small gradients packed into flat
  buffers, each large one (1 MiB or more) reduced in its own array;
* each parameter's post-accumulate-grad hook marks it ready; when a bucket's
  last gradient is ready, its gradients are weighted by this rank's share
  (see below) and a nonblocking allreduce starts. Buckets always start in
  list order on every rank (a bucket that becomes ready early waits for the
  ones before it), as MPI requires;
* when backward finishes (``distnn.autograd.engine.queue_callback``), buckets
  still waiting for parameters that got no gradient are sent with zeros for
  them, every allreduce is waited for, and each ``p.grad`` holds the average
  (a view of its flat bucket, or its own array averaged in place). So after
  ``backward()`` returns the gradients are averaged, and ``optimizer.step()``
  needs no extra call.

Averaging is exact for uneven shards: rank r's gradient is weighted by
``n_r / N`` (its sample count over the global count), so the result is the
gradient of the mean loss over the whole global batch, also when the last
batch leaves ranks with different numbers of samples. The local loss must be
the mean over the local samples (the default reduction). ``n_r`` is the
leading dimension of the first array argument of the forward calls since the
last synchronization, or what :meth:`set_num_samples` set. ``N`` travels in
every bucket (no extra collective): ranks pack with ``n_r / G``, where ``G``
is the previous step's global count (the same on every rank), and rescale by
``G / N`` in the rare step where the global count changed (an epoch's last
batch).

A parameter that received no gradient on some rank contributes zeros there;
one that received none on any rank keeps ``grad = None``, as it would in a
single process. ``find_unused_parameters=False`` makes either an error
(raised on every rank, naming the parameters).

Use :meth:`no_sync` for all but the last micro-batch of gradient
accumulation. A trainer that may skip backward on some rank (an empty
micro-batch) calls :meth:`finish_gradient_synchronization` before the
optimizer step: it synchronizes if this rank's backward did not (a no-op
otherwise), so no rank is left waiting.

Gradients may be sent as fp16 or bf16 (``compression``, see
:mod:`.compression`); ``check_every=K`` verifies every K steps (and
:meth:`check_replicas` on demand) that the parameters are bitwise equal on
all ranks.
"""
from __future__ import annotations

import contextlib
import hashlib
import weakref

import numpy as np

from distnn.autograd.engine import queue_callback
from distnn.autograd.grad_mode import is_grad_enabled
from distnn.backend import device_of, get_array_module, to_numpy
from distnn.nn.module import Module

from .buckets import FlatBucket, InPlaceMeta, build_buckets
from .compression import get_codec


class ReplicaMismatchError(RuntimeError):
    """Ranks hold different models (at construction) or their parameters diverged (check_replicas)."""


class DataParallel(Module):
    """Data-parallel wrapper: ``dp(x)`` runs ``module(x)``; backward averages gradients across ``comm``.

    Arguments: ``module`` (the model, identical on every rank); ``comm`` (a
    Communicator, default ``distnn.distributed.init()``); ``bucket_mb``
    (bucket size in MiB); ``compression`` (None, ``"fp16"`` or ``"bf16"``);
    ``find_unused_parameters`` (True: parameters without a gradient count
    as zeros; False: that is an error); ``check_every`` (verify replicas are
    bitwise equal every K steps, 0 = never); ``broadcast_buffers`` (copy rank
    0's buffers, e.g. BatchNorm running statistics, to all ranks after each
    step, as DDP does); ``weight_by_samples`` (weight ranks by sample count;
    False = plain mean over ranks, for losses that are not per-sample means).

    ``p.grad`` arrays are averaged in place or replaced by views of the
    buckets: keep no references to them across steps.
    """

    def __init__(self, module: Module, comm=None, bucket_mb: float = 25.0, compression=None,
                 find_unused_parameters: bool = True, check_every: int = 0, broadcast_buffers: bool = True,
                 weight_by_samples: bool = True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel wraps a distnn.nn.Module, got {type(module).__name__}")
        if not bucket_mb > 0:
            raise ValueError(f"bucket_mb must be > 0, got {bucket_mb!r}")
        if check_every < 0:
            raise ValueError(f"check_every must be >= 0, got {check_every!r}")
        if comm is None:
            from . import init

            comm = init()
        self.module = module
        self.comm = comm
        self.bucket_mb = float(bucket_mb)
        self.codec = get_codec(compression)
        self.compression = compression
        self.find_unused_parameters = find_unused_parameters
        self.check_every = int(check_every)
        self.broadcast_buffers = broadcast_buffers
        self.weight_by_samples = weight_by_samples
        self.num_syncs = 0  # completed gradient synchronizations (= optimizer steps, normally)
        self._require_sync = True
        self._explicit_samples = None
        self._forward_samples = None  # samples seen by forward since the last sync (None: no forward)
        self._last_samples = 1
        self._count_guess = float(comm.size)  # G: the global sample count ranks pack against (common)
        self._in_sync = False
        self._synced_since_finish = False
        self._launched = 0
        self._probed = 0
        self._weight = None
        self._hooks = []
        self._buckets = []
        self._train_params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if comm.size > 1:
            self._verify_same_model()
            self._broadcast_tensors([t for _, t in module.named_parameters()] + [b for _, b in module.named_buffers()])
            self._build_buckets()
            self._register_hooks()

    # -------------------------------------------------------------- forward
    def forward(self, *inputs, **kwargs):
        if self._explicit_samples is None and is_grad_enabled():
            n = _leading_dim(inputs)
            if n is not None:
                self._forward_samples = (self._forward_samples or 0) + n
        return self.module(*inputs, **kwargs)

    def set_num_samples(self, n: int) -> None:
        """Weight this rank's gradient by ``n`` samples at the next synchronization.

        Overrides the count inferred from forward inputs (use it when padded
        rows are masked out of the loss). Cleared after each synchronization.
        """
        if n < 0:
            raise ValueError(f"number of samples must be >= 0, got {n}")
        self._explicit_samples = int(n)

    set_sample_count = set_num_samples

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate local gradients (micro-batches of accumulation)."""
        previous = self._require_sync
        self._require_sync = False
        try:
            yield
        finally:
            self._require_sync = previous

    # -------------------------------------------------------- construction
    def _verify_same_model(self):
        sig = [("parameter", n, tuple(p.shape), str(p.dtype), bool(p.requires_grad))
               for n, p in self.module.named_parameters()]
        sig += [("buffer", n, tuple(b.shape), str(b.dtype)) for n, b in self.module.named_buffers()]
        every = self.comm.allgather_object(sig)
        for i in range(max(len(s) for s in every)):
            entries = [s[i] if i < len(s) else None for s in every]
            if all(e == entries[0] for e in entries):
                continue
            kind, name = next((e[0], e[1]) for e in entries if e is not None)
            groups = {}
            for r, e in enumerate(entries):
                groups.setdefault(e, []).append(r)
            detail = "; ".join(f"rank{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}: {_describe(e)}"
                               for e, rs in groups.items())
            raise ReplicaMismatchError(
                f"DataParallel: the model differs across ranks; first difference at {kind} #{i} '{name}': {detail}. "
                "Every rank must build the same model.")

    def _broadcast_tensors(self, tensors, root: int = 0):
        """Broadcast the tensors' data from ``root``, one flat message per (dtype, device)."""
        groups = {}
        for t in tensors:
            groups.setdefault((t.data.dtype.str, device_of(t.data)), []).append(t)
        for group in groups.values():
            xp = get_array_module(group[0].data)
            flat = xp.concatenate([t.data.reshape(-1) for t in group]) if len(group) > 1 else \
                group[0].data.reshape(-1).copy()
            self.comm.broadcast(flat, root=root)
            offset = 0
            for t in group:
                n = int(t.data.size)
                t.data[...] = flat[offset:offset + n].reshape(t.data.shape)
                offset += n

    def _build_buckets(self):
        self._buckets = build_buckets(self._train_params, self.bucket_mb * (1 << 20), self.codec)
        self._inplace_meta = InPlaceMeta(self._buckets)
        self._slot = {}
        for b in self._buckets:
            for j, p in enumerate(b.params):
                self._slot[id(p)] = (b, j)

    def _register_hooks(self):
        ref = weakref.ref(self)
        for _, p in self._train_params:
            b, j = self._slot[id(p)]

            def hook(tensor, _b=b, _j=j):
                dp = ref()
                if dp is not None:
                    dp._grad_ready(_b, _j)

            self._hooks.append(p.register_post_accumulate_grad_hook(hook))

    def remove_hooks(self) -> None:
        """Detach from the model's parameters (the model then trains without synchronization)."""
        for h in self._hooks:
            h.remove()
        self._hooks = []

    @property
    def bucket_layout(self) -> list:
        """Parameter names per bucket, in launch order."""
        return [list(b.names) for b in self._buckets]

    # ------------------------------------------------------ synchronization
    def _grad_ready(self, bucket, j):
        if not self._require_sync:
            return
        if not self._in_sync:
            self._in_sync = True
            queue_callback(self._end_of_backward)
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

    def _launch_ready(self):
        buckets = self._buckets
        while self._launched < len(buckets) and buckets[self._launched].pending == 0:
            self._launch(buckets[self._launched])
            self._launched += 1

    def _local_samples(self) -> int:
        if self._explicit_samples is not None:
            n = self._explicit_samples
        elif self._forward_samples is not None:
            n = self._forward_samples
        else:
            n = self._last_samples
        self._last_samples = n
        return n

    def _launch(self, b):
        if self._weight is None:  # fixed for the whole synchronization: every bucket packs alike
            self._samples = self._local_samples()
            self._weight = (self._samples / self._count_guess if self.weight_by_samples
                            else 1.0 / self.comm.size)
        b.launch(self.comm, self._weight, self._samples)

    def _end_of_backward(self):
        if self._in_sync:
            self._complete_sync()

    def _complete_sync(self):
        """Launch what is left (missing gradients as zeros), wait for everything, install averages."""
        for b in self._buckets[self._launched:]:
            b.pending = 0
        self._launch_ready()
        meta = self._inplace_meta
        if meta:
            meta.launch(self.comm, self._samples)
        for b in self._buckets:
            b.wait()
        counts, total = {}, 0.0
        for b in self._buckets:
            if isinstance(b, FlatBucket):
                counts[b.index], total = b.counts()
        if meta:
            inplace_counts, total = meta.wait()
            counts.update((b.index, [c]) for b, c in zip(meta.buckets, inplace_counts))
        # Ranks packed with n_r / G; when the global count N differs (an epoch's short last
        # batch), turn the sums into the average with n_r / N. Every rank sees the same N.
        if self.weight_by_samples and total > 0 and total != self._count_guess:
            for b in self._buckets:
                b.scale(self._count_guess / total)
            self._count_guess = total  # the next step packs against this step's global count
        size = self.comm.size
        partly_unused = []
        for b in self._buckets:
            b.install(counts[b.index])
            partly_unused += [f"'{name}' (no gradient on {size - c} of {size} ranks)"
                              for name, c in zip(b.names, counts[b.index]) if c < size]
            b.reset()
        self._launched = self._probed = 0
        self._weight = None
        self._explicit_samples = None
        self._forward_samples = None
        self._in_sync = False
        self._synced_since_finish = True
        self.num_syncs += 1
        if self.broadcast_buffers:
            buffers = [b for _, b in self.module.named_buffers()]
            if buffers:
                self._broadcast_tensors(buffers)
        if self.check_every and self.num_syncs % self.check_every == 0:
            self.check_replicas()
        if partly_unused and not self.find_unused_parameters:
            raise RuntimeError(
                "DataParallel(find_unused_parameters=False): parameters received no gradient in this backward: "
                + ", ".join(partly_unused) + ". Make every parameter take part in the loss, or pass "
                "find_unused_parameters=True to treat missing gradients as zeros.")

    def finish_gradient_synchronization(self) -> None:
        """Make sure this step's gradients are averaged; call before ``optimizer.step()`` if unsure.

        A no-op when backward already synchronized (the usual case). When this
        rank ran no synchronizing backward since the last call (every
        micro-batch was empty, or all ran under ``no_sync``), it synchronizes
        now with whatever local gradients exist, so the other ranks are not
        left waiting. Collective: call it on every rank or on none.
        """
        if self.comm.size == 1:
            return
        if self._in_sync or not self._synced_since_finish:
            self._in_sync = True
            self._complete_sync()
        self._synced_since_finish = False

    # --------------------------------------------------------------- checks
    def check_replicas(self) -> None:
        """Raise :class:`ReplicaMismatchError` on every rank unless parameters are bitwise equal everywhere.

        Collective. Buffers are compared too when ``broadcast_buffers`` keeps them equal.
        """
        tensors = list(self.module.named_parameters())
        if self.broadcast_buffers:
            tensors += list(self.module.named_buffers())
        digests = [hashlib.blake2b(np.ascontiguousarray(to_numpy(t.data)), digest_size=16).digest()
                   for _, t in tensors]
        every = self.comm.allgather_object(digests)
        for i, (name, _) in enumerate(tensors):
            groups = {}
            for r, d in enumerate(every):
                groups.setdefault(d[i], []).append(r)
            if len(groups) > 1:
                parts = " vs ".join(f"ranks {rs}" for rs in groups.values())
                raise ReplicaMismatchError(
                    f"DataParallel: replicas diverged after {self.num_syncs} synchronized steps: '{name}' "
                    f"differs between {parts} (first differing tensor; something updated the model "
                    "differently on some rank)")


def _leading_dim(inputs):
    """Batch size of a forward call: the leading dimension of its first array argument."""
    for x in inputs:
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) >= 1:
            return int(shape[0])
    return None


def _describe(entry) -> str:
    if entry is None:
        return "(missing)"
    text = f"'{entry[1]}' shape {entry[2]} {entry[3]}"
    if entry[0] == "parameter" and not entry[4]:
        text += " (frozen)"
    return text
