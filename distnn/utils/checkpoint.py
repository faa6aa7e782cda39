"""``torch.utils.checkpoint``: activation checkpointing, trading compute for memory.

``checkpoint(function, *args, use_reentrant=False)`` runs ``function`` without keeping the activations it
makes: its recorded ops are freed as soon as it returns, and backward runs it again (under the random
generator state, autocast state and grad mode of the forward) to get them back. Gradients are those of the
same code without checkpointing (bitwise, for deterministic ops). ``checkpoint_sequential`` checkpoints the
segments of a sequence of modules. The graph side is :mod:`distnn.autograd.recompute`.

The two variants as PyTorch 2.13 presents them. ``use_reentrant`` should be passed: omitted, it warns and
means True, as PyTorch does. The reentrant variant (``True``) keeps PyTorch's limits: some positional tensor
argument must require grad (else a warning, and nothing records), no keyword arguments, no ``context_fn`` or
``debug``, no ``autograd.grad`` or ``backward(inputs=...)`` through it (refused with PyTorch's message), only a
tensor or a tuple's tensors are outputs (each requires grad), and no determinism check. The non-reentrant one
(``False``, recommended) takes keyword arguments, tensors anywhere in nested arguments and outputs, nested
checkpoints, ``autograd.grad``, ``context_fn`` (two context managers: the forward and the recomputation run
under them) and the checks of the recomputation, as PyTorch's: one that records more or fewer ops that keep
something for backward (PyTorch: saves more or fewer tensors) than the forward did raises :class:`CheckpointError`
with PyTorch's message, whatever ``determinism_check``; under ``determinism_check="default"``, so does one whose
such ops' outputs differ in shape, dtype or device (``debug=True`` adds both op lists).

``create_graph=True`` works through the non-reentrant variant (the recomputed region becomes part of the
gradients' graph, so they can be differentiated again); through the reentrant one, as PyTorch's, the gradients
are right but constants (``autograd.grad`` through it is refused, above). Selective checkpointing
(``context_fn=partial(create_selective_checkpoint_contexts, policy)``, ``CheckpointPolicy``): the ops the policy
says to save are kept from the forward and not run again: :mod:`distnn.utils.selective_checkpoint`, where
distnn's op (a ``Function`` class, e.g. ``MatMul``) stands for PyTorch's ``torch.ops.aten.mm.default``.

Early stop (PyTorch's, non-reentrant only, on by default; ``early_stop=False`` or, overriding the argument, the
block ``with set_checkpoint_early_stop(False):`` around the forward turn it off): the recomputation stops after
the last op whose node keeps something for backward (PyTorch: saves a tensor), so the region's tail of ops that
keep only metadata (``+``, ``* 2``, ``sum``, ``reshape``...) is not run again, and what the function does after
that op (a counter, a print), also when no op follows it, is not done again either; a backward that reaches no
such op recomputes nothing, with early stop or without, as PyTorch's. The gradients are the same. What keeps
something is PyTorch's saved tensors: a 0-d result (``exp`` of a full sum) and a list index do, ``tril``, a
``diagonal``, ``lerp`` with a number weight do not. :mod:`distnn.autograd.early_stop` has the details.

Where distnn departs: both variants record the region while it runs (``is_grad_enabled()`` is True inside,
also in the reentrant one, which PyTorch runs under ``no_grad``) and then drop it. Data
parallelism sees the parameters a region uses as ordinary inputs of the region's node: their gradients are
final, and synchronized, once per backward, as without checkpointing (PyTorch's reentrant variant breaks DDP
that way; distnn's does not). An argument changed in place between forward and backward is refused, as in
PyTorch; so is a parameter or other leaf the region used, as distnn refuses it without checkpointing (PyTorch
recomputes silently from the new values). A function that changes its own argument in place is refused in the
forward (PyTorch refuses it in backward when the recomputation needs that argument). create_graph through a
selective checkpoint works (PyTorch 2.13 refuses it: "Trying to backward an extra time"). The random state
replayed is distnn's default generator (the one a ``Dropout`` without ``generator=`` draws from, or the
trainer's per-sample one lent in its place); a layer given its own ``generator=`` draws new masks when
recomputed, as PyTorch replays only its default generators. Where the recomputation runs other code than the
forward (a nondeterministic function): with early stop on, distnn refuses one that ran other ops before it
stopped (:class:`CheckpointError`, whatever ``determinism_check``: the forward's tail is joined to the recomputed
ops by position), where PyTorch's, which keeps its whole forward graph, computes with whatever tensors of the
right count and metadata it recomputed; without early stop, distnn differentiates the recomputed ops where
PyTorch's applies its forward's backward formulas to the recomputed tensors. The counts and positions in the
check's messages are of ops that keep something, not of tensors (a matmul: one op, PyTorch's two tensors). A
nested checkpoint that is the last op of its outer region that keeps something runs its function once more than
PyTorch's (:mod:`distnn.autograd.early_stop`).

Not provided: ``CheckpointFunction``, ``GraphExecGroup`` and the device RNG helpers (``get_device_states``,
``set_device_states``, ``DefaultDeviceType``: distnn draws on the host).
"""
from __future__ import annotations

