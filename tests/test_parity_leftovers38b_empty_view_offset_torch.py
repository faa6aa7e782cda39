"""Empty views made by basic indexing start where PyTorch 2.13's start: ``b[2:2].storage_offset()`` is 2 (numpy
drops an empty slice's start to offset 0), for slices past the end, reversed bounds, steps, selects of tensors with
an empty dim, views of views, ``narrow`` and ``split``; and what that changes: an ``out=`` or ``resize_`` of such a
view writes the base from that offset, as PyTorch's."""
import warnings

import pytest
import torch

import distnn

VIEWS = {
    "b[2:2]": lambda b: b[2:2],
    "b[5:5]": lambda b: b[5:5],
    "b[12:12]": lambda b: b[12:12],
    "b[4:2]": lambda b: b[4:2],
    "b[13:20]": lambda b: b[13:20],
    "b[-1:-1]": lambda b: b[-1:-1],
    "b[3:3:2]": lambda b: b[3:3:2],
    "b[:0]": lambda b: b[:0],
    "m[1:1, 2:]": lambda b: b.reshape(3, 4)[1:1, 2:],
    "m[2:, 3:3]": lambda b: b.reshape(3, 4)[2:, 3:3],
    "m[1, 2:2]": lambda b: b.reshape(3, 4)[1, 2:2],
    "m[..., 1:1]": lambda b: b.reshape(3, 4)[..., 1:1],
    "m[None, 2, 1:1]": lambda b: b.reshape(3, 4)[None, 2, 1:1],
    "m[1:3][1][2:2]": lambda b: b.reshape(3, 4)[1:3][1][2:2],
    "narrow": lambda b: b.narrow(0, 3, 0),
    "split middle": lambda b: b.split([2, 0, 10])[1],
    "select of (3, 0)": lambda b: b.new_zeros(3, 0)[1],
    "t[2:2] of 2-d with steps": lambda b: b.reshape(3, 4)[::2, 3:3],
}


@pytest.mark.parametrize("dtype", ["float32", "int16", "complex128"])
@pytest.mark.parametrize("view", list(VIEWS))
def test_storage_offset_of_an_empty_view(view, dtype):
    got = VIEWS[view](distnn.arange(12).to(getattr(distnn, dtype)))
    want = VIEWS[view](torch.arange(12).to(getattr(torch, dtype)))
    assert got.numel() == 0 and tuple(got.shape) == tuple(want.shape)
    assert got.storage_offset() == want.storage_offset()


OUT_VIEWS = ["b[2:2]", "b[4:2]", "b[3:3:2]", "m[1:1, 2:]", "m[1, 2:2]", "m[1:3][1][2:2]", "narrow", "split middle"]


def _write(L, view, how):
    base = L.zeros(12)
    v = VIEWS[view](base)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (an empty out= is resized without PyTorch's deprecation warning)
        if how == "clamp out=":
            L.clamp(L.tensor([5.0, -1.0]), 0, 2, out=v)
        elif how == "resize_":
            v.resize_(2)
            v.copy_(L.tensor([7.0, 8.0]))
        else:
            v.resize_(1, 2)
            v.fill_(3)
    return base.tolist(), v.tolist(), v.storage_offset()


@pytest.mark.parametrize("how", ["clamp out=", "resize_", "resize_ 2-d"])
@pytest.mark.parametrize("view", OUT_VIEWS)
def test_an_empty_view_written_through_writes_its_base_from_its_offset(view, how):
    assert _write(distnn, view, how) == _write(torch, view, how)


def test_recording_through_an_empty_slice():
    """The empty view in a graph: its gradient is all zeros, as PyTorch's."""
    def run(L):
        x = L.arange(6.0, requires_grad=True)
        e = x[3:3]
        (e.sum() + x.sum()).backward()
        return e.storage_offset(), e.grad_fn.name(), x.grad.tolist()

    assert run(distnn) == run(torch)
