"""Monte Carlo dropout: class probabilities averaged over N random dropout masks at prediction time.

The lecture notes on dropout at test time: besides turning dropout off, one
"can also leave dropout on, sample multiple realizations of the randomness",
and average them (Gal & Ghahramani's MC dropout). Each of the N forward
passes of a batch draws fresh masks; their predicted probability VECTORS are
averaged, exactly as an ensemble's members are
(:func:`distnn.train.ensemble.log_average_probabilities`): an ensemble of N
thinned networks that share weights.

Only dropout is switched back on: batch norm keeps using its running
statistics (eval mode) and updates nothing, so no layer mixes the samples of a
batch and a sample's output depends on its own masks only.

The masks belong to the samples, not to the batches: sample ``i`` of the input
(the ``i``-th row the wrapper is given, counting from 0 over all its calls) in
pass ``s`` gets the counter-based per-sample masks of
:class:`~distnn.data.batch_random.BatchShareGenerator` seeded with
``[seed, s]``, at global position ``i`` (the scheme that makes training's
dropout masks the same on any number of ranks). So a prediction depends on
the model, the sample, its index in the input and the seed, and not on the
batch size: the first ``k`` rows of a file are predicted as a file of only
those rows is. The key is the index, not the content: a sample moved to
another row gets other masks (another draw of the same Monte Carlo estimate).
Every dropout layer (a layer's own ``generator`` included) draws from these
generators during the passes.
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np

from distnn import nn
from distnn import random as drandom
from distnn.data.batch_random import BatchShareGenerator
from distnn.nn.dropout import _DropoutNd
from distnn.nn.rnn import RNNBase

from .ensemble_model import log_average_probabilities

__all__ = ["MCDropout", "mc_dropout", "dropout_layers", "dropout_active", "NoDropoutError"]


def _rate(module) -> float:
    if isinstance(module, (nn.Dropout, _DropoutNd)):
        return module.p
    if isinstance(module, RNNBase):  # (between stacked layers only)
        return module.dropout if module.num_layers > 1 else 0.0
    return module.dropout  # MultiheadAttention: on the attention weights


def dropout_layers(model) -> list:
    """The modules of ``model`` whose training mode switches on dropout and nothing else, with a rate > 0:
    ``Dropout`` layers and their channel-wise and alpha variants (``Dropout1d``-``3d``, ``AlphaDropout``,
    ``FeatureAlphaDropout``), stacked recurrent layers' inter-layer dropout, attention-weight dropout. (Not
    ``RReLU``: its training mode draws slopes, not masks.)"""
    kinds = (nn.Dropout, _DropoutNd, nn.MultiheadAttention, RNNBase)
    return [m for m in model.modules() if isinstance(m, kinds) and _rate(m) > 0]


@contextlib.contextmanager
def dropout_active(model, generator):
    """Within the block, ``model``'s dropout layers are in training mode and draw from ``generator``;
    every other module keeps its mode (batch norm in eval mode stays there). Restored afterwards."""
    layers = dropout_layers(model)
    saved = [(m.training, m.generator) for m in layers]
    try:
        for m in layers:
            # (only the flag of this module, not Module.train's walk into its children: an attention
            # layer's projections, a recurrent layer's cells)
            object.__setattr__(m, "training", True)
            object.__setattr__(m, "generator", None)  # draw from the generator lent below
        with drandom.use_generator(generator):
            yield
    finally:
        for m, (training, gen) in zip(layers, saved):
            object.__setattr__(m, "training", training)
            object.__setattr__(m, "generator", gen)


class MCDropout(nn.Module):
    """``model`` with Monte Carlo dropout: ``forward`` averages ``samples`` passes with dropout active.

    The output is ``log(mean_s softmax(model(x) with mask s))``: logits whose
    softmax is the averaged probability vector and whose cross-entropy is its
    negative log-likelihood, so evaluation and prediction code takes it as it
    takes the model (as it takes an ensemble). The input's first axis holds the
    samples; they are numbered in call order from ``position`` (0 when made),
    and sample ``i``'s masks in pass ``s`` are a function of ``(seed, i, s)``
    only (see the module's notes): feeding an input in batches of any size, in
    order, gives the same result as one call on all of it.
    """

    def __init__(self, model, samples: int, seed: int = 0):
        super().__init__()
        _check_int("samples", samples, 1)
        _check_int("seed", seed, 0)
        self.model = model
        # the wrapper takes the model's mode (a new Module starts in training mode): code that puts the
        # wrapper back into "its" mode afterwards (eval_outputs) must not switch the model's batch norm on
        object.__setattr__(self, "training", model.training)
        self.samples, self.seed = int(samples), int(seed)
        self.position = 0  # the input index of the next row given to forward

    def forward(self, x):
        n = int(x.shape[0])
        rows = np.arange(self.position, self.position + n)
        outs = []
        for s in range(self.samples):
            # one generator per pass, keyed by the pass; its masks are per sample, keyed by the input index
            generator = BatchShareGenerator([self.seed, s], self.position + n, rows)
            with dropout_active(self.model, generator):
                outs.append(self.model(x))
        self.position += n
        return log_average_probabilities(outs)

    def extra_repr(self):
        return f"samples={self.samples}, seed={self.seed}"


def mc_dropout(model, samples: int, seed: int = 0):
    """The model to predict with: ``model`` itself for ``samples`` 0 or 1 (dropout off, as always), else
    :class:`MCDropout` ``(model, samples, seed)``. A model without dropout cannot be sampled: ValueError."""
    _check_int("mc_samples", samples, 0)
    _check_int("mc_seed", seed, 0)
    if samples <= 1:
        return model
    if not dropout_layers(model):
        raise NoDropoutError(samples)
    return MCDropout(model, samples, seed)


class NoDropoutError(ValueError):
    """``mc_samples`` N > 1 asked of a model without dropout. The message names the argument ``mc_samples``;
    :meth:`naming` gives it for what the caller typed instead (the command line's ``--mc-samples``)."""

    def __init__(self, samples: int):
        self.samples = samples
        super().__init__(self.naming("mc_samples = ", "use 0 or 1"))

    def naming(self, option: str, remedy: str) -> str:
        """The message with ``option`` before the number (``"--mc-samples "``) and ``remedy`` at its end."""
        return (f"{option}{self.samples} needs dropout, but the model has no dropout layer with a rate > 0: every "
                f"sample would be the same prediction ({remedy})")


def _check_int(name, value, minimum):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
