"""After a write that recorded nothing (under no_grad, through a ``view(dtype)``, a shape change) of memory that views
in the graph see, an op that takes such a view records the view's node re-made from its base (AsStridedBackward0),
as torch (the oracle) re-makes it there: the names reached through ``next_functions`` are compared, two levels
down, with the values and the leaf gradients (float64)."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

X = np.arange(1.0, 7.0).reshape(2, 3) / 4.0


def _tree(node, depth=3):
    if node is None:
        return None
    if depth == 0 or not hasattr(node, "next_functions"):
        return node.name()
    return [node.name(), [_tree(n, depth - 1) for n, _ in node.next_functions]]


def _write(L, write, b, row):
    if write == "view-no-grad":
        with L.no_grad():
            row.mul_(2.0)
    elif write == "base-no-grad":
        with L.no_grad():
            b.add_(1.0)
    elif write == "int-view":
        b.view(L.int64).add_(1)
    elif write == "sibling-no-grad":
        with L.no_grad():
            b[:, 2].mul_(0.5)
    elif write == "base-t_":
        b.t_()
    else:
        with L.no_grad():
            b.unsqueeze_(0)


WRITES = ["view-no-grad", "base-no-grad", "int-view", "sibling-no-grad", "base-t_", "base-unsqueeze_-no-grad"]


@pytest.mark.parametrize("use", ["mul", "sum", "two-views", "view-of-view"])
@pytest.mark.parametrize("write", WRITES)
def test_an_op_takes_the_view_re_made_as_torch(write, use):
    def program(L):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        row, t, d = b[1], b.t(), b.diagonal()
        _write(L, write, b, row)
        if use == "mul":
            y = row * 3.0
        elif use == "sum":
            y = d.sum()
        elif use == "two-views":
            y = row * t[:, 0]
        else:
            y = t[1:] * 2.0
        tree = _tree(y.grad_fn)
        (y.sum() + b.sum()).backward()
        return tree, (y.detach().numpy() if L is torch else y.data), (x.grad.numpy() if L is torch else x.grad)

    ref, ours = program(torch), program(distnn)
    assert ours[0] == ref[0]
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-12)
    np.testing.assert_allclose(ours[2], ref[2], rtol=1e-12)


def test_a_write_that_records_leaves_the_next_ops_alone_as_torch():
    def program(L):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        row, t = b[1], b.t()
        b.mul_(x)
        y = row * t[:, 0]
        tree = _tree(y.grad_fn)
        y.sum().backward()
        return tree, (x.grad.numpy() if L is torch else x.grad)

    ref, ours = program(torch), program(distnn)
    assert ours[0] == ref[0]
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-12)
