"""``ParameterList`` and ``ParameterDict``: parameters held in a list or a dict, registered as PyTorch's are.

Each entry is a parameter of the container itself under its index (``"0"``,
``"1"``, ...) or its key, so a model holding one as ``plist`` has parameters
``plist.0``, ``plist.1`` in ``named_parameters()``, ``state_dict()``, the
optimizers' and DataParallel's view, and ``to()`` moves them. As in PyTorch,
a plain Tensor put in is wrapped into a :class:`Parameter` (sharing its
memory), and the containers cannot be called.

Simplification: PyTorch lets these containers hold any object (a non-tensor
is kept as a plain attribute, in no state dict); here an entry is a Parameter,
a Tensor, or None (a slot without a parameter), and anything else is a
TypeError, so an entry is never silently left out of training.
"""
from __future__ import annotations

import operator
from collections import OrderedDict
from collections import abc

from distnn.autograd.tensor import Tensor

from .module import Module, Parameter


def _as_parameter(value, container: str):
    """``value`` as the entry to register: a Parameter as it is, a Tensor wrapped (PyTorch's rule), or None."""
    if value is None or isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value)  # (shares the tensor's memory; requires_grad=True, as torch's Parameter(t))
    raise TypeError(f"{container} holds Parameters or Tensors (Tensors are wrapped into Parameters), got "
                    f"{type(value).__name__}; wrap an array as distnn.nn.Parameter(array)")


def _put(module: Module, name: str, value) -> None:
    """Register ``value`` (a Parameter or None) as ``module``'s parameter ``name``, keeping its position when
    ``name`` is already there."""
    if value is None:
        module._parameters[name] = None
    else:
        setattr(module, name, value)


def _entry_repr(key, p) -> str:
    """One line of PyTorch's container repr: ``(key): Parameter containing: [float32 of size 3x4]``."""
    if p is None:
        return f"  ({key}): Object of type: NoneType"
    device = "" if p.device == "cpu" else f" ({p.device})"
    size = "x".join(str(s) for s in p.shape)
    return f"  ({key}): Parameter containing: [{p.dtype} of size {size}{device}]"


class ParameterList(Module):
    """Parameters in a list: ``ParameterList([p0, p1])``; ``append``, ``extend``, ``+=``, ``len``, iteration,
    indexing (negative too), slicing (a new ParameterList of the same parameters) and item assignment.

    The parameters are registered under their indices ("0", "1", ...), PyTorch's names.
    """

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def _abs_index(self, idx) -> int:
        idx = operator.index(idx)  # (a str or float index: TypeError, as a list's)
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} is out of range")
        return idx % len(self)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            out = self.__class__()
            for i in range(*idx.indices(len(self))):
                out.append(self[i])
            return out
        return self._parameters[str(self._abs_index(idx))]

    def __setitem__(self, idx, param):
        _put(self, str(self._abs_index(idx)), _as_parameter(param, "ParameterList"))

    def __len__(self):
        return self._size

    def __iter__(self):
        return (self._parameters[str(i)] for i in range(self._size))

    def __iadd__(self, parameters):
        return self.extend(parameters)

    def append(self, value) -> "ParameterList":
        """Add ``value`` (a Parameter, or a Tensor made one) at the end."""
        param = _as_parameter(value, "ParameterList")
        self._size += 1
        _put(self, str(self._size - 1), param)
        return self

    def extend(self, values) -> "ParameterList":
        """Append each of ``values`` (an iterable, not a single Tensor)."""
        if not isinstance(values, abc.Iterable) or isinstance(values, Tensor):
            raise TypeError("ParameterList.extend should be called with an iterable, but got " + type(values).__name__)
        for value in values:
            self.append(value)
        return self

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterList should not be called.")

    def extra_repr(self) -> str:
        return "\n".join(_entry_repr(i, p) for i, p in enumerate(self))


