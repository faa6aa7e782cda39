"""``MLP``: Linear layers with an activation (and optional norm and dropout) between them."""
from __future__ import annotations

import math

from distnn import nn

from . import arguments as argspec
from .inputs import as_real
from .registry import register_model

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "elu": nn.ELU,
                "leaky_relu": nn.LeakyReLU}


NORM_POSITIONS = ("before_activation", "after_activation")


def _position_needs_norm(v, q):
    """Relation: ``norm_position="after_activation"`` needs a ``norm`` (without one it would do nothing)."""
    if v["norm_position"] == "after_activation" and v["norm"] is None:
        return (f"{q('norm_position')} = 'after_activation' needs {q('norm')} ('batch' or 'layer'): "
                f"without a norm there is nothing to place")
    return None


class _Default(tuple):
    """A default that the model can tell from the same value given (``hidden_sizes`` beside ``sizes``)."""


_HIDDEN_SIZES = _Default((128,))


def _in_features(input_shape):
    return int(math.prod(input_shape)) if input_shape else None


@register_model("mlp")
class MLP(nn.Sequential):
    """``MLP(sizes, activation="relu", dropout=0.0, norm=None, norm_position="before_activation")``.

    ``sizes = [in, hidden..., out]``. Each hidden layer is Linear -> [BatchNorm1d |
    LayerNorm] -> activation -> [Dropout]; the last Linear has nothing after it
    (logits). ``norm_position="after_activation"`` normalizes the activations
    instead: Linear -> activation -> norm -> [Dropout] (the lecture notes: batch
    norm goes before or after the activation, "after can work better"); it needs
    a ``norm``, and moves the norm's parameters to other indices (``2.weight``
    instead of ``1.weight``). It is an ``nn.Sequential``, so its parameters are named ``0.weight``,
    ``0.bias``, ... exactly like the same stack built with ``torch.nn.Sequential``.
    Inputs with more than two dimensions are flattened after the batch axis.

    Instead of ``sizes``, give ``hidden_sizes`` (default ``(128,)``) with
    ``input_shape`` and ``num_classes`` (as the trainer does). Giving both
    ``sizes`` and ``hidden_sizes`` is a ValueError: ``sizes`` already lists the
    hidden layers, and ``hidden_sizes`` would be ignored.
    """

    arguments = argspec.Arguments({
        "sizes": argspec.integers(min_length=2, optional=True),
        "hidden_sizes": argspec.integers(min_length=0),  # [] is a linear model
        "activation": argspec.choice(*_ACTIVATIONS),
        "dropout": argspec.probability(),
        "norm": argspec.choice(None, "batch", "layer"),
        "norm_position": argspec.choice(*NORM_POSITIONS),
    }, relations=[_position_needs_norm], only_with={"hidden_sizes": argspec.instead_of("sizes")})

    def __init__(self, sizes=None, activation="relu", dropout=0.0, norm=None, hidden_sizes=_HIDDEN_SIZES,
                 num_classes=None, input_shape=None, generator=None, norm_position="before_activation"):
        given = {} if hidden_sizes is _HIDDEN_SIZES else {"hidden_sizes": hidden_sizes}
        if sizes is not None:
            given["sizes"] = sizes
        self.arguments.check("MLP", activation=activation, dropout=dropout, norm=norm, norm_position=norm_position,
                             **given)
        in_features = _in_features(input_shape)
        if sizes is None:
            if in_features is None or num_classes is None:
                raise ValueError("MLP: give sizes=[in, hidden..., out], or input_shape and num_classes")
            sizes = [in_features, *hidden_sizes, num_classes]
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP: sizes must list at least input and output sizes (all positive), got {sizes}")
        if num_classes is not None and sizes[-1] != num_classes:
            raise ValueError(f"MLP: sizes end with {sizes[-1]} outputs but num_classes is {num_classes}")
        if in_features is not None and sizes[0] != in_features:
            raise ValueError(f"MLP: sizes start with {sizes[0]} inputs but input_shape {tuple(input_shape)} "
                             f"has {in_features} features")
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b, generator=generator))
            if i == len(sizes) - 2:
                break
            norm_layer = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[norm](b) if norm else None
            if norm_layer is not None and norm_position == "before_activation":
                layers.append(norm_layer)
            layers.append(_ACTIVATIONS[activation]())
            if norm_layer is not None and norm_position == "after_activation":
                layers.append(norm_layer)
            if dropout > 0:
                layers.append(nn.Dropout(dropout, generator=generator))
        super().__init__(*layers)
        self.sizes = sizes

    def forward(self, x):
        x = as_real(self, x)
        if x.ndim > 2:
            x = x.flatten(1)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"{self.where()}: expected input (N, {self.sizes[0]}) (or (N, ...) flattening to it), "
                             f"got {tuple(x.shape)}")
        return super().forward(x)
