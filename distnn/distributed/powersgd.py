"""PowerSGD gradient compression for :class:`~.data_parallel.DataParallel` (Vogels et al., 2019).

``DataParallel(model, compression="powersgd")`` (or ``compression=PowerSGDState(...)``)
sends low-rank approximations of the gradients, as PyTorch DDP's
``powerSGD_hook`` does. Per bucket and step, once ``state.iter`` has reached
``start_powerSGD_iter`` (a plain allreduce before that):

* with error feedback, this rank's error of the last step is added to its
  gradients: ``M = weighted grad + error``;
* each gradient worth compressing (not 1-D, and ``(n + m) * rank *
  min_compression_rate < n * m`` for its ``(n, m) = (shape[0], -1)`` view)
  is ``M`` (n, m); ``P = M Q`` (n, r), with ``Q`` (m, r) last step's (warm
  start) or drawn afresh, orthogonalized;
* one allreduce sums the uncompressed gradients, the bucket's flags and
  step meta, and every ``P``; each summed ``P`` is orthogonalized
  (Gram-Schmidt); ``Q = M^T P``; a second allreduce sums the ``Q``'s;
* the gradient becomes ``P Q^T``, and the error ``M - share * P Q^T``.

distnn weights each rank's gradient by its share ``n_r / N`` of the global
batch before the sum (see :mod:`.data_parallel`), so the allreduce sums are
already averages: ``P Q^T`` is the averaged approximation with no division
by the world size (torch divides ``Q`` by it; ``P`` is orthogonalized, so its
scale does not matter and both give the same ``P Q^T`` and the same stored
``Q``). The error of rank ``r`` is ``M_r - share_r * P Q^T``: the same
as torch's ``M_r - P Q^T`` in units of the averaged gradient (``1 / W`` of
torch's with equal shares). The errors sum over ranks to ``sum_r M_r - P Q^T``,
the compression error of one process on the global batch, so N ranks train
exactly (to rounding) as one process with PowerSGD on the whole batch: ``P``
and ``Q`` are computed from sums of ``M``, and only the sum of the errors
enters the next step's sums.

A step whose global sample count was guessed wrong (no ``n_global`` given
to ``set_num_samples`` in the first step or after a short batch; the Trainer
always gives it) packs its gradients against the guess: that step's ``M``
adds the error to a gradient off by a common factor (the sums are rescaled
afterwards, and the errors are taken in the rescaled units: they still sum
to the exact average minus the installed approximation), so that step is
an approximation of the exact one, on N ranks and on one alike.

That also says what a resume on another number of ranks does with the
per-rank errors (:meth:`DataParallel.load_sync_state_dict`): their sum goes
to rank 0 and the other ranks start at zero, which keeps the trajectory.

Differences from torch's hook, all deliberate: ``Q``'s first values come from
a generator seeded by ``(random_seed, bucket, step)`` (the same on every rank;
torch's RNG cannot be matched), so a step never needs saved generator state;
uncompressed gradients keep no error (torch's is ``M_r - mean``, which sums
to zero over ranks: it only adds rounding); ``start_powerSGD_iter`` may be 0
or 1 (torch refuses, because DDP rebuilds its buckets after step 1; distnn's
never change); Gram-Schmidt for every rank (torch takes QR above rank 2: the
same matrix up to column signs); a column of zeros stays zero (torch divides
by its zero norm when ``orthogonalization_epsilon`` is 0: NaN); a step whose
gradients are not finite (it shows in them, for the step guard to skip or
report) leaves no error or ``Q`` behind, which would make every later step
NaN. The uncompressed gradients and the ``P``'s go in one allreduce (torch: two).
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.backend import get_array_module, to_numpy


class PowerSGDState:
    """PowerSGD's options and state (iteration, error feedback, warm-start ``Q``'s), as torch's ``PowerSGDState``.

    ``matrix_approximation_rank``: ``r``, the rank of the approximation;
    ``start_powerSGD_iter``: synchronizations that use a plain allreduce
    before compression starts (torch's default, 1000); ``min_compression_rate``:
    compress a gradient only if its size over ``(n + m) * r`` exceeds this;
    ``use_error_feedback``: carry each rank's compression error into its next
    step; ``warm_start``: start each power iteration from last step's ``Q``;
    ``orthogonalization_epsilon``: added to column norms in Gram-Schmidt;
    ``random_seed``: seeds ``Q``'s first values (the same on every rank).
    """

    def __init__(self, matrix_approximation_rank: int = 1, start_powerSGD_iter: int = 1_000,
                 min_compression_rate: float = 2, use_error_feedback: bool = True, warm_start: bool = True,
                 orthogonalization_epsilon: float = 0.0, random_seed: int = 0):
        def integer(name, value, low):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"PowerSGD: {name} must be an integer >= {low}, got {value!r}")
            return int(value)

        def number(name, value):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf"):
                raise ValueError(f"PowerSGD: {name} must be a finite number >= 0, got {value!r}")
            return float(value)

        for name, value in (("use_error_feedback", use_error_feedback), ("warm_start", warm_start)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"PowerSGD: {name} must be True or False, got {value!r}")
        self.matrix_approximation_rank = integer("matrix_approximation_rank", matrix_approximation_rank, 1)
        self.start_powerSGD_iter = integer("start_powerSGD_iter", start_powerSGD_iter, 0)
        self.min_compression_rate = number("min_compression_rate", min_compression_rate)
        self.orthogonalization_epsilon = number("orthogonalization_epsilon", orthogonalization_epsilon)
        self.random_seed = integer("random_seed", random_seed, 0)
        self.use_error_feedback = bool(use_error_feedback)
        self.warm_start = bool(warm_start)
        self.iter = 0            # completed synchronizations (torch's state.iter)
        self.error_dict = {}     # bucket index -> this rank's error (flat, the bucket's values)
        self.q_memory_dict = {}  # bucket index -> the Q's of the last step (flat; warm start)
        self.share = 1.0         # this rank's packing weight n_r / G in the current step (DataParallel sets it)
        self.total_numel_before_compression = 0
        self.total_numel_after_compression = 0

    def compression_stats(self):
        """(rate, elements before, elements after) over the compressed steps so far, as torch's."""
        after = self.total_numel_after_compression
        return (self.total_numel_before_compression / after if after else 0,
                self.total_numel_before_compression, after)

    def step_done(self) -> None:
        """One synchronization finished."""
        self.iter += 1

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """What every rank shares: the iteration and the warm-start ``Q``'s (copies)."""
        return {"iter": self.iter,
                "q": {str(k): to_numpy(v).copy() for k, v in sorted(self.q_memory_dict.items())}}

    def rank_state_dict(self) -> dict:
        """This rank's own part: its error feedback (copies)."""
        return {"error": {str(k): to_numpy(v).copy() for k, v in sorted(self.error_dict.items())}}

    def load_state_dict(self, state: dict, ranks=None, rank: int = 0, world: int = 1) -> None:
        """Restore :meth:`state_dict` on rank ``rank`` of ``world``; ``ranks``: every saved rank's
        :meth:`rank_state_dict`, in rank order.

        On the same number of ranks each rank takes its own error; on another
        number, rank 0 takes the sum of all saved errors and the others none
        (the sum is all the next step's sums see: the trajectory is kept).
        """
        self.iter = int(state.get("iter", 0))
        self.q_memory_dict = {int(k): np.array(v) for k, v in (state.get("q") or {}).items()}
        self.error_dict = {}
        if not ranks:
            return
        if len(ranks) == world:
            mine = [ranks[rank]]
        else:
            mine = ranks if rank == 0 else []
        for part in mine:
            for k, v in ((part or {}).get("error") or {}).items():
                k = int(k)
                if k in self.error_dict:
                    self.error_dict[k] = self.error_dict[k] + np.asarray(v)
                else:
                    self.error_dict[k] = np.array(v)


def get_powersgd(compression):
    """The PowerSGDState for ``compression`` ("powersgd" or a PowerSGDState), else None."""
    if isinstance(compression, PowerSGDState):
        return compression
    if compression == "powersgd":
        return PowerSGDState()
    return None


def orthogonalize(matrix, epsilon: float = 0.0) -> None:
    """Gram-Schmidt on the columns of ``matrix`` (n, r), in place, as torch's ``_orthogonalize_gram_schmidt``
    (a column of zeros stays zero)."""
    xp = get_array_module(matrix)
    for i in range(matrix.shape[1]):
        col = matrix[:, i:i + 1]
        norm = xp.sqrt(xp.sum(col * col))
        if epsilon:
            col /= norm + epsilon
        elif float(norm) == 0.0:
            col[...] = 0
        else:
            col /= norm  # (a NaN norm spreads NaN: a non-finite gradient stays visible to the step's checks)
        if i + 1 < matrix.shape[1]:
            rest = matrix[:, i + 1:]
            rest -= xp.sum(col * rest, axis=0, keepdims=True) * col


class PowerSGDExchange:
    """PowerSGD's two allreduces for one bucket (see the module docstring); a plain allreduce before
    ``start_powerSGD_iter``. ``start``/``finish`` as :class:`~.compression.CompressedExchange`'s."""

    def __init__(self, state: PowerSGDState, comm, index: int, buffer, views):
        self.state, self.comm, self.index, self.buffer = state, comm, index, buffer
        self.numel = sum(int(v.size) for v in views)
        self.compressed, self.plain = [], []  # (offset, size, n, m, r) / (offset, size)
        offset, r0 = 0, state.matrix_approximation_rank
        for v in views:
            size = int(v.size)
            n = int(v.shape[0]) if v.ndim else 1
            m = size // n if n else 0
            r = min(n, m, r0)
            if v.ndim > 1 and (n + m) * r * state.min_compression_rate < n * m:
                self.compressed.append((offset, size, n, m, r))
            else:
                self.plain.append((offset, size))
            offset += size
        self.p_size = sum(n * r for _, _, n, _, r in self.compressed)
        self.q_size = sum(m * r for _, _, _, m, r in self.compressed)
        self.nplain = sum(size for _, size in self.plain) + (buffer.size - self.numel)  # + flags and meta
        self._active = False

    def _matrices(self, flat, which):
        """Views of each compressed gradient's P (``which`` "p": (n, r)) or Q ("q": (m, r)) in ``flat``."""
        out, at = [], 0
        for _, _, n, m, r in self.compressed:
            rows = n if which == "p" else m
            out.append(flat[at:at + rows * r].reshape(rows, r))
            at += rows * r
        return out

    def _m(self, values, c):
        offset, size, n, m, _ = c
        return values[offset:offset + size].reshape(n, m)

    def start(self, values, meta):
        st = self.state
        self._active = st.iter >= st.start_powerSGD_iter and bool(self.compressed)
        if not self._active:
            return self.comm.iallreduce(self.buffer)
        xp = get_array_module(values)
        dtype = values.dtype
        if st.use_error_feedback:
            error = st.error_dict.get(self.index)
            if error is None or error.shape != values.shape:
                error = st.error_dict[self.index] = xp.zeros_like(values)
            elif get_array_module(error) is not xp:
                error = st.error_dict[self.index] = xp.asarray(error)
            values += error
            error[...] = values  # M, until finish subtracts this rank's share of the approximation
        q_flat = st.q_memory_dict.get(self.index) if st.warm_start else None
        if q_flat is None or q_flat.size != self.q_size:
            rng = np.random.default_rng([st.random_seed, self.index, st.iter])
            q_flat = xp.asarray(rng.standard_normal(self.q_size)).astype(dtype)
        else:
            q_flat = xp.asarray(q_flat, dtype=dtype)
        self.q_flat = q_flat
        qs = self._matrices(q_flat, "q")
        send = xp.empty(self.nplain + self.p_size, dtype=dtype)
        at = 0
        for offset, size in self.plain:
            send[at:at + size] = values[offset:offset + size]
            at += size
        send[at:self.nplain] = meta
        for c, q, p in zip(self.compressed, qs, self._matrices(send[self.nplain:], "p")):
            orthogonalize(q, st.orthogonalization_epsilon)
            xp.matmul(self._m(values, c), q, out=p)
        st.total_numel_before_compression += self.numel
        st.total_numel_after_compression += self.nplain - meta.size + self.p_size + self.q_size
        return self.comm.iallreduce(send)

    def finish(self, received, values, meta) -> None:
        if not self._active:
            if received is not self.buffer:
                self.buffer[...] = received
            return
        st = self.state
        xp = get_array_module(values)
        at = 0
        for offset, size in self.plain:
            values[offset:offset + size] = received[at:at + size]
            at += size
        meta[...] = received[at:self.nplain]
        ps = self._matrices(received[self.nplain:], "p")
        qs = self._matrices(self.q_flat, "q")
        for c, p, q in zip(self.compressed, ps, qs):
            orthogonalize(p, st.orthogonalization_epsilon)
            xp.matmul(self._m(values, c).T, p, out=q)  # this rank's M^T P
        q_sum = self.comm.allreduce(self.q_flat)
        qs = self._matrices(q_sum, "q")
        for c, p, q in zip(self.compressed, ps, qs):
            xp.matmul(p, q.T, out=self._m(values, c))
        if st.warm_start:
            from .buckets import all_finite  # (buckets imports this module)

            if all_finite(q_sum):
                st.q_memory_dict[self.index] = q_sum
            else:  # a non-finite step (skipped or reported by the caller) must not poison the next ones
                st.q_memory_dict.pop(self.index, None)
        self.q_flat = None

    def settle_error(self, values, factor: float, share: float) -> None:
        """After a compressed step: this rank's error, ``factor * M - share * approximation`` (``values``: the
        installed gradients). ``factor`` is 1 unless the step's sums were rescaled because the global sample
        count was guessed wrong (then ``M`` was packed ``1 / factor`` too large); ``share`` = n_r / N."""
        if not (self._active and self.state.use_error_feedback):
            return
        from .buckets import all_finite
        error = self.state.error_dict[self.index]
        for c in self.compressed:
            e = self._m(error, c)
            if factor != 1.0:
                e *= factor
            e -= share * self._m(values, c)
        for offset, size in self.plain:
            error[offset:offset + size] = 0
        if not all_finite(error):  # (as Q above: a non-finite step leaves no error behind)
            error[...] = 0
