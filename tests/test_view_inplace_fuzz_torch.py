"""Differential fuzz of views, in-place changes and autograd against torch (the oracle).

A seeded generator writes short programs (3-8 steps) over a small float64, float32 (or, without gradients,
int64/int32) tensor; each program runs step by step in distnn and in torch with the same arguments. A step makes
a view (basic slicing with steps, None, select, transpose/t/T/mT/permute/movedim/swapaxes, diagonal,
unsqueeze/squeeze, expand, view/reshape/flatten/unflatten with valid and invalid shapes, narrow, unfold,
split/chunk/unbind, view(dtype) of the same size), changes a tensor in place through a view or its base
(add_, mul_, clamp_, zero_, fill_, copy_, lerp_, addcmul_, index_put_, masked_fill_, setitem by
basic/boolean/integer-list index with a number or a tensor, ``t[i] += c``, ``//=``, ``%=``, ``**=``, relu_,
exp_, sigmoid_, sqrt_, t_/squeeze_/unsqueeze_, detach_, an add_ under no_grad, ...), computes out of place
(elementwise, sum, mean, matmul, advanced indexing), or calls contiguous()/clone()/detach(). Half of the float
programs record gradients of a leaf that is cloned first (so in-place changes are legal), the others do not.

After every step: allowed in both or refused in both (the same error type); and for every live tensor of the
program, its values (so writes through a view must reach its base and the base's writes its views, and a copy
must not see them), shape, dtype and requires_grad; for the tensor the step made, ``is_contiguous()`` and
``stride()``. The program ends in a scalar loss over its tensors that record gradients, and backward: refused
in both (torch's "modified by an inplace operation" version check) or the same leaf gradient.

What is not compared, and why:

* ``stride()`` of dims of size 1 and of empty tensors: any stride is valid there and numpy's (which distnn's
  are) differ from torch's; nothing can depend on it (``is_contiguous`` and ``view`` ignore them in both).
* The layout (``is_contiguous``, ``stride``) of advanced indexing (``x[[0, 2]]``) of a tensor that is not
  contiguous where the result has a dim of size 1: distnn's is row-major there, torch's may keep the input's
  order (see distnn/functional/index_layout.py; the others are compared). (An empty input counts as not
  contiguous here: its strides are torch's own choice.) Reductions (sum, mean, amax over a dim) are compared:
  torch's are row-major whatever the input's layout, as distnn's (tests/test_reduction_layout_torch.py).
* Where such a layout differs, ``view`` of it is allowed in one and refused in the other: the program stops.
* The layout of an elementwise or indexing result of a tensor whose memory overlaps itself (an expand,
  overlapping unfold windows): torch and numpy break ties between equal strides their own ways. Their
  ``contiguous()`` is compared, and their ``clone()`` where all their strides agree (torch lays it out by its
  input's strides, those of dims of size 1 too, where numpy's differ).
* ``//=`` and ``%=`` of floats of 1e3 or more (an ulp of difference in how they were computed, e.g. by exp, is
  a different result), and integer ops on the bits of a NaN (view(dtype): NaN payloads are neither's
  contract): the generator makes an ``add_``, ``fill_`` or ``clone()`` there instead. Values are compared to
  1e-12 (float64) and 1e-4 (float32) relative; integers exactly, except once the program has seen memory as
  another dtype: then as the floats of their bits, and never multiplied or taken modulo (an ulp of difference
  would be an unrelated result).
* What follows ``detach_()`` of a tensor in the graph or that other live tensors view: torch refuses a
  backward through a node that saved it ("a saved tensor that has been detached in-place"; distnn computes it,
  with the values saved, which detach_ leaves alone), and regenerates the views' graph nodes from the detached
  base at their next in-place change, cutting them from the graph (distnn's keep their node). The program
  stops after that step (its values compared).
* ``as_strided``: distnn has none.
* torch refuses in-place changes of split/chunk/unbind's pieces while recording (views from a function that
  returns several); distnn's pieces are indexing views, which it allows with the gradient of the write. So that
  those programs go on and their gradients are checked, torch's side takes the same piece by ``narrow``/``select``.
* The error message of a refusal, only its type: the wording is distnn's own in several places (e.g. view's
  of a multiple-output view, split/chunk, changed in place: torch names its node, distnn the view kind).
* In-place changes of an expanded tensor, of overlapping unfold windows (``step < size``), or of a view of
  one: the generator never makes them. torch refuses the expanded ones (overlapping memory) but writes
  overlapping windows with a result that depends on its loop order (``add_(1)`` adds 1 as often as an element is
  seen); distnn refuses both (numpy's read-only ValueError), see tests/test_unfold_view_torch.py.
* An in-place op whose operand shares memory with the tensor written (``h0.add_(h0[:2])``, ``h0.mul_(h0)``):
  the generator never makes them. torch refuses a partial overlap of contiguous ranges, writes the others in its
  loop order, and refuses the backward of ``t.mul_(t)`` (the operand it saved was changed); distnn reads the
  operand as it was before the write (numpy's buffering), and computes that backward right (documented in
  distnn/autograd/inplace.py).
* distnn's documented limitation (distnn/autograd/inplace.py): while recording, a tensor whose memory another
  live tensor sees through a view other than indexing (reshape, transpose, ...) is not changed in place: it is
  refused before anything is written, where torch allows it; and so is an in-place change of the shape
  (``t_``, ``squeeze_``, ``unsqueeze_``) of a tensor that another view sees (distnn/autograd/tensor_inplace_more.py).
  When distnn refuses with exactly one of those messages (``LIMITATIONS``) and torch allowed the step, the
  program stops there (the two are no longer in the same state); the no-grad programs cover those writes.

``DISTNN_VIEW_FUZZ_CASES`` sets the number of programs (default 500), ``DISTNN_VIEW_FUZZ_START`` the first seed,
``DISTNN_VIEW_FUZZ_STEPS`` the most steps of a program (default 8).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

CASES = int(os.environ.get("DISTNN_VIEW_FUZZ_CASES", "500"))
START = int(os.environ.get("DISTNN_VIEW_FUZZ_START", "0"))
STEPS = int(os.environ.get("DISTNN_VIEW_FUZZ_STEPS", "8"))  # (the most steps of a program; at least 3)
LIMITATIONS = ("through a view other than indexing",  # (distnn/autograd/inplace.py)
               "changing the shape of a tensor that shares its memory with a view while recording")  # (t_, squeeze_)
INT_OF = {"float64": "int64", "float32": "int32", "int64": "float64", "int32": "float32"}


class Limitation(Exception):
    """distnn refused a step by its documented limitation where torch allowed it: the program stops."""


def _lib_dtype(L, name):
    return getattr(L, name)


def _tensor(L, a, grad=False):
    if L is torch:
        return torch.tensor(a, requires_grad=grad)
    return distnn.Tensor(a.copy(), requires_grad=grad)


def _np(L, t):
    if L is torch:
        return t.detach().cpu().numpy()
    return np.asarray(t.detach().data if isinstance(t, distnn.Tensor) else t)  # (distnn's .grad: an array)


# ---------------------------------------------------------------- the generator: one step from the torch state
def _dim(rng, nd):
    return int(rng.integers(-nd, nd)) if nd else 0


def _view_step(rng, x):
    """(description, fn(L, x) -> the new tensor, read-only) for a view of ``x`` (a torch tensor)."""
    shape, nd = tuple(x.shape), x.dim()
    k = int(rng.integers(21))
    if k == 0 and nd:
        d = int(rng.integers(nd))
        a, b, s = int(rng.integers(-shape[d] - 1, shape[d] + 1)), int(rng.integers(-shape[d], shape[d] + 2)), \
            int(rng.integers(1, 4))
        idx = (slice(None),) * d + (slice(a, b, s),)
        return f"x[{idx}]", lambda L, t: t[idx]
    if k == 1 and nd:
        d = int(rng.integers(nd))
        i = int(rng.integers(-shape[d] - 1, shape[d] + 1))
        return f"select({d - nd}, {i})", lambda L, t: t.select(d - nd, i)
    if k == 2 and nd:
        d0, d1 = _dim(rng, nd), _dim(rng, nd)
        return f"transpose({d0}, {d1})", lambda L, t: t.transpose(d0, d1)
    if k == 3:
        return "t()", lambda L, t: t.t()
    if k == 4 and nd:
        perm = [int(p) for p in rng.permutation(nd)]
        return f"permute({perm})", lambda L, t: t.permute(*perm)
    if k == 5 and nd >= 2:
        off, d1, d2 = int(rng.integers(-2, 3)), _dim(rng, nd), _dim(rng, nd)
        return f"diagonal({off}, {d1}, {d2})", lambda L, t: t.diagonal(off, d1, d2)
    if k == 6:
        d = int(rng.integers(-nd - 1, nd + 1))
        return f"unsqueeze({d})", lambda L, t: t.unsqueeze(d)
    if k == 7:
        if nd and rng.random() < 0.6:
            d = _dim(rng, nd)
            return f"squeeze({d})", lambda L, t: t.squeeze(d)
        return "squeeze()", lambda L, t: t.squeeze()
    if k == 8:
        new = [int(rng.integers(1, 3))] + [s if s != 1 or rng.random() < 0.5 else 3 for s in shape]
        if rng.random() < 0.5:
            new = new[1:]
        return f"expand({new})", lambda L, t: t.expand(*new)
    if k in (9, 10):
        method = "view" if k == 9 else "reshape"
        new = _new_shape(rng, x.numel())
        return f"{method}({new})", lambda L, t: getattr(t, method)(*new)
    if k == 11:
        a, b = (sorted(_dim(rng, nd) for _ in range(2)) if nd else (0, -1))
        return f"flatten({a}, {b})", lambda L, t: t.flatten(a, b)
    if k == 12 and nd:
        d = int(rng.integers(nd))
        sizes = _new_shape(rng, shape[d], max_dims=3)
        return f"unflatten({d}, {sizes})", lambda L, t: t.unflatten(d, sizes)
    if k == 13 and nd:
        d = int(rng.integers(nd))
        st = int(rng.integers(-shape[d], shape[d] + 1))
        ln = int(rng.integers(0, shape[d] + 2))
        return f"narrow({d}, {st}, {ln})", lambda L, t: t.narrow(d, st, ln)
    if k == 14 and nd:
        d = int(rng.integers(nd))
        size, step = int(rng.integers(0, shape[d] + 2)), int(rng.integers(1, 3))
        overlap = step < size and (shape[d] - size) // step >= 1  # (read-only: see the docstring)
        return f"unfold({d}, {size}, {step})" + " overlapping" * overlap, lambda L, t: t.unfold(d, size, step)
    if k == 15 and nd:
        d, n = int(rng.integers(nd)), int(rng.integers(1, 4))
        j = int(rng.integers(0, 3))
        if rng.random() < 0.5:
            return f"split({n}, {d})[{j}]", lambda L, t: _piece(L, t, t.split(n, d), j, d)
        return f"chunk({n}, {d})[{j}]", lambda L, t: _piece(L, t, t.chunk(n, d), j, d)
    if k == 16:
        name = INT_OF[str(x.dtype).replace("torch.", "")]
        return f"view({name})", lambda L, t: t.view(_lib_dtype(L, name))
    if k == 17 and nd:
        a, b = _dim(rng, nd), _dim(rng, nd)
        if rng.random() < 0.5:
            return f"movedim({a}, {b})", lambda L, t: t.movedim(a, b)
        return f"swapaxes({a}, {b})", lambda L, t: t.swapaxes(a, b)
    if k == 18:
        idx = [(None,), (Ellipsis, None), (slice(None), None), (None, Ellipsis, None)][int(rng.integers(4))]
        return f"x[{idx}]", lambda L, t: t[idx]
    if k == 19 and nd:
        d, j = _dim(rng, nd), int(rng.integers(0, 3))
        return f"unbind({d})[{j}]", lambda L, t: t.unbind(d)[j] if L is distnn else (
            t.unbind(d)[j].detach(), t.select(d, j))[1]  # (torch's: the same piece by select, see the docstring)
    if k == 20 and nd:
        # (T of other than a matrix is deprecated in torch)
        if nd == 2:
            return "T", lambda L, t: t.T
        return ("mT", lambda L, t: t.mT) if nd > 2 else ("t()", lambda L, t: t.t())
    return None


def _piece(L, t, pieces, j, d):
    """Piece ``j`` of a split: distnn's own; torch's the same piece by ``narrow`` (see the docstring)."""
    piece = pieces[j]  # (an IndexError past the last piece, in both)
    if L is distnn:
        return piece
    start = sum(p.shape[d] for p in pieces[:j])
    return t.narrow(d, start, piece.shape[d])


def _new_shape(rng, numel, max_dims=4):
    """A shape of ``numel`` elements (a -1 at times), or at times a wrong one."""
    if rng.random() < 0.15:
        return [numel + 1] if rng.random() < 0.5 else [-1, -1]
    sizes, left = [], numel
    for _ in range(int(rng.integers(0, max_dims))):
        divisors = [q for q in range(1, left + 1) if left % q == 0] or [1]
        q = divisors[int(rng.integers(len(divisors)))]
        sizes.append(q)
        left //= q if q else 1
    sizes.append(left)
    sizes = [int(s) for s in rng.permutation(sizes)]
    if numel and rng.random() < 0.3:
        sizes[int(rng.integers(len(sizes)))] = -1
    return sizes


def _index(rng, x):
    """An index for ``x[index] = v``: basic, a boolean mask, or an integer list."""
    shape, nd = tuple(x.shape), x.dim()
    r = rng.random()
    if nd and r < 0.4:
        d = int(rng.integers(nd))
        if rng.random() < 0.5 and shape[d]:
            return (slice(None),) * d + (int(rng.integers(shape[d])),)
        return (slice(None),) * d + (slice(int(rng.integers(0, shape[d] + 1)), None, int(rng.integers(1, 3))),)
    if r < 0.7:
        return ("mask", _np(torch, x) > 0.3)
    if nd and shape[0]:
        return ("list", [int(i) for i in rng.integers(0, shape[0], int(rng.integers(1, 4)))])
    return (Ellipsis,)


def _as_index(L, index):
    if isinstance(index[0], str):
        kind, a = index
        return _tensor(L, a) if kind == "mask" else _tensor(L, np.array(a))
    return index


def _setitem(L, t, index, value):
    t[_as_index(L, index)] = value
    return t


def _augmented(L, t, index, c):
    t[_as_index(L, index)] += c
    return t


def _shares_memory(a, b):
    """Whether torch tensors ``a`` and ``b`` view one storage."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _inplace_step(rng, x, others, float_bits=False):
    """(description, fn(L, x, other) -> x, other's handle number or None) for an in-place change of ``x``
    (``float_bits``: its integers may be the bits of floats, see the docstring)."""
    others = [(i, o) for i, o in others if not _shares_memory(o, x)]  # (see the docstring)
    floating = x.dtype.is_floating_point
    k = int(rng.integers(30 if floating else 7))
    bits = x.detach().view(torch.float64 if x.element_size() == 8 else torch.float32)
    if not floating and bits.isnan().any():  # (integer ops on a NaN's bits: its payload is neither's contract)
        k = int(rng.choice([2, 3]))
    if not floating and float_bits and k in (1, 5):  # (x * c, x % c of a float's bits: an ulp apart is unrelated)
        k = 0
    if k in (4, 5) and floating and not bool((x.detach().abs() < 1e3).all()):  # (x // c and x % c of a huge x:
        k = 0  # an ulp of difference in how x was computed is a different result)
    c = float(rng.choice([2.0, 0.5, -1.5, 3.0])) if floating else int(rng.choice([2, 3, -1]))
    if k == 0:
        return f"add_({c})", lambda L, t, o: t.add_(c), None
    if k == 1:
        return f"mul_({c})", lambda L, t, o: t.mul_(c), None
    if k == 2:
        return "zero_()", lambda L, t, o: t.zero_(), None
    if k == 3:
        return f"fill_({c})", lambda L, t, o: t.fill_(c), None
    if k == 4:
        c = c if c else 2
        return f"//= {c}", lambda L, t, o: t.__ifloordiv__(c), None
    if k == 5:
        c = abs(c) if c else 2
        return f"%= {c}", lambda L, t, o: t.__imod__(c), None
    if k == 6:
        index = _index(rng, x)
        return f"x[{index}] = {c}", lambda L, t, o: _setitem(L, t, index, c), None
    if k == 7:
        e = float(rng.choice([2.0, 0.5, 3.0]))
        return f"**= {e}", lambda L, t, o: t.__ipow__(e), None
    if k == 8:
        lo, hi = sorted(float(v) for v in rng.uniform(-1, 1, 2))
        return f"clamp_({lo:.3}, {hi:.3})", lambda L, t, o: t.clamp_(lo, hi), None
    if k in (9, 10, 11, 27, 28, 29):
        fits = [i for i, o in others if o.dtype == x.dtype and _broadcasts(tuple(o.shape), tuple(x.shape))]
        if fits:
            j = fits[int(rng.integers(len(fits)))]
            if k == 27:
                return f"lerp_(h{j}, 0.25)", lambda L, t, o: t.lerp_(o, 0.25), j
            if k == 28:
                return f"addcmul_(h{j}, h{j}, value=0.5)", lambda L, t, o: t.addcmul_(o, o, value=0.5), j
            if k == 29:
                return f"where(h{j} > 0, h{j}, x) into x", lambda L, t, o: t.copy_(L.where(o > 0, o, t)), j
            op = ("copy_", "add_", "mul_")[k - 9]
            return f"{op}(h{j})", lambda L, t, o: getattr(t, op)(o), j
        return "exp_()", lambda L, t, o: t.exp_(), None
    if k in (12, 13, 14, 15):
        name = ("relu_", "sigmoid_", "tanh_", "neg_")[k - 12]
        return f"{name}()", lambda L, t, o: getattr(t, name)(), None
    if k == 16:  # (python's t[i] += c: a getitem, an in-place add of the view, a setitem of it back)
        index = _index(rng, x)
        return f"x[{index}] += {c}", lambda L, t, o: _augmented(L, t, index, c), None
    if k == 17:
        return f"masked_fill_(x > 0, {c})", lambda L, t, o: t.masked_fill_(t.detach() > 0, c), None
    if k == 18 and x.dim() and x.shape[0]:
        rows = [int(i) for i in rng.integers(0, x.shape[0], 3)]
        acc = bool(rng.random() < 0.5)
        dtype = x.numpy(force=True).dtype
        return (f"index_put_(({rows},), {c}, accumulate={acc})",
                lambda L, t, o: t.index_put_((_tensor(L, np.array(rows)),), _tensor(L, np.array(c, dtype)),
                                             accumulate=acc), None)
    if k == 19:
        return f"sub_({c}).div_(1.5)", lambda L, t, o: t.sub_(c).div_(1.5), None
    if k == 20:
        return "sqrt_()", lambda L, t, o: t.sqrt_(), None
    if k == 21 and x.dim() <= 2:
        return "t_()", lambda L, t, o: t.t_(), None
    if k == 22 and x.dim():
        d = _dim(rng, x.dim())
        return f"squeeze_({d})", lambda L, t, o: t.squeeze_(d), None
    if k == 23:
        d = int(rng.integers(-x.dim() - 1, x.dim() + 1))
        return f"unsqueeze_({d})", lambda L, t, o: t.unsqueeze_(d), None
    if k == 24:  # (an in-place change no graph records: only the version counter sees it)
        return f"no_grad: add_({c})", lambda L, t, o: _no_grad_add(L, t, c), None
    if k == 25:
        return "detach_()", lambda L, t, o: t.detach_(), None
    if k == 26:  # (x[index] = another tensor: the gradient of the positions written goes to it)
        index = _index(rng, x)
        try:
            target = tuple(x[_as_index(torch, index)].shape)
        except (IndexError, RuntimeError):
            target = None
        fits = [i for i, o in others
                if target is not None and o.dtype == x.dtype and _broadcasts(tuple(o.shape), target)]
        if fits:
            j = fits[int(rng.integers(len(fits)))]
            return f"x[{index}] = h{j}", lambda L, t, o: _setitem(L, t, index, o), j
    return "abs_()", lambda L, t, o: t.abs_(), None


