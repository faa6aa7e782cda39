"""Fused recurrent layers: one ``Function`` runs a whole sequence through one layer.

Each Function takes the full input sequence ``x`` (T, B, I), the initial state
and the layer's weights, and loops over time inside numpy/cupy. The input
projection ``x @ W_ih^T`` is one matmul for all timesteps up front; only the
recurrent ``h @ W_hh^T`` and a handful of elementwise ops run per step. Backward
walks time in reverse, stores the pre-activation gradients of every step, and
then forms ``dW_ih``, ``dW_hh``, ``dx`` and the biases with one matmul (or sum)
each. This keeps the graph to a single node per layer and direction, which is
what makes a Python-level RNN competitive.

Gate orders follow PyTorch: LSTM rows are (i, f, g, o), GRU rows are (r, z, n)
with ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.

A Function has one output, so the LSTM returns ``(T + 1, B, H)``: the hidden
states of every step followed by the final cell state. With a projection
(PyTorch's ``proj_size``: ``h = W_hr (o * tanh(c))``, P < H values) the hidden
states fill ``[:T, :, :P]`` of it and the rest of those rows is zero. ``reverse=True`` runs time
backwards (the second direction of a bidirectional layer); outputs stay at their
own time positions, so the final hidden state is then at index 0.

``batch_sizes`` (a PackedSequence's, see ``distnn.nn.utils.rnn``) runs a batch of
sequences of different lengths, sorted longest first and zero-padded to (T, B, I):
at step t only rows ``[:batch_sizes[t]]`` are live, the others keep their state
(so a reverse pass starts each sequence at its own last step from h0, and the
final state of each row is its state at its own last step) and their steps get
no gradient. Their outputs there are that kept state; the caller drops them.

Sigmoids are computed as ``0.5 * tanh(a / 2) + 0.5`` (no overflow for large |a|);
the ``/ 2`` is folded into a copy of the weights (scaling by a power of two is
exact), so one ``tanh`` call covers all gates of a step.

The array-level pieces the three layers share (argument checks, the input projection, the weight gradients,
a packed batch's live rows) are ``_rnn_common.py``.
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from ._into import destinations, matmul_into
from ._rnn_common import (_check_batch_sizes, _check_lstm_args, _check_rnn_args, _input_projection, _live, _rows,
                          _weight_grads)


# What each input's gradient reads (``Function.reads``), declared as PyTorch's: its RNN layers on the CPU in
# float64 run cell by cell through ops that each save what their own gradient formula reads, so they refuse
# an in-place change of exactly these (checked against torch for sequences of 2 steps or more; with one step
# PyTorch's reads W_hh for h0's gradient only, and distnn refuses a change of W_hh that PyTorch's does not:
# stricter, never wrong, as the reads are per class, not per length). distnn's backward reads fewer of them
# (its own copies of the states and, for the LSTM, of the weights), always among these. PyTorch's fused kernels
# (oneDNN for float32 on the CPU, cuDNN) save every input and the output, and refuse every such change.
#   GRU, RNN (x, h0, w_ih, w_hh, b_ih, b_hh): every gradient runs back through time over W_hh; x's reads W_ih,
#   W_ih's reads x, W_hh's reads the states h0 included.
_W_HH_ALWAYS = ((2, 3), (3,), (0, 3), (1, 3), (3,), (3,))
#   LSTM (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr): as the GRU's, shifted by c0, which PyTorch's ``f * c0``
#   saves for the forget gate's gradient, that is for every input but c0 itself (and W_hr, whose gradient is
#   that of steps after the first only). With a projection W_hr (proj_size), every output is a product with
#   it, so every gradient reads it (without one, position 7 is no Tensor and nothing is checked there).
_LSTM_READS = ((2, 3, 4, 7), (2, 4, 7), (4, 7), (0, 2, 4, 7), (1, 2, 4, 7), (2, 4, 7), (2, 4, 7), (4, 7))


class LSTMLayer(Function):
    """One LSTM layer over a sequence.

    ``apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=None, reverse=False, batch_sizes=None)`` -> (T + 1, B, H):
    ``out[:T]`` are the hidden states, ``out[T]`` the final cell state. With ``w_hr`` (P, H), PyTorch's
    projection, the hidden states are ``W_hr (o * tanh(c))``, h0 is (B, P) and ``out[:T, :, :P]`` holds them.
    """

    reads = _LSTM_READS  # (backward reads x for W_ih's gradient; the rest are its own arrays)

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None, reverse=False, batch_sizes=None):
        xp = get_array_module(x)
        T, B, _ = x.shape
        H = w_ih.shape[0] // 4
        P = H if w_hr is None else w_hr.shape[0]
        _check_lstm_args(x, h0, c0, w_ih, w_hh, w_hr, H, P)
        bs = _check_batch_sizes(batch_sizes, T, B, "LSTM")
        # Reorder gates (i, f, g, o) -> (i, f, o, g) so the sigmoid gates are one block.
        perm = xp.concatenate([xp.arange(0, 2 * H), xp.arange(3 * H, 4 * H), xp.arange(2 * H, 3 * H)])
        scale = xp.ones((4 * H, 1), dtype=x.dtype)
        scale[: 3 * H] = 0.5
        w_ih_p, w_hh_p = w_ih[perm], w_hh[perm]
        b_ih_p = None if b_ih is None else b_ih[perm] * scale[:, 0]
        b_hh_p = None if b_hh is None else b_hh[perm] * scale[:, 0]
        gates = _input_projection(x, w_ih_p * scale, b_ih_p, b_hh_p)  # (T, B, 4H), activated in place below
        w_hh_s_T = (w_hh_p * scale).T
        hs = xp.empty((T + 1, B, P), dtype=x.dtype)  # hs[s] is the state before step s (in run order)
        cs = xp.empty((T + 1, B, H), dtype=x.dtype)
        tcs = xp.empty((T, B, H), dtype=x.dtype)
        # o * tanh(c) before the projection, in time order (W_hr's gradient reads it); without one, it is h
        raws = None if w_hr is None else xp.empty((T, B, H), dtype=x.dtype)
        w_hr_T = None if w_hr is None else w_hr.T
        hs[0], cs[0] = h0, c0
        H3 = 3 * H
        steps = range(T - 1, -1, -1) if reverse else range(T)
        for s, t in enumerate(steps):
            a = gates[t]
            a += hs[s] @ w_hh_s_T
            xp.tanh(a, out=a)
            sg = a[:, :H3]
            sg *= 0.5
            sg += 0.5
            i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : H3], a[:, H3:]
            c = cs[s + 1]
            xp.multiply(f, cs[s], out=c)
            c += i * g
            tc = tcs[t]
            xp.tanh(c, out=tc)
            if raws is None:
                xp.multiply(o, tc, out=hs[s + 1])
            else:
                xp.multiply(o, tc, out=raws[t])
                xp.matmul(raws[t], w_hr_T, out=hs[s + 1])
            k = _live(bs, t, B)
            if k < B:  # rows past their end keep their state
                cs[s + 1, k:] = cs[s, k:]
                hs[s + 1, k:] = hs[s, k:]
        out = xp.zeros((T + 1, B, H), dtype=x.dtype) if P < H else xp.empty((T + 1, B, H), dtype=x.dtype)
        out[:T, :, :P] = hs[1:][::-1] if reverse else hs[1:]
        out[T] = cs[T]
        self.x, self.gates, self.hs, self.cs, self.tcs, self.raws = x, gates, hs, cs, tcs, raws
        self.w_ih_p, self.w_hh_p, self.w_hr, self.perm, self.reverse = w_ih_p, w_hh_p, w_hr, perm, reverse
        self.bs = bs
        self.w_ih_raw, self.w_hh_raw, self.extra_inputs = w_ih, w_hh, (b_ih, b_hh, w_hr)  # (the graph backward's)
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        x, gates, hs, cs, tcs, w_hr = self.x, self.gates, self.hs, self.cs, self.tcs, self.w_hr
        T, B, _ = x.shape
        H, P = cs.shape[2], hs.shape[2]
        H3 = 3 * H
        dpre = xp.empty_like(gates)  # pre-activation gradients in (i, f, o, g) order
        dys = None if w_hr is None else xp.empty((T, B, P), dtype=grad.dtype)  # d(projected h), time order
        dh = xp.zeros((B, P), dtype=grad.dtype)
        dc = grad[T].copy()
        steps = range(T - 1, -1, -1) if self.reverse else range(T)
        for s in range(T - 1, -1, -1):
            t = steps[s]
            a = gates[t]
            i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : H3], a[:, H3:]
            tc = tcs[t]
            dh += grad[t, :, :P]
            k = _live(self.bs, t, B)
            if k < B:  # a kept state's gradient passes this step unchanged
                keep_h, keep_c = dh[k:].copy(), dc[k:].copy()
            if dys is not None:  # through h = W_hr raw
                dys[t] = dh
                if k < B:
                    dys[t, k:] = 0
                dh = dh @ w_hr
            d = dpre[t]
            # d(output gate) and d(cell) through raw = o * tanh(c)
            xp.multiply(dh, tc, out=d[:, 2 * H : H3])
            dc += dh * o * (1 - tc * tc)
            xp.multiply(dc, g, out=d[:, :H])
            xp.multiply(dc, cs[s], out=d[:, H : 2 * H])
            xp.multiply(dc, i, out=d[:, H3:])
            sg = a[:, :H3]
            d[:, :H3] *= sg * (1 - sg)
            d[:, H3:] *= 1 - g * g
            dc *= f
            if k < B:
                d[k:] = 0
                dc[k:] = keep_c
            dh = d @ self.w_hh_p
            if k < B:
                dh[k:] = keep_h
        # Hidden states in time order, the state before each step: hprev[t] feeds step t.
        hprev = hs[:-1][::-1] if self.reverse else hs[:-1]
        need = self.needs_input_grad
        grads = _weight_grads(need, 3, dpre, dpre, x, hprev, self.w_ih_p, self.w_hh_p)
        dx, dw_ih, dw_hh, db_ih, db_hh = (None if g is None else g for g in grads)
        inv = xp.argsort(self.perm)  # back to PyTorch's (i, f, g, o) rows, into the engine's destinations if any
        dests = destinations(self, 8)
        dw_ih, dw_hh, db_ih, db_hh = (None if g is None else _rows(xp, g, inv, d)
                                      for g, d in zip((dw_ih, dw_hh, db_ih, db_hh), dests[3:7]))
        dw_hr = None
        if len(need) > 7 and need[7]:
            dw_hr = matmul_into(dys.reshape(T * B, P).T, self.raws.reshape(T * B, H), dests[7])
        return (dx, (dh if need[1] else None), (dc if need[2] else None), dw_ih, dw_hh, db_ih, db_hh,
                dw_hr)[: len(need)]


class GRULayer(Function):
    """One GRU layer over a sequence: ``apply(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False,
    batch_sizes=None)`` -> (T, B, H)."""

    reads = _W_HH_ALWAYS  # (backward reads W_hh, W_ih for x's gradient and x for W_ih's; the states are its own)

    def forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False, batch_sizes=None):
        xp = get_array_module(x)
        _check_rnn_args(x, h0, w_ih, w_hh, 3, "GRU")
        T, B, _ = x.shape
        bs = self.bs = _check_batch_sizes(batch_sizes, T, B, "GRU")
        H = w_hh.shape[1]
        H2 = 2 * H
        scale = xp.ones((3 * H, 1), dtype=x.dtype)
        scale[:H2] = 0.5  # r and z are sigmoids
        xw = _input_projection(x, w_ih * scale, None if b_ih is None else b_ih * scale[:, 0], None)
        if b_hh is not None:
            xw[:, :, :H2] += b_hh[:H2] * 0.5  # r, z: both biases add outside; b_hn stays inside r * (...)
        w_hh_s_T = (w_hh * scale).T
        b_hn = None if b_hh is None else b_hh[H2:]
        hs = xp.empty((T + 1, B, H), dtype=x.dtype)
        rz = xp.empty((T, B, H2), dtype=x.dtype)
        ns = xp.empty((T, B, H), dtype=x.dtype)
        hns = xp.empty((T, B, H), dtype=x.dtype)  # W_hn h + b_hn, needed for d(r)
        hs[0] = h0
        steps = range(T - 1, -1, -1) if reverse else range(T)
        for s, t in enumerate(steps):
            hw = hs[s] @ w_hh_s_T
            a = rz[t]
            xp.add(xw[t, :, :H2], hw[:, :H2], out=a)
            xp.tanh(a, out=a)
            a *= 0.5
            a += 0.5
            r, z = a[:, :H], a[:, H:]
            hn = hns[t]
            if b_hn is not None:
                xp.add(hw[:, H2:], b_hn, out=hn)
            else:
                hn[...] = hw[:, H2:]
            n = ns[t]
            xp.multiply(r, hn, out=n)
            n += xw[t, :, H2:]
            xp.tanh(n, out=n)
            # h' = (1 - z) * n + z * h = n + z * (h - n)
            h = hs[s + 1]
            xp.subtract(hs[s], n, out=h)
            h *= z
            h += n
            k = _live(bs, t, B)
            if k < B:  # rows past their end keep their state
                h[k:] = hs[s, k:]
        self.x, self.hs, self.rz, self.ns, self.hns = x, hs, rz, ns, hns
        self.w_ih, self.w_hh, self.reverse = w_ih, w_hh, reverse
        self.extra_inputs = (b_ih, b_hh)  # (the graph backward recomputes the layer: derivatives/rnn.py)
        return hs[1:][::-1].copy() if reverse else hs[1:].copy()

    def backward(self, grad):
        xp = get_array_module(grad)
        x, hs, rz, ns, hns = self.x, self.hs, self.rz, self.ns, self.hns
        T, B, _ = x.shape
        H = hs.shape[2]
        H2 = 2 * H
        dpre_x = xp.empty((T, B, 3 * H), dtype=grad.dtype)  # grads of W_ih x + b_ih
        dpre_h = xp.empty((T, B, 3 * H), dtype=grad.dtype)  # grads of W_hh h + b_hh
        dh = xp.zeros((B, H), dtype=grad.dtype)
        steps = range(T - 1, -1, -1) if self.reverse else range(T)
        for s in range(T - 1, -1, -1):
            t = steps[s]
            r, z, n, hn = rz[t, :, :H], rz[t, :, H:], ns[t], hns[t]
            dh += grad[t]
            dx_t, dh_t = dpre_x[t], dpre_h[t]
            dn = dx_t[:, H2:]
            xp.multiply(dh, 1 - z, out=dn)
            dn *= 1 - n * n  # now d(n pre-activation)
            dr = dx_t[:, :H]
            xp.multiply(dn, hn, out=dr)
            dr *= r * (1 - r)
            dz = dx_t[:, H:H2]
            xp.subtract(hs[s], n, out=dz)
            dz *= dh
            dz *= z * (1 - z)
            dh_t[:, :H2] = dx_t[:, :H2]
            xp.multiply(dn, r, out=dh_t[:, H2:])
            k = _live(self.bs, t, B)
            if k < B:  # a kept state's step has no gradient; its state's gradient passes unchanged
                dx_t[k:] = 0
                dh_t[k:] = 0
            new = dh * z + dh_t @ self.w_hh
            if k < B:
                new[k:] = dh[k:]
            dh = new
        hprev = hs[:-1][::-1] if self.reverse else hs[:-1]
        need = self.needs_input_grad
        dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(need, 2, dpre_x, dpre_h, x, hprev, self.w_ih, self.w_hh,
                                                       destinations(self, 6)[2:6])
        return (dx, (dh if need[1] else None), dw_ih, dw_hh, db_ih, db_hh)[: len(need)]


#: the plain RNN's activations: PyTorch's two, and the lecture notes' sigmoid (h_n = sigma(V [x_n; h_n-1] + c))
RNN_NONLINEARITIES = ("tanh", "relu", "sigmoid")


class RNNLayer(Function):
    """Elman RNN layer, ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with act tanh, relu or sigmoid.

    ``apply(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", reverse=False, batch_sizes=None)`` -> (T, B, H).
    """

    reads = _W_HH_ALWAYS  # (backward reads W_hh, W_ih for x's gradient and x for W_ih's; the states are its own)

    def forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", reverse=False,
                batch_sizes=None):
        xp = get_array_module(x)
        _check_rnn_args(x, h0, w_ih, w_hh, 1, "RNN")
        bs = self.bs = _check_batch_sizes(batch_sizes, x.shape[0], x.shape[1], "RNN")
        if nonlinearity not in RNN_NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be 'tanh', 'relu' or 'sigmoid', got {nonlinearity!r}")
        T, B, _ = x.shape
        H = w_hh.shape[1]
        pre = _input_projection(x, w_ih, b_ih, b_hh)
        hs = xp.empty((T + 1, B, H), dtype=x.dtype)
        hs[0] = h0
        w_hh_T = w_hh.T
        steps = range(T - 1, -1, -1) if reverse else range(T)
        for s, t in enumerate(steps):
            a = pre[t]
            a += hs[s] @ w_hh_T
            h = hs[s + 1]
            if nonlinearity == "tanh":
                xp.tanh(a, out=h)
            elif nonlinearity == "relu":
                xp.maximum(a, 0, out=h)
            else:  # sigmoid, as the gates: 0.5 * tanh(a / 2) + 0.5 never overflows
                a *= 0.5
                xp.tanh(a, out=h)
                h *= 0.5
                h += 0.5
            k = _live(bs, t, B)
            if k < B:  # rows past their end keep their state
                h[k:] = hs[s, k:]
        self.x, self.hs, self.w_ih, self.w_hh = x, hs, w_ih, w_hh
        self.nonlinearity, self.reverse = nonlinearity, reverse
        self.extra_inputs = (b_ih, b_hh)  # (the graph backward recomputes the layer: derivatives/rnn.py)
        return hs[1:][::-1].copy() if reverse else hs[1:].copy()

    def backward(self, grad):
        xp = get_array_module(grad)
        x, hs = self.x, self.hs
        T, B, _ = x.shape
        H = hs.shape[2]
        dpre = xp.empty((T, B, H), dtype=grad.dtype)
        dh = xp.zeros((B, H), dtype=grad.dtype)
        steps = range(T - 1, -1, -1) if self.reverse else range(T)
        for s in range(T - 1, -1, -1):
            t = steps[s]
            h = hs[s + 1]
            dh += grad[t]
            d = dpre[t]
            if self.nonlinearity == "tanh":
                xp.multiply(dh, 1 - h * h, out=d)
            elif self.nonlinearity == "relu":
                xp.multiply(dh, h > 0, out=d)
            else:
                xp.multiply(dh, h * (1 - h), out=d)
            k = _live(self.bs, t, B)
            if k < B:  # a kept state's step has no gradient; its state's gradient passes unchanged
                d[k:] = 0
            new = d @ self.w_hh
            if k < B:
                new[k:] = dh[k:]
            dh = new
        hprev = hs[:-1][::-1] if self.reverse else hs[:-1]
        need = self.needs_input_grad
        dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(need, 2, dpre, dpre, x, hprev, self.w_ih, self.w_hh,
                                                       destinations(self, 6)[2:6])
        return (dx, (dh if need[1] else None), dw_ih, dw_hh, db_ih, db_hh)[: len(need)]
