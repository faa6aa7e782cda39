"""Loss modules: thin wrappers over ``distnn.functional.loss`` with PyTorch's constructor arguments."""
from __future__ import annotations

from distnn.autograd.tensor import Tensor
from distnn.functional import gaussian_nll as G
from distnn.functional import loss as L
from distnn.functional import margin_loss as M

from .module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
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
