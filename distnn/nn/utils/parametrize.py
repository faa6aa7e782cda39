"""``distnn.nn.utils.parametrize``: a tensor of a module computed from others at each access, as
``torch.nn.utils.parametrize``.

``register_parametrization(m, "weight", P)`` moves ``m.weight`` to ``m.parametrizations.weight.original``
(``original0``, ``original1``... when ``P.right_inverse`` returns several tensors) and makes ``m.weight``
read ``P(original)`` (several parametrizations registered on one name are chained, the first applied first).
The optimizer trains ``original``: gradients flow to it through the parametrization. Assigning
``m.weight = X`` stores ``right_inverse(X)`` into the originals. The state dict keys are PyTorch's
(``parametrizations.weight.original``, and each parametrization's own buffers under
``parametrizations.weight.0.``).

distnn modules are plain Python objects whose registered tensors are found by ``__getattr__``; as PyTorch,
the module's class is swapped for a one-off subclass (``ParametrizedLinear``) holding a property per
parametrized name: a class property is found before ``__getattr__`` and its setter runs on assignment, so
nothing in :class:`~distnn.nn.Module` needs to know about parametrizations.
"""
from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Sequence

from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor

from ..containers import ModuleDict, ModuleList
from ..module import Module, Parameter

__all__ = ["ParametrizationList", "cached", "is_parametrized", "register_parametrization",
           "remove_parametrizations", "type_before_parametrizations"]

# The cache of ``cached()``: per thread, since simulated data-parallel ranks are threads of one process and
# each rank's module computes its own tensor.
_state = threading.local()


def _cache():
    if not hasattr(_state, "depth"):
        _state.depth, _state.tensors = 0, {}
    return _state


@contextlib.contextmanager
def cached():
    """Within the block, each parametrized tensor is computed once, at its first access, and reused (PyTorch's
    ``parametrize.cached``): for a weight read several times per forward (an RNN's steps). Nested blocks share
    the cache, which is dropped when the outermost one ends."""
    state = _cache()
    state.depth += 1
    try:
        yield
    finally:
        state.depth -= 1
        if not state.depth:
            state.tensors = {}


def _register_parameter_or_buffer(module, name, value):
    if isinstance(value, Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value)


