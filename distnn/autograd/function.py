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

Double backward (``create_graph=True``) cannot use ``backward`` (arrays record nothing): it runs the op's
*graph backward*, the same formula written with recorded Tensor ops, from the registry of
``autograd/derivatives`` or a method ``backward_graph(self, grad_tensor)`` a subclass defines. An op with
neither is refused by a create_graph pass, by name.

``Function.apply(*inputs, **params)`` runs forward on the inputs' arrays and, when
recording is on and some input requires a gradient, links the node into the graph.
Inputs that are not Tensors (Python scalars, arrays) are constants.

Version counters (PyTorch's in-place check): when a node is recorded it notes
the version of the tensors its backward reads (inputs, output); an in-place
change of any of them before backward (``optimizer.step()``, ``+=`` under
``no_grad()``, ``load_state_dict``) bumps the version and backward refuses to
run on stale saved values. An op whose output is a view of an input's memory
(reshape, transpose, basic indexing...) gives the output the input's counter,
so an in-place change through either is seen by both.

Which tensors are checked is declared per class, as PyTorch's derivative formulas
declare what they save. ``reads`` (the fine form): per input, the positions its
gradient formula reads (input positions, ``OUTPUT`` for the output); the node checks
those of the inputs that need a gradient, so ``y * 3.0`` checks nothing and ``y / w``
checks ``w`` only (when ``w`` needs no gradient), as in PyTorch. An op that keeps
its own copy instead (a mask) still declares what PyTorch's saves, so that both
refuse the same changes. Without ``reads``, ``saves_tensors`` (coarse): True (all
inputs and the output: the safe default for ops not yet annotated), "inputs",
"output" or False (nothing). A declaration may be stricter than what backward reads,
never laxer: a changed value it leaves out would give a wrong gradient.

In-place ops while recording (``t *= w``, see ``inplace.py``) run the out-of-place op, then
overwrite ``t``'s memory: they first copy the arrays the node saved that alias that memory, found
among the node's attributes. So a Function keeps the arrays it saves as attributes of its own
(``self.a = a``), not inside lists or tuples.
"""
from __future__ import annotations

import numpy as np

from . import autocast_state as _autocast, complex_grad as _complex, saved_hooks as _saved, view_staleness as _stale
from .float_errors import ALL_IGNORED as _ALL_IGNORED, FP_STATE as _FP_STATE
from .grad_mode import _inference, _state
from .tensor import _INFERENCE_SAVED, Tensor
from .versions import _link_views

_new = object.__new__
_make = Tensor._make
# the instance attribute (a dict, absent on most nodes) of a node's attributes that its freeing by backward keeps:
# what the user put on it (node_api: ``metadata``, its own hooks), as PyTorch's freed node keeps them; what a
# checkpoint's output node shows of the region (recompute.py)
KEPT_WHEN_FREED = "_kept_when_freed"


def restore_kept(node, kept: dict) -> None:
    """Put back on a node just freed the attributes ``kept`` (its ``KEPT_WHEN_FREED``)."""
    d = node.__dict__
    d.update(kept)
    d[KEPT_WHEN_FREED] = kept


def _keep_result_array(node, scalar, array) -> None:
    """A 0-d result a forward computed as a numpy scalar (``exp`` of a full sum) and kept for backward: the node
    keeps the output's own 0-d array instead, as it keeps any other result, so that it is a saved tensor as
    PyTorch's is (packed by saved_tensors_hooks, counted by checkpoint's early stop), not a plain number."""
    d = node.__dict__
    for name, v in d.items():
        if v is scalar:
            d[name] = array


_NO_NEEDS = [(False,) * n for n in range(8)]  # shared needs_input_grad tuples when nothing records
_INPUTS, _OUTPUT = "inputs", "output"
# The dtypes of nearly every recorded op, for complex autograd's test in ``apply``: an identity test
# first, as reading ``dtype.kind`` costs ~40 ns and it runs per input that requires grad and per output
# (another dtype object, e.g. one unpickled, still gets the exact ``kind`` test).
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
OUTPUT = -1  # the output's position in ``Function.reads`` (and in ``saved_versions``)
# numpy's floating-point error state, set around each forward: the methods bound once (~70 ns less a pair than
# looking them up on every call)
_set_fp_state, _reset_fp_state = _FP_STATE.set, _FP_STATE.reset


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
    # backward reads; the engine checks them before backward (see the module docstring)
    saved_versions: list | tuple = ()
    # hooks on the output tensor's gradient (Tensor.register_hook / retain_grad on a non-leaf): a
    # tensor_hooks.OutputHooks the engine runs before this node's backward; None when there are none
    grad_hooks = None
    # a freed node's edges (``parents`` before backward freed it): ``next_functions`` still answers, as PyTorch's
    # node keeps its edges and frees only its saved tensors; None while the node is live (or never recorded)
    freed_edges: tuple | None = None
    # the positions of inputs PyTorch's op takes as a Scalar, not a Tensor (``x ** 2``'s exponent, ``2 ** x``'s base):
    # no edge in ``next_functions`` and no slot in a node hook's ``grad_inputs``, as there; the graph keeps them
    number_inputs: tuple = ()
    # per input: the positions (inputs, OUTPUT) its gradient reads; None: ``saves_tensors`` decides
    reads: tuple | None = None
    # which recorded arrays backward reads: True (inputs and output, the safe default), "inputs",
    # "output" or False (none: nothing to check); a stricter answer only makes the check stricter
    saves_tensors = True
    # needs_input_grad -> the positions to check (see _checked); None when the class checks nothing
    _checks: dict | None = {}
    # the output array backward reads is distnn's way, PyTorch's op saves something else (max_pool2d: indices):
    # an in-place change of the output copies it first (inplace.py) rather than refusing the backward
    saved_output_is_internal = False
    # checkpoint's early stop (early_stop.keeps_something): {attribute: predicate(value)} for attributes the generic
    # "an array or an object keeps something" test misjudges against what PyTorch's node saves; None: none
    torch_saved: dict | None = None
    # the input whose memory the output views (reshape, transpose, indexing...), set by versions._link_views:
    # an in-place change of the output (or of a view of it) walks up these to the node that made the memory
    viewed_input: int | None = None
    view_version: int | None = None  # (of a view op's node: its memory's version then, see view_staleness.grad_fn_of)
    # the autocast policy of the op: None, "lower" (the matmul family) or "float32" (see autocast_state)
    autocast: str | None = None
    # complex autograd (see complex_grad): True when ``backward`` is right for complex nodes as written;
    # ``conj_saved`` names the saved operands backward multiplies by, conjugated for a complex node
    supports_complex = False
    conj_saved: tuple = ()
    # per instance, complex nodes only: the positions of real inputs that require grad (they get the real part)
    real_inputs: tuple = ()
    complex_node = False
    # PyTorch's name of this op's node ("MulBackward0"), what ``name()`` returns; None: ``f"{ClassName}Backward"``,
    # the name PyTorch gives a custom autograd.Function's node. An op that is one of several PyTorch nodes by its
    # arguments either has a subclass per call site (``Rsub(Sub)``: no cost) or defines ``torch_name_of_call(self)``,
    # read at ``name()`` time from what forward saved (nothing is added to the forward's hot path)
    torch_name: str | None = None
    torch_name_of_call = None
    # forward runs with numpy's floating-point warnings off (PyTorch's ops never warn: an overflow is inf, 0 / 0
    # NaN, silently; see float_errors). False for an op that computes no float (a view, a copy of elements,
    # indexing): it skips the ~0.25 us of setting and resetting numpy's error state.
    silences_float_warnings = True
    # an activation's, read by functional.in_place_activation: ``float_kernel``, the name of PyTorch's kernel of an
    # activation that refuses integer and bool inputs ("silu": '"silu_cpu" not implemented for 'Long''), None: any
    # dtype; ``in_place_form``, the class whose node ``inplace=True`` records (PyTorch's in-place op saves something
    # else: ``leaky_relu_`` its result), None: this class's own
    float_kernel = None
    in_place_form = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        reads = cls.reads
        nothing = not any(reads) if reads is not None else not cls.saves_tensors
        cls._checks = None if nothing else {}  # (a dict per class: the answers depend on its declaration)

    @classmethod
    def _checked(cls, needs: tuple) -> tuple:
        """The positions (inputs, OUTPUT) a node of this class checks when ``needs`` are its inputs'
        needs_input_grad, from its declaration (module docstring); computed once per ``needs``."""
        reads, saves = cls.reads, cls.saves_tensors
        everything = tuple(range(len(needs))) + (OUTPUT,)
        if reads is None:
            positions = [p for p in everything
                         if (saves is not _OUTPUT or p == OUTPUT) and (saves is not _INPUTS or p != OUTPUT)]
        else:
            positions = set()
            for i, need in enumerate(needs):
                if need:  # (an input ``reads`` does not cover, e.g. an optional one: everything, to be safe)
                    positions.update(reads[i] if i < len(reads) else everything)
            # (an optional input left out is no position; the output last, as it is noted after the inputs)
            positions = sorted((p for p in positions if p < len(needs)), key=lambda p: (p == OUTPUT, p))
        cls._checks[needs] = positions = tuple(positions)
        return positions

    def forward(self, *arrays, **params):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        # The hot path of every op: one pass over the inputs, no generators, and
        # nothing graph-related is built unless some input records a gradient.
        if _autocast.active and cls.autocast is not None:  # (one module read when no thread is in autocast)
            inputs = _autocast.cast_inputs(cls.autocast, inputs)
        fn = _new(cls)
        arrays = []
        recording = _state.enabled
        if recording:
            needs = []
            parents = []
            shapes = []
            any_needs = complex_in = False
            for x in inputs:
                if isinstance(x, Tensor):
                    a = x.data
                    arrays.append(a)
                    if x.requires_grad:
                        any_needs = True
                        d = a.dtype
                        if d is not _F32 and d is not _F64 and d.kind == "c":
                            complex_in = True
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
                if _stale.active:  # (one module read unless some view went stale: PyTorch's refusal to use it)
                    if _stale.check_inputs(inputs):  # (or a view's node re-made, as at its grad_fn)
                        parents = [(x if x._node is None else x._node) if needed else None
                                   for x, needed in zip(inputs, needs)]
                fn.needs_input_grad = needs = tuple(needs)
                if cls.silences_float_warnings:
                    token = _set_fp_state(_ALL_IGNORED)
                    try:
                        out = fn.forward(*arrays, **params)
                    finally:
                        _reset_fp_state(token)
                else:
                    out = fn.forward(*arrays, **params)
                fn.parents = tuple(parents)
                fn.input_shapes = tuple(shapes)
                fn.out_dtype = out_dtype = out.dtype  # (create_graph passes cast a gradient to it, as PyTorch's)
                if complex_in or (out_dtype is not _F32 and out_dtype is not _F64 and out_dtype.kind == "c"):
                    _complex.mark(fn, arrays, needs, out_dtype)  # (or refuses an op without complex support)
                t = _make(out, fn)
                if t.data is not out:  # (a numpy scalar, made a 0-d array: what the node kept of it becomes that)
                    _keep_result_array(fn, out, t.data)
                if getattr(out, "base", None) is not None or _any_is(arrays, out):
                    _link_views(t, out, inputs, arrays)  # a view: one version counter with its input
                checks = cls._checks
                if checks is not None:  # note the versions of what backward reads (module docstring)
                    positions = checks.get(needs)
                    if positions is None:
                        positions = cls._checked(needs)
                    if positions:
                        versions = []
                        for i in positions:
                            x = t if i == OUTPUT else inputs[i]
                            if isinstance(x, Tensor):
                                if x._inference:  # (PyTorch's refusal: it keeps no version to check)
                                    raise RuntimeError(_INFERENCE_SAVED)
                                vc = x._vc
                                if vc is None:
                                    vc = x._vc = [0]  # (versions._counter, inlined: the hot path)
                                versions.append((i, vc, vc[0]))
                        if versions:  # (none for ``y * 3.0``: the class default, an empty tuple, stays)
                            fn.saved_versions = versions
                if _saved.active:  # (one module read when no thread has saved_tensors_hooks on)
                    _saved.pack_node(fn, t, inputs)
                return t
        else:
            for x in inputs:
                arrays.append(x.data if isinstance(x, Tensor) else x)
        n = len(arrays)
        fn.needs_input_grad = _NO_NEEDS[n] if n < 8 else (False,) * n
        if cls.silences_float_warnings:  # (as above: the hot path is written out, not a helper's call)
            token = _set_fp_state(_ALL_IGNORED)
            try:
                out = fn.forward(*arrays, **params)
            finally:
                _reset_fp_state(token)
        else:
            out = fn.forward(*arrays, **params)
        t = _make(out, None)
        if getattr(out, "base", None) is not None or _any_is(arrays, out):
            # (a view of an inference tensor is one: versions._share; one made under no_grad is noted: view_staleness)
            _link_views(t, out, inputs, arrays, not recording)
        if not recording and _inference.enabled and t._vc is None:
            t.__dict__["_inference"] = True  # PyTorch's inference tensor (a view of a normal one stays normal)
        return t

    def backward_complex(self, g):
        """The backward of a complex node (see complex_grad): ``backward`` with the ``conj_saved`` operands
        conjugated. A class whose complex formula is not that defines its own."""
        names = self.conj_saved
        cls_backward = type(self).backward
        if not names:
            return cls_backward(self, g)
        saved = [getattr(self, name) for name in names]
        for name, v in zip(names, saved):
            setattr(self, name, _complex.conj(v))
        try:
            return cls_backward(self, g)
        finally:
            for name, v in zip(names, saved):
                setattr(self, name, v)

    def _backward_of_complex_node(self, g):
        # a complex node's backward (complex_grad.mark installs it): the real inputs get the real part
        grads = self.backward_complex(g)
        real = self.real_inputs
        if not real:
            return grads
        grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
        for i in real:
            if grads[i] is not None and grads[i].dtype.kind == "c":
                grads[i] = grads[i].real
        return tuple(grads)

    def release(self):
        """Drop saved arrays and graph edges (the engine does this after backward). A name read from what
        forward saved is kept: a freed PyTorch node keeps its name (``repr`` of a tensor after backward)."""
        of_call = self.torch_name_of_call
        name = of_call() if of_call is not None and self.parents is not None else None
        self.__dict__.clear()
        if name is not None:
            self.torch_name = name

    def free(self):
        """What backward does to a node it ran without ``retain_graph``: :meth:`release` (the saved arrays go, as
        does the node's link into the graph as ``parents``), keeping what PyTorch's freed node keeps: its edges
        (``next_functions``), its output's hooks (``retain_grad``: ``retains_grad`` stays True), its ``metadata``
        and its own hooks (``register_hook``/``register_prehook``: ``KEPT_WHEN_FREED``). The engine's pass inlines
        this (one call less a node)."""
        d = self.__dict__
        parents, hooks, kept = self.parents, self.grad_hooks, d.get(KEPT_WHEN_FREED)
        if self.torch_name_of_call is None:
            d.clear()
        else:
            self.release()
        self.freed_edges = parents
        if hooks is not None:
            self.grad_hooks = hooks
        if kept is not None:
            restore_kept(self, kept)

    @property
    def freed(self) -> bool:
        return self.parents is None

    # ------------------------------------------------ PyTorch's Node API (node_api.py; graph.Node)
    def name(self) -> str:
        """PyTorch's name for this node ("MulBackward0", "SelectBackward0", ...) where the op is one PyTorch node;
        else ``f"{ClassName}Backward"`` (see ``torch_name``)."""
        return _node_api.node_name(self)

    @property
    def next_functions(self) -> tuple:
        """Per input ``(node, 0)``: its producer, an ``AccumulateGrad`` for a leaf requiring grad, or None."""
        return _node_api.next_functions(self)

    @property
    def metadata(self) -> dict:
        """A dict for the user's notes about this node (PyTorch's ``Node.metadata``)."""
        return _node_api.metadata(self)

    def register_hook(self, fn):
        """Call ``fn(grad_inputs, grad_outputs)`` after this node's backward (tuples of Tensors; None for an
        input that needs no gradient); it may return a tuple replacing ``grad_inputs``. Returns a handle."""
        return _node_api.register_hook(self, fn)

    def register_prehook(self, fn):
        """Call ``fn(grad_outputs)`` before this node's backward (after the output tensor's own hooks); it may
        return a tuple replacing ``grad_outputs``. Returns a handle with ``remove()``."""
        return _node_api.register_prehook(self, fn)

    def __repr__(self):
        # PyTorch's: <MulBackward0 object at 0x7f...>; a node named after its class as a custom Function's is
        # <torch.autograd.function.TwiceBackward object at 0x7f...> there (its class is made in that module)
        name = self.name()
        if name == f"{type(self).__name__}Backward":
            name = f"distnn.autograd.function.{name}"
        return f"<{name} object at {id(self):#x}>"


from . import node_api as _node_api  # noqa: E402  (it imports the engine, which imports this module)
