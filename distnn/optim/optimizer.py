"""``Optimizer``: the base every optimizer shares, with ``torch.optim.Optimizer``'s interface.

Parameters are grouped in ``param_groups`` (dicts of per-group hyperparameters);
per-parameter state (moment buffers, step counts) lives in ``state[param]``.
``state_dict()`` refers to parameters by their index in group order, as PyTorch
does, and holds only numpy arrays and plain Python values, so it pickles, saves
to .npz (``flatten_state`` / ``unflatten_state``) and loads on another device.

Updates are in place and chunked: an update touches every element of the
parameter, its gradient and its state several times (one numpy call per term
of the formula). Running those calls over 256 KiB slices keeps the slice in the
CPU cache between calls, so the parameter and its state stream through memory
once per step instead of once per term; a few chunk-sized scratch buffers per
optimizer replace the temporaries a naive ``p -= lr * m / (sqrt(v) + eps)``
would allocate. On a GPU (cupy) an update is one call per term on whole arrays.
"""
from __future__ import annotations

from copy import deepcopy

import numpy as np

from distnn import autograd
from distnn.autograd import engine as _engine
from distnn.autograd import float_errors as _float_errors, mutation_guard as _mutation_guard
from distnn.autograd.tensor import reset_grad
from distnn.backend import get_array_module, to_numpy

from . import chunked as _chunked, hyperparams as _hyperparams
from .chunked import CHUNK_BYTES, _add, _raw, sum_of_squares
from .flat_state import flatten_state, unflatten_state
from .hyperparams import required
from .state_values import _as_count, _copied, _host_if_torch, _is_array, _is_floating

_BOOL = np.dtype(np.bool_)  # (the masks' scratch dtype)

__all__ = ["Optimizer", "required", "sum_of_squares", "flatten_state", "unflatten_state"]

# The hyperparameter checks (:mod:`.hyperparams`), update numerics (:mod:`.chunked`), state-value
# helpers (:mod:`.state_values`) and .npz flattening (:mod:`.flat_state`) have modules of their own;
# every name is importable from here as before (the optimizers import them from here).
check_hyperparameter, check_non_negative, betas_tuple, check_betas, _is_real = (
    _hyperparams.check_hyperparameter, _hyperparams.check_non_negative, _hyperparams.betas_tuple,
    _hyperparams.check_betas, _hyperparams._is_real)
chunk_sum_of_squares, grad_with_decay = _chunked.chunk_sum_of_squares, _chunked.grad_with_decay


