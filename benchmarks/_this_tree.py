"""Make a benchmark import distnn from the source tree it sits in.

The environment's editable install points at one checkout; a benchmark run from another (a git worktree, an
export of an older commit) would otherwise time that checkout's code, not its own. A ``PYTHONPATH`` set by the
caller wins (``bench_op_overhead --trees`` starts its children with the tree to time there).
"""
import os
import sys


def use_this_tree() -> None:
    """Put this benchmark's tree ahead of the installed distnn on ``sys.path`` (unless ``PYTHONPATH`` is set)."""
    if os.environ.get("PYTHONPATH"):
        return
    tree = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if tree not in sys.path:
        sys.path.insert(1, tree)  # (after the script's own directory, ahead of site-packages)