def _set_data(dest: Tensor, value) -> None:
    """``dest.set_(value)``: ``dest`` (the Parameter the optimizer holds) takes ``value``'s array and shape."""
    dest.data = (value.data if isinstance(value, Tensor) else value).copy()
    dest._bump_version()


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, and its original(s): ``module.parametrizations.weight``.

    Calling it computes the parametrized tensor: ``self[0](original)`` (``self[0](original0, original1...)``),
    then each later parametrization applied to the result. :meth:`right_inverse` stores a value back.
    """

    def __init__(self, modules, original, unsafe: bool = False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        shape, dtype = tuple(original.shape), original.dtype
        with no_grad():
            new = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass  # (taken as the identity, as PyTorch)
        if not isinstance(new, (Tensor, Sequence)):
            raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                             f"Got {type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if new.dtype != original.dtype:
                raise ValueError("When `right_inverse` outputs one tensor, it may not change the dtype.\n"
                                 f"original.dtype: {original.dtype}\nright_inverse(original).dtype: {new.dtype}")
            if new is not original:
                _set_data(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, originali in enumerate(new):
                if not isinstance(originali, Tensor):
                    raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                                     f"Got element {i} of the sequence with type {type(originali).__name__}.")
                if isinstance(original, Parameter):
                    originali = Parameter(originali.data.copy(), original.requires_grad)
                else:
                    originali = Tensor(originali.data.copy(), requires_grad=original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", originali)
        if not self.unsafe:
            z = self()
            if not isinstance(z, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(z).__name__}.")
            if z.dtype != dtype:
                raise ValueError("Registering a parametrization may not change the dtype of the tensor, unless "
                                 f"`unsafe` flag is enabled.\nunparametrized dtype: {dtype}\n"
                                 f"parametrized dtype: {z.dtype}")
            if tuple(z.shape) != shape:
                raise ValueError("Registering a parametrization may not change the shape of the tensor, unless "
                                 f"`unsafe` flag is enabled.\nunparametrized shape: {shape}\n"
                                 f"parametrized shape: {tuple(z.shape)}")

    def right_inverse(self, value) -> None:
        """Store ``value`` as the parametrized tensor: each parametrization's ``right_inverse``, last first,
        then the result copied into the original(s) in place (the optimizer keeps its Parameters)."""
        with no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse.")
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"`right_inverse` should return a tensor. Got {type(value).__name__}")
                if value.dtype != self.original.dtype:
                    raise ValueError(f"The tensor returned by `right_inverse` has dtype {value.dtype} while "
                                     f"`original` has dtype {self.original.dtype}")
                _set_data(self.original, value)
            else:
                if not isinstance(value, Sequence):
                    raise ValueError("'right_inverse' must return a sequence of tensors. "
                                     f"Got {type(value).__name__}.")
                if len(value) != self.ntensors:
                    raise ValueError("'right_inverse' must return a sequence of tensors of length "
                                     f"{self.ntensors}. Got a sequence of length {len(value)}.")
                for i, tensor in enumerate(value):
                    original_i = getattr(self, f"original{i}")
                    if not isinstance(tensor, Tensor):
                        raise ValueError(f"`right_inverse` must return a sequence of tensors. "
                                         f"Got element {i} of type {type(tensor).__name__}")
                    if original_i.dtype != tensor.dtype:
                        raise ValueError(f"Tensor {i} returned by `right_inverse` has dtype {tensor.dtype} "
                                         f"while `original{i}` has dtype {original_i.dtype}")
                    _set_data(original_i, tensor)

    def forward(self):
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in list(self)[1:]:
            x = module(x)
        return x


def _inject_new_class(module) -> None:
    """Swap ``module``'s class for a subclass of its own (``Parametrized<Name>``), to hold the properties."""
    cls = module.__class__

    def getstate(self):
        raise RuntimeError("Serialization of parametrized modules is only supported through state_dict().")

    def setattr_(self, name, value):
        # A Parameter assigned to a parametrized name would be registered beside the property and never
        # read: PyTorch refuses it (register_parameter: the attribute exists).
        if isinstance(value, Parameter) and name in type(self)._parametrized_names:
            raise KeyError(f"attribute '{name}' already exists")
        cls.__setattr__(self, name, value)

    def deepcopy(self, memo):  # (pickling is refused above; copy.deepcopy copies the state, as PyTorch's)
        if id(self) in memo:
            return memo[id(self)]
        replica = self.__new__(self.__class__)
        memo[id(self)] = replica
        object.__setattr__(replica, "__dict__", copy.deepcopy(self.__dict__, memo))
        return replica

    param_cls = type(f"Parametrized{cls.__name__}", (cls,),
                     {"__getstate__": getstate, "__setattr__": setattr_, "_parametrized_names": set()})
    if not hasattr(cls, "__deepcopy__"):
        param_cls.__deepcopy__ = deepcopy
    object.__setattr__(module, "__class__", param_cls)


def _inject_property(module, tensor_name: str) -> None:
    """``module.<tensor_name>``: the parametrized tensor (cached within ``cached()``); assigning stores it."""

    def get_parametrized(self):
        parametrization = self.parametrizations[tensor_name]
        state = _cache()
        if not state.depth:
            return parametrization()
        key = (id(self), tensor_name)
        tensor = state.tensors.get(key)
        if tensor is None:
            tensor = state.tensors[key] = parametrization()
        return tensor

    def set_original(self, value):
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))
    module.__class__._parametrized_names.add(tensor_name)


