"""``reshape``/``flatten``/``reshape_as`` while recording name their graph nodes as torch's (the oracle): a row-major
input's is a view (ViewBackward0); one whose strides allow a view, ReshapeAliasBackward0; else a row-major copy seen
in the new shape (UnsafeViewBackward0 over CloneBackward0), which is no view of the input. Values and gradients
compared too (float64)."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

X = np.arange(24.0).reshape(2, 3, 4) / 7.0

RESHAPES = {
    "contiguous": lambda b: b.reshape(24),
    "transposed-copy": lambda b: b.transpose(0, 2).reshape(24),
    "sliced-alias": lambda b: b[:, 1:].reshape(2, 8),
    "sliced-copy": lambda b: b[:, :, 1:].reshape(2, 9),
    "transposed-alias": lambda b: b.transpose(0, 2).reshape(4, 3, 2),
    "stepped-copy": lambda b: b[:, ::2].reshape(2, 8),
    "size-one-alias": lambda b: b[:, 1:].reshape(2, 1, 8),
    "flatten-contiguous": lambda b: b.flatten(),
    "flatten-copy": lambda b: b[:, 1:].flatten(0, 1),
    "flatten-alias": lambda b: b[:, :, 1:].flatten(0, 1),
    "view-of-slice": lambda b: b[:, :, 1:].view(2, 3, 3),
    "expanded-copy": lambda b: b[0].expand(2, 3, 4).reshape(24),
    "reshape_as-copy": lambda b: b.transpose(0, 2).reshape_as(b),
}


def _names(node, depth=2):
    if node is None or depth == 0:
        return []
    nexts = [n for n, _ in node.next_functions]
    return [node.name(), [_names(n, depth - 1) for n in nexts]]


def _program(L, case):
    x = L.tensor(X, dtype=L.float64, requires_grad=True)
    b = x * 2.0
    r = RESHAPES[case](b)
    names = _names(r.grad_fn)
    shares = r.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() if L is torch else bool(np.shares_memory(r.data, b.data))
    (r * 3.0).sum().backward()
    return names, shares, tuple(r.shape), r.detach().numpy() if L is torch else r.data, \
        x.grad.numpy() if L is torch else x.grad


@pytest.mark.parametrize("case", list(RESHAPES))
def test_reshape_names_its_node_as_torch(case):
    ref, ours = _program(torch, case), _program(distnn, case)
    assert ours[:3] == ref[:3]
    np.testing.assert_allclose(ours[3], ref[3], rtol=1e-12)
    np.testing.assert_allclose(ours[4], ref[4], rtol=1e-12)


@pytest.mark.parametrize("case", ["transposed-copy", "sliced-copy"])
def test_a_reshape_that_copies_is_no_view_as_torch(case):
    """torch's _unsafe_view of a clone: detach_ allowed, an in-place change reaches not the input."""
    def program(L):
        x = L.tensor(X, dtype=L.float64, requires_grad=True)
        b = x * 2.0
        r = RESHAPES[case](b)
        r.mul_(2.0)
        names = [r.grad_fn.name(), b.grad_fn.name()]
        (r.sum() + b.sum()).backward()
        r.detach_()
        return names, x.grad.numpy() if L is torch else x.grad

    ref, ours = program(torch), program(distnn)
    assert ours[0] == ref[0]
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-12)


def test_a_reshape_that_records_nothing_is_unchanged():
    x = distnn.tensor(X, dtype=distnn.float64)
    r = x.transpose(0, 2).reshape(24)
    assert r.grad_fn is None and not r.requires_grad
    np.testing.assert_array_equal(r.data, X.transpose(2, 1, 0).reshape(24))
