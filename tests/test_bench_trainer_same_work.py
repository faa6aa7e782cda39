"""bench_trainer's floor does the trainer's work: the same batches and math (its permutation is the sampler's),
so the same weights bit for bit, and the epoch loss and accuracy the trainer reports. Its figures are
only an overhead if that holds; the benchmark checks it in every run and this runs that check."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _measure(*extra):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_trainer.py"), "--json", "--rounds", "2", "--no-torch",
           "--hidden", "16", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("extra, expected", [
    ((), "yes: final weights bit for bit equal, and every epoch's loss and accuracy"),
    (("--floor-without-metrics",), "yes: final weights bit for bit equal (the floor computes no metrics"),
])
def test_floor_trains_the_trainers_batches_to_the_same_weights(extra, expected):
    result = _measure(*extra)
    assert result["same_work"].startswith(expected)
    assert len(result["times"]["bare"]) == len(result["times"]["trainer"]) == 2


def test_same_work_check_tells_a_different_run_apart():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import numpy as np

        from bench_trainer import same_work
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))

    class P:
        def __init__(self, a):
            self.data = np.asarray(a, dtype=np.float32)

    class M:
        def __init__(self, *arrays):
            self.arrays = arrays

        def parameters(self):
            return [P(a) for a in self.arrays]

    history = [{"train_loss": 0.5, "train_accuracy": 0.75}]
    assert same_work(M([1, 2]), M([1, 2]), [(0.5, 0.75)], history, 0.0, True).startswith("yes")
    assert same_work(M([1, 2]), M([1, 3]), [(0.5, 0.75)], history, 0.0, True).startswith("NO: the final weights")
    assert same_work(M([1, 2]), M([1, 2]), [(0.5, 0.5)], history, 0.0, True).startswith("NO: the weights agree")
    assert same_work(M([1, 2]), M([1, 3]), [], history, 0.1, True).startswith("not checked")
