"""In-place changes through views while recording, the cases tests/test_view_inplace_torch.py leaves out, against
torch (the oracle): each program runs in both libraries (float64, complex128) and returns what is compared: the
values of the tensors, the leaves' gradients (rtol 1e-12), the graph nodes' names; or the refusal (the error's type
and message, word for word).

* views that are not element for element of their base: ``real``/``imag``/``view_as_real`` of a complex tensor,
  ``view_as_complex`` of a real one, an ``expand`` of a 0-d tensor, ``as_strided`` beyond its input's elements (within the storage), a view of an
  expanded tensor, ``view(dtype)`` (cut from the graph in both);
* a piece of ``unbind``/``split``/``chunk``/``split_with_sizes`` (or a view of one) used after its memory changed in
  place (refused, also when the change was made under no_grad);
* a view made under no_grad (of a base that records or not) whose memory is changed with grad mode on;
* an in-place op on an empty view of empty unfold windows, and the layout of a batched matmul (the view fuzz's seeds
  6653 and 10147).
"""
import numpy as np
import pytest

import distnn
from view_oracle import node_name as _name, outcome as _outcome, same_as_torch as _same, to_array as _np

torch = pytest.importorskip("torch")

X = np.random.default_rng(40).uniform(-1.5, 1.5, (2, 3))
Z = X + 1j * np.random.default_rng(41).uniform(-1.5, 1.5, (2, 3))


# ------------------------------------------------------------ views that are not element for element of their base
COMPLEX_VIEWS = {
    "real": lambda L, b: b.real,
    "imag": lambda L, b: b.imag,
    "view_as_real": lambda L, b: L.view_as_real(b),
    "real-row": lambda L, b: b.real[1],
    "imag-T": lambda L, b: b.imag.t(),
    "row-imag": lambda L, b: b[0].imag,
}


@pytest.mark.parametrize("change", ["view-mul", "view-mul-tensor", "view-setitem", "base-mul", "base-setitem"])
@pytest.mark.parametrize("view", list(COMPLEX_VIEWS))
def test_real_and_imag_of_a_complex_tensor_changed_in_place_as_torch(view, change):
    def program(L):
        z = L.tensor(Z, dtype=L.complex128, requires_grad=True)
        w = L.tensor(X[1], dtype=L.float64, requires_grad=True)
        b = z * (1.5 - 0.5j)
        v = COMPLEX_VIEWS[view](L, b)
        if change == "view-mul":
            v.mul_(3.0)
        elif change == "view-mul-tensor":
            v.mul_(L.ones(tuple(v.shape), dtype=L.float64) * w.sum())
        elif change == "view-setitem":
            v[0] = w.sum() * 2.0
        elif change == "base-mul":
            b.mul_(2.0 + 1.0j)
        else:
            b[1] = z[0] * z[1]
        loss = (b * b.conj()).real.sum() + (v * v).sum() * 0.5
        loss.backward()
        return [_name(b), _name(v), _np(L, b), _np(L, v), _np(L, z.grad), _np(L, w.grad)]

    _same(program)


@pytest.mark.parametrize("change", ["view-mul", "view-mul-tensor", "view-setitem", "base-mul", "row-of-view"])
def test_view_as_complex_of_a_real_tensor_changed_in_place_as_torch(change):
    def program(L):
        x = L.tensor(np.arange(1.0, 9.0).reshape(4, 2) / 3.0, dtype=L.float64, requires_grad=True)
        w = L.tensor(np.array([0.5, 2.0]), dtype=L.float64, requires_grad=True)
        b = x * 2.0
        c = L.view_as_complex(b)
        if change == "view-mul":
            c.mul_(0.5 + 1j)
        elif change == "view-mul-tensor":
            c.mul_(L.view_as_complex(w))
        elif change == "view-setitem":
            c[1] = L.view_as_complex(w * 3.0)
        elif change == "base-mul":
            b.mul_(w)
        else:
            c[2:].mul_(L.view_as_complex(w) * 1j)
        loss = (b * b).sum() + (c * c.conj()).real.sum() * 0.5 + (c.real * c.imag).sum()
        loss.backward()
        return [_name(b), _name(c), _np(L, c), _np(L, x.grad), _np(L, w.grad)]

    _same(program)