def _no_grad_add(L, t, c):
    with L.no_grad():
        return t.add_(c)


def _broadcasts(src, dst):
    try:
        return np.broadcast_shapes(src, dst) == dst
    except ValueError:
        return False


def _out_of_place_step(rng, x, others):
    """(description, fn(L, x, other) -> a new tensor, other's handle number or None)."""
    if not x.dtype.is_floating_point:
        if x.detach().view(torch.float64 if x.element_size() == 8 else torch.float32).isnan().any():
            return "clone()", lambda L, t, o: t.clone(), None  # (a NaN's bits: see _inplace_step)
        return "x + 1", lambda L, t, o: t + 1, None
    k = int(rng.integers(11))
    if k == 0:
        return "x * 2 + 1", lambda L, t, o: t * 2 + 1, None
    if k == 9 and x.dim() >= 2:
        return "x @ x.mT", lambda L, t, o: t @ t.mT, None
    if k == 10:
        return "mean()", lambda L, t, o: t.mean(), None
    if k == 1:
        return "exp()", lambda L, t, o: t.exp(), None
    if k == 2:
        return "sigmoid()", lambda L, t, o: t.sigmoid(), None
    if k == 3:
        return "contiguous()", lambda L, t, o: t.contiguous(), None
    if k == 4:
        return "clone()", lambda L, t, o: t.clone(), None
    if k == 5:
        return "detach()", lambda L, t, o: t.detach(), None
    if k == 6 and x.dim():
        d, keep = _dim(rng, x.dim()), bool(rng.random() < 0.7)
        name = ("sum", "mean", "amax")[int(rng.integers(3))]
        return f"{name}({d}, keepdim={keep})", lambda L, t, o: getattr(t, name)(d, keepdim=keep), None
    if k == 7 and x.dim() and x.shape[0]:
        rows = [int(i) for i in rng.integers(0, x.shape[0], 3)]
        return f"x[{rows}]", lambda L, t, o: t[_tensor(L, np.array(rows))], None
    fits = [i for i, o in others if o.dtype == x.dtype and _broadcasts(tuple(o.shape), tuple(x.shape))]
    if fits:
        j = fits[int(rng.integers(len(fits)))]
        return f"x * h{j}", lambda L, t, o: t * o, j
    return "tanh()", lambda L, t, o: t.tanh(), None


