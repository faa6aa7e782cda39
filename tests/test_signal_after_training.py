"""A preemption signal after training has ended (test evaluation, writing model, summary and plots).

Once training has ended there is nothing left to checkpoint: the job finishes writing its results
and exits 0, the signal only noted (and said on stderr), the same on every path. The old code was
inconsistent: a process running simulated ranks (``--simulate-ranks``) died by the signal's default
action (status -15, ``summary.json`` never written), while an MPI rank or a plain process ignored it.
Every result file is written whole (a temporary file renamed into place): no ``*.tmp`` is left. The
fault hook ``DISTNN_FAULT_SIGNAL_AT=RANK:after-training[:SIG]`` signals that rank's process right
after its ``Trainer.fit`` returned.
"""
import json
import os

import numpy as np
import pytest

import cli_faults

@pytest.mark.parametrize("mode,n,fault,checkpoint", [
    ("simulated", 2, "0:after-training", "true"),            # simulated ranks: died by SIGTERM before
    ("simulated", 2, "1:after-training:SIGUSR1", "false"),   # (and by SIGUSR1), checkpointing off
    ("mpi", 2, "1:after-training", "true"),                  # MPI ranks: one rank alone is signalled
    ("process", 1, "0:after-training:SIGUSR1", "false"),     # one process
], ids=["simulated", "simulated-usr1-no-checkpoint", "mpiexec", "process-usr1"])
def test_a_signal_after_training_lets_the_run_finish_with_status_0(tmp_path, mode, n, fault, checkpoint):
    run = tmp_path / "run"
    p = cli_faults.train(run, mode, n, ["--config", "xor", "--set", "train.epochs=3",
                                        "--set", f"checkpoint.enabled={checkpoint}", "--set", "run.plots=true"], fault)
    assert p.returncode == 0, p.stderr[-4000:]
    sig = fault.split(":")[2] if fault.count(":") == 2 else "SIGTERM"
    assert f"{sig} came after training had ended" in p.stderr, p.stderr[-4000:]
    # the results are all there and whole
    s = json.loads((run / "summary.json").read_text())
    assert s["epochs_run"] == 3 and s["test_accuracy"] is not None and s["world_size"] == n
    with np.load(run / "model.npz") as z:
        assert z.files and all(np.isfinite(z[k]).all() for k in z.files)
    json.loads((run / "model.json").read_text())
    assert (run / "curves.png").stat().st_size > 0
    assert not [f for _, _, files in os.walk(run) for f in files if ".tmp" in f]
    if checkpoint == "true":  # the checkpoints are those of a finished run: no preemption checkpoint
        reasons = [json.loads((c / "manifest.json").read_text())["reason"]
                   for c in (run / "checkpoints").iterdir() if c.name.startswith("step-")]
        assert reasons and "preempt" not in reasons, reasons
