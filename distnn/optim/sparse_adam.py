"""``SparseAdam`` (``torch.optim.SparseAdam``): Adam for sparse gradients (``nn.Embedding(sparse=True)``).

Each step updates only the rows a parameter's (coalesced) gradient names: their moments, then the rows
themselves (see :func:`.sparse_updates.sparse_adam`); every other row and its moments stay as they were.
"""
from __future__ import annotations

from .optimizer import Optimizer, betas_tuple
from .sparse_updates import is_sparse, sparse_adam

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    """``SparseAdam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False)``, as PyTorch's: the
    gradients must be sparse (a dense one is refused: use Adam); state per parameter ``step``, ``exp_avg``,
    ``exp_avg_sq``, made at its first step."""

    supports_sparse_grads = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, maximize: bool = False):
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        betas = betas_tuple(betas)
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, maximize=maximize))

    def _step_group(self, group):
        beta1, beta2 = group["betas"]
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:  # (all checked before any is updated, as PyTorch gathers them first)
            if not is_sparse(p.grad):
                raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
        for p in params:
            state = self.state.setdefault(p, {})
            if not state:
                state["step"] = 0
                state["exp_avg"] = self._zeros_like(p)
                state["exp_avg_sq"] = self._zeros_like(p)
            state["step"] += 1
            sparse_adam(p, p.grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                        beta1=beta1, beta2=beta2, eps=group["eps"], maximize=group["maximize"])
