"""``Distribution``, the base of distnn's distributions (PyTorch's ``torch.distributions.Distribution``).

Shapes as PyTorch's: a draw of ``sample(sample_shape)`` has shape ``sample_shape + batch_shape + event_shape``;
``log_prob(value)`` has the value's shape less the event dims. With ``validate_args`` (on by default, as in
PyTorch; ``Distribution.set_default_validate_args(False)`` turns it off) the parameters are checked against
``arg_constraints`` at construction and ``log_prob``'s values against ``support``, with PyTorch's errors.

Draws come from distnn's default generator (:func:`distnn.random.default_generator`, reseeded by
:func:`distnn.manual_seed`): reproducible from a seed, never PyTorch's numbers.
"""
from __future__ import annotations

import warnings

import distnn
from distnn.autograd.tensor import Tensor

from . import constraints
from .utils import lazy_property


def _format_param(value):
    """A parameter as PyTorch's repr shows it (an f-string of the tensor when it has one element: a 0-d one
    formats as its number; else its size, which PyTorch writes ``torch.Size([...])``)."""
    if value.numel() == 1:
        return str(value.item()) if value.ndim == 0 else str(value)
    return f"torch.Size({list(value.shape)})"


class Distribution:
    """The interface: ``sample``/``rsample``, ``log_prob``, ``entropy``, moments, ``cdf``/``icdf``, ``expand``."""

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Whether distributions validate their arguments by default (``True``, as PyTorch's; off under
        ``python -O``, as an ``assert``)."""
        if value not in (True, False):
            raise ValueError(f"set_default_validate_args expects True or False, but got {value!r}")
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape, self._event_shape = tuple(batch_shape), tuple(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            try:
                arg_constraints = self.arg_constraints
            except NotImplementedError:
                arg_constraints = {}
                warnings.warn(f"{type(self)} does not define `arg_constraints`. Please set `arg_constraints = {{}}` "
                              "or initialize the distribution with `validate_args=False` to turn off validation.",
                              stacklevel=2)
            for param, constraint in arg_constraints.items():
                if constraints.is_dependent(constraint):
                    continue  # (a constraint that depends on other arguments cannot be checked alone)
                if param not in self.__dict__ and isinstance(getattr(type(self), param, None), lazy_property):
                    continue  # (probs given: logits is not computed to be checked)
                value = getattr(self, param)
                if not bool(constraint.check(value).all()):
                    raise ValueError(
                        f"Expected parameter {param} ({type(value).__name__} of shape {tuple(value.shape)}) of "
                        f"distribution {self!r} to satisfy the constraint {constraint!r}, but found invalid "
                        f"values:\n{value}")

    @property
    def batch_shape(self) -> tuple:
        """The shape over which the parameters are batched."""
        return self._batch_shape

    @property
    def event_shape(self) -> tuple:
        """The shape of one draw (without batching)."""
        return self._event_shape

    @property
    def arg_constraints(self) -> dict:
        """The constraint each tensor parameter satisfies (by name), checked at construction."""
        raise NotImplementedError

    @property
    def support(self):
        """The constraint the values satisfy (checked by ``log_prob`` under ``validate_args``)."""
        raise NotImplementedError

    @property
    def mean(self):
        """The mean, of the batch shape plus the event shape."""
        raise NotImplementedError(f"{type(self)} does not implement mean")

    @property
    def mode(self):
        """The mode, of the batch shape plus the event shape."""
        raise NotImplementedError(f"{type(self)} does not implement mode")

    @property
    def variance(self):
        """The variance, of the batch shape plus the event shape."""
        raise NotImplementedError(f"{type(self)} does not implement variance")

    @property
    def stddev(self):
        """The standard deviation (the variance's square root unless a family says otherwise)."""
        return self.variance.sqrt()

    def expand(self, batch_shape, _instance=None):
        """This distribution with its parameters broadcast to ``batch_shape`` (no copies)."""
        raise NotImplementedError

    def sample(self, sample_shape=()):
        """A draw of shape ``sample_shape + batch_shape + event_shape`` (no gradient)."""
        with distnn.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        """A reparameterized draw: differentiable with respect to the parameters."""
        raise NotImplementedError

    def sample_n(self, n):
        """Deprecated, as PyTorch's (a ``FutureWarning``): ``sample((n,))``."""
        warnings.warn("`sample_n(n)` will be deprecated. Use `sample((n,))` instead.", FutureWarning, stacklevel=2)
        return self.sample((n,))

    def log_prob(self, value):
        """The log density (or mass) at ``value``, of its shape less the event dims."""
        raise NotImplementedError

    def cdf(self, value):
        """The cumulative distribution function at ``value``."""
        raise NotImplementedError

    def icdf(self, value):
        """The inverse of the cumulative distribution function at ``value``."""
        raise NotImplementedError

    def enumerate_support(self, expand=True):
        """Every value of a discrete distribution along dim 0: shape ``(cardinality,) + batch_shape +
        event_shape`` (``expand=False``: the batch dims of size 1, for broadcasting)."""
        raise NotImplementedError

    def entropy(self):
        """The entropy, of the batch shape."""
        raise NotImplementedError

    def perplexity(self):
        """``exp(entropy)``, of the batch shape."""
        return self.entropy().exp()

    def _extended_shape(self, sample_shape=()) -> tuple:
        """``sample_shape + batch_shape + event_shape``."""
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        return tuple(sample_shape) + self._batch_shape + self._event_shape

    def _validate_sample(self, value):
        """PyTorch's checks of a ``log_prob``/``cdf`` argument: a Tensor, of a shape broadcastable with
        ``batch_shape + event_shape``, inside the support."""
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_dim_start = value.ndim - len(self._event_shape)
        if tuple(value.shape[event_dim_start:]) != self._event_shape:
            raise ValueError(f"The right-most size of value must match event_shape: {tuple(value.shape)} vs "
                             f"{self._event_shape}.")
        actual_shape, expected_shape = tuple(value.shape), self._batch_shape + self._event_shape
        for i, j in zip(reversed(actual_shape), reversed(expected_shape)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: {actual_shape} vs "
                                 f"{expected_shape}.")
        try:
            support = self.support
        except NotImplementedError:
            warnings.warn(f"{type(self)} does not define `support` to enable sample validation. Please initialize "
                          "the distribution with `validate_args=False` to turn off validation.", stacklevel=2)
            return
        if support is None:
            raise AssertionError(f"support of {type(self).__name__} is unexpectedly None")
        if not bool(support.check(value).all()):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to be within the "
                f"support ({support!r}) of the distribution {self!r}, but found invalid values:\n{value}")

    def _get_checked_instance(self, cls, _instance=None):
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(f"Subclass {self.__class__.__name__} of {cls.__name__} that defines a custom "
                                      "__init__ method must also define a custom .expand() method.")
        return self.__new__(type(self)) if _instance is None else _instance

    def _expand_params(self, cls, batch_shape, _instance, names):
        """The common ``expand``: a new ``cls`` whose parameters ``names`` (those this instance holds) are
        expanded to ``batch_shape + (their event dims)``; the validation flag carries over, and ``_param`` (the
        given one of ``probs``/``logits``) points at its expanded tensor."""
        new = self._get_checked_instance(cls, _instance)
        batch_shape = tuple(batch_shape)
        for name in names:
            if name in self.__dict__:
                value = self.__dict__[name]
                new.__dict__[name] = value.expand(batch_shape + tuple(value.shape[len(self._batch_shape):]))
        if "_param" in self.__dict__:  # (probs/logits distributions: the one given, as expanded above)
            new._param = new.__dict__.get("probs", new.__dict__.get("logits"))
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def __repr__(self):
        names = [k for k in self.arg_constraints if k in self.__dict__]
        return f"{type(self).__name__}({', '.join(f'{p}: {_format_param(self.__dict__[p])}' for p in names)})"
