"""In-place ops write into the tensor's own memory while recording, as in PyTorch (oracle: torch.from_numpy).

They used to be carried out out of place when autograd recorded them: ``t = from_numpy(b); t *= w`` left
``b`` unchanged (and views of ``t`` saw the old values), where PyTorch writes ``b``. Each scenario runs
the same code on both libraries and compares the shared numpy buffer, the tensors and the gradients.
"""
import numpy as np
import pytest

import distnn as dn
import distnn.functional as F

MODIFIED = "changed in place after the forward pass"
LEAF = "leaf tensor that requires grad is used in an in-place operation"


class _Lib:
    """The few calls that differ between torch and distnn."""

    def __init__(self, torch=None):
        self.torch = torch

    def from_numpy(self, a):
        return self.torch.from_numpy(a) if self.torch else dn.from_numpy(a)

    def leaf(self, a):
        a = np.asarray(a, dtype=np.float64)
        return self.torch.tensor(a, requires_grad=True) if self.torch else dn.Tensor(a.copy(), requires_grad=True)

    def relu_(self, t):
        return self.torch.nn.functional.relu(t, inplace=True) if self.torch else F.relu(t, inplace=True)

    def no_grad(self):
        return self.torch.no_grad() if self.torch else dn.no_grad()

    def raises(self, what):
        return pytest.raises(RuntimeError, match="modified by an inplace operation" if self.torch else what)


def _values(x):
    if hasattr(x, "detach"):
        x = x.detach()
    return np.array(x.numpy() if hasattr(x, "numpy") else x)


def _compare(torch, scenario):
    """Run ``scenario(lib)`` on both libraries; it returns {name: tensor or array}: all must agree."""
    ref, ours = scenario(_Lib(torch)), scenario(_Lib())
    assert ref.keys() == ours.keys()
    for name in ref:
        np.testing.assert_allclose(_values(ours[name]), _values(ref[name]), rtol=1e-12, atol=1e-12, err_msg=name)
    return ours


def test_recorded_in_place_ops_write_the_shared_buffer_with_pytorch_gradients(torch):
    def scenario(lib):
        b = np.arange(1.0, 5.0)
        t = lib.from_numpy(b)
        same = t
        w, u = lib.leaf([0.5, -2.0, 3.0, 1.5]), lib.leaf([2.0, 4.0, -1.0, 0.25])
        t *= w  # saves the old t for w's gradient: a copy, since t's memory is overwritten
        t += u
        t -= 0.5
        t /= u  # Div reads its inputs: the later in-place changes of t are fine, as in PyTorch
        t *= 3.0
        assert same is t and t.grad_fn is not None and not t.is_leaf
        loss = (t * t).sum() + (t * w).sum()
        loss.backward()
        return {"buffer": b, "t": t, "w.grad": w.grad, "u.grad": u.grad}

    ours = _compare(torch, scenario)
    assert ours["buffer"] is not None and np.shares_memory(ours["t"].data, ours["buffer"])


def test_in_place_through_views_of_a_shared_buffer_as_in_pytorch(torch):
    def scenario(lib):
        base = np.arange(12.0).reshape(3, 4)
        row = base[1]  # a numpy view sees every change
        t = lib.from_numpy(base)
        w, u = lib.leaf([1.0, -1.0, 2.0, 0.5]), lib.leaf([3.0, -2.0])
        a, c = t[0], t[:, 1]
        a *= w  # t, and its other view c, follow (PyTorch's CopySlices and regenerated views)
        t[1, 1:3] += u
        col = t[:, 3]
        col *= 2.0
        d = t[2]
        e = d[1:]  # a view of a view
        e *= u.sum()
        d += 1.0
        loss = (t * t).sum() + (c * c).sum() + a.sum() + (e * w[1:]).sum()
        loss.backward()
        return {"buffer": base, "row": row, "t": t, "a": a, "c": c, "e": e, "w.grad": w.grad, "u.grad": u.grad}

    _compare(torch, scenario)


def test_item_assignment_fill_zero_and_inplace_relu_write_the_buffer(torch):
    def scenario(lib):
        b = np.linspace(-1.5, 2.0, 6).reshape(2, 3)
        t = lib.from_numpy(b)
        w, v = lib.leaf(np.full((2, 3), -0.5) + np.eye(2, 3)), lib.leaf([2.0, -3.0, 0.5])
        t *= w
        t[0, 1:] = v[:2] * 2.0
        t[1, :2].fill_(0.75)
        t[1, 2:].zero_()
        t[0] += v  # (read, change, write back: Python's item augmented assignment)
        lib.relu_(t)  # (last: relu saves its output, a later in-place change would be refused)
        ((t * t).sum() + (t * w).sum()).backward()
        return {"buffer": b, "t": t, "w.grad": w.grad, "v.grad": v.grad}

    _compare(torch, scenario)


