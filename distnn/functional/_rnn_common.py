"""The array-level pieces the fused recurrent layers of ``rnn.py`` share: their argument checks, the input
projection of every timestep at once, the weight gradients from the stacked per-step gradients (one matmul
each), a packed batch's live rows per step, and a row gather into the engine's destination.

Kept apart so that ``rnn.py`` holds the three layers' forward and backward loops, side by side, and little else.
"""
from __future__ import annotations

from ._into import matmul_into, sum_into


def _check_rnn_args(x, h0, w_ih, w_hh, ngates, what):
    if x.ndim != 3:
        raise ValueError(f"{what}: input must be (T, B, input_size), got shape {tuple(x.shape)}")
    gh, hidden = w_hh.shape
    if gh != ngates * hidden or w_ih.shape != (ngates * hidden, x.shape[2]):
        raise ValueError(
            f"{what}: weights {tuple(w_ih.shape)}, {tuple(w_hh.shape)} do not fit input {tuple(x.shape)} "
            f"with {ngates} gates"
        )
    if h0.shape != (x.shape[1], hidden):
        raise ValueError(f"{what}: initial state must be {(x.shape[1], hidden)}, got {tuple(h0.shape)}")


def _check_lstm_args(x, h0, c0, w_ih, w_hh, w_hr, H, P):
    if x.ndim != 3:
        raise ValueError(f"LSTM: input must be (T, B, input_size), got shape {tuple(x.shape)}")
    if (w_ih.shape != (4 * H, x.shape[2]) or w_hh.shape != (4 * H, P)
            or (w_hr is not None and (w_hr.shape != (P, H) or P >= H))):
        shapes = ", ".join(str(tuple(w.shape)) for w in (w_ih, w_hh, w_hr) if w is not None)
        raise ValueError(f"LSTM: weights {shapes} do not fit input {tuple(x.shape)} with 4 gates")
    if h0.shape != (x.shape[1], P) or c0.shape != (x.shape[1], H):
        raise ValueError(f"LSTM: initial states must be {(x.shape[1], P)} and {(x.shape[1], H)}, got "
                         f"{tuple(h0.shape)} and {tuple(c0.shape)}")


def _input_projection(x, w_ih, b_ih, b_hh):
    """x @ W_ih^T (+ biases) for every timestep at once: (T, B, G)."""
    T, B, I = x.shape
    out = (x.reshape(T * B, I) @ w_ih.T).reshape(T, B, w_ih.shape[0])
    if b_ih is not None:
        out += b_ih
    if b_hh is not None:
        out += b_hh
    return out


def _weight_grads(need, k, dpre_x, dpre_h, x, hprev, w_ih, w_hh, dests=(None,) * 4):
    """dx, dW_ih, dW_hh, db_ih, db_hh from stacked per-step pre-activation grads (T, B, G).

    ``need`` is the Function's needs_input_grad; ``k`` the position of w_ih among
    its inputs (followed by w_hh, b_ih, b_hh); ``dests`` the engine's destinations
    for those four (written in place when offered). The bias grads may be one array
    when both paths share the pre-activation (the engine copies before keeping it).
    """
    T, B, I = x.shape
    G = dpre_x.shape[2]
    need = tuple(need) + (False,) * (k + 4 - len(need))
    dx2 = dpre_x.reshape(T * B, G)
    dh2 = dx2 if dpre_h is dpre_x else dpre_h.reshape(T * B, G)
    dx = (dx2 @ w_ih).reshape(T, B, I) if need[0] else None
    dw_ih = matmul_into(dx2.T, x.reshape(T * B, I), dests[0]) if need[k] else None
    dw_hh = matmul_into(dh2.T, hprev.reshape(T * B, hprev.shape[2]), dests[1]) if need[k + 1] else None
    db_ih = sum_into(dx2, 0, dests[2]) if need[k + 2] else None
    db_hh = None
    if need[k + 3]:
        if dh2 is dx2 and db_ih is not None and dests[3] is None:
            db_hh = db_ih  # one sum serves both
        else:
            db_hh = sum_into(dh2, 0, dests[3])
    return dx, dw_ih, dw_hh, db_ih, db_hh


def _live(batch_sizes, t, B):
    """The first row that is past its sequence's end at step t (B when all rows are live)."""
    return B if batch_sizes is None else int(batch_sizes[t])


def _check_batch_sizes(batch_sizes, T, B, what):
    if batch_sizes is None:
        return None
    bs = [int(b) for b in batch_sizes]
    if len(bs) != T or any(not 0 < b <= B for b in bs) or any(a < b for a, b in zip(bs, bs[1:])):
        raise ValueError(f"{what}: batch_sizes must be {T} non-increasing counts in [1, {B}], got {bs}")
    return bs


def _rows(xp, g, order, dest=None):
    """``g[order]``, gathered straight into ``dest`` when one of g's dtype is given."""
    if dest is not None and dest.dtype == g.dtype:
        return xp.take(g, order, axis=0, out=dest)
    return g[order]
