"""Loss modules: thin wrappers over ``distnn.functional.loss`` with PyTorch's constructor arguments."""
from __future__ import annotations

import warnings

from distnn.autograd.tensor import Tensor
from distnn.functional import ctc as CTC
from distnn.functional import embedding_loss as EL
from distnn.functional import gaussian_nll as G
from distnn.functional import loss as L
from distnn.functional import loss_more as LM
from distnn.functional import margin_loss as M
from distnn.functional import multilabel_loss as ML

from .module import Module


class _Loss(Module):
    _reductions = ("mean", "sum", "none")  # (KLDivLoss adds 'batchmean')

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in self._reductions:  # a bad config fails when the loss is built
            names = ", ".join(repr(r) for r in self._reductions[:-1]) + f" or {self._reductions[-1]!r}"
            raise ValueError(f"{type(self).__name__}: reduction must be {names}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    """A loss with optional per-class ``weight``, kept as a buffer (so it follows ``.to()`` and state_dict)."""

    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        if weight is not None and not isinstance(weight, Tensor):
            weight = Tensor(weight)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy of logits (N, C) or (N, C, d1, ...) against integer class labels.

    ``weight`` rescales classes, ``ignore_index`` labels do not count, ``label_smoothing``
    mixes the one-hot target with the uniform distribution.
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return L.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (e.g. LogSoftmax output) at integer labels."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return L.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class NLLLoss2d(NLLLoss):
    """PyTorch's deprecated alias of :class:`NLLLoss` (which takes (N, C, H, W) inputs itself); it warns
    as PyTorch's (FutureWarning) when built."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        warnings.warn("`NLLLoss2d` has been deprecated. Please use `NLLLoss` instead as a drop-in replacement and "
                      "see https://pytorch.org/docs/main/nn.html#torch.nn.NLLLoss for more details.", FutureWarning,
                      stacklevel=2)
        super().__init__(weight, ignore_index, reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in [0, 1] (e.g. a Sigmoid's output); ``weight`` rescales elements.

    Logs are clamped at -100, as PyTorch's. BCEWithLogitsLoss on the logits is the stable choice.
    """

    def forward(self, input, target):
        return L.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits; ``weight`` rescales elements, ``pos_weight`` the positive term."""

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", None if weight is None or isinstance(weight, Tensor) else Tensor(weight))
        if isinstance(weight, Tensor):
            self.weight = weight
        self.register_buffer("pos_weight", None if pos_weight is None or isinstance(pos_weight, Tensor)
                             else Tensor(pos_weight))
        if isinstance(pos_weight, Tensor):
            self.pos_weight = pos_weight

    def forward(self, input, target):
        return L.binary_cross_entropy_with_logits(input, target, self.weight, self.pos_weight, self.reduction)


class MSELoss(_Loss):
    def forward(self, input, target):
        return L.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    def forward(self, input, target):
        return L.l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """0.5 d^2 where |d| <= delta, else delta * (|d| - 0.5 delta)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        L.check_huber_delta(delta)  # a bad config fails when the loss is built
        self.delta = delta

    def forward(self, input, target):
        return L.huber_loss(input, target, self.reduction, self.delta)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge loss: sum over j != y of max(0, margin - x[y] + x[j])^p / C."""

    def __init__(self, p: int = 1, margin: float = 1.0, weight=None, reduction: str = "mean"):
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p = 1 and p = 2 are supported, got {p}")
        super().__init__(weight, reduction)
        self.p, self.margin = p, margin

    def forward(self, input, target):
        return L.multi_margin_loss(input, target, self.p, self.margin, self.weight, self.reduction)


class GaussianNLLLoss(_Loss):
    """Negative log-likelihood of a target under Normal(input, var); forward(input, target, var).

    See ``F.gaussian_nll_loss`` for var's shapes; ``eps`` clamps var, ``full`` adds 0.5 log(2 pi).
    """

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):
        return G.gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class SoftMarginLoss(_Loss):
    """Logistic loss log(1 + exp(-y x)) for labels y in {-1, +1} (stable for any |x|)."""

    def forward(self, input, target):
        return M.soft_margin_loss(input, target, self.reduction)


class HingeEmbeddingLoss(_Loss):
    """x where y = 1, max(0, margin - x) where y = -1: PyTorch's loss on pair distances x.

    Not the notes' hinge max(0, 1 - y s) on scores: that is ``F.binary_hinge_loss``.
    """

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input, target):
        return M.hinge_embedding_loss(input, target, self.margin, self.reduction)


class SmoothL1Loss(_Loss):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (beta = 0: the L1 loss); see ``F.smooth_l1_loss``."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        LM._check_beta(beta)  # (PyTorch's refuses a negative beta at the first call)
        self.beta = beta

    def forward(self, input, target):
        return LM.smooth_l1_loss(input, target, self.reduction, self.beta)


class KLDivLoss(_Loss):
    """KL divergence of the target distribution from the input's log-probabilities; see ``F.kl_div``.

    Use ``reduction='batchmean'`` for the KL divergence averaged over the batch; PyTorch's default 'mean'
    also divides by the number of classes (with a warning at each call, as PyTorch's).
    """

    _reductions = ("mean", "batchmean", "sum", "none")

    def __init__(self, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return LM.kl_div(input, target, self.reduction, self.log_target)


class PoissonNLLLoss(_Loss):
    """Negative log-likelihood of counts under Poisson(rate): ``exp(input) - target * input`` (``log_input``)
    or ``input - target * log(input + eps)``, plus Stirling's log(target!) where target > 1 with ``full``."""

    def __init__(self, log_input: bool = True, full: bool = False, eps: float = 1e-8, reduction: str = "mean"):
        super().__init__(reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input, target):
        return LM.poisson_nll_loss(log_input, target, self.log_input, self.full, self.eps, self.reduction)


class CosineEmbeddingLoss(_Loss):
    """1 - cos(x1, x2) for target 1, max(0, cos(x1, x2) - margin) for target -1; forward(input1, input2,
    target)."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return EL.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)


class MarginRankingLoss(_Loss):
    """max(0, -target * (input1 - input2) + margin); forward(input1, input2, target)."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return EL.margin_ranking_loss(input1, input2, target, self.margin, self.reduction)


class TripletMarginLoss(_Loss):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)) with the ``p``-norm pairwise distance;
    forward(anchor, positive, negative). ``swap``: the negative's distance is the smaller of d(a, n), d(p, n)."""

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 reduction: str = "mean"):
        super().__init__(reduction)
        EL._check_triplet_margin(margin)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return EL.triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps, self.swap,
                                      self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """One logistic loss per class (targets in {0, 1}), averaged over the classes; ``weight`` per class."""

    def forward(self, input, target):
        return ML.multilabel_soft_margin_loss(input, target, self.weight, self.reduction)


class MultiLabelMarginLoss(_Loss):
    """Multi-label hinge loss: targets are class indices, each row's ending at its first -1."""

    def forward(self, input, target):
        return ML.multilabel_margin_loss(input, target, self.reduction)


class CTCLoss(_Loss):
    """The Connectionist Temporal Classification loss (see ``distnn.functional.ctc_loss``):
    forward(log_probs (T, N, C) or (T, C), targets, input_lengths, target_lengths). ``blank``: the blank
    class; ``zero_infinity``: infinite losses (alignments that cannot fit) and their gradients become 0."""

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False):
        super().__init__(reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return CTC.ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                            self.zero_infinity)
