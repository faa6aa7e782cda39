"""Differentiable backwards: what ``create_graph=True`` runs instead of ``Function.backward``.

``Function.backward`` computes on raw arrays, so a backward pass records nothing. For double (and higher)
backward, a backward must itself be a graph: this registry maps a Function class to
``graph_backward(node, g) -> tuple``, which takes the output's gradient as a Tensor and returns one Tensor
(or None) per input, computed with recorded Tensor ops. Those ops have graph backwards of their own, so a
third derivative works wherever a second one does.

A graph backward needs the node's inputs and output as Tensors *in the graph*, not the raw arrays the node
saved: :func:`saved_input` and :func:`saved_output` rebuild them (the saved array, linked to the node's
parent or to the node itself), which is what PyTorch's SavedVariable unpacking does. A Function subclass of
one's own provides its graph backward as a method, ``backward_graph(self, g)``, with the same contract. A
class with neither is refused by the create_graph pass, naming it, before any gradient is computed.

The entries live by op family: :mod:`.pointwise`, :mod:`.structure` (shape, reductions, products,
indexing), :mod:`.nn` (activations, losses, vector norms), :mod:`.activations` (the rest, dropout), :mod:`.conv` (convolutions), :mod:`.pooling`,
:mod:`.norms` (batch/layer/group/instance/RMS normalization), :mod:`.linear_maps` (embedding, pad,
interpolate, fold/unfold, local_response_norm's window sum), :mod:`.losses` (binary cross-entropy, smooth L1),
:mod:`.sampling` (grid_sample), :mod:`.selection` (gather, sort/topk..., scatters, flip/roll/repeat, cumsum), :mod:`.pointwise_more` (binary math, gamma functions, var/std, logsumexp, prod), :mod:`.linalg` (det, inv, solve,
cholesky, eigh...), :mod:`.distances` (p-norms of any order, cosine_similarity, logcumsumexp); :func:`load` imports them on first use.
"""
from __future__ import annotations

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

_REGISTRY: dict = {}
_loaded = False


def register(*classes, complex_ok=False):
    """Decorator: ``fn(node, g)`` is the graph backward of ``classes`` (and of their subclasses that have
    no entry of their own). ``fn.unsupported(node)`` may return a reason (str) when a node's parameters are
    not covered (e.g. a norm order); the pass then refuses with it. ``complex_ok``: ``fn`` follows the
    complex convention too (:mod:`distnn.autograd.complex_grad`); a complex node of another op is refused."""
    def deco(fn):
        for cls in classes:
            _REGISTRY[cls] = fn
        fn.complex_ok = complex_ok
        return fn
    return deco


def load() -> None:
    global _loaded
    if not _loaded:
        from . import (activations, attention, conv, distances, layers_more, linalg, linalg_more,  # noqa: F401
                       linear_maps, losses, losses_more, nn, norms, pointwise, pointwise_more, pooling, rnn, sampling,
                       selection, structure)  # (they register themselves)

        _loaded = True


def lookup(node):
    """The graph backward of ``node``'s class (or of its nearest base that has one), or None: a registry entry,
    or a ``backward_graph(self, g)`` method (how a Function subclass of one's own provides it)."""
    for cls in type(node).__mro__:
        if "backward_graph" in cls.__dict__:
            return _method
        fn = _REGISTRY.get(cls)
        if fn is not None:
            return fn
    return None


def _method(node, g):
    return node.backward_graph(g)


