"""More of PyTorch's small Tensor methods (a mixin of :class:`~distnn.autograd.tensor.Tensor`): the memory address
(``data_ptr``, ``get_device``), the layout and device flags (``layout``, ``is_sparse``, ``is_meta``, ... all False:
a Tensor is a dense strided numpy/cupy array), ``to_sparse``/``to_dense`` (see :mod:`distnn.sparse`), ``dim_order``,
``output_nr``, ``H``, the complex casts (``cfloat``, ``cdouble``; ``chalf`` refused), ``new_empty_strided``, pinned
memory, the method forms of ``hardshrink``/``prelu``, ``nonzero_static``, and the element-wise Python callables
``apply_``/``map_``/``map2_``.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import device_of, get_array_module, gpu_available

from .mutation_guard import will_write


class layout:  # noqa: N801 - PyTorch's name (torch.layout)
    """A tensor's memory layout, as ``torch.layout``: :data:`strided` (dense, with strides) or
    :data:`sparse_coo` (:class:`distnn.sparse.SparseTensor`)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return f"distnn.{self.name}"

    def __reduce__(self):  # (pickled as the one object)
        return self.name


#: dense tensors with strides, PyTorch's ``torch.strided``: every distnn tensor's ``layout``
strided = layout("strided")
#: sparse COO tensors, PyTorch's ``torch.sparse_coo`` (see :mod:`distnn.sparse`)
sparse_coo = layout("sparse_coo")


def _never(doc: str):
    return property(lambda self: False, doc=doc)


def _address(a) -> int:
    return int(a.__array_interface__["data"][0]) if get_array_module(a) is np else int(a.data.ptr)


def _check_python_callable(self, name: str, others=()):
    """PyTorch's refusals of ``apply_``/``map_``/``map2_``: a tensor that requires grad (any of them), a GPU one."""
    from .tensor import Tensor

    if any(isinstance(t, Tensor) and t.requires_grad for t in (self, *others)):
        raise RuntimeError(f"Can't call {name}() on Variable that requires grad. Use var.detach().{name}() instead.")
    if device_of(self.data) != "cpu":
        raise TypeError(f"{name} is only implemented on CPU tensors")


def _number(value):
    if not isinstance(value, (int, float, bool, complex, np.number, np.bool_)):
        raise TypeError(f"must be real number, not {type(value).__name__}")
    return value


def _write_each(self, fn, *arrays):
    """``self[i] = fn(self[i], other[i], ...)`` element by element (the others broadcast to self's shape), the
    results cast to self's dtype as PyTorch's (a float into an integer tensor truncates); returns ``self``. The
    version is bumped (PyTorch's is not), so that a graph that saved the tensor refuses to use the old values."""
    values = [_number(fn(*items)) for items in zip(*(a.reshape(-1).tolist() for a in arrays))]
    if values:
        will_write(self)
        self.data[...] = np.asarray(values).astype(self.dtype).reshape(self.shape)
    self._bump_version()
    return self


def _expanded(self, other, name: str):
    from .tensor import Tensor

    if not isinstance(other, Tensor):
        raise TypeError(f"{name}(): argument must be Tensor, not {type(other).__name__}")
    if other.dtype != self.dtype:
        raise TypeError(f"{name}: expected {self.type()} for 'other' (got {other.type()})")
    return other.expand(*self.shape).data


