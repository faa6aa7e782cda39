"""In-place changes through views made by any view op while recording, against torch (the oracle).

PyTorch's design, which distnn follows: a view remembers its base; an in-place change of the view gives the base a
``CopySlices`` node (the change's backward on the view's region, the base's gradient passed through elsewhere) and
re-makes the node of every live view of that memory from the base's (``AsStridedBackward0``); a change of the base
re-makes its views' nodes the same way. Each case runs the same program on both libraries (float64) and compares
the values of the base and the views, the gradients of the leaves (rtol 1e-12) and the nodes' names.

Also PyTorch's refusals, message for message: a piece of ``unbind``/``split``/``chunk``/``split_with_sizes`` (or a
view of one) changed in place while recording; an expanded view whose elements share memory; a view of a leaf
that requires grad. And the version check still refuses a backward that needs a value changed through a view.
"""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

SHAPE = (2, 3, 4)
RNG = np.random.default_rng(39)
X0 = RNG.uniform(-1.5, 1.5, SHAPE)
C_BASE = RNG.uniform(0.5, 1.5, SHAPE)

# name -> the view of a (2, 3, 4) tensor (the same call in both libraries); chains of two or three views
VIEWS = {
    "view": lambda L, t: t.view(6, 4),
    "reshape": lambda L, t: t.reshape(4, 6),
    "flatten": lambda L, t: t.flatten(),
    "unflatten": lambda L, t: t.unflatten(2, (2, 2)),
    "view_as": lambda L, t: t.view_as(L.zeros(3, 8, dtype=L.float64)),
    "permute": lambda L, t: t.permute(2, 0, 1),
    "transpose": lambda L, t: t.transpose(0, 2),
    "swapaxes": lambda L, t: t.swapaxes(1, 2),
    "movedim": lambda L, t: t.movedim(0, -1),
    "mT": lambda L, t: t.mT,
    "unsqueeze": lambda L, t: t.unsqueeze(1),
    "as_strided": lambda L, t: t.as_strided((3, 2), (1, 8), 1),
    "narrow": lambda L, t: t.narrow(2, 1, 2),
    "select": lambda L, t: t.select(1, 2),
    "diagonal": lambda L, t: t.diagonal(0, 1, 2),
    "unfold": lambda L, t: t.unfold(2, 2, 2),
    "index": lambda L, t: t[1, :, ::2],
    "narrow-squeeze": lambda L, t: t.narrow(1, 1, 1).squeeze(1),
    "select-T": lambda L, t: t[0].T,
    "transpose-index": lambda L, t: t.transpose(0, 1)[1:],
    "index-unsqueeze-permute": lambda L, t: t[:, 1].unsqueeze(0).permute(2, 1, 0),
    "reshape-transpose-narrow": lambda L, t: t.reshape(6, 4).t().narrow(1, 2, 3),
    "select-t-unsqueeze": lambda L, t: t.select(0, 1).t().unsqueeze(0),
    "expand-of-size-1": lambda L, t: t.unsqueeze(0).expand(1, 2, 3, 4),
    "expand_as-itself": lambda L, t: t[:, 1:].expand_as(t[:, 1:]),
    "diagonal-unsqueeze": lambda L, t: t.diagonal(1, 0, 2).unsqueeze(-1),
    "view-of-view-view": lambda L, t: t.view(24).view(4, 6).view(2, 12),
}


def _value_leaf(L, shape, seed):
    a = np.random.default_rng(seed).uniform(-1.0, 1.0, shape)
    return L.tensor(a, dtype=L.float64, requires_grad=True)


def _setitem(L, v, w):
    v[0] = w[0] * 2.0


# name -> the in-place change of the view ``v`` (``w``: a leaf of v's shape that requires grad)
CHANGES = {
    "mul_": lambda L, v, w: v.mul_(2.5),
    "add_": lambda L, v, w: v.add_(w),
    "mul_tensor": lambda L, v, w: v.mul_(w),
    "copy_": lambda L, v, w: v.copy_(w * 3.0),
    "zero_": lambda L, v, w: v.zero_(),
    "clamp_": lambda L, v, w: v.clamp_(-0.5, 1.0),
    "sigmoid_": lambda L, v, w: v.sigmoid_(),
    "exp_": lambda L, v, w: v.exp_(),
    "setitem": lambda L, v, w: _setitem(L, v, w),
}


