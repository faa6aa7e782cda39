"""PyTorch's ``torch.distributions.transforms`` (2.13): every transform, from the modules that define them
(:mod:`.transform` the base and the structural ones, :mod:`.transforms_elementwise`, :mod:`.transforms_vector`,
:mod:`.transforms_cat_stack`)."""
from .transform import (ComposeTransform, IndependentTransform, ReshapeTransform, Transform,  # noqa: F401
                        _InverseTransform, identity_transform)
from .transforms_cat_stack import CatTransform, StackTransform
from .transforms_elementwise import (AbsTransform, AffineTransform, CumulativeDistributionTransform, ExpTransform,
                                     PowerTransform, SigmoidTransform, SoftplusTransform, TanhTransform)
from .transforms_vector import (CorrCholeskyTransform, LowerCholeskyTransform, PositiveDefiniteTransform,
                                SoftmaxTransform, StickBreakingTransform)

__all__ = ["AbsTransform", "AffineTransform", "CatTransform", "ComposeTransform", "CorrCholeskyTransform",
           "CumulativeDistributionTransform", "ExpTransform", "IndependentTransform", "LowerCholeskyTransform",
           "PositiveDefiniteTransform", "PowerTransform", "ReshapeTransform", "SigmoidTransform",
           "SoftplusTransform", "TanhTransform", "SoftmaxTransform", "StackTransform", "StickBreakingTransform",
           "Transform", "identity_transform"]
