"""PyTorch's ``torch.distributions.constraints``: the sets parameters and samples must lie in. ``check(value)``
returns a bool array (of the value's batch shape: an event's dims are reduced), as PyTorch's returns a bool
tensor; the reprs are PyTorch's (``Real()``, ``GreaterThan(lower_bound=0.0)``, ...), which the errors quote."""
from __future__ import annotations

from distnn.autograd.tensor import Tensor
from distnn.backend import as_array, get_array_module


def _raw(value):
    # (an array as it is: cat, stack and corr_cholesky check their pieces as raw arrays, cupy's on a GPU, which
    # np.asarray refuses)
    return value.data if isinstance(value, Tensor) else as_array(value)


class Constraint:
    """A region: ``is_discrete`` for countable sets, ``event_dim`` the number of rightmost dims one point takes."""

    is_discrete = False
    event_dim = 0

    def check(self, value):
        raise NotImplementedError

    def __repr__(self):
        return type(self).__name__.lstrip("_") + "()"


class _Dependent(Constraint):
    """A placeholder for a support that depends on other arguments (PyTorch's ``constraints.dependent``)."""

    def __init__(self, *, is_discrete=False, event_dim=0):
        self.is_discrete, self.event_dim = is_discrete, event_dim

    def __call__(self, *, is_discrete=None, event_dim=None):
        """A dependent constraint with other ``is_discrete``/``event_dim`` (``constraints.dependent(...)``)."""
        return _Dependent(is_discrete=self.is_discrete if is_discrete is None else is_discrete,
                          event_dim=self.event_dim if event_dim is None else event_dim)

    def check(self, value):
        raise ValueError("Cannot determine validity of dependent constraint")


class _DependentProperty(property, _Dependent):
    """A property whose value is a constraint computed from the instance (``Uniform.support``)."""

    def __init__(self, fn=None, *, is_discrete=False, event_dim=0):
        property.__init__(self, fn)
        _Dependent.__init__(self, is_discrete=is_discrete, event_dim=event_dim)

    def __call__(self, fn):
        """``@dependent_property(is_discrete=..., event_dim=...)`` then decorates the method."""
        return _DependentProperty(fn, is_discrete=self.is_discrete, event_dim=self.event_dim)


def is_dependent(constraint) -> bool:
    return isinstance(constraint, _Dependent)


class _Real(Constraint):
    def check(self, value):
        v = _raw(value)
        return v == v  # (NaN is the only real-typed value outside)


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        v = _raw(value)
        return (v == 0) | (v == 1)


class _GreaterThan(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return _raw(self.lower_bound) < _raw(value)  # (the bound may be a tensor: Uniform's low)

    def __repr__(self):
        return f"GreaterThan(lower_bound={self.lower_bound})"


class _GreaterThanEq(_GreaterThan):
    def check(self, value):
        return _raw(self.lower_bound) <= _raw(value)

    def __repr__(self):
        return f"GreaterThanEq(lower_bound={self.lower_bound})"


class _LessThan(Constraint):
    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        return _raw(value) < _raw(self.upper_bound)

    def __repr__(self):
        return f"LessThan(upper_bound={self.upper_bound})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        v = _raw(value)
        return (_raw(self.lower_bound) <= v) & (v <= _raw(self.upper_bound))

    def __repr__(self):
        return f"Interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _HalfOpenInterval(_Interval):
    def check(self, value):
        v = _raw(value)
        return (_raw(self.lower_bound) <= v) & (v < _raw(self.upper_bound))

    def __repr__(self):
        return f"HalfOpenInterval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        v = _raw(value)
        return (v % 1 == 0) & (_raw(self.lower_bound) <= v) & (v <= _raw(self.upper_bound))

    def __repr__(self):
        return f"IntegerInterval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _IntegerGreaterThan(Constraint):
    is_discrete = True

    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        v = _raw(value)
        return (v % 1 == 0) & (v >= self.lower_bound)

    def __repr__(self):
        return f"IntegerGreaterThan(lower_bound={self.lower_bound})"


class _IndependentConstraint(Constraint):
    """``base_constraint`` over ``reinterpreted_batch_ndims`` more rightmost dims (all must hold)."""

    def __init__(self, base_constraint, reinterpreted_batch_ndims):
        self.base_constraint, self.reinterpreted_batch_ndims = base_constraint, reinterpreted_batch_ndims

    @property
    def is_discrete(self):
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value):
        result = self.base_constraint.check(value)
        if result.ndim < self.reinterpreted_batch_ndims:
            expected = self.base_constraint.event_dim + self.reinterpreted_batch_ndims
            raise ValueError(f"Expected value.dim() >= {expected} but got {_raw(value).ndim}")
        for _ in range(self.reinterpreted_batch_ndims):
            result = result.all(axis=-1)
        return result

    def __repr__(self):
        return f"IndependentConstraint({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value):
        v = _raw(value)
        xp = get_array_module(v)
        return (v >= 0).all(axis=-1) & (xp.abs(v.sum(-1) - 1) < 1e-6)


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def check(self, value):
        v = _raw(value)
        return ((v == 0) | (v == 1)).all(axis=-1) & (v.sum(-1) == 1)


