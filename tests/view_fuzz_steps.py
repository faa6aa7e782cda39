"""The steps of tests/test_view_inplace_fuzz_torch.py's random programs, each drawn from a generator and done on
distnn and torch alike: a view (view_step), an in-place change (inplace_step), an out-of-place op
(out_of_place_step), with the helpers they share (Limitation: a difference distnn documents)."""
from __future__ import annotations

import numpy as np
import pytest

import distnn


torch = pytest.importorskip("torch")
INT_OF = {"float64": "int64", "float32": "int32", "int64": "float64", "int32": "float32"}


def lib_dtype(L, name):
    return getattr(L, name)


def make_tensor(L, a, grad=False):
    if L is torch:
        return torch.tensor(a, requires_grad=grad)
    return distnn.Tensor(a.copy(), requires_grad=grad)


def as_numpy(L, t):
    if L is torch:
        return t.detach().cpu().numpy()
    return np.asarray(t.detach().data if isinstance(t, distnn.Tensor) else t)  # (distnn's .grad: an array)


def random_dim(rng, nd):
    return int(rng.integers(-nd, nd)) if nd else 0


def view_step(rng, x):
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
        d0, d1 = random_dim(rng, nd), random_dim(rng, nd)
        return f"transpose({d0}, {d1})", lambda L, t: t.transpose(d0, d1)
    if k == 3:
        return "t()", lambda L, t: t.t()
    if k == 4 and nd:
        perm = [int(p) for p in rng.permutation(nd)]
        return f"permute({perm})", lambda L, t: t.permute(*perm)
    if k == 5 and nd >= 2:
        off, d1, d2 = int(rng.integers(-2, 3)), random_dim(rng, nd), random_dim(rng, nd)
        return f"diagonal({off}, {d1}, {d2})", lambda L, t: t.diagonal(off, d1, d2)
    if k == 6:
        d = int(rng.integers(-nd - 1, nd + 1))
        return f"unsqueeze({d})", lambda L, t: t.unsqueeze(d)
    if k == 7:
        if nd and rng.random() < 0.6:
            d = random_dim(rng, nd)
            return f"squeeze({d})", lambda L, t: t.squeeze(d)
        return "squeeze()", lambda L, t: t.squeeze()
    if k == 8:
        new = [int(rng.integers(1, 3))] + [s if s != 1 or rng.random() < 0.5 else 3 for s in shape]
        if rng.random() < 0.5:
            new = new[1:]
        return f"expand({new})", lambda L, t: t.expand(*new)
    if k in (9, 10):
        method = "view" if k == 9 else "reshape"
        new = new_shape(rng, x.numel())
        return f"{method}({new})", lambda L, t: getattr(t, method)(*new)
    if k == 11:
        a, b = (sorted(random_dim(rng, nd) for _ in range(2)) if nd else (0, -1))
        return f"flatten({a}, {b})", lambda L, t: t.flatten(a, b)
    if k == 12 and nd:
        d = int(rng.integers(nd))
        sizes = new_shape(rng, shape[d], max_dims=3)
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
            return f"split({n}, {d})[{j}]", lambda L, t: piece_of(L, t, t.split(n, d), j, d)
        return f"chunk({n}, {d})[{j}]", lambda L, t: piece_of(L, t, t.chunk(n, d), j, d)
    if k == 16:
        name = INT_OF[str(x.dtype).replace("torch.", "")]
        return f"view({name})", lambda L, t: t.view(lib_dtype(L, name))
    if k == 17 and nd:
        a, b = random_dim(rng, nd), random_dim(rng, nd)
        if rng.random() < 0.5:
            return f"movedim({a}, {b})", lambda L, t: t.movedim(a, b)
        return f"swapaxes({a}, {b})", lambda L, t: t.swapaxes(a, b)
    if k == 18:
        idx = [(None,), (Ellipsis, None), (slice(None), None), (None, Ellipsis, None)][int(rng.integers(4))]
        return f"x[{idx}]", lambda L, t: t[idx]
    if k == 19 and nd:
        d, j = random_dim(rng, nd), int(rng.integers(0, 3))
        return f"unbind({d})[{j}]", lambda L, t: t.unbind(d)[j]
    if k == 20 and nd:
        # (T of other than a matrix is deprecated in torch)
        if nd == 2:
            return "T", lambda L, t: t.T
        return ("mT", lambda L, t: t.mT) if nd > 2 else ("t()", lambda L, t: t.t())
    return None


def piece_of(L, t, pieces, j, d):
    """Piece ``j`` of a split (an IndexError past the last piece, in both)."""
    return pieces[j]


def new_shape(rng, numel, max_dims=4):
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


def random_index(rng, x):
    """An index for ``x[index] = v``: basic, a boolean mask, or an integer list."""
    shape, nd = tuple(x.shape), x.dim()
    r = rng.random()
    if nd and r < 0.4:
        d = int(rng.integers(nd))
        if rng.random() < 0.5 and shape[d]:
            return (slice(None),) * d + (int(rng.integers(shape[d])),)
        return (slice(None),) * d + (slice(int(rng.integers(0, shape[d] + 1)), None, int(rng.integers(1, 3))),)
    if r < 0.7:
        return ("mask", as_numpy(torch, x) > 0.3)
    if nd and shape[0]:
        return ("list", [int(i) for i in rng.integers(0, shape[0], int(rng.integers(1, 4)))])
    return (Ellipsis,)


