"""launch/*.sh and slurm/train.sbatch, run by bash in a scratch copy of the repository.

The copy's .venv holds a fake ``python``, ``mpiexec`` and (on PATH) ``srun``,
``scontrol`` and ``scancel`` that record where and how they were called: nothing is installed,
no MPI job starts, and the real .venv is never touched. The repository path holds
a space and a quote, so quoting mistakes show.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")

FAKE = r'''#!{exe}
import json, os, sys
name, argv = os.path.basename(sys.argv[0]), sys.argv[1:]
if name == "python" and argv[:1] == ["-c"]:  # version checks and the sbatch summary line: the real python
    os.execv({exe!r}, [{exe!r}, *argv])
with open(os.environ["FAKE_LOG"], "a") as f:
    env = {{k: v for k, v in os.environ.items() if k.startswith("DISTNN_RESUME_HINT") or k in ("DISTNN_STATUS_DIR", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    f.write(json.dumps({{"prog": name, "cwd": os.getcwd(), "argv": argv, "env": env}}) + "\n")
if name == "python" and argv[:2] == ["-m", "pip"]:
    rc = int(os.environ.get("FAKE_PIP_UPGRADE_RC" if "--upgrade" in argv else "FAKE_PIP_RC", "0"))
    if rc:
        print("ERROR: a raw pip failure", file=sys.stderr)
    sys.exit(rc)
wait = os.environ.get("FAKE_SRUN_WAIT")  # a marker path: srun says it runs, then waits for a scancel --signal
if name == "scancel":
    if wait:
        open(wait + ".scancel", "w").close()
    sys.exit(0)
if name == "srun" and wait:
    open(wait, "w").close()
    import time
    for _ in range(6000):  # (bounded: a script that never passes the signal on still ends, and the test sees it)
        if os.path.exists(wait + ".scancel"):
            break
        time.sleep(0.01)
if name == "srun":  # a finished run writes its summary; FAKE_STATUSES="0:3,1:75:15": each rank's record
    out = argv[argv.index("--out") + 1]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({{"test_accuracy": 0.5}}, f)
    for item in filter(None, os.environ.get("FAKE_STATUSES", "").split(",")):
        rank, status, *signum = item.split(":")
        with open(os.path.join(os.environ["DISTNN_STATUS_DIR"], "rank-" + rank), "w") as f:
            f.write(status + " " + (signum[0] if signum else "0") + "\n")
if name in ("srun", "mpiexec"):
    sys.exit(int(os.environ.get("FAKE_RC", "0")))
if name == "scontrol":
    sys.exit(int(os.environ.get("FAKE_SCONTROL_RC", "0")))
print("fake python", *argv)
'''


@pytest.fixture
def fake(tmp_path):
    """A scratch repository with the real scripts and a fake, already installed .venv."""
    root = tmp_path / "dist nn's repo"
    (root / "launch").mkdir(parents=True)
    (root / "slurm").mkdir()
    (root / "distnn").mkdir()
    for rel in ("launch/_venv.sh", "launch/train.sh", "launch/quickstart.sh", "slurm/train.sbatch"):
        shutil.copy(os.path.join(REPO, rel), root / rel)
    (root / "pyproject.toml").write_text("[project]\nname = 'distnn'\n")
    os.utime(root / "pyproject.toml", (1_000_000_000, 1_000_000_000))  # older than any stamp
    venv_bin, tools = root / ".venv" / "bin", tmp_path / "tools"
    venv_bin.mkdir(parents=True)
    tools.mkdir()
    for path in (venv_bin / "python", venv_bin / "mpiexec", tools / "srun", tools / "scontrol", tools / "scancel"):
        path.write_text(FAKE.format(exe=sys.executable))
        path.chmod(0o755)
    (root / ".venv" / ".distnn-installed-mpi-data-viz").touch()
    work = tmp_path / "caller's dir"
    work.mkdir()
    log = tmp_path / "calls.jsonl"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "DISTNN_", "FAKE_")) and k not in ("NP", "OUT")}
    env.update(FAKE_LOG=str(log), PATH=f"{tools}{os.pathsep}{env.get('PATH', '')}")

    class Fake:
        pass

    f = Fake()
    f.root, f.work, f.env = str(root), str(work), env
    f.python = os.path.join(f.root, ".venv", "bin", "python")

    def run(script, *args, cwd=None, **extra_env):
        proc = subprocess.run([BASH, os.path.join(f.root, script), *args], cwd=cwd or f.work,
                              env={**env, **extra_env}, capture_output=True, text=True, timeout=60)
        proc.calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return proc

    f.run = run
    return f


def launched(proc, prog):
    calls = [c for c in proc.calls if c["prog"] == prog]
    assert len(calls) == 1, (proc.calls, proc.stderr)
    return calls[0]


def next_hint(stdout):
    """The words of quickstart's 'next:' command, as a shell would split them."""
    line = [ln for ln in stdout.splitlines() if ln.startswith("next: ")][-1]
    return shlex.split(line[len("next: "):], comments=True)


