"""Logging with the rank in every line: ``[rank 0] epoch 3 ...``.

distnn logs through the standard :mod:`logging` module under the ``distnn``
logger. Only rank 0's records are shown by default, so an N-rank job prints
one copy of everything; set ``DISTNN_LOG_ALL_RANKS=1`` (or pass
``all_ranks=True``) to see every rank. The rank is looked up per thread, so the
simulated ranks of ``--simulate-ranks`` (threads in one process) each log with
their own rank.
"""
from __future__ import annotations

import logging
import os
import sys
import threading

LOGGER_NAME = "distnn"
_local = threading.local()
_process_rank = 0


def set_rank(rank: int, thread_only: bool = False) -> None:
    """Record this rank for log lines (for this thread only with ``thread_only``)."""
    global _process_rank
    _local.rank = int(rank)
    if not thread_only:
        _process_rank = int(rank)


def current_rank() -> int:
    return getattr(_local, "rank", _process_rank)


class RankFilter(logging.Filter):
    """Adds ``record.rank``; drops records of ranks other than 0 unless ``all_ranks``."""

    def __init__(self, all_ranks: bool = False):
        super().__init__()
        self.all_ranks = all_ranks

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank = current_rank()
        return self.all_ranks or record.rank == 0 or record.levelno >= logging.ERROR


def get_logger(name: str = "") -> logging.Logger:
    """The ``distnn`` logger or one of its children (``distnn.train``)."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def setup_logging(level: int | str = logging.INFO, all_ranks: bool | None = None, stream=None) -> logging.Logger:
    """Configure the ``distnn`` logger once: "[rank R] message" on stderr.

    Calling it again replaces the handler (so tests and the CLI can reconfigure).
    ``all_ranks=None`` reads ``DISTNN_LOG_ALL_RANKS``.
    """
    if all_ranks is None:
        all_ranks = os.environ.get("DISTNN_LOG_ALL_RANKS", "").strip().lower() in ("1", "true", "yes", "on")
    logger = get_logger()
    for h in list(logger.handlers):
        if getattr(h, "_distnn", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler._distnn = True
    handler.setFormatter(logging.Formatter("[rank %(rank)s] %(message)s"))
    handler.addFilter(RankFilter(all_ranks))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger
