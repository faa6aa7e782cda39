"""``Tensor``: an xp array with an optional gradient and a link to the op that made it."""
from __future__ import annotations

import numpy as np

from distnn.backend import DEFAULT_DTYPE, get_array_module, to_numpy

from .grad_mode import is_grad_enabled


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


class Tensor:
    """An n-dimensional array (numpy or cupy) that can record the ops applied to it.

    ``data`` is the raw array, ``grad`` the accumulated gradient (same shape, or
    None), ``requires_grad`` whether ops on it are recorded for ``backward()``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "_hooks", "__weakref__", "__dict__")
    __array_priority__ = 1000  # make ndarray <op> Tensor defer to Tensor's reflected op
    _grad_dest = None  # leaves only: where ops may write the gradient (engine.set_grad_destination)
    # Leaves only: bumped when the data is changed in place (optimizer.step(), +=, ... under no_grad());
    # a graph that recorded an older version refuses to backward through it (PyTorch's check).
    _version = 0
    # zero_grad(set_to_none=False) zeroed .grad in place: the array is the same, its gradient is gone
    # (DataParallel.finish_gradient_synchronization tells a reset from an installed gradient by it)
    _grad_zeroed = False

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self._node = None
        self._hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _make(data, node):
        """A Tensor around an op's output array (no checks: the hot path of every op)."""
        t = _object_new(Tensor)
        t.data = data
        t.grad = None
        t._node = node
        t._hooks = None
        t.requires_grad = node is not None
        return t

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

    def detach(self) -> "Tensor":
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor._make(self.data, None)

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
        from distnn.functional import elementwise as E

        return E.Cast.apply(self, dtype=np.dtype(dtype))

    def to(self, dtype_or_device) -> "Tensor":
        """Cast to a dtype, or move to ``"cpu"``/``"cuda"`` (a new leaf)."""
        if isinstance(dtype_or_device, str) and (dtype_or_device == "cpu" or dtype_or_device.startswith("cuda")):
            from distnn.backend import to_device

            return Tensor(to_device(self.data, dtype_or_device), requires_grad=self.requires_grad)
        return self.astype(dtype_or_device)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

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

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data.item())  # (numpy 2 refuses float() of a 1-element array that is not 0-d)

    def __int__(self):
        return int(self.data.item())

    def __array__(self, dtype=None, copy=None):
        a = to_numpy(self.data)
        return a if dtype is None else a.astype(dtype)

    # ---------------------------------------------------------- arithmetic
    def __add__(self, o):
        return E.Add.apply(self, _weak(self, o))

    def __radd__(self, o):
        return E.Add.apply(_weak(self, o), self)

    def __sub__(self, o):
        return E.Sub.apply(self, _weak(self, o))

    def __rsub__(self, o):
        return E.Sub.apply(_weak(self, o), self)

    def __mul__(self, o):
        return E.Mul.apply(self, _weak(self, o))

    def __rmul__(self, o):
        return E.Mul.apply(_weak(self, o), self)

    def __truediv__(self, o):
        return E.Div.apply(self, _weak(self, o))

    def __rtruediv__(self, o):
        return E.Div.apply(_weak(self, o), self)

    def __pow__(self, o):
        return E.Pow.apply(self, _weak(self, o))

    def __rpow__(self, o):
        return E.Pow.apply(_weak(self, o), self)

    def __matmul__(self, o):
        return E.MatMul.apply(self, o)

    def __rmatmul__(self, o):
        return E.MatMul.apply(o, self)

    def __neg__(self):
        return E.Neg.apply(self)

    # In-place operators (``p -= lr * p.grad``). Without them Python would rebind the name to a new
    # tensor: the parameter a loop or an attribute names would silently stay unchanged (or drop out
    # of the module). Under no_grad() they change the array in place (and bump the version a graph
    # checks, see _version), as in PyTorch; on a leaf that requires grad while recording they are an
    # error, as in PyTorch. Otherwise, while recording, the result is a new tensor bound to the name:
    # only leaves carry versions, so distnn never changes a graph's intermediate tensor in place.
    def _inplace(self, op, o):
        if not is_grad_enabled():
            op(self.data, _weak(self, _raw(o)), out=self.data, casting="same_kind")
            self._version += 1
            return self
        if self.requires_grad and self._node is None:
            raise RuntimeError("a leaf tensor that requires grad is used in an in-place operation; do it under "
                               "distnn.no_grad() (e.g. a manual update of parameters) or write x = x - y")
        return None

    def __iadd__(self, o):
        done = self._inplace(get_array_module(self.data).add, o)
        return self + o if done is None else done

    def __isub__(self, o):
        done = self._inplace(get_array_module(self.data).subtract, o)
        return self - o if done is None else done

    def __imul__(self, o):
        done = self._inplace(get_array_module(self.data).multiply, o)
        return self * o if done is None else done

    def __itruediv__(self, o):
        done = self._inplace(get_array_module(self.data).true_divide, o)
        return self / o if done is None else done

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

    def __getitem__(self, index):
        return S.GetItem.apply(self, index=_raw_index(index))

    # ---------------------------------------------------- methods as in numpy/torch
    def exp(self):
        return E.Exp.apply(self)

    def log(self):
        return E.Log.apply(self)

    def sqrt(self):
        return E.Sqrt.apply(self)

    def abs(self):
        return E.Abs.apply(self)

    def clip(self, min=None, max=None):
        return E.Clip.apply(self, lo=min, hi=max)

    clamp = clip

    def sum(self, axis=None, keepdims=False):
        return R.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return R.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return R.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return R.Min.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False):
        return R.Var.apply(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def argmax(self, axis=None):
        return Tensor(self.data.argmax(axis=axis))

    def argmin(self, axis=None):
        return Tensor(self.data.argmin(axis=axis))

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
        shape = tuple(self.shape[i - (len(shape) - self.ndim)] if s == -1 else s for i, s in enumerate(shape))
        return S.BroadcastTo.apply(self, shape=shape)

    def broadcast_to(self, shape):
        return S.BroadcastTo.apply(self, shape=tuple(shape))

    def squeeze(self, axis=None):
        return S.Squeeze.apply(self, axis=axis)

    def unsqueeze(self, axis):
        return S.Unsqueeze.apply(self, axis=axis)

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


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _weak(tensor, o):
    """A constant operand of an arithmetic operator, typed as PyTorch types it.

    numpy would promote a float32 tensor to float64 against a numpy scalar
    (``np.sqrt(d)``, ``np.float64(2)``), a 0-d array or an int64 array; in
    PyTorch these do not decide the result's dtype. So against a floating
    tensor a numpy scalar or 0-d array becomes a Python scalar (weak, NEP 50)
    and an integer or bool array takes the tensor's dtype.
    """
    t = type(o)
    if t is Tensor or t is float or t is int or tensor.data.dtype.kind != "f":
        return o
    kind = getattr(getattr(o, "dtype", None), "kind", None)
    if kind is None or isinstance(o, Tensor):
        return o
    if getattr(o, "ndim", 1) == 0:
        return o.item() if kind in "biuf" else o
    return o.astype(tensor.data.dtype) if kind in "biu" else o


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


# Bound at the bottom: these modules import Tensor from here.
from distnn.functional import elementwise as E  # noqa: E402
from distnn.functional import reduce as R  # noqa: E402
from distnn.functional import shape as S  # noqa: E402
from distnn.functional import activation as A  # noqa: E402
