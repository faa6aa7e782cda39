"""``Module``, ``Parameter`` and the containers, with PyTorch's names and behaviour.

Parameters and submodules are registered by assignment; iteration order is
registration order, recursing depth-first, so every rank sees the same order
(data parallelism packs gradient buckets from it). Each submodule knows its
qualified name in the model (``layer1.0.conv2``) so errors can say where.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy as np

from distnn.autograd.tensor import Tensor, reset_grad
from distnn.backend import DEFAULT_DTYPE, get_array_module, is_device_name, to_device, to_numpy

from .module_hooks import ForwardHooks, RemovableHandle  # noqa: F401  (RemovableHandle: importable from here)


@contextlib.contextmanager
def evaluating(module):
    """``module`` in eval mode within the block; afterwards each submodule has its own mode back.

    ``module.train(was_training)`` would not do: it sets every submodule, so a part the caller had put
    in eval mode (frozen batch-norm statistics) would come back in training mode.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)  # (the flag itself: a train() override already ran)


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as a trainable parameter."""

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        if dtype is None and getattr(data.data if isinstance(data, Tensor) else data, "dtype", None) is None:
            dtype = DEFAULT_DTYPE
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)  # (a Tensor's memory: its counter too)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


#: Module's own bookkeeping: a subclass assigning one of these names (DataParallel once kept a list as
#: ``_buffers``) would break named_buffers(), state_dict() and to() with an obscure error
_REGISTRIES = frozenset(("_parameters", "_buffers", "_modules", "_non_persistent"))

#: how many keys (and shape mismatches) a load_state_dict error lists: another model's state dict
#: (a ResNet's checkpoint into an MLP) has dozens, a wall of text that hides what went wrong
_SHOWN_KEYS = 5


def _some(keys: list, n: int = _SHOWN_KEYS) -> str:
    """``keys`` as a list of at most ``n``, then how many more there are."""
    return repr(keys) if len(keys) <= n else f"{keys[:n]} ... and {len(keys) - n} more"


class Module(ForwardHooks):
    """Base class of every layer and model. Subclasses define ``forward``."""

    #: state_dict keys of this module that load_state_dict does not require (the current value stays)
    _optional_state_keys = ()

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_qualname", "")

    # --------------------------------------------------------- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning attributes")
        if name in _REGISTRIES:
            raise AttributeError(f"'{name}' is Module's own registry and cannot be assigned in {type(self).__name__}; "
                                 "pick another attribute name")
        params, modules, buffers = self._parameters, self._modules, self._buffers
        # PyTorch's rules. Replacing an entry with one of the same kind keeps its position (a Sequential
        # whose layer is swapped must still run in order); a registered name never hides behind a plain
        # attribute of the same name; and a parameter or child module is only replaced by its own kind or
        # None, since anything else would silently drop it from parameters() and state_dict.
        if isinstance(value, (Parameter, Module)):
            self.__dict__.pop(name, None)
            for d in (params, modules, buffers):
                if name in d and not (d is params and isinstance(value, Parameter)) and \
                        not (d is modules and isinstance(value, Module)):
                    del d[name]
                    self._non_persistent.discard(name)
            if isinstance(value, Parameter):
                params[name] = value
            else:
                modules[name] = value
                value._set_qualnames(self._child_name(name))
        elif name in params or name in modules:
            kind = "parameter" if name in params else "child module"
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as {kind} '{name}' of {self.where()} "
                                f"({'a Parameter' if kind == 'parameter' else 'a Module'} or None expected)")
            (params if name in params else modules)[name] = None
        elif name in buffers:
            buffers[name] = value if value is None or isinstance(value, Tensor) else Tensor(value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for key in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[key]:
                del self.__dict__[key][name]
                return
        object.__delattr__(self, name)

    def _child_name(self, name):
        return f"{self._qualname}.{name}" if self._qualname else name

    def _set_qualnames(self, qualname):
        object.__setattr__(self, "_qualname", qualname)
        for name, child in self._modules.items():
            if child is not None:
                child._set_qualnames(self._child_name(name))

    def register_parameter(self, name: str, param):
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param if isinstance(param, Parameter) else Parameter(param))

    def register_buffer(self, name: str, value, persistent: bool = True):
        """A non-trainable state array (e.g. running statistics), saved in state_dict when persistent."""
        if name in self._parameters or name in self._modules or (name in self.__dict__ and name not in self._buffers):
            raise KeyError(f"{self.where()}: attribute '{name}' already exists (a buffer needs a name of its own)")
        self._buffers[name] = value if value is None or isinstance(value, Tensor) else Tensor(value)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module):
        self._modules[name] = module
        if module is not None:
            module._set_qualnames(self._child_name(name))

    def where(self) -> str:
        """``ClassName 'qualified.name'`` for error messages."""
        return f"{type(self).__name__} '{self._qualname}'" if self._qualname else type(self).__name__

    # ------------------------------------------------------------ iteration
    def named_modules(self, prefix: str = "", memo=None, remove_duplicate: bool = True):
        """(qualified name, module) for this module and every descendant, depth first.

        A module reachable under several names is given once, unless ``remove_duplicate`` is False.
        """
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if remove_duplicate:
                if id(m) in memo:
                    continue
                memo.add(id(m))
            yield name, m
            if m._modules:  # (not for a leaf: this walk runs at every checkpoint, several times)
                children = [(f"{name}.{n}" if name else n, c) for n, c in m._modules.items() if c is not None]
                stack.extend(reversed(children))

    def get_submodule(self, target: str) -> "Module":
        """The submodule at the dotted path ``target`` (``"layer1.0.conv2"``; ``""`` is this module), as PyTorch's."""
        if target == "":
            return self
        m = self
        walked = []
        for item in target.split("."):
            if not isinstance(m, Module) or item not in m._modules or m._modules[item] is None:
                where = type(m).__name__ + (f" (at '{'.'.join(walked)}')" if walked else "")
                if isinstance(m, Module) and (hasattr(m, item) and item not in m._modules):
                    raise AttributeError(f"get_submodule('{target}'): '{item}' of {where} is not an nn.Module")
                raise AttributeError(f"get_submodule('{target}'): {where} has no submodule '{item}'")
            m = m._modules[item]
            walked.append(item)
        return m

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in modules:
            for pname, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = ""):
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    def apply(self, fn):
        """Call ``fn`` on every submodule, children before their parent (PyTorch's order), then on self."""
        for child in self._modules.values():
            if child is not None:
                child.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- modes
    def train(self, mode: bool = True):
        """Set training mode here and, through each child's own ``train`` (which a subclass may
        override, e.g. to keep a frozen part in eval mode), in every submodule."""
        object.__setattr__(self, "training", bool(mode))
        for child in self._modules.values():
            if child is not None:
                child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True):
        for p in self.parameters():
            reset_grad(p, set_to_none)

    def requires_grad_(self, flag: bool = True):
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def to(self, device_or_dtype):
        """Move parameters and buffers to ``"cpu"``/``"cuda"``, or cast floating ones to a dtype (in place).

        Gradients move or are cast along with their parameters, as in PyTorch.
        A dtype may be given as a name (``"float64"``).
        """
        device = None
        if is_device_name(device_or_dtype):
            device = device_or_dtype
        else:
            dtype = np.dtype(device_or_dtype)  # (a name that is neither a device nor a dtype: TypeError here)
            if dtype.kind != "f":
                raise TypeError(f"{self.where()}.to(): parameters can only be cast to a floating dtype, got {dtype}")
        for t in list(self.parameters()) + list(self.buffers()):
            if device is not None:
                t.data = to_device(t.data, device)
                if t.grad is not None:
                    t.grad = to_device(t.grad, device)
            elif t.data.dtype.kind == "f":
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad = t.grad.astype(dtype)
        return self

    def float(self):
        """Cast floating parameters and buffers (and their gradients) to float32, in place."""
        return self.to(np.float32)

    def double(self):
        """Cast floating parameters and buffers (and their gradients) to float64, in place."""
        return self.to(np.float64)

    def cuda(self):
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    # ----------------------------------------------------------- state dict
    def state_dict(self, *, copy: bool = True, keep_vars: bool = False) -> "OrderedDict[str, np.ndarray]":
        """Parameters and persistent buffers as name -> numpy array (copies).

        ``copy=False`` gives the host arrays themselves (on a GPU: their host
        copies), valid until training changes them: for a caller that copies
        them at once, as a checkpoint's serializer does into its reused buffers.
        ``keep_vars=True`` (PyTorch's) gives the tensors themselves (the Parameters and buffers).
        """
        tensors = self._state_tensors()
        if keep_vars:
            return tensors
        from .lazy import uninitialized_names

        lazy = uninitialized_names(tensors)
        if lazy:  # (no array to give: PyTorch's state dict holds placeholders, which numpy cannot)
            raise ValueError(f"state_dict(): {type(self).__name__} has uninitialized parameters {_some(lazy)} "
                             "(a lazy module before its first forward): run a forward pass with a batch, or "
                             "load_state_dict, first; state_dict(keep_vars=True) gives the placeholders")
        if not copy:
            return OrderedDict((name, to_numpy(t.data)) for name, t in tensors.items())
        return OrderedDict((name, to_numpy(t.data).copy()) for name, t in tensors.items())

    def _state_tensors(self):
        """The tensors of :meth:`state_dict` by name: every name a shared (tied) submodule has, as in PyTorch."""
        out = OrderedDict()
        for mname, m in self.named_modules(remove_duplicate=False):
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
        Returns ``(missing_keys, unexpected_keys)``.
        """
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
        from .lazy import UninitializedParameter, materialize_loaded

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
            if isinstance(t, UninitializedParameter):  # its shape comes from the checkpoint (lazy.py checks it)
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
            t.data[...] = v.astype(t.data.dtype, copy=False)
            t._bump_version()  # a graph built with the old values must not backward (PyTorch's check)
        return missing, unexpected

    # ------------------------------------------------------------- calling
    def forward(self, *args, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        if not self._forward_hooked:  # (one lookup for a module without hooks: module_hooks)
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        extra = self.extra_repr()
        if "\n" in extra:  # one line per entry (ParameterList's): each indented, as PyTorch's
            lines = ["  " + line for line in extra.split("\n")] + lines
            extra = ""
        head = f"{type(self).__name__}({extra}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied one after another; children are named "0", "1", ..."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        if isinstance(i, slice):
            # the same layers under their own names, as PyTorch does; their qualified names (used in error
            # messages) stay those of this model
            part = Sequential()
            part._modules.update(list(self._modules.items())[i])
            return part
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return ModuleList(mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    def __init__(self, modules=None):
        super().__init__()
        for k, m in (modules or {}).items():
            self.add_module(k, m)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
