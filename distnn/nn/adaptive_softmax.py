"""``AdaptiveLogSoftmaxWithLoss`` (Grave et al., "Efficient softmax approximation for GPUs"): PyTorch's
``nn.AdaptiveLogSoftmaxWithLoss``, its parameters, forward ``(output, loss)``, ``log_prob`` and ``predict``.

The classes are split by ``cutoffs`` into a shortlist [0, cutoffs[0]) and clusters [cutoffs[i], cutoffs[i+1]).
The ``head`` (a Linear to shortlist + one logit per cluster) scores the shortlist and the clusters; cluster i's
``tail[i]`` (two bias-free Linears through ``in_features // div_value ** (i + 1)`` features) scores its
classes. A class's log-probability is the head's for a shortlist class, else the head's for its cluster plus
the cluster's own log-softmax. ``forward`` evaluates each tail only on the rows whose target lies in its
cluster, as PyTorch's; ``log_prob`` all of them.
"""
from __future__ import annotations

import itertools
from collections import namedtuple

import numpy as np

from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional import cat, log_softmax

from .linear import Linear
from .containers import ModuleList, Sequential
from .module import Module

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(get_array_module(x).asarray(x))


def _host(target):
    """The target's values as a host numpy array (a Tensor's, a device array's, a list's)."""
    t = target.data if isinstance(target, Tensor) else target
    return t.get() if hasattr(t, "get") and not isinstance(t, np.ndarray) else np.asarray(t)


class AdaptiveLogSoftmaxWithLoss(Module):
    """Efficient softmax approximation, as PyTorch's ``nn.AdaptiveLogSoftmaxWithLoss``.

    ``cutoffs``: unique, increasing ints in [1, n_classes - 1]; ``div_value``: the tails' width divisor;
    ``head_bias``: a bias on the head. Parameters ``head.weight`` (and ``head.bias``), ``tail.i.0.weight`` and
    ``tail.i.1.weight``, initialized as Linear's, so a PyTorch state_dict loads unchanged.
    ``forward(input, target)`` returns ``_ASMoutput(output, loss)``: each row's log-probability of its target
    and the mean negative log-likelihood; ``input`` (N, in_features) with ``target`` (N,), or (in_features,)
    with a 0-d target.
    """

    def __init__(self, in_features, n_classes, cutoffs, div_value=4.0, head_bias=False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted in an increasing "
                             f"order, where each value is between 1 and n_classes-1 (got {cutoffs} for n_classes "
                             f"{n_classes})")
        self.in_features, self.n_classes = in_features, n_classes
        self.cutoffs = [int(c) for c in cutoffs] + [n_classes]
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, device=device, dtype=dtype)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, device=device, dtype=dtype),
                                        Linear(hsz, osz, bias=False, device=device, dtype=dtype)))

    def reset_parameters(self):
        """Draw every Linear's parameters again, as at construction."""
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_, target_):
        tgt = _host(target_)
        if tgt.ndim == 1:
            if input_.shape[0] != tgt.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if input_.ndim != 2:
                raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with size "
                                   f"{tuple(input_.shape)}")
        elif tgt.ndim == 0:
            if input_.ndim != 1:
                raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with size "
                                   f"{tuple(input_.shape)}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if tgt.dtype.kind not in "iu":  # (PyTorch fails later, in gather: the index must be int64)
            raise RuntimeError(f"{type(self).__name__}: target must hold integer class indices, got dtype "
                               f"{tgt.dtype}")
        batched = tgt.ndim > 0
        input_ = _tensor(input_)
        input = input_ if batched else input_.reshape((1,) + tuple(input_.shape))
        tgt = tgt.reshape(-1).astype(np.int64)
        if tgt.size and (tgt.min() < 0 or tgt.max() >= self.n_classes):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                               f"[{tgt.min()}, {tgt.max()}] were found. ")
        xp = get_array_module(input)
        gather_inds = tgt.copy()
        rows_of, parts = [np.nonzero(tgt < self.shortlist_size)[0]], []
        for i, (low, high) in enumerate(itertools.pairwise(self.cutoffs)):
            rows = np.nonzero((tgt >= low) & (tgt < high))[0]
            if not rows.size:
                continue
            gather_inds[rows] = self.shortlist_size + i
            cluster_output = self.tail[i](input.index_select(0, xp.asarray(rows)))
            local = log_softmax(cluster_output, dim=1).gather(1, xp.asarray(tgt[rows] - low)[:, None])
            rows_of.append(rows)
            parts.append(local.reshape(-1))
        head_logprob = log_softmax(self.head(input), dim=1)
        output = head_logprob.gather(1, xp.asarray(gather_inds)[:, None]).reshape(-1)
        if parts:  # the clusters' terms in target order (0 for shortlist rows), added as PyTorch's output +=
            zeros = Tensor(xp.zeros(len(rows_of[0]), dtype=output.dtype))
            order = np.argsort(np.concatenate(rows_of), kind="stable")
            output = cat([zeros] + parts)[xp.asarray(order)] + output
        loss = (-output).mean()
        if not batched:
            output = output.reshape(())
        return _ASMoutput(output, loss)

    def _get_full_log_prob(self, input, head_output):
        """The log-probabilities of all n_classes, from ``input`` and the head's output on it."""
        head_logprob = log_softmax(head_output, dim=1)
        pieces = [head_logprob[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = log_softmax(self.tail[i](input), dim=1)
            pieces.append(cluster_logprob + head_logprob[:, self.shortlist_size + i:self.shortlist_size + i + 1])
        return cat(pieces, dim=1)

    def log_prob(self, input):
        """(N, in_features) -> (N, n_classes): every class's log-probability."""
        input = _tensor(input)
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input):
        """(N, in_features) -> (N,) int64: the most probable class of each row (``log_prob(input).argmax(1)``,
        with the tails evaluated only for the rows whose head prefers a cluster, as PyTorch's)."""
        input = _tensor(input)
        xp = get_array_module(input)
        with no_grad():  # (an argmax: nothing to differentiate)
            return Tensor(self._predict(xp, input))

    def _predict(self, xp, input):
        head_output = self.head(input)
        output = xp.argmax(head_output.data, axis=1).astype(np.int64)
        not_in_shortlist = output >= self.shortlist_size
        if not bool(not_in_shortlist.any()):
            return output
        if bool(not_in_shortlist.all()):
            return xp.argmax(self._get_full_log_prob(input, head_output).data, axis=1).astype(np.int64)
        rows = xp.nonzero(not_in_shortlist)[0]
        log_prob = self._get_full_log_prob(input.index_select(0, rows), head_output.index_select(0, rows))
        output[rows] = xp.argmax(log_prob.data, axis=1)
        return output


__all__ = ["AdaptiveLogSoftmaxWithLoss"]