import contextlib
import copy
import warnings

from distnn import random as _random
from distnn.autograd import autocast_state as _autocast
from distnn.autograd.grad_mode import is_grad_enabled, no_grad
from distnn.autograd.early_stop import Tail, keeps_something
from distnn.autograd.recompute import Region, boundary, make_hub, make_output
from distnn.autograd.tensor import Tensor
from distnn.func import _pytree
from distnn.utils.selective_checkpoint import (CheckpointPolicy, SelectiveCheckpointContext,
                                               create_selective_checkpoint_contexts)

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError", "check_backward_validity", "detach_variable",
           "noop_context_fn", "set_checkpoint_early_stop", "set_checkpoint_debug_enabled", "CheckpointPolicy",
           "SelectiveCheckpointContext", "create_selective_checkpoint_contexts"]

_OMITTED = ("{name}: the use_reentrant parameter should be passed explicitly (PyTorch will require it). "
            "use_reentrant=False is recommended, but if you need to preserve the current default behavior, you can "
            "pass use_reentrant=True. Refer to docs for more details on the differences between the two variants.")
_REENTRANT_PARTIAL = ("When use_reentrant=True, torch.utils.checkpoint is incompatible with .grad() or passing an "
                      "`inputs` parameter to .backward(). To resolve this error, you can either set "
                      "use_reentrant=False, or call .backward() without passing the `inputs` argument.")
_DEBUG_TIP = ("\nTip: To see a more detailed error message, either pass `debug=True` to "
              "`distnn.utils.checkpoint.checkpoint(...)` or wrap the code block with "
              "`with distnn.utils.checkpoint.set_checkpoint_debug_enabled(True):` to enable checkpoint-debug "
              "mode globally.")

_debug_enabled = None  # set_checkpoint_debug_enabled's override (None: each call's ``debug``)
_early_stop_enabled = None  # set_checkpoint_early_stop's override (None: each call's ``early_stop``)


class CheckpointError(RuntimeError):
    """The recomputation in backward did not do what the forward did (PyTorch's class)."""


def noop_context_fn():
    """The default ``context_fn``: no context for the forward or the recomputation."""
    return contextlib.nullcontext(), contextlib.nullcontext()


@contextlib.contextmanager
def set_checkpoint_debug_enabled(enabled):
    """Within the block, ``debug`` of every checkpoint is ``enabled`` (None: each call's own), as PyTorch's."""
    global _debug_enabled
    prev, _debug_enabled = _debug_enabled, enabled
    try:
        yield
    finally:
        _debug_enabled = prev


@contextlib.contextmanager
def set_checkpoint_early_stop(enable: bool):
    """Within the block, ``early_stop`` of every non-reentrant checkpoint is ``enable``, whatever the call
    passes (PyTorch's precedence). Read when the forward runs: the backward need not be inside the block."""
    global _early_stop_enabled
    prev, _early_stop_enabled = _early_stop_enabled, enable
    try:
        yield
    finally:
        _early_stop_enabled = prev


