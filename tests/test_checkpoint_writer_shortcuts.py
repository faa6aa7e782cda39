"""The checkpoint writer's shortcuts give what the long way gave: a recycled spare's hard link to the very
file a new checkpoint reuses stays (no unlink and link again) while any other linked file is still never
written through; a root's scan takes entry types from the listing and still tells every kind of step-N
entry apart; json_clean's fast path for the common types cleans as the general one does."""
import enum
import json
import os

import numpy as np
import pytest

from distnn.train import checkpoint as ck


def _files(note: bytes, shared: bytes = b'{"a": 1}') -> dict:
    return ck.serialize({"model": {"w": np.arange(300, dtype=np.float32)}}, {"note.txt": note, "shared.json": shared})


def _reuse(path: str) -> dict:
    sha = ck.read_manifest(path)["files"]["shared.json"]["sha256"]
    return {"shared.json": (os.path.join(path, "shared.json"), sha)}


def _two_and_a_spare(root: str):
    """Steps 1 and 2 (2 links step 1's shared.json), then step 1 retired to a spare."""
    p1 = ck.write_checkpoint(root, 1, _files(b"one"))
    p2 = ck.write_checkpoint(root, 2, _files(b"two"), reuse=_reuse(p1))
    spares = []
    assert ck.apply_retention(root, 1, spare=spares) == ["step-00000001"] and len(spares) == 1
    return p2, spares


def _recorded(monkeypatch, name):
    calls = []
    real = getattr(os, name)

    def record(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)
    monkeypatch.setattr(os, name, record)
    return calls


def test_a_spares_link_to_the_reused_file_stays_that_link(tmp_path, monkeypatch):
    root = str(tmp_path)
    p2, spares = _two_and_a_spare(root)
    shared = os.stat(os.path.join(p2, "shared.json"))
    unlinked, linked = _recorded(monkeypatch, "unlink"), _recorded(monkeypatch, "link")
    p3 = ck.write_checkpoint(root, 3, _files(b"three"), reuse=_reuse(p2), recycle=spares.pop())
    monkeypatch.undo()
    # the spare (step 1) held a link to this very file: kept, neither unlinked nor linked again
    assert not [c for c in unlinked if "shared.json" in str(c[0])] and not linked
    assert (os.stat(os.path.join(p3, "shared.json")).st_ino, os.stat(os.path.join(p3, "shared.json")).st_nlink) \
        == (shared.st_ino, 2)
    assert ck.verify_checkpoint(p2) == [] and ck.verify_checkpoint(p3) == []
    assert ck.read_manifest(p3)["files"]["shared.json"] == ck.read_manifest(p2)["files"]["shared.json"]
    assert ck.read_checkpoint(p3)[0]["_files"]["note.txt"] == b"three"


def test_a_spares_link_to_another_file_is_unlinked_never_written_through(tmp_path):
    root = str(tmp_path)
    p2, spares = _two_and_a_spare(root)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_bytes(b"not ours, keep me")
    try:
        # the spare's note.txt (written there, one link) replaced by a link to a file outside the root
        os.unlink(os.path.join(spares[0], "note.txt"))
        os.link(outside, os.path.join(spares[0], "note.txt"))
        p3 = ck.write_checkpoint(root, 3, _files(b"three"), reuse=_reuse(p2), recycle=spares.pop())
        assert outside.read_bytes() == b"not ours, keep me" and os.stat(outside).st_nlink == 1
        assert ck.read_checkpoint(p3)[0]["_files"]["note.txt"] == b"three"
        assert ck.verify_checkpoint(p2) == [] and ck.verify_checkpoint(p3) == []
    finally:
        outside.unlink()


def test_a_spares_link_to_the_reused_file_of_another_size_is_not_kept(tmp_path):
    # reuse names the file, but the new bytes are not its bytes (a wrong reuse): the spare's link to it
    # must go, and the file is written anew beside it, not through it
    root = str(tmp_path)
    p2, spares = _two_and_a_spare(root)
    p3 = ck.write_checkpoint(root, 3, _files(b"three", shared=b'{"a": 10}'), reuse=_reuse(p2), recycle=spares.pop())
    assert open(os.path.join(p2, "shared.json"), "rb").read() == b'{"a": 1}'
    assert open(os.path.join(p3, "shared.json"), "rb").read() == b'{"a": 10}'
    assert os.stat(os.path.join(p3, "shared.json")).st_ino != os.stat(os.path.join(p2, "shared.json")).st_ino
    assert ck.verify_checkpoint(p2) == [] and ck.verify_checkpoint(p3) == []


def test_the_roots_scan_tells_each_kind_of_step_entry_apart(tmp_path):
    root = str(tmp_path)
    for step in (1, 2, 3):
        ck.write_checkpoint(root, step, _files(b"x"))
    elsewhere = tmp_path / "elsewhere"
    os.rename(os.path.join(root, "step-00000001"), elsewhere)
    os.symlink(elsewhere, os.path.join(root, "step-00000001"))      # a link to a whole checkpoint
    (tmp_path / "step-00000004").write_bytes(b"a file")              # a file
    os.symlink(tmp_path / "nothing", os.path.join(root, "step-00000005"))  # a dangling link
    found = {c.step: c.problem for c in ck.read._step_entries(root)}
    assert found[2] == found[3] == ""
    assert found[1].startswith("a symlink") and found[4] == "not a directory"
    assert found[5] == "a broken symlink (to nothing, or a loop)"
    assert [c.step for c in ck.list_checkpoints(root)] == [2, 3]
    # retention keeps to the directories: the link and what it names, the file, stay
    assert ck.apply_retention(root, 1) == ["step-00000002"]
    assert os.path.islink(os.path.join(root, "step-00000001")) and ck.verify_checkpoint(str(elsewhere)) == []
    assert (tmp_path / "step-00000004").read_bytes() == b"a file"


class _Color(enum.IntEnum):
    RED = 1


class _Name(str):
    pass


@pytest.mark.parametrize("value, expected", [
    ({"a": 1.5, "b": float("nan"), "c": -float("inf"), "d": None, "e": True, "f": "s"},
     '{"a": 1.5, "b": null, "c": null, "d": null, "e": true, "f": "s"}'),
    ({3: "int key", True: "bool key", None: "none key", 2.5: "float key"},
     '{"3": "int key", "True": "bool key", "None": "none key", "2.5": "float key"}'),
    ({"t": (1, (2, 3)), "l": [np.float32(0.5), np.int64(7), np.bool_(True)]},
     '{"t": [1, [2, 3]], "l": [0.5, 7, true]}'),
    ({"f64": np.float64(0.1), "nan64": np.float64("nan"), "nan32": np.float32("nan")},
     '{"f64": 0.1, "nan64": null, "nan32": NaN}'),
    ({_Name("k"): _Color.RED, "n": {"deep": {"er": [float("inf")]}}},
     '{"k": 1, "n": {"deep": {"er": [null]}}}'),
])
def test_json_clean_cleans_every_kind_as_before(value, expected):
    # (np.float32's NaN stays NaN, as it always did: json_clean only maps Python floats' non-finite values)
    assert json.dumps(ck.json_clean(value)) == expected