def refusal(node):
    """None when ``node`` can be differentiated twice; otherwise why not, naming the op."""
    fn = lookup(node)
    cls = type(node)
    where = f"{cls.__module__}.{cls.__qualname__}"
    if fn is None:
        return (f"create_graph=True: the op {cls.__name__} ({where}) has no differentiable backward in distnn, "
                "so its gradient cannot be differentiated again. Double backward covers the core ops: arithmetic, "
                "pow/exp/log/sqrt/abs/sin/cos, matmul/linear, sum/mean/max/min/norm, shape ops, indexing, cat/stack, "
                "maximum/minimum/clamp/where, gather/sort/topk/scatter and the other selecting ops, flip/roll/repeat/cumsum, "
                "the binary math (atan2, hypot, logaddexp...), lgamma, var/std, logsumexp, prod/cumprod, "
                "normalize/pairwise_distance/cosine_similarity, logcumsumexp, linalg det/slogdet/inv/solve/"
                "solve_triangular/cholesky/eigh/eigvalsh/svd/svdvals/pinv/lstsq/qr/matrix_exp/cross/vander/"
                "diagonal/lobpcg (and what is composed of them: cond, solve_ex, tensorinv, tensorsolve, "
                "svd_lowrank...), "
                "the common activations and losses, attention, the RNN layers, einsum/glu/prelu/bilinear, "
                "embedding_bag, convolutions, max/average/LP pooling and unpooling, "
                "fold/unfold, grid_sample/affine_grid, the normalization layers and modules' backward hooks "
                "(see README)")
    # (a complex node: the formula must be conjugated where it multiplies; a backward_graph method of a class
    # that supports complex is trusted to be)
    if node.complex_node and not (type(node).supports_complex if fn is _method else getattr(fn, "complex_ok", False)):
        return (f"create_graph=True: the op {cls.__name__} ({where}) has no complex double backward in distnn "
                "(its first-order complex gradient is supported); second order through complex nodes covers "
                "+ - * neg exp conj real imag, sum/mean, the shape ops, roll, distnn.fft's transforms and "
                "stft/istft")
    check = getattr(fn, "unsupported", None)
    reason = check(node) if check is not None else None
    return None if reason is None else f"create_graph=True: {cls.__name__} ({where}): {reason}"


def _counter(node, position):
    for pos, counter, _ in node.saved_versions:
        if pos == position:
            return counter
    return None


def saved_input(node, i, array):
    """Input ``i`` of ``node`` as a Tensor in the graph: the leaf itself, or ``array`` (what the node saved of
    it) linked to its producer. A constant input (needing no gradient) comes back as ``array`` itself."""
    p = node.parents[i]
    if p is None:
        return array
    if isinstance(p, Tensor):
        return p
    t = Tensor._make(array, p)
    t._vc = _counter(node, i)  # (an in-place change of the original is then seen by the new graph too)
    return t


def saved_output(node, array):
    """``node``'s output as a Tensor in the graph (``array``: its value, of the output's shape)."""
    t = Tensor._make(array, node)
    t._vc = _counter(node, OUTPUT)
    return t


def recorded(cls, parents, shapes, value, **saved):
    """A node of ``cls`` linked to ``parents`` (per input: a parent Function, a leaf Tensor or None) whose
    forward already happened: ``value`` is its output, ``saved`` what its backward reads. For a quantity a
    fused op computed but did not keep as a Tensor (cross-entropy's softmax), so that it gets a graph."""
    fn = object.__new__(cls)
    fn.__dict__.update(saved)
    needs = tuple(p is not None for p in parents)
    if not any(needs):
        return Tensor._make(value, None)
    fn.needs_input_grad = needs
    fn.parents = tuple(parents)
    fn.input_shapes = tuple(shapes)
    return Tensor._make(value, fn)


class _ZeroThrough(Function):
    """``g`` itself, linked to an input of a masked op with a zero gradient (see :func:`zero_link`)."""

    saves_tensors = False

    def backward(self, gg):
        xp = get_array_module(gg)
        return gg, xp.broadcast_to(xp.zeros((), dtype=gg.dtype), self.x_shape)


def zero_link(g, node, i):
    """``g``, made to depend on ``node``'s input ``i`` with derivative zero.

    A masked op's backward (relu, leaky_relu, abs, clamp, maximum...) reads its input only through a mask,
    whose derivative is zero. PyTorch's double backward still gives that input a gradient, of zeros, not
    None: with this link so does distnn's, so ``.grad`` is a zero array where PyTorch's is a zero tensor
    (an optimizer's momentum or weight decay then treats the parameter alike)."""
    p = node.parents[i]
    if p is None:
        return g
    gp = (g if g._node is None else g._node) if g.requires_grad else None
    shape = node.input_shapes[i]
    return recorded(_ZeroThrough, (gp, p), (g.shape, shape), g.data, x_shape=shape)


@register(_ZeroThrough)
def _zero_through(node, gg):
    xp = get_array_module(gg.data)
    return gg, Tensor._make(xp.broadcast_to(xp.zeros((), dtype=gg.dtype), node.x_shape), None)


def unsqueeze_to(g, axes, keepdims):
    """A reduction's gradient ``g`` with the reduced ``axes`` back as size-1 dims (a recorded reshape)."""
    if keepdims or not axes:
        return g
    shape = list(g.shape)
    for ax in sorted(axes):
        shape.insert(ax, 1)
    return g.reshape(tuple(shape))


__all__ = ["register", "load", "lookup", "refusal", "saved_input", "saved_output", "recorded", "zero_link",
           "unsqueeze_to"]