# ------------------------------------------------------------------ launch/train.sh
def test_train_sh_keeps_the_callers_directory(fake):
    p = fake.run("launch/train.sh", "--config", "my.toml", "--out", "runs/x", NP="3")
    assert p.returncode == 0, p.stderr
    call = launched(p, "mpiexec")
    # Relative paths are the user's: read from where they ran the script, not from the repository.
    assert os.path.realpath(call["cwd"]) == os.path.realpath(fake.work)
    assert call["argv"] == ["-n", "3", fake.python, "-m", "distnn", "train", "--config", "my.toml", "--out", "runs/x"]


THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@pytest.mark.parametrize("script", ["launch/train.sh", "launch/quickstart.sh"])
def test_launch_scripts_leave_blas_threads_to_distnn(fake, script):
    # distnn caps each rank's BLAS at the host's cores divided by its ranks; a script that set 1 would hold a
    # 64-core host to one thread a rank. A value the user set passes through.
    env = {k: v for k, v in fake.env.items() if k not in THREADS}
    p = subprocess.run([BASH, os.path.join(fake.root, script), "--set", "train.epochs=1"], cwd=fake.work, env=env,
                       capture_output=True, text=True, timeout=60)
    log = os.path.join(os.path.dirname(fake.work), "calls.jsonl")
    calls = [json.loads(line) for line in open(log).read().splitlines()]
    os.unlink(log)
    assert p.returncode == 0, p.stderr
    (mpiexec,) = [c for c in calls if c["prog"] == "mpiexec"]
    assert not set(THREADS) & set(mpiexec["env"]), mpiexec["env"]
    p = fake.run(script, "--set", "train.epochs=1", OMP_NUM_THREADS="3")
    assert launched(p, "mpiexec")["env"]["OMP_NUM_THREADS"] == "3"


@pytest.mark.parametrize("script", ["launch/train.sh", "launch/quickstart.sh"])
@pytest.mark.parametrize("np_", ["0", "abc", "-1", "2x"])
def test_np_must_be_a_whole_number_of_ranks(fake, script, np_):
    p = fake.run(script, NP=np_)
    assert p.returncode == 2
    assert "NP" in p.stderr and repr(np_) in p.stderr
    assert not [c for c in p.calls if c["prog"] == "mpiexec"]


# ------------------------------------------------------------- launch/quickstart.sh
def test_quickstart_out_is_read_from_the_callers_directory_and_next_hint_pastes(fake):
    p = fake.run("launch/quickstart.sh", "--set", "train.epochs=1", OUT="my run")
    assert p.returncode == 0, p.stderr
    out = os.path.join(fake.work, "my run")
    call = launched(p, "mpiexec")
    assert os.path.realpath(call["cwd"]) == os.path.realpath(fake.work)
    argv = call["argv"]
    assert argv[:3] == ["-n", "2", fake.python] and argv[argv.index("--out") + 1] == out
    assert argv[-2:] == ["--set", "train.epochs=1"]
    # absolute and quoted: it works pasted anywhere, whatever the paths hold (here spaces and quotes)
    assert next_hint(p.stdout) == [fake.python, "-m", "distnn", "evaluate", out]


