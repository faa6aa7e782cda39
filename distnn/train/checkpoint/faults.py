"""Fault injection for tests (``DISTNN_CKPT_FAULT``, see the package docstring)."""
from __future__ import annotations

import errno
import os
import signal
import time

from .names import FAULT_ENV


def active_faults(step):
    out = []
    for item in os.environ.get(FAULT_ENV, "").split(","):
        item = item.strip()
        if not item:
            continue
        spec, _, at = item.partition("@")
        if at and int(at) != int(step):
            continue
        action, _, target = spec.partition(":")
        out.append((action, target))
    return out


#: in a checkpoint writer process (see :mod:`.writer_process`): the training process it writes for, which
#: a fault concerns as it would a write in its own thread
training_pid: int | None = None


def fault(step, action, target="", faults=None):
    for a, t in (active_faults(step) if faults is None else faults):
        if a == action and (not t or t == target):
            if action.startswith("crash"):
                if training_pid is not None:
                    os.kill(training_pid, signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)  # as sudden as a node failure
                time.sleep(10)
            if action == "enospc":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), target)
            if action == "signal_after":
                os.kill(training_pid or os.getpid(), signal.SIGTERM)
            if action == "pause_after":  # a test's signal in the middle of the write, at a known point
                from distnn.train.preemption import pause_for_test

                pause_for_test(f"paused-after-{target}")
