"""``autograd.grad`` and ``backward(inputs=)`` on the random programs of tests/autograd_fuzz_ops.py, against PyTorch.

Each program (ops, views, in-place ops, ``register_hook`` / ``retain_grad`` on random tensors) ends in a
loss; then ``autograd.grad`` is asked for a random mix of leaves and intermediate tensors, and
``backward(inputs=)`` for a random subset of leaves. The returned gradients, the leaves' ``.grad``
(untouched by ``grad``), the retained gradients and every hook call must be PyTorch's. This exercises the
pruned pass (which nodes run, when a non-leaf asked for is captured relative to its hooks).
``DISTNN_FUZZ_PROGRAMS`` / ``DISTNN_FUZZ_START`` as in tests/test_autograd_fuzz.py (here a fifth of the programs).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn import autograd  # noqa: E402
from autograd_fuzz_harness import (PROGRAMS, START, Mismatch, _Diverged, _quiet_warnings,  # noqa: E402
                                   _unannotated_refusal)
from autograd_fuzz_ops import Program  # noqa: E402


def _close(a, b, what, ctx):
    if (a is None) != (b is None):
        a_zero = a is None or not np.any(np.asarray(a))
        b_zero = b is None or not np.any(np.asarray(b))
        if not (a_zero and b_zero):  # (no gradient and a zero gradient are the same)
            raise Mismatch(f"{what}: distnn {a} torch {b}\n{ctx}")
        return
    if a is not None:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-8, atol=1e-9, equal_nan=True,
                                   err_msg=f"{what}\n{ctx}")


def _loss(prog, lib, chosen, weights):
    total = None
    for p, w in zip(chosen, weights):
        x = p.d if lib == "d" else p.t
        term = (x * (distnn.tensor(w) if lib == "d" else torch.tensor(w))).sum()
        total = term if total is None else total + term
    return total


def run_program(seed) -> str:
    prog = Program(seed)
    with np.errstate(all="ignore"), _quiet_warnings():
        try:
            prog.build()
        except _Diverged:
            return "stopped"
        outs = [p for p in prog.pool if p.rg]
        chosen = outs[-3:] + prog.rng.sample(outs, min(2, len(outs)))
        weights = [prog.const(p.shape) for p in chosen]
        wanted = prog.rng.sample(outs, prog.rng.randint(1, min(4, len(outs))))
        subset = prog.rng.sample(prog.leaves, prog.rng.randint(1, len(prog.leaves)))
        ctx = "\n".join(prog.trace + [f"grad wrt {[p.name for p in wanted]}, then backward inputs="
                                      f"{[p.name for p in subset]}"])
        got, errors = {}, {}
        for lib in ("d", "t"):
            loss = _loss(prog, lib, chosen, weights)
            api = autograd if lib == "d" else torch.autograd
            try:
                gs = api.grad(loss, [p.d if lib == "d" else p.t for p in wanted], retain_graph=True,
                              allow_unused=True)
                got[lib] = [None if g is None else g.detach().numpy().copy() for g in gs]
                got[lib + "leaf"] = [p.d.grad if lib == "d" else p.t.grad for p in prog.leaves]
                got[lib + "ret"] = [np.array(p.d.grad if lib == "d" else p.t.grad.numpy()) if
                                    (p.d.grad if lib == "d" else p.t.grad) is not None else None
                                    for p in prog.retained]
                loss.backward(inputs=[p.d if lib == "d" else p.t for p in subset])
            except RuntimeError as e:
                errors[lib] = e
        if set(errors) != {"d", "t"} and errors:
            if "d" in errors and "t" not in errors and _unannotated_refusal(str(errors["d"])):
                return "lax"
            raise Mismatch(f"seed {seed}: distnn {errors.get('d')!r} torch {errors.get('t')!r}\n{ctx}")
        if errors:
            return "raised"
    for i, p in enumerate(wanted):
        _close(got["d"][i], got["t"][i], f"seed {seed}: autograd.grad wrt {p.name}", ctx)
    assert all(g is None for g in got["dleaf"]) and all(g is None for g in got["tleaf"]), ctx
    for i, p in enumerate(prog.retained):
        _close(got["dret"][i], got["tret"][i], f"seed {seed}: retained grad of {p.name} after grad()", ctx)
    for p in prog.leaves + prog.retained:
        gt = p.t.grad
        _close(p.d.grad, None if gt is None else gt.numpy(), f"seed {seed}: .grad of {p.name} after backward(inputs=)",
               ctx)
    ld, lt = (sorted(prog.log[k], key=lambda e: e[0]) for k in ("d", "t"))
    if [t for t, _ in ld] != [t for t, _ in lt]:
        raise Mismatch(f"seed {seed}: hook calls distnn {[t for t, _ in ld]} torch {[t for t, _ in lt]}\n{ctx}")
    for (tag, a), (_, b) in zip(ld, lt):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-9, equal_nan=True, err_msg=f"seed {seed}: {tag}\n{ctx}")
    return "ok"


def test_grad_and_backward_inputs_on_random_programs_match_pytorch():
    outcomes, failures = {}, []
    for seed in range(START, START + max(PROGRAMS // 5, 1)):
        try:
            r = run_program(seed)
        except AssertionError as e:
            failures.append(str(e)[:3000])
            r = "mismatch"
        outcomes[r] = outcomes.get(r, 0) + 1
    print(f"fuzz: {outcomes}")
    assert not failures, f"{len(failures)} mismatches; first:\n{failures[0]}"
    assert outcomes.get("ok", 0) >= max(PROGRAMS // 5, 1) // 2  # most programs get compared
