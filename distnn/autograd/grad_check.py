"""PyTorch's ``torch.autograd.gradcheck`` and ``gradgradcheck`` on distnn's engine.

The default (PyTorch's "slow" mode) compares the whole Jacobian, entry by entry: the analytic one (one
:func:`autograd.grad` pass per output element) against central differences (two evaluations of ``func``
per input element), passing when ``|analytic - numeric| <= atol + rtol * |numeric|`` everywhere, as
``torch.allclose``. ``fast_mode=True`` compares directional derivatives along random directions instead:
that is :func:`distnn.testing.check_grad`, distnn's own checker, with the same tolerances.

As PyTorch's: returns True, or on a mismatch raises :class:`GradcheckError` (a RuntimeError naming the
output and input, with both Jacobians), or returns False with ``raise_exception=False``.

``gradgradcheck`` is PyTorch's too: :func:`gradcheck` of the function ``(inputs, grad_outputs) -> the
gradients of func's outputs along grad_outputs`` computed with ``create_graph=True``, which checks the
second derivatives (the graph backwards of :mod:`.derivatives`) against differences of first ones.
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn.backend import get_array_module, to_numpy

from .grad_api import grad
from .grad_mode import enable_grad, no_grad
from .tensor import Tensor


class GradcheckError(RuntimeError):
    """A gradient check found analytic and numerical gradients that differ (PyTorch's name)."""


def _differentiable(x) -> bool:
    return isinstance(x, Tensor) and x.requires_grad


def _outputs(out):
    return (out,) if isinstance(out, Tensor) else tuple(out)


def _numerical(func, inputs, wrt, eps):
    """Per input in ``wrt``, per output: the central-difference Jacobian (out.size, in.size)."""
    with no_grad():
        base = [o for o in _outputs(func(*inputs))]
        jac = {}
        for j in wrt:
            x = inputs[j].data
            flat = np.array(to_numpy(x), dtype=x.dtype).reshape(-1)  # the perturbed copy (host)
            xp = get_array_module(x)
            cols = [[] for _ in base]
            for k in range(flat.size):
                value = flat[k]
                evals = []
                for step in (eps, -eps):
                    flat[k] = value + step
                    args = list(inputs)
                    args[j] = Tensor(xp.asarray(flat.reshape(x.shape)))
                    evals.append(_outputs(func(*args)))
                flat[k] = value
                for i, (plus, minus) in enumerate(zip(*evals)):
                    cols[i].append((to_numpy(plus.data).astype(np.float64)
                                    - to_numpy(minus.data).astype(np.float64)).reshape(-1) / (2 * eps))
            for i, o in enumerate(base):
                jac[i, j] = np.stack(cols[i], axis=1) if cols[i] else np.zeros((o.numel(), 0))
    return jac


def _analytical(func, inputs, wrt):
    """Per output and input in ``wrt``: the Jacobian (out.size, in.size) by one reverse pass per output entry."""
    args = list(inputs)
    for j in wrt:
        args[j] = inputs[j].detach().requires_grad_(True)
    with enable_grad():
        outputs = _outputs(func(*args))
    leaves = [args[j] for j in wrt]
    jac = {}
    for i, out in enumerate(outputs):
        rows = []
        for k in range(out.numel()):
            if not out.requires_grad:  # (an output that depends on nothing: its Jacobian is zero)
                rows.append([np.zeros(inputs[j].numel()) for j in wrt])
                continue
            xp = get_array_module(out.data)
            seed = xp.zeros(out.numel(), dtype=out.dtype)
            seed[k] = 1
            gs = grad((out,), leaves, (seed.reshape(out.shape),), retain_graph=True, allow_unused=True)
            rows.append([np.zeros(inputs[j].numel()) if g is None else to_numpy(g.data).astype(np.float64).reshape(-1)
                         for g, j in zip(gs, wrt)])
        for n, j in enumerate(wrt):
            jac[i, j] = np.stack([r[n] for r in rows]) if rows else np.zeros((0, inputs[j].numel()))
    return jac, outputs


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0,
              check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
              check_batched_forward_grad=False, check_forward_ad=False, check_backward_ad=True, fast_mode=False,
              masked=None) -> bool:
    """Check ``func``'s gradients with respect to its inputs that require grad, as ``torch.autograd.gradcheck``.

    ``inputs``: a Tensor or a tuple (Tensors and other arguments); float64 inputs are advised (a warning
    otherwise, as PyTorch's). Returns True; on a mismatch raises :class:`GradcheckError`, or returns False
    when ``raise_exception=False``. ``fast_mode=True`` uses :func:`distnn.testing.check_grad`. The checks
    that need forward-mode AD or vmap (``check_forward_ad``, ``check_batched_grad``,
    ``check_batched_forward_grad``) and ``masked`` are refused; ``nondet_tol``, ``check_undefined_grad`` and
    ``check_grad_dtypes`` are accepted (distnn's backward is deterministic and returns arrays in the inputs'
    dtypes).
    """
    for name, flag, why in (("check_forward_ad", check_forward_ad, "distnn has no forward-mode AD"),
                            ("check_batched_forward_grad", check_batched_forward_grad, "distnn has no forward-mode AD"),
                            ("check_batched_grad", check_batched_grad, "distnn has no vmap"),
                            ("masked", masked, "distnn has no sparse tensors")):
        if flag:
            raise NotImplementedError(f"gradcheck({name}=True): {why}")
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    wrt = [j for j, x in enumerate(inputs) if _differentiable(x)]
    if not wrt:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of the them "
                         "have requires_grad=True.")
    for j in wrt:
        if inputs[j].dtype != np.float64:
            warnings.warn(f"Input #{j} requires gradient and is not a double precision floating point or complex. "
                          "This check will likely fail if all the inputs are not of double precision floating point "
                          "or complex. ", UserWarning, stacklevel=2)
    if not check_backward_ad:
        return True
    try:
        if fast_mode:
            _fast(func, inputs, wrt, eps, atol, rtol)
        else:
            _slow(func, inputs, wrt, eps, atol, rtol)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _slow(func, inputs, wrt, eps, atol, rtol):
    analytic, outputs = _analytical(func, inputs, wrt)
    numeric = _numerical(func, inputs, wrt, eps)
    for i, out in enumerate(outputs):
        if out.dtype.kind != "f":
            continue  # (PyTorch skips outputs that cannot be differentiated)
        for j in wrt:
            a, n = analytic[i, j], numeric[i, j]
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                raise GradcheckError(f"Jacobian mismatch for output {i} with respect to input {j},\n"
                                     f"numerical:{n}\nanalytical:{a}\n")


