"""L-BFGS (``torch.optim.LBFGS``): a quasi-Newton method that re-evaluates the loss through a closure.

Each ``step(closure)`` runs up to ``max_iter`` iterations on the parameters as one flat vector ``x``
with gradient ``g``. The search direction is ``d = -H g``, ``H`` the inverse Hessian estimate of the
last ``history_size`` pairs ``s = x_new - x``, ``y = g_new - g`` (the two-loop recursion, scaled by
``H_diag = y.s / y.y``); the first iteration of all takes ``d = -g`` with the step
``min(1, 1 / |g|_1) * lr``, later ones ``lr``, or the step a strong-Wolfe line search finds
(``line_search_fn="strong_wolfe"``). It stops at ``max_iter`` iterations, ``max_eval`` closure calls,
``max |g| <= tolerance_grad``, or a change of the step or the loss below ``tolerance_change``.

Library API only: the trainer (``distnn train``) calls ``step()`` without a closure, so the config
does not offer L-BFGS. The scalars of the recursion are Python floats (float64); PyTorch keeps them as
0-d tensors of the parameters' dtype, so float32 parameters may differ from it in the last bits.
"""
from __future__ import annotations

import numpy as np

from distnn import autograd
from distnn.autograd import float_errors as _float_errors
from distnn.autograd.mutation_guard import will_write
from distnn.backend import get_array_module, to_numpy

from .optimizer import Optimizer, _host_if_torch, _is_array, check_hyperparameter
from .sparse_updates import densify, is_sparse

__all__ = ["LBFGS"]

#: the state entries that are lists of flat vectors (or of numbers) the length of the history
_HISTORY = ("old_dirs", "old_stps", "ro", "al")
#: the state entries that are one flat vector
_FLAT = ("d", "prev_flat_grad")


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clipped to ``bounds`` (default
    [x1, x2]); their midpoint where the cubic has no minimum."""
    # (numpy float64 scalars, not Python floats: x1 == x2 or an inf gives inf or NaN, as PyTorch's 0-d tensors,
    # where Python raises ZeroDivisionError; step silences numpy's warnings)
    x1, f1, g1, x2, f2, g2 = (np.float64(v) for v in (x1, f1, g1, x2, f2, g2))
    xmin_bound, xmax_bound = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square ** 0.5
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return float(min(max(min_pos, xmin_bound), xmax_bound))
    return float((xmin_bound + xmax_bound) / 2.0)


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step ``t`` along ``d`` that meets the strong Wolfe conditions (minFunc's, as PyTorch ports it):
    bracket a minimizer, then zoom into the bracket by cubic interpolation. Returns
    ``(loss, flat gradient, t, closure calls)`` at that step."""
    xp = get_array_module(d)
    d_norm = float(xp.abs(d).max())
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = float(g_new.dot(d))

    # bracketing phase
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        # extrapolate, between 1.01 and 10 times the step
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = float(g_new.dot(d))
        ls_iter += 1
    if ls_iter == max_ls:  # reached the most evaluations
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # zoom phase: a point of the bracket that meets the conditions, or the bracket too small
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # A point close to a bracket's end makes too little progress: after two such in a row (or one
        # at or past an end) it moves to a tenth of the bracket from that end.
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = float(g_new.dot(d))
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


