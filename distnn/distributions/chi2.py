"""``Chi2(df)``: PyTorch's ``torch.distributions.Chi2``, exactly ``Gamma(0.5 * df, 0.5)`` (so its ``rsample``
is the Gamma's implicitly reparameterized one, differentiable in ``df``)."""
from __future__ import annotations

from . import constraints
from .gamma import Gamma


class Chi2(Gamma):
    """The sum of squares of ``df`` standard normals (``df`` may be any positive real)."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Chi2, _instance)
        return super().expand(batch_shape, new)

    @property
    def df(self):
        return self.concentration * 2
