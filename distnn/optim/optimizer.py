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
import json
import math

import numpy as np

from distnn import autograd
from distnn.autograd.tensor import Tensor, reset_grad
from distnn.backend import get_array_module, to_numpy

__all__ = ["Optimizer", "required", "sum_of_squares", "flatten_state", "unflatten_state"]

# Bytes of one array slice per kernel call on the CPU: with the 4-6 arrays an update reads
# and writes, the working set stays in a core's L2 cache.
CHUNK_BYTES = 1 << 18


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


def check_hyperparameter(ok: bool, name: str, value, requirement: str) -> None:
    """Raise ``ValueError`` naming the hyperparameter when ``ok`` is false."""
    if not ok:
        raise ValueError(f"Invalid {name}: {value!r} ({requirement})")


_LONG_NAMES = {"lr": "learning rate lr", "eps": "epsilon eps"}


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def check_non_negative(group: dict, *keys: str) -> None:
    """The usual ``>= 0`` checks (lr, eps, weight_decay, ...) on a param group, one error naming the first bad key."""
    for key in keys:
        v = group[key]
        name = _LONG_NAMES.get(key, key)
        check_hyperparameter(_is_real(v), name, v, "must be a number")
        check_hyperparameter(v >= 0, name, v, "must be >= 0")


def betas_tuple(betas):
    """``betas`` as a tuple when it is a sequence (anything else is left for :func:`check_betas` to name)."""
    return tuple(betas) if isinstance(betas, (tuple, list)) else betas


def check_betas(betas) -> None:
    """Adam-style ``(beta1, beta2)``: each in [0, 1)."""
    check_hyperparameter(isinstance(betas, (tuple, list)) and len(betas) == 2, "betas", betas,
                         "must be a pair (beta1, beta2)")
    for i, b in enumerate(betas):
        name = f"beta parameter at index {i} (betas[{i}])"
        check_hyperparameter(_is_real(b), name, b, "must be a number")
        check_hyperparameter(0.0 <= b < 1.0, name, b, "must be in [0, 1)")


class Optimizer:
    """Base class of all optimizers.

    ``params`` is an iterable of Parameters (or Tensors), or of dicts each with
    a ``"params"`` entry and per-group hyperparameters that override
    ``defaults``. Subclasses implement ``_step_group(group)`` and may define
    ``_validate_group(group)``. ``_scalar_state`` names per-parameter state entries that are numbers, not
    arrays (NAdam's ``mu_product``, ASGD's ``eta``): they load as Python floats even for a 0-d parameter.
    """

    _scalar_state: tuple = ()

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        self._scratch_pool: dict = {}
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
        with autograd.no_grad():
            for group in self.param_groups:
                self._step_group(group)
                for p in group["params"]:
                    if p.grad is not None:
                        p._version += 1  # updated in place: a graph built before this step must not backward
        return loss

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
        return pool

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
        xp = get_array_module(ref)
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
        step = max(1, CHUNK_BYTES // ref.dtype.itemsize) if xp is np else n
        step = min(step, n)
        scratch = self._scratch(xp, ref.dtype, step, n_scratch)[:n_scratch]
        if n_masks:
            scratch = scratch + self._scratch(xp, np.bool_, step, n_masks)[:n_masks]
        if step == n:
            total = kernel(xp, *flats, *[s[:n] for s in scratch], **scalars)
        else:
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
        for p in group["params"]:
            if p.grad is None or (skip_empty and p.data.size == 0):
                continue
            yield p, self.state.setdefault(p, {})

    @staticmethod
    def _grad_array(p):
        """The gradient as a C-contiguous array (a copy only when it is not contiguous)."""
        g = p.grad
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
                if s:
                    state[index[id(p)]] = {k: ((to_numpy(v).copy() if copy else to_numpy(v)) if _is_array(v)
                                               else _copied(v)) for k, v in s.items()}
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


def _raw(x):
    """The xp array behind a Tensor (an ndarray's own ``.data`` is a memoryview, so test the type)."""
    return x.data if isinstance(x, Tensor) else x


def _host_if_torch(v):
    """A PyTorch tensor (from a torch optimizer's state dict) as a host numpy array, as
    Module.load_state_dict takes one: cupy.asarray (a GPU parameter's state) reads a CPU tensor only
    through numpy's array protocol, whose copy rules changed in numpy 2, and numpy reads a CUDA
    tensor (a state saved on a GPU, loaded on the CPU) not at all."""
    if not isinstance(v, Tensor) and hasattr(v, "detach") and hasattr(v, "numpy"):
        return v.detach().cpu().numpy()
    return v


_ATOMIC = frozenset((float, int, str, bool, type(None)))


def _copied(v):
    """``deepcopy(v)``, without its generic walk for the plain values (and lists and tuples of them)
    hyperparameters and schedulers' states nearly always are: a checkpoint saves them at every save.
    (deepcopy gives a plain value, or a tuple of them, back as it is.)"""
    t = type(v)
    if t in _ATOMIC:
        return v
    if (t is list or t is tuple) and _ATOMIC.issuperset(map(type, v)):
        return list(v) if t is list else v
    return deepcopy(v)


def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, (int, float))