class _LowerCholesky(Constraint):
    event_dim = 2

    def check(self, value):
        v = _raw(value)
        xp = get_array_module(v)
        lower = (xp.tril(v) == v).reshape(v.shape[:-2] + (-1,)).all(-1)
        return lower & (xp.diagonal(v, axis1=-2, axis2=-1) > 0).all(-1)


class _PositiveDefinite(Constraint):
    event_dim = 2

    def check(self, value):
        v = _raw(value)
        xp = get_array_module(v)
        symmetric = (xp.abs(v - xp.swapaxes(v, -1, -2)) <= 1e-6 * (1 + xp.abs(v))).reshape(
            v.shape[:-2] + (-1,)).all(-1)
        return symmetric & (xp.linalg.eigvalsh(v) > 0).all(-1)


dependent = _Dependent()
dependent_property = _DependentProperty
independent = _IndependentConstraint
boolean = _Boolean()
one_hot = _OneHot()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_interval = _IntegerInterval
real = _Real()
real_vector = _IndependentConstraint(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
interval = _Interval
half_open_interval = _HalfOpenInterval
less_than = _LessThan
unit_interval = _Interval(0.0, 1.0)
simplex = _Simplex()
lower_cholesky = _LowerCholesky()
positive_definite = _PositiveDefinite()

__all__ = ["Constraint", "boolean", "dependent", "dependent_property", "greater_than", "greater_than_eq",
           "half_open_interval", "independent", "integer_interval", "interval", "is_dependent", "less_than", "lower_cholesky",
           "nonnegative", "nonnegative_integer", "one_hot", "positive", "positive_definite", "positive_integer",
           "real", "real_vector", "simplex", "unit_interval"]


class _Multinomial(Constraint):
    """Non-negative counts summing to at most ``upper_bound`` (PyTorch's ``constraints.multinomial``)."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        v = _raw(value)
        return (v >= 0).all(axis=-1) & (v.sum(-1) <= self.upper_bound)


# --- the constraints of PyTorch's transforms and their registry (``transforms``, ``constraint_registry``) ---

class _CorrCholesky(Constraint):
    """Lower-triangular factors of correlation matrices: lower Cholesky with rows of unit norm."""

    event_dim = 2

    def check(self, value):
        v = _raw(value)
        xp = get_array_module(v)
        tol = float(xp.finfo(v.dtype).eps) * v.shape[-1] * 10  # (PyTorch's tolerance)
        unit_rows = (xp.abs(xp.linalg.norm(v, axis=-1) - 1.0) <= tol).all(-1)
        return _LowerCholesky().check(v) & unit_rows


class _PositiveSemidefinite(Constraint):
    event_dim = 2

    def check(self, value):
        v = _raw(value)
        xp = get_array_module(v)
        symmetric = (xp.abs(v - xp.swapaxes(v, -1, -2)) <= 1e-6 * (1 + xp.abs(v))).reshape(
            v.shape[:-2] + (-1,)).all(-1)
        return symmetric & (xp.linalg.eigvalsh(v) >= 0).all(-1)


class _Cat(Constraint):
    """``cseq[i]`` on consecutive pieces of ``lengths[i]`` along ``dim`` (PyTorch's ``constraints.cat``)."""

    def __init__(self, cseq, dim=0, lengths=None):
        if not all(isinstance(c, Constraint) for c in cseq):
            raise TypeError("cat expects a sequence of Constraint instances")
        self.cseq, self.dim = list(cseq), dim
        self.lengths = [1] * len(self.cseq) if lengths is None else list(lengths)
        if len(self.lengths) != len(self.cseq):
            raise ValueError(f"lengths ({len(self.lengths)}) must match cseq ({len(self.cseq)})")

    @property
    def is_discrete(self):
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self):
        return max(c.event_dim for c in self.cseq)

    def check(self, value):
        v = _raw(value)
        xp = get_array_module(v)
        if not -v.ndim <= self.dim < v.ndim:
            raise ValueError(f"dim {self.dim} out of range for a value of {v.ndim} dimensions")
        checks, start = [], 0
        for constraint, length in zip(self.cseq, self.lengths):
            checks.append(constraint.check(xp.take(v, xp.arange(start, start + length), axis=self.dim)))
            start += length
        return xp.concatenate(checks, axis=self.dim)


class _Stack(Constraint):
    """``cseq[i]`` on the ``i``-th slice along ``dim`` (PyTorch's ``constraints.stack``)."""

    def __init__(self, cseq, dim=0):
        if not all(isinstance(c, Constraint) for c in cseq):
            raise TypeError("stack expects a sequence of Constraint instances")
        self.cseq, self.dim = list(cseq), dim

    @property
    def is_discrete(self):
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self):
        dim = max(c.event_dim for c in self.cseq)
        return dim + 1 if self.dim + dim < 0 else dim

    def check(self, value):
        v = _raw(value)
        xp = get_array_module(v)
        if not -v.ndim <= self.dim < v.ndim:
            raise ValueError(f"dim {self.dim} out of range for a value of {v.ndim} dimensions")
        return xp.stack([c.check(xp.take(v, i, axis=self.dim)) for i, c in enumerate(self.cseq)], axis=self.dim)


corr_cholesky = _CorrCholesky()
positive_semidefinite = _PositiveSemidefinite()
cat = _Cat
stack = _Stack
multinomial = _Multinomial
__all__ += ["cat", "corr_cholesky", "multinomial", "positive_semidefinite", "stack"]
