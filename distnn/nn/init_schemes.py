"""Whole-model initialisation schemes by name: ``init_model_(model, "kaiming_normal")``, ``model.init`` in a config.

The lecture notes: all-zero weights make every unit of a layer learn the same
thing; random weights must be scaled to the layer's fan-in so activations keep
their variance from layer to layer. Each scheme draws every Linear and Conv
weight with the :mod:`distnn.nn.init` function of the same name (PyTorch's
names and formulas) and sets the biases to zero (the notes: "still OK to init
biases with zeros"):

============== ================================================ ============================
scheme         weights                                          as
============== ================================================ ============================
kaiming_uniform U(-b, b), b = sqrt(6 / fan_in)                  ``kaiming_uniform_(w, nonlinearity="relu")``
kaiming_normal  N(0, 2 / fan_in) (He et al., for ReLUs)         ``kaiming_normal_(w, nonlinearity="relu")``
xavier_uniform  U(-b, b), b = sqrt(6 / (fan_in + fan_out))      ``xavier_uniform_(w)``
xavier_normal   N(0, 2 / (fan_in + fan_out)) (Glorot & Bengio)  ``xavier_normal_(w)``
============== ================================================ ============================

``fan_in = in * kh * kw`` for a Conv weight ``(out, in, kh, kw)``. "default"
leaves the layers as they build themselves (PyTorch's defaults: a
kaiming-uniform weight with ``a = sqrt(5)`` and a small uniform bias).
Embeddings, recurrent weights, attention input projections and normalization
layers always keep their own initialisation. The draws come, layer by layer
in ``model.modules()`` order, from ``generator`` (default: distnn's
generator, ``distnn.manual_seed``): the same seed gives the same weights, on
every rank.
"""
from __future__ import annotations

from . import init
from .conv import _ConvNd
from .linear import Linear

__all__ = ["INIT_SCHEMES", "check_scheme", "init_model_"]

INIT_SCHEMES = ("default", "kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal")

_DRAW = {
    # He et al. derive their scale for ReLU units: gain sqrt(2) (PyTorch's leaky_relu default with a = 0
    # gives the same).
    "kaiming_uniform": lambda w, gen: init.kaiming_uniform_(w, nonlinearity="relu", generator=gen),
    "kaiming_normal": lambda w, gen: init.kaiming_normal_(w, nonlinearity="relu", generator=gen),
    "xavier_uniform": lambda w, gen: init.xavier_uniform_(w, generator=gen),
    "xavier_normal": lambda w, gen: init.xavier_normal_(w, generator=gen),
}


def check_scheme(scheme, what: str = "init") -> str:
    """``scheme`` when it names a scheme, else ValueError naming ``what`` and the allowed values."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, INIT_SCHEMES))}; got {scheme!r}")
    return scheme


def init_model_(model, scheme: str = "default", generator=None):
    """Re-initialise, in place, every Linear and Conv layer of ``model`` with ``scheme`` (biases zero).

    ``scheme`` is one of :data:`INIT_SCHEMES`; "default" changes nothing.
    ``generator`` (a ``numpy.random.Generator``; default distnn's) gives the
    draws. Returns ``model``.
    """
    check_scheme(scheme)
    if scheme == "default":
        return model
    draw = _DRAW[scheme]
    for m in model.modules():
        if isinstance(m, (Linear, _ConvNd)):
            draw(m.weight, generator)
            if m.bias is not None:
                init.zeros_(m.bias)
    return model
