"""``ExponentialFamily``: PyTorch's ``torch.distributions.ExponentialFamily``, the base of densities
``p(x; theta) = exp(<t(x), theta> - F(theta) + k(x))``.

A subclass gives its natural parameters ``theta`` (``_natural_params``), the log-normalizer ``F``
(``_log_normalizer``) and ``E[k(x)]`` (``_mean_carrier_measure``); then the entropy is
``F(theta) - <theta, grad F(theta)> - E[k(x)]`` (a Bregman divergence), with ``grad F`` from distnn's
autograd, and :func:`kl_divergence` between two members of one family is the Bregman divergence of ``F``.

As PyTorch's, Bernoulli, Beta, ContinuousBernoulli, Dirichlet, Exponential, Gamma (so Chi2), Normal, Poisson and
Wishart derive from it with PyTorch's natural parameters; each keeps its own closed-form entropy and KL pairs
(the Bregman forms are the fallback, and Beta's, Dirichlet's and Poisson's carrier measures are not given, as
there, so their Bregman entropy refuses).
"""
from __future__ import annotations

import distnn

from .distribution import Distribution


class ExponentialFamily(Distribution):
    @property
    def _natural_params(self):
        """The natural parameters, a tuple of tensors of the batch shape (plus event dims)."""
        raise NotImplementedError

    def _log_normalizer(self, *natural_params):
        """The log-normalizer ``F(theta)`` of the batch shape."""
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self):
        """``E[k(x)]`` under the distribution."""
        raise NotImplementedError

    def entropy(self):
        result = -self._mean_carrier_measure
        nparams = [p.detach().requires_grad_() for p in self._natural_params]
        lg_normal = self._log_normalizer(*nparams)
        gradients = distnn.autograd.grad(lg_normal.sum(), nparams, create_graph=True)
        result = result + lg_normal
        for p, g in zip(nparams, gradients):
            result = result - (p * g).reshape(self._batch_shape + (-1,)).sum(-1)
        return result
