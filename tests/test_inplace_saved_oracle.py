"""An in-place change after an op is refused at backward exactly when PyTorch refuses it (oracle: torch).

PyTorch checks the version of the tensors an op's backward saved, and saves only what the gradient
formulas of the inputs that need a gradient read: ``z = y * 3.0; y += 1`` and ``z = y / w; y += 1``
backpropagate there. distnn used to check every tensor input, and refused them. For each op
declared with ``Function.reads``, each input (and the output) is changed in place after the op,
then backward runs: distnn must refuse exactly when PyTorch does, and otherwise agree on the gradients.
"""
import numpy as np
import pytest

import distnn as dn
import distnn.functional as F

RNG = np.random.default_rng(0)
X, Y, P = RNG.uniform(0.5, 2.0, (3, 4)), RNG.uniform(0.5, 2.0, (3, 4)), RNG.uniform(0.2, 0.8, (3, 4))
W45, W54, B5 = RNG.standard_normal((4, 5)), RNG.standard_normal((5, 4)), RNG.standard_normal(5)
LABELS = np.array([0, 3, 1])
COND = X > Y


def _t(torch):
    return torch.nn.functional


# name: (input values, distnn op, torch op); each op takes its inputs as tensors
OPS = {
    "add": ((X, Y), lambda a, b: a + b, lambda a, b: a + b),
    "sub": ((X, Y), lambda a, b: a - b, lambda a, b: a - b),
    "mul": ((X, Y), lambda a, b: a * b, lambda a, b: a * b),
    "div": ((X, Y), lambda a, b: a / b, lambda a, b: a / b),
    "pow": ((X, Y), lambda a, b: a ** b, lambda a, b: a ** b),
    "add_const": ((X,), lambda a: a + 1.5, lambda a: a + 1.5),
    "rsub_const": ((X,), lambda a: 1.5 - a, lambda a: 1.5 - a),
    "mul_const": ((X,), lambda a: a * 3.0, lambda a: a * 3.0),
    "rmul_const": ((X,), lambda a: 3.0 * a, lambda a: 3.0 * a),
    "div_const": ((X,), lambda a: a / 3.0, lambda a: a / 3.0),
    "rdiv_const": ((X,), lambda a: 3.0 / a, lambda a: 3.0 / a),
    "pow_const": ((X,), lambda a: a ** 2, lambda a: a ** 2),
    "rpow_const": ((X,), lambda a: 2.0 ** a, lambda a: 2.0 ** a),
    "neg": ((X,), lambda a: -a, lambda a: -a),
    "exp": ((X,), lambda a: a.exp(), lambda a: a.exp()),
    "log": ((X,), lambda a: a.log(), lambda a: a.log()),
    "sqrt": ((X,), lambda a: a.sqrt(), lambda a: a.sqrt()),
    "abs": ((X - 1.2,), lambda a: a.abs(), lambda a: a.abs()),
    "clamp": ((X,), lambda a: a.clamp(0.8, 1.5), lambda a: a.clamp(0.8, 1.5)),
    "clamp_tensors": ((X, Y - 0.5, Y + 0.3), lambda a, lo, hi: dn.clamp(a, lo, hi) if hasattr(dn, "clamp")
                      else a.clip(lo, hi), lambda a, lo, hi: a.clamp(lo, hi)),
    "maximum": ((X, Y), dn.maximum, None),
    "minimum": ((X, Y), dn.minimum, None),
    "where": ((X, Y), lambda a, b: dn.where(dn.Tensor(COND), a, b), None),
    "matmul": ((X, W45), lambda a, b: a @ b, lambda a, b: a @ b),
    "linear": ((X, W54, B5), F.linear, None),
    "clone": ((X,), lambda a: a.clone(), lambda a: a.clone()),
    "getitem": ((X,), lambda a: a[1:], lambda a: a[1:]),
    "pad": ((X,), lambda a: F.pad(a, (1, 2)), None),
    "cat": ((X, Y), lambda a, b: dn.cat([a, b], 1), None),
    "stack": ((X, Y), lambda a, b: dn.stack([a, b]), None),
    "sum": ((X,), lambda a: a.sum(), lambda a: a.sum()),
    "sum_dim": ((X,), lambda a: a.sum(1), lambda a: a.sum(1)),
    "mean": ((X,), lambda a: a.mean(), lambda a: a.mean()),
    "mean_dim": ((X,), lambda a: a.mean(1), lambda a: a.mean(1)),
    "var": ((X,), lambda a: a.var(1), lambda a: a.var(1)),
    "std": ((X,), lambda a: a.std(1), lambda a: a.std(1)),
    "norm": ((X,), lambda a: a.norm(), lambda a: a.norm()),
    "relu": ((X - 1.2,), F.relu, None),
    "leaky_relu": ((X - 1.2,), F.leaky_relu, None),
    "elu": ((X - 1.2,), F.elu, None),
    "gelu": ((X - 1.2,), F.gelu, None),
    "gelu_tanh": ((X - 1.2,), lambda a: F.gelu(a, approximate="tanh"), None),
    "tanh": ((X - 1.2,), F.tanh, None),
    "sigmoid": ((X - 1.2,), F.sigmoid, None),
    "logsigmoid": ((X - 1.2,), F.logsigmoid, None),
    "softplus": ((X - 1.2,), F.softplus, None),
    "softmax": ((X,), lambda a: F.softmax(a, 1), None),
    "log_softmax": ((X,), lambda a: F.log_softmax(a, 1), None),
    "cross_entropy": ((X,), lambda a: F.cross_entropy(a, LABELS), None),
    "nll_loss": ((X,), lambda a: F.nll_loss(a, LABELS), None),
    "binary_cross_entropy": ((P, P[::-1]), F.binary_cross_entropy, None),
    "binary_cross_entropy_with_logits": ((X - 1.2, P), F.binary_cross_entropy_with_logits, None),
}
# the torch op where it is not the distnn lambda itself (a Tensor method or an operator works on both)
TORCH = {
    "clamp_tensors": lambda torch: lambda a, lo, hi: torch.clamp(a, lo, hi),
    "maximum": lambda torch: torch.maximum,
    "minimum": lambda torch: torch.minimum,
    "where": lambda torch: lambda a, b: torch.where(torch.from_numpy(COND), a, b),
    "linear": lambda torch: _t(torch).linear,
    "pad": lambda torch: lambda a: _t(torch).pad(a, (1, 2)),
    "cat": lambda torch: lambda a, b: torch.cat([a, b], 1),
    "stack": lambda torch: lambda a, b: torch.stack([a, b]),
    "cross_entropy": lambda torch: lambda a: _t(torch).cross_entropy(a, torch.from_numpy(LABELS)),
    "nll_loss": lambda torch: lambda a: _t(torch).nll_loss(a, torch.from_numpy(LABELS)),
    "gelu_tanh": lambda torch: lambda a: _t(torch).gelu(a, approximate="tanh"),
    "softmax": lambda torch: lambda a: _t(torch).softmax(a, 1),
    "log_softmax": lambda torch: lambda a: _t(torch).log_softmax(a, 1),
    "tanh": lambda torch: torch.tanh,
    "sigmoid": lambda torch: torch.sigmoid,
}
for _name in ("relu", "leaky_relu", "elu", "gelu", "logsigmoid", "softplus", "binary_cross_entropy",
              "binary_cross_entropy_with_logits"):
    TORCH[_name] = (lambda n: lambda torch: getattr(_t(torch), n))(_name)