# ---------------------------------------------------------------- running a program in both and comparing
def _both(fn):
    """fn(L) in torch, then in distnn: {L: (True, result) or (False, error)}."""
    out = {}
    for L in (torch, distnn):
        try:
            out[L] = (True, fn(L))
        except Exception as e:  # noqa: BLE001 (any refusal is compared with torch's)
            out[L] = (False, e)
    return out


def _same_outcome(out, log):
    (t_ok, t_res), (d_ok, d_res) = out[torch], out[distnn]
    if t_ok and not d_ok and any(m in str(d_res) for m in LIMITATIONS):
        raise Limitation
    where = "\n  ".join(log)
    assert t_ok == d_ok, f"torch {'allowed' if t_ok else 'refused'} ({t_res if not t_ok else ''}), distnn " \
                         f"{'allowed' if d_ok else 'refused'} ({d_res if not d_ok else ''}):\n  {where}"
    if not t_ok:
        assert isinstance(d_res, type(t_res)), f"torch raised {t_res!r}, distnn {d_res!r}:\n  {where}"
    return t_ok


def _compare(h, log, layout=False):
    """One handle's distnn tensor against its torch tensor."""
    d, t = h["d"], h["t"]
    where = f"h{h['n']} = {h['desc']}\n  " + "\n  ".join(log)
    assert tuple(d.shape) == tuple(t.shape), f"shape {tuple(d.shape)} vs torch {tuple(t.shape)}: {where}"
    assert str(d.dtype).replace("distnn.", "") == str(t.dtype).replace("torch.", ""), f"dtype {d.dtype}: {where}"
    assert bool(d.requires_grad) == bool(t.requires_grad), f"requires_grad {d.requires_grad}: {where}"
    dv, tv = _np(distnn, d), _np(torch, t)
    if tv.dtype.kind == "i" and h["bits"]:  # (the bits of floats, view(dtype): compared as those floats)
        dv, tv = dv.view(f"float{tv.dtype.itemsize * 8}"), tv.view(f"float{tv.dtype.itemsize * 8}")
    if tv.dtype.kind == "f":
        tol = 1e-12 if tv.dtype == np.float64 else 1e-4  # (float32: exp of exp of ... amplifies an ulp)
        np.testing.assert_allclose(dv, tv, rtol=tol, atol=tol, equal_nan=True, err_msg=where)
    else:
        np.testing.assert_array_equal(dv, tv, err_msg=where)
    if layout:
        assert d.is_contiguous() == t.is_contiguous(), f"is_contiguous {d.is_contiguous()}: {where}"
        if t.numel():  # (size-1 dims: any stride is valid, numpy's and torch's differ)
            ds = [s for s, n in zip(d.stride(), t.shape) if n != 1]
            ts = [s for s, n in zip(t.stride(), t.shape) if n != 1]
            assert ds == ts, f"stride {d.stride()} vs torch {t.stride()}: {where}"