def test_quickstart_default_run_directory_is_in_the_repository(fake):
    p = fake.run("launch/quickstart.sh")
    assert p.returncode == 0, p.stderr
    argv = launched(p, "mpiexec")["argv"]
    out = argv[argv.index("--out") + 1]
    assert out.startswith(os.path.join(fake.root, "runs", "quickstart-"))
    assert next_hint(p.stdout)[-1] == out


@pytest.mark.parametrize("how", [["--out", "elsewhere"], ["--out=elsewhere"]])
def test_quickstart_out_argument_is_the_run_directory(fake, how):
    p = fake.run("launch/quickstart.sh", *how)
    assert p.returncode == 0, p.stderr
    argv = launched(p, "mpiexec")["argv"]
    out = os.path.join(fake.work, "elsewhere")
    assert argv.count("--out") == 1 and argv[argv.index("--out") + 1] == out
    assert next_hint(p.stdout)[-1] == out


def test_quickstart_help_only_helps(fake):
    p = fake.run("launch/quickstart.sh", "--help")
    assert p.returncode == 0, p.stderr
    assert "OUT" in p.stdout and "NP" in p.stdout  # its own header: the environment variables it reads
    assert "next:" not in p.stdout and "training" not in p.stderr
    assert launched(p, "python")["argv"] == ["-m", "distnn", "train", "--help"]
    assert not [c for c in p.calls if c["prog"] == "mpiexec"]


# ------------------------------------------------------------------ launch/_venv.sh
def source_venv(fake, **env):
    return fake.run("launch/train.sh", "--help", **env)  # sources _venv.sh, then runs 'distnn train --help'


def test_venv_install_failure_is_one_clear_error(fake):
    os.remove(os.path.join(fake.root, ".venv", ".distnn-installed-mpi-data-viz"))
    p = source_venv(fake, FAKE_PIP_RC="1")
    assert p.returncode == 2
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("[distnn] error: installing distnn[mpi,data,viz]") and "package index" in last
    assert not os.path.exists(os.path.join(fake.root, ".venv", ".distnn-installed-mpi-data-viz"))
    assert not [c for c in p.calls if c["prog"] == "mpiexec"]


def test_venv_pip_upgrade_is_best_effort(fake):
    os.remove(os.path.join(fake.root, ".venv", ".distnn-installed-mpi-data-viz"))
    p = source_venv(fake, FAKE_PIP_UPGRADE_RC="1")
    assert p.returncode == 0, p.stderr
    assert "could not upgrade pip" in p.stderr
    pips = [c["argv"] for c in p.calls if c["prog"] == "python" and c["argv"][:2] == ["-m", "pip"]]
    assert pips[-1][-2:] == ["-e", f"{fake.root}[mpi,data,viz]"]
    assert os.path.exists(os.path.join(fake.root, ".venv", ".distnn-installed-mpi-data-viz"))


def test_venv_reuses_an_install_with_more_extras_until_pyproject_changes(fake):
    venv = os.path.join(fake.root, ".venv")
    os.rename(os.path.join(venv, ".distnn-installed-mpi-data-viz"), os.path.join(venv, ".distnn-installed-mpi-data-viz-dev"))
    p = source_venv(fake)
    assert p.returncode == 0, p.stderr
    assert not [c for c in p.calls if c["argv"][:2] == ["-m", "pip"]]  # tests/run.sh's install covers it
    os.utime(os.path.join(fake.root, "pyproject.toml"))  # now newer than the stamp: install again
    p = source_venv(fake)
    assert p.returncode == 0, p.stderr
    assert [c for c in p.calls if c["argv"][:3] == ["-m", "pip", "install"] and "-e" in c["argv"]]


# --------------------------------------------------------------- slurm/train.sbatch
def sbatch(fake, *args, cwd=None, **env):
    env = {"SLURM_SUBMIT_DIR": cwd or fake.root, "SLURM_JOB_ID": "7", "SLURM_NTASKS": "2", **env}
    return fake.run("slurm/train.sbatch", *args, cwd=cwd or fake.root, **env)


