"""``distnn train --check --resume`` of an ensemble whose data is not on the submitting host still reads what it
can of every member's files, and says what it could not.

With no data file here a check cannot build the members' models, so it cannot load their checkpoints into
them. It said nothing of the members at all: an ensemble with member 1's checkpoints all damaged passed
(``auto: no checkpoint yet (a fresh start)``: it looked for checkpoints in the ensemble's own directory, where
an ensemble has none), and one whose members had all finished was refused as "a finished run" that the
resume would train over, which the run does not do (it keeps finished members). Now each member's files are
read as the run reads them, without the model: a finished member's checked against their checksums, else
the checkpoint it resumes from chosen and read (checksums) as the run chooses it; what needs the model is a
"not checked on this host" line. With rank 0's file missing but another rank's here, the members are built
from that rank's file and checked in full. Each refusal is tested against the run itself, given the data.
"""
import shutil

from test_train_check import _distnn, _error_line
from test_train_check_ensemble import _checkpoints, _corrupt
from test_train_check_host import NOTE, WHEN, _digits_like, _notes

ENS = ["--config", "digits_mlp", "--quiet", "--set", "run.plots=false", "--set", "checkpoint.enabled=true",
       "--set", "checkpoint.every_epochs=1", "--set", "ensemble.members=2"]
NOT_LOADED = "not loaded: no data file here"
MEMBERS_NOTE = (f"{NOTE}each ensemble member's checkpoint loaded into its model (it needs the data's model; "
                f"chosen and read here: checksums) {WHEN}")


def _message(stderr):
    return _error_line(stderr)[len("distnn: error: "):]


def _resume_line(stdout):
    return next(line for line in stdout.splitlines() if line.lstrip().startswith("resume:")).split(":", 1)[1].strip()


class Nodes:
    """Data that lives on the job's nodes: ``data.path`` outside the submit directory, taken away for the
    check (as on a login node) and put back for the run (as on the nodes)."""

    def __init__(self, root, name="data.npz"):
        self.path, self.kept = root / "nodes" / name, root / f"kept-{name}"
        self.path.parent.mkdir(exist_ok=True)
        _digits_like(self.path)

    def args(self):
        return ["--set", "data.name=npz", "--set", f"data.path={self.path}"]

    def away(self):
        shutil.move(self.path, self.kept)

    def back(self):
        shutil.move(self.kept, self.path)


def _trained(tmp_path, epochs=2, extra=()):
    """A finished 2-member ensemble in ``work/run`` (checkpoints every epoch), its data then taken away."""
    work, nodes = tmp_path / "work", Nodes(tmp_path)
    work.mkdir()
    r = _distnn(["train", *ENS, *nodes.args(), *extra, "--set", f"train.epochs={epochs}", "--out", "run"], work)
    assert r.returncode == 0, r.stderr
    nodes.away()
    return work, nodes


def test_check_without_data_reads_each_members_checkpoint_as_the_resume_then_chooses_it(tmp_path):
    work, nodes = _trained(tmp_path)
    run = work / "run"
    _corrupt(_checkpoints(run, 1)[-1])  # member 1 falls back to its previous checkpoint, with a warning
    args = [*ENS, *nodes.args(), "--set", "train.epochs=4", "--resume", "auto", "--out", "run"]
    checked = _distnn(["train", *args, "--check"], work)
    assert checked.returncode == 0, checked.stderr
    newest0, previous1 = _checkpoints(run, 0)[-1].name, _checkpoints(run, 1)[-2].name
    assert _resume_line(checked.stdout) == (
        f"auto: member 0: run/members/member-0/checkpoints/{newest0} (global step 8; {NOT_LOADED}); "
        f"member 1: run/members/member-1/checkpoints/{previous1} (global step 4; {NOT_LOADED})")
    assert MEMBERS_NOTE in _notes(checked.stdout)
    skipped = f"checkpoint 'run/members/member-1/checkpoints/step-00000008': file model.npz fails its SHA-256 check"
    assert skipped in checked.stderr
    nodes.back()  # the oracle: the run, with its data, resumes each member from that checkpoint
    resumed = _distnn(["train", *args], work)
    assert resumed.returncode == 0, resumed.stderr
    assert skipped in resumed.stderr
    for member, name in ((0, newest0), (1, previous1)):
        assert f"resumed from run/members/member-{member}/checkpoints/{name} " in resumed.stderr


def test_check_without_data_refuses_member_1s_damaged_checkpoints_as_the_resume_then_fails(tmp_path):
    work, nodes = _trained(tmp_path)
    for checkpoint in _checkpoints(work / "run", 1):
        _corrupt(checkpoint)
    args = [*ENS, *nodes.args(), "--set", "train.epochs=4", "--resume", "auto", "--out", "run"]
    checked = _distnn(["train", *args, "--check"], work)
    assert checked.returncode == 2, checked.stdout
    line = _message(checked.stderr)
    assert line.startswith("ensemble member 1: no valid checkpoint in 'run/members/member-1/checkpoints'"), line
    nodes.back()
    resumed = _distnn(["train", *args], work)  # (member 0 trains, then member 1 stops the run)
    assert resumed.returncode == 2, resumed.stderr
    assert _message(resumed.stderr) == line


def test_check_without_data_finds_the_members_an_earlier_session_finished(tmp_path):
    work, nodes = _trained(tmp_path)
    args = [*ENS, *nodes.args(), "--set", "train.epochs=2", "--resume", "auto", "--out", "run"]
    checked = _distnn(["train", *args, "--check"], work)
    assert checked.returncode == 0, checked.stderr  # (was: refused, "holds a finished run")
    assert _resume_line(checked.stdout) == ("auto: member 0: finished in an earlier session (not trained again); "
                                            "member 1: finished in an earlier session (not trained again)")
    nodes.back()
    resumed = _distnn(["train", *args], work)
    assert resumed.returncode == 0 and resumed.stderr.count("not trained again") == 2, resumed.stderr


