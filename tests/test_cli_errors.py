"""``python -m distnn`` on bad input and failures: one-line errors for every bad input, more ranks than
samples, one rank failing stops all, launcher ranks, OS errors and a full disk naming the file, a reader gone
away."""
import os

import pytest

from distnn.cli import main

from cli_cases import BAD, FAST, digits_csv, run_cli, trained


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_error(case, tmp_path, capsys):
    make_args, needle = BAD[case]
    out = tmp_path / "run"
    args = make_args(tmp_path)
    if "--out" not in args:
        args += ["--out", str(out)]
    code, stdout, err = run_cli(["train", "--config", "digits_mlp", "--quiet", *FAST, *args], capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("distnn: error: "), err
    assert needle in lines[0], lines[0]
    assert not out.exists(), "a failed run must leave no run directory behind"


def test_more_ranks_than_samples(tmp_path, capsys):
    csv_path = digits_csv(tmp_path / "tiny.csv", rows=3)
    code, _, err = run_cli(["train", "--config", "digits_mlp", *FAST, "--set", "data.name=csv", "--set",
                            f"data.path={csv_path}", "--set", "data.num_classes=10", "--set", "data.val_fraction=0",
                            "--set", "data.test_fraction=0",
                            "--set", "data.batch_size=4", "--simulate-ranks", "4", "--out", str(tmp_path / "r")],
                           capsys)
    assert code == 2 and "more ranks" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_one_rank_failing_stops_all_simulated_ranks(tmp_path, capsys):
    # A per-rank data path: rank 1's file is missing, rank 0's exists. Every rank exits with the error.
    good = digits_csv(tmp_path / "d_0.csv", rows=200)
    assert os.path.exists(good)
    code, _, err = run_cli(["train", "--config", "digits_mlp", *FAST, "--set", "data.name=csv", "--set",
                            f"data.path={tmp_path}/d_{{rank}}.csv", "--simulate-ranks", "2",
                            "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.count("distnn: error:") == 1
    assert "rank 1:" in err and "d_1.csv" in err and "not found" in err
    assert not (tmp_path / "r").exists()


def test_evaluate_and_predict_bad_input(trained, tmp_path, capsys):
    d = trained["one"]
    code, _, err = run_cli(["evaluate", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n4,5,6\n")
    code, _, err = run_cli(["predict", d, "--input", str(bad), "--output", str(tmp_path / "p.csv")], capsys)
    assert code == 2 and "expected 64 feature columns" in err and not (tmp_path / "p.csv").exists()
    labelled = tmp_path / "lab.csv"
    digits_csv(labelled, rows=10, label=11)
    code, _, err = run_cli(["evaluate", d, "--data", str(labelled)], capsys)
    assert code == 2 and "11" in err and len(err.strip().splitlines()) == 1


def test_launcher_rank_reads_world_ranks_not_host_local_ones(monkeypatch):
    from distnn.cli import _launcher_rank

    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID", "MPI_LOCALRANKID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MPI_LOCALRANKID", "1")  # a host-local number, not the rank in the job
    monkeypatch.setenv("SLURM_PROCID", "5")
    assert _launcher_rank() == 5
    monkeypatch.delenv("SLURM_PROCID")
    assert _launcher_rank() == 0  # no world rank announced: a plain run
    monkeypatch.setenv("PMI_RANK", "3")
    assert _launcher_rank() == 3


@pytest.mark.parametrize("rank", [0, 1])
def test_simulate_ranks_under_an_mpi_launcher_is_a_usage_error(tmp_path, capsys, monkeypatch, rank):
    # Under mpiexec -n 2 each rank ran its own 2-rank simulation, racing for one run directory (or,
    # without --out, writing two runs).
    monkeypatch.setenv("PMI_RANK", str(rank))
    monkeypatch.setenv("PMI_SIZE", "2")
    out = tmp_path / "r"
    code, _, err = run_cli(["train", "--config", "xor", "--simulate-ranks", "2", "--out", str(out)], capsys)
    assert code == 2 and not out.exists()
    if rank == 0:
        assert err.strip().splitlines() == [
            "distnn: error: --simulate-ranks runs 2 ranks as threads of one process, but this is one of 2 processes "
            "an MPI launcher started: drop --simulate-ranks (the launcher's ranks are real ones) or start a single "
            "process"]
    else:
        assert err.strip() == ""  # one report for the job: the launcher's rank 0 prints it


def test_an_error_on_one_simulated_rank_names_the_rank(tmp_path, capsys, monkeypatch):
    # As under mpiexec: the simulated rank that hit a bad batch is named, with its error, in one agreed line (the
    # Trainer ends a train_step error before the gradient exchange on every rank alike: DataParallel.fail_step).
    from distnn.train import trainer as T

    real_step = T.Trainer.train_step

    def train_step(self, *a, **k):
        if self.comm.rank == 1 and self.state.global_step == 2:
            raise ValueError("a bad batch on this rank")
        return real_step(self, *a, **k)

    monkeypatch.setattr(T.Trainer, "train_step", train_step)
    code, _, err = run_cli(["train", "--config", "digits_mlp", "--set", "train.epochs=1", "--set", "run.plots=false",
                            "--quiet", "--simulate-ranks", "2", "--out", str(tmp_path / "r")], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and err.count("distnn: error:") == 1, err
    assert last.startswith("distnn: error: DataParallel: the training step (before its gradient exchange) raised on "
                           "rank 1: ValueError: a bad batch on this rank"), err


def test_ensemble_members_read_per_rank_files_by_world_rank_and_must_agree(tmp_path, capsys):
    # 2 ranks, 2 members side by side: each member's group has one rank, but "{rank}" is the job's rank
    # (rank 1 reads d_1.csv, not its group's d_0.csv) and the files must hold the same data, as in a plain run
    digits_csv(tmp_path / "d_0.csv", rows=200)
    digits_csv(tmp_path / "d_1.csv", rows=180)
    args = ["train", "--config", "digits_mlp", *FAST, "--set", "data.name=csv", "--set",
            f"data.path={tmp_path}/d_{{rank}}.csv", "--set", "ensemble.members=2", "--simulate-ranks", "2"]
    code, _, err = run_cli([*args, "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.count("distnn: error:") == 1, err
    assert "gives rank 1 other data than rank 0" in err
    assert not (tmp_path / "r").exists()
    digits_csv(tmp_path / "d_1.csv", rows=200)  # identical copies train
    code, _, err = run_cli([*args, "--out", str(tmp_path / "ok")], capsys)
    assert code == 0, err


def test_an_os_error_while_training_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    # a read-only or full disk under the run directory mid-run was a 15-line traceback
    import errno

    from distnn.train.callbacks import metrics_logger

    def read_only(self, trainer, logs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "r" / "metrics.jsonl.tmp"))

    monkeypatch.setattr(metrics_logger.MetricsLogger, "on_epoch_end", read_only)
    code, _, err = run_cli(["train", "--quiet", "--set", "train.epochs=1", "--out", str(tmp_path / "r")], capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("distnn: error: ") and "Read-only file system" in last and "metrics.jsonl.tmp" in last
    assert "Traceback" not in err


def test_a_full_disk_while_the_results_are_written_names_the_file_and_leaves_no_partial_copy(tmp_path, capsys,
                                                                                              monkeypatch):
    # a 114,688-byte model.npz.tmp.npz stayed behind, and the error named no file ("[Errno 28] No space left")
    import errno

    from distnn.train import run_dir

    real = run_dir.write_bytes

    def full_disk(path, data, **options):
        if not os.path.basename(path).startswith("model.npz"):  # (model.npz, or the model.npz.new written first)
            return real(path, data, **options)

        def write(tmp):
            with open(tmp, "wb") as f:
                f.write(b"PK" + b"\0" * 1000)  # what fitted
            raise OSError(errno.ENOSPC, "No space left on device")

        run_dir.replace_file(path, write)

    monkeypatch.setattr(run_dir, "write_bytes", full_disk)
    out = tmp_path / "r"
    code, _, err = run_cli(["train", "--quiet", "--set", "train.epochs=1", "--set", "checkpoint.enabled=false",
                            "--out", str(out)], capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert "No space left on device" in last and "model.npz" in last, last
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name or p.name.endswith(".new")]


def test_a_reader_gone_away_is_no_error_and_a_caller_keeps_its_stdout(monkeypatch):
    # called from Python, main() put /dev/null over the process's standard output for good (and leaked its fd)
    class Gone:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            raise AssertionError("the caller's stdout must be left alone")

    monkeypatch.setattr("sys.stdout", Gone())
    assert main(["datasets"]) == 0
