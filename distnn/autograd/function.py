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

Version counters (PyTorch's in-place check): when a node is recorded it notes
the version of every Tensor input and of its output; an in-place change of any
of them before backward (``optimizer.step()``, ``+=`` under ``no_grad()``,
``load_state_dict``) bumps the version and backward refuses to run on stale
saved values. An op whose output is a view of an input's memory (reshape,
transpose, basic indexing...) gives the output the input's counter, so an
in-place change through either is seen by both. Ops that save no input or
output array set ``saves_tensors = False`` and are not checked.

In-place ops while recording (``t *= w``, see ``inplace.py``) run the out-of-place op, then
overwrite ``t``'s memory: they first copy the arrays the node saved that alias that memory, found
among the node's attributes. So a Function keeps the arrays it saves as attributes of its own
(``self.a = a``), not inside lists or tuples.
"""
from __future__ import annotations

from .grad_mode import _state
from .tensor import Tensor
from .versions import _link_views

_new = object.__new__
_make = Tensor._make
_NO_NEEDS = [(False,) * n for n in range(8)]  # shared needs_input_grad tuples when nothing records
_INPUTS, _OUTPUT = "inputs", "output"


def _any_is(items, x) -> bool:
    for item in items:
        if item is x:
            return True
    return False


class Function:
    # Set by apply(); the engine clears the whole __dict__ when it frees the node,
    # and these class-level defaults then describe a freed node.
    parents: tuple | None = None  # per input: parent Function, leaf Tensor, or None
    input_shapes: tuple = ()
    needs_input_grad: tuple = ()
    grad_out: list | None = None  # per input: where to write its gradient, if the op can (see above)
    # (input position or -1 for the output, its version counter, the version then) for every Tensor
    # input and the output; the engine checks them before backward (see the module docstring)
    saved_versions: list | tuple = ()
    # which recorded arrays backward reads: True (inputs and output, the safe default), "inputs",
    # "output" or False (none: nothing to check); a stricter answer only makes the check stricter
    saves_tensors = True
    # the output array backward reads is distnn's way, PyTorch's op saves something else (max_pool2d: indices):
    # an in-place change of the output copies it first (inplace.py) rather than refusing the backward
    saved_output_is_internal = False

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
            saves = cls.saves_tensors
            versions = [] if saves and saves is not _OUTPUT else None
            for i, x in enumerate(inputs):
                if isinstance(x, Tensor):
                    a = x.data
                    arrays.append(a)
                    if versions is not None:
                        vc = x._vc
                        if vc is None:
                            vc = x._vc = [0]  # (tensor._counter, inlined: the hot path)
                        versions.append((i, vc, vc[0]))
                    if x.requires_grad:
                        any_needs = True
                        needs.append(True)
                        node = x._node
                        parents.append(x if node is None else node)
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
                t = _make(out, fn)
                if getattr(out, "base", None) is not None or _any_is(arrays, out):
                    _link_views(t, out, inputs, arrays)  # a view: one version counter with its input
                if saves:
                    if saves is not _INPUTS:
                        vc = t._vc
                        if vc is None:
                            vc = t._vc = [0]
                        if versions is None:
                            versions = [(-1, vc, vc[0])]
                        else:
                            versions.append((-1, vc, vc[0]))
                    fn.saved_versions = versions
                return t
        else:
            for x in inputs:
                arrays.append(x.data if isinstance(x, Tensor) else x)
        n = len(arrays)
        fn.needs_input_grad = _NO_NEEDS[n] if n < 8 else (False,) * n
        out = fn.forward(*arrays, **params)
        t = _make(out, None)
        if getattr(out, "base", None) is not None or _any_is(arrays, out):
            _link_views(t, out, inputs, arrays)
        return t

    def release(self):
        """Drop saved arrays and graph edges (the engine does this after backward)."""
        self.__dict__.clear()

    @property
    def freed(self) -> bool:
        return self.parents is None

    def __repr__(self):
        return f"<{type(self).__name__} node>"
