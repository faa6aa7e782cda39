"""``Tensor``: an xp array with an optional gradient and a link to the op that made it.

This file is the core (data, gradients, versions, conversion, metadata); the gradient hooks are in
:mod:`.tensor_hooks`, the operators and the methods that are one op each in :mod:`.tensor_operators` (``//``,
``%``, the bitwise and shift operators in :mod:`.tensor_operators_more`, the shape methods in
:mod:`.tensor_shape_methods`), PyTorch's composite methods in :mod:`.tensor_methods`, all mixins of :class:`Tensor`.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import default_complex_dtype, default_dtype, get_array_module, is_device_name, to_numpy

from .grad_mode import _inference as _inference_state, _state as _grad_state, is_grad_enabled
from .half_rounding import cast
from .data_refusals import numpy_scalars_dtype, refuse_data
from .long_int_lists import long_int_array, may_hold_long_int, torch_array
from .inplace_gate import _before_inplace_write, _refuse_recorded_leaf  # noqa: F401 - (their home was here)
from .tensor_methods import TensorMethods
from .tensor_methods_ops import TensorOpMethods
from .tensor_inplace_methods import TensorInplaceMethods
from .tensor_inplace_more import TensorInplaceMore
from .tensor_methods_more import TensorMethodsMore
from .tensor_linalg_methods import TensorLinalgMethods
from .tensor_methods_meta import TensorMethodsMeta
from .tensor_dlpack import TensorDLPack
from .tensor_hooks import TensorHooks
from .tensor_storage import TensorStorage
from .tensor_pointwise import TensorPointwise
from .tensor_operators import TensorComparisons, TensorOperators, _bind_late
from .tensor_operators_more import TensorOperatorsMore
from .tensor_shape_methods import TensorShapeMethods
from . import view_staleness as _staleness
from .torch_method_names import name_methods_as_torch


_object_new = object.__new__


_MAY_HOLD_LONG_INT = (list, tuple, int)  # Python data that numpy may type otherwise than PyTorch (long_int_lists)
# numpy's kinds of a list that may hold numpy's uint16/32/64 scalars promoted otherwise than PyTorch promotes them,
# each with the Python number that, leading the list, lets it through (see data_refusals)
_SEQUENCES = (list, tuple)  # (not an int subclass, an IntEnum member, which has no first item)
_LEADS = {"f": float, "i": int, "u": None, "c": None}


def _as_array(data, dtype=None):
    if type(data) is np.ndarray and (dtype is None or data.dtype == dtype):
        return data  # the common case, kept cheap: numpy arrays are used as they are
    if isinstance(data, Tensor):
        data = data.data
    xp = get_array_module(data)
    if isinstance(data, np.generic):  # a numpy scalar keeps its dtype, like a numpy array
        arr = np.asarray(data)
    elif isinstance(data, (list, tuple, int, float, bool, complex)):
        try:
            arr = np.asarray(data)
        except OverflowError:  # (an int beyond uint64 among numpy integers)
            if dtype is not None:
                return torch_array(data, dtype)
            arr = None
        except ValueError:  # (ragged lists: PyTorch's refusal, or its empty tensor: [[], [1]] is (2, 0))
            return torch_array(data, dtype)
        kind = None if arr is None else arr.dtype.kind
        # an int beyond int64: PyTorch's dtype, or its refusal (a Python float or complex holds none: Tensor(0.5)
        # skips the check)
        if dtype is None and isinstance(data, _MAY_HOLD_LONG_INT):
            # numpy scalars among the numbers: PyTorch's dtype, or its refusal (numpy's uint16/32/64 promoted, a
            # numpy bool among ints). A list of floats led by a Python float (or of ints by a Python int) is let
            # through at the cost of one type(): see data_refusals.numpy_scalars_dtype
            if may_hold_long_int(arr):  # (first: numpy's values of [np.int8(1), 2**63] are no int64's)
                typed = long_int_array(data)
                if typed is not None:
                    return typed
            if kind in _LEADS and type(data) in _SEQUENCES and data and type(data[0]) is not _LEADS[kind]:
                scalars = numpy_scalars_dtype(data, kind)
                if scalars is not None:
                    return arr if arr.dtype == scalars else cast(arr, scalars)  # (from numpy's exact values)
        if arr is None:
            arr = np.asarray(data, dtype=object)
            kind = "O"
        if dtype is None and kind == "f":
            dtype = default_dtype()  # Python floats become float32, as in PyTorch
        elif dtype is None and kind == "c":
            dtype = default_complex_dtype()  # Python complexes complex64 (complex128 under a float64 default)
        elif kind == "c":  # (Python complexes for a real dtype: PyTorch's refusal)
            from .complex_to_real import refuse_python_complex

            refuse_python_complex(dtype)
        elif kind in "OUSV":  # (strings, None, other objects: numpy's string or object array, PyTorch's refusal)
            refuse_data(data, dtype)
    else:
        arr = xp.asarray(data)
        if arr.dtype.kind in "OUSV" and not isinstance(data, np.ndarray):  # (a str, None, another object)
            refuse_data(data, dtype)
    return arr if dtype is None or arr.dtype == dtype else cast(arr, dtype)  # (float64 to float16: as PyTorch's)


class Tensor(TensorOperators, TensorShapeMethods, TensorComparisons, TensorOperatorsMore, TensorMethods,
             TensorPointwise, TensorOpMethods, TensorInplaceMethods, TensorInplaceMore, TensorMethodsMore,
             TensorLinalgMethods, TensorMethodsMeta, TensorDLPack, TensorStorage, TensorHooks):
    """An n-dimensional array (numpy or cupy) that can record the ops applied to it.

    ``data`` is the raw array, ``grad`` the accumulated gradient (same shape, or
    None), ``requires_grad`` whether ops on it are recorded for ``backward()``.
    ``Tensor(array)`` wraps ``array`` itself, sharing its memory (as ``torch.from_numpy``;
    ``nn.Parameter(array)`` too); ``distnn.tensor(array)`` copies it, as ``torch.tensor``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "_hooks", "_vc", "__weakref__", "__dict__")
    __array_priority__ = 1000  # make ndarray <op> Tensor defer to Tensor's reflected op
    _grad_dest = None  # leaves only: where ops may write the gradient (engine.set_grad_destination)
    # zero_grad(set_to_none=False) zeroed .grad in place: the array is the same, its gradient is gone; cleared
    # when a backward accumulates into the leaf again (DataParallel tells a reset gradient by it)
    _grad_zeroed = False
    _grad_hooks = None  # leaves only: register_hook's hooks, called with the gradient before it is accumulated
    # PyTorch's inference tensor: made inside ``inference_mode()`` (not a view of a normal tensor), or a view of
    # one. Set per instance only then (Function.apply, __init__, versions._share); outside inference mode it
    # cannot be saved for backward nor changed in place (see _before_inplace_write)
    _inference = False

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self._node = None
        self._hooks = None
        self._vc = None
        self.requires_grad = False
        if isinstance(data, Tensor) and self.data is data.data:
            _share(data, self)  # the same memory: an in-place change through either is seen by both
            self.__dict__["_alias"] = object()  # (cut from the graph: see versions._shared_with_another)
        if not _grad_state.enabled and _inference_state.enabled and self._vc is None:
            self.__dict__["_inference"] = True  # (made inside inference_mode: an alias of a tensor is as it is)
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _make(data, node):
        """A Tensor around an op's output array (no checks: the hot path of every op)."""
        t = _object_new(Tensor)
        if type(data) is not np.ndarray and isinstance(data, np.generic):
            data = np.asarray(data)  # (a full reduction or scalar index gives a numpy scalar: a tensor holds arrays)
        t.data = data
        t.grad = None
        t._node = node
        t._hooks = None
        t._vc = None  # the version counter, made when first needed (see _counter)
        t.requires_grad = node is not None
        return t

    # Version counter (PyTorch's): bumped by every in-place change of the data (optimizer.step(),
    # += under no_grad(), load_state_dict); shared with the views of the same memory. A graph
    # that recorded an older version refuses to backward through it (see Function.apply).
    @property
    def _version(self) -> int:
        vc = self._vc
        return 0 if vc is None else vc[0]

    @_version.setter
    def _version(self, value: int) -> None:
        (self._vc or _counter(self))[0] = value

    def _bump_version(self) -> None:
        """Note an in-place change of ``data`` (made by code outside the ops, e.g. a state load)."""
        (self._vc or _counter(self))[0] += 1

    # ----------------------------------------------------------------- grads
    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and self.data.dtype.kind not in "fc":  # (complex: PyTorch's convention, see complex_grad)
            raise TypeError(
                f"only floating-point and complex tensors can require gradients; this tensor has dtype "
                f"{self.data.dtype}"
            )
        if not flag and self._node is not None:
            raise RuntimeError("requires_grad_(False) is only valid on leaf tensors; use detach()")
        if flag and self._inference and not _inference_state.enabled:
            raise RuntimeError("Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.")
        self.requires_grad = bool(flag)
        return self

    def is_inference(self) -> bool:
        """PyTorch's ``Tensor.is_inference()``: whether this tensor was made inside ``inference_mode()`` (or is a
        view of such a tensor). A view made there of a normal tensor is normal, as in PyTorch."""
        return self._inference

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        node = self._node
        if "_stale" in self.__dict__ or (node is not None and node.view_version is not None):
            return _staleness.grad_fn_of(self)  # (a view: refused or re-made once its memory changed)
        return node

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
        """Accumulate gradients of this tensor into every leaf's ``.grad`` (PyTorch's arguments).

        ``inputs``: accumulate only into these tensors (see :func:`distnn.autograd.backward`);
        ``create_graph=True``: the pass runs the ops' differentiable backwards and keeps the graph; ``.grad`` gets
        the values (an array carries no graph: differentiate gradients with :func:`distnn.autograd.grad`).
        """
        if inputs is None and not create_graph:
            from .engine import backward

            backward(self, gradient, retain_graph)
        else:
            from .grad_api import backward

            backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        """A new leaf sharing this tensor's data (and its version counter), cut from the graph."""
        t = Tensor._make(self.data, None)
        _share(self, t)
        t.__dict__["_alias"] = object()  # (cut from the graph: see versions._shared_with_another)
        return t

    def zero_grad_(self):
        self.grad = None

    # ----------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """The data as a numpy array (copied to the host for cupy)."""
        return to_numpy(self.data)

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def astype(self, dtype) -> "Tensor":
        """A copy in ``dtype``; in the graph for a float (or complex) dtype. An integer or bool result
        carries no gradient, as in PyTorch (its values are steps of the input's)."""
        from distnn.functional import elementwise as E

        dtype = np.dtype(dtype)
        if dtype.kind not in "fc":
            return Tensor(E.integer_cast(self.data, dtype))
        return E.Cast.apply(self, dtype=dtype)

    def to(self, dtype_or_device) -> "Tensor":
        """Cast to a dtype, or move to ``"cpu"``/``"cuda[:N]"``; ``self`` when it is that already.

        As in PyTorch the result is part of the graph: gradients flow back
        through the cast or the copy to this tensor.
        """
        if is_device_name(dtype_or_device):
            from distnn.backend import device_of, resolve_device

            if device_of(self.data) == resolve_device(dtype_or_device):
                return self
            return E.ToDevice.apply(self, device=dtype_or_device)
        if np.dtype(dtype_or_device) == self.data.dtype:
            return self
        return self.astype(dtype_or_device)

    def float(self):
        return self.to(np.float32)  # (``self`` when it is float32 already, as in PyTorch)

    def double(self):
        return self.to(np.float64)

    # ------------------------------------------------------------ metadata
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        from distnn.backend import device_of

        return device_of(self.data)

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def dim(self) -> int:
        return self.data.ndim

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        """What PyTorch prints: ``tensor([1., 2.], dtype=distnn.float64, grad_fn=<MulBackward0>)``
        (:func:`distnn.printing.tensor_repr`; ``str`` is the same)."""
        from distnn.printing import tensor_repr  # (distnn.set_printoptions)

        return tensor_repr(self)

    # By identity, as PyTorch's (``__eq__`` is elementwise, so the default hash would be dropped). The C slot
    # of ``object`` rather than a Python ``return id(self)``: optimizers and the engine key dicts by tensors,
    # and a Python-level hash cost ~80 ns a lookup.
    __hash__ = object.__hash__

    def __getstate__(self):
        # (pickle, deepcopy) the version counter and a view's link refer to other tensors:
        # a copy is a tensor of its own, with a fresh counter
        state = object.__getstate__(self)
        d, slots = state if isinstance(state, tuple) else (state, {})
        if d and ("_view_of" in d or "_is_view" in d):  # (a copy is no view)
            d = {k: v for k, v in d.items() if k not in ("_view_of", "_is_view", "_multi_output")}
        return d, {**slots, "_vc": None}

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data.item())  # (numpy 2 refuses float() of a 1-element array that is not 0-d)

    def __int__(self):
        return int(self.data.item())

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad and is_grad_enabled():
            # np.exp(x) would return a plain array and silently cut x out of the graph (PyTorch refuses too)
            raise TypeError(f"a tensor of shape {tuple(self.shape)} that requires grad cannot become a numpy array "
                            "implicitly (the graph would be cut): use distnn's ops (x.exp(), F.*), or .detach() / "
                            ".numpy() for the values")
        a = to_numpy(self.data)
        return a if dtype is None else a.astype(dtype)


def reset_grad(t: Tensor, set_to_none: bool = True) -> None:
    """Clear ``t.grad``: to None, or to zeros in place (``set_to_none=False``: the array is kept, and
    marked as reset for DataParallel, see ``Tensor._grad_zeroed``). What every ``zero_grad`` does."""
    if t.grad is None:
        return
    if set_to_none:
        t.grad = None
        return
    if getattr(t.grad, "is_sparse", False) is True:  # a sparse gradient keeps no entries, as PyTorch's zero_()
        t.grad.zero_()
    else:
        t.grad[...] = 0
    t._grad_zeroed = True


_INFERENCE_SAVED = ("Inference tensors cannot be saved for backward. Please do not use Tensors created in inference "
                    "mode in computation tracked by autograd. To work around this, you can make a clone to get a "
                    "normal tensor and use it in autograd, or use `distnn.no_grad()` instead of "
                    "`distnn.inference_mode()`.")


# Bound at the bottom: these modules import Tensor from here.
_bind_late()  # (the operators' ops: versions, dtype rules, the functional modules, in-place writes)
name_methods_as_torch(Tensor)
from .versions import _counter, _share  # noqa: E402
from distnn.functional import elementwise as E  # noqa: E402