def _fast(func, inputs, wrt, eps, atol, rtol):
    from distnn.testing import check_grad

    def flat(*args):  # check_grad differentiates one tensor: the outputs, flattened and joined
        from distnn.functional import cat

        outs = [o.reshape(-1) for o in _outputs(func(*args)) if o.dtype.kind == "f"]
        return outs[0] if len(outs) == 1 else cat(outs)

    try:
        check_grad(flat, *inputs, eps=eps, rtol=rtol, atol=atol, wrt=wrt)
    except AssertionError as e:
        raise GradcheckError(f"Jacobian mismatch (fast mode, along random directions): {e}") from None


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, nondet_tol=0.0, check_undefined_grad=True,
                  check_grad_dtypes=False, check_batched_grad=False, check_fwd_over_rev=False,
                  check_rev_over_rev=True, fast_mode=False, masked=False) -> bool:
    """Check ``func``'s second derivatives, as ``torch.autograd.gradgradcheck``.

    ``grad_outputs``: one per floating output (None: random ones in [-1, 1] that require grad, so the check
    covers the dependence on them too, as PyTorch's). Returns True; on a mismatch raises
    :class:`GradcheckError` or, with ``raise_exception=False``, returns False. ``check_fwd_over_rev`` and
    ``check_batched_grad`` need forward-mode AD or vmap and are refused; an op on the path without a graph
    backward raises NotImplementedError naming it.
    """
    for name, flag, why in (("check_fwd_over_rev", check_fwd_over_rev, "distnn has no forward-mode AD"),
                            ("check_batched_grad", check_batched_grad, "distnn has no vmap"),
                            ("masked", masked, "distnn has no sparse tensors")):
        if flag:
            raise NotImplementedError(f"gradgradcheck({name}=True): {why}")
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    wrt = [j for j, x in enumerate(inputs) if _differentiable(x)]
    if grad_outputs is None:
        with enable_grad():
            outs = [o for o in _outputs(func(*inputs)) if o.dtype.kind == "f" and o.requires_grad]
        rng = np.random.default_rng(0)
        grad_outputs = tuple(
            Tensor(get_array_module(o.data).asarray(rng.uniform(-1, 1, o.shape).astype(o.dtype)), requires_grad=True)
            for o in outs)
    else:
        grad_outputs = (grad_outputs,) if isinstance(grad_outputs, Tensor) else tuple(grad_outputs)
    n = len(inputs)

    def first_derivatives(*args):
        xs, vs = list(args[:n]), args[n:]
        with enable_grad():
            for j in wrt:  # (the numerical pass perturbs plain copies: they must record again)
                if not xs[j].requires_grad:
                    xs[j] = xs[j].detach().requires_grad_(True)
            outs = [o for o in _outputs(func(*xs)) if o.dtype.kind == "f" and o.requires_grad]
            if len(outs) != len(vs):
                raise RuntimeError(f"gradgradcheck: got {len(vs)} grad_outputs for {len(outs)} differentiable outputs")
            gs = grad(outs, [xs[j] for j in wrt], list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_derivatives, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol, check_undefined_grad=check_undefined_grad,
                     check_grad_dtypes=check_grad_dtypes, check_backward_ad=check_rev_over_rev, fast_mode=fast_mode)


__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]
