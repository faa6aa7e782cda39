"""``distnn.testing``: PyTorch's ``torch.testing`` and distnn's gradient checker.

* :func:`assert_close` / :func:`assert_allclose` (:mod:`.comparison`): PyTorch's comparison of tensors,
  arrays, numbers and nested sequences/mappings of them, with its default tolerances and failure messages;
* :func:`make_tensor` (:mod:`.creation`): a random tensor for a test, drawn from distnn's generator;
* :func:`check_grad` (:mod:`.grad_check`): finite-difference gradient checks of ops, layers and models.
"""
from .comparison import assert_allclose, assert_close
from .creation import make_tensor
from .grad_check import check_grad

__all__ = ["assert_close", "assert_allclose", "make_tensor", "check_grad"]
