"""``TripletMarginWithDistanceLoss``: PyTorch's module over ``F.triplet_margin_with_distance_loss``."""
from __future__ import annotations

from distnn.functional import triplet_distance_loss as TD

from .distance import PairwiseDistance
from .loss import _Loss


class TripletMarginWithDistanceLoss(_Loss):
    """``TripletMarginWithDistanceLoss(*, distance_function=None, margin=1.0, swap=False, reduction="mean")``;
    forward(anchor, positive, negative): ``max(0, margin + d(a, p) - d(a, n))`` reduced.

    As PyTorch's, no distance function means a ``PairwiseDistance()`` child module (so it shows in the repr),
    and a margin that is not > 0 is refused when the loss is built.
    """

    def __init__(self, *, distance_function=None, margin: float = 1.0, swap: bool = False, reduction: str = "mean"):
        super().__init__(reduction)
        if not margin > 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} "
                             f"instead")
        if distance_function is not None and not callable(distance_function):
            raise TypeError(f"TripletMarginWithDistanceLoss: distance_function must be callable, got "
                            f"{type(distance_function).__name__}")
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin, self.swap = margin, swap

    def forward(self, anchor, positive, negative):
        return TD.triplet_margin_with_distance_loss(anchor, positive, negative,
                                                    distance_function=self.distance_function, margin=self.margin,
                                                    swap=self.swap, reduction=self.reduction)