def test_sbatch_runs_with_its_run_directory_and_resume(fake):
    p = sbatch(fake, "--config", "digits_cnn")
    assert p.returncode == 0, p.stderr
    argv = launched(p, "srun")["argv"]
    assert argv[:2] == ["--mpi=pmi2", "--kill-on-bad-exit=1"] and argv[2].endswith("python")
    assert argv[3:] == ["-m", "distnn", "train", "--out", "runs/slurm-7", "--resume", "auto", "--quiet",
                        "--config", "digits_cnn"]
    assert "test accuracy 0.5000; run directory runs/slurm-7" in p.stdout


def test_sbatch_run_directory_from_distnn_out(fake):
    p = sbatch(fake, DISTNN_OUT="runs/my run")
    assert p.returncode == 0, p.stderr
    argv = launched(p, "srun")["argv"]
    assert argv[argv.index("--out") + 1] == "runs/my run"
    assert "run directory runs/my run" in p.stdout


@pytest.mark.parametrize("args", [["--out", "x"], ["--out=x"], ["--ou", "x"], ["--resume", "auto"],
                                  ["--res=runs/a/checkpoints/step-00000010"]])
def test_sbatch_refuses_out_and_resume(fake, args):
    p = sbatch(fake, "--config", "digits_cnn", *args)
    assert p.returncode == 2
    assert p.stderr.startswith("distnn: error:") and "DISTNN_OUT" in p.stderr
    assert not p.calls


def test_sbatch_submitted_elsewhere_says_where_to_submit(fake):
    p = sbatch(fake, cwd=fake.work)
    assert p.returncode == 2
    assert "submit from the repository root" in p.stderr and "DISTNN_ROOT" in p.stderr
    assert not p.calls


def test_sbatch_with_distnn_root_runs_in_the_submit_directory(fake):
    p = sbatch(fake, "--config", "my.toml", cwd=fake.work, DISTNN_ROOT=fake.root)
    assert p.returncode == 0, p.stderr
    call = launched(p, "srun")
    assert os.path.realpath(call["cwd"]) == os.path.realpath(fake.work)
    assert call["argv"][2] == fake.python
    assert os.path.exists(os.path.join(fake.work, "runs", "slurm-7", "summary.json"))


def test_sbatch_requeues_when_preempted(fake):
    p = sbatch(fake, FAKE_RC="75")
    assert p.returncode == 0, p.stderr
    assert launched(p, "scontrol")["argv"] == ["requeue", "7"]


def test_sbatch_does_not_requeue_a_preemption_whose_checkpoint_failed(fake):
    p = sbatch(fake, FAKE_RC="74")
    assert p.returncode == 74
    assert not [c for c in p.calls if c["prog"] == "scontrol"]
    assert "not requeued" in p.stderr


@pytest.mark.parametrize("rc,statuses,says", [
    ("137", "", "a rank was killed (signal 9, exit 137"),
    ("137", "0:0", "a rank was killed (signal 9, exit 137"),
    ("143", "0:143,1:143", "stopped by signal 15 (exit 143)"),  # distnn's own status: checkpointing off
])
def test_sbatch_does_not_requeue_a_rank_killed_or_a_run_stopped_without_checkpoints(fake, rc, statuses, says):
    p = sbatch(fake, FAKE_RC=rc, FAKE_STATUSES=statuses)
    assert p.returncode == int(rc)
    assert not [c for c in p.calls if c["prog"] == "scontrol"]
    assert says in p.stderr and "not requeued" in p.stderr, p.stderr


def test_sbatch_takes_the_status_a_rank_recorded_over_srun_s_137(fake):
    # srun --kill-on-bad-exit kills the other ranks once one exits: it reported 137 ("a rank was killed
    # ... out-of-memory killer") for a rank's own sys.exit(3), and a start-up preemption was not requeued
    p = sbatch(fake, FAKE_RC="137", FAKE_STATUSES="1:3")
    assert p.returncode == 3 and "killed" not in p.stderr, p.stderr
    p = sbatch(fake, FAKE_RC="137", FAKE_STATUSES="0:75:10")  # rank 0 preempted by USR1 at start-up
    assert p.returncode == 0 and launched(p, "scontrol")["argv"] == ["requeue", "7"], p.stderr
    status_dir = launched(p, "srun")["env"]["DISTNN_STATUS_DIR"]
    assert not os.path.exists(status_dir)  # (removed after reading)
    assert "DISTNN_OUT=runs/slurm-7" in launched(p, "srun")["env"]["DISTNN_RESUME_HINT"]


