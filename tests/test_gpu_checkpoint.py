"""Checkpoints across devices, through the CLI: a run on the GPU resumes exactly on the GPU, a GPU
checkpoint (written by 1 process or 2 MPI ranks) loads on the CPU and a CPU one on the GPU, and
``evaluate`` reads a GPU run on a process that sees no GPU. Needs cupy and a CUDA device; skips
elsewhere (as in CI here).
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from distnn import backend

import cli_faults

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip("needs cupy and a CUDA device (none here)", allow_module_level=True)
ARGS = ["--config", "digits_mlp", "--set", "train.epochs=3", "--set", "checkpoint.keep_last=0"]
NO_GPU = {"CUDA_VISIBLE_DEVICES": ""}  # cupy then sees no device: a CPU-only machine


def _train(out, device, *extra, n=1, env=None, status=0):
    cmd = [sys.executable, "-m", "distnn", "train", "--out", str(out), "--quiet", *ARGS,
           "--set", f"run.device={device}", *extra]
    if n > 1:
        if cli_faults.MPIEXEC is None:
            pytest.skip("mpiexec not found (pip install mpich)")
        cmd = [cli_faults.MPIEXEC, "-n", str(n), *cmd]
    p = subprocess.run(cmd, env=cli_faults.fault_env(**(env or {})), capture_output=True, text=True, timeout=300)
    assert p.returncode == status, p.stderr[-3000:]
    return p


def _weights(run):
    with np.load(run / "model.npz") as z:
        return {k: z[k] for k in z.files}


def _step_dir(run, step):
    return run / "checkpoints" / f"step-{step:08d}"


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    """3 epochs on the GPU, one process, a checkpoint every epoch (steps 20, 40, 60)."""
    run = tmp_path_factory.mktemp("gpu") / "run"
    _train(run, "gpu")
    return run


def test_a_gpu_run_resumed_on_the_gpu_is_bitwise_the_uninterrupted_run(gpu_run, tmp_path):
    """Preempted mid-epoch (SIGTERM at step 30: a checkpoint, exit 75), then ``--resume auto``."""
    cut = tmp_path / "cut"
    _train(cut, "gpu", env={"DISTNN_FAULT_SIGNAL_AT": "0:30"}, status=75)
    _train(cut, "gpu", "--resume", "auto")
    full, resumed = _weights(gpu_run), _weights(cut)
    for k in full:
        np.testing.assert_array_equal(resumed[k], full[k], err_msg=k)


def test_a_gpu_checkpoint_loads_on_a_cpu_only_process_exactly(gpu_run, tmp_path):
    """Resumed at its end in a new directory on a process that sees no GPU: nothing left to train, so the
    model saved there is the GPU's, bit for bit; one more epoch on the CPU stays close to the GPU's."""
    copy = tmp_path / "copy"
    _train(copy, "cpu", "--resume", str(_step_dir(gpu_run, 60)), env=NO_GPU)
    gpu = _weights(gpu_run)
    for k, v in _weights(copy).items():
        np.testing.assert_array_equal(v, gpu[k], err_msg=k)
    more_cpu, more_gpu = tmp_path / "more_cpu", tmp_path / "more_gpu"
    _train(more_cpu, "cpu", "--resume", str(_step_dir(gpu_run, 40)), env=NO_GPU)
    for k, v in _weights(more_cpu).items():  # epoch 3 again, on the CPU: GPU and CPU sums differ slightly
        np.testing.assert_allclose(v, gpu[k], rtol=1e-3, atol=1e-4 * float(np.abs(gpu[k]).max()), err_msg=k)
    _train(more_gpu, "gpu", "--resume", str(_step_dir(gpu_run, 40)))
    for k, v in _weights(more_gpu).items():
        np.testing.assert_array_equal(v, gpu[k], err_msg=k)


def test_a_cpu_checkpoint_resumes_on_the_gpu(tmp_path):
    cpu_run, on_gpu = tmp_path / "cpu", tmp_path / "on_gpu"
    _train(cpu_run, "cpu", env=NO_GPU)
    _train(on_gpu, "gpu", "--resume", str(_step_dir(cpu_run, 40)))
    cpu = _weights(cpu_run)
    for k, v in _weights(on_gpu).items():
        np.testing.assert_allclose(v, cpu[k], rtol=1e-3, atol=1e-4 * float(np.abs(cpu[k]).max()), err_msg=k)


def test_evaluate_reads_a_gpu_run_without_a_gpu(gpu_run):
    p = subprocess.run([sys.executable, "-m", "distnn", "evaluate", str(gpu_run)], env=cli_faults.fault_env(**NO_GPU),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    summary = json.loads((gpu_run / "summary.json").read_text())
    loss = float(next(line.split()[1] for line in p.stdout.splitlines() if line.startswith("loss")))
    assert loss == pytest.approx(summary["test_loss"], rel=1e-4)


def test_two_gpu_mpi_ranks_checkpoint_loads_on_one_cpu_process(gpu_run, tmp_path):
    """Written by 2 MPI ranks on the GPU, resumed by 1 CPU-only process: the same global sample position,
    so the end matches the 2-rank run to floating-point summation tolerance."""
    two, one = tmp_path / "two", tmp_path / "one"
    _train(two, "gpu", n=2)
    _train(one, "cpu", "--resume", str(_step_dir(two, 40)), env=NO_GPU)
    ref = _weights(two)
    for k, v in _weights(one).items():
        np.testing.assert_allclose(v, ref[k], rtol=1e-3, atol=1e-4 * float(np.abs(ref[k]).max()), err_msg=k)


def test_predict_reads_a_gpu_run_with_and_without_a_gpu_alike(gpu_run, tmp_path):
    """``predict`` on the GPU and on a process that sees no GPU: the same labels, probabilities to float32 rounding."""
    from sklearn.datasets import load_digits

    inputs = tmp_path / "x.npz"
    np.savez(inputs, x=load_digits().data[:50])
    outs = {}
    for name, env in (("gpu", {}), ("cpu", NO_GPU)):
        out = tmp_path / f"{name}.csv"
        p = subprocess.run([sys.executable, "-m", "distnn", "predict", str(gpu_run), "--input", str(inputs),
                            "--output", str(out)], env=cli_faults.fault_env(**env), capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        outs[name] = np.genfromtxt(out, delimiter=",", skip_header=1, usecols=range(2, 12))
    assert outs["gpu"].shape == (50, 10)
    np.testing.assert_allclose(outs["cpu"], outs["gpu"], atol=1e-5)
    np.testing.assert_array_equal(outs["cpu"].argmax(1), outs["gpu"].argmax(1))