def _is_floating(v) -> bool:
    return np.issubdtype(np.dtype(v.dtype), np.floating) or np.issubdtype(np.dtype(v.dtype), np.complexfloating)


def _as_count(v, key, idx) -> int:
    """A loaded step counter (int, float, 0-d or 1-element array, or tensor: PyTorch's optimizers keep
    ``step`` as a float tensor) as a Python int."""
    x = v
    if not isinstance(v, (int, float)) and callable(getattr(v, "item", None)):
        try:
            x = v.item()  # (numpy, cupy, a PyTorch tensor: one element)
        except (ValueError, RuntimeError, TypeError):
            x = v
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) \
            or not math.isfinite(x) or x != int(x):
        raise ValueError(f"loaded state '{key}' of parameter {idx} is {v!r}, not a whole number of steps")
    return int(x)


def _add(a, b):
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b))
    return a + b


# --------------------------------------------------------------- numerics helpers
def sum_of_squares(array) -> float:
    """Sum of squared elements as a Python float, accumulated accurately.

    numpy: chunked square-then-pairwise-sum, chunk totals added in float64
    (no full-size temporary; error ~eps*log(n) instead of the ~eps*sqrt(n) of
    a float32 dot); cupy: a tree reduction in float64.
    """
    a = _raw(array)
    xp = get_array_module(a)
    if a.size == 0:
        return 0.0
    if xp is not np:
        return float(xp.sum(xp.square(a, dtype=np.float64)))
    flat = a.reshape(-1) if a.flags.c_contiguous else np.ascontiguousarray(a).reshape(-1)
    step = max(1, CHUNK_BYTES // flat.dtype.itemsize)
    buf = np.empty(min(step, flat.size), dtype=flat.dtype)
    total = 0.0
    for i in range(0, flat.size, step):
        chunk = flat[i:i + step]
        out = buf[:chunk.size]
        np.multiply(chunk, chunk, out=out)
        total += float(out.sum())  # numpy's pairwise sum
    return total


def chunk_sum_of_squares(xp, a, out) -> float:
    """``sum(a*a)`` of one chunk via the scratch ``out`` (pairwise summation, no allocation)."""
    xp.multiply(a, a, out=out)
    return float(out.sum())


def grad_with_decay(xp, p, g, weight_decay: float, maximize: bool, out):
    """``(-g if maximize else g) + weight_decay * p`` in ``out``, or ``g`` itself when nothing changes it."""
    if weight_decay == 0:
        if not maximize:
            return g
        return xp.negative(g, out=out)
    xp.multiply(p, weight_decay, out=out)
    if maximize:
        out -= g
    else:
        out += g
    return out


# ------------------------------------------------------------------ .npz helpers
def flatten_state(obj, prefix: str = "") -> dict:
    """Flatten a (nested) state dict into ``{key: numpy array}`` for ``np.savez``.

    Arrays become entries of their own; everything else (numbers, strings,
    tuples, lists, dicts with str/int keys, inf/nan) goes into a JSON
    description under ``prefix + "__structure__"``. ``unflatten_state``
    inverts it exactly, with no pickle involved.

    An array's key is its path joined with dots (``prefix + ".m.0"``); paths
    can coincide (``{"a.0": x, "a": [y]}``), so a key already taken gets a
    ``"~1"``, ``"~2"``, ... suffix. The structure records each array's key,
    so ``unflatten_state`` needs no rule to find it, and files written before
    the suffix existed load as before.
    """
    arrays = {prefix + "__structure__": None}  # reserved: no array may take the structure's key

    def enc(v, path):
        if _is_array(v):
            key, n = prefix + path, 0
            while key in arrays:
                n += 1
                key = f"{prefix}{path}~{n}"
            arrays[key] = to_numpy(v).copy()
            return {"__array__": key}
        if isinstance(v, dict):
            return {"__dict__": [[enc_key(k), enc(x, f"{path}.{k}")] for k, x in v.items()]}
        if isinstance(v, tuple):
            return {"__tuple__": [enc(x, f"{path}.{i}") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [enc(x, f"{path}.{i}") for i, x in enumerate(v)]
        if isinstance(v, float) and not math.isfinite(v):
            return {"__float__": repr(v)}
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise TypeError(f"cannot store a {type(v).__name__} in a flat state file (at {path!r})")

    def enc_key(k):
        if isinstance(k, (str, int)) and not isinstance(k, bool):
            return k
        raise TypeError(f"state dict keys must be str or int, got {k!r}")

    structure = enc(obj, "")
    arrays[prefix + "__structure__"] = np.array(json.dumps(structure))
    return arrays


def unflatten_state(arrays, prefix: str = ""):
    """Inverse of ``flatten_state``: rebuild the nested state from ``{key: array}`` (e.g. ``np.load``)."""

    def dec(v):
        if isinstance(v, dict):
            if "__array__" in v:
                return np.array(arrays[v["__array__"]])
            if "__dict__" in v:
                return {k: dec(x) for k, x in v["__dict__"]}
            if "__tuple__" in v:
                return tuple(dec(x) for x in v["__tuple__"])
            if "__float__" in v:
                return float(v["__float__"])
        if isinstance(v, list):
            return [dec(x) for x in v]
        return v

    return dec(json.loads(str(np.asarray(arrays[prefix + "__structure__"]))))
