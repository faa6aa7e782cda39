"""Lazy layers (PyTorch's ``LazyLinear``, ``LazyConv1d/2d/3d``, ``LazyConvTranspose1d/2d/3d``; the lazy norm layers
are lazy_norm.py's): ``in_features``/``in_channels`` from the first input.

A lazy layer is built with :class:`UninitializedParameter` s, whose shape is not known yet. Its first call
infers the input size, materializes the parameters in place (the same Parameter objects, so an optimizer
created over them beforehand updates them), initializes them exactly as the non-lazy layer of that shape
would (the same draws, in the same order, from the generator given at construction or distnn's), and turns
the module into that layer (``type(m) is Linear`` afterwards: PyTorch's ``cls_to_become``).

Before the first call: ``to(dtype)``/``to(device)`` work (the parameters take that dtype and device when
they materialize); ``load_state_dict`` materializes the parameters from the checkpoint's shapes and turns
the module into its non-lazy layer at once (PyTorch keeps the lazy class, with ``in_features=0``, until the
next forward); ``state_dict()`` refuses, since there is no array to give (PyTorch stores its
UninitializedParameter placeholders), except ``state_dict(keep_vars=True)``, which gives the placeholders;
DataParallel refuses, as PyTorch's DistributedDataParallel does. A lazy norm layer's running statistics are
:class:`UninitializedBuffer` s, counted as uninitialized by all of the above.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd import Tensor, no_grad
from distnn.backend import default_dtype, get_array_module

from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Linear, _finish
from .module import Module, Parameter

__all__ = ["LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
           "LazyConvTranspose3d", "LazyLinear", "LazyModuleMixin", "UninitializedBuffer", "UninitializedParameter",
           "has_uninitialized_params"]


class _UninitializedTensor:
    """What UninitializedParameter and UninitializedBuffer share (PyTorch's ``UninitializedTensorMixin``).

    It holds an empty array only for its dtype and device (``Module.to`` casts or moves it). Asking for its
    shape raises ValueError, so an op that receives it fails saying why. ``materialize(shape)`` gives it an
    (uninitialized) array of that shape and makes it a plain ``_becomes`` (Parameter or Tensor), the same object.
    """

    __slots__ = ()
    _becomes = None
    _what = "tensor"

    def _placeholder(self, device):
        if device is not None and str(device) != "cpu":
            from distnn.backend import to_device

            self.data = to_device(self.data, str(device))

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give the tensor an array of ``shape`` (its values are uninitialized) and make it a plain one."""
        xp = get_array_module(self.data)
        self.data = xp.empty(tuple(int(s) for s in shape), dtype=np.dtype(dtype or self.data.dtype))
        self._placeholder(device)
        self.__class__ = self._becomes

    def _uninitialized(self, what):
        raise ValueError(f"Attempted to use an uninitialized {self._what} ({what}). This happens with a lazy module "
                         "(LazyLinear, LazyConv*d, LazyConvTranspose*d, LazyBatchNorm*d, LazyInstanceNorm*d) before "
                         "its first forward: call it once with a batch to initialize its parameters and buffers")

    @property
    def shape(self):
        self._uninitialized("shape")

    @property
    def ndim(self):
        self._uninitialized("ndim")

    def size(self, dim=None):
        self._uninitialized("size()")

    def dim(self):
        self._uninitialized("dim()")

    def __repr__(self):
        return f"<{type(self).__name__}>"


class UninitializedParameter(_UninitializedTensor, Parameter):
    """A Parameter whose shape is not known yet (PyTorch's ``nn.UninitializedParameter``): see
    :class:`_UninitializedTensor`; ``materialize(shape)`` makes it a plain :class:`Parameter`."""

    _becomes = Parameter
    _what = "parameter"

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        super().__init__(np.empty((0,), dtype=np.dtype(dtype or default_dtype())), requires_grad=requires_grad)
        self._placeholder(device)


class UninitializedBuffer(_UninitializedTensor, Tensor):
    """A buffer whose shape is not known yet (PyTorch's ``nn.UninitializedBuffer``: a lazy norm layer's
    running statistics); ``materialize(shape)`` makes it a plain Tensor."""

    _becomes = Tensor
    _what = "buffer"

    def __init__(self, requires_grad: bool = False, device=None, dtype=None):
        super().__init__(np.empty((0,), dtype=np.dtype(dtype or default_dtype())), requires_grad=requires_grad)
        self._placeholder(device)


def _uninitialized_tensors(module: Module):
    return [t for t in list(module.parameters()) + list(module.buffers()) if isinstance(t, _UninitializedTensor)]


def has_uninitialized_params(module: Module) -> bool:
    """Whether ``module`` or any submodule still has an uninitialized parameter or buffer (as PyTorch's)."""
    return bool(_uninitialized_tensors(module))


def uninitialized_names(tensors: dict) -> list:
    """The names in ``tensors`` (name -> tensor) whose tensor is uninitialized (a parameter or a buffer)."""
    return [name for name, t in tensors.items() if isinstance(t, _UninitializedTensor)]


class LazyModuleMixin(Module):
    """What a lazy layer adds to its non-lazy class (``cls_to_become``), which comes after it in the bases.

    A Module itself (with nothing of its own in its layout): ``__class__`` assignment needs the lazy and the
    non-lazy class to have the same layout, which a plain mixin base would change.

    Subclasses define ``_infer(input)``: the parameter shapes by name for that input (raising ValueError
    for an input it cannot take), having set the size attributes (``in_features``).
    """

    cls_to_become = None

    def _build(self, weight_shape, bias: bool, dtype, device, generator) -> None:
        # _WeightAndBias._build's place: placeholders instead of arrays; the draws wait for the first input
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)
        else:
            self.register_parameter("bias", None)
        object.__setattr__(self, "_lazy_generator", generator)
        _finish(self, device)

    def has_uninitialized_params(self) -> bool:
        return has_uninitialized_params(self)

    def initialize_parameters(self, input) -> None:
        """Infer the sizes from ``input``, materialize the parameters and draw them as the non-lazy layer would."""
        shapes = self._infer(input)
        with no_grad():
            self._materialize(shapes)
            self.reset_parameters(self.__dict__.get("_lazy_generator"))

    def _materialize(self, shapes: dict) -> None:
        """Materialize the uninitialized parameters and buffers named in ``shapes`` (name -> shape)."""
        for name, shape in shapes.items():
            t = self._parameters.get(name, self._buffers.get(name))
            if isinstance(t, _UninitializedTensor):
                t.materialize(shape)

    def _first_call_pending(self) -> bool:
        """Whether a call must infer the sizes first (PyTorch's: while the module has uninitialized tensors)."""
        return self.has_uninitialized_params()

    def _become(self) -> None:
        self.__dict__.pop("_lazy_generator", None)
        self.__class__ = self.cls_to_become

    def __call__(self, *args, **kwargs):
        if self._first_call_pending():
            if not args:
                raise TypeError(f"{self.where()}: a lazy module's first call needs its input as a positional "
                                "argument (its size gives the parameters' shapes)")
            self.initialize_parameters(args[0])
            self._become()
        return Module.__call__(self, *args, **kwargs)  # (not super(): the module is not lazy any more)

    def _sizes_from(self, shapes: dict) -> None:
        """Set the size attributes from the checkpoint's shapes (ValueError for ones this layer cannot take)."""
        if "weight" not in shapes:
            raise ValueError(f"{self.where()}: the checkpoint lacks 'weight'")
        self._sizes_from_weight(shapes["weight"])

    def _load_shapes(self, shapes: dict) -> None:
        """``load_state_dict``'s step: the parameters' shapes from the checkpoint (name -> shape, every
        uninitialized parameter); check they fit this layer, set the sizes, materialize, become non-lazy."""
        sizes = {k: self.__dict__[k] for k in ("in_features", "in_channels", "num_features") if k in self.__dict__}
        try:
            self._sizes_from(shapes)
            expected = self._shapes()
            wrong = [f"'{n}' {tuple(s)} (this layer needs {expected[n]})" for n, s in shapes.items()
                     if tuple(s) != expected[n]]
            if wrong:
                raise ValueError(f"{self.where()}: checkpoint shapes do not fit the layer: {', '.join(wrong)}")
        except ValueError:
            self.__dict__.update(sizes)  # (a refused checkpoint leaves the layer lazy, as it was)
            raise
        self._materialize(shapes)
        self._become()


