"""Chrome trace-event JSON (chrome://tracing, https://ui.perfetto.dev): one complete event (``"ph": "X"``) per
recorded range, ``ts``/``dur`` in microseconds since the profile began, ``pid`` the process and ``tid`` the
thread (a simulated rank is a thread: each has its own track, named by a metadata event)."""
from __future__ import annotations

import json
import os
import threading


def trace_dict(events) -> dict:
    """The trace-event document of ``events`` (FunctionEvents)."""
    pid = os.getpid()
    names = {t.ident: t.name for t in threading.enumerate()}
    trace = []
    for tid in sorted({e.thread for e in events}):
        trace.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                      "args": {"name": names.get(tid, f"thread {tid}")}})
    for e in events:
        event = {"ph": "X", "cat": e.kind, "name": e.name, "pid": pid, "tid": e.thread,
                 "ts": e.time_range.start, "dur": e.cpu_time_total}
        args = {}
        if e.input_shapes:
            args["Input Dims"] = e.input_shapes
        if e.cpu_memory_usage:
            args["Allocated Bytes"] = e.cpu_memory_usage
        if e.device_time_total:
            args["Device Time (us)"] = e.device_time_total
        if args:
            event["args"] = args
        trace.append(event)
    return {"traceEvents": trace, "displayTimeUnit": "ms"}


def write_chrome_trace(events, path) -> None:
    """Write ``events`` to ``path`` as a Chrome trace (the directory must exist)."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"export_chrome_trace: directory {directory!r} does not exist (for {path!r})")
    with open(path, "w") as f:
        json.dump(trace_dict(events), f)