def _cases():
    for name, (values, _, _) in OPS.items():
        n = len(values)
        # which inputs need a gradient: all, and (for several inputs) each one alone
        needs = [(True,) * n] + ([tuple(i == j for j in range(n)) for i in range(n)] if n > 1 else [])
        for need in needs:
            for target in [*range(n), "out"]:
                yield pytest.param(name, need, target, id=f"{name}-{''.join('TF'[not x] for x in need)}-{target}")


def _run(lib, name, need, target):
    """Run op ``name`` on fresh inputs, change ``target`` in place, backward: the leaves' gradients, or
    None when backward refused (a RuntimeError)."""
    torch = lib if lib is not dn else None
    values, ours, theirs = OPS[name]
    op = ours if torch is None else (TORCH[name](torch) if name in TORCH else theirs or ours)
    tensor = torch.tensor if torch else dn.Tensor
    leaves, inputs = [], []
    for v, n in zip(values, need):
        leaf = tensor(v.copy(), requires_grad=n)
        leaves.append(leaf)
        inputs.append(leaf * 1.0 if n else leaf)  # (a leaf that requires grad cannot be changed in place)
    out = op(*inputs)
    weights = tensor(np.linspace(0.5, 1.5, out.numel()).reshape(tuple(out.shape)))
    changed = out if target == "out" else inputs[target]
    changed += 0.25
    try:
        (out * weights).sum().backward()
    except RuntimeError as e:
        assert "modified by an inplace operation" in str(e) or "changed in place after the forward" in str(e), e
        return None
    return [None if leaf.grad is None else np.array(leaf.grad.numpy() if torch else leaf.grad.data)
            for leaf in leaves]


