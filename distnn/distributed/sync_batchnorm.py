"""``SyncBatchNorm``: batch normalization with statistics over the global batch of all ranks.

Forward: each rank computes, per channel, its count ``n_r``, mean and M2
(sum of squared deviations, two-pass), and the ranks allgather them. Every
rank then combines them in rank order with Chan's parallel formula::

    n = n_a + n_b,  delta = mean_b - mean_a
    mean = mean_a + delta * n_b / n
    M2 = M2_a + M2_b + delta**2 * n_a * n_b / n

which, unlike E[x^2] - mean^2, loses no precision when the mean is large
next to the spread, and handles ranks with different (even zero) batch
sizes. Normalization uses the biased variance M2 / n; running statistics
get the unbiased one, as in PyTorch.

Backward: the input gradient needs the per-channel sums of ``dy`` and
``dy * xhat`` over the global batch: one allreduce of 2C numbers.
:class:`~.data_parallel.DataParallel` weights rank r's gradients by
``w_r`` (``n_r / N`` for a loss that is the mean over its ``n_r`` samples);
the global loss is ``sum_r w_r L_r``, so the sums are taken of ``w_r * dy``
and divided by ``w_r N``, which makes the weighted result exactly the
single-process gradient on the global batch. DataParallel tells the
backward pass its ``w_r``; with gradient accumulation (``no_sync``) that is
only the step's share when the step's count was set first
(``set_num_samples``, as the Trainer does), else the share of the samples
seen so far, which is exact only when every rank's micro-batches hold the
same proportions of its samples. Without DataParallel ``w_r`` is this rank's
share of the rows. When DataParallel's backward seed already carries ``w_r``
(its usual step), ``dy`` is summed as it comes and multiplied by ``w_r``
afterwards, which is the same. Weight and bias gradients stay local sums
(DataParallel averages them like any parameter).

Padded rows: a sharded batch may repeat samples to even out the shards
(:class:`~.sampler.DistributedSampler`); the trainer masks them out of the
loss. Inside ``with valid_rows(mask):`` SyncBatchNorm also leaves them out of
the statistics (they are normalized with the statistics of the real rows), so
the result equals one process on the real global batch. The backward is
``ValidRowsBatchNormTrain``'s (plain BatchNorm's with a mask), its two sums
all-reduced as above: they, and the weight and bias gradients, run over every
row, padded ones too (whose outputs depend on the statistics and on weight and
bias: a loss that reads them gets the true derivative; the trainer's gives them
zero gradient), while only the real rows' inputs get the statistics' terms.
"""
from __future__ import annotations

import weakref

import numpy as np

from distnn.autograd.engine import backward_context
from distnn.backend import get_array_module, to_numpy
from distnn.functional.norm import BatchNormTrain, opmath, update_running_stats
from distnn.nn.normalization import ValidRowsBatchNormTrain, _BatchNorm
from distnn.nn.normalization import current_valid_rows as _current_mask
from distnn.nn.normalization import valid_rows  # noqa: F401 (shared with BatchNorm)

from .data_parallel import RANK_SHARE, RANK_WEIGHTED
from .sync_batchnorm_closing import register_layer, split_made
from .sync_batchnorm_rounds import backward_exchange, forward_exchange, history


def _channel_stats(x):
    """Per-channel (count, mean, M2) of x (N, C, ...) in float64, two-pass; zeros for an empty batch."""
    xp = get_array_module(x)
    axes = (0,) + tuple(range(2, x.ndim))
    count = x.size // x.shape[1] if x.shape[1] else 0
    if count == 0:
        zeros = np.zeros(x.shape[1])
        return 0, zeros, zeros.copy()
    x64 = x.astype(xp.float64, copy=False)
    mean = x64.mean(axis=axes)
    dev = x64 - mean.reshape((1, -1) + (1,) * (x.ndim - 2))
    m2 = (dev * dev).sum(axis=axes)
    return count, to_numpy(mean), to_numpy(m2)


def combine_stats(counts, means, m2s):
    """Chan's pairwise combination of per-rank (count, mean, M2), in rank order: (N, mean, M2)."""
    n, mean, m2 = 0.0, np.zeros_like(means[0]), np.zeros_like(m2s[0])
    for nb, mb, m2b in zip(counts, means, m2s):
        if nb == 0:
            continue
        total = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta * delta * (n * nb / total)
        n = total
    return n, mean, m2


