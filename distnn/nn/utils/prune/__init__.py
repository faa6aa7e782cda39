"""``distnn.nn.utils.prune``, as ``torch.nn.utils.prune``: pruning a module's parameter by a mask.

``module.<name>`` becomes ``<name>_orig`` (the Parameter trained) times the buffer ``<name>_mask``, recomputed
by a forward pre-hook, which is the pruning method itself; ``remove`` makes it permanent. The classes:
``base.py`` (``BasePruningMethod``, ``PruningContainer``), ``methods.py`` (the methods); the functions:
``functional.py``.
"""
from .base import BasePruningMethod, PruningContainer
from .functional import (custom_from_mask, global_unstructured, identity, is_pruned, l1_unstructured, ln_structured,
                         random_structured, random_unstructured, remove)
from .methods import CustomFromMask, Identity, L1Unstructured, LnStructured, RandomStructured, RandomUnstructured

__all__ = [
    "BasePruningMethod", "CustomFromMask", "Identity", "L1Unstructured", "LnStructured", "PruningContainer",
    "RandomStructured", "RandomUnstructured", "custom_from_mask", "global_unstructured", "identity", "is_pruned",
    "l1_unstructured", "ln_structured", "random_structured", "random_unstructured", "remove",
]
