"""``BasePruningMethod`` and ``PruningContainer`` of ``torch.nn.utils.prune``, with the amount validation the
pruning methods share.

Pruning ``module.<name>`` moves the parameter to ``<name>_orig``, adds the buffer ``<name>_mask`` and makes
``module.<name>`` a plain attribute, ``<name>_mask * <name>_orig``, recomputed before every forward by the
method itself, registered as a forward pre-hook (PyTorch's state dict keys and hook). The product is in the
graph, so ``<name>_orig.grad`` is masked. Pruning the same tensor again puts both methods in a
``PruningContainer``, whose new method sees only what is still unpruned (the unmasked entries, or the
channels not wholly pruned), as PyTorch's.

Masks are computed on the arrays (they carry no gradient); ``compute_mask`` takes and returns Tensors, so
that a user's subclass can be written as for PyTorch.
"""
from __future__ import annotations

import numbers
from abc import ABC, abstractmethod

from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ...module import Parameter

__all__ = ["BasePruningMethod", "PruningContainer"]


def _data(x):
    """The array of a Tensor (or of anything array-like)."""
    return x.data if isinstance(x, Tensor) else get_array_module(x).asarray(x)


def _pre_hooks(module) -> dict:
    """The module's forward pre-hooks by handle id (values: ``(hook, with_kwargs, always_call)``)."""
    return module.__dict__.get("_forward_pre_hooks", {})


def _pruning_hooks(module, name=None):
    """(handle id, method) of the pruning hooks of ``module`` (of its tensor ``name`` only, if given)."""
    return [(key, hook) for key, (hook, _, _) in _pre_hooks(module).items()
            if isinstance(hook, BasePruningMethod) and (name is None or hook._tensor_name == name)]


class BasePruningMethod(ABC):
    """Base class of the pruning methods, as PyTorch's: subclasses set ``PRUNING_TYPE`` ('unstructured',
    'structured' (with a ``dim``) or 'global') and define :meth:`compute_mask`; :meth:`apply` prunes a
    module's tensor in place."""

    _tensor_name = None  # (set by apply: the tensor this method prunes)

    def __call__(self, module, inputs):
        """The forward pre-hook: ``module.<name> = <name>_mask * <name>_orig``."""
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t, default_mask):
        """The mask (same shape as ``t``, the importance scores) that this method applies on top of
        ``default_mask`` (the previous pruning's; ones if none)."""

    def apply_mask(self, module):
        """The pruned tensor of ``module``: its mask times its original, in the graph (the original's gradient
        is masked)."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned")
        mask = getattr(module, self._tensor_name + "_mask")
        orig = getattr(module, self._tensor_name + "_orig")
        return mask.to(orig.dtype) * orig

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        """Prune ``module.<name>`` with ``cls(*args, **kwargs)``, on top of any earlier pruning of it (both then
        in a :class:`PruningContainer`); ``importance_scores`` (the shape of the parameter) rank the entries
        instead of the parameter's values. Returns the method (or container) registered as the hook.

        Unlike PyTorch, a refusal (an amount too large, a bad ``dim``) leaves the module as it was, earlier
        pruning and its hook included: the mask is computed before anything is changed."""
        method = cls(*args, **kwargs)  # (the amount is checked before the module is touched)
        method._tensor_name = name
        found = _pruning_hooks(module, name)
        if len(found) > 1:
            raise AssertionError(f"Avoid adding multiple pruning hooks to the same tensor {name} of module "
                                 f"{module}. Use a PruningContainer.")
        old_key, old = found[0] if found else (None, None)
        orig = getattr(module, name)  # (a wrong name: the module's AttributeError)
        if old is None and not isinstance(orig, Parameter):
            raise TypeError(f"cannot prune '{name}' of {module.where()}: a Parameter is expected, got "
                            f"{type(orig).__name__}")
        if importance_scores is not None:
            if tuple(importance_scores.shape) != tuple(orig.shape):
                raise AssertionError(f"importance_scores should have the same shape as parameter {name} of "
                                     f"{module}, got {tuple(importance_scores.shape)} vs {tuple(orig.shape)}")
        else:
            importance_scores = orig
        if old is None:
            combined = method
            default_mask = get_array_module(orig.data).ones_like(orig.data)
        else:
            combined = old if isinstance(old, PruningContainer) else PruningContainer(old)
            combined.add_pruning_method(method)
            default_mask = getattr(module, name + "_mask").data.copy()
        try:
            scores = importance_scores if isinstance(importance_scores, Tensor) else Tensor(_data(importance_scores))
            mask = _data(combined.compute_mask(scores, default_mask=Tensor(default_mask)))
        except Exception:
            if combined is old:  # (the container is the module's hook still: take the new method out again)
                old._pruning_methods = old._pruning_methods[:-1]
            raise
        if old is None:  # the first pruning: the parameter becomes <name>_orig (at the end, as PyTorch's)
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
        else:
            del _pre_hooks(module)[old_key]
        module.register_buffer(name + "_mask", Tensor(mask))
        setattr(module, name, combined.apply_mask(module))
        module.register_forward_pre_hook(combined)
        return combined

    def prune(self, t, default_mask=None, importance_scores=None):
        """``t`` times this method's mask (computed from ``importance_scores``, default ``t``, on top of
        ``default_mask``, default ones)."""
        if importance_scores is not None:
            if tuple(importance_scores.shape) != tuple(t.shape):
                raise AssertionError(f"importance_scores should have the same shape as tensor t, got "
                                     f"{tuple(importance_scores.shape)} vs {tuple(t.shape)}")
        else:
            importance_scores = t
        t = t if isinstance(t, Tensor) else Tensor(_data(t))
        scores = importance_scores if isinstance(importance_scores, Tensor) else Tensor(_data(importance_scores))
        if default_mask is None:
            default_mask = get_array_module(t.data).ones_like(t.data)
        mask = _data(self.compute_mask(scores, default_mask=Tensor(_data(default_mask))))
        return t * Tensor(mask)

    def remove(self, module) -> None:
        """Make the pruning permanent: ``module.<name>`` is a Parameter again (the ``<name>_orig`` object,
        holding the pruned values); ``<name>_orig`` and ``<name>_mask`` go. The pruned entries stay zero."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned before pruning can be removed")
        name = self._tensor_name
        with no_grad():
            weight = self.apply_mask(module)
        module.__dict__.pop(name, None)
        orig = module._parameters.pop(name + "_orig")
        orig.data = weight.data
        del module._buffers[name + "_mask"]
        module._non_persistent.discard(name + "_mask")
        setattr(module, name, orig)


