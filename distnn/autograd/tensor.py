"""``Tensor``: an xp array with an optional gradient and a link to the op that made it."""
from __future__ import annotations

import weakref

import numpy as np

from distnn.backend import DEFAULT_DTYPE, get_array_module, is_device_name, to_numpy

from .grad_mode import is_grad_enabled
from .tensor_methods import TensorMethods


_object_new = object.__new__


def _as_array(data, dtype=None):
    if type(data) is np.ndarray and (dtype is None or data.dtype == dtype):
        return data  # the common case, kept cheap: numpy arrays are used as they are
    if isinstance(data, Tensor):
        data = data.data
    xp = get_array_module(data)
    if isinstance(data, np.generic):  # a numpy scalar keeps its dtype, like a numpy array
        arr = np.asarray(data)
    elif isinstance(data, (list, tuple, int, float, bool)):
        arr = np.asarray(data)
        if dtype is None and arr.dtype.kind == "f":
            dtype = DEFAULT_DTYPE  # Python floats become float32, as in PyTorch
    else:
        arr = xp.asarray(data)
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


class Tensor(TensorMethods):
    """An n-dimensional array (numpy or cupy) that can record the ops applied to it.

    ``data`` is the raw array, ``grad`` the accumulated gradient (same shape, or
    None), ``requires_grad`` whether ops on it are recorded for ``backward()``.
    ``Tensor(array)`` wraps ``array`` itself, sharing its memory (as ``torch.from_numpy``;
    ``nn.Parameter(array)`` too); ``distnn.tensor(array)`` copies it, as ``torch.tensor``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "_hooks", "_vc", "__weakref__", "__dict__")
    __array_priority__ = 1000  # make ndarray <op> Tensor defer to Tensor's reflected op
    _grad_dest = None  # leaves only: where ops may write the gradient (engine.set_grad_destination)
    # zero_grad(set_to_none=False) zeroed .grad in place: the array is the same, its gradient is gone
    # (DataParallel.finish_gradient_synchronization tells a reset from an installed gradient by it)
    _grad_zeroed = False
    _grad_hooks = None  # leaves only: register_hook's hooks, called with the gradient before it is accumulated

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
        if flag and self.data.dtype.kind != "f":  # (complex: no op follows the conjugate convention)
            raise TypeError(
                f"only floating-point tensors can require gradients (real ones); this tensor has dtype {self.data.dtype}"
            )
        if not flag and self._node is not None:
            raise RuntimeError("requires_grad_(False) is only valid on leaf tensors; use detach()")
        self.requires_grad = bool(flag)
        return self

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate gradients of this tensor into every leaf's ``.grad``."""
        from .engine import backward

        backward(self, gradient, retain_graph)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` each backward, once this leaf's gradient is final.

        Returns a handle with ``remove()``.
        """
        if self._node is not None:
            raise RuntimeError("post-accumulate-grad hooks can only be registered on leaf tensors")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    def register_hook(self, hook):
        """Call ``hook(grad)`` with this tensor's gradient during each backward, as PyTorch's: it may return
        a replacement (a Tensor or array of the same shape and dtype) that is used instead. Returns a handle
        with ``remove()``.

        On a leaf the hook sees the whole gradient of the pass (every use summed) before it is added into
        ``.grad``, and before the post-accumulate-grad hooks run; on a non-leaf, the gradient with respect to
        this tensor before it flows into the op that made it. Hooks run in registration order; the
        gradient they get must not be changed in place (return a new one).
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require gradient")
        if not callable(hook):
            raise TypeError(f"register_hook: the hook must be callable, got {type(hook).__name__}")
        node = self._node
        if node is None:
            hooks = self.__dict__.get("_grad_hooks")
            if hooks is None:
                hooks = self.__dict__["_grad_hooks"] = []
        else:
            hooks = _output_hooks(node).hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` at backward (accumulated over passes, as a leaf's);
        on a leaf it does nothing (a leaf keeps it anyway). Runs after the tensor's other hooks."""
        if not self.requires_grad:
            raise RuntimeError("cannot retain_grad() on a tensor that does not require gradient")
        if self._node is not None:
            _output_hooks(self._node).retained = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        """Whether :meth:`retain_grad` was called on this non-leaf tensor."""
        node = self._node
        ref = node.grad_hooks.retained if node is not None and node.grad_hooks is not None else None
        return ref is not None and ref() is self

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
            return Tensor(self.data.astype(dtype))
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
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self._node is not None:
            extra = f", grad_fn={type(self._node).__name__}"
        body = np.array2string(to_numpy(self.data), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.data.dtype}{extra})"

    def __hash__(self):
        return id(self)

    def __getstate__(self):
        # (pickle, deepcopy) the version counter and a view's link refer to other tensors:
        # a copy is a tensor of its own, with a fresh counter
        state = object.__getstate__(self)
        d, slots = state if isinstance(state, tuple) else (state, {})
        if d and "_view_of" in d:
            d = {k: v for k, v in d.items() if k != "_view_of"}
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

    # ---------------------------------------------------------- arithmetic
    def __add__(self, o):
        return E.Add.apply(*_operands(self, o))

    def __radd__(self, o):
        t, c = _with_constant(self, o)
        return E.Add.apply(c, t)

    def __sub__(self, o):
        return E.Sub.apply(*_operands(self, o))

    def __rsub__(self, o):
        t, c = _with_constant(self, o)
        return E.Sub.apply(c, t)

    def __mul__(self, o):
        return E.Mul.apply(*_operands(self, o))

    def __rmul__(self, o):
        t, c = _with_constant(self, o)
        return E.Mul.apply(c, t)

    def __truediv__(self, o):
        return E.Div.apply(*_true_division(*_operands(self, o)))

    def __rtruediv__(self, o):
        t, c = _with_constant(self, o)
        c, t = _true_division(c, t)
        return E.ReciprocalScaled.apply(t, c=c)  # (PyTorch's way: its backward reads no tensor of the caller's)

    def __pow__(self, o):
        a, b = _operands(self, o)
        return (E.Pow if isinstance(b, Tensor) else E.PowConstant).apply(a, b)

    def __rpow__(self, o):
        t, c = _with_constant(self, o)
        return E.Pow.apply(c, t)

    def __matmul__(self, o):
        return E.MatMul.apply(self, o)

    def __rmatmul__(self, o):
        return E.MatMul.apply(o, self)

    def __neg__(self):
        return E.Neg.apply(self)

    # In-place operators (``p -= lr * p.grad``). Without them Python would rebind the name to a new
    # tensor: the parameter a loop or an attribute names would silently stay unchanged (or drop out
    # of the module). Under no_grad(), or when no operand requires grad, the array changes in place
    # (and every view of it), and its version is bumped so that a graph which saved it refuses to
    # backward (PyTorch's check). On a leaf that requires grad while recording they are an error, as
    # in PyTorch. Otherwise (recording) the result is computed by the out-of-place op, then written
    # into this tensor's memory, which takes the op's graph node: see distnn/autograd/inplace.py.
    def _inplace(self, ufunc_name, o, out_of_place):
        if not _records(self, o):
            getattr(get_array_module(self.data), ufunc_name)(self.data, _weak(self, _raw(o)), out=self.data,
                                                            casting="same_kind")
            self._bump_version()
            return self
        check_writable(self)
        result = out_of_place(self, o)
        if result.shape != self.shape:
            raise RuntimeError(f"in-place operation: the result's shape {tuple(result.shape)} does not match the "
                               f"tensor's shape {tuple(self.shape)} (an in-place operation cannot broadcast it)")
        op_node = result._node
        if result.dtype != self.dtype:
            if not np.can_cast(result.dtype, self.dtype, casting="same_kind"):
                raise TypeError(f"in-place operation: result type {result.dtype} cannot be cast to the tensor's "
                                f"dtype {self.dtype}")
            result = result.astype(self.dtype)
        return write_result(self, result, op_node)

    def _take_inplace(self, result: "Tensor") -> "Tensor":
        """``self`` takes ``result`` (its shape and dtype) as an in-place op's outcome (PyTorch's
        ``F.relu(x, inplace=True)``): its memory is overwritten (views see the change), and while
        recording it takes the result's graph node too, as ``x += y`` does. Returns ``self``."""
        if result is self:  # (an identity, e.g. dropout in evaluation: nothing changes)
            return self
        if result.dtype != self.dtype:  # (an activation of an integer tensor: PyTorch refuses it too)
            raise TypeError(f"in-place operation: the result's dtype {result.dtype} cannot be stored in the "
                            f"tensor's dtype {self.dtype}; drop inplace=True or convert the tensor first")
        if not _records(self, None):
            self.data[...] = result.data
            self._bump_version()
            return self
        check_writable(self)
        return write_result(self, result, result._node)

    def __iadd__(self, o):
        return self._inplace("add", o, Tensor.__add__)

    def __isub__(self, o):
        return self._inplace("subtract", o, Tensor.__sub__)

    def __imul__(self, o):
        return self._inplace("multiply", o, Tensor.__mul__)

    def __itruediv__(self, o):
        return self._inplace("true_divide", o, Tensor.__truediv__)

    # Comparisons give plain boolean tensors (no gradient).
    def __lt__(self, o):
        return Tensor(self.data < _raw(o))

    def __le__(self, o):
        return Tensor(self.data <= _raw(o))

    def __gt__(self, o):
        return Tensor(self.data > _raw(o))

    def __ge__(self, o):
        return Tensor(self.data >= _raw(o))

    def eq(self, o):
        return Tensor(self.data == _raw(o))

    def ne(self, o):
        return Tensor(self.data != _raw(o))

    # Elementwise, as in PyTorch (``(pred == target).mean()``): a tensor is hashed by identity, so
    # sets and dict keys still work; ``x in some_list`` compares elementwise, as in PyTorch (use
    # ``any(x is t for t in some_list)``). None and strings are not values: ``x == None`` is False.
    def __eq__(self, o):
        return NotImplemented if o is None or isinstance(o, (str, bytes)) else self.eq(o)

    def __ne__(self, o):
        return NotImplemented if o is None or isinstance(o, (str, bytes)) else self.ne(o)

    def __getitem__(self, index):
        raw = _raw_index(index)
        t = S.GetItem.apply(self, index=raw)
        if t._vc is not None and t._vc is self._vc:  # a view: an in-place change of it reaches this tensor
            # (its base held strongly, as PyTorch's view._base: ``y[:, 0][1:]`` is a view of y through a
            # temporary, which must stay known or y's in-place changes would be refused while it lives)
            t.__dict__["_view_of"] = (self, raw)
        if t._node is not None and raw is not index:  # (a Tensor among the indices: version-checked too)
            _note_index_versions(t, index)
        return t

    def __setitem__(self, index, value):
        """``x[index] = value`` as in PyTorch, always in place (views and shared arrays see it). While
        recording, the tensor's gradient is zero where it was overwritten, and ``value`` gets the
        gradient of the positions it was written to."""
        original, index = index, _raw_index(index)
        if not _records(self, value):
            self.data[index] = _beside(self, _weak(self, _raw(value)))
            self._bump_version()
            return
        check_writable(self)
        write_index(self, index, _beside(self, _weak(self, value)), original)

    # ---------------------------------------------------- methods as in numpy/torch
    def exp(self):
        return E.exp(self)

    def log(self):
        return E.log(self)

    def sqrt(self):
        return E.sqrt(self)

    def abs(self):
        return E.Abs.apply(self)

    def clip(self, min=None, max=None):
        return E.Clip.apply(self, min, max)

    clamp = clip

    # Reductions take PyTorch's dim/keepdim (x.max(1) is (values, indices), var is unbiased) or
    # numpy's axis/keepdims/ddof with numpy's meaning: see distnn.functional.reduce.
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return R.sum(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return R.mean(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return R.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return R.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(self, dim=None, unbiased=None, keepdim=False, *, axis=None, ddof=None, correction=None,
            keepdims=None):
        return R.var(self, dim, unbiased, keepdim, axis=axis, ddof=ddof, correction=correction, keepdims=keepdims)

    def std(self, dim=None, unbiased=None, keepdim=False, *, axis=None, ddof=None, correction=None,
            keepdims=None):
        return R.std(self, dim, unbiased, keepdim, axis=axis, ddof=ddof, correction=correction, keepdims=keepdims)

    def argmax(self, dim=None, keepdim=False, *, axis=None):
        return R.argmax(self, dim, keepdim, axis=axis)

    def argmin(self, dim=None, keepdim=False, *, axis=None):
        return R.argmin(self, dim, keepdim, axis=axis)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return S.Reshape.apply(self, shape=shape)

    view = reshape

    def transpose(self, *axes):
        """No axes: reverse them. Two axes: swap them (PyTorch). Else: a permutation (numpy)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) == 2:
            perm = list(range(self.ndim))
            a, b = (ax % self.ndim for ax in axes)
            perm[a], perm[b] = perm[b], perm[a]
            axes = tuple(perm)
        return S.Transpose.apply(self, axes=axes or None)

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return S.Transpose.apply(self, axes=dims)

    @property
    def T(self):
        return S.Transpose.apply(self, axes=None)

    def expand(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return S.BroadcastTo.apply(self, shape=tuple(shape))  # (-1 keeps a dim's size)

    def broadcast_to(self, shape):
        return S.BroadcastTo.apply(self, shape=tuple(shape))

    def squeeze(self, dim=None, *, axis=None):
        return S.squeeze(self, dim, axis=axis)

    def unsqueeze(self, dim=None, *, axis=None):
        return S.unsqueeze(self, dim, axis=axis)

    def flatten(self, start_dim=0, end_dim=-1):
        return S.flatten(self, start_dim, end_dim)

    def relu(self):
        return A.relu(self)

    def tanh(self):
        return A.tanh(self)

    def sigmoid(self):
        return A.sigmoid(self)

    def softmax(self, axis=-1, dim=None):
        return A.softmax(self, axis, dim)

    def log_softmax(self, axis=-1, dim=None):
        return A.log_softmax(self, axis, dim)


def reset_grad(t: Tensor, set_to_none: bool = True) -> None:
    """Clear ``t.grad``: to None, or to zeros in place (``set_to_none=False``: the array is kept, and
    marked as reset for DataParallel, see ``Tensor._grad_zeroed``). What every ``zero_grad`` does."""
    if t.grad is None:
        return
    if set_to_none:
        t.grad = None
    else:
        t.grad[...] = 0
        t._grad_zeroed = True


class OutputHooks:
    """A graph node's hooks on its output tensor's gradient (``Tensor.register_hook`` on a non-leaf, and
    ``retain_grad``), run by the engine before the node's backward. ``retained``: a weak reference to the
    tensor that keeps its gradient, or None."""

    __slots__ = ("hooks", "retained")

    def __init__(self):
        self.hooks, self.retained = [], None


def _output_hooks(node) -> OutputHooks:
    hooks = node.grad_hooks
    if hooks is None:
        hooks = node.grad_hooks = OutputHooks()
    return hooks


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _records(t: Tensor, o) -> bool:
    """Whether ``t <op>= o`` is recorded (else it changes ``t``'s array in place)."""
    return is_grad_enabled() and (t.requires_grad or (isinstance(o, Tensor) and o.requires_grad))


def _refuse_recorded_leaf(t: Tensor) -> None:
    if t._node is None and t.requires_grad:
        raise RuntimeError("a leaf tensor that requires grad is used in an in-place operation; do it under "
                           "distnn.no_grad() (e.g. a manual update of parameters) or write x = x - y")


def _beside(t: Tensor, value):
    """A host array ``value`` written into a GPU tensor ``t``, copied to the GPU first: cupy's ``a[i] = v`` takes a
    numpy ``v`` for a scalar to fill with, and refuses one that is not 0-d. Anything else passes as it is."""
    return E._on_device(get_array_module(t.data), value)[0] if isinstance(value, np.ndarray) else value


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


# Bound at the bottom: these modules import Tensor from here.
from .versions import _counter, _note_index_versions, _share  # noqa: E402
from .dtype_rules import _weak, _operands, _with_constant, _true_division  # noqa: E402
from distnn.functional import elementwise as E  # noqa: E402
from distnn.functional import reduce as R  # noqa: E402
from distnn.functional import shape as S  # noqa: E402
from distnn.functional import activation as A  # noqa: E402
from .inplace import check_writable, write_index, write_result  # noqa: E402