def test_a_value_saved_for_backward_and_later_changed_in_place_is_refused_as_in_pytorch(torch):
    for lib in (_Lib(torch), _Lib()):
        x = lib.leaf([0.5, -1.0, 2.0])
        y = x.exp()  # exp saves its output
        y += 1  # recorded, and now written into y's memory
        with lib.raises(MODIFIED):
            y.sum().backward()

        h = x * 1.0
        lib.relu_(h)  # relu saves its output: the tensor's own memory
        h += 1
        with lib.raises(MODIFIED):
            h.sum().backward()

        b = np.array([1.0, 2.0, 3.0])
        t = lib.from_numpy(b)
        t *= x
        y = t * x  # saves t (for x's gradient)
        t[0] *= 2.0  # through a view
        with lib.raises(MODIFIED):
            y.sum().backward()
        np.testing.assert_allclose(b, [1.0, -2.0, 6.0])  # written anyway, as in PyTorch

        y = lib.leaf([1.0, 2.0, 3.0, 4.0]) * 1.0
        front = y[0:2]
        front *= y[2:4]  # saves the other half of the same memory, which this write leaves alone...
        y[2:4] += 1  # ...but this one changes
        with lib.raises(MODIFIED):
            y.sum().backward()


def test_in_place_on_a_leaf_that_requires_grad_is_refused_unless_under_no_grad(torch):
    for lib in (_Lib(torch), _Lib()):
        b = np.array([1.0, 2.0, 3.0])
        x = lib.leaf(b)
        changes = (lambda: x.__imul__(2.0), lambda: x[0:2].__iadd__(1.0), lambda: x.__setitem__(0, 5.0),
                   lambda: x.fill_(0.0), lambda: lib.relu_(x))
        for change in changes:
            # (distnn's message of a view of the leaf, x[0:2], is PyTorch's: "a view of a leaf Variable ...")
            leaf = "leaf Variable that requires grad" if lib.torch or change is changes[1] else LEAF
            with pytest.raises(RuntimeError, match=leaf):
                change()
        np.testing.assert_array_equal(_values(x), b)  # nothing was written
    b = np.array([1.0, 2.0, 3.0])
    x = dn.Tensor(b, requires_grad=True)  # shares b, as torch.from_numpy(b).requires_grad_()
    with dn.no_grad():
        x *= 2.0  # (a manual parameter update: the same array, as optimizers rely on)
    assert x.is_leaf and x.data is b
    np.testing.assert_array_equal(b, [2.0, 4.0, 6.0])


def test_a_detached_alias_sees_the_change_and_a_reshaped_view_follows_as_in_pytorch(torch):
    def scenario(lib):
        b = np.array([1.0, 2.0, 3.0])
        t = lib.from_numpy(b)
        alias = t.detach()  # cut from the graph: it only sees the new values
        w = lib.leaf([2.0, 3.0, 4.0])
        t *= w
        (t * t).sum().backward()
        assert not alias.requires_grad
        return {"buffer": b, "alias": alias, "w.grad": w.grad}

    _compare(torch, scenario)

    def reshaped(lib):  # (was refused before anything was written: distnn re-makes the view's node as PyTorch)
        b = np.array([1.0, 2.0, 3.0])
        t = lib.from_numpy(b)
        column = t.reshape(3, 1)
        w = lib.leaf([2.0, 3.0, 4.0])
        t *= w
        assert column.grad_fn.name() == "AsStridedBackward0"
        (column * column).sum().backward()
        return {"buffer": b, "column": column, "w.grad": w.grad}

    _compare(torch, reshaped)


def test_relu_inplace_after_batch_norm_and_linear_keeps_working_as_in_pytorch(torch):
    # norms and pools read their own arrays, not their output: the in-place activation after them is fine
    x0 = np.random.default_rng(0).standard_normal((4, 3, 5, 5))
    bn, pool = dn.nn.BatchNorm2d(3, dtype=np.float64), dn.nn.AvgPool2d(2)
    tbn, tpool = torch.nn.BatchNorm2d(3, dtype=torch.float64), torch.nn.AvgPool2d(2)
    outs = []
    for lib, norm, avg in ((_Lib(torch), tbn, tpool), (_Lib(), bn, pool)):
        x = lib.leaf(x0)
        h = lib.relu_(norm(x))
        h = lib.relu_(avg(h - 0.1))
        (h * h).sum().backward()
        outs.append((_values(h), _values(x.grad), _values(norm.weight.grad)))
    for ours, ref in zip(outs[1], outs[0]):
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def test_an_operand_aliasing_the_written_memory_is_saved_as_it_was(torch):
    # t *= t: the node saved t twice, both aliases of the memory written: copied before the write.
    # (PyTorch refuses this one at backward; distnn's gradient is that of the out-of-place t = t * t)
    def scenario(lib, in_place):
        b = np.array([1.0, -2.0, 3.0])
        t = lib.from_numpy(b)
        w = lib.leaf([0.5, 1.5, -1.0])
        t = t * w
        if in_place:
            t *= t
            t[1:] /= t[:2].detach()
        else:
            t = t * t
            t = lib.torch.cat([t[:1], t[1:] / t[:2].detach()])
        t.sum().backward()
        return t, w.grad

    ours, ref = scenario(_Lib(), True), scenario(_Lib(torch), False)
    for a, r in zip(ours, ref):
        np.testing.assert_allclose(_values(a), _values(r), rtol=1e-12)


