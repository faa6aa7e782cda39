"""The one exception distnn's data layer raises for bad input.

Every message is a single line that names the file (or dataset), where the
problem is (line, column, row, key) and what was expected, e.g.
``data file 'x.csv' line 7: expected 65 columns, got 64``. It subclasses
``ValueError`` so callers that already catch ``ValueError`` keep working.
"""
from __future__ import annotations


class DataError(ValueError):
    """Bad or unreadable input data (one-line message naming file and place)."""

    def __init__(self, message: str):
        # Keep the message on one line whatever the caller passed in.
        super().__init__(" ".join(str(message).split()))


def describe_path(path) -> str:
    """How a file is named in error messages: its path, quoted."""
    return repr(str(path))