@pytest.mark.parametrize("name, need, target", list(_cases()))
def test_an_in_place_change_after_an_op_is_refused_exactly_when_pytorch_refuses(torch, name, need, target):
    ref, ours = _run(torch, name, need, target), _run(dn, name, need, target)
    assert_same_outcome(name, ours, ref, rtol=1e-10, atol=1e-12)


def assert_same_outcome(name, ours, ref, rtol, atol):
    """Both refused (None), or both backpropagated the same gradients (None where a leaf got none)."""
    assert (ours is None) == (ref is None), (
        f"{name}: PyTorch {'refuses' if ref is None else 'backpropagates'}, distnn "
        f"{'refuses' if ours is None else 'backpropagates'}")
    if ref is not None:
        for a, r in zip(ours, ref):
            assert (a is None) == (r is None)
            if r is not None:
                np.testing.assert_allclose(a, r, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- through a view of the output
VIEWS = ("unsqueeze", "transpose", "unsqueeze_nograd")


def _view_of(out, view):
    """``unsqueeze(0)``, a transpose of the last two dims (``unsqueeze(0)`` under 2-D) or, for ``*_nograd``,
    ``unsqueeze(-1)`` of ``out``."""
    if view == "transpose" and len(out.shape) >= 2:
        return out.transpose(-1, -2)
    return out.unsqueeze(-1) if view == "unsqueeze_nograd" else out.unsqueeze(0)


def run_through_a_view(lib, make_output, view, weights_of):
    """The output of ``make_output()`` seen only through a view that is not indexing (:func:`_view_of`),
    changed in place through it (while recording, ``*= 1.5``; for ``*_nograd`` under no_grad()), then
    backward from the view. False when backward refused.

    The output is never bound to a name in a frame that outlives the view's making: a debugger, profiler or
    probe that reads a frame's locals (``frame.f_locals`` holds what it saw until it is refreshed) kept it
    alive after ``del``, and an in-place change through a view of a live tensor is refused at once
    (inplace.check_writable): under such a probe this test failed where PyTorch backpropagates."""
    v = _view_of(make_output(), view)
    if view.endswith("_nograd"):
        with dn.no_grad() if lib is dn else lib.no_grad():
            v += 0.25
    else:
        v *= 1.5
    try:
        (v * weights_of(v)).sum().backward()
    except RuntimeError as e:
        assert any(m in str(e) for m in ("modified by an inplace operation", "has been modified inplace",
                                         "changed in place after the forward")), e
        return False
    return True


def _run_view(lib, name, view):
    torch = lib if lib is not dn else None
    values, ours, theirs = OPS[name]
    op = ours if torch is None else (TORCH[name](torch) if name in TORCH else theirs or ours)
    tensor = torch.tensor if torch else dn.Tensor
    leaves = [tensor(v.copy(), requires_grad=True) for v in values]

    def weights_of(v):
        return tensor(np.linspace(0.5, 1.5, v.numel()).reshape(tuple(v.shape)))

    if not run_through_a_view(lib, lambda: op(*[leaf * 1.0 for leaf in leaves]), view, weights_of):
        return None
    return [np.array(leaf.grad.numpy() if torch else leaf.grad.data) for leaf in leaves]


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("name", list(OPS))
def test_a_change_through_a_view_of_the_output_is_refused_exactly_when_pytorch_refuses(torch, name, view):
    """The output dropped, a view of it (not indexing) changed in place: refused when the op reads its output
    (exp, relu, softmax...), as PyTorch's; backpropagated otherwise."""
    assert_same_outcome(name, _run_view(dn, name, view), _run_view(torch, name, view), rtol=1e-10, atol=1e-12)


def test_an_index_changed_in_place_after_gather_is_refused_as_in_pytorch(torch):
    # distnn's gather kept the index's array unchecked: changing it in place scattered the gradient to
    # the new positions (x.grad [[2, 0, 1], [0, 3, 4]] instead of PyTorch's refusal)
    for lib in (torch, dn):
        tensor = torch.tensor if lib is torch else dn.Tensor
        for change in ("input", "index"):
            leaf = tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
            x, index = leaf * 1.0, tensor(np.array([[0, 0], [1, 2]]))
            y = x.gather(1, index)
            if change == "input":
                x += 1.0
            else:
                index[0, 0] = 2
            with pytest.raises(RuntimeError, match="modified by an inplace" if lib is torch else "changed in place"):
                (y * tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))).sum().backward()