def test_check_without_data_refuses_a_finished_members_edited_config_as_the_run_does(tmp_path):
    work, nodes = _trained(tmp_path)
    config = work / "run" / "members" / "member-1" / "config.toml"
    config.write_text(config.read_text() + "# edited\n")
    args = [*ENS, *nodes.args(), "--set", "train.epochs=2", "--resume", "auto", "--out", "run"]
    checked = _distnn(["train", *args, "--check"], work)
    assert checked.returncode == 2, checked.stdout
    line = _message(checked.stderr)
    assert line.startswith("ensemble member 1: ") and "member-1/config.toml fails its SHA-256 check" in line, line
    nodes.back()
    resumed = _distnn(["train", *args], work)
    assert resumed.returncode == 2 and _message(resumed.stderr) == line


def test_check_without_data_of_a_resume_from_an_ensembles_directory_reads_each_members_part(tmp_path):
    work, nodes = _trained(tmp_path)
    run = work / "run"
    for checkpoint in _checkpoints(run, 1):
        _corrupt(checkpoint)
    args = [*ENS, *nodes.args(), "--set", "train.epochs=4", "--resume", str(run), "--out", "new"]
    checked = _distnn(["train", *args, "--check"], work)
    assert checked.returncode == 2, checked.stdout
    line = _message(checked.stderr)
    assert line.startswith(f"ensemble member 1: --resume '{run}/members/member-1'"), line
    assert not (work / "new").exists()
    nodes.back()
    resumed = _distnn(["train", *args], work)
    assert resumed.returncode == 2 and _message(resumed.stderr) == line


# ------------------------------------------------------------------------------- a single run without its data
SINGLE = ENS[:-2]  # (without ensemble.members)


def test_check_without_data_of_a_single_run_chooses_its_checkpoint_or_refuses_as_the_run(tmp_path):
    work, nodes = tmp_path / "work", Nodes(tmp_path)
    work.mkdir()
    assert _distnn(["train", *SINGLE, *nodes.args(), "--set", "train.epochs=1", "--out", "run"], work).returncode == 0
    for result in ("model.npz", "summary.json"):  # (as a run stopped before its end leaves it)
        (work / "run" / result).unlink()
    nodes.away()
    args = [*SINGLE, *nodes.args(), "--set", "train.epochs=2", "--resume", "auto", "--out", "run"]
    checked = _distnn(["train", *args, "--check"], work)
    assert checked.returncode == 0, checked.stderr
    assert _resume_line(checked.stdout) == f"auto: run/checkpoints/step-00000004 (global step 4; {NOT_LOADED})"
    weights = _corrupt(work / "run" / "checkpoints" / "step-00000004")
    checked = _distnn(["train", *args, "--check"], work)
    assert checked.returncode == 2, checked.stdout  # (was: passed, "auto: not loaded (no data here)")
    line = _message(checked.stderr)
    assert line.endswith(f"(the newest: checkpoint '{weights.parent.relative_to(work)}': file model.npz fails "
                         "its SHA-256 check (corrupt))"), line
    nodes.back()
    resumed = _distnn(["train", *args], work)
    assert resumed.returncode == 2 and _message(resumed.stderr) == line


# ------------------------------------------------------------------------------- rank 0's file alone not here
def test_check_builds_the_members_from_another_ranks_file_when_rank_0s_is_not_here(tmp_path):
    """Per-rank copies, 2 members on 2 ranks (a group each): rank 0's copy is missing here, rank 1's is
    here, so the members are built from rank 1's and their checkpoints loaded in full."""
    work = tmp_path / "work"
    work.mkdir()
    copies = [Nodes(tmp_path, f"d{rank}.npz") for rank in range(2)]
    per_rank = ["--set", "data.name=npz", "--set", f"data.path={tmp_path / 'nodes' / 'd{rank}.npz'}"]
    r = _distnn(["train", *ENS, *per_rank, "--set", "train.epochs=2", "--simulate-ranks", "2", "--out", "run"], work)
    assert r.returncode == 0, r.stderr
    copies[0].away()
    args = [*ENS, *per_rank, "--set", "train.epochs=4", "--resume", "auto", "--out", "run"]
    checked = _distnn(["train", *args, "--check", "--check-ranks", "2"], work)
    assert checked.returncode == 0, checked.stderr
    assert _resume_line(checked.stdout) == (
        "auto: member 0: run/members/member-0/checkpoints/step-00000008 (global step 8); "
        "member 1: run/members/member-1/checkpoints/step-00000008 (global step 8)")  # (loaded: no NOT_LOADED)
    assert _notes(checked.stdout) == [f"{NOTE}data.path '{tmp_path}/nodes/d{{rank}}.npz' does not exist here for "
                                      f"rank 0 {WHEN}"]
    for checkpoint in _checkpoints(work / "run", 1):
        _corrupt(checkpoint)
    checked = _distnn(["train", *args, "--check", "--check-ranks", "2"], work)
    assert checked.returncode == 2, checked.stdout
    line = _message(checked.stderr)
    assert "ensemble member 1: no valid checkpoint in 'run/members/member-1/checkpoints'" in line, line
    copies[0].back()
    resumed = _distnn(["train", *args, "--simulate-ranks", "2"], work)
    assert resumed.returncode == 2 and _message(resumed.stderr) == line
