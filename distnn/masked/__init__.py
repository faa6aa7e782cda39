"""``distnn.masked``: torch.masked (torch 2.13) on dense tensors: its reductions and normalizations, and the
``MaskedTensor`` prototype.

Reductions (:mod:`distnn.masked.reductions`): ``sum``, ``prod``, ``amax``, ``amin``, ``argmax``, ``argmin``,
``mean``, ``median``, ``logsumexp``, ``norm``, ``var``, ``std``. Normalizations and scans
(:mod:`distnn.masked.normalizations`): ``cumsum``, ``cumprod``, ``softmax``, ``log_softmax``, ``softmin``,
``normalize``, and ``logaddexp``. Each takes torch's ``mask=`` (``input_mask``/``other_mask`` for logaddexp): a
boolean tensor broadcastable to the input, True where an element takes part; None means every element.

``MaskedTensor``, ``masked_tensor``, ``as_masked_tensor``, ``is_masked_tensor`` (:mod:`distnn.masked.maskedtensor`,
ops in :mod:`distnn.masked.maskedtensor_ops`).
"""
from . import maskedtensor_ops  # noqa: F401 - installs MaskedTensor's methods
from .maskedtensor import MaskedTensor, as_masked_tensor, is_masked_tensor, masked_tensor
from .normalizations import cumprod, cumsum, log_softmax, logaddexp, normalize, softmax, softmin
from .reductions import amax, amin, argmax, argmin, logsumexp, mean, median, norm, prod, std, sum, var

__all__ = ["sum", "prod", "cumsum", "cumprod", "amax", "amin", "argmax", "argmin", "mean", "median", "norm", "var",
           "std", "logsumexp", "logaddexp", "softmax", "log_softmax", "softmin", "normalize", "MaskedTensor",
           "masked_tensor", "as_masked_tensor", "is_masked_tensor"]