def _pick_step(rng, hs, i):
    h, others = hs[i], [(j, o["t"]) for j, o in enumerate(hs) if j != i]
    r = rng.random()
    if r < 0.45:
        step = _view_step(rng, h["t"])
        if step is not None:
            return "view", step[0], (lambda L, t, o, f=step[1]: f(L, t)), None
    if r < 0.8 and not h["ro"]:
        return ("inplace",) + _inplace_step(rng, h["t"], others, h["bits"])
    return ("new",) + _out_of_place_step(rng, h["t"], others)


def run_program(seed):
    """Run program ``seed`` in both; returns how it ended ("done", "limitation")."""
    rng = np.random.default_rng(seed)
    r = rng.random()
    dtype = "float64" if r < 0.6 else "float32" if r < 0.85 else "int64" if r < 0.95 else "int32"
    floating = dtype.startswith("float")
    grad = floating and bool(rng.random() < 0.5)
    shape = tuple(int(s) for s in rng.integers(1, 5, int(rng.integers(1, 4))))
    a = rng.uniform(-2, 2, shape).astype(dtype) if floating else rng.integers(-20, 20, shape).astype(dtype)
    leaf = {L: _tensor(L, a, grad) for L in (torch, distnn)}
    hs = [{"d": leaf[distnn].clone(), "t": leaf[torch].clone(), "ro": False, "n": 0, "desc": "leaf.clone()",
           "free": False, "bits": False}]
    log = [f"seed {seed}: leaf {dtype} {shape} requires_grad={grad}", "h0 = leaf.clone()"]
    try:
        for _ in range(int(rng.integers(3, STEPS + 1))):
            i = len(hs) - 1 if rng.random() < 0.5 else int(rng.integers(len(hs)))
            kind, desc, fn, j = _pick_step(rng, hs, i)
            src = {distnn: hs[i]["d"], torch: hs[i]["t"]}
            other = {L: (hs[j]["d" if L is distnn else "t"] if j is not None else None) for L in (torch, distnn)}
            line = f"h{len(hs)} = h{i}.{desc}" if kind != "inplace" else f"h{i}.{desc}"
            log.append(line)
            in_graph = hs[i]["t"].grad_fn is not None
            out = _both(lambda L: fn(L, src[L], other[L]))
            if hs[i]["free"] and desc.startswith("view(") and out[torch][0] != out[distnn][0]:
                return "layout"  # (view of a tensor whose layout is not compared: see the docstring)
            if not _same_outcome(out, log):
                log[-1] += "  (refused in both)"
            elif desc == "detach_()" and (in_graph or any(_shares_memory(h["t"], hs[i]["t"]) for h in hs
                                                          if h is not hs[i])):
                for h in hs:
                    _compare(h, log)
                return "detached base"  # (see the docstring)
            elif kind != "inplace":
                new = {"d": out[distnn][1], "t": out[torch][1], "n": len(hs), "desc": f"h{i}.{desc}",
                       "ro": hs[i]["ro"] or desc.startswith("expand") or desc.endswith("overlapping")}
                hs.append(new)
                # (the layouts not compared: see the docstring)
                # (contiguous() is row-major in both; clone() keeps its input's layout, compared where that is)
                src_t, src_d = hs[i]["t"], hs[i]["d"]
                free = desc != "contiguous()" and (hs[i]["free"] or kind == "new" and (
                    src_d.stride() != src_t.stride() if desc == "clone()" and hs[i]["ro"]
                    else desc != "clone()" and (hs[i]["ro"] or desc.startswith("x[[") and 1 in out[torch][1].shape and not (
                        src_t.is_contiguous() and src_t.numel()))))
                new["free"] = free  # (and the views of it, and what is computed from them)
                # (once memory was seen as another dtype, its integers may be bits of floats: all of them)
                new["bits"] = hs[0]["bits"] or new["t"].dtype != hs[i]["t"].dtype
                for h in hs:
                    h["bits"] = new["bits"]
                _compare(new, log, layout=not free)
            for h in hs:  # (every live tensor: writes through views reach the base, and the base's its views)
                _compare(h, log)
    except Limitation:
        return "limitation"
    if grad:
        _backward(hs, leaf, log)
    return "done"


