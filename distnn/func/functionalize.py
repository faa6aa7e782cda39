"""``torch.func.functionalize``: in torch, a transform that removes mutations (and optionally views) from the
program it traces, for compilers. distnn has no graph capture or compiler, so there is nothing to rewrite: the
function returned calls ``func`` as it is. Its results and its effects on the inputs are the same as torch's
(functionalize copies an input's mutation back into the input, so the caller sees it mutated as without it)."""
from __future__ import annotations

import functools

_REMOVE = ("mutations", "mutations_and_views")


def functionalize(func, *, remove="mutations"):
    """``torch.func.functionalize``: ``func`` with the same results and input mutations (module docstring:
    distnn does not capture a graph, so no op is rewritten). ``remove`` is checked as torch's."""
    if remove not in _REMOVE:
        raise RuntimeError(
            f"functionalize(f, remove='mutations'): received invalid argument for remove={remove}. Valid options "
            "are:\n     remove='mutations': all inplace and out= operators will be removed from the program, and "
            "replaced with their out-of-place equivalents.\n     remove='mutations_and_views': In addition to the "
            "above, all aliasing operators {view} will be replaced with their non-aliasing counterparts, "
            "{view}_copy.\n")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


__all__ = ["functionalize"]