@pytest.mark.parametrize("name", ["leaky_relu", "elu", "celu", "selu"])
def test_a_change_after_an_in_place_activation_that_saves_its_result_is_refused_as_in_pytorch(torch, name):
    # (distnn's leaky_relu/elu(inplace=True) read masks of their own and backpropagated this, laxer than PyTorch,
    # whose leaky_relu_/elu_/celu_/selu_ save their result: the nodes are PyTorch's now, activation_of_result)
    x0 = np.array([-1.0, 0.5, -2.0, 3.0])
    for lib in (torch, dn):
        leaf = lib.tensor(x0.copy(), requires_grad=True)
        h = leaf * 1.0
        getattr(F if lib is dn else torch.nn.functional, name)(h, inplace=True)
        h += 1.0
        with pytest.raises(RuntimeError, match="modified by an inplace" if lib is torch else "changed in place"):
            (h * h).sum().backward()


def _refused_or_grad(lib, build):
    """``build(lib, tensor)`` returns (leaf, loss); the leaf's gradient, or None when backward refuses."""
    tensor = lib.tensor
    leaf, loss = build(lib, tensor)
    try:
        loss.backward()
    except RuntimeError as e:
        assert "modified by an inplace" in str(e) or "changed in place" in str(e), e
        return None
    return np.array(leaf.grad.numpy() if lib is not dn else leaf.grad)


def _same_as_pytorch(torch, build):
    ref, ours = _refused_or_grad(torch, build), _refused_or_grad(dn, build)
    assert (ours is None) == (ref is None), f"PyTorch {'refuses' if ref is None else 'backpropagates'}, distnn " \
                                            f"{'refuses' if ours is None else 'backpropagates'}"
    if ref is not None:
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


@pytest.mark.parametrize("loss", ["cross_entropy", "cross_entropy_weight", "cross_entropy_smooth", "nll_loss",
                                  "bce_weight", "bce_logits_pos_weight", "embedding", "soft_margin",
                                  "binary_hinge", "multi_margin", "multi_margin_1d", "max_unpool2d",
                                  "max_unpool2d_3d", "hinge_embedding_target", "hinge_embedding_input"])
