"""Gradient buckets: how :class:`~.data_parallel.DataParallel` moves gradients through one collective each.

A bucket is a fixed group of parameters, the same on every rank, whose
gradients live back to back in one flat buffer: ``[values..., one flag per
parameter, step meta...]``. Each parameter's gradient destination
(:func:`distnn.autograd.engine.set_grad_destination`) is its view of the
buffer, so ops that can (Linear, Conv2d) write the gradient straight into it,
as a hand-written data-parallel loop would, and ``p.grad`` *is* the view.
Gradients from other ops arrive as fresh arrays and are copied in when the
bucket is launched (PyTorch DDP's packing copy).

Each synchronization a bucket is *launched* once (its gradients weighted by
this rank's share, unless backward already did that through its seed; the
flags set, 1 where this rank has a gradient; one nonblocking allreduce
started), then *finished* (waited for, rescaled if needed) and *installed*
(``p.grad`` becomes the view, or None where no rank had a gradient). Summed,
the flags give how many ranks had each gradient.

The step's other numbers (the sample count, the caller's step flags, and
whether this rank refuses the step, see :mod:`.sync_refusals`: the
"step meta") ride in the LAST bucket, so a step costs one collective per
bucket and nothing more. That bucket starts when backward ends, not when its
gradients are ready (usually the pass's last ones anyway), so that its refusal
count also counts an exception of user code late in the pass
(:mod:`.sync_failures`). Without compression the allreduce is a persistent
one (:meth:`~.comm_base.Communicator.allreduce_init`), set up once: each
start costs next to nothing. With compression a bucket takes two collectives
(:class:`~.compression.CompressedExchange`: an all-to-all started at launch,
an allgather when the bucket is finished, in bucket order on every rank).
With PowerSGD (:mod:`.powersgd`) it takes two allreduces the same way: the
uncompressed gradients, flags, meta and ``P``'s at launch, the ``Q``'s when
finished.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd import engine as _engine
from distnn.autograd.engine import set_grad_destination
from distnn.backend import device_of, get_array_module, to_numpy

from .compression import CompressedExchange
from .powersgd import PowerSGDExchange, PowerSGDState
from .sync_refusals import WHERE, note


def _weigh_into(xp, out, g, w):
    """out = w * g, one pass; zeros when w == 0 (even where g is nan: an empty local batch)."""
    if w == 0.0:
        out[...] = 0
    elif g is out:
        if w != 1.0:
            out *= w
    elif w == 1.0:
        out[...] = g
    else:
        xp.multiply(g, w, out=out)


class FlatBucket:
    """Parameters whose gradients share one flat buffer and one collective.

    ``extra`` slots of step meta are reserved when this bucket carries it
    (the last bucket); :meth:`launch` fills them.
    """

    def __init__(self, index, entries, codec=None):
        self.index = index
        self.names = [name for name, _ in entries]
        self.params = [p for _, p in entries]
        self.dtype = self.params[0].data.dtype
        self.numel = sum(int(p.data.size) for p in self.params)
        self.codec = codec
        self.extra = 0
        self.buffer = None
        self.handle = None
        self._allreduce = None
        self.reset()

    def reset(self):
        self.ready = [False] * len(self.params)
        self.pending = len(self.params)

    def allocate(self, comm) -> None:
        """(Re)build the buffer on the parameters' device and point their gradient destinations at it.

        Collective without compression (it sets up the persistent allreduce).
        """
        self.release()
        xp = get_array_module(self.params[0].data)
        size = self.numel + len(self.params) + self.extra
        if self.codec is None:  # (PowerSGD's plain steps allreduce its own buffer: not persistent)
            self._allreduce = comm.allreduce_buffer(size, self.dtype, "sum", xp)
            self.buffer = self._allreduce.array
        else:
            self.buffer = xp.zeros(size, dtype=self.dtype)
        self.values, self.meta = self.buffer[:self.numel], self.buffer[self.numel:]
        self.views, offset = [], 0
        for p in self.params:
            n = int(p.data.size)
            view = self.values[offset:offset + n].reshape(p.data.shape)
            self.views.append(view)
            set_grad_destination(p, view)
            offset += n
        if isinstance(self.codec, PowerSGDState):
            self.exchange = PowerSGDExchange(self.codec, comm, self.index, self.buffer, self.views)
        elif self.codec is not None:
            self.exchange = CompressedExchange(self.codec, comm, self.numel, self.meta.size, xp)

    def release(self) -> None:
        """Stop steering gradients here, free the persistent allreduce and let go of the buffer.

        (The model's gradient hooks keep the bucket itself alive; a buffer kept
        here would keep a shared-memory window from ever being freed.)
        """
        if self.buffer is not None:
            for p, view in zip(self.params, self.views):
                if p._grad_dest is view:
                    set_grad_destination(p, None)
        if self._allreduce is not None:
            self._allreduce.free()
            self._allreduce = None
        self.buffer = self.values = self.meta = None
        self.views = []

    def launch(self, comm, weight, notes, meta=None):
        """Pack ``weight * p.grad`` (zeros where None), the flags and, when this bucket carries it, the step
        meta (``meta()``, asked for after packing); start the sum.

        A gradient the bucket cannot take is noted in ``notes`` and sent as zeros: every rank raises the
        error when the synchronization ends (:mod:`.sync_refusals`), none is left waiting here.
        """
        if self.buffer is None or type(self.buffer) is not type(self.params[0].data):  # moved to a device
            self.allocate(comm)
        xp = get_array_module(self.buffer)
        flags = [0.0] * len(self.params)
        views = self.views
        for j, p in enumerate(self.params):
            g = p.grad
            if g is not None and (type(g) is _engine._sparse.type or g.dtype != views[j].dtype):
                self._refuse(j, g, notes)
                g = None
            if g is None:
                views[j][...] = 0
            else:
                flags[j] = 1.0
                _weigh_into(xp, views[j], g, weight)  # nothing to do when the op wrote it there, seeded
        if self.extra:
            flags.extend(meta())
        self.meta[...] = xp.asarray(flags, dtype=self.dtype)  # one write (a single transfer on a GPU)
        if self.codec is None:
            self.handle = self._allreduce.start()
        else:
            self.handle = self.exchange.start(self.values, self.meta)

    def _refuse(self, j, g, notes):
        name = self.names[j]
        if type(g) is _engine._sparse.type:  # (F.embedding(..., sparse=True) in a wrapped model's forward)
            note(notes, RuntimeError,
                 f"parameter '{name}' got a sparse gradient {WHERE}, but it is synchronized in a dense bucket",
                 "DataParallel exchanges sparse gradients for the weights of Embedding/EmbeddingBag layers with "
                 "sparse=True only (found when wrapping), not F.embedding(..., sparse=True) on another parameter: "
                 "use such a layer, or sparse=False.")
        else:  # (the engine keeps a gradient in its parameter's dtype: the parameter changed dtype)
            note(notes, TypeError,
                 f"parameter '{name}' is {g.dtype} {WHERE} but was {self.views[j].dtype} when DataParallel was built",
                 "Change a model's dtype before wrapping it.")

    def test(self) -> bool:
        return self.handle.test()

    def wait(self) -> None:
        result = self.handle.wait()
        self.handle = None
        if self.codec is not None:
            self.exchange.finish(result, self.values, self.meta)  # the second collective, in bucket order

    def counts(self):
        """After wait: (ranks that had each parameter's gradient, the summed step meta or None)."""
        m = to_numpy(self.meta).tolist()
        k = len(self.params)
        return [int(round(c)) for c in m[:k]], (m[k:] if self.extra else None)

    def scale(self, factor: float) -> None:
        self.values *= factor

    def finite(self) -> bool:
        """Whether every gradient value in the bucket is finite: one reduction over the flat buffer."""
        if self.buffer is None:
            return True
        return all_finite(self.values)

    def install(self, counts):
        for j, p in enumerate(self.params):
            p.grad = self.views[j] if counts[j] > 0 else None
            p._grad_zeroed = False


def all_finite(array) -> bool:
    """True when no entry of ``array`` is NaN or inf: usually one reduction and no temporary.

    A finite sum proves every entry finite (a NaN or inf entry makes the sum
    NaN or inf). A sum that is not finite may come from overflow of large
    finite values, so then min and max decide (they propagate NaN and never
    overflow). ``isfinite(array).all()`` would allocate a mask as large as the array.
    """
    xp = get_array_module(array)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is expected here, not a warning
        if array.size == 0 or bool(xp.isfinite(array.sum())):
            return True
    return bool(xp.isfinite(array.min())) and bool(xp.isfinite(array.max()))


def build_buckets(named_params, bucket_bytes: float, codec=None) -> list:
    """Buckets in launch order: parameters in reverse registration order, grouped per (dtype, device).

    A parameter joins the open bucket of its dtype/device if it fits under
    ``bucket_bytes``, else starts a new one (a parameter larger than
    ``bucket_bytes`` gets a bucket of its own). Reverse registration order is
    roughly the order backward makes gradients final, so early buckets can be
    sent while backward still runs.
    """
    open_, sizes, groups = {}, {}, []
    for name, p in reversed(list(named_params)):
        key = (p.data.dtype.str, device_of(p.data))
        nbytes = p.data.nbytes
        if open_.get(key) and sizes[key] + nbytes > bucket_bytes:
            groups.append(open_.pop(key))
        if not open_.get(key):
            open_[key], sizes[key] = [], 0
        open_[key].append((name, p))
        sizes[key] += nbytes
    groups.extend(entries for entries in open_.values() if entries)
    return [FlatBucket(i, entries, codec) for i, entries in enumerate(groups)]


def release_buckets(buckets, step_meta, private):
    """A DataParallel's finalizer: free its buckets' buffers and collectives; hand its communicator back."""
    idle = all(b.handle is None for b in buckets)  # (a backward that raised may have left rounds running)
    for b in buckets:
        b.release()
    if step_meta is not None:
        step_meta.free()
    if idle:
        private.in_use = False  # another DataParallel may take the communicator over
