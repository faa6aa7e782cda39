"""Gradient buckets: how :class:`~.data_parallel.DataParallel` moves gradients through one collective each.

A bucket is a fixed group of parameters, the same on every rank. Each
synchronization it is *launched* once (its gradients weighted by this rank's
share, unless backward already did that through its seed, and a nonblocking
collective started), then *finished* (waited for, rescaled if needed) and
*installed* (the averages become ``p.grad``). Besides the gradients a bucket
carries one flag per parameter (1 where this rank has a gradient); summed,
they give how many ranks had each gradient.

The step's other numbers (the in-place buckets' flags, the sample count, the
caller's step flags: the "step meta") ride in the LAST bucket launched when
it is a flat one, so a typical step costs one collective per bucket and
nothing more; otherwise they go in one tiny collective of their own
(:class:`StepMeta`), started after the last bucket.

Two kinds:

* :class:`FlatBucket` packs many gradients into one flat buffer (small
  parameters: one collective instead of many; with compression, every
  parameter). Packing and weighting are one pass; afterwards each ``p.grad``
  is a view of the buffer, so nothing is copied back.
* :class:`InPlaceBucket` holds one large parameter and reduces its gradient
  array where it lies: no copy into a second buffer, and no pass at all when
  backward's seed already weighted it.

Lifecycle per synchronization: ``launch`` (in bucket order), ``wait``,
``scale`` (rarely: when the global sample count changed), ``install``.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import device_of, get_array_module, to_numpy

# Gradients at least this large are reduced in place (no packing copy); smaller ones are packed.
INPLACE_BYTES = 1 << 18


class _BucketBase:
    extra = 0  # step-meta slots this bucket carries (the last flat bucket only)

    def __init__(self, index, entries):
        self.index = index
        self.names = [name for name, _ in entries]
        self.params = [p for _, p in entries]
        self.dtype = self.params[0].data.dtype
        self.numel = sum(int(p.data.size) for p in self.params)
        self.reset()

    def reset(self):
        self.ready = [False] * len(self.params)
        self.pending = len(self.params)


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


class FlatBucket(_BucketBase):
    """Many gradients back to back in one buffer: ``[values..., flag per parameter, step meta...]``.

    ``extra`` slots of step meta are reserved when this bucket carries it
    (the last bucket launched); :meth:`launch` fills them.
    """

    def __init__(self, index, entries, codec=None):
        super().__init__(index, entries)
        self.codec = codec
        self.buffer = None
        self.handle = None

    def _allocate(self):
        xp = get_array_module(self.params[0].data)
        self.buffer = xp.zeros(self.numel + len(self.params) + self.extra, dtype=self.dtype)
        self.values, self.meta = self.buffer[:self.numel], self.buffer[self.numel:]
        self.flags = self.meta[:len(self.params)]
        self.views, offset = [], 0
        for p in self.params:
            n = int(p.data.size)
            self.views.append(self.values[offset:offset + n].reshape(p.data.shape))
            offset += n
        if self.codec is not None:
            self.message = xp.empty(self.codec.message_size(self.numel, self.meta.size), dtype=xp.uint16)

    def launch(self, comm, weight, extra=None):
        """Pack ``weight * p.grad`` (zeros where None), the flags and ``extra`` (the step meta); start the sum."""
        if self.buffer is None:
            self._allocate()
        xp = get_array_module(self.buffer)
        flags = [0.0] * len(self.params)
        for j, p in enumerate(self.params):
            g = p.grad
            if g is None:
                self.views[j][...] = 0
            else:
                flags[j] = 1.0
                _weigh_into(xp, self.views[j], g, weight)
        if self.extra:
            flags.extend(extra)
        self.meta[...] = xp.asarray(flags, dtype=self.dtype)  # one write (a single transfer on a GPU)
        if self.codec is None:
            self.handle = comm.iallreduce(self.buffer, "sum")
        else:
            self.codec.encode(self.values, self.meta, self.message)
            self.handle = comm.iallgather(self.message)

    def test(self) -> bool:
        return self.handle.test()

    def wait(self) -> None:
        result = self.handle.wait()
        self.handle = None
        if self.codec is not None:
            self.codec.decode_sum(result, self.values, self.meta)

    def counts(self):
        """After wait: (ranks that had each parameter's gradient, the summed step meta or None)."""
        m = to_numpy(self.meta).tolist()
        k = len(self.params)
        return [int(round(c)) for c in m[:k]], (m[k:] if self.extra else None)

    def scale(self, factor: float) -> None:
        self.values *= factor

    def install(self, counts):
        for j, p in enumerate(self.params):
            p.grad = self.views[j] if counts[j] > 0 else None


class InPlaceBucket(_BucketBase):
    """One large gradient, reduced in its own array (its used flag travels in the step meta)."""

    def __init__(self, index, entries):
        super().__init__(index, entries)
        self.array = None
        self.handle = None
        self.used = False
        self._zeros = None

    def launch(self, comm, weight, extra=None):
        p = self.params[0]
        g = p.grad
        xp = get_array_module(p.data)
        self.used = g is not None
        if g is None:  # no gradient here: contribute zeros (a spare array, reused)
            if self._zeros is None:
                self._zeros = xp.zeros(p.data.shape, dtype=self.dtype)
            else:
                self._zeros[...] = 0
            arr = self._zeros
        elif g.flags.c_contiguous and g.dtype == self.dtype and getattr(g.flags, "writeable", True):  # cupy: no flag
            arr = g  # the leaf's own gradient array: averaged where it is
            _weigh_into(xp, arr, g, weight)
        else:
            arr = xp.empty(p.data.shape, dtype=self.dtype)
            _weigh_into(xp, arr, g, weight)
        self.array = arr
        self.handle = comm.iallreduce(arr, "sum")

    def test(self) -> bool:
        return self.handle.test()

    def wait(self) -> None:
        self.handle.wait()
        self.handle = None

    def scale(self, factor: float) -> None:
        self.array *= factor

    def install(self, counts):
        p = self.params[0]
        if counts[0] > 0:
            p.grad = self.array
            if self.array is self._zeros:
                self._zeros = None  # now the gradient: do not reuse it
        else:
            p.grad = None
        self.array = None


class StepMeta:
    """The step meta in a tiny allreduce of its own (when the last bucket launched is an in-place one)."""

    def __init__(self, size):
        self.meta = np.zeros(size)
        self.handle = None

    def launch(self, comm, extra):
        self.meta[...] = extra
        self.handle = comm.iallreduce(self.meta, "sum")

    def test(self) -> bool:
        return self.handle.test()

    def wait(self) -> None:
        self.handle.wait()
        self.handle = None

    def values(self) -> list:
        return self.meta.tolist()


def build_buckets(named_params, bucket_bytes: float, codec=None, inplace_bytes=None) -> list:
    """Buckets in launch order: parameters in reverse registration order, grouped per (dtype, device).

    A parameter joins the open bucket of its dtype/device if it fits under
    ``bucket_bytes``, else starts a new one. Without compression, a gradient
    of ``inplace_bytes`` or more gets an :class:`InPlaceBucket` of its own
    (the open bucket before it is closed first, keeping launch order close to
    readiness order). One exception lets the step meta ride in a flat
    bucket: when the list would end with in-place buckets of the same module
    as the flat bucket before them (a first layer's bias packed, its weight
    in place), that flat bucket moves to the end. A module's parameters get
    their gradients in the same backward step, so this costs no overlap.
    """
    inplace_bytes = INPLACE_BYTES if inplace_bytes is None else inplace_bytes
    open_, sizes, groups = {}, {}, []
    for name, p in reversed(list(named_params)):
        key = (p.data.dtype.str, device_of(p.data))
        nbytes = p.data.nbytes
        if codec is None and nbytes >= inplace_bytes:
            if open_.get(key):
                groups.append(("flat", open_.pop(key)))
            groups.append(("inplace", [(name, p)]))
            continue
        if open_.get(key) and sizes[key] + nbytes > bucket_bytes:
            groups.append(("flat", open_.pop(key)))
        if not open_.get(key):
            open_[key], sizes[key] = [], 0
        open_[key].append((name, p))
        sizes[key] += nbytes
    groups.extend(("flat", entries) for entries in open_.values() if entries)
    k = len(groups)
    while k > 0 and groups[k - 1][0] == "inplace":
        k -= 1
    if 0 < k < len(groups) and groups[k - 1][0] == "flat":
        module = _module_of(groups[k - 1][1][-1][0])
        if all(_module_of(entries[0][0]) == module for _, entries in groups[k:]):
            groups.append(groups.pop(k - 1))
    return [InPlaceBucket(i, entries) if kind == "inplace" else FlatBucket(i, entries, codec)
            for i, (kind, entries) in enumerate(groups)]


def _module_of(name: str) -> str:
    return name.rpartition(".")[0]
