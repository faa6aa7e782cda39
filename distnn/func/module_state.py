"""``torch.func.stack_module_state``: the parameters and buffers of several models of one class, stacked, for
running an ensemble with :func:`~distnn.func.functional_call` under :func:`~distnn.func.vmap`."""
from __future__ import annotations

from distnn.functional.join import stack


def _stacked_leaf(tensors, name):
    """``tensors`` stacked; a new leaf that requires grad when they all do (optimizable, unrelated to the
    originals), as torch's ``construct_stacked_leaf``."""
    all_require = all(t.requires_grad for t in tensors)
    if not all_require and any(t.requires_grad for t in tensors):
        raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
    result = stack([t.detach() for t in tensors])
    return result.requires_grad_(True) if all_require else result


def stack_module_state(models):
    """``(params, buffers)``: dicts by state-dict name of each parameter / buffer stacked over ``models`` (a
    leading dimension of ``len(models)``), as ``torch.func.stack_module_state``. The models must be of one class
    and all in training or all in eval mode. The stacked parameters are new leaves (they require grad when the
    models' do); the stacked buffers do not."""
    models = list(models)
    if len(models) == 0:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    if not all(type(m) is type(models[0]) for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    all_params = [dict(m.named_parameters()) for m in models]
    params = {k: _stacked_leaf([p[k] for p in all_params], k) for k in all_params[0]}
    all_buffers = [dict(m.named_buffers()) for m in models]
    buffers = {k: _stacked_leaf([b[k] for b in all_buffers], k) for k in all_buffers[0]}
    return params, buffers


__all__ = ["stack_module_state"]
