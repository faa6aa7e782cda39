"""``record_function``: a labelled range of the user's own (torch's), as a context manager or a decorator."""
from __future__ import annotations

import functools

from distnn.autograd.profiler_record import Range


class record_function:
    """Label a block (``with record_function("data"):``) or every call of a function
    (``@record_function("loss")``) in the profile: its range nests the ops run inside it, and
    ``key_averages`` has a row of that name. Records nothing (one flag test) while no profiler records.
    ``args``: an optional string, kept as the range's note (torch's argument)."""

    def __init__(self, name: str, args: str | None = None):
        if not isinstance(name, str) or not name:
            raise TypeError(f"record_function: name must be a non-empty str, got {name!r}")
        if args is not None and not isinstance(args, str):
            raise TypeError(f"record_function: args must be a str or None, got {args!r}")
        self.name, self.args = name, args
        self._ranges = []  # (a stack: the same object may be entered again inside itself)

    def __enter__(self):
        self._ranges.append(Range(self.name, "user_annotation").__enter__())
        return self

    def __exit__(self, *exc):
        self._ranges.pop().__exit__(*exc)
        return False

    def __call__(self, fn):
        if not callable(fn):
            raise TypeError(f"record_function({self.name!r}) decorates a function, got {fn!r}")

        @functools.wraps(fn)
        def recorded(*args, **kwargs):
            with record_function(self.name, self.args):  # (a range of its own per call: threads, recursion)
                return fn(*args, **kwargs)
        return recorded
