"""``Function``: one differentiable op, forward and backward side by side.

A subclass implements

* ``forward(self, *arrays, **params) -> array``: raw numpy/cupy arrays in, one
  array out. It stores on ``self`` only what backward needs (often the output,
  not the inputs) and may consult ``self.needs_input_grad`` to skip saving.
* ``backward(self, grad) -> tuple``: one gradient (or None) per positional input.
  A gradient may have the broadcast shape of the output: the engine reduces it to
  the input's shape in one place (``engine.sum_to_shape``). Backward never
  modifies ``grad`` in place; it may return ``grad`` itself or a view of it.

``Function.apply(*inputs, **params)`` runs forward on the inputs' arrays and, when
recording is on and some input requires a gradient, links the node into the graph.
Inputs that are not Tensors (Python scalars, arrays) are constants.
"""
from __future__ import annotations

from .grad_mode import is_grad_enabled
from .tensor import Tensor


class Function:
    # Set by apply(); the engine clears the whole __dict__ when it frees the node.
    parents: tuple | None = None  # per input: parent Function, leaf Tensor, or None
    input_shapes: tuple = ()
    needs_input_grad: tuple = ()

    def forward(self, *arrays, **params):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        fn = cls.__new__(cls)
        recording = is_grad_enabled()
        arrays = []
        needs = []
        any_needs = False
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x.data)
                r = recording and x.requires_grad
            else:
                arrays.append(x)
                r = False
            needs.append(r)
            any_needs = any_needs or r
        fn.needs_input_grad = tuple(needs)
        out = fn.forward(*arrays, **params)
        if not any_needs:
            return Tensor._make(out, None)
        fn.parents = tuple(
            (x._node if x._node is not None else x) if r else None for x, r in zip(inputs, needs)
        )
        fn.input_shapes = tuple(a.shape if r else None for a, r in zip(arrays, needs))
        return Tensor._make(out, fn)

    def release(self):
        """Drop saved arrays and graph edges (called by the engine after backward)."""
        self.__dict__.clear()
        self.parents = None
        self.freed = True

    def __repr__(self):
        return f"<{type(self).__name__} node>"