def check_backward_validity(inputs) -> None:
    """Warn, as PyTorch's, when no tensor of ``inputs`` requires grad."""
    if not any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2)


def detach_variable(inputs):
    """``inputs`` (a tuple) with each tensor detached, keeping its ``requires_grad``."""
    if not isinstance(inputs, tuple):
        raise RuntimeError(f"Only tuple of tensors is supported. Got Unsupported input type: {type(inputs).__name__}")
    out = []
    for x in inputs:
        if isinstance(x, Tensor):
            flag, x = x.requires_grad, x.detach()
            x.requires_grad = flag
        out.append(x)
    return tuple(out)


def checkpoint(function, *args, use_reentrant=None, context_fn=noop_context_fn, determinism_check="default",
               debug=False, early_stop=True, preserve_rng_state=True, **kwargs):
    """``function(*args, **kwargs)`` without keeping its activations; backward recomputes them (module docstring).

    ``use_reentrant``: the variant (pass it; omitted: a warning, and True). ``preserve_rng_state``: replay the
    forward's random draws (dropout masks) in the recomputation. ``context_fn``, ``determinism_check``
    (``"default"`` or ``"none"``), ``debug``: the non-reentrant variant's. ``early_stop``: the non-reentrant
    variant stops the recomputation once every node that keeps something for backward is recomputed (ignored
    by the reentrant one; ``set_checkpoint_early_stop`` overrides it). Returns what ``function`` returns.
    """
    if use_reentrant is None:
        warnings.warn(_OMITTED.format(name="distnn.utils.checkpoint"), UserWarning, stacklevel=2)
        use_reentrant = True
    if use_reentrant:
        if kwargs:
            raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
        if context_fn is not noop_context_fn or debug is not False:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
        if not any(isinstance(a, Tensor) and a.requires_grad for a in args):
            warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2)
            with no_grad():
                return function(*args)
        if not is_grad_enabled():
            return function(*args)
        return _Checkpoint(function, args, {}, True, preserve_rng_state, noop_context_fn, None, False, False).run()
    if _debug_enabled if _debug_enabled is not None else debug:
        if context_fn is not noop_context_fn:
            raise ValueError("debug=True is incompatible with non-default context_fn")
        debug = True
    if determinism_check not in ("default", "none"):
        raise ValueError(f"determinism_check should be one of ['default', 'none'], but got {determinism_check}")
    if not callable(context_fn):
        raise TypeError(f"checkpoint: context_fn must be callable (returning two context managers), got "
                        f"{type(context_fn).__name__}")
    if not is_grad_enabled():
        return function(*args, **kwargs)
    stop = _early_stop_enabled if _early_stop_enabled is not None else early_stop
    return _Checkpoint(function, args, kwargs, False, preserve_rng_state, context_fn,
                       determinism_check == "default", bool(debug), bool(stop)).run()


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):  # noqa: A002
    """Run ``functions`` (an ``nn.Sequential`` or a list of modules/functions) one after another on ``input``,
    as ``segments`` chunks; each chunk but the last is checkpointed. ``preserve_rng_state`` may be passed."""
    if use_reentrant is None:
        warnings.warn(_OMITTED.format(name="distnn.utils.checkpoint.checkpoint_sequential"), UserWarning,
                      stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    from distnn.nn.containers import Sequential

    if isinstance(functions, Sequential):
        functions = list(functions.children())
    functions = list(functions)
    if isinstance(segments, bool) or not isinstance(segments, int) or not 1 <= segments <= len(functions):
        raise ValueError(f"checkpoint_sequential: segments must be an int from 1 to the number of functions "
                         f"({len(functions)}), got {segments!r}")

    def run(start, end):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x
        return forward

    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):  # (PyTorch's chunks: the last takes the rest)
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, preserve_rng_state=preserve)
    return run(end + 1, len(functions) - 1)(input)


