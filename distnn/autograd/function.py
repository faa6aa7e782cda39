"""``Function``: one differentiable op, forward and backward side by side.

A subclass implements

* ``forward(self, *arrays, **params) -> array``: raw numpy/cupy arrays in, one
  array out. It stores on ``self`` only what backward needs (often the output,
  not the inputs) and may consult ``self.needs_input_grad`` to skip saving.
* ``backward(self, grad) -> tuple``: one gradient (or None) per positional input.
  A gradient may have the broadcast shape of the output: the engine reduces it to
  the input's shape in one place (``engine.sum_to_shape``). Backward never
  modifies ``grad`` in place; it may return ``grad`` itself or a view of it.

Optionally, backward may honour ``self.grad_out``: None, or a list giving per
input an array the engine would like that input's gradient written into (a
leaf's gradient destination, see ``engine.set_grad_destination``). An op that
produces the gradient with an ``out=`` argument anyway (a GEMM, a sum) writes
it there and returns that very array, and the leaf adopts it with no copy.
Ignoring ``grad_out`` is always correct, only slower for data parallelism.

``Function.apply(*inputs, **params)`` runs forward on the inputs' arrays and, when
recording is on and some input requires a gradient, links the node into the graph.
Inputs that are not Tensors (Python scalars, arrays) are constants.
"""
from __future__ import annotations

from .grad_mode import _state
from .tensor import Tensor

_new = object.__new__
_make = Tensor._make
_NO_NEEDS = [(False,) * n for n in range(8)]  # shared needs_input_grad tuples when nothing records


class Function:
    # Set by apply(); the engine clears the whole __dict__ when it frees the node,
    # and these class-level defaults then describe a freed node.
    parents: tuple | None = None  # per input: parent Function, leaf Tensor, or None
    input_shapes: tuple = ()
    needs_input_grad: tuple = ()
    grad_out: list | None = None  # per input: where to write its gradient, if the op can (see above)
    leaf_versions: tuple = ()  # (leaf, its _version) for each leaf input that requires grad

    def forward(self, *arrays, **params):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        # The hot path of every op: one pass over the inputs, no generators, and
        # nothing graph-related is built unless some input records a gradient.
        fn = _new(cls)
        arrays = []
        if _state.enabled:
            needs = []
            parents = []
            shapes = []
            any_needs = False
            versions = None
            for x in inputs:
                if isinstance(x, Tensor):
                    a = x.data
                    arrays.append(a)
                    if x.requires_grad:
                        any_needs = True
                        needs.append(True)
                        node = x._node
                        if node is None:
                            parents.append(x)
                            if versions is None:
                                versions = []
                            versions.append((x, x._version))
                        else:
                            parents.append(node)
                        shapes.append(a.shape)
                        continue
                else:
                    arrays.append(x)
                needs.append(False)
                parents.append(None)
                shapes.append(None)
            if any_needs:
                fn.needs_input_grad = tuple(needs)
                out = fn.forward(*arrays, **params)
                fn.parents = tuple(parents)
                fn.input_shapes = tuple(shapes)
                if versions is not None:
                    fn.leaf_versions = tuple(versions)
                return _make(out, fn)
        else:
            for x in inputs:
                arrays.append(x.data if isinstance(x, Tensor) else x)
        n = len(arrays)
        fn.needs_input_grad = _NO_NEEDS[n] if n < 8 else (False,) * n
        return _make(fn.forward(*arrays, **params), None)

    def release(self):
        """Drop saved arrays and graph edges (the engine does this after backward)."""
        self.__dict__.clear()

    @property
    def freed(self) -> bool:
        return self.parents is None

    def __repr__(self):
        return f"<{type(self).__name__} node>"
