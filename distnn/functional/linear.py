"""``linear(x, weight, bias)``: y = x W^T + b as one fused op (PyTorch's F.linear).

Fused so that the MLP path does exactly the floor's work: one matmul forward,
two in backward (no transposed copy of W, no separate broadcast-add node), and
only the products whose inputs need a gradient (the first layer's input never does).
"""
from __future__ import annotations

from distnn.autograd.function import Function

from ._dtype_checks import check_linear
from ._into import destinations, matmul_into, sum_into


class Linear(Function):
    autocast = "lower"  # under distnn.autocast: the matmul family runs in the lower dtype
    reads = ((1,), (0,), ())  # (x's gradient reads the weight, the weight's x, the bias's nothing)

    def forward(self, x, weight, bias=None):
        if weight.ndim != 2:
            raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
        if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
            raise ValueError(
                f"linear: input shape {tuple(x.shape)} does not match weight shape {tuple(weight.shape)} "
                f"(input's last dimension must equal in_features={weight.shape[1]})"
            )
        if bias is not None and tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(
                f"linear: bias shape {tuple(bias.shape)} does not match weight shape {tuple(weight.shape)} "
                f"(expected ({weight.shape[0]},))"
            )
        check_linear(x, weight, bias)
        nx, nw = self.needs_input_grad[0], self.needs_input_grad[1]
        self.x = x if nw else None
        self.w = weight if nx else None
        if x.ndim > 2:  # fold leading dims: numpy runs (B, M, K) @ (K, N) as B small GEMMs, ~2-3x slower
            out = (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(x.shape[:-1] + (weight.shape[0],))
        else:
            out = x @ weight.T  # a transposed view: BLAS reads it as is, no copy
        if bias is not None:
            out += bias  # out is fresh, so in place is safe and saves a pass
        return out

    def backward(self, g):
        need = self.needs_input_grad
        gx = gw = gb = None
        dest = destinations(self, 3)  # where the engine wants weight/bias gradients, if anywhere
        if need[0]:
            if g.ndim > 2:  # one GEMM over the folded batch dims (see forward)
                gx = (g.reshape(-1, g.shape[-1]) @ self.w).reshape(g.shape[:-1] + (self.w.shape[1],))
            else:
                gx = g @ self.w
        if need[1]:
            x = self.x
            if g.ndim == 2:
                gw = matmul_into(g.T, x, dest[1])
            else:  # fold leading batch dims (and promote a 1-D input) into one
                gw = matmul_into(g.reshape(-1, g.shape[-1]).T, x.reshape(-1, x.shape[-1]), dest[1])
        if len(need) > 2 and need[2]:
            if g.ndim == 1:
                gb = g
            else:
                gb = sum_into(g, tuple(range(g.ndim - 1)), dest[2])
        return gx, gw, gb


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` with ``weight`` of shape (out_features, in_features), as PyTorch."""
    return Linear.apply(input, weight, bias)
