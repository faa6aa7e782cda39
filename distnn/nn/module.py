"""``Module`` and ``Parameter``, with PyTorch's names and behaviour (the containers: containers.py).

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
from distnn.backend import default_dtype, is_device_name, to_device

from .module_backward_hooks import BackwardHooks
from .module_hooks import ForwardHooks, RemovableHandle  # noqa: F401  (RemovableHandle: importable from here)
from .module_state import StateDict
from .module_state_hooks import StateDictHooks


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
            dtype = default_dtype()
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)  # (a Tensor's memory: its counter too)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Buffer(Tensor):
    """A tensor that registers itself as a buffer when assigned to a Module attribute (PyTorch's ``nn.Buffer``).

    ``self.running = nn.Buffer(x)`` is ``self.register_buffer("running", x)``; ``persistent=False`` keeps
    it out of ``state_dict``. The module holds a plain Tensor sharing ``data``'s memory, as PyTorch holds
    the detached tensor.
    """

    def __init__(self, data=None, *, persistent: bool = True):
        if data is None:
            data = np.empty(0, default_dtype())
        super().__init__(data.data if isinstance(data, Tensor) else data)
        self.requires_grad = bool(getattr(data, "requires_grad", False))
        self.persistent = persistent


#: Module's own bookkeeping: a subclass assigning one of these names (DataParallel once kept a list as
#: ``_buffers``) would break named_buffers(), state_dict() and to() with an obscure error
_REGISTRIES = frozenset(("_parameters", "_buffers", "_modules", "_non_persistent"))

class Module(ForwardHooks, BackwardHooks, StateDict, StateDictHooks):
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
                value._set_qualnames(self._child_name(name), {id(self)})
        elif name in params or name in modules:
            kind = "parameter" if name in params else "child module"
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as {kind} '{name}' of {self.where()} "
                                f"({'a Parameter' if kind == 'parameter' else 'a Module'} or None expected)")
            (params if name in params else modules)[name] = None
        elif isinstance(value, Buffer):
            self.register_buffer(name, value, value.persistent)  # (a plain attribute of that name: KeyError)
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

    def _set_qualnames(self, qualname, _seen=None):
        # (a module met again on this walk, or the parent being assigned to (`m.cycle = m`, which torch
        # allows), keeps the name it has)
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        object.__setattr__(self, "_qualname", qualname)
        for name, child in self._modules.items():
            if child is not None:
                child._set_qualnames(self._child_name(name), seen)

    def register_parameter(self, name: str, param):
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param if isinstance(param, Parameter) else Parameter(param))

    def register_buffer(self, name: str, value, persistent: bool = True):
        """A non-trainable state array (e.g. running statistics), saved in state_dict when persistent."""
        if name in self._parameters or name in self._modules or (name in self.__dict__ and name not in self._buffers):
            raise KeyError(f"{self.where()}: attribute '{name}' already exists (a buffer needs a name of its own)")
        if isinstance(value, Buffer):  # the module holds a plain Tensor on the same memory
            value = Tensor(value.data, requires_grad=value.requires_grad)
        self._buffers[name] = value if value is None or isinstance(value, Tensor) else Tensor(value)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module):
        self._modules[name] = module
        if module is not None:
            module._set_qualnames(self._child_name(name), {id(self)})

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

    def get_parameter(self, target: str):
        """The parameter at the dotted path ``target`` (``"layer1.0.conv2.weight"``), as PyTorch's."""
        mod, name = self._owner_of(target)
        if not isinstance(getattr(mod, name), Parameter):
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return getattr(mod, name)

    def get_buffer(self, target: str):
        """The buffer at the dotted path ``target`` (``"bn1.running_mean"``), as PyTorch's."""
        mod, name = self._owner_of(target)
        if name not in mod._buffers:
            raise AttributeError(f"`{name}` is not a buffer")
        return getattr(mod, name)

    def _owner_of(self, target):
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if not hasattr(mod, name):
            raise AttributeError(f"{type(mod).__name__} has no attribute `{name}`")
        return mod, name

    def set_submodule(self, target: str, module: "Module", strict: bool = False) -> None:
        """Put ``module`` at the dotted path ``target``, replacing a submodule there, as PyTorch's.

        With ``strict``, the last name must exist already; a name that holds something other than a
        module is never replaced.
        """
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        path, _, name = target.rpartition(".")
        parent = self.get_submodule(path)
        if strict and not hasattr(parent, name):
            raise AttributeError(f"{type(parent).__name__} has no attribute `{name}`")
        if hasattr(parent, name) and not isinstance(getattr(parent, name), Module):
            raise AttributeError(f"`{name}` is not an nn.Module")
        setattr(parent, name, module)

    def register_module(self, name: str, module) -> None:
        """``add_module`` under PyTorch's other name."""
        self.add_module(name, module)

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
                if t.grad is not None:  # (a sparse gradient moves its indices and values)
                    t.grad = t.grad.to(device) if getattr(t.grad, "is_sparse", False) else to_device(t.grad, device)
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
        if extra and ("\n" in extra or lines):  # (with children, or several lines: each its own line, as PyTorch's)
            lines = ["  " + line for line in extra.split("\n")] + lines
            extra = ""
        head = f"{type(self).__name__}({extra}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"
