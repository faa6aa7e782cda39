"""``bilinear(input1, input2, weight, bias)``: y_k = x1^T W_k x2 + b_k, PyTorch's F.bilinear.

input1 (..., in1), input2 (..., in2) with the same leading dimensions (PyTorch does not broadcast them),
weight (out, in1, in2), bias (out,) -> (..., out). Computed as GEMMs over the flattened batch: first
t[b, k, j] = sum_i x1[b, i] W[k, i, j] (one matmul), then y[b, k] = sum_j t[b, k, j] x2[b, j]; backward
re-uses t for input2's gradient.
"""
from __future__ import annotations

import math

from distnn.autograd.function import Function

from ._dtype_checks import _lower


class Bilinear(Function):
    # (PyTorch composes it from _trilinear, which saves the three operands its gradients read: input1's
    # reads input2 and the weight, input2's input1 and the weight, the weight's both inputs; the bias nothing)
    reads = ((1, 2), (0, 2), (0, 1), ())

    def forward(self, x1, x2, w, b=None):
        K, I, J = w.shape
        lead = x1.shape[:-1]
        B = math.prod(lead)  # (explicit: -1 cannot be inferred when a size is 0)
        a1, a2 = x1.reshape(B, I), x2.reshape(B, J)
        t = (a1 @ w.transpose(1, 0, 2).reshape(I, K * J)).reshape(B, K, J)  # t[b, k, j]
        y = (t @ a2[:, :, None])[..., 0]  # (B, K)
        if b is not None:
            y += b
        need = self.needs_input_grad
        self.a1, self.a2, self.w, self.lead = a1, a2, w, lead
        self.t = t if need[1] else None
        return y.reshape(lead + (K,))

    def backward(self, g):
        need = self.needs_input_grad
        K, I, J = self.w.shape
        B = self.a1.shape[0]
        g2 = g.reshape(B, K)
        gx1 = gx2 = gw = gb = None
        if need[0]:  # dx1[b, i] = sum_k g[b, k] sum_j W[k, i, j] x2[b, j]
            u = (self.a2 @ self.w.reshape(K * I, J).T).reshape(B, K, I)
            gx1 = (g2[:, None, :] @ u)[:, 0, :].reshape(self.lead + (I,))
        if need[1]:  # dx2[b, j] = sum_k g[b, k] t[b, k, j]
            gx2 = (g2[:, None, :] @ self.t)[:, 0, :].reshape(self.lead + (J,))
        if need[2]:  # dW[k, i, j] = sum_b g[b, k] x1[b, i] x2[b, j]
            gx = (g2[:, :, None] * self.a1[:, None, :]).reshape(B, K * I)
            gw = (gx.T @ self.a2).reshape(K, I, J)
        if len(need) > 3 and need[3]:
            gb = g2.sum(axis=0)
        return gx1, gx2, gw, gb


def bilinear(input1, input2, weight, bias=None):
    """y = x1^T W x2 + b per output feature, PyTorch's F.bilinear (see the module docstring for shapes)."""
    s1, s2, sw = tuple(input1.shape), tuple(input2.shape), tuple(weight.shape)
    if not s1 or not s2:
        raise IndexError(f"bilinear(): inputs must have at least 1 dimension, got shapes {s1} and {s2}")
    if len(s1) != len(s2):
        raise ValueError(f"bilinear(): input dimensions do not match: got {len(s1)} and {len(s2)}")
    for d, (m, n) in enumerate(zip(s1[:-1], s2[:-1])):
        if m != n:
            raise ValueError(f"bilinear(): input batch dimensions do not match at dim {d}: got {m} and {n}")
    if len(sw) != 3:
        raise ValueError(f"bilinear(): weight must be (out_features, in1_features, in2_features), got shape {sw}")
    if s1[-1] != sw[1]:
        raise ValueError(f"bilinear(): input1 size does not match weight size: got {s1[-1]} but expected {sw[1]}")
    if s2[-1] != sw[2]:
        raise ValueError(f"bilinear(): input2 size does not match weight size: got {s2[-1]} but expected {sw[2]}")
    if bias is not None and tuple(bias.shape) != sw[:1]:
        raise ValueError(f"bilinear(): bias size does not match weight size: got shape {tuple(bias.shape)} but "
                         f"expected ({sw[0]},)")
    dtypes = [t.dtype for t in (input1, input2, weight, bias) if t is not None]
    if any(d != dtypes[0] for d in dtypes):
        # (a RuntimeError, as PyTorch's; its names, for the operands given)
        named = ", ".join(f"{n}: {_lower(t.dtype)}" for n, t in zip(("input1", "input2", "weight", "bias"),
                                                                    (input1, input2, weight, bias)) if t is not None)
        raise RuntimeError(f"bilinear(): All tensors must have the same dtype, got {named}")
    return Bilinear.apply(input1, input2, weight, bias)