@pytest.mark.parametrize("shape", [(3,), (2, 1), (2, 3), (1,)], ids=["3", "2x1", "2x3", "1"])
@pytest.mark.parametrize("through", ["base", "sibling-view", "view-of-expand"])
def test_expand_of_a_zero_dim_tensor_whose_base_changes_as_torch(shape, through):
    def program(L):
        x = L.tensor(1.25, dtype=L.float64, requires_grad=True)
        w = L.tensor(0.5, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        e = b.expand(*shape)
        sub = e.reshape(-1)[:1] if through == "view-of-expand" else e
        if through == "sibling-view":
            b.unsqueeze(0).mul_(w)
        else:
            b.mul_(w)
        loss = (b * b).sum() + (e * e).sum() + (sub * 3.0).sum()
        loss.backward()
        return [_name(b), _name(e), _name(sub), _np(L, e), _np(L, x.grad), _np(L, w.grad)]

    _same(program)


def test_expand_of_a_zero_dim_tensor_written_itself_is_refused_as_torch():
    def program(L):
        b = L.tensor(1.25, dtype=L.float64, requires_grad=True) * 2.0
        b.expand(3).mul_(2.0)

    assert _same(program)[0] is RuntimeError


# (a piece of the storage of ``b`` (6 elements): ``s = b[1:4]``, then ``s.as_strided(...)`` reaching outside ``s``)
STRIDED = {"before": ((2,), (1,), 0), "after": ((2,), (1,), 4), "over": ((3,), (2,), 0), "2d": ((2, 2), (1, 2), 1),
           "within": ((2,), (1,), 2)}


@pytest.mark.parametrize("write", ["strided", "strided-setitem", "input", "root", "view-of-strided"])
@pytest.mark.parametrize("geometry", list(STRIDED))
def test_as_strided_beyond_its_input_changed_in_place_as_torch(geometry, write):
    def program(L):
        x = L.tensor(np.arange(1.0, 7.0), dtype=L.float64, requires_grad=True)
        w = L.tensor(0.75, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        s = b[1:4]
        v = s.as_strided(*STRIDED[geometry])
        if write == "strided":
            v.mul_(w)
        elif write == "strided-setitem":
            v[0] = w * 4.0
        elif write == "input":
            s.mul_(w)
        elif write == "root":
            b.mul_(w)
        else:
            v.reshape(-1)[-1:].mul_(w)
        loss = (b * b).sum() + (v * v).sum() * 0.5 + (s * s * s).sum()
        loss.backward()
        return [_name(b), _name(s), _name(v), _np(L, v), _np(L, x.grad), _np(L, w.grad)]

    _same(program)


@pytest.mark.parametrize("write", ["transpose", "root", "select"])
def test_a_view_of_an_expanded_tensor_when_its_memory_changes_as_torch(write):
    def program(L):
        x = L.tensor(X[:, :1].reshape(2, 1, 1), dtype=L.float64, requires_grad=True)
        b = x * 2.0
        e = b.expand(1, 2, 3, 3)
        u = e.unflatten(0, (-1, 1, 1))
        n = e[0, :, 1:]
        {"transpose": lambda: b.transpose(-2, -1).exp_(), "root": lambda: b.mul_(x), "select": lambda: b[1].add_(x[0])}[
            write]()
        loss = (b * b).sum() + (u * u).sum() + (n * 3.0).sum()
        loss.backward()
        return [_name(b), _name(u), _name(n), _np(L, u), _np(L, x.grad)]

    _same(program)


@pytest.mark.parametrize("to", ["int64", "complex64"])
@pytest.mark.parametrize("write", ["dtype-view", "base", "slice"])
def test_view_dtype_of_a_tensor_that_records_stays_out_of_the_graph_as_torch(to, write):
    """``view(dtype)`` is not differentiable in either: a change through it reaches the values, not the graph."""
    def program(L):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        t = b.t()
        v = b.view(getattr(L, to))
        if write == "dtype-view":
            v.mul_(2)
        elif write == "base":
            b.mul_(x)
        else:
            b[0].mul_(x[1])
        (b * b).sum().backward()
        return [v.requires_grad, _name(v), _name(b), _np(L, b), _np(L, x.grad)] + ([_name(t)] if write != "dtype-view"
                                                                                  else [])

    _same(program)


# ------------------------------------------------------------ pieces of split/unbind used after their memory changed
PIECES = {"unbind": lambda t: t.unbind(0), "split": lambda t: t.split(1, 0), "chunk": lambda t: t.chunk(2, 0),
          "split_with_sizes": lambda t: t.split_with_sizes([1, 1], 0), "unbind-1": lambda t: t.unbind(1)}


@pytest.mark.parametrize("use", ["grad_fn", "mul", "backward"])
@pytest.mark.parametrize("which", ["piece", "view-of-piece", "second-piece"])
@pytest.mark.parametrize("change", ["base", "sibling-view", "other-piece-no-grad", "base-no-grad"])
@pytest.mark.parametrize("op", list(PIECES))
def test_a_piece_used_after_its_memory_changed_in_place_is_refused_as_torch(op, change, which, use):
    def program(L):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        pieces = PIECES[op](b)
        piece = pieces[1] if which == "second-piece" else pieces[0]
        target = piece[1:] if which == "view-of-piece" else piece
        if change == "base":
            b.mul_(3.0)
        elif change == "sibling-view":
            b.t()[0].add_(x[:, 0])
        else:
            with L.no_grad():
                (pieces[-1] if change == "other-piece-no-grad" else b).add_(1.0)
        if use == "grad_fn":
            return [_name(target)]
        if use == "mul":
            return [_name(target * 2.0)]
        (b.sum() + target.sum()).backward()
        return [_np(L, x.grad)]

    assert _same(program)[0] is RuntimeError


@pytest.mark.parametrize("use", ["grad_fn", "mul"])
def test_a_view_of_a_piece_made_after_a_refused_write_of_the_piece_as_torch(use):
    """(the view fuzz's seed 12298) the piece's own write is refused; a view of it made then; its base's write is
    allowed, and the view is refused from then on."""
    def program(L):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        piece = b.chunk(3, 1)[0]
        refused = _outcome(L, lambda L: piece.sqrt_())[0]
        sub = piece[1:]
        early = sub.sigmoid()
        b.exp_()
        late = _outcome(L, lambda L: _name(sub) if use == "grad_fn" else _name(sub * 2.0))
        return [refused, _name(b), _name(early), late]

    assert _same(program)[0] == "ok"


def test_pieces_that_record_nothing_may_be_used_after_a_change_as_torch():
    def program(L):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        first, second = b.unbind(0)
        early = first + second  # (built before the change, saving neither piece: its graph is not refused)
        b.mul_(x)
        plain = (x.detach() * 2.0).chunk(2, 0)  # (pieces of a tensor that records nothing)
        plain[0].add_(1.0)
        late = plain[0] * plain[1] * x[0]
        (early.sum() + b.sum() + late.sum()).backward()
        return [_name(b), _np(L, late), _np(L, x.grad)]

    assert _same(program)[0] == "ok"


def test_a_graph_that_saved_a_piece_is_refused_after_a_change_as_torch():
    """torch names the piece (its unpacking re-makes the piece's node), distnn the version check: both refuse."""
    def program(L):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        first, second = b.unbind(0)
        early = first * second
        b.mul_(x)
        early.sum().backward()

    ref, ours = _outcome(torch, program), _outcome(distnn, program)
    assert ref[0] is RuntimeError and ours[0] is RuntimeError


# ------------------------------------------------------------ views made under no_grad
@pytest.mark.parametrize("change", ["view-mul-w", "view-mul-number", "base-row-mul-w", "base-mul-w", "base-mul-number",
                                    "base-no-grad"])
@pytest.mark.parametrize("base", ["records", "plain"])
def test_a_view_made_under_no_grad_whose_memory_changes_as_torch(base, change):
    def program(L):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        w = L.tensor(X[0], dtype=L.float64, requires_grad=True)
        b = x * 2.0 if base == "records" else L.tensor(X, dtype=L.float64)
        with L.no_grad():
            v = b[1]
        if change == "view-mul-w":
            v.mul_(w)
        elif change == "view-mul-number":
            v.mul_(2.0)
        elif change == "base-row-mul-w":
            b[0].mul_(w)
        elif change == "base-mul-w":
            b.mul_(w)
        elif change == "base-mul-number":
            b.mul_(2.0)
        else:
            with L.no_grad():
                b.mul_(2.0)
        y = v * w
        y.sum().backward()
        return [_name(b), _name(y), _np(L, v), _np(L, w.grad)]

    _same(program)


@pytest.mark.parametrize("write", ["view-no-grad", "base-no-grad", "int-view", "plain-memory"])
def test_views_whose_memory_changed_without_recording_are_renamed_as_torch(write):
    """A change that records nothing (under no_grad, through a ``view(dtype)``) leaves the graph as it was; the views
    of that memory that record are re-made from their base's node at their next ``grad_fn``: AsStridedBackward0.
    (An op that takes such a view re-makes it too: tests/test_view_unrecorded_write_next_functions_torch.py.)"""
    def program(L):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        row, t, d = b[1], b.t(), b.diagonal()
        if write == "view-no-grad":
            with L.no_grad():
                row.mul_(2.0)
        elif write == "base-no-grad":
            with L.no_grad():
                b.add_(1.0)
        elif write == "int-view":
            b.view(L.int64).add_(1)
        else:
            L.tensor(X, dtype=L.float64).t()[0].mul_(2.0)  # (memory no graph sees: nothing renamed)
        names = [_name(b), _name(row), _name(t), _name(d)]  # (before backward: distnn's freed nodes keep theirs)
        y = row * t[:, 0]
        loss = (y.sum() + (b * d.sum()).sum())
        loss.backward()
        return names + [_name(y), _np(L, x.grad)]

    _same(program)


# ------------------------------------------------------------ the view fuzz's seeds 6653 and 10147
def test_an_in_place_op_on_an_empty_slice_of_empty_unfold_windows_as_torch():
    def program(L):
        x = L.tensor(np.arange(64.0).reshape(4, 4, 4), dtype=L.float64, requires_grad=True)
        b = x * 1.5
        windows = b.unfold(1, 0, 1)
        empty = windows[:, :, 4:-1:2]
        empty.mul_(2.0)
        (b * 1.0).sum().backward()
        return [tuple(empty.shape), _name(empty), _name(b), _np(L, x.grad)]

    assert _same(program)[0] == "ok"


@pytest.mark.parametrize("case", ["permuted-batch", "mT-of-itself", "batch-and-matrix", "broadcast-batch"])
def test_layout_of_a_batched_matmul_as_torch(case):
    def program(L):
        a = L.tensor(np.arange(4.0).reshape(2, 2), dtype=L.float64).permute(1, 0)[:, None].unflatten(2, (2, 1, 1))
        if case == "mT-of-itself":
            out = a @ a.mT
        else:
            # (3, 4, 2), its batch dims not row-major
            p = L.tensor(np.arange(24.0).reshape(4, 3, 2), dtype=L.float64).permute(1, 0, 2)
            q = L.tensor(np.arange(6.0).reshape(2, 3), dtype=L.float64)
            out = {"permuted-batch": lambda: p @ p.mT, "batch-and-matrix": lambda: p @ q,
                   "broadcast-batch": lambda: p.unsqueeze(0) @ q.expand(2, 1, 2, 3)}[case]()
        return [tuple(out.shape), out.is_contiguous(), tuple(out.stride()), _np(L, out)]

    _same(program)