class TensorMethodsMeta:
    __slots__ = ()

    # ------------------------------------------------------------ where the memory is
    def data_ptr(self) -> int:
        """The address of the first element (PyTorch's: a view's is its base's plus its offset times the item
        size; 0 for a tensor with no elements, as PyTorch's)."""
        return 0 if self.data.size == 0 else _address(self.data)

    def get_device(self) -> int:
        """-1 on the CPU, else the GPU's index."""
        return -1 if device_of(self.data) == "cpu" else int(self.data.device.id)

    @property
    def layout(self):
        """:data:`distnn.strided`, PyTorch's ``torch.strided``: every distnn tensor is dense with strides."""
        return strided

    is_meta = _never("False: distnn has no meta (data-less) tensors.")
    is_sparse = _never("False: a Tensor is dense (sparse COO tensors are distnn.sparse.SparseTensor).")
    is_sparse_csr = _never("False: distnn has no sparse CSR tensors.")

    def to_sparse(self, sparse_dim=None):
        """This tensor as a sparse COO tensor (:class:`distnn.sparse.SparseTensor`), as PyTorch's: the first
        ``sparse_dim`` dims (all by default) are indexed, an entry kept where its block has a nonzero; coalesced,
        and in the graph (the gradient of the values flows back to this tensor)."""
        from distnn.sparse.ops import dense_to_sparse

        return dense_to_sparse(self, sparse_dim)

    def to_sparse_coo(self):
        """``to_sparse()``, PyTorch's name."""
        return self.to_sparse()

    def to_dense(self, dtype=None, *, masked_grad=None):
        """``self`` (a dense tensor is dense already), or a cast copy when ``dtype`` differs, as PyTorch's."""
        return self if dtype is None else self.to(dtype)
    is_quantized = _never("False: distnn has no quantized tensors.")
    is_nested = _never("False: distnn has no nested tensors.")
    is_mkldnn = _never("False: distnn's tensors are numpy or cupy arrays.")
    is_vulkan = is_xla = is_xpu = is_ipu = is_maia = is_mps = is_mtia = _never(
        "False: distnn runs on the CPU (numpy) or CUDA GPUs (cupy).")

    def is_pinned(self) -> bool:
        """Whether the data is in page-locked host memory (made by :meth:`pin_memory`)."""
        if device_of(self.data) != "cpu":
            return False
        link = self.data
        while link is not None:
            if type(link).__name__ == "PinnedMemoryPointer":
                return True
            link = getattr(link, "base", None) or getattr(link, "mem", None)
        return False

    def pin_memory(self, device=None):
        """A copy in page-locked host memory (cupy's pinned allocator), for faster copies to a GPU; refused with
        PyTorch's message where there is no GPU, and for a GPU tensor (only CPU tensors can be pinned)."""
        from .tensor import Tensor

        if not gpu_available():
            raise RuntimeError("Cannot access accelerator device when none is available.")
        if device_of(self.data) != "cpu":
            raise RuntimeError(f"cannot pin '{self.type()}' only dense CPU tensors can be pinned")
        if self.is_pinned():
            return self
        import cupyx

        out = cupyx.empty_pinned(self.shape, dtype=self.dtype)
        out[...] = self.data
        return Tensor(out)

    # ------------------------------------------------------------ order of the dims in memory
    def dim_order(self, *, ambiguity_check=False) -> tuple:
        """The dims from the outermost in memory to the innermost (a stable sort by stride, largest first):
        ``(0, 1, ..., n-1)`` for a row-major tensor, ``(0, 2, 3, 1)`` for channels-last. ``ambiguity_check=True``
        refuses, as PyTorch's, a tensor with equal strides or size-1 dims (more than one order fits)."""
        strides = self.stride()
        if ambiguity_check is True and (any(a == b for a, b in zip(strides, strides[1:])) or 1 in self.shape):
            raise RuntimeError("The tensor does not have unique dim order, or cannot map to exact one of the given "
                               "memory formats.")
        return tuple(sorted(range(self.ndim), key=lambda d: -strides[d]))

    @property
    def output_nr(self) -> int:
        """Which output of its graph node this tensor is: 0 (each distnn node has one output; PyTorch's
        ``split``/``chunk`` pieces count 0, 1, ... of one node)."""
        return 0

    # ------------------------------------------------------------ conjugate transpose and complex casts
    @property
    def H(self):  # noqa: N802 - PyTorch's name
        """The conjugate transpose of a matrix (2-D; PyTorch's 0-D form, deprecated there, is its ``conj()``)."""
        from distnn.functional.complex_numbers import conj

        if self.ndim == 0:
            return conj(self)
        if self.ndim != 2:
            hint = " For batches of matrices, consider using tensor.mH" if self.ndim > 2 else ""
            raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {self.ndim}-D tensor.{hint}")
        return conj(self).transpose(0, 1)

    def cfloat(self):
        return self.to(np.complex64)

    def cdouble(self):
        return self.to(np.complex128)

    def chalf(self):
        raise TypeError("Got unsupported ScalarType ComplexHalf: distnn computes in numpy/cupy dtypes, and numpy has "
                        "no complex32 (use cfloat() for complex64)")

    # ------------------------------------------------------------ constructors and method forms
    def new_empty_strided(self, size, stride, *, dtype=None, device=None, requires_grad=False):
        """A new tensor of ``size`` laid out with ``stride`` (in elements), this tensor's dtype and device unless
        given; its values are zeros (PyTorch leaves them uninitialised)."""
        from distnn.functional.as_strided import as_strided

        from .tensor import Tensor

        size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        if len(size) != len(stride):
            raise RuntimeError("mismatch in length of strides and shape")
        extent = sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else 0
        storage = get_array_module(self.data).zeros(extent, dtype=dtype or self.dtype)
        if device is not None:
            from distnn.backend import to_device

            storage = to_device(storage, device)
        out = Tensor(as_strided(Tensor(storage), size, stride, 0).data)
        return out.requires_grad_(True) if requires_grad else out

    def hardshrink(self, lambd=0.5):
        from distnn.functional.activation_more import hardshrink

        return hardshrink(self, lambd)

    def prelu(self, weight):
        from distnn.functional.activation_more import prelu

        return prelu(self, weight)

    def nonzero_static(self, *, size, fill_value=-1):
        from distnn.functional.scatter import nonzero_static

        return nonzero_static(self, size=size, fill_value=fill_value)

    # ------------------------------------------------------------ Python callables, element by element
    def apply_(self, callable):  # noqa: A002 - PyTorch's name
        """Each element replaced by ``callable(element)``, in place (CPU only, no gradient: PyTorch's refusals)."""
        _check_python_callable(self, "apply_")
        return _write_each(self, callable, self.data)

    def map_(self, tensor, callable):  # noqa: A002
        """Each element replaced by ``callable(element, other's element)`` (``tensor`` broadcast to this shape, of
        this dtype), in place."""
        _check_python_callable(self, "map_", (tensor,))
        return _write_each(self, callable, self.data, _expanded(self, tensor, "map_"))

    def map2_(self, x, y, callable):  # noqa: A002
        """As :meth:`map_` with two tensors: ``callable(element, x's, y's)``."""
        _check_python_callable(self, "map2_", (x, y))
        return _write_each(self, callable, self.data, _expanded(self, x, "map2_"), _expanded(self, y, "map2_"))


__all__ = ["TensorMethodsMeta", "layout", "strided", "sparse_coo"]