def is_parametrized(module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has a parametrization (on ``tensor_name``, when given)."""
    parametrizations = module._modules.get("parametrizations") if isinstance(module, Module) else None
    if parametrizations is None or not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def type_before_parametrizations(module) -> type:
    """``module``'s class as it was before any parametrization was registered."""
    return module.__class__.__bases__[0] if is_parametrized(module) else type(module)


def _check_added(module, tensor_name, parametrization):
    """PyTorch's checks when a parametrization is added to an already parametrized tensor."""
    y = getattr(module, tensor_name)
    x = parametrization(y)
    if not isinstance(x, Tensor):
        raise ValueError(f"A parametrization must return a tensor. Got {type(x).__name__}.")
    if x.dtype != y.dtype:
        raise ValueError("Registering a parametrization may not change the dtype of the tensor, unless the "
                         f"`unsafe` flag is enabled.\nmodule.{tensor_name}.dtype: {y.dtype}\n"
                         f"parametrization(module.{tensor_name}).dtype: {x.dtype}")
    if tuple(x.shape) != tuple(y.shape):
        raise ValueError("Registering a parametrization may not change the shape of the tensor, unless the "
                         f"`unsafe` flag is enabled.\nmodule.{tensor_name}.shape: {tuple(y.shape)}\n"
                         f"parametrization(module.{tensor_name}).shape: {tuple(x.shape)}")
    if hasattr(parametrization, "right_inverse"):
        try:
            z = parametrization.right_inverse(x)
        except NotImplementedError:
            return
        if not isinstance(z, Tensor):
            raise ValueError(f"parametrization.right_inverse must return a tensor. Got: {type(z).__name__}")
        if z.dtype != y.dtype:
            raise ValueError("The tensor returned by parametrization.right_inverse must have the same dtype as "
                             f"module.{tensor_name}, unless the `unsafe` flag is enabled.\n"
                             f"module.{tensor_name}.dtype: {y.dtype}\nreturned dtype: {z.dtype}")
        if tuple(z.shape) != tuple(y.shape):
            raise ValueError("The tensor returned by parametrization.right_inverse must have the same shape as "
                             f"module.{tensor_name}, unless the `unsafe` flag is enabled.\n"
                             f"module.{tensor_name}.shape: {tuple(y.shape)}\nreturned shape: {tuple(z.shape)}")


def register_parametrization(module, tensor_name: str, parametrization, *, unsafe: bool = False):
    """Parametrize ``module.<tensor_name>`` (a parameter or buffer) by the module ``parametrization``,
    as ``torch.nn.utils.parametrize.register_parametrization``.

    On the first registration the tensor moves to ``module.parametrizations.<tensor_name>.original``
    (``right_inverse(tensor)`` is stored there when ``parametrization`` has one); a later one is chained after
    the earlier ones. Unless ``unsafe``, a parametrization may change neither the shape nor the dtype.
    Returns ``module``.
    """
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            _check_added(module, tensor_name, parametrization)
        plist = module.parametrizations[tensor_name]
        plist.append(parametrization)
        plist.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = plist
    else:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a parametrized element "
                         f"with name '{tensor_name}'")
    return module


def remove_parametrizations(module, tensor_name: str, leave_parametrized: bool = True):
    """Undo :func:`register_parametrization` on ``tensor_name``: it becomes a parameter (or buffer) again,
    holding the current parametrized value (``leave_parametrized``) or the original. The Parameter object is
    the original one, so an optimizer holding it goes on training it. Returns ``module``."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                t = getattr(module, tensor_name)
            _set_data(original, t)
    else:
        if not leave_parametrized:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is "
                             "parametrized in terms of a sequence of tensors.")
        t = getattr(module, tensor_name)
        original = Parameter(t.data.copy(), t.requires_grad) if t.requires_grad else Tensor(t.data.copy())
    delattr(module.__class__, tensor_name)
    module.__class__._parametrized_names.discard(tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        object.__setattr__(module, "__class__", module.__class__.__bases__[0])
    return module