def _input_shape(input) -> tuple:
    shape = getattr(input, "shape", None)
    if shape is None:
        raise TypeError(f"a lazy module's first input must be an array or Tensor, got {type(input).__name__}")
    return tuple(shape)


class LazyLinear(LazyModuleMixin, Linear):
    """``Linear`` whose ``in_features`` is the last dimension of the first input (PyTorch's ``nn.LazyLinear``).

    ``LazyLinear(out_features, bias=True, device=None, dtype=None, generator=None)``; ``in_features`` is 0
    until then (so its repr reads ``LazyLinear(in_features=0, out_features=..., bias=...)``, as PyTorch's).
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None, generator=None):
        super().__init__(0, out_features, bias, device=device, dtype=dtype, generator=generator)

    def _shapes(self) -> dict:
        return {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}

    def _sizes_from_weight(self, shape) -> None:
        if len(shape) != 2:
            raise ValueError(f"{self.where()}: checkpoint weight must be 2-D (out_features, in_features), "
                             f"got shape {tuple(shape)}")
        self.in_features = int(shape[1])

    def _infer(self, input) -> dict:
        shape = _input_shape(input)
        if len(shape) < 1:
            raise ValueError(f"{self.where()}: expected an input with at least one dimension (its last one is "
                             f"in_features), got shape {shape}")
        self.in_features = int(shape[-1])
        return self._shapes()


class _LazyConvNd(LazyModuleMixin):
    """``in_channels`` from dimension 1 of a batched first input, dimension 0 of an unbatched one."""

    def _shapes(self) -> dict:
        return {"weight": (self.out_channels, self.in_channels // self.groups) + tuple(self.kernel_size),
                "bias": (self.out_channels,)}

    def _set_in_channels(self, in_channels: int) -> None:
        if in_channels % self.groups:  # checked before setting it: a refused input leaves the layer as it was
            raise ValueError(f"{self.where()}: in_channels={in_channels} must be divisible by "
                             f"groups={self.groups}")
        self.in_channels = in_channels

    def _sizes_from_weight(self, shape) -> None:
        if len(shape) != 2 + len(self.kernel_size):
            raise ValueError(f"{self.where()}: checkpoint weight must be {2 + len(self.kernel_size)}-D, "
                             f"got shape {tuple(shape)}")
        self._set_in_channels(int(shape[1]) * self.groups)

    def _infer(self, input) -> dict:
        shape = _input_shape(input)
        nd = len(self.kernel_size)
        if len(shape) not in (nd + 1, nd + 2):
            raise ValueError(f"{self.where()}: expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input, "
                             f"but got input of size: {shape}")
        self._set_in_channels(int(shape[1] if len(shape) == nd + 2 else shape[0]))
        return self._shapes()


def _conv_doc(n):
    return (f"``Conv{n}d`` whose ``in_channels`` comes from the first input (PyTorch's ``nn.LazyConv{n}d``).\n\n"
            f"    ``LazyConv{n}d(out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,\n"
            f"    padding_mode='zeros', device=None, dtype=None, generator=None)``; ``in_channels`` is 0 until then.")


class LazyConv1d(_LazyConvNd, Conv1d):
    __doc__ = _conv_doc(1)
    cls_to_become = Conv1d

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None, generator=None):
        super().__init__(0, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype, generator)


class LazyConv2d(_LazyConvNd, Conv2d):
    __doc__ = _conv_doc(2)
    cls_to_become = Conv2d

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None, generator=None):
        super().__init__(0, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype, generator)


class LazyConv3d(_LazyConvNd, Conv3d):
    __doc__ = _conv_doc(3)
    cls_to_become = Conv3d

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None, generator=None):
        super().__init__(0, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype, generator)


class _LazyConvTransposeNd(_LazyConvNd):
    """A transposed convolution's weight is (in_channels, out_channels/groups, *kernel_size)."""

    def _shapes(self) -> dict:
        return {"weight": (self.in_channels, self.out_channels // self.groups) + tuple(self.kernel_size),
                "bias": (self.out_channels,)}

    def _sizes_from_weight(self, shape) -> None:
        if len(shape) != 2 + len(self.kernel_size):
            raise ValueError(f"{self.where()}: checkpoint weight must be {2 + len(self.kernel_size)}-D, "
                             f"got shape {tuple(shape)}")
        self._set_in_channels(int(shape[0]))


def _conv_transpose_doc(n):
    return (f"``ConvTranspose{n}d`` whose ``in_channels`` comes from the first input (PyTorch's\n"
            f"    ``nn.LazyConvTranspose{n}d``). ``LazyConvTranspose{n}d(out_channels, kernel_size, stride=1,\n"
            f"    padding=0, output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros', device=None,\n"
            f"    dtype=None, generator=None)``; ``in_channels`` is 0 until then.")


class LazyConvTranspose1d(_LazyConvTransposeNd, ConvTranspose1d):
    __doc__ = _conv_transpose_doc(1)
    cls_to_become = ConvTranspose1d

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0, groups: int = 1,
                 bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None, generator=None):
        super().__init__(0, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
                         padding_mode, device, dtype, generator)