def test_changing_an_op_output_in_place_is_refused_exactly_when_pytorch_refuses(torch):
    # distnn's nodes note their output's version conservatively: an op that keeps none of its output
    # (x ** 2, gelu, var) or only an internal copy PyTorch does not save (max_pool2d) must not refuse
    x0 = np.random.default_rng(3).standard_normal((2, 3, 4, 4)) + 0.1
    ops = {
        "pow": (lambda x: x ** 2, lambda x: x ** 2),
        "gelu": (F.gelu, torch.nn.functional.gelu),
        "var": (lambda x: x.var(1), lambda x: x.var(1)),
        "max_pool2d": (lambda x: F.max_pool2d(x, 2), lambda x: torch.nn.functional.max_pool2d(x, 2)),
        "exp": (lambda x: x.exp(), lambda x: x.exp()),
        "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
        "relu": (F.relu, torch.relu),
    }
    changes = {"+=": lambda y: y.__iadd__(1.0), "[0]=": lambda y: y.__setitem__(0, 0.5),
               "[0]*=": lambda y: y[0].__imul__(2.0)}
    for name, (ours, ref) in ops.items():
        for how, change in changes.items():
            results = []
            for lib, op in ((_Lib(torch), ref), (_Lib(), ours)):
                x = lib.leaf(x0)
                y = op(x)
                change(y)
                try:
                    (y * y).sum().backward()
                    results.append((_values(y), _values(x.grad)))
                except RuntimeError:
                    results.append(None)
            if results[0] is None:
                assert results[1] is None, f"{name} {how}: PyTorch refuses, distnn did not"
                continue
            assert results[1] is not None, f"{name} {how}: distnn refused, PyTorch did not"
            for a, r in zip(results[1], results[0]):
                np.testing.assert_allclose(a, r, rtol=1e-9, atol=1e-12, err_msg=f"{name} {how}")


def test_a_view_of_a_view_made_through_a_temporary_keeps_its_base_known(torch):
    # y[:, 0][1:] views y through a temporary that is dropped at once: distnn's link to that base was weak,
    # so the view looked like a reshape-like view and every in-place change of y (or of it) was refused
    def scenario(lib):
        b = np.arange(12.0).reshape(3, 4)
        t = lib.from_numpy(b)
        w, u = lib.leaf([0.5, -2.0, 3.0, 1.5]), lib.leaf([2.0, 4.0])
        t = t * w
        col = t[:, 0][1:]
        t += 1.0
        col *= u
        loss = (t * t).sum() + (col * 3.0).sum()
        loss.backward()
        return {"t": t, "col": col, "w.grad": w.grad, "u.grad": u.grad}

    _compare(torch, scenario)


def test_an_element_taken_by_integer_indices_is_a_0d_view_as_in_pytorch(torch):
    # numpy's b[1, 2] is a scalar copy: ``e = t[1, 2]; e *= w`` left t unchanged (and under no_grad too)
    def scenario(lib):
        b = np.arange(1.0, 7.0).reshape(2, 3)
        t = lib.from_numpy(b)
        w = lib.leaf([0.5, -2.0, 3.0])
        t = t * w
        e = t[1, 2]
        e *= w[0]
        with lib.no_grad():
            f = t[0][1]
            f += 10.0
        loss = (t * t).sum() + e * 2.0
        loss.backward()
        return {"t": t, "e": e, "f": f, "w.grad": w.grad}

    ours = _compare(torch, scenario)
    assert ours["e"].shape == () and np.shares_memory(ours["e"].data, ours["t"].data)


def test_an_in_place_change_through_a_detached_alias_while_recording_as_in_pytorch(torch):
    # d = y.detach(); d *= w (w requires grad) was refused: y, the tensor d is an alias of, counted as another
    # view in d's graph. Each alias has a graph of its own: y (and its views) only see the new values.
    def scenario(lib):
        x, w = lib.leaf([[1.0, 2.0, 3.0]]), lib.leaf([[3.0, -4.0, 0.5]])
        y = x * 2.0
        yt = y.T
        d = y.detach()
        d0 = d[0]
        d *= w
        y2 = y * 1.0  # (after the write: y's values are d's)
        loss = (y2 * y2).sum() + (d0 * d0).sum() + yt.sum()
        loss.backward()
        return {"y": y, "d0": d0, "x.grad": x.grad, "w.grad": w.grad}

    _compare(torch, scenario)

    def transposed(lib):  # a non-indexing view in d's own graph follows the change (it was refused)
        x = lib.leaf([[1.0, 2.0]])
        d = (x * 2.0).detach()
        dt = d.T
        d *= x
        (dt * dt).sum().backward()
        return {"dt": dt, "x.grad": x.grad}

    _compare(torch, transposed)