class ParameterDict(Module):
    """Parameters in an ordered dict keyed by strings, registered under their keys (PyTorch's names).

    ``update`` (and the constructor) keeps the order of an OrderedDict, a ParameterDict or a sequence of
    (key, value) pairs, and sorts the keys of any other mapping (a plain dict), as PyTorch does.
    """

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def _check_key(self, key) -> str:
        if not isinstance(key, str):
            raise TypeError("Index given to ParameterDict cannot be used as a key as it is not a string "
                            f"(type is '{type(key).__name__}')")
        if key == "":
            raise KeyError('parameter name can\'t be empty string ""')
        if "." in key:  # (a dot would split the state_dict name into module path and parameter)
            raise KeyError(f'parameter name can\'t contain "." (key {key!r})')
        if key not in self._parameters and (hasattr(type(self), key) or key in self.__dict__):
            raise KeyError(f"attribute '{key}' already exists (ParameterDict's own; pick another key)")
        return key

    def __getitem__(self, key):
        if not isinstance(key, str):
            self._check_key(key)  # (its TypeError)
        if key not in self._parameters:
            # (AttributeError, as PyTorch's, whose entries are attributes)
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{key}' "
                                 f"(no such key; keys: {list(self._parameters)})")
        return self._parameters[key]

    def __setitem__(self, key, value):
        _put(self, self._check_key(key), _as_parameter(value, "ParameterDict"))

    def __delitem__(self, key):
        self[key]  # (the missing-key error)
        del self._parameters[key]

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __reversed__(self):
        return reversed(self._parameters)

    def __contains__(self, key):
        return key in self._parameters

    def keys(self):
        return self._parameters.keys()

    def items(self):
        return ((k, self[k]) for k in list(self._parameters))

    def values(self):
        return (self[k] for k in list(self._parameters))

    def get(self, key, default=None):
        """The parameter at ``key``, or ``default`` when there is none."""
        return self[key] if key in self else default

    def setdefault(self, key, default=None):
        """The parameter at ``key``; when there is none, ``default`` is put there first."""
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key):
        """Remove ``key`` and return its parameter."""
        value = self[key]
        del self[key]
        return value

    def popitem(self):
        """Remove and return the last inserted ``(key, parameter)``."""
        if not self._parameters:
            raise KeyError("popitem(): ParameterDict is empty")
        key = next(reversed(self._parameters))
        return key, self.pop(key)

    def clear(self):
        for key in list(self._parameters):
            del self[key]

    def copy(self) -> "ParameterDict":
        """A new ParameterDict holding the same parameters in the same order."""
        return ParameterDict(OrderedDict(self.items()))

    def fromkeys(self, keys, default=None) -> "ParameterDict":
        """A new ParameterDict with ``keys``, each holding ``default``."""
        return ParameterDict((k, default) for k in keys)

    def update(self, parameters) -> None:
        """Put every (key, value) of ``parameters`` (a mapping or an iterable of pairs), replacing existing keys."""
        if not isinstance(parameters, abc.Iterable):
            raise TypeError("ParametersDict.update should be called with an iterable of key/value pairs, but got "
                            + type(parameters).__name__)
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            pairs = list(parameters.items())
        elif isinstance(parameters, abc.Mapping):
            pairs = sorted(parameters.items(), key=lambda kv: kv[0])  # (PyTorch's order for an unordered mapping)
        else:
            pairs = []
            for j, p in enumerate(parameters):
                if not isinstance(p, abc.Iterable):
                    raise TypeError(f"ParameterDict update sequence element #{j} should be Iterable; is "
                                    + type(p).__name__)
                p = list(p) if not isinstance(p, abc.Sized) else p
                if len(p) != 2:
                    raise ValueError(f"ParameterDict update sequence element #{j} has length {len(p)}; 2 is required")
                pairs.append((p[0], p[1]))
        for key, value in pairs:
            self[key] = value

    def __or__(self, other) -> "ParameterDict":
        out = self.copy()
        out.update(other)
        return out

    def __ror__(self, other) -> "ParameterDict":
        out = other.copy()
        out.update(self)
        return out

    def __ior__(self, other) -> "ParameterDict":
        self.update(other)
        return self

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterDict should not be called.")

    def extra_repr(self) -> str:
        return "\n".join(_entry_repr(k, p) for k, p in self.items())
