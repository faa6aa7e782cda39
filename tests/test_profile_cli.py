"""``distnn train --profile DIR`` (run.profile): what each rank writes, that only the scheduled steps are
recorded, that the trained weights are bitwise those of an unprofiled run (1 process and mpiexec -n 2), and
that bad input stops the job before it trains. Never a timing: only names, counts and files."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from distnn.cli import main

import cli_faults

# a short digits_mlp: 8 optimizer steps, no dropout or augmentation (every step is the same work)
SHORT = ["--config", "digits_mlp", "--quiet", "--set", "train.epochs=1", "--set", "train.max_steps=8",
         "--set", "model.dropout=0.0", "--set", "data.augment.shift=0", "--set", "run.plots=false",
         "--set", "checkpoint.enabled=false"]


def weights(run_dir):
    with np.load(os.path.join(run_dir, "model.npz")) as f:
        return {k: f[k] for k in f.files}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb) and wa
    for k in wa:
        assert wa[k].dtype == wb[k].dtype and np.array_equal(wa[k], wb[k]), k  # bitwise: no tolerance


def trace_names(path):
    with open(path) as f:
        trace = json.load(f)
    return [e["name"] for e in trace["traceEvents"] if e["ph"] == "X"]


def steps_in(names):
    return sorted(n for n in names if n.startswith("ProfilerStep#"))


def test_one_process_profiles_the_scheduled_steps_and_trains_the_same_weights(tmp_path, capsys):
    from distnn.autograd import profiler_record

    prof = tmp_path / "prof"
    assert main(["train", *SHORT, "--out", str(tmp_path / "plain")]) == 0
    assert main(["train", *SHORT, "--out", str(tmp_path / "profiled"), "--profile", str(prof),
                 "--profile-steps", "2,1,2"]) == 0
    assert_same_weights(tmp_path / "plain", tmp_path / "profiled")
    assert sorted(os.listdir(prof)) == ["rank-0.json", "summary-rank0.txt"]
    names = trace_names(prof / "rank-0.json")
    # wait 2 and warmup 1: steps #3 and #4 recorded, none of the 8 - 5 after them (the profiler stopped)
    assert steps_in(names) == ["ProfilerStep#3", "ProfilerStep#4"]
    assert names.count("Linear") == 2 * 3  # digits_mlp's 3 Linear layers, forward, in each recorded step
    assert not profiler_record.recording  # nothing records once the job has returned
    summary = (prof / "summary-rank0.txt").read_text()
    assert "Self CPU" in summary and "Linear" in summary and "communication: none recorded" in summary


def test_a_run_shorter_than_the_schedule_writes_what_it_recorded(tmp_path, caplog):
    prof = tmp_path / "prof"
    args = [a if a != "train.max_steps=8" else "train.max_steps=3" for a in SHORT]
    assert main(["train", *args, "--out", str(tmp_path / "run"), "--profile", str(prof)]) == 0  # 1,1,3
    # step #2 and what followed the last step until training ended (#3: the epoch's validation)
    assert steps_in(trace_names(prof / "rank-0.json")) == ["ProfilerStep#2", "ProfilerStep#3"]
    assert "fewer than the 5 of run.profile_steps" in caplog.text


def test_simulated_ranks_each_write_a_trace_with_the_gradient_exchange(tmp_path):
    prof = tmp_path / "prof"
    assert main(["train", *SHORT, "--out", str(tmp_path / "run"), "--simulate-ranks", "2",
                 "--set", f"run.profile={prof}", "--set", "run.profile_steps=[0, 0, 1]"]) == 0
    assert sorted(os.listdir(prof)) == ["rank-0.json", "rank-1.json", "summary-rank0.txt"]
    for rank in (0, 1):
        names = trace_names(prof / f"rank-{rank}.json")
        assert steps_in(names) == ["ProfilerStep#0"]
        assert "DataParallel.allreduce_bucket" in names
    summary = (prof / "summary-rank0.txt").read_text()
    communication = summary.split("communication (")[1]
    assert "DataParallel.allreduce_bucket" in communication and "inprocess:" in communication


def test_mpiexec_two_ranks_profile_every_rank_train_the_same_weights_and_refuse_a_bad_directory(tmp_path):
    if cli_faults.MPIEXEC is None:
        pytest.skip("mpiexec not found (pip install mpich)")
    # one mpiexec start, three jobs on each rank: "bad", "plain", "profiled" (see the script)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_scripts", "profile_train.py")
    r = subprocess.run([cli_faults.MPIEXEC, "-n", "2", sys.executable, script, str(tmp_path), json.dumps(SHORT)],
                       env=cli_faults.fault_env(), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    results = [json.loads((tmp_path / f"result-{rank}.json").read_text()) for rank in (0, 1)]

    # an unusable directory: every rank exits 2 before anything is written or trained, rank 0 says why
    assert [res["bad"]["code"] for res in results] == [2, 2]
    assert "cannot hold the profile's traces" in results[0]["bad"]["stderr"]
    assert "is not a directory" in results[0]["bad"]["stderr"]
    assert "cannot hold" not in results[1]["bad"]["stderr"]  # (agreed, and said once)
    assert not (tmp_path / "bad").exists()

    assert [res[case]["code"] for res in results for case in ("plain", "profiled")] == [0, 0, 0, 0]
    assert_same_weights(tmp_path / "plain", tmp_path / "profiled")
    prof = tmp_path / "prof"
    assert sorted(os.listdir(prof)) == ["rank-0.json", "rank-1.json", "summary-rank0.txt"]
    for rank in (0, 1):
        names = trace_names(prof / f"rank-{rank}.json")
        assert steps_in(names) == ["ProfilerStep#2", "ProfilerStep#3", "ProfilerStep#4"]  # default 1,1,3
        assert names.count("DataParallel.allreduce_bucket") == 3  # one bucket a step
        assert any(n.startswith("mpi:") for n in names)
    communication = (prof / "summary-rank0.txt").read_text().split("communication (")[1]
    assert "DataParallel.allreduce_bucket" in communication and "mpi:" in communication


@pytest.mark.parametrize("args, needle", [
    (["--profile-steps", "1,1,0"], "--profile-steps: expected WAIT,WARMUP,ACTIVE"),
    (["--profile-steps", "1,x,3"], "--profile-steps: expected WAIT,WARMUP,ACTIVE"),
    (["--profile-steps", "1,1"], "--profile-steps: expected WAIT,WARMUP,ACTIVE"),
    (["--profile", ""], "--profile is empty"),
    (["--profile", "{file}"], "is not a directory"),
    (["--profile", "{file}/sub"], "is not a directory"),
    (["--set", "run.profile=p", "--set", "run.profile_steps=[1, 1, 0]"], "needs active >= 1"),
    (["--set", "run.profile_steps=[1, -1, 3]"], "run.profile_steps[1] must be >= 0"),
    (["--profile", "p", "--set", "ensemble.members=2"], "run.profile profiles one model"),
])
def test_bad_profile_input_is_refused_before_training(tmp_path, capsys, args, needle):
    (tmp_path / "afile").write_text("x")
    args = [a.replace("{file}", str(tmp_path / "afile")) for a in args]
    try:
        code = main(["train", *SHORT, "--out", str(tmp_path / "run"), *args])
    except SystemExit as e:  # (argparse's usage errors)
        code = e.code
    assert code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_profile_steps_without_a_profile_directory_warns(tmp_path):
    with pytest.warns(UserWarning, match="run.profile_steps .* has no effect while run.profile is unset"):
        assert main(["train", *SHORT, "--out", str(tmp_path / "run"), "--profile-steps", "0,0,1"]) == 0