def test_sbatch_does_not_requeue_a_crash_the_other_ranks_took_for_a_preemption(fake):
    # a rank killed or crashed at start-up: srun sends SIGTERM to the others, which record a start-up
    # preemption by signal 15; requeued, a crash that repeats looped forever
    p = sbatch(fake, FAKE_RC="137", FAKE_STATUSES="0:75:15")
    assert p.returncode == 137 and not [c for c in p.calls if c["prog"] == "scontrol"], p.stderr
    assert "ended without a status" in p.stderr and "not requeued" in p.stderr
    p = sbatch(fake, FAKE_RC="75", FAKE_STATUSES="0:75:15,1:75:15")  # every rank preempted by SIGTERM: requeued
    assert p.returncode == 0 and launched(p, "scontrol")["argv"] == ["requeue", "7"], p.stderr


def test_sbatch_s_137_names_the_rank_that_recorded_no_status(fake):
    # 137 is also SLURM's SIGKILL, after KillWait, of a rank that did not stop once another had failed (one
    # stuck in MPI's start-up): the message blamed kill -9 or the out-of-memory killer, whatever ended the first
    p = sbatch(fake, FAKE_RC="137", FAKE_STATUSES="0:75:15")
    assert p.returncode == 137 and "or SLURM ending a rank still running KillWait seconds" in p.stderr
    assert "rank(s) 1 ended without recording a status" in p.stderr, p.stderr
    p = sbatch(fake, FAKE_RC="137")  # no record at all: nothing to say which
    assert p.returncode == 137 and "without recording" not in p.stderr, p.stderr


@pytest.mark.parametrize("rc", ["139", "134"])
def test_sbatch_does_not_requeue_a_crash_signal(fake, rc):
    # only USR1 and TERM are preemption signals: a segfault with no record was requeued as "still starting"
    p = sbatch(fake, FAKE_RC=rc)
    assert p.returncode == int(rc) and not [c for c in p.calls if c["prog"] == "scontrol"], p.stderr
    assert f"killed by signal {int(rc) - 128}" in p.stderr and "not requeued" in p.stderr


@pytest.mark.parametrize("rc", ["138", "143"])
def test_sbatch_requeues_ranks_a_signal_stopped_before_distnn_could_act_on_it(fake, rc):
    # no rank recorded a status: the signal came before distnn's handler (the first moments of start-up);
    # it was reported as "checkpointing off" and not requeued
    p = sbatch(fake, FAKE_RC=rc)
    assert p.returncode == 0 and launched(p, "scontrol")["argv"] == ["requeue", "7"], p.stderr
    assert "before distnn could act on it" in p.stderr


def test_sbatch_preempted_without_requeue_says_how_to_resubmit(fake):
    # submitted with --no-requeue: it said "requeueing" and ended with status 1
    p = sbatch(fake, FAKE_RC="75", FAKE_STATUSES="0:75,1:75", FAKE_SCONTROL_RC="1")
    assert p.returncode == 75
    assert "could not be requeued" in p.stderr and "DISTNN_OUT=runs/slurm-7" in p.stderr


def test_sbatch_examples_set_the_number_of_tasks():
    """The script sets --ntasks=2, which wins over --ntasks-per-node: an example must give -n."""
    with open(os.path.join(REPO, "slurm", "train.sbatch")) as f:
        examples = [shlex.split(line[1:], comments=True) for line in f if line.startswith("#") and " sbatch " in line]
    examples = [w[w.index("sbatch"):] for w in examples if "sbatch" in w]
    assert len(examples) >= 3
    for words in examples:
        if any(w.startswith(("--ntasks-per-node", "-N", "--nodes")) for w in words):
            assert "-n" in words or any(w.startswith("--ntasks=") for w in words), words
