"""The trainer's precision: ``train.precision`` / ``Trainer(precision=...)``, PyTorch Lightning's names.

* ``"32"`` (the default): every op in the parameters' dtype, as before.
* ``"16-mixed"``: the training forward pass and loss run under
  :class:`distnn.autocast` (float16 matmuls, float32 losses; the parameters
  stay float32 master weights) and the loss is scaled by a
  :class:`distnn.amp.GradScaler` before ``backward``. After the gradient
  average the gradients are unscaled (before the L1 gradient and clipping,
  which then see the true gradients); a step whose unscaled gradients hold an
  inf or NaN is skipped by the scaler and the scale backs off. That is
  routine for float16, not a fault: such steps are counted in
  ``trainer.state.scaler_skipped_steps``, never as the ``train.nonfinite``
  policy's skipped steps. A non-finite *loss* is still the policy's (skip or
  stop, as with ``"32"``); the step guard then only looks at the loss, not at
  the scaled gradients.

Every data-parallel rank takes the same decision with no collective of its
own: DataParallel averages the gradients during ``backward`` (the allreduce
overlaps it) and ``finish_gradient_synchronization`` has completed it before
the unscale, so an inf on one rank is an inf or NaN in every rank's average,
and the averages are the same bits everywhere (see :mod:`distnn.amp.grad_scaler`).

Validation and evaluation run in float32 (the master weights as saved), not
under autocast: numpy's float16 matmul has no BLAS, and the metrics then score
the weights a checkpoint holds. Adversarial training's FGSM input gradient is taken in float32 too
(:mod:`distnn.train.trainer_objective`): through float16 activations it underflows to 0 for confidently
classified samples, which would then get no perturbation. ``"bf16-mixed"`` is refused: numpy and cupy
have no bfloat16. The scaler's state goes into the checkpoint (``grad_scaler``
in :meth:`Trainer.state_dict`), so a resume continues the scale exactly.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .config_schema import LIBRARY_ONLY

PRECISIONS = ("32", "16-mixed")
#: Lightning's other precision names and why a distnn run cannot take them (the error says it)
REFUSED = LIBRARY_ONLY["train.precision"]


def check_precision(precision, dtype=np.float32) -> str:
    """``precision`` as a checked name; a ValueError naming the allowed values (and why, for Lightning's others)."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        why = REFUSED.get(str(precision).lower()) if isinstance(precision, (str, int)) else None
        raise ValueError(f"precision (train.precision) must be one of {', '.join(map(repr, PRECISIONS))}; got "
                         f"{precision!r}" + (f" ({why})" if why else ""))
    if precision == "16-mixed" and np.dtype(dtype) != np.float32:
        raise ValueError(f"precision (train.precision) '16-mixed' trains float32 parameters under float16 autocast; "
                         f"these parameters are {np.dtype(dtype)} (run.dtype): use precision '32'")
    return precision


class MixedPrecision:
    """The trainer's side of ``precision``: autocast for the forward pass, the loss scaler around the update.

    With ``"32"`` every method is a pass-through. ``scaler`` (``"16-mixed"``
    only): the :class:`distnn.amp.GradScaler` to use (its ``init_scale``,
    ``growth_interval``...); default ``GradScaler(device)`` with PyTorch's
    defaults. ``device``: ``"cpu"`` (numpy parameters) or ``"cuda"`` (cupy).
    """

    def __init__(self, precision: str = "32", device: str = "cpu", dtype=np.float32, scaler=None):
        self.precision = check_precision(precision, dtype)
        self.enabled = self.precision == "16-mixed"
        self.device = device
        if scaler is not None and not self.enabled:
            raise ValueError(f"grad_scaler is for precision '16-mixed'; got precision {self.precision!r}")
        if self.enabled and scaler is None:
            from distnn.amp import GradScaler

            scaler = GradScaler(device)
        self.scaler = scaler

    @property
    def scaler_checks_gradients(self) -> bool:
        """Whether a gradient overflow is the loss scaler's to skip (``"16-mixed"`` with an enabled scaler).
        A ``GradScaler(enabled=False)`` scales and checks nothing, as torch's: the gradients are then the
        ``train.nonfinite`` policy's, as with ``"32"``."""
        return self.enabled and self.scaler.is_enabled()

    def autocast(self, enabled: bool = True):
        """The region of the training forward pass and loss (a no-op context with ``"32"``); ``enabled=False``:
        a float32 region inside it."""
        if not self.enabled:
            return contextlib.nullcontext()
        from distnn.amp import autocast

        return autocast(self.device, dtype=np.float16, enabled=enabled)

    def scale(self, loss):
        """The loss to call ``backward`` on: times the scale with ``"16-mixed"``."""
        return self.scaler.scale(loss) if self.enabled else loss

    def unscale_overflowed(self, optimizer, state=None) -> bool:
        """Unscale the (averaged) gradients in place; True when one is inf/NaN: the scaler skips this step
        (counted in ``state.scaler_skipped_steps``, a :class:`~distnn.train.trainer.TrainState`)."""
        if not self.scaler_checks_gradients:
            return False
        self.scaler.unscale_(optimizer)
        found = bool(self.scaler._state(optimizer)["found_inf"])  # (what scaler.step and update() read)
        if found and state is not None:
            state.scaler_skipped_steps += 1
        return found

    def step(self, optimizer) -> None:
        """The optimizer step (through the scaler, which steps after a clean :meth:`unscale_overflowed`)."""
        if self.enabled:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self) -> None:
        """The scale's backoff or growth for the next step (after :meth:`unscale_overflowed`)."""
        if self.enabled:
            self.scaler.update()

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict | None:
        """The scaler's state (``GradScaler.state_dict``), None with ``"32"`` (no key in the checkpoint)."""
        return self.scaler.state_dict() if self.enabled else None

    def load_state_dict(self, state: dict | None, log=None) -> None:
        """Restore :meth:`state_dict` output.

        A checkpoint without scaler state (written with ``"32"`` or by an older
        distnn) leaves the scaler fresh, at its ``init_scale``. Scaler state
        resumed with ``"32"`` is dropped: the weights are float32 master weights
        either way, so the run simply goes on in float32.
        """
        if self.enabled and state:
            self.scaler.load_state_dict(state)
        elif self.scaler_checks_gradients and log is not None:
            log.info("the checkpoint has no loss-scaler state (precision '32', or an older distnn): the loss "
                     "scale starts afresh at %g", self.scaler.get_scale())
        elif state and log is not None:
            log.warning("the checkpoint was written with precision '16-mixed'; this run trains with precision "
                        "%r, so its loss scale (%g) is dropped and training goes on in float32", self.precision,
                        float(state.get("scale", float("nan"))))
