"""distnn.cond / distnn.while_loop against torch.cond / torch.while_loop, run in a child pytest: the oracle
(tests/isolated/test_control_flow_torch.py) goes through torch.compile, which changes the process it runs in
for good (see that file's docstring), so it must not share the suite's process."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

HERE = os.path.dirname(os.path.abspath(__file__))


def test_cond_and_while_loop_against_torch_in_a_process_of_their_own():
    env = dict(os.environ, DISTNN_TESTS_ISOLATED="1")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          os.path.join(HERE, "isolated", "test_control_flow_torch.py")],
                         cwd=os.path.dirname(HERE), env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout, run.stdout[-3000:]
