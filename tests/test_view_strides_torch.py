"""``Tensor.view`` refuses exactly where PyTorch's stride rules refuse (a diagonal, a transpose, a stepped or
narrowed slice, an expand flattened across its chunks), allows every view PyTorch allows (splitting and merging
within a contiguous chunk, size-1 dims, empty and 0-d tensors) with the same values and shared memory;
``reshape`` copies there instead; ``is_contiguous``/``contiguous`` and the layouts of advanced indexing,
``clone`` and elementwise results of mixed layouts follow PyTorch's, so ``x.t().contiguous().view(-1)``
works as there."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

BASE = np.arange(24, dtype=np.float64)

# (name, make(lib, t) -> the tensor to view, the shape to view it as); t is BASE (24 elements)
CASES = [
    ("contiguous -1", lambda L, t: t, (-1,)),
    ("contiguous split", lambda L, t: t, (2, 3, 4)),
    ("contiguous merge", lambda L, t: t, (6, 4)),
    ("contiguous 1s", lambda L, t: t, (1, 24, 1)),
    ("transpose -1", lambda L, t: t.reshape(6, 4).t(), (-1,)),
    ("transpose same", lambda L, t: t.reshape(6, 4).t(), (4, 6)),
    ("transpose split outer", lambda L, t: t.reshape(6, 4).t(), (2, 2, 6)),
    ("transpose split inner", lambda L, t: t.reshape(6, 4).t(), (4, 2, 3)),
    ("transpose merge", lambda L, t: t.reshape(6, 4).t(), (2, 12)),
    ("transpose unsqueeze", lambda L, t: t.reshape(6, 4).t(), (4, 1, 6)),
    ("permute 3d merge last", lambda L, t: t.reshape(2, 3, 4).permute(1, 0, 2), (3, 8)),
    ("permute 3d merge first", lambda L, t: t.reshape(2, 3, 4).permute(1, 0, 2), (6, 4)),
    ("permute 3d split", lambda L, t: t.reshape(2, 3, 4).permute(1, 0, 2), (3, 2, 2, 2)),
    ("mT 3d", lambda L, t: t.reshape(2, 3, 4).mT, (2, -1)),
    ("diagonal 2d -1", lambda L, t: t.reshape(4, 6)[:, :4].diagonal(), (-1,)),
    ("diagonal 2d split", lambda L, t: t.reshape(6, 4).diagonal(), (2, 2)),
    ("diagonal 3d -1", lambda L, t: t.reshape(2, 3, 4)[:, :, :3].diagonal(dim1=1, dim2=2), (-1,)),
    ("diagonal 3d batch", lambda L, t: t.reshape(2, 3, 4)[:, :, :3].diagonal(dim1=1, dim2=2), (2, 3, 1)),
    ("diagonal dims 0 2 -1", lambda L, t: t.reshape(2, 3, 4).diagonal(dim1=0, dim2=2), (-1,)),
    ("step rows -1", lambda L, t: t.reshape(6, 4)[::2], (-1,)),
    ("step rows split", lambda L, t: t.reshape(6, 4)[::2], (3, 2, 2)),
    ("step cols -1", lambda L, t: t.reshape(6, 4)[:, ::2], (-1,)),
    ("step cols same", lambda L, t: t.reshape(6, 4)[:, ::2], (6, 2, 1)),
    ("step 1d", lambda L, t: t[::3], (2, 4)),
    ("narrow cols -1", lambda L, t: t.reshape(6, 4)[:, 1:3], (-1,)),
    ("narrow rows -1", lambda L, t: t.reshape(6, 4)[1:], (-1,)),
    ("select col", lambda L, t: t.reshape(6, 4).select(1, 2), (2, 3)),
    ("expand -1", lambda L, t: t[:4].reshape(1, 4).expand(3, 4), (-1,)),
    ("expand split", lambda L, t: t[:4].reshape(1, 4).expand(3, 4), (3, 2, 2)),
    ("size-1 transposed", lambda L, t: t[:12].reshape(3, 1, 4).transpose(0, 1), (-1,)),
    ("empty transposed", lambda L, t: t[:0].reshape(0, 3).t(), (-1,)),
    ("0-d", lambda L, t: t[5], (1, 1)),
    ("0-d -1", lambda L, t: t[5], (-1,)),
    ("contiguous() of transpose", lambda L, t: t.reshape(6, 4).t().contiguous(), (-1,)),
    ("clone of transpose", lambda L, t: t.reshape(6, 4).t().clone(), (-1,)),
    ("advanced index cols", lambda L, t: t.reshape(6, 4)[:, [0, 2]], (-1,)),
    # an elementwise result is laid out as its first operand (PyTorch's TensorIterator; numpy's: row-major)
    ("transpose * row-major", lambda L, t: t.reshape(6, 4).t() * t.reshape(4, 6), (-1,)),
    ("(transpose * row-major).t()", lambda L, t: (t.reshape(6, 4).t() * t.reshape(4, 6)).t(), (-1,)),
    ("row-major + transpose", lambda L, t: t.reshape(4, 6) + t.reshape(6, 4).t(), (-1,)),
    ("(transpose - row)/2", lambda L, t: ((t.reshape(6, 4).t() - t[:6]) / 2).t(), (-1,)),
    ("atan2(transpose, row-major)", lambda L, t: L.atan2(t.reshape(6, 4).t(), t.reshape(4, 6)).t(), (24,)),
    ("3d permute * row-major", lambda L, t: (t.reshape(2, 3, 4).permute(2, 0, 1) * t.reshape(4, 2, 3)).permute(1, 2, 0),
     (6, 4)),
]


def _make(lib, case):
    t = (distnn.tensor if lib is distnn else torch.tensor)(BASE.copy())
    return case[1](lib, t)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_view_is_allowed_or_refused_as_pytorch(case):
    shape = case[2]
    results = []
    for lib in (torch, distnn):
        x = _make(lib, case)
        try:
            results.append(x.view(*shape))
        except RuntimeError as e:
            assert "view size is not compatible with input tensor's size and stride" in str(e), str(e)
            assert "Use .reshape(...) instead" in str(e)
            results.append(None)
    ours, theirs = results[1], results[0]
    assert (ours is None) == (theirs is None), f"distnn {'refuses' if ours is None else 'allows'}, torch does not"
    if theirs is not None:
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-13)  # (atan2: the last bit may differ)
        assert tuple(ours.shape) == tuple(theirs.shape)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_is_contiguous_and_reshape_match_pytorch(case):
    d, t = _make(distnn, case), _make(torch, case)
    assert d.is_contiguous() == t.is_contiguous()
    np.testing.assert_allclose(d.reshape(*case[2]).data, t.reshape(*case[2]).numpy(), rtol=1e-13)


def test_an_allowed_view_shares_memory_and_a_refused_one_reshapes_to_a_copy():
    for lib in (torch, distnn):
        base = lib.tensor(BASE.copy()).reshape(6, 4)
        v = base[1:].view(2, 10)
        v[0, 0] = -1.0  # (written through the view)
        assert float(base[1, 0]) == -1.0
        r = base.t().reshape(-1)  # (a copy: the transpose has no flat view)
        r[0] = -2.0
        assert float(base[0, 0]) == 0.0
        d = base.diagonal()
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            base.reshape(2, 3, 4)[:, :, :3].diagonal(dim1=1, dim2=2).view(-1)
        assert d.view(-1).shape == d.shape


def test_view_of_a_diagonal_passes_gradients():
    x = distnn.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
    y = x.diagonal().view(3, 1) * distnn.tensor(np.array([[1.0], [2.0], [3.0]]))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.diag([1.0, 2.0, 3.0]))


def test_view_as_refuses_as_pytorch():
    for lib in (torch, distnn):
        x = lib.tensor(BASE.copy()).reshape(6, 4).t()
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            x.view_as(lib.tensor(BASE.copy()))