def test_a_loss_target_weight_or_index_tensor_changed_in_place_is_refused_as_in_pytorch(torch, loss):
    # the losses took the target and class weights (embedding and max_unpool2d their indices) as bare arrays:
    # a change in place before backward gave a silently wrong gradient (cross_entropy's went to the new class),
    # PyTorch refuses. hinge_embedding_loss saves neither (PyTorch's is composed): both backpropagate alike.
    def build(lib, tensor):
        Fl = lib.nn.functional if lib is torch else F
        x = tensor(np.arange(12.0).reshape(3, 4) / 7, requires_grad=True)
        labels, w = tensor(np.array([0, 3, 1])), tensor(np.array([1.0, 2.0, 0.5, 1.5]))
        p = tensor(np.full((3, 4), 0.3))
        signs = tensor(np.array([[1.0, -1.0, 1.0, 1.0], [-1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, 1.0]]))
        cells = tensor(np.array([[0, 3, 5, 6], [17, 19, 22, 20], [32, 41, 36, 47]]))  # (distinct, in 6 x 8)
        plane = tensor(np.arange(48.0).reshape(6, 8))
        moved = x * 1.0
        out, changed = {
            "cross_entropy": lambda: (Fl.cross_entropy(x, labels), labels),
            "cross_entropy_weight": lambda: (Fl.cross_entropy(x, labels, weight=w), w),
            "cross_entropy_smooth": lambda: (Fl.cross_entropy(x, labels, weight=w, label_smoothing=0.2), w),
            "nll_loss": lambda: (Fl.nll_loss(x, labels), labels),
            "bce_weight": lambda: (Fl.binary_cross_entropy(x.sigmoid(), p, weight=w), w),
            "bce_logits_pos_weight": lambda: (Fl.binary_cross_entropy_with_logits(x, p, pos_weight=w), w),
            "embedding": lambda: ((Fl.embedding(labels % 3, x) * tensor(np.ones((3, 4)))).sum(), None),
            "soft_margin": lambda: (Fl.soft_margin_loss(x, signs), signs),
            # (PyTorch has no binary_hinge_loss: its definition, relu(margin - target * input) reduced)
            "binary_hinge": lambda: (lib.relu(1.0 - signs * x).mean() if lib is torch
                                     else F.binary_hinge_loss(x, signs), signs),
            "multi_margin": lambda: (Fl.multi_margin_loss(x, labels), labels),
            "multi_margin_1d": lambda: (Fl.multi_margin_loss(x[1], labels[1]), labels),
            "max_unpool2d": lambda: ((Fl.max_unpool2d(x.reshape(1, 1, 3, 4), cells.reshape(1, 1, 3, 4), 2)
                                      * plane).sum(), cells),
            "max_unpool2d_3d": lambda: ((Fl.max_unpool2d(x.reshape(1, 3, 4), cells.reshape(1, 3, 4), 2)
                                         * plane).sum(), cells),
            "hinge_embedding_target": lambda: (Fl.hinge_embedding_loss(x, signs), signs),
            "hinge_embedding_input": lambda: (Fl.hinge_embedding_loss(moved, signs, margin=1.5), moved),
        }[loss]()
        if changed is None:  # embedding: the indices themselves
            idx = tensor(np.array([0, 2, 1]))
            out, changed = (Fl.embedding(idx, x) * tensor(np.arange(12.0).reshape(3, 4))).sum(), idx
        with torch.no_grad() if lib is torch else dn.no_grad():
            if changed is signs:
                changed *= -1.0
            elif changed is moved:
                changed += 1.0
            elif changed is cells:
                changed[0] = tensor(np.array([1, 2, 4, 7]))
            else:
                changed[1 if loss == "multi_margin_1d" else 0] = 2 if changed is labels or loss == "embedding" else 3.0
        return x, out

    _same_as_pytorch(torch, build)


def test_max_along_a_dim_backpropagates_after_a_change_of_its_input_as_in_pytorch(torch):
    # max(x, dim)'s values were a Gather that checked x (PyTorch's max.dim saves only its indices)
    def build(lib, tensor):
        leaf = tensor(np.array([[1.0, 5.0, 2.0], [7.0, 3.0, 4.0]]), requires_grad=True)
        x = leaf * 2.0
        values = x.max(1)[0]
        with (torch.no_grad() if lib is torch else dn.no_grad()):
            x += 1.0
        return leaf, (values * tensor(np.array([3.0, 5.0]))).sum()

    _same_as_pytorch(torch, build)


@pytest.mark.parametrize("op", ["amax", "max_all"])
def test_amax_output_changed_in_place_while_recording_is_refused_as_in_pytorch(torch, op):
    # amax and max() save their result in PyTorch; distnn's node dropped its output check (it keeps a mask)
    def build(lib, tensor):
        leaf = tensor(np.array([[1.0, 5.0, 2.0], [7.0, 3.0, 4.0]]), requires_grad=True)
        out = leaf.amax(1) if op == "amax" else leaf.max()
        out *= 2.0
        return leaf, out.sum()

    _same_as_pytorch(torch, build)


def test_a_zero_d_result_of_relu_changed_in_place_is_refused_as_in_pytorch(torch):
    # a 0-d result is a numpy scalar, not an array: the in-place relu_ node's output check stayed on the
    # temporary result and a later change of the tensor backpropagated
    def build(lib, tensor):
        leaf = tensor(np.array([1.0, 2.0, -0.5]), requires_grad=True)
        s = leaf.sum()
        (lib.nn.functional if lib is torch else F).relu(s, inplace=True)
        s *= 0.0
        return leaf, s * 2.0

    _same_as_pytorch(torch, build)


def test_changing_the_indices_max_returned_leaves_its_gradient_alone():
    """``max(x, dim)``'s indices are the user's: the node keeps its own, so a change of them before
    backward cannot move the gradient (it went to the new places; PyTorch refuses the backward)."""
    x = dn.tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]), requires_grad=True)
    values, indices = x.max(1)
    with dn.no_grad():
        indices[...] = 2
    values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