def _outputs(out, reentrant):
    """(the output's tensors that may get a graph node, flattened; a function rebuilding the output from them).
    Reentrant: a tensor, or a tuple's own tensors (PyTorch's autograd.Function outputs); else any nesting."""
    if not reentrant:
        leaves, spec = _pytree.flatten(out)
        return leaves, lambda new: _pytree.unflatten(new, spec)
    if isinstance(out, Tensor):
        return [out], lambda new: new[0]
    if isinstance(out, tuple):
        return list(out), lambda new: type(out)(*new) if hasattr(type(out), "_fields") else tuple(new)
    return [], lambda new: out


class _Checkpoint:
    """One checkpointed call: its forward, and what its region's hub needs to recompute it."""

    def __init__(self, function, args, kwargs, reentrant, preserve, context_fn, check_meta, debug, early_stop):
        self.function, self.args, self.kwargs, self.reentrant = function, args, kwargs, reentrant
        self.check_meta, self.debug, self.early_stop = check_meta, debug, early_stop
        self.tail = None
        self.forward_context, self.recompute_context = context_fn()
        self.rng = _random.snapshot_default_generator() if preserve else None
        self.autocast = (_autocast.current("cpu"), _autocast.current("cuda"))

    def run(self):
        region = Region()
        with region, self.forward_context:
            out = self.function(*self.args, **self.kwargs)
        try:
            return self._link(region, out)
        finally:  # the activations go; only the arguments (held by the hub) and early stop's tail stay alive
            region.release(self.tail.nodes if self.tail else ())

    def _link(self, region, out):
        self.metas, self.names = region.metas, region.names
        tensors = [a for a in _pytree.flatten((self.args, self.kwargs))[0] if isinstance(a, Tensor)]
        for a in tensors:
            if a._node in region:
                raise RuntimeError("checkpoint: the checkpointed function changed one of its tensor arguments in "
                                   "place; it is recomputed in backward, so it must leave its arguments as they were "
                                   "(clone the argument first)")
        leaves, rebuild = _outputs(out, self.reentrant)
        if self.reentrant:  # every float tensor output gets a node (PyTorch's Function outputs all require grad)
            mine = [i for i, t in enumerate(leaves) if isinstance(t, Tensor) and t.dtype.kind in "fc"]
        else:  # the outputs the region made; the others (a tensor passed through, constants) are returned as they are
            mine = [i for i, t in enumerate(leaves) if isinstance(t, Tensor) and t._node in region]
        if not mine:
            return self._detached(out) if self.reentrant else out
        parents, shapes = boundary(region, region.reached([leaves[i] for i in mine]))
        for i in mine:  # (reentrant: an output the function passed through is its own boundary tensor)
            t = leaves[i]
            key = t if t._node is None else t._node
            if t.requires_grad and t._node not in region and all(p is not key for p in parents):
                parents.append(key)
                shapes.append(tuple(t.shape))
        self.saved = [(f"argument tensor {i} (shape {tuple(a.shape)})", a, a._version) for i, a in enumerate(tensors)]
        self.saved += [(f"a parameter or leaf tensor of shape {tuple(p.shape)}", p, p._version)
                       for p in parents if isinstance(p, Tensor)]
        if not self.reentrant:  # (the nodes that keep nothing: early stop's tail; PyTorch's reentrant has none)
            tail = Tail(list(region.nodes.values()), {i: leaves[i]._node for i in mine}, self.early_stop)
            self.saved_positions = tail.saved
            self.tail = tail if tail.useful() else None
        hub = make_hub(parents, shapes, len(leaves), self._precheck, self._recompute, self._check,
                       differentiable=not self.reentrant, tail=self.tail)
        # what an output's node shows (recompute.CheckpointOutput): the region's node that made it, or (reentrant) the
        # edges of PyTorch's CheckpointFunctionBackward, to the function's tensor arguments
        edges = tuple((a if a._node is None else a._node) if a.requires_grad else None
                      for a in self.args if isinstance(a, Tensor)) if self.reentrant else None
        new = [make_output(hub, i, t, t._node if edges is None else edges) if i in mine
               else self._detached(t) if self.reentrant else t for i, t in enumerate(leaves)]
        return rebuild(new)

    @staticmethod
    def _detached(out):
        """The reentrant variant's other outputs: made under no_grad in PyTorch, so without a graph."""
        leaves, spec = _pytree.flatten(out)
        return _pytree.unflatten([x.detach() if isinstance(x, Tensor) and x._node is not None else x
                                  for x in leaves], spec)

    def _precheck(self):
        if self.reentrant:
            from distnn.autograd import engine, grad_pass

            context = engine.backward_context()
            if context and context.get(grad_pass.PARTIAL_PASS):
                raise RuntimeError(_REENTRANT_PARTIAL)
        for what, t, version in self.saved:
            if t._version != version:
                raise RuntimeError(
                    f"checkpoint: {what} that the checkpointed function is recomputed from was changed in place "
                    f"after the forward pass (version {t._version}, the forward saw {version}): optimizer.step() "
                    "or an in-place update between forward and backward? Call backward before updating.")

    def _recompute(self):
        rng = contextlib.nullcontext() if self.rng is None else _random.use_generator(copy.deepcopy(self.rng))
        cpu, cuda = _autocast.enter("cpu", self.autocast[0]), _autocast.enter("cuda", self.autocast[1])
        try:
            with rng, self.recompute_context:
                out = self.function(*self.args, **self.kwargs)
        finally:
            _autocast.restore(cuda)
            _autocast.restore(cpu)
        return _outputs(out, self.reentrant)[0]

    def _check(self, region, outputs):
        """Compare the recomputation with the forward, as PyTorch compares its saved tensors (here: the nodes that
        keep something, by position among them); ``outputs`` None: it stopped early, at the tail. The counts are
        checked whatever ``determinism_check`` (PyTorch's cannot go on either), the metadata under "default"."""
        if self.reentrant:
            if not any(isinstance(t, Tensor) and t.requires_grad for t in outputs):
                raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not necessary")
            return
        forward = self.saved_positions
        if outputs is None:  # (stopped just after the forward's last node that keeps something, or nothing was needed)
            recomputed = forward if region.metas else []  # (the same ops: checked below, by name)
        else:  # (ran to its end: every node is complete, its own verdict)
            recomputed = [i for i, n in enumerate(region.nodes.values()) if keeps_something(n)]
            if len(recomputed) > len(forward):
                raise CheckpointError("distnn.utils.checkpoint: trying to save more tensors during recomputation "
                                      "than during the original forward pass.\n" + self._tip(region))
            if len(recomputed) < len(forward):
                raise CheckpointError(
                    "distnn.utils.checkpoint: A different number of tensors was saved during the original forward "
                    f"and recomputation.\nNumber of tensors saved during forward: {len(forward)}\n"
                    f"Number of tensors saved during recomputation: {len(recomputed)}.\n" + self._tip(region))
        if self.check_meta:
            different = "".join(
                f"tensor at position {k}:\nsaved metadata: {self.metas[i]}\nrecomputed metadata: {region.metas[j]}\n"
                for k, (i, j) in enumerate(zip(forward, recomputed)) if self.metas[i] != region.metas[j])
            if different:
                raise CheckpointError("distnn.utils.checkpoint: Recomputed values for the following tensors have "
                                      f"different metadata than during the forward pass.\n{different}.\n"
                                      + self._tip(region))
        if outputs is None and region.names != self.names[:len(region.names)]:
            # (always: the tail's nodes are joined to the recomputed ones by position, so they must be the same ops)
            raise CheckpointError(
                "distnn.utils.checkpoint: the recomputation, stopped early, did not run the operations the original "
                "forward did, so the rest of the forward's graph cannot be joined to it (pass early_stop=False to "
                "recompute the whole function).\n" + self._tip(region))

    def _tip(self, region):
        if not self.debug:
            return _DEBUG_TIP
        return ("\nOperations executed during the original forward:\n" + "\n".join(self.names)
                + "\n\nOperations executed during recomputation:\n" + "\n".join(region.names) + "\n")