class SyncBatchNormTrain(ValidRowsBatchNormTrain):
    """BatchNormTrain whose backward sums ``w_r * dy`` statistics over the ranks of ``comm``.

    ``count``: this rank's values per channel that took part in the statistics (its
    real rows' when ``valid`` marks padded rows), ``total``: theirs over all ranks.
    """

    torch_name = "SyncBatchNormBackward"  # (PyTorch's SyncBatchNorm is an autograd.Function of that name)

    def forward(self, x, weight, bias, mean, var, count, eps=1e-5, comm=None, total=1, valid=None):
        self.comm, self.total = comm, total
        return super().forward(x, weight, bias, mean, var, count, eps, valid=valid)

    def grads(self, g):
        if self.valid is None:
            with np.errstate(divide="ignore", invalid="ignore"):  # an empty local batch: count 0, no rows
                return BatchNormTrain.grads(self, g)
        # padded rows: ValidRowsBatchNormTrain's, whose two sums go through combine_grad_sums
        return super().grads(g)

    def combine_grad_sums(self, sum_g, sum_gxhat):
        xp = get_array_module(sum_g)
        c = sum_g.shape[0]
        buf = np.concatenate([to_numpy(sum_g), to_numpy(sum_gxhat)]).astype(np.float64)
        context = backward_context() or {}
        # The formula divides these sums by the local count n; they must come back such that
        # sum / n = (sum over ranks of w_r * sums_r) / (w_r * N), w_r the weight DataParallel gives
        # this rank's gradients (N: rows over all ranks).
        count, total = self.count, self.total
        if context.get(RANK_WEIGHTED):  # the seed already carries w_r
            _sum_over_ranks(self.comm, buf)
            buf *= count / total
        else:
            w = context.get(RANK_SHARE)  # weighted later, when packed (gradient accumulation)
            if w is None:  # no DataParallel: ranks are taken to weigh by their share of the rows
                w = count / total
            buf *= w
            _sum_over_ranks(self.comm, buf)
            buf *= count / (w * total) if w > 0 else 0.0  # (w = 0: this rank's gradient is dropped anyway)
        dtype = sum_g.dtype
        return xp.asarray(buf[:c].astype(dtype)), xp.asarray(buf[c:].astype(dtype))


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, ...) inputs whose training statistics span every rank of ``process_group``.

    PyTorch's signature (``distnn.nn.SyncBatchNorm`` is this class): same arguments, parameters and
    buffers as ``BatchNorm1d/2d/3d``, any input of at least 2 dimensions, plus ``process_group``: the
    communicator whose ranks share the statistics (default: ``distnn.distributed.init()`` at first use,
    which inside :func:`~distnn.distributed.simulate` is the simulated rank's). ``comm`` is the same
    argument under distnn's name. In one process it is ``BatchNorm``. Ranks may hold different batch
    sizes, even zero; rows marked as padding with :func:`valid_rows` are left out of the statistics.
    A float16 input is normalized in float32 (its statistics gathered in float64, its backward's sums in
    float32; torch's accumulate type) and its output and gradient come back float16, as BatchNorm's.
    In eval mode (with running statistics) no communication happens. Every rank must call forward (and
    backward) the same number of times. Inside a :class:`~.data_parallel.DataParallel` step that fails on
    some rank, or whose ranks ran these layers a different number of times, the layer's collective raises on
    the ranks waiting in it and the step ends on every rank with one error (:mod:`.sync_batchnorm_rounds`), also for
    a layer outside the wrapped model on the wrapper's communicator, and for a forward that raises under
    ``no_sync()`` (:mod:`.sync_batchnorm_closing`) or whose loss raises there (:mod:`.sync_micro_batch`), on every
    communicator the model's layers use; a deep copy is covered as the layer it copies. Not covered (as
    :class:`~.data_parallel.DataParallel` says): a layer outside the model on a communicator no DataParallel is
    built on, and a failing step while several DataParallels live on one communicator with SyncBatchNorm
    (models trained in turn, an ensemble's members, work as each alone). Ranks whose calls differ (a forward against a backward, other
    channel counts) raise the same error on every rank, under MPI too.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None, *,
                 bias: bool = True, comm=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype,
                         bias=bias)
        self.comm = _one_of(process_group, comm, "SyncBatchNorm")
        register_layer(self)  # (a DataParallel over its communicator ends its rounds too: .sync_batchnorm_closing)

    def __setstate__(self, state):
        # (a deep copy, or an unpickled layer: registered as one built here, so a DataParallel covers it too)
        own, slots = state if isinstance(state, tuple) else (state, None)
        self.__dict__.update(own or {})
        for name, value in (slots or {}).items():
            object.__setattr__(self, name, value)
        register_layer(self)

    @property
    def process_group(self):
        """PyTorch's name of :attr:`comm`: the communicator the statistics are shared over (None: ``init()``'s)."""
        return self.comm

    @process_group.setter
    def process_group(self, value):
        self.comm = value

    def _check_input_dim(self, x):
        shape = tuple(x.shape)
        if len(shape) < 2:  # (PyTorch's message; any number of trailing dimensions, as its SyncBatchNorm)
            raise ValueError(f"{self.where()}: expected at least 2D input (got {len(shape)}D input)")
        if shape[1] == 0:
            raise ValueError(f"{self.where()}: SyncBatchNorm number of input channels should be non-zero")
        if shape[1] != self.num_features:
            raise ValueError(
                f"{self.where()}: expected {self.num_features} channels (dim 1), got input of shape {shape}"
            )

    def _get_comm(self):
        if self.comm is None:
            from . import init

            self.comm = init()
        return self.comm if self.comm.size == 1 else _own_comm(self.comm)

    def forward(self, x):
        if not self._use_batch_stats():
            return super().forward(x)  # running statistics: a per-rank affine map
        comm = self._get_comm()
        self._check_input_dim(x)
        data = x.data
        mask = _current_mask(data.shape[0])
        count, mean, m2 = _channel_stats(data if mask is None else data[get_array_module(data).asarray(mask)])
        c = self.num_features
        local = np.concatenate([[float(count)], mean, m2])
        every = to_numpy(forward_exchange(comm, local)) if comm.size > 1 else local[None]  # (.sync_batchnorm_rounds)
        total, gmean, gm2 = combine_stats(every[:, 0], every[:, 1:c + 1], every[:, c + 1:])
        if total <= 1:
            raise ValueError(f"{self.where()}: expected more than 1 value per channel over all ranks when "
                             f"training, got {int(total)} (local input of shape {tuple(data.shape)})")
        factor = self._momentum_factor()  # counts the batch: only one that is used (as _BatchNorm)
        var = gm2 / total
        xp = get_array_module(data)
        # in the dtype the normalization computes in: float32 for a float16 input (torch's accumulate type; the
        # variance of values near 300 is past float16's largest, 65504), the input's otherwise
        dtype = opmath(data[:0]).dtype
        mean_x, var_x = xp.asarray(gmean.astype(dtype)), xp.asarray(var.astype(dtype))
        if self.training and self.track_running_stats:
            update_running_stats(self.running_mean, self.running_var, xp.asarray(gmean), xp.asarray(var),
                                 int(total), factor)
        return SyncBatchNormTrain.apply(x, self.weight, self.bias, mean=mean_x, var=var_x, count=count,
                                        eps=self.eps, comm=comm, total=total, valid=mask)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None, *, comm=None):
        """Replace every BatchNorm layer (``BatchNorm1d/2d/3d``) in ``module`` by a SyncBatchNorm over
        ``process_group`` (``comm``: the same, distnn's name) sharing its parameters and buffers and
        keeping its training flag, as PyTorch's.

        Returns the converted module (a new object only when ``module`` itself is a BatchNorm).
        Layers that are SyncBatchNorm already are kept as they are.
        """
        comm = _one_of(process_group, comm, "convert_sync_batchnorm")
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats, comm=comm, dtype=_dtype_of(module),
                       bias=not module.affine or module.bias is not None)
            for name in ("weight", "bias"):
                if getattr(module, name) is not None:
                    setattr(sync, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                sync._buffers[name] = module._buffers[name]
            sync.train(module.training)
            sync._set_qualnames(module._qualname)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                new = cls.convert_sync_batchnorm(child, comm=comm)
                if new is not child:  # in place: keep the child order (Sequential runs in that order)
                    module._modules[name] = new
        return module


def _sum_over_ranks(comm, buf) -> None:
    """The backward's sums over the ranks, in place: a round a rank leaving its step can answer
    (:mod:`.sync_batchnorm_rounds`)."""
    if comm.size > 1:
        backward_exchange(comm, buf)


def _one_of(process_group, comm, where):
    """The communicator given as ``process_group`` (PyTorch's name) or ``comm`` (distnn's), not both."""
    if process_group is not None and comm is not None and process_group is not comm:
        raise TypeError(f"{where}: got both process_group and comm (two names of the same argument); pass one")
    return comm if process_group is None else process_group


# base communicator -> the split of it that every SyncBatchNorm on it communicates over
_own_comms = weakref.WeakKeyDictionary()


def _own_comm(base):
    """SyncBatchNorm's communicator over ``base``'s ranks: split from it at the first training forward.

    SyncBatchNorm's collectives come in forward and backward order, the same on every rank, but
    not at the same place among other collectives: DataParallel starts a bucket wherever backward
    makes its last gradient ready, which differs between ranks when some parameter got no gradient
    on one. Each on a communicator of its own, the two need no order relative to each other. All
    layers on one base share one split (a model's twenty layers need no twenty communicators); every
    rank reaches the first training forward at the same place, so they split together. The split
    is freed with ``base``.
    """
    comm = _own_comms.get(base)
    if comm is None:
        comm = _own_comms[base] = base.split(0)  # collective
        history(comm).base = weakref.ref(base)  # (whose DataParallel ends its rounds: .sync_batchnorm_closing)
        split_made(comm, base)
        base._own_split(comm)
    return comm


def _dtype_of(bn):
    for t in (bn.weight, bn.running_mean):
        if t is not None:
            return t.data.dtype
    return None
