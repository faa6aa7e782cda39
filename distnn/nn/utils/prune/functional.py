"""The functions of ``torch.nn.utils.prune``: ``identity``, ``random_unstructured``, ``l1_unstructured``,
``random_structured``, ``ln_structured``, ``global_unstructured``, ``custom_from_mask``, ``remove`` and
``is_pruned``. Each pruning function changes ``module`` in place (``<name>_orig``, the buffer ``<name>_mask``,
``module.<name>`` recomputed before each forward) and returns it, as PyTorch's."""
from __future__ import annotations

from collections.abc import Iterable

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .base import PruningContainer, _data, _pre_hooks, _pruning_hooks
from .methods import CustomFromMask, Identity, L1Unstructured, LnStructured, RandomStructured, RandomUnstructured

__all__ = ["custom_from_mask", "global_unstructured", "identity", "is_pruned", "l1_unstructured", "ln_structured",
           "random_structured", "random_unstructured", "remove"]


def identity(module, name):
    """Reparametrize ``module.<name>`` as pruned (``<name>_orig``, ``<name>_mask``) with a mask of ones."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    """Prune ``amount`` (an int: that many; a float in [0, 1]: that fraction) of the unpruned entries of
    ``module.<name>``, chosen at random (distnn's default generator)."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    """Prune the ``amount`` unpruned entries of ``module.<name>`` of smallest absolute value (or of smallest
    ``importance_scores``, a tensor of the parameter's shape)."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    """Prune ``amount`` of the unpruned channels of ``module.<name>`` along ``dim``, chosen at random."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    """Prune the ``amount`` unpruned channels of ``module.<name>`` along ``dim`` of smallest ``n``-norm (of
    ``importance_scores``, if given)."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prune the ``(module, name)`` tensors of ``parameters`` together: ``pruning_method(**kwargs)`` (an
    'unstructured' method, e.g. ``L1Unstructured`` with ``amount=``) ranks all their unpruned entries at once;
    ``importance_scores`` maps a ``(module, name)`` pair to its scores (default: the tensor). Each tensor is
    then pruned with its part of the mask (:func:`custom_from_mask`)."""
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)  # (walked three times: a generator too)
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    if not parameters:  # (PyTorch's torch.cat of nothing fails too)
        raise RuntimeError("global_unstructured(): expected a non-empty iterable of (module, name) pairs")
    tensors = [getattr(module, name) for module, name in parameters]
    xp = get_array_module(tensors[0].data)
    scores = xp.concatenate([_data(importance_scores.get((m, n), t)).reshape(-1)
                             for (m, n), t in zip(parameters, tensors)])
    masks = [getattr(m, n + "_mask", None) for m, n in parameters]  # (ones where not pruned yet)
    default_mask = xp.concatenate([(xp.ones_like(t.data) if mask is None else mask.data).reshape(-1)
                                   for mask, t in zip(masks, tensors)])
    container = PruningContainer()
    container._tensor_name = "temp"
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError('Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
                        f"{pruning_method} of type {method.PRUNING_TYPE}")
    container.add_pruning_method(method)
    final_mask = _data(container.compute_mask(Tensor(scores), Tensor(default_mask)))
    pointer = 0
    for (module, name), t in zip(parameters, tensors):
        custom_from_mask(module, name, mask=Tensor(final_mask[pointer:pointer + t.numel()].reshape(t.shape)))
        pointer += t.numel()


def custom_from_mask(module, name, mask):
    """Prune ``module.<name>`` where ``mask`` (a tensor of its shape) is 0."""
    CustomFromMask.apply(module, name, mask)
    return module


def remove(module, name):
    """Make the pruning of ``module.<name>`` permanent: ``<name>`` is a Parameter again holding the pruned
    values, ``<name>_orig``, ``<name>_mask`` and the hook go (ValueError if it is not pruned)."""
    for key, hook in _pruning_hooks(module, name):
        hook.remove(module)
        del _pre_hooks(module)[key]
        return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")


def is_pruned(module) -> bool:
    """Whether ``module`` or any of its submodules has a pruning hook."""
    return any(_pruning_hooks(m) for m in module.modules())
