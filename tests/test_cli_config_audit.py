"""Config messages and the resolved config.toml as the command line gives them (a config audit's findings).

Every case goes through ``distnn.cli.main(argv)``, the ``python -m distnn`` entry point called in-process.
"""
import pytest

from distnn.cli import main


def error_line(argv, capsys):
    """Status 2 and the one ``distnn: error:`` line of ``main(argv)``."""
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("distnn: error: "), (code, err)
    return err[0]


# ------------------------------------------------------------------ a dotted key under a value
@pytest.mark.parametrize("setting,message", [
    # (was: "optimizer.lr must be a number, got {'x': 1} (table)", and no word of the --set)
    ("optimizer.lr.x=1", "optimizer.lr is a value (a number), not a section: 'optimizer.lr.x' = 1 names no key"),
    ("name.x=1", "name is a value (a string), not a section: 'name.x' = 1 names no key"),
    ("model.dropout.p=0.1", "model.dropout is a value (a number in [0, 1)), not a section: 'model.dropout.p' = 0.1"),
    ("data.flatten.x=true", "data.flatten is a value (true or false), not a section: 'data.flatten.x' = true"),
])
def test_a_dotted_key_under_a_value_says_the_value_is_no_section(capsys, setting, message):
    line = error_line(["train", "--set", setting], capsys)
    assert message in line and line.endswith(" (set by --set)"), line


def test_a_table_under_a_value_in_a_config_file_says_the_same(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[optimizer.lr]\nx = 1\n")
    line = error_line(["train", "--config", str(path)], capsys)
    assert "optimizer.lr is a value (a number), not a section: 'optimizer.lr.x' = 1 names no key" in line
    assert "--set" not in line
