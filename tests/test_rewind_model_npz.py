"""A resume that rewinds a finished run (``--resume`` of one of its older checkpoints: the newer ones are
moved aside) and is killed before it writes its own ``model.npz``: ``evaluate`` of the run directory reads
the run's current state (its newest checkpoint), never the ``model.npz`` of the discarded future.

It used to read that ``model.npz``: the rewound session's new checkpoint of the same global step was taken
for no newer than it. The run's ``model.npz`` is now removed when such a resume starts.
"""
import os
import signal

from cli_faults import train

from distnn.cli import main

FAST = ["--config", "digits_mlp", "--set", "run.plots=false", "--set", "train.epochs=3",
        "--set", "checkpoint.every_epochs=1", "--set", "checkpoint.keep_last=0"]


def _evaluate(path, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(path)]) == 0
    out, err = capsys.readouterr()
    return [line for line in out.splitlines() if line.startswith(("loss", "accuracy"))], err


def test_a_rewinding_resume_killed_before_model_npz_leaves_evaluate_reading_the_current_state(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *FAST, "--quiet", "--out", str(run)]) == 0  # 3 epochs of 20 steps: model.npz at 60
    old_future, _ = _evaluate(run, capsys)
    # rewind to epoch 1 with another gradient clip (a different future), killed after training ends
    p = train(run, "process", 1, [*FAST, "--set", "train.grad_clip=0.01", "--resume",
                                   str(run / "checkpoints" / "step-00000020")], fault="0:after-training:SIGKILL")
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    assert any(n.startswith("discarded-step-00000060") for n in os.listdir(run / "checkpoints"))
    current, _ = _evaluate(run / "checkpoints" / "latest", capsys)  # the rewound run's step 60
    assert current != old_future
    got, err = _evaluate(run, capsys)
    assert got == current and "checkpoint" in err and "step-00000060" in err
    assert "removed it" in p.stderr  # (the resume said so)
    # resumed to its end, the run has its model.npz again
    assert main(["train", *FAST, "--set", "train.grad_clip=0.01", "--quiet", "--out", str(run), "--resume",
                 "auto"]) == 0
    assert (run / "model.npz").is_file()
    got, err = _evaluate(run, capsys)
    assert got == current and "model.npz" in err


def test_a_resume_that_does_not_rewind_keeps_model_npz(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *FAST, "--quiet", "--out", str(run)]) == 0
    before = (run / "model.npz").read_bytes()
    # the newest checkpoint (the step of model.npz): nothing discarded, model.npz stays until replaced
    p = train(run, "process", 1, [*FAST, "--set", "train.epochs=4", "--resume", "auto"],
              fault="0:after-training:SIGKILL")
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    assert (run / "model.npz").read_bytes() == before and "removed it" not in p.stderr


def test_an_edited_model_json_does_not_decide_model_npz_removal(tmp_path, capsys):
    """``model.json`` says which step ``model.npz`` holds; the decision to remove ``model.npz`` on a
    rewinding resume is taken from it only when it passes its SHA-256 check (an edited step, larger
    than the resumed checkpoint's, made a resume that rewinds nothing delete the run's model)."""
    run = tmp_path / "run"
    assert main(["train", *FAST, "--quiet", "--out", str(run)]) == 0
    before = (run / "model.npz").read_bytes()
    meta = run / "model.json"
    text = meta.read_text()
    assert '"global_step": 60' in text
    meta.write_text(text.replace('"global_step": 60', '"global_step": 999'))
    p = train(run, "process", 1, [*FAST, "--set", "train.epochs=4", "--resume", "auto"],
              fault="0:after-training:SIGKILL")
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    assert "removed it" not in p.stderr and "fails its SHA-256 check" in p.stderr
    assert (run / "model.npz").read_bytes() == before
