"""The nodes a checkpointed function records keep their per-call names (``grad_fn.name()``: MmBackward0,
ProdBackward1, IndexBackward0...) once the region is freed and after backward, as torch.utils.checkpoint's
(torch 2.13), with early stop on and off."""
import numpy as np
import pytest

import distnn
from distnn.utils.checkpoint import checkpoint

torch = pytest.importorskip("torch")
from torch.utils import checkpoint as tcp  # noqa: E402


def _ops(x, w):
    """Ops whose PyTorch name depends on the call (distnn reads it from what the node saved)."""
    return [x @ w, x.prod(0), x.prod(), x[:, [0, 2]], x[1], x.median(), x.nanmedian(), x.reshape(-1), x.amax(0)]


def _names(lib, tensor, cp, early_stop):
    """(the names of the region's nodes after the forward, after the backward, outside any checkpoint)."""
    nodes = []

    def region(x, w):
        outs = _ops(x, w)
        if not nodes:  # (the forward's nodes: the recomputation's are other nodes)
            nodes.extend(t.grad_fn for t in outs)
        return sum(o.sum() for o in outs)

    x = tensor(np.arange(9.0).reshape(3, 3) + 1.0, requires_grad=True)
    w = tensor(np.ones((3, 3)), requires_grad=True)
    y = cp(region, x, w, use_reentrant=False, early_stop=early_stop)
    after_forward = [n.name() for n in nodes]
    y.backward()
    return after_forward, [n.name() for n in nodes], [t.grad_fn.name() for t in _ops(x, w)]


@pytest.mark.parametrize("early_stop", [True, False])
def test_names_of_nodes_made_in_a_region_are_torchs_after_forward_and_backward(early_stop):
    forward, backward, plain = _names(distnn, distnn.tensor, checkpoint, early_stop)
    their_forward, their_backward, their_plain = _names(torch, torch.tensor, tcp.checkpoint, early_stop)
    assert plain == their_plain  # (the ops chosen are named as PyTorch's outside checkpointing too)
    assert forward == backward == their_forward == their_backward == their_plain