class LBFGS(Optimizer):
    """``LBFGS(params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
    history_size=100, line_search_fn=None)``, ``torch.optim.LBFGS``'s arguments, defaults and iterates.

    ``max_eval`` defaults to ``max_iter * 5 // 4``; ``line_search_fn`` is None (fixed steps) or
    ``"strong_wolfe"``. ``step(closure)`` needs the closure: it zeroes the gradients, computes the loss,
    calls ``backward`` and returns the loss; ``step`` returns the loss of its first call. One parameter
    group only. The state (history of ``history_size`` pairs of flat vectors, all of the parameters'
    size) lives under the first parameter, as in PyTorch, and round-trips through ``state_dict``.

    Library API only: ``distnn train`` steps its optimizer without a closure, so ``optimizer.name``
    offers no L-BFGS.
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None):
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _validate_group(self, group):
        lr = group["lr"]
        check_hyperparameter(isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr >= 0,
                             "learning rate lr", lr, "must be a number >= 0")
        for key in ("max_iter", "max_eval", "history_size"):
            v = group[key]
            check_hyperparameter(isinstance(v, int) and not isinstance(v, bool) and v >= 1, key, v,
                                 "must be an integer >= 1")
        check_hyperparameter(group["line_search_fn"] in (None, "strong_wolfe"), "line_search_fn",
                             group["line_search_fn"], "must be None or 'strong_wolfe'")

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    # ------------------------------------------------------------ the flat vector
    def _gather_flat_grad(self):
        """Every parameter's gradient (zeros where it has none), flattened and joined."""
        xp = get_array_module(self._params[0].data)
        return xp.concatenate([xp.zeros(p.data.size, dtype=p.data.dtype) if p.grad is None
                               else densify(p.grad, p.data).reshape(-1) if is_sparse(p.grad)  # (PyTorch's to_dense)
                               else xp.asarray(self._grad_array(p)).reshape(-1) for p in self._params])

    def _add_grad(self, step_size, update):
        """``x += step_size * update`` on the parameters in place."""
        offset = 0
        for p in self._params:
            n = p.data.size
            will_write(p)
            p.data += step_size * update[offset:offset + n].reshape(p.data.shape)
            p._version += 1  # updated in place: a graph built before must not backward
            offset += n

    def _set_param(self, params_data):
        for p, x in zip(self._params, params_data):
            will_write(p)
            p.data[...] = x
            p._version += 1

    def _directional_evaluate(self, closure, x, t, d):
        """(loss, flat gradient) at ``x + t d``; the parameters are back at ``x`` after."""
        self._add_grad(t, d)
        loss = float(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    # ------------------------------------------------------------------ step
    def step(self, closure=None):
        """Up to ``max_iter`` iterations; returns the loss the first closure call gave."""
        if closure is None:
            raise TypeError("LBFGS.step needs a closure: a function that zeroes the gradients, computes the "
                            "loss, calls loss.backward() and returns the loss (optimizer.step(closure))")
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

        # (LBFGS's own arithmetic meeting inf or NaN gives inf or NaN, silently, as PyTorch's: numpy's warnings off
        # for it, as Optimizer.step's update, but the closure, the user's code, runs with the user's numpy state)
        user_state = _float_errors.FP_STATE.get()

        def evaluate():
            token = _float_errors.FP_STATE.set(user_state)
            try:
                with autograd.enable_grad():
                    return closure()
            finally:
                _float_errors.FP_STATE.reset(token)

        token = _float_errors.FP_STATE.set(_float_errors.ALL_IGNORED)
        try:
            with autograd.no_grad():
                return self._step(evaluate)
        finally:
            _float_errors.FP_STATE.reset(token)

    def _step(self, closure):
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        xp = get_array_module(self._params[0].data)

        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if float(xp.abs(flat_grad).max()) <= tolerance_grad:  # optimal already
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:  # the very first: steepest descent
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y.dot(s))
                if ys > 1e-10:  # a pair that keeps H positive definite: into the history
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / float(y.dot(y))
                # d = -H g by the two-loop recursion
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = float(old_stps[i].dot(q)) * ro[i]
                    q -= al[i] * old_dirs[i]
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = float(old_dirs[i].dot(r)) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]
            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss

            t = min(1.0, 1.0 / float(xp.abs(flat_grad).sum())) * lr if state["n_iter"] == 1 else lr
            gtd = float(flat_grad.dot(d))
            if gtd > -tolerance_change:  # not a descent direction
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = [p.data.copy() for p in self._params]

                def obj_func(x, t, d):
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd,
                                                                  max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = float(xp.abs(flat_grad).max()) <= tolerance_grad
            else:
                self._add_grad(t, d)
                if n_iter != max_iter:  # (the last iteration's loss is the next step's first call)
                    loss = float(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = float(xp.abs(flat_grad).max()) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if float(xp.abs(d * t).max()) <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break  # no progress

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    # ------------------------------------------------------------ state_dict
    def state_dict(self, *, copy: bool = True) -> dict:
        """As :meth:`Optimizer.state_dict`; the history's lists of flat vectors hold host arrays too."""
        out = super().state_dict(copy=copy)
        for s in out["state"].values():
            for k in _HISTORY:
                if isinstance(s.get(k), list):
                    s[k] = [to_numpy(v).copy() if _is_array(v) and v.ndim else _number(v) for v in s[k]]
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        """As :meth:`Optimizer.load_state_dict`; the flat vectors (whose shape is no parameter's) go onto the
        parameters' device in their dtype; PyTorch's 0-d tensors (``t``, ``ro``, ``H_diag``) load as floats."""
        flat, rest = {}, {}
        for idx, s in state_dict["state"].items():
            flat[idx] = {k: v for k, v in s.items() if k in _FLAT or k in _HISTORY}
            rest[idx] = {k: v for k, v in s.items() if k not in flat[idx]}
        super().load_state_dict({**state_dict, "state": rest})
        if not flat or not self.state:
            return
        p = self._params[0]
        xp, dtype = get_array_module(p.data), p.data.dtype

        def vector(v):
            return xp.asarray(to_numpy(_host_if_torch(v)), dtype=dtype).copy()

        state = self.state[p]
        for k, v in next(iter(flat.values())).items():
            if k in _FLAT:
                state[k] = None if v is None else vector(v)
            elif k in ("old_dirs", "old_stps"):
                state[k] = [vector(x) for x in v]
            else:
                state[k] = [_number(x) for x in v]
        for k in ("t", "H_diag", "prev_loss"):
            if k in state:
                state[k] = _number(state[k])


def _number(v):
    """A 0-d array or tensor as a Python float (None and numbers as they are)."""
    v = _host_if_torch(v)
    return float(to_numpy(v).item()) if _is_array(v) else v
