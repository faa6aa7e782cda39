"""``state_dict`` and ``load_state_dict`` of ``Module`` (a mixin), with PyTorch's keys and checks.

Keys are qualified names (``layer1.0.conv2.weight``), every name a shared (tied) submodule has, in
registration order; non-persistent buffers are left out. Loading copies in place, so optimizers
holding the parameters keep working.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from distnn.autograd.mutation_guard import will_write
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_numpy

from .module_state_hooks import (IncompatibleKeys, has_state_hooks, hooked_load, hooked_state_dict,
                                 module_has_state_hooks)

#: how many keys (and shape mismatches) a load_state_dict error lists: another model's state dict
#: (a ResNet's checkpoint into an MLP) has dozens, a wall of text that hides what went wrong
_SHOWN_KEYS = 5


def _some(keys: list, n: int = _SHOWN_KEYS) -> str:
    """``keys`` as a list of at most ``n``, then how many more there are."""
    return repr(keys) if len(keys) <= n else f"{keys[:n]} ... and {len(keys) - n} more"


class StateDict:
    """The state-dict half of :class:`~distnn.nn.Module` (it needs the module's registries and ``named_modules``)."""

    def state_dict(self, *, copy: bool = True, keep_vars: bool = False) -> "OrderedDict[str, np.ndarray]":
        """Parameters and persistent buffers as name -> numpy array (copies).

        ``copy=False`` gives the host arrays themselves (on a GPU: their host
        copies), valid until training changes them: for a caller that copies
        them at once, as a checkpoint's serializer does into its reused buffers.
        ``keep_vars=True`` (PyTorch's) gives the tensors themselves (the Parameters and buffers).
        """
        hooked = []  # (hooks or extra state, module_state_hooks.py: told by the same walk of the modules)
        tensors = self._state_tensors(hooked)
        hooked = bool(hooked)
        if keep_vars:
            return hooked_state_dict(self, True, None) if hooked else tensors
        from .lazy import uninitialized_names

        lazy = uninitialized_names(tensors)
        if lazy:  # (no array to give: PyTorch's state dict holds placeholders, which numpy cannot)
            raise ValueError(f"state_dict(): {type(self).__name__} has uninitialized parameters or buffers {_some(lazy)} "
                             "(a lazy module before its first forward): run a forward pass with a batch, or "
                             "load_state_dict, first; state_dict(keep_vars=True) gives the placeholders")
        if hooked:
            return hooked_state_dict(self, False, (lambda t: to_numpy(t.data).copy()) if copy else
                                     (lambda t: to_numpy(t.data)))
        if not copy:
            return OrderedDict((name, to_numpy(t.data)) for name, t in tensors.items())
        return OrderedDict((name, to_numpy(t.data).copy()) for name, t in tensors.items())

    def _state_tensors(self, hooked: list | None = None):
        """The tensors of :meth:`state_dict` by name: every name a shared (tied) submodule has, as in PyTorch.

        ``hooked`` (a list): a module with state-dict hooks or extra state is appended to it
        (:func:`~.module_state_hooks.has_state_hooks`, in this walk: a checkpoint asks at every save)."""
        out = OrderedDict()
        for mname, m in self.named_modules(remove_duplicate=False):
            if hooked is not None and not hooked and module_has_state_hooks(m):
                hooked.append(m)
            for pname, p in m._parameters.items():
                if p is not None:
                    out[f"{mname}.{pname}" if mname else pname] = p
            for bname, b in m._buffers.items():
                if b is not None and bname not in m._non_persistent:
                    out[f"{mname}.{bname}" if mname else bname] = b
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy arrays into the existing parameters and buffers (in place).

        Values may be numpy/cupy arrays, Tensors, or anything with ``.numpy()``
        (a PyTorch tensor). Raises KeyError listing missing and unexpected keys
        (when strict) and ValueError listing every shape mismatch.
        Returns ``(missing_keys, unexpected_keys)``, also by these names (PyTorch's). The state-dict hooks
        and ``set_extra_state`` run as in PyTorch (module_state_hooks.py).
        """
        if has_state_hooks(self):
            return hooked_load(self, state_dict, strict, lambda sd: self._load_arrays(sd, False))
        return IncompatibleKeys(*self._load_arrays(state_dict, strict))

    def _load_arrays(self, state_dict, strict):
        """The parameters and persistent buffers of :meth:`load_state_dict`: ``(missing, unexpected)``."""
        own = self._state_tensors()
        # Keys a module may do without (its current value is kept), as PyTorch's modules do for
        # state dicts without version metadata: BatchNorm's num_batches_tracked, which older ones lack.
        optional = {f"{mname}.{key}" if mname else key for mname, m in self.named_modules(remove_duplicate=False)
                    for key in m._optional_state_keys}
        missing = [k for k in own if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in own]
        problems, mismatched = [], []
        if strict and (missing or unexpected):
            if missing:
                problems.append(f"missing keys: {_some(missing)}")
            if unexpected:
                problems.append(f"unexpected keys: {_some(unexpected)}")
        from .lazy import UninitializedBuffer, UninitializedParameter, materialize_loaded

        converted, lazy_shapes = {}, {}
        for k, t in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            if isinstance(v, Tensor):
                v = v.data
            elif hasattr(v, "detach") and hasattr(v, "numpy"):  # a torch tensor
                v = v.detach().cpu().numpy()
            v = np.asarray(v) if get_array_module(v) is np else v
            if isinstance(t, (UninitializedParameter, UninitializedBuffer)):  # its shape from the checkpoint (lazy.py checks it)
                lazy_shapes[k] = tuple(v.shape)
            elif tuple(v.shape) != tuple(t.shape):
                mismatched.append(f"shape mismatch for '{k}': checkpoint {tuple(v.shape)} vs model {tuple(t.shape)}")
                continue
            converted[k] = v
        problems += mismatched[:_SHOWN_KEYS]
        if len(mismatched) > _SHOWN_KEYS:
            problems.append(f"... and {len(mismatched) - _SHOWN_KEYS} more shape mismatches")
        if problems:
            raise (KeyError if not any("shape" in p for p in problems) else ValueError)(
                f"error loading state_dict into {type(self).__name__}: " + "; ".join(problems)
            )
        if lazy_shapes:
            materialize_loaded(self, lazy_shapes)
        for k, v in converted.items():
            t = own[k]
            xp = get_array_module(t.data)
            v = to_numpy(v) if xp is np else xp.asarray(v)  # (numpy refuses a cupy array: copied to the host)
            will_write(t)  # (PyTorch's copy_: inside allow_mutation_on_saved_tensors a saved tensor is copied first)
            t.data[...] = v.astype(t.data.dtype, copy=False)
            t._bump_version()  # a graph built with the old values must not backward (PyTorch's check)
        return missing, unexpected
