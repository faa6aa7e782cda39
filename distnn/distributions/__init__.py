"""``distnn.distributions``: the core of PyTorch's ``torch.distributions`` (2.13) on distnn's autograd.

Each distribution takes PyTorch's constructor arguments (``probs``/``logits`` alternatives, ``validate_args``
with PyTorch's constraint errors) and has its ``batch_shape``/``event_shape``, ``sample``, ``rsample`` (where
PyTorch's is reparameterized), ``log_prob``, ``entropy``, moments, ``cdf``/``icdf``, ``expand``, ``support``
and ``repr``; :func:`kl_divergence` has PyTorch's closed forms. Draws come from distnn's default generator
(:func:`distnn.manual_seed`), so they are reproducible but never PyTorch's numbers.
"""
from . import constraints
from .bernoulli import Bernoulli
from .beta import Beta
from .binomial import Binomial
from .categorical import Categorical
from .cauchy import Cauchy
from .dirichlet import Dirichlet
from .distribution import Distribution
from .exponential import Exponential
from .gamma import Gamma
from .independent import Independent
from .kl import kl_divergence, register_kl
from . import kl_cross  # noqa: F401,E402  (registers the cross-family pairs)
from .laplace import Laplace
from .log_normal import LogNormal
from .mixture_same_family import MixtureSameFamily
from .multivariate_normal import MultivariateNormal
from .normal import Normal
from .one_hot_categorical import OneHotCategorical
from .poisson import Poisson
from .uniform import Uniform
# (the remaining standalone families of torch.distributions; module names as PyTorch's, so that
# distnn.distributions.studentT etc. are the modules as torch's aliases are)
from .chi2 import Chi2
from .continuous_bernoulli import ContinuousBernoulli
from .fishersnedecor import FisherSnedecor
from .generalized_pareto import GeneralizedPareto
from .geometric import Geometric
from .lowrank_multivariate_normal import LowRankMultivariateNormal
from .multinomial import Multinomial
from .negative_binomial import NegativeBinomial
from .one_hot_categorical import OneHotCategoricalStraightThrough
from .studentT import StudentT
from .von_mises import VonMises
from . import kl_more_families  # noqa: F401,E402  (registers their kl_divergence pairs)

__all__ = ["Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Dirichlet", "Distribution", "Exponential",
           "Gamma", "Independent", "Laplace", "LogNormal", "MixtureSameFamily", "MultivariateNormal", "Normal",
           "OneHotCategorical", "Poisson", "Uniform", "constraints", "kl_divergence", "register_kl"]
__all__ += ["Chi2", "ContinuousBernoulli", "FisherSnedecor", "GeneralizedPareto", "Geometric",
            "LowRankMultivariateNormal", "Multinomial", "NegativeBinomial", "OneHotCategoricalStraightThrough",
            "StudentT", "VonMises"]

# transforms, the distributions built on them, and the exponential-family base (PyTorch's names)
from . import transforms  # noqa: E402
from .transforms import *  # noqa: E402,F401,F403
from .constraint_registry import biject_to, transform_to  # noqa: E402
from .exp_family import ExponentialFamily  # noqa: E402
from .transformed_distribution import TransformedDistribution  # noqa: E402
from .gumbel import Gumbel  # noqa: E402
from .half_cauchy import HalfCauchy  # noqa: E402
from .half_normal import HalfNormal  # noqa: E402
from .inverse_gamma import InverseGamma  # noqa: E402
from .kumaraswamy import Kumaraswamy  # noqa: E402
from .logistic_normal import LogisticNormal  # noqa: E402
from .pareto import Pareto  # noqa: E402
from .relaxed_bernoulli import RelaxedBernoulli  # noqa: E402
from .relaxed_categorical import RelaxedOneHotCategorical  # noqa: E402
from .weibull import Weibull  # noqa: E402
from . import kl_transformed  # noqa: F401,E402  (registers these families' KL pairs)

__all__ += ["ExponentialFamily", "Gumbel", "HalfCauchy", "HalfNormal", "InverseGamma",
            "Kumaraswamy", "LogisticNormal", "Pareto", "RelaxedBernoulli",
            "RelaxedOneHotCategorical", "TransformedDistribution", "Weibull", "biject_to",
            "transform_to"] + transforms.__all__

# distributions over matrices (module names as PyTorch's: distnn.distributions.lkj_cholesky and .wishart)
from .lkj_cholesky import LKJCholesky  # noqa: E402
from .wishart import Wishart  # noqa: E402

__all__ += ["LKJCholesky", "Wishart"]
