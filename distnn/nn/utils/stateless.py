"""``functional_call``: run a module with some of its parameters and buffers replaced for one call, as
``torch.func.functional_call`` (and the deprecated ``torch.nn.utils.stateless.functional_call``).

``distnn.func.functional_call`` is :func:`func_functional_call` (``torch.func``'s, which takes a sequence of
dicts too); ``stateless.functional_call`` is PyTorch's deprecated one (a FutureWarning). The given tensors stand in the module's registries during the call and the module's own come back
afterwards, also when the call raises: gradients flow to the given tensors, not to the module's.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence

__all__ = ["func_functional_call", "functional_call"]


def _tied_names(module) -> dict:
    """name -> every name (itself included) of the same tensor, for the tensors registered under several."""
    by_id = {}
    for mname, m in module.named_modules(remove_duplicate=False):
        for registry in (m._parameters, m._buffers):
            for name, t in registry.items():
                if t is not None:
                    by_id.setdefault(id(t), []).append(f"{mname}.{name}" if mname else name)
    return {n: names for names in by_id.values() if len(names) > 1 for n in names}


def _untie(module, mapping: dict) -> dict:
    """``mapping`` with each given tensor also under the other names of the tensor it replaces."""
    tied = _tied_names(module)
    out = dict(mapping)
    for name, value in mapping.items():
        for other in tied.get(name, ()):
            if other in mapping and mapping[other] is not value:
                raise ValueError(f"functional_call got multiple values for keys {sorted([name, other])}, which are "
                                 "tied. Consider using tie_weights=False")
            out[other] = value
    return out


@contextlib.contextmanager
def _reparametrized(module, mapping: dict, strict: bool):
    own = set()
    for mname, m in module.named_modules(remove_duplicate=False):
        for registry in (m._parameters, m._buffers):
            own.update(f"{mname}.{n}" if mname else n for n, t in registry.items() if t is not None)
    if strict:
        missing = sorted(own - set(mapping))
        unexpected = sorted(set(mapping) - own)
        if missing or unexpected:
            lines = []
            if unexpected:
                lines.append("\tUnexpected key(s): " + ", ".join(repr(k) for k in unexpected) + ".")
            if missing:
                lines.append("\tMissing key(s): " + ", ".join(repr(k) for k in missing) + ".")
            raise RuntimeError(f"Error(s) in reparametrizing for {type(module).__name__}:\n" + "\n".join(lines))
    restore = []  # (registry or None, owner, name, old value)
    try:
        for key, value in mapping.items():
            path, _, name = key.rpartition(".")
            owner = module.get_submodule(path)
            for registry in (owner._parameters, owner._buffers):
                if registry.get(name) is not None:
                    restore.append((registry, owner, name, registry[name]))
                    registry[name] = value  # (any Tensor: no Parameter check, as PyTorch's swap)
                    break
            else:  # not one of its tensors: a plain attribute for the call, as PyTorch's
                restore.append((None, owner, name, owner.__dict__.get(name, _MISSING)))
                object.__setattr__(owner, name, value)
        yield
    finally:
        for registry, owner, name, old in reversed(restore):
            if registry is not None:
                registry[name] = old
            elif old is _MISSING:
                owner.__dict__.pop(name, None)
            else:
                object.__setattr__(owner, name, old)


_MISSING = object()


def _functional_call(module, mapping, args, kwargs, tie_weights, strict):
    if tie_weights:
        mapping = _untie(module, mapping)
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    with _reparametrized(module, mapping, strict):
        return module(*args, **(kwargs or {}))


def func_functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights: bool = True,
                    strict: bool = False):
    """``module(*args, **kwargs)`` with the parameters and buffers named in ``parameter_and_buffer_dicts`` (a
    dict name -> tensor, or a sequence of them, which may not share keys) in place of the module's own, as
    ``torch.func.functional_call``.

    ``tie_weights``: a tensor registered under several names (a shared layer) is replaced under all of them
    (two different values for one tied tensor: ValueError). ``strict``: every parameter and buffer must be
    given, and nothing else (RuntimeError listing the keys). A non-tuple ``args`` is the one argument.
    """
    if isinstance(parameter_and_buffer_dicts, Mapping):
        mapping = dict(parameter_and_buffer_dicts)
    elif isinstance(parameter_and_buffer_dicts, Sequence):
        if not all(isinstance(d, Mapping) for d in parameter_and_buffer_dicts):
            raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
        keys = [k for d in parameter_and_buffer_dicts for k in d]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional call is "
                             "ambiguous")
        mapping = {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    else:
        raise ValueError(f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
                         f"{type(parameter_and_buffer_dicts)}")
    return _functional_call(module, mapping, args, kwargs, tie_weights, strict)


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights: bool = True,
                               strict: bool = False):
    """``torch.nn.utils.stateless.functional_call``, deprecated there for ``torch.func.functional_call``
    (``distnn.func.functional_call``, :func:`func_functional_call`), with PyTorch's FutureWarning."""
    warnings.warn("`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 and will be removed "
                  "in a future version of PyTorch. Please use `torch.func.functional_call` instead which is a "
                  "drop-in replacement.", FutureWarning, stacklevel=2)
    return _functional_call(module, dict(parameters_and_buffers), args, kwargs, tie_weights, strict)