def _program(L, view, change, loss, through="view"):
    """leaf -> base (an op's result) -> a view of it, and a sibling view; the view (or the base) changed in place;
    a loss of the base, the view and the sibling. Returns what is compared."""
    x = L.tensor(X0, dtype=L.float64, requires_grad=True)
    base = x * 1.5 + 0.25
    v = VIEWS[view](L, base)
    sibling = base.permute(1, 2, 0)  # (a live view the change must reach too)
    w = _value_leaf(L, tuple(v.shape) if through == "view" else SHAPE, 1)
    CHANGES[change](L, v if through == "view" else base, w)
    names = (base.grad_fn.name(), v.grad_fn.name(), sibling.grad_fn.name())
    c_view = L.tensor(np.linspace(0.5, 1.5, v.numel()).reshape(tuple(v.shape)), dtype=L.float64)
    terms = {"base": (base * L.tensor(C_BASE, dtype=L.float64)).sum(), "view": (v * v * c_view).sum(),
             "sibling": sibling.sum() * 0.5}
    total = sum(terms[k] for k in loss)
    total.backward()
    grads = [np.array(g.detach().numpy() if L is torch else g.data) if g is not None else None
             for g in (x.grad, w.grad)]
    values = [np.array(t.detach().numpy() if L is torch else t.data) for t in (base, v, sibling)]
    return names, values, grads


