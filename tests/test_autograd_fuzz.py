"""Random programs run in distnn and in PyTorch (the oracle), compared op by op.

Each seed builds one program from a list of ops: arithmetic with tensors and constants, the annotated
activations and reductions, matmul/linear/einsum, some of the newer ops (cumsum, prod, logsumexp, amax,
sort/topk, index_select, narrow, flip, roll, gather, normalize), indexing views, in-place ops while
recording and under ``no_grad()``, ``register_hook`` / ``retain_grad`` on random tensors; then one or two
backward passes. Both libraries must raise (the in-place check) or both succeed with the same values,
gradients, retained gradients and hook calls (float64, tight tolerances).

Accepted differences, all documented in the README: distnn refusing where PyTorch does not in an op that
does not declare ``Function.reads`` (it checks more), and its refusal of an in-place op on a tensor another
live tensor views other than by indexing. A different gradient is never accepted.

``DISTNN_FUZZ_PROGRAMS`` raises the number of programs (default 500), ``DISTNN_FUZZ_START`` the first seed.
"""
from __future__ import annotations

import numpy as np

from autograd_fuzz_harness import PROGRAMS, START, _Diverged, _quiet_warnings
from autograd_fuzz_ops import Program


def run_program(seed) -> str:
    """One random program; returns 'ok', 'raised' (both refused), 'lax' (an accepted difference) or
    'stopped' (an in-place op both refused: nothing more to compare)."""
    prog = Program(seed)
    with np.errstate(all="ignore"), _quiet_warnings():
        try:
            prog.build()
        except _Diverged:
            return "lax" if prog.lax else "stopped"
        return prog.backward_and_compare()


def test_random_programs_match_pytorch():
    outcomes = {}
    failures = []
    for seed in range(START, START + PROGRAMS):
        try:
            r = run_program(seed)
        except AssertionError as e:
            failures.append(str(e)[:3000])
            r = "mismatch"
        outcomes[r] = outcomes.get(r, 0) + 1
    print(f"fuzz: {PROGRAMS} programs from seed {START}: {outcomes}")
    assert not failures, f"{len(failures)} mismatch(es):\n\n" + "\n\n".join(failures[:5])
    assert outcomes.get("ok", 0) > PROGRAMS // 2  # most programs reach a compared backward
