"""The DataLoader's option checks: PyTorch's refusals (its ValueErrors and messages), and distnn's.

``DataLoader`` takes ``torch.utils.data.DataLoader``'s whole signature. The options for worker
processes and pinned memory have nothing to act on in distnn, whose loader reads in the calling
process into host arrays:

* ``pin_memory``, ``pin_memory_device``: accepted, no effect (numpy batches are host arrays; a
  model on the GPU copies each batch when it runs);
* ``timeout`` (>= 0), ``worker_init_fn``, ``in_order``: accepted, no effect, as in PyTorch's loader with
  ``num_workers=0`` (no worker to time out, initialize or reorder);
* ``num_workers`` > 0 is refused by name (there are no worker processes), and so, as PyTorch refuses
  them with ``num_workers=0``, are ``prefetch_factor``, ``persistent_workers=True`` and a
  ``multiprocessing_context``.
"""
from __future__ import annotations

from .errors import DataError
from .iterable import IterableDataset


def check_worker_options(num_workers, timeout, prefetch_factor, persistent_workers, multiprocessing_context):
    """PyTorch's checks of the worker options, in its order; then distnn's refusal of worker processes."""
    if int(num_workers) != num_workers or num_workers < 0:
        raise DataError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
    if timeout < 0:
        raise DataError("timeout option should be non-negative")
    if num_workers == 0 and prefetch_factor is not None:
        raise DataError("prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 to "
                        "enable multiprocessing, otherwise set prefetch_factor to None.")
    if persistent_workers and num_workers == 0:
        raise DataError("persistent_workers option needs num_workers > 0")
    if num_workers:
        raise DataError(f"num_workers={num_workers}: distnn's DataLoader loads in the calling process (it has no "
                        "worker processes); use num_workers=0")
    if multiprocessing_context is not None:
        raise DataError("multiprocessing_context can only be used with multi-process loading (num_workers > 0), "
                        f"but got num_workers={num_workers}")


def check_options(dataset, batch_size, shuffle, sampler, batch_sampler, drop_last):
    """PyTorch's refusals of option combinations (ValueErrors, with its messages)."""
    if isinstance(dataset, IterableDataset):
        for name, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
            if value is not None and value is not False:
                raise DataError(f"DataLoader with IterableDataset: expected unspecified {name} option, "
                                f"but got {name}={value}")
    if sampler is not None and shuffle:
        raise DataError("sampler option is mutually exclusive with shuffle (DataLoader: pass either sampler or "
                        "shuffle=True, not both: the sampler shuffles)")
    if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
        raise DataError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last")
    if batch_sampler is None and batch_size is None and drop_last:
        raise DataError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
    if batch_sampler is None and batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise DataError(f"batch_size must be a positive integer (or None: no batching), got {batch_size}")
