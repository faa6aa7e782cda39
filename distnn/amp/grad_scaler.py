"""``distnn.amp.GradScaler``: dynamic loss scaling, as ``torch.amp.GradScaler``.

float16 gradients underflow to zero below ~6e-8. Scaling the loss by S
before ``backward`` scales every gradient by S; ``unscale_`` divides them
back (in float32, the parameters' dtype) and notes whether any is inf/NaN;
``step`` skips the optimizer step when one is; ``update`` halves S after a
skipped step and doubles it after ``growth_interval`` clean steps in a row.

Data parallelism needs no agreement of its own: with
:class:`distnn.distributed.DataParallel` the gradients are averaged during
``backward`` (a sum over ranks), so an inf or NaN on any rank is inf or NaN
in every rank's average, and the averages are the same bits on every rank.
Every rank therefore finds the same ``found_inf``, skips or steps together
and keeps the same scale (the trainer's :class:`~distnn.train.step_guard.StepGuard`
relies on the same fact). Without that average (each rank stepping on its
own gradients) the ranks' models differ anyway and so may their scales.
"""
from __future__ import annotations

from collections import abc

import numpy as np

from distnn.autograd.tensor import Tensor

READY, UNSCALED, STEPPED = "ready", "unscaled", "stepped"  # per optimizer, reset by update()

def _raw(x):
    """The array of a gradient or scale given as a Tensor or an array."""
    return x.data if isinstance(x, Tensor) else x


_FIX = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."


