"""Twins for the PyTorch oracle tests: the same model, or the same custom autograd Function, in torch and in
distnn, so that a test can run both on the same inputs and compare outputs and gradients.

- ``twin_models(build, seed, dtype)``: ``build(nn)`` called with ``torch.nn`` and with ``distnn.nn`` (their
  layers share names and arguments), torch's initial weights copied into distnn's model.
- ``copy_torch_weights(tm, dm)``: torch module ``tm``'s parameters and buffers loaded into distnn module ``dm``
  (strict), for twins built by hand (other constructor arguments, weights set before the copy).
- ``torch_state_as_numpy(tm)``: ``tm.state_dict()`` as host numpy arrays, what distnn's ``load_state_dict``
  takes.
- ``copy_distnn_weights(dm, tm)``: the other way, distnn's weights into a torch module;
  ``torch_mlp_like(torch, model)``: torch's twin of a distnn ``build_model("mlp")`` model, with its weights.
- ``doubling_functions(torch)``: ``Twice``, a custom Function (2x, backward 2g) written once for each library.

torch is imported by the caller (the ``torch`` fixture or ``pytest.importorskip``) and passed in, or imported
here only when a twin is asked for: importing this module never needs torch.
"""
import numpy as np

from distnn import nn as distnn_nn
from distnn.autograd import Function


def torch_state_as_numpy(tm):
    """``tm.state_dict()`` with every tensor as a host numpy array (same keys, same order; a CPU tensor's array
    shares its memory: distnn's ``load_state_dict`` copies the values in)."""
    return {k: v.detach().cpu().numpy() for k, v in tm.state_dict().items()}


def copy_torch_weights(tm, dm, same_keys=False):
    """Load torch module ``tm``'s parameters and buffers into distnn module ``dm`` (strict: a key either lacks
    is an error); returns ``dm``. ``same_keys``: first assert that both state dicts list the same keys in the same
    order (PyTorch's names and registration order are part of what a twin must match)."""
    state = torch_state_as_numpy(tm)
    if same_keys:
        assert list(state) == list(dm.state_dict()), \
            f"state_dict keys differ from PyTorch's: {list(state)} vs distnn's {list(dm.state_dict())}"
    dm.load_state_dict(state)
    return dm


def copy_distnn_weights(dm, tm, same_keys=False):
    """Load distnn module ``dm``'s parameters and buffers into torch module ``tm`` (strict; torch casts them to
    ``tm``'s dtypes); returns ``tm``. ``same_keys``: as in :func:`copy_torch_weights`."""
    import torch

    state = {k: torch.from_numpy(np.array(v)) for k, v in dm.state_dict().items()}
    if same_keys:
        assert list(state) == list(tm.state_dict()), \
            f"state_dict keys differ from PyTorch's: {list(tm.state_dict())} vs distnn's {list(state)}"
    tm.load_state_dict(state)
    return tm


def torch_mlp_like(torch, model):
    """torch's twin of a distnn multi-layer perceptron (``build_model("mlp", ...)`` without dropout or norms:
    Linear layers with ReLU between them): the same layer sizes, in the model's dtype, with its weights."""
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    layers = []
    for i, w in enumerate(weights):
        layers += [torch.nn.Linear(w.shape[1], w.shape[0])] + ([torch.nn.ReLU()] if i < len(weights) - 1 else [])
    net = torch.nn.Sequential(*layers).to(torch_dtype(weights[0].data.dtype))
    return copy_distnn_weights(model, net)


def torch_dtype(dtype):
    """torch's dtype for a numpy floating dtype (``np.float64`` -> ``torch.float64``)."""
    import torch

    return getattr(torch, np.dtype(dtype).name)


def twin_models(build, seed=0, dtype=None):
    """``(tm, dm)``: ``build(torch.nn)`` and ``build(distnn.nn)``, built in that order, with torch's initial
    weights and buffers copied into distnn's. ``seed``: ``torch.manual_seed(seed)`` first, so torch's weights
    are the same on every run (None: torch's generator as the caller left it). ``dtype`` (numpy's): both
    models cast to it (``tm.to(torch_dtype(dtype))``, ``dm.to(dtype)``) before the copy; None: as built.

    >>> tm, dm = twin_models(lambda nn: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    """
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    tm = build(torch.nn)
    dm = build(distnn_nn)
    if dtype is not None:
        tm = tm.to(torch_dtype(dtype))
        dm = dm.to(dtype)
    copy_torch_weights(tm, dm)
    return tm, dm


def doubling_functions(torch):
    """``(Twice, TorchTwice)``: a custom autograd Function computing ``2 * a`` (backward: ``2 * g``) in distnn and
    in torch; both classes are named ``Twice``, so both graph nodes are ``TwiceBackward``."""

    class Twice(Function):
        def forward(self, a):
            return a * 2

        def backward(self, g):
            return g * 2

    return Twice, _torch_twice(torch)


def _torch_twice(torch):
    # (its own scope: torch names the node class after the class as it is created, so it must be born "Twice")
    class Twice(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    return Twice
