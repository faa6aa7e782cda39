"""``distnn.func``: ``functional_call``, as ``torch.func.functional_call`` (in distnn.nn.utils.stateless)."""
from distnn.nn.utils.stateless import func_functional_call as functional_call

__all__ = ["functional_call"]
