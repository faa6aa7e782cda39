"""``tensorboard_trace_handler``: torch's ``on_trace_ready`` that writes each recording's Chrome trace into a
directory (the files TensorBoard's profiler plugin reads; no TensorBoard needed to write or open them)."""
from __future__ import annotations

import gzip
import json
import os
import socket
import time

from .chrome_trace import trace_dict


def tensorboard_trace_handler(dir_name, worker_name: str | None = None, use_gzip: bool = False):
    """An ``on_trace_ready`` writing ``<dir_name>/<worker_name>.<time_ns>.pt.trace.json`` (``.gz`` with
    ``use_gzip``) each time a recording ends. ``worker_name`` defaults to ``<host>_<pid>``, with the rank
    appended on a simulated rank (ranks share the process). The directory is made when missing."""
    if not isinstance(dir_name, (str, os.PathLike)) or not os.fspath(dir_name):
        raise TypeError(f"tensorboard_trace_handler: dir_name must be a directory path, got {dir_name!r}")
    dir_name = os.fspath(dir_name)
    if os.path.exists(dir_name) and not os.path.isdir(dir_name):
        raise NotADirectoryError(f"tensorboard_trace_handler: {dir_name!r} exists and is not a directory")

    def handler(prof) -> None:
        os.makedirs(dir_name, exist_ok=True)
        name = worker_name
        if name is None:
            from distnn.distributed.inprocess_comm import current_simulated_comm

            comm = current_simulated_comm()
            name = f"{socket.gethostname()}_{os.getpid()}" + (f"_rank{comm.rank}" if comm is not None else "")
        path = os.path.join(dir_name, f"{name}.{time.time_ns()}.pt.trace.json")
        data = json.dumps(trace_dict(prof.events())).encode()
        if use_gzip:
            with gzip.open(path + ".gz", "wb") as f:
                f.write(data)
        else:
            with open(path, "wb") as f:
                f.write(data)

    return handler