class LazyConvTranspose2d(_LazyConvTransposeNd, ConvTranspose2d):
    __doc__ = _conv_transpose_doc(2)
    cls_to_become = ConvTranspose2d

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0, groups: int = 1,
                 bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None, generator=None):
        super().__init__(0, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
                         padding_mode, device, dtype, generator)


class LazyConvTranspose3d(_LazyConvTransposeNd, ConvTranspose3d):
    __doc__ = _conv_transpose_doc(3)
    cls_to_become = ConvTranspose3d

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0, groups: int = 1,
                 bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None, generator=None):
        super().__init__(0, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
                         padding_mode, device, dtype, generator)


def materialize_loaded(model: Module, shapes: dict) -> None:
    """``load_state_dict``'s step for lazy submodules of ``model``: ``shapes`` (state key -> shape) holds the
    checkpoint's shapes of the uninitialized parameters being loaded. A lazy layer gets all its parameters
    from the checkpoint or none (its sizes come from them together)."""
    for mname, m in model.named_modules():
        if not isinstance(m, LazyModuleMixin):
            continue
        names = [n for n, t in list(m._parameters.items()) + list(m._buffers.items())
                 if isinstance(t, _UninitializedTensor)]
        keys = {n: f"{mname}.{n}" if mname else n for n in names}
        given = {n: shapes[k] for n, k in keys.items() if k in shapes}
        if given and len(given) != len(names):
            lacking = [keys[n] for n in names if n not in given]
            raise ValueError(f"{m.where()}: a lazy layer's parameters are loaded together, but the checkpoint "
                             f"lacks {lacking}")
        if given:
            m._load_shapes(given)
