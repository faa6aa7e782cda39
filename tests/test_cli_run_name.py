"""``run.run_name`` names one run directory under ``run.out_dir``: a name that is a path (``a/b``, ``../x``) or
no name at all (``.``, ``..``, empty, ``-x``) is a config error, refused before anything is written."""
import os

import pytest

from cli_cases import run_cli

FAST = ["--config", "digits_mlp", "--quiet", "--set", "train.epochs=1", "--set", "run.plots=false"]


@pytest.mark.parametrize("name,why", [
    ("a/b", "holds a path separator"),      # (was: the new run went inside the run directory runs/a)
    ("../x", "holds a path separator"),     # (was: the run went outside runs/)
    ("a\\b", "holds a path separator"),
    (".", "is run.out_dir itself"),
    ("..", "is run.out_dir's parent"),
    ("", "is empty"),
    ("-x", "starts with '-'"),
])
def test_a_run_name_that_is_not_one_directory_name_is_refused(tmp_path, monkeypatch, capsys, name, why):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "a").mkdir(parents=True)  # (an earlier run's directory, which a/b would go into)
    code, _, err = run_cli(["train", *FAST, "--set", f"run.run_name={name}"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"run.run_name = {name!r} {why}" in err and "--out DIR" in err and "(set by --set)" in err, err
    # nothing was started: runs/ holds the earlier directory alone, still empty, and nothing is beside runs/
    assert sorted(os.listdir(tmp_path)) == ["runs"] and os.listdir(tmp_path / "runs") == ["a"]
    assert os.listdir(tmp_path / "runs" / "a") == []


def test_a_run_name_in_a_config_file_is_refused_too(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text('[run]\nrun_name = "x/y"\n')
    code, _, err = run_cli(["train", "--config", "c.toml", "--quiet"], capsys)
    assert code == 2 and "run.run_name = 'x/y' holds a path separator" in err, err
    assert not (tmp_path / "runs").exists()


def test_a_named_run_starts_and_resumes_under_its_name(tmp_path, monkeypatch, capsys):
    # (the check refuses no good name: one with dots and dashes inside starts runs/NAME, and a resume of it,
    # whose config.toml records the name, continues it)
    monkeypatch.chdir(tmp_path)
    args = ["train", *FAST, "--resume", "auto", "--set", "run.run_name=exp-1.v2"]
    code, _, err = run_cli(args, capsys)
    assert code == 0 and "starting from the beginning" in err, err
    assert "run_name = \"exp-1.v2\"" in (tmp_path / "runs" / "exp-1.v2" / "config.toml").read_text()
    code, _, err = run_cli(args, capsys)
    assert code == 0 and "resumed from " + os.path.join("runs", "exp-1.v2", "checkpoints") in err, err
    code, _, err = run_cli(["train", "--quiet", "--set", "train.epochs=2", "--resume", "auto",
                            "--out", os.path.join("runs", "exp-1.v2")], capsys)
    assert code == 0 and "resumed from" in err, err


def _record_run_name(run_dir, name):
    """Make ``run_dir``'s config.toml the record an earlier distnn wrote, whose run.run_name held ``name``
    (allowed then), its SHA256SUMS line rewritten to match as that distnn wrote it."""
    import hashlib

    path = run_dir / "config.toml"
    text = path.read_text()
    assert "\n[run]\n" in text and "run_name" not in text
    path.write_text(text.replace("\n[run]\n", f"\n[run]\nrun_name = {name!r}\n".replace("'", '"'), 1))
    sums = run_dir / "SHA256SUMS"
    lines = [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  config.toml" if line.endswith("  config.toml")
             else line for line in sums.read_text().splitlines()]
    sums.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("name", ["exp/a", "../x", "-x"])
def test_an_old_run_whose_record_holds_a_path_as_its_name_resumes(tmp_path, monkeypatch, capsys, name):
    # (was: its resume refused with "run.run_name = 'exp/a' holds a path separator", the run stuck)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["train", *FAST, "--out", "old"], capsys)
    assert code == 0, err
    _record_run_name(tmp_path / "old", name)
    with pytest.warns(UserWarning, match=rf"the recorded run.run_name = {name!r} .* is not used: a resume "
                                         r"continues in --out's directory") as seen:
        code, _, err = run_cli(["train", "--quiet", "--set", "train.epochs=2", "--resume", "auto", "--out", "old"],
                               capsys)
    assert code == 0 and "resumed from " + os.path.join("old", "checkpoints") in err, err
    assert "config.toml" in str(seen[0].message)  # (the warning names the file it is about)
    assert sorted(os.listdir(tmp_path)) == ["old"]  # (nothing went to runs/exp/a or ../x)
    # the session's own record names no run: the next resume is quiet
    assert "run_name" not in (tmp_path / "old" / "config.toml").read_text()
    with warnings_as_errors():
        code, _, err = run_cli(["train", "--quiet", "--set", "train.epochs=3", "--resume", "auto", "--out", "old"],
                               capsys)
    assert code == 0 and "resumed from" in err, err


def test_an_old_record_resumed_with_a_name_set_uses_that_one_checked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["train", *FAST, "--out", "old"], capsys)
    assert code == 0, err
    _record_run_name(tmp_path / "old", "exp/a")
    code, _, err = run_cli(["train", "--quiet", "--resume", "old/checkpoints/latest", "--set", "run.run_name=x/y"],
                           capsys)
    assert code == 2 and "run.run_name = 'x/y' holds a path separator" in err, err
    with warnings_as_errors():  # (the recorded name is not used: nothing to warn of)
        code, _, err = run_cli(["train", "--quiet", "--set", "train.epochs=2", "--resume", "auto", "--out", "old",
                                "--set", "run.run_name=fork"], capsys)
    assert code == 0 and "resumed from" in err, err


def test_a_config_a_user_wrote_with_a_path_as_the_name_is_still_refused_without_the_record_header(tmp_path):
    from distnn.train.config import ConfigError, dump_run_config, load_config, loads_config

    record = dump_run_config(load_config("digits_mlp"))
    edited = record.replace("\n[run]\n", '\n[run]\nrun_name = "exp/a"\n', 1)
    with pytest.warns(UserWarning, match="the recorded run.run_name = 'exp/a' holds a path separator"):
        assert loads_config(edited).run.get("run_name") is None
    body = edited[edited.index("\nname = "):]  # (the same keys without the header: a config a user wrote)
    with pytest.raises(ConfigError, match="run.run_name = 'exp/a' holds a path separator"):
        loads_config(body)


def warnings_as_errors():
    import warnings

    class _Ctx(warnings.catch_warnings):
        def __enter__(self):
            out = super().__enter__()
            warnings.simplefilter("error")
            return out
    return _Ctx()
