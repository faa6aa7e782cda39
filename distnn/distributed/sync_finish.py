"""``DataParallel.finish_gradient_synchronization()`` (a mixin of :class:`~.grad_sync.GradientSync`): the step's
exchange for a rank whose backward did not synchronize, and what it is after a refused step.

A refused step (an agreed error, :mod:`.sync_refusals`) leaves every gradient None, so the gradients cannot
tell whether the loop has begun its next step since. A call with no forward and no ``set_num_samples()`` since
is then either the refused step's own closing call (``try: loss.backward() except ...: pass`` then
``finish_gradient_synchronization()`` on every rank) or the next step's exchange of a rank with no batch
(``if batch: loss.backward() else: finish_gradient_synchronization()``), while the other ranks' next backward
synchronizes. What the refused exchange was, the same on every rank (its gather of the notes says whether a
rank's ``finish_gradient_synchronization()`` made it), decides:

* every rank made it in its backward (or its forward's agreement): the call is an exchange, so a rank with
  no batch takes part in the others' next step with no samples, and where every rank makes the call it is
  an exchange of nothing (no gradients: each stays None, as PyTorch's DDP leaves a step without backward;
  ``num_syncs`` counts it on every rank);
* some rank's own ``finish_gradient_synchronization()`` made it (its step had no backward, or abandoned
  one): that call ended the step on that rank, which calls it no more; on the others the call is a no-op.

A call that made the exchange, refused or not, ended its step: the next one belongs to the next step. Left
ambiguous: after a step refused in one rank's ``finish_gradient_synchronization()``, a rank whose NEXT step
has no batch and that only calls ``finish_gradient_synchronization()`` for such steps makes no exchange
(indistinguishable from the closing call above) while the others' backward waits: call ``set_num_samples(0)``
first (the Trainer sets every step's count), or call ``finish_gradient_synchronization()`` after every step.
"""
from __future__ import annotations

from .sync_abandoned import settle
from .sync_micro_batch import release_held, settle_micro_batches
from .sync_step_ended import close, still_ended


class FinishSync:
    """:meth:`finish_gradient_synchronization` and what it checks (used by :class:`~.grad_sync.GradientSync`)."""

    def finish_gradient_synchronization(self) -> None:
        """Make sure this step's gradients are averaged; call before ``optimizer.step()`` if unsure.

        A no-op when backward already synchronized this step (the usual case).
        When this rank ran no synchronizing backward since the last call or
        since its gradients were last reset (``zero_grad()``: every micro-batch
        was empty, or all ran under ``no_sync``), it synchronizes now with
        whatever local gradients exist, so the other ranks are not left
        waiting. So ``if batch: loss.backward() else: dp.finish_gradient_synchronization()``
        works too. Collective: a rank whose backward did not synchronize this
        step must call it. (A gradient zeroed by hand, ``p.grad[...] = 0``,
        looks like the synchronized one; ``zero_grad(set_to_none=False)`` is
        told apart.) After a refused step: see :mod:`.sync_finish`.
        """
        if self.comm.size == 1:
            if not self._synced_since_finish:  # (no backward this step: its flags still end it)
                self._end_single_rank_step()
            self._synced_since_finish = False
            return
        if still_ended(self):  # (this step ended early on this rank: its end, no exchange: .sync_step_ended)
            close(self, raising=True)
        refused = self._synced_since_finish == "refused" and not self._forwards and self._forward_samples is None \
            and self._explicit_samples is None  # (a refused step's gradients are None: not reset by the user)
        if self._in_sync or not self._synced_since_finish or (self._grads_reset_since_sync() and not refused):
            settle_micro_batches(self)  # (a micro-batch's forward no backward reached: .sync_micro_batch)
            settle(self, finishing=True)  # (a forward since the last exchange that no backward reached: refused)
            release_held(self)
            if not self._in_sync and self._join_config.enable:  # inside dp.join(): this step's round first
                self._join_notify()
            if not self._in_sync and self._explicit_samples is None and self._forward_samples is None:
                self._explicit_samples = 0  # no forward since the last step: no samples, whatever the last had
            self._in_sync = self._finishing = True
            try:
                self._complete_sync()
            finally:  # (refused too, this call ended the step: the next one is the next step's)
                self._synced_since_finish = self._finishing = False
        self._synced_since_finish = False

    def fail_step(self, exc: BaseException, stage: str | None = None) -> None:
        """This rank's step failed with ``exc`` before its forward, in the loop's own code (loading or transforming
        its batch): end the step on every rank. Call it in the loop's ``except``, before the step's synchronizing
        backward; the loop then goes on with its next step. Collective in effect: this rank makes the step's
        gradient exchange now, with zeros and a note, and every rank raises the same error naming ``exc`` and this
        rank (the others from their backward): raised here too, from ``exc``. Gradients of the step are dropped on
        every rank. With one rank, ``exc`` itself is raised. ``stage``: where the step failed, in the error's words
        (default "the training loop (before the step's forward)"). See :mod:`.sync_loop_failure`."""
        from .sync_loop_failure import fail_step

        fail_step(self, exc, stage)

    _reset_latched = False  # the gradients were reset since the last synchronization, before a no_sync() backward

    def _latch_reset(self) -> None:
        """A ``no_sync()`` backward begins: note whether the gradients were reset since the last synchronization
        (its accumulation clears ``zero_grad(set_to_none=False)``'s marks, which tell a reset gradient)."""
        if self._synced_since_finish and not self._reset_latched and self._buckets:
            self._reset_latched = self._grads_reset_since_sync()

    def _grads_reset_since_sync(self) -> bool:
        """True when no parameter still holds the gradient the last synchronization installed
        (set to None, replaced, or zeroed in place by ``zero_grad(set_to_none=False)``)."""
        if self._reset_latched:
            return True
        for b in self._buckets:
            for p, view in zip(b.params, b.views):
                if p.grad is view and not p._grad_zeroed:
                    return False
        return self._sparse is None or not self._sparse.holds_synced()