class Optimizer:
    """Base class of all optimizers.

    ``params`` is an iterable of Parameters (or Tensors), or of dicts each with
    a ``"params"`` entry and per-group hyperparameters that override
    ``defaults``. Subclasses implement ``_step_group(group)`` and may define
    ``_validate_group(group)``. ``_scalar_state`` names per-parameter state entries that are numbers, not
    arrays (NAdam's ``mu_product``, ASGD's ``eta``): they load as Python floats even for a 0-d parameter.
    """

    _scalar_state: tuple = ()
    # whether steps take sparse gradients (``nn.Embedding(sparse=True)``): SGD, Adagrad and SparseAdam do, as
    # PyTorch's; the others refuse them by name before updating anything (``_sparse_refusal``: PyTorch's words)
    supports_sparse_grads = False
    _sparse_refusal = None
    # whether the update is right for complex parameters as written (SGD's is: linear in the gradient); an
    # optimizer that squares the gradient (Adam's g * g) would need PyTorch's view_as_real, so it refuses them
    supports_complex = False

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        self._scratch_pool: dict = {}
        self._scratch_views: dict = {}  # (see _one_chunk_scratch)
        if hasattr(params, "data") and hasattr(params, "grad"):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got a single Tensor")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be an ordered collection (a list), not a set: "
                            "set order differs between runs and ranks")
        if isinstance(params, dict):
            params = [params]
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # ---------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones from ``defaults``)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError("a parameter group needs a 'params' entry")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be an ordered collection (a list), not a set: "
                            "set order differs between runs and ranks")
        params = [params] if hasattr(params, "grad") and hasattr(params, "data") else list(params)
        for p in params:
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise TypeError(f"optimizer can only optimize Tensors/Parameters, but one of the params is "
                                f"{type(p).__name__}")
            if getattr(p, "is_leaf", True) is False:
                raise ValueError("can't optimize a non-leaf Tensor")
            if not self.supports_complex and getattr(getattr(p, "data", None), "dtype", None) is not None \
                    and p.data.dtype.kind == "c":
                raise NotImplementedError(
                    f"{type(self).__name__} does not support complex parameters in distnn (got one of dtype "
                    f"{p.data.dtype}); use SGD, or optimize view_as_real of the parameter as a real tensor")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        self._validate_group(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError("some parameters appear in more than one parameter group (or twice in one)")
        self.param_groups.append(group)

    def _validate_group(self, group: dict) -> None:
        """Check a group's hyperparameters; raise ValueError naming the offending one."""

    def _state_shape(self, p, key: str) -> tuple:
        """The shape of the state array ``key`` of parameter ``p`` (a loaded one must have it): the parameter's,
        unless an optimizer keeps reduced state (Adafactor's row and column averages)."""
        return tuple(p.data.shape)

    # ------------------------------------------------------------------ step
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                reset_grad(p, set_to_none)

    def step(self, closure=None):
        """Update every parameter that has a gradient; ``closure`` re-evaluates and returns the loss."""
        loss = None
        if closure is not None:
            with autograd.enable_grad():
                loss = closure()
        # (an update meeting inf or NaN gradients gives inf or NaN, silently, as PyTorch's: numpy's warnings off
        # for the updates only, not for the closure, the user's code; written out, ~0.4 us less than silent())
        token = _float_errors.FP_STATE.set(_float_errors.ALL_IGNORED)
        try:
            with autograd.no_grad():
                if not self.supports_sparse_grads:
                    self._refuse_sparse_grads()
                for group in self.param_groups:
                    if _mutation_guard.watching:  # (PyTorch's updates are ops: inside allow_mutation_on_saved_tensors
                        _mutation_guard.before_writes(p for p in group["params"] if p.grad is not None)  # (copies)
                    self._step_group(group)
                    for p in group["params"]:
                        if p.grad is not None:  # updated in place: a graph built before this step must not backward
                            p._bump_version()
        finally:
            _float_errors.FP_STATE.reset(token)
        return loss

    def _refuse_sparse_grads(self) -> None:
        """PyTorch's refusal of a sparse gradient by an optimizer without a sparse update (one type check a
        parameter a step: nothing else when every gradient is dense)."""
        sparse = _engine._sparse.type
        for group in self.param_groups:
            for p in group["params"]:
                if type(p.grad) is sparse:
                    raise RuntimeError(self._sparse_refusal or f"{type(self).__name__} does not support sparse "
                                       "gradients")

    def _step_group(self, group: dict) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    # ------------------------------------------------------- kernel plumbing
    def _zeros_like(self, p, fill: float = 0.0):
        """A C-contiguous state buffer with the parameter's shape, dtype and device."""
        xp = get_array_module(p.data)
        buf = xp.empty(p.data.shape, dtype=p.data.dtype)
        buf.fill(fill)
        return buf

    def _scratch(self, xp, dtype, n: int, count: int):
        """``count`` scratch vectors of at least ``n`` elements, shared by all params (reused every step)."""
        key = (xp.__name__, np.dtype(dtype).str)
        pool = self._scratch_pool.get(key)
        if pool is None or pool[0].size < n or len(pool) < count:
            size = max(n, pool[0].size if pool else 0)
            pool = [xp.empty(size, dtype=dtype) for _ in range(max(count, len(pool) if pool else 0))]
            self._scratch_pool[key] = pool
            self._scratch_views.clear()  # (they view the buffers just replaced)
        return pool

    def _one_chunk_scratch(self, xp, dtype, n: int, n_scratch: int, n_masks: int) -> list:
        """The scratch a one-chunk kernel call takes: ``n_scratch`` vectors of ``n`` elements of ``dtype`` then
        ``n_masks`` boolean ones, views of :meth:`_scratch`'s buffers.

        Cached by size: every step asks for the same few, and making them anew (the pool lookup and the
        slicing) cost as much as a small parameter's whole update.
        """
        key = (xp.__name__, dtype, n, n_scratch, n_masks)
        views = self._scratch_views.get(key)
        if views is None:
            views = [s[:n] for s in self._scratch(xp, dtype, n, n_scratch)[:n_scratch]]
            if n_masks:
                views += [s[:n] for s in self._scratch(xp, _BOOL, n, n_masks)[:n_masks]]
            self._scratch_views[key] = views  # (after both _scratch calls: either may clear the cache)
        return views

    def _foreach_chunk(self, kernel, arrays, n_scratch: int, n_masks: int = 0, **scalars):
        """Run ``kernel(xp, *array_slices, *scratch_slices, *mask_slices, **scalars)`` over slices of
        equal-sized arrays.

        ``arrays[0]`` is the parameter; ``None`` entries pass through as None.
        ``n_masks`` boolean scratch vectors follow the ``n_scratch`` ones in the parameter's dtype.
        The kernel updates its slices in place; the values it returns (numbers)
        are summed over the chunks and returned (used for norms).
        """
        ref = arrays[0]
        n = ref.size
        if n == 0:
            return None
        xp = np if type(ref) is np.ndarray else get_array_module(ref)
        flats, writeback = [], []
        for a in arrays:
            if a is None:
                flats.append(None)
            elif a.flags.c_contiguous:
                flats.append(a.reshape(-1))
            else:  # rare (a transposed view as a parameter): work on a copy, write it back after
                c = xp.ascontiguousarray(a)
                writeback.append((a, c))
                flats.append(c.reshape(-1))
        if xp is not np or ref.nbytes <= CHUNK_BYTES:  # one call on the whole arrays: all but large parameters
            total = kernel(xp, *flats, *self._one_chunk_scratch(xp, ref.dtype, n, n_scratch, n_masks), **scalars)
        else:
            step = max(1, CHUNK_BYTES // ref.dtype.itemsize)
            scratch = self._scratch(xp, ref.dtype, step, n_scratch)[:n_scratch]
            if n_masks:
                scratch = scratch + self._scratch(xp, _BOOL, step, n_masks)[:n_masks]
            total = None
            for i in range(0, n, step):
                views = [f[i:i + step] if f is not None else None for f in flats]
                m = views[0].size
                out = kernel(xp, *views, *[s[:m] for s in scratch], **scalars)
                if out is not None:
                    total = out if total is None else _add(total, out)
        for a, c in writeback:
            a[...] = c
        return total

    def _params_with_grad(self, group, skip_empty: bool = False):
        """``(parameter, its state dict)`` for each parameter of ``group`` a step updates: those with a gradient
        (and, with ``skip_empty``, at least one element)."""
        state = self.state
        for p in group["params"]:
            if p.grad is None or (skip_empty and p.data.size == 0):
                continue
            s = state.get(p)  # (not setdefault: that makes a dict per parameter per step, to throw away)
            if s is None:
                s = state[p] = {}
            yield p, s

    @staticmethod
    def _grad_array(p):
        """The gradient as a C-contiguous array (a copy only when it is not contiguous)."""
        g = p.grad
        if type(g) is not np.ndarray:  # (the common case skips these checks)
            g = _raw(g)  # tolerate a Tensor stored as .grad
            if not hasattr(g, "flags"):  # a numpy scalar from a 0-d computation
                g = np.asarray(g, dtype=p.data.dtype)
        if not g.flags.c_contiguous:
            g = get_array_module(g).ascontiguousarray(g)
        if g.shape != p.data.shape:
            raise RuntimeError(f"gradient shape {tuple(g.shape)} does not match parameter shape {tuple(p.data.shape)}")
        return g

    # ------------------------------------------------------------ state_dict
    def state_dict(self, *, copy: bool = True) -> dict:
        """``{"state": {index: {name: array or value}}, "param_groups": [...]}`` with params as indices.

        Arrays are host (numpy) copies, so the result does not change as
        training continues and can be saved as is. ``copy=False`` gives the
        host arrays themselves, valid until the next step (see
        :meth:`distnn.nn.Module.state_dict`).
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: _copied(v) for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                s = self.state.get(p)
                if s:  # (a host array uncopied is itself: a checkpoint asks at every save, for every value)
                    state[index[id(p)]] = {k: v if not copy and type(v) is np.ndarray else
                                           (to_numpy(v).copy() if copy else to_numpy(v)) if _is_array(v)
                                           else _copied(v) for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and per-parameter state saved by ``state_dict()``.

        State arrays are copied onto each parameter's device in its dtype, so a
        checkpoint written on one device loads on another. ``step`` loads as a
        Python int (PyTorch's state dicts hold it as a 0-d float tensor), and so
        does any other 0-d non-floating value; other 0-d arrays become floats
        unless the parameter itself is 0-d (then they are its state arrays).
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        for i, (g, sg) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(f"loaded state dict's parameter group {i} has {len(sg['params'])} parameters, "
                                 f"this optimizer's has {len(g['params'])}")
            missing = [k for k in self.defaults if k not in sg]
            if missing:  # the groups replace ours wholesale: a step would fail on the first missing one
                raise ValueError(f"loaded state dict's parameter group {i} has no {', '.join(map(repr, missing))}: "
                                 f"it was saved by another optimizer than {type(self).__name__}")
        id_map = {}
        for g, sg in zip(self.param_groups, saved_groups):
            for idx, p in zip(sg["params"], g["params"]):
                id_map[int(idx)] = p
        new_state = {}
        for idx, s in state_dict["state"].items():
            idx = int(idx)
            if idx not in id_map:
                raise ValueError(f"loaded state dict has state for parameter index {idx}, which no group lists")
            p = id_map[idx]
            xp = get_array_module(p.data)
            ps = {}
            for k, v in s.items():
                v = _host_if_torch(v)
                if k == "step" or (_is_array(v) and v.ndim == 0 and not _is_floating(v)):
                    # Counters first: a 0-d parameter's shape matches a 0-d step, which must not become a
                    # float32 array (it would stop counting at 2**24). PyTorch saves step as a 0-d float tensor.
                    ps[k] = _as_count(v, k, idx) if k == "step" else to_numpy(v).item()
                elif k in self._scalar_state:  # (PyTorch saves these as 0-d float tensors)
                    ps[k] = float(to_numpy(v).item()) if _is_array(v) else float(v)
                elif _is_array(v) and tuple(v.shape) == self._state_shape(p, k):
                    arr = xp.empty(v.shape, dtype=p.data.dtype)
                    arr[...] = xp.asarray(v)  # copy onto the parameter's device, in its dtype
                    ps[k] = arr
                elif _is_array(v) and v.ndim == 0:  # a number saved as a 0-d array
                    ps[k] = to_numpy(v).item()
                elif _is_array(v):
                    raise ValueError(f"loaded state '{k}' of parameter {idx} has shape {tuple(v.shape)}, "
                                     f"expected {self._state_shape(p, k)} (the parameter has shape "
                                     f"{tuple(p.data.shape)})")
                else:
                    ps[k] = deepcopy(v)
            new_state[p] = ps
        self.state = new_state
        for g, sg in zip(self.param_groups, saved_groups):
            params = g["params"]
            g.clear()
            g.update({k: deepcopy(v) for k, v in sg.items() if k != "params"})
            g["params"] = params