def _backward(hs, leaf, log):
    recorded = [h for h in hs if h["t"].requires_grad and h["t"].dtype.is_floating_point]
    if not recorded:
        return
    log.append("loss = sum((h * w).sum() for the tensors that record gradients); loss.backward()")

    def loss(L):
        total = 0
        for h in recorded:
            t = h["d" if L is distnn else "t"]
            w = np.linspace(0.5, 1.5, max(t.numel(), 1))[:t.numel()].reshape(tuple(t.shape))
            total = total + (t * _tensor(L, w.astype(str(t.dtype).split(".")[-1]))).sum()
        total.backward()
        return total

    out = _both(loss)
    if _same_outcome(out, log):
        g_t, g_d = leaf[torch].grad, leaf[distnn].grad
        where = "\n  ".join(log)
        assert (g_t is None) == (g_d is None), f"leaf gradient {g_d} vs torch {g_t}:\n  {where}"
        if g_t is not None:
            tol = 1e-10 if g_t.dtype == torch.float64 else 1e-4
            np.testing.assert_allclose(_np(distnn, g_d), _np(torch, g_t), rtol=tol, atol=tol, equal_nan=True,
                                       err_msg=where)
    elif "modified by an inplace operation" in str(out[torch][1]):
        log.append("(refused in both: changed in place)")


@pytest.mark.parametrize("seed", range(START, START + CASES))
def test_view_inplace_program(seed):
    run_program(seed)


def test_programs_reach_their_end():
    """The fuzz compares something: most programs run to their loss (distnn's limitation stops the others)."""
    ends = [run_program(seed) for seed in range(40)]
    assert ends.count("done") >= 30, ends