class PruningContainer(BasePruningMethod):
    """The pruning methods applied, in turn, to one tensor: the mask of the last one is computed on what the
    earlier ones left (see :meth:`compute_mask`), as PyTorch's. Built from one method or several (all acting
    on the same tensor) or none."""

    def __init__(self, *args) -> None:
        self._pruning_methods = ()
        if args:  # (PyTorch takes the name of a single method; of several, here the first's)
            self._tensor_name = args[0]._tensor_name if isinstance(args[0], BasePruningMethod) else None
        for method in args:
            self.add_pruning_method(method)

    def add_pruning_method(self, method) -> None:
        """Append ``method`` (a BasePruningMethod acting on this container's tensor)."""
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name != method._tensor_name:
            raise ValueError(f"Can only add pruning methods acting on the parameter named '{self._tensor_name}' "
                             f"to PruningContainer {self}. Found '{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        """``default_mask`` with the last method's mask computed on the part of ``t`` still unpruned:
        'unstructured', the entries where the mask is 1 (raveled); 'structured', the channels along the
        method's ``dim`` not wholly zero; 'global', all of ``t``."""
        method = self._pruning_methods[-1]
        t_data, mask = _data(t), _data(default_mask)
        new_mask = mask.astype(t_data.dtype)  # (a copy)
        kind = method.PRUNING_TYPE
        if kind == "unstructured":
            slc = mask == 1
        elif kind == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError('Pruning methods of PRUNING_TYPE "structured" need to have the attribute '
                                     "`dim` defined.")
            n_dims, dim = t_data.ndim, method.dim
            if dim < 0:
                dim += n_dims
            if dim < 0:
                raise IndexError(f"Index is out of bounds for tensor with dimensions {n_dims}")
            keep_channel = mask.sum(axis=tuple(d for d in range(n_dims) if d != dim)) != 0
            slc = tuple(keep_channel if d == dim else slice(None) for d in range(n_dims))
        elif kind == "global":
            slc = (slice(None),) * t_data.ndim
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {kind}")
        partial = method.compute_mask(Tensor(t_data[slc]), default_mask=Tensor(mask[slc]))
        new_mask[slc] = _data(partial).astype(new_mask.dtype)
        return Tensor(new_mask)


# ------------------------------------------------------------------ the amount, as PyTorch checks it
def _validate_pruning_amount_init(amount) -> None:
    """A non-negative int, or a float in [0, 1] (checked when the method is made)."""
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral) and (float(amount) > 1.0 or float(amount) < 0.0)):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _validate_pruning_amount(amount, tensor_size) -> None:
    """An int amount may not exceed the number of units there are to prune."""
    if isinstance(amount, numbers.Integral) and amount > tensor_size:
        raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={tensor_size}")


def _compute_nparams_toprune(amount, tensor_size) -> int:
    """The number of units to prune: ``amount`` itself, or a fraction of ``tensor_size`` rounded (to even)."""
    return amount if isinstance(amount, numbers.Integral) else round(amount * tensor_size)


def _validate_structured_pruning(t) -> None:
    shape = tuple(t.shape)
    if len(shape) <= 1:
        raise ValueError("Structured pruning can only be applied to multidimensional tensors. Found tensor of "
                         f"shape {shape} with {len(shape)} dims")


def _validate_pruning_dim(t, dim) -> None:
    """``dim`` indexes a dim of ``t`` (PyTorch checks the upper bound only; a too negative one fails too)."""
    if dim >= t.ndim or dim < -t.ndim:
        raise IndexError(f"Invalid index {dim} for tensor of size {tuple(t.shape)}")