class GradScaler:
    """Loss scaling for float16 training, with ``torch.amp.GradScaler``'s arguments, methods and errors::

        scaler = distnn.amp.GradScaler("cpu")
        for x, y in batches:
            optimizer.zero_grad()
            with distnn.autocast("cpu"):
                loss = loss_fn(model(x), y)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)              # optional: to clip or inspect the true gradients
            distnn.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)                  # skipped when a gradient is inf/NaN
            scaler.update()

    ``device`` "cpu" or "cuda" (a "cuda" scaler without a GPU is disabled
    with a warning, as PyTorch's). The scale is a float32 value, updated with
    PyTorch's float32 arithmetic, so the sequence of scales is PyTorch's.
    ``enabled=False`` makes every method a pass-through (``step`` just steps).
    See the module docstring for data parallelism. Its state (``state_dict``)
    goes into a checkpoint with the model's and optimizer's.
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True):
        if device not in ("cpu", "cuda"):
            raise ValueError(f"GradScaler: device must be 'cpu' or 'cuda', got {device!r}")
        self._device = device
        self._enabled = bool(enabled)
        if device == "cuda" and self._enabled:
            from distnn.backend import gpu_available

            if not gpu_available():
                import warnings

                warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                              stacklevel=2)
                self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
            self._init_scale = init_scale
            self._scale = None  # np.float32 once scale() has run (lazily, as PyTorch)
            self._growth_factor = growth_factor
            self._backoff_factor = backoff_factor
            self._growth_interval = growth_interval
            self._init_growth_tracker = 0
            self._growth_tracker = None
            self._per_optimizer_states: dict = {}

    # ------------------------------------------------------------------ the iteration
    def _check_scale_growth_tracker(self, funcname: str) -> None:
        if self._scale is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  " + _FIX)

    def _state(self, optimizer) -> dict:
        return self._per_optimizer_states.setdefault(id(optimizer), {"stage": READY, "found_inf": None})

    def scale(self, outputs):
        """``outputs`` times the scale: a Tensor, or a (nested) list/tuple/iterable of them (same container type)."""
        if not self._enabled:
            return outputs
        if self._scale is None:
            self._scale = np.float32(self._init_scale)
            self._growth_tracker = int(self._init_growth_tracker)
        s = float(self._scale)  # (a Python float: the output keeps its dtype, float16 included, as PyTorch)

        def apply_scale(val):
            if isinstance(val, Tensor):
                return val * s
            if isinstance(val, abc.Iterable):
                scaled = map(apply_scale, val)
                return type(val)(scaled) if isinstance(val, (list, tuple)) else scaled
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")

        return apply_scale(outputs)

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale, in place, and note whether any is inf/NaN.

        Optional (``step`` does it otherwise); once per optimizer between two ``update()`` calls.
        """
        if not self._enabled:
            return
        self._check_scale_growth_tracker("unscale_")
        state = self._state(optimizer)
        if state["stage"] == UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] == STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        from distnn.distributed.buckets import all_finite  # (here: importing distnn stays light)

        inv_scale = np.float32(1.0 / np.float64(self._scale))  # (PyTorch: the reciprocal in double, then float)
        found_inf = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _raw(p.grad)
                if getattr(g, "is_sparse", False) is True:  # a sparse gradient: its values, as PyTorch unscales them
                    g = g._values().data
                if g.dtype == np.float16:
                    raise ValueError("Attempting to unscale FP16 gradients.")
                # (PyTorch checks the scaled value, then multiplies, inf/NaN included)
                found_inf = found_inf or not all_finite(g)
                g *= inv_scale
        state["found_inf"] = float(found_inf)
        state["stage"] = UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """``unscale_(optimizer)`` (unless done already), then ``optimizer.step(*args, **kwargs)`` unless a
        gradient is inf/NaN. Returns the optimizer's return value, or None for a skipped step."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        state = self._state(optimizer)
        if state["stage"] == STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] == READY:
            self.unscale_(optimizer)
        retval = None
        if not state["found_inf"]:
            retval = optimizer.step(*args, **kwargs)
        state["stage"] = STEPPED
        return retval

    def update(self, new_scale=None) -> None:
        """Back the scale off after a skipped step (any optimizer's), grow it after ``growth_interval``
        clean steps; or set it to ``new_scale`` (a float, or a one-element Tensor/array)."""
        if not self._enabled:
            return
        self._check_scale_growth_tracker("update")
        if new_scale is not None:
            if isinstance(new_scale, float):
                self._scale = np.float32(new_scale)
            else:
                reason = "new_scale should be a float or a 1-element Tensor with requires_grad=False."
                if getattr(new_scale, "requires_grad", False) or int(np.size(_raw(new_scale))) != 1:
                    raise AssertionError(reason)
                from distnn.backend import to_numpy  # (a device scale: np.asarray refuses a cupy array)

                self._scale = np.float32(to_numpy(_raw(new_scale)).reshape(()))
        else:
            found = [s["found_inf"] for s in self._per_optimizer_states.values() if s["found_inf"] is not None]
            if not found:
                raise AssertionError("No inf checks were recorded prior to update.")
            self._update_scale(sum(found) > 0)
        self._per_optimizer_states = {}

    def _update_scale(self, found_inf: bool) -> None:
        """PyTorch's ``_amp_update_scale_``: backoff on inf, growth after ``growth_interval`` clean steps (kept only
        when the grown scale is finite); the float32 scale times the factor in double, rounded to float32, as there."""
        if found_inf:
            self._scale = np.float32(float(self._scale) * self._backoff_factor)
            self._growth_tracker = 0
            return
        successful = self._growth_tracker + 1
        if successful == self._growth_interval:
            with np.errstate(over="ignore"):
                grown = np.float32(float(self._scale) * self._growth_factor)
            if np.isfinite(grown):
                self._scale = grown
            successful = 0
        self._growth_tracker = successful

    # ------------------------------------------------------------------ getters, setters, state
    def get_scale(self) -> float:
        """The current scale as a Python float (``init_scale`` before the first ``scale``; 1.0 when disabled)."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(self._scale)

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None else int(self._growth_tracker)

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict:
        """PyTorch's keys: scale, growth_factor, backoff_factor, growth_interval, _growth_tracker ({} when disabled).
        Take it after ``update()``."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        missing = [k for k in ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")
                   if k not in state_dict]
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: the state lacks {', '.join(missing)}")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale = np.float32(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._growth_tracker is not None:
            self._growth_tracker = int(state_dict["_growth_tracker"])

    def __repr__(self):
        if not self._enabled:
            return f"GradScaler(device={self._device!r}, enabled=False)"
        return (f"GradScaler(device={self._device!r}, scale={self.get_scale()}, growth_factor={self._growth_factor}, "
                f"backoff_factor={self._backoff_factor}, growth_interval={self._growth_interval})")