def _check(view, change, loss, through="view"):
    ref, ours = _program(torch, view, change, loss, through), _program(distnn, view, change, loss, through)
    assert ours[0] == ref[0], f"nodes (base, view, sibling) {ours[0]} vs torch {ref[0]}"
    for got, want in zip(ours[1], ref[1]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    for got, want in zip(ours[2], ref[2]):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("view", list(VIEWS))
def test_in_place_change_of_a_view_reaches_the_base_and_its_graph_as_torch(view, change):
    _check(view, change, ("base", "view", "sibling"))


@pytest.mark.parametrize("loss", [("view",), ("base",), ("sibling",)])
@pytest.mark.parametrize("view", ["transpose", "reshape", "diagonal", "reshape-transpose-narrow", "as_strided"])
def test_the_loss_of_the_view_alone_or_of_the_base_alone_as_torch(view, loss):
    _check(view, "mul_tensor", loss)


@pytest.mark.parametrize("change", ["mul_tensor", "exp_", "setitem", "copy_"])
@pytest.mark.parametrize("view", list(VIEWS))
def test_in_place_change_of_the_base_re_makes_its_views_as_torch(view, change):
    _check(view, change, ("base", "view", "sibling"), through="base")


def _outcome(L, program):
    try:
        program(L)
    except Exception as e:  # noqa: BLE001 (the refusal is compared with torch's)
        return type(e), str(e)
    return None


def _pieces(op):
    return {"unbind": lambda t: t.unbind(1), "split": lambda t: t.split(1, 1), "split_sizes": lambda t: t.split([1, 2], 1),
            "chunk": lambda t: t.chunk(3, 1), "split_with_sizes": lambda t: t.split_with_sizes([2, 1], 1),
            "chunk_one": lambda t: t.chunk(1, 0)}[op]


@pytest.mark.parametrize("sub", [False, True], ids=["piece", "view-of-piece"])
@pytest.mark.parametrize("op", ["unbind", "split", "split_sizes", "chunk", "split_with_sizes", "chunk_one"])
def test_a_piece_of_a_multi_output_view_op_changed_in_place_is_refused_as_torch(op, sub):
    def program(L):
        x = L.tensor(X0, dtype=L.float64, requires_grad=True)
        piece = _pieces(op)(x * 2.0)[1 if op != "chunk_one" else 0]
        (piece[0] if sub else piece).mul_(3.0)

    ref, ours = _outcome(torch, program), _outcome(distnn, program)
    assert ref is not None and ours == ref


@pytest.mark.parametrize("op", ["unbind", "split", "chunk"])
def test_a_piece_changed_in_place_without_recording_is_allowed_as_torch(op):
    def program(L):
        x = L.tensor(X0, dtype=L.float64, requires_grad=True)
        with L.no_grad():
            piece = _pieces(op)(x * 2.0)[0]
            piece.mul_(3.0)
        y = x * 1.0
        pieces = _pieces(op)(y.detach())  # (pieces of a tensor that records nothing)
        pieces[0].add_(1.0)
        return np.array(pieces[0].numpy() if L is torch else pieces[0].data)

    np.testing.assert_array_equal(program(distnn), program(torch))


def test_tensor_split_pieces_are_ordinary_views_as_torch():
    ref, ours = _program_tensor_split(torch), _program_tensor_split(distnn)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def _program_tensor_split(L):
    x = L.tensor(X0, dtype=L.float64, requires_grad=True)
    base = x * 2.0
    first, second = base.tensor_split(2, 2)
    second.mul_(x[..., 2:])
    ((base * base).sum() + first.sum()).backward()
    return np.array(x.grad.numpy() if L is torch else x.grad.data)


@pytest.mark.parametrize("case", ["expand", "expand_of_view", "leaf_view", "leaf_view_chain"])
def test_refusals_of_overlapping_and_leaf_views_as_torch(case):
    def program(L):
        x = L.tensor(X0, dtype=L.float64, requires_grad=True)
        if case == "expand":
            (x * 2.0)[:, :1].expand(2, 3, 4).mul_(2.0)
        elif case == "expand_of_view":
            (x * 2.0).select(0, 0).unsqueeze(0).expand(3, 3, 4).add_(1.0)
        elif case == "leaf_view":
            x.transpose(0, 1).mul_(2.0)
        else:
            x.reshape(6, 4)[1:].unsqueeze(0).zero_()

    ref, ours = _outcome(torch, program), _outcome(distnn, program)
    assert ref is not None and ours == ref


@pytest.mark.parametrize("case", ["t-number", "index-number", "t-tensor", "leaf-t", "chain-number", "view-of-grad-view"])
def test_a_view_made_under_no_grad_changed_with_grad_mode_on_is_refused_as_torch(case):
    def program(L):
        x = L.tensor(X0, dtype=L.float64, requires_grad=True)
        base = x if case == "leaf-t" else x * 2.0
        outer = base.transpose(0, 1) if case == "view-of-grad-view" else base
        with L.no_grad():
            v = {"index-number": lambda: outer[1], "chain-number": lambda: outer.reshape(6, 4).t()[1:]}.get(
                case, lambda: outer.transpose(0, 2))()
        if case == "t-tensor":
            v.mul_(L.tensor(np.ones(tuple(v.shape)), dtype=L.float64, requires_grad=True))
        else:
            v.mul_(2.0)

    ref, ours = _outcome(torch, program), _outcome(distnn, program)
    assert ref is not None and ours == ref


def test_a_view_made_and_changed_under_no_grad_is_allowed_as_torch():
    def program(L):
        x = L.tensor(X0, dtype=L.float64, requires_grad=True)
        base = x * 2.0
        with L.no_grad():
            base.transpose(0, 2).mul_(3.0)
        (base * base).sum().backward()
        return [np.array(t.detach().numpy() if L is torch else t.data) for t in (base, x.grad)]

    for got, want in zip(program(distnn), program(torch)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("view", ["transpose", "reshape", "narrow", "diagonal"])
def test_a_value_backward_needs_changed_through_a_view_is_still_refused(view):
    """``exp`` keeps its output for backward: a change of it through any view makes the backward refuse, in both
    (torch: "modified by an inplace operation"; distnn: "changed in place after the forward pass")."""
    def program(L):
        x = L.tensor(X0, dtype=L.float64, requires_grad=True)
        e = (x * 1.0).exp()
        VIEWS[view](L, e).mul_(2.0)  # (allowed: refused at backward)
        e.sum().backward()

    ref, ours = _outcome(torch, program), _outcome(distnn, program)
    assert ref is not None and ref[0] is RuntimeError and "modified by an inplace operation" in ref[1]
    assert ours is not None and ours[0] is RuntimeError and "changed in place after the forward pass" in ours[1]


@pytest.mark.parametrize("change", ["mul_", "setitem"])
@pytest.mark.parametrize("view", ["transpose", "reshape-transpose-narrow", "diagonal", "select-T"])
def test_second_order_through_a_rebased_view_as_torch(view, change):
    """``create_graph=True`` through the CopySlices and AsStridedBackward0 nodes: the gradient of the gradient."""
    def program(L):
        x = L.tensor(X0, dtype=L.float64, requires_grad=True)
        base = x * x
        v = VIEWS[view](L, base)
        v.mul_(v.detach() * 0.0 + 1.5)
        if change == "mul_":
            v.mul_(VIEWS[view](L, x))
        else:
            v[0] = VIEWS[view](L, x)[0] ** 3
        loss = (base * base).sum() + (v * v).sum()
        (g,) = L.autograd.grad(loss, x, create_graph=True)
        (g * g).sum().backward()
        return np.array(x.grad.numpy() if L is torch else x.grad.data)

    np.testing.assert_allclose(program(distnn), program(torch), rtol=1e-12, atol=1e-12)


def test_the_example_of_the_task_as_torch():
    for L in (torch, distnn):
        a = L.ones((2, 3), dtype=L.float64, requires_grad=True)
        b = a * 2
        b.t().mul_(3)
        b.sum().backward()
        np.testing.assert_array_equal(np.array(a.grad.numpy() if L is torch else a.grad.data), np.full((2, 3), 6.0))


@pytest.mark.parametrize("op", ["unsafe_split", "unsafe_chunk"])
def test_unsafe_split_pieces_are_no_views_and_may_be_changed_as_torch(op):
    def program(L):
        x = L.tensor(X0, dtype=L.float64, requires_grad=True)
        base = x * 2.0
        piece = getattr(base, op)(2 if op == "unsafe_chunk" else 1, 0)[1]
        piece.mul_(3.0)
        ((piece * piece).sum() + base.sum()).backward()
        return np.array(x.grad.numpy() if L is torch else x.grad.data)

    np.testing.assert_allclose(program(distnn), program(torch), rtol=1e-12)