def as_index(L, index):
    if isinstance(index[0], str):
        kind, a = index
        return make_tensor(L, a) if kind == "mask" else make_tensor(L, np.array(a))
    return index


def setitem(L, t, index, value):
    t[as_index(L, index)] = value
    return t


def augmented(L, t, index, c):
    t[as_index(L, index)] += c
    return t


def shares_memory(a, b):
    """Whether torch tensors ``a`` and ``b`` view one storage."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def inplace_step(rng, x, others, float_bits=False):
    """(description, fn(L, x, other) -> x, other's handle number or None) for an in-place change of ``x``
    (``float_bits``: its integers may be the bits of floats, see the docstring)."""
    others = [(i, o) for i, o in others if not shares_memory(o, x)]  # (see the docstring)
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
        index = random_index(rng, x)
        return f"x[{index}] = {c}", lambda L, t, o: setitem(L, t, index, c), None
    if k == 7:
        e = float(rng.choice([2.0, 0.5, 3.0]))
        return f"**= {e}", lambda L, t, o: t.__ipow__(e), None
    if k == 8:
        lo, hi = sorted(float(v) for v in rng.uniform(-1, 1, 2))
        return f"clamp_({lo:.3}, {hi:.3})", lambda L, t, o: t.clamp_(lo, hi), None
    if k in (9, 10, 11, 27, 28, 29):
        fits = [i for i, o in others if o.dtype == x.dtype and broadcasts(tuple(o.shape), tuple(x.shape))]
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
        index = random_index(rng, x)
        return f"x[{index}] += {c}", lambda L, t, o: augmented(L, t, index, c), None
    if k == 17:
        return f"masked_fill_(x > 0, {c})", lambda L, t, o: t.masked_fill_(t.detach() > 0, c), None
    if k == 18 and x.dim() and x.shape[0]:
        rows = [int(i) for i in rng.integers(0, x.shape[0], 3)]
        acc = bool(rng.random() < 0.5)
        dtype = x.numpy(force=True).dtype
        return (f"index_put_(({rows},), {c}, accumulate={acc})",
                lambda L, t, o: t.index_put_((make_tensor(L, np.array(rows)),), make_tensor(L, np.array(c, dtype)),
                                             accumulate=acc), None)
    if k == 19:
        return f"sub_({c}).div_(1.5)", lambda L, t, o: t.sub_(c).div_(1.5), None
    if k == 20:
        return "sqrt_()", lambda L, t, o: t.sqrt_(), None
    if k == 21 and x.dim() <= 2:
        return "t_()", lambda L, t, o: t.t_(), None
    if k == 22 and x.dim():
        d = random_dim(rng, x.dim())
        return f"squeeze_({d})", lambda L, t, o: t.squeeze_(d), None
    if k == 23:
        d = int(rng.integers(-x.dim() - 1, x.dim() + 1))
        return f"unsqueeze_({d})", lambda L, t, o: t.unsqueeze_(d), None
    if k == 24:  # (an in-place change no graph records: only the version counter sees it)
        return f"no_grad: add_({c})", lambda L, t, o: no_grad_add(L, t, c), None
    if k == 25:
        return "detach_()", lambda L, t, o: t.detach_(), None
    if k == 26:  # (x[index] = another tensor: the gradient of the positions written goes to it)
        index = random_index(rng, x)
        try:
            target = tuple(x[as_index(torch, index)].shape)
        except (IndexError, RuntimeError):
            target = None
        fits = [i for i, o in others
                if target is not None and o.dtype == x.dtype and broadcasts(tuple(o.shape), target)]
        if fits:
            j = fits[int(rng.integers(len(fits)))]
            return f"x[{index}] = h{j}", lambda L, t, o: setitem(L, t, index, o), j
    return "abs_()", lambda L, t, o: t.abs_(), None


def no_grad_add(L, t, c):
    with L.no_grad():
        return t.add_(c)


def broadcasts(src, dst):
    try:
        return np.broadcast_shapes(src, dst) == dst
    except ValueError:
        return False


def out_of_place_step(rng, x, others):
    """(description, fn(L, x, other) -> a new tensor, other's handle number or None)."""
    if not x.dtype.is_floating_point:
        if x.detach().view(torch.float64 if x.element_size() == 8 else torch.float32).isnan().any():
            return "clone()", lambda L, t, o: t.clone(), None  # (a NaN's bits: see inplace_step)
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
        d, keep = random_dim(rng, x.dim()), bool(rng.random() < 0.7)
        name = ("sum", "mean", "amax")[int(rng.integers(3))]
        return f"{name}({d}, keepdim={keep})", lambda L, t, o: getattr(t, name)(d, keepdim=keep), None
    if k == 7 and x.dim() and x.shape[0]:
        rows = [int(i) for i in rng.integers(0, x.shape[0], 3)]
        return f"x[{rows}]", lambda L, t, o: t[make_tensor(L, np.array(rows))], None
    fits = [i for i, o in others if o.dtype == x.dtype and broadcasts(tuple(o.shape), tuple(x.shape))]
    if fits:
        j = fits[int(rng.integers(len(fits)))]
        return f"x * h{j}", lambda L, t, o: t * o, j
    return "tanh()", lambda L, t, o: t.tanh(), None
