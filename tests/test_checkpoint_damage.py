"""Checkpoints in one process, damaged: a corrupt newest checkpoint or manifest skipped with a warning naming
the file, edited fields detected, format 2 manifests, directories holding another step's checkpoint, symlink
loops, a newest checkpoint or root that is no directory, damaged pointer files."""
import json
import os
import re
import shutil

import pytest

from distnn.train import checkpoint as ck

from checkpoint_runs import write_step


pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "delete_manifest", "delete_file", "bad_manifest"])
def test_corrupt_newest_is_skipped_with_a_warning_naming_the_file(tmp_path, damage):
    write_step(tmp_path, 10)
    newest = write_step(tmp_path, 20)
    target = os.path.join(newest, "model.npz")
    if damage == "truncate":
        data = open(target, "rb").read()
        open(target, "wb").write(data[: len(data) // 2])
    elif damage == "bitflip":
        data = bytearray(open(target, "rb").read())
        data[len(data) - 20] ^= 0x04
        open(target, "wb").write(bytes(data))
    elif damage == "delete_manifest":
        os.remove(os.path.join(newest, ck.MANIFEST))
    elif damage == "delete_file":
        os.remove(target)
    else:
        open(os.path.join(newest, ck.MANIFEST), "w").write("{not json")
    warnings = []
    path, state, man = ck.load_latest_valid(str(tmp_path), warnings.append)
    assert os.path.basename(path) == "step-00000010" and man["step"] == 10
    assert len(warnings) == 1 and "step-00000020" in warnings[0]
    expected = {"truncate": "model.npz", "bitflip": "model.npz", "delete_manifest": "manifest.json",
                "delete_file": "model.npz", "bad_manifest": "manifest.json"}[damage]
    assert expected in warnings[0]
    assert ck.verify_checkpoint(newest) and expected in ck.verify_checkpoint(newest)[0]
    # an explicit path to the corrupt checkpoint is an error, not a silent fallback
    with pytest.raises(ck.CorruptCheckpointError, match=expected.replace(".", r"\.")):
        ck.resolve_and_load(newest, None)


@pytest.mark.parametrize("edit", [
    lambda m: m["files"]["model.npz"].update(bxtes=m["files"]["model.npz"].pop("bytes")),  # one flipped bit
    lambda m: m["files"].update({"model.npz": "abc"}),
    lambda m: m.pop("step"),
    lambda m: m.update(version="v2"),
    lambda m: m["files"]["model.npz"].update(bytes="abc"),
    lambda m: m["files"]["model.npz"].update(sha256=None),
    lambda m: m["files"].update({"../model.npz": m["files"].pop("model.npz")}),
], ids=["key-bitflip", "entry-not-a-table", "no-step", "version-text", "bytes-text", "no-sha", "path-outside"])
def test_a_manifest_that_parses_but_is_damaged_is_skipped_like_a_corrupt_one(tmp_path, edit):
    # valid JSON of the wrong shape gave a KeyError/TypeError traceback (on every rank) instead of a fallback
    write_step(tmp_path, 10)
    newest = write_step(tmp_path, 20)
    mpath = os.path.join(newest, ck.MANIFEST)
    man = json.load(open(mpath))
    edit(man)
    open(mpath, "w").write(json.dumps(man))
    warnings = []
    path, _, man = ck.load_latest_valid(str(tmp_path), warnings.append)
    assert os.path.basename(path) == "step-00000010" and man["step"] == 10
    assert len(warnings) == 1 and "step-00000020" in warnings[0] and "manifest.json is damaged" in warnings[0]
    assert "manifest.json is damaged" in ck.verify_checkpoint(newest)[0]
    assert ck.model_directory(str(tmp_path)) == os.path.join(str(tmp_path), "step-00000010")
    with pytest.raises(ck.CorruptCheckpointError, match="manifest.json is damaged"):
        ck.resolve_and_load(newest, None)


@pytest.mark.parametrize("edit", [
    lambda t: t.replace(b'"world_size": 1', b'"world_size": 3'),  # one flipped bit ('1' -> '3')
    lambda t: t.replace(b'"step": 20', b'"step": 22'),  # one flipped bit
    lambda t: t.replace(b'"version": 3', b'"version": 2'),  # one flipped bit: read as an unsealed format 2
    lambda t: t.replace(b'"world_size": 1, ', b''),
    lambda t: t.replace(b'"manifest_sha256"', b'"manifest_sha257"'),  # the seal's own name
    lambda t: t[:t.rindex(b', "manifest_sha256"')] + b"}",  # the seal gone
    lambda t: t.replace(b'"created": "', b'"created": "x'),
], ids=["world-size", "step", "version", "key-gone", "seal-name", "seal-gone", "created"])
def test_a_manifest_field_outside_files_that_is_edited_is_detected(tmp_path, edit):
    # (found by test_checkpoint_corruption_fuzz) the manifest's checksums cover the other files, not the
    # manifest: a field that still parsed (world_size, step, epoch_end, metrics...) was loaded as if saved
    write_step(tmp_path, 10)
    newest = write_step(tmp_path, 20)
    mpath = os.path.join(newest, ck.MANIFEST)
    text = open(mpath, "rb").read()
    assert ck.read_manifest(newest)["world_size"] == 1 and "manifest_sha256" not in ck.read_manifest(newest)
    open(mpath, "wb").write(edit(text))
    warnings = []
    path, _, man = ck.load_latest_valid(str(tmp_path), warnings.append)
    assert os.path.basename(path) == "step-00000010" and man["step"] == 10
    assert len(warnings) == 1 and "step-00000020" in warnings[0] and "manifest.json is damaged" in warnings[0]
    with pytest.raises(ck.CorruptCheckpointError, match="manifest.json is damaged"):
        ck.resolve_and_load(newest, None)


def test_a_format_2_manifest_without_its_own_checksum_still_reads(tmp_path):
    newest = write_step(tmp_path, 20)
    mpath = os.path.join(newest, ck.MANIFEST)
    man = json.load(open(mpath))
    del man[ck.MANIFEST_SEAL]
    open(mpath, "w").write(json.dumps({**man, "version": 2}))
    state, got = ck.read_checkpoint(newest)
    assert got["version"] == 2 and got["step"] == 20 and state["_files"]["note.txt"] == b"x"


@pytest.mark.parametrize("how", ["renamed", "symlink"])
def test_a_checkpoint_directory_holding_another_steps_checkpoint_is_not_loaded_as_it(tmp_path, how):
    # (found by test_checkpoint_corruption_fuzz) step-30 replaced by a symlink to step-10 (or step-10 renamed):
    # --resume auto loaded step 10's state as the newest checkpoint, step-30
    for step in (10, 20, 30):
        write_step(tmp_path, step)
    shutil.rmtree(tmp_path / "step-00000030")
    if how == "renamed":
        shutil.copytree(tmp_path / "step-00000010", tmp_path / "step-00000030")
        expected = "manifest.json is of step-00000010, not of step-00000030"
    else:  # (a step-N symlink is refused as such: test_checkpoint_links)
        os.symlink(tmp_path / "step-00000010", tmp_path / "step-00000030")
        expected = f"is a symlink to {str(tmp_path / 'step-00000010')!r}"
    warnings = []
    path, _, man = ck.load_latest_valid(str(tmp_path), warnings.append)
    assert os.path.basename(path) == "step-00000020" and man["step"] == 20
    assert len(warnings) == 1 and expected in warnings[0]
    with pytest.raises(ck.CorruptCheckpointError, match=re.escape(expected)):
        ck.resolve_and_load(str(tmp_path / "step-00000030"), None)
    # (a checkpoint read through a link of another name is itself, as before)
    os.symlink(tmp_path / "step-00000010", tmp_path / "mine")
    assert ck.resolve_and_load(str(tmp_path / "mine"), None)[2]["step"] == 10


def test_a_symlink_loop_named_like_a_checkpoint_does_not_hide_the_others(tmp_path):
    # (found by test_checkpoint_corruption_fuzz) stat() of the loop raised inside the listing, which gave up
    # on the whole root: --resume auto found "no checkpoint yet" and started the run over
    for step in (10, 20, 30):
        write_step(tmp_path, step)
    shutil.rmtree(tmp_path / "step-00000010")
    os.symlink(tmp_path / "step-00000010", tmp_path / "step-00000010")
    assert [c.step for c in ck.list_checkpoints(str(tmp_path))] == [20, 30]
    path, _, man = ck.resolve_and_load("auto", str(tmp_path))
    assert os.path.basename(path) == "step-00000030" and man["step"] == 30


@pytest.mark.parametrize("damage", ["file", "dangling-symlink", "deleted", "deleted-and-latest"])
def test_a_newest_checkpoint_that_is_no_directory_or_is_gone_is_reported(tmp_path, damage):
    # (found by test_checkpoint_corruption_fuzz) a step-N that is a file or a dangling symlink, or a newest
    # checkpoint deleted while `latest` (or `best`) still names it, was passed over without a word
    for step in (10, 20, 30):
        write_step(tmp_path, step)
    ck.write_pointer(str(tmp_path), ck.BEST, "step-00000030")
    newest = tmp_path / "step-00000030"
    shutil.rmtree(newest)
    if damage == "file":
        newest.write_bytes(b"junk")
    elif damage == "dangling-symlink":
        os.symlink(tmp_path / "nowhere", newest)
    elif damage == "deleted-and-latest":
        os.remove(tmp_path / ck.LATEST)
    warnings = []
    path, _, man = ck.load_latest_valid(str(tmp_path), warnings.append)
    assert os.path.basename(path) == "step-00000020" and man["step"] == 20
    assert len(warnings) == 1 and "step-00000030" in warnings[0], warnings
    expected = {"file": "is not a directory", "dangling-symlink": "is a broken symlink",
                "deleted": "latest' names step-00000030, which is not there",
                "deleted-and-latest": "best' names step-00000030, which is not there"}[damage]
    assert expected in warnings[0]
    if not damage.startswith("deleted"):  # (evaluate of the root: the same)
        warnings.clear()
        assert ck.model_directory(str(tmp_path), warnings.append) == os.path.join(str(tmp_path), "step-00000020")
        assert len(warnings) == 1 and expected in warnings[0]
        # nothing but such an entry: an error, not "no checkpoint yet" (a fresh start)
        for old in ("step-00000010", "step-00000020"):
            shutil.rmtree(tmp_path / old)
        with pytest.raises(ck.CheckpointError, match="every one is incomplete or corrupt"):
            ck.resolve_and_load("auto", str(tmp_path), warnings.append)


@pytest.mark.parametrize("damage", ["file", "dangling-symlink", "symlink-loop"])
def test_a_checkpoint_root_that_is_no_directory_is_an_error_not_a_fresh_start(tmp_path, damage):
    # (found by test_checkpoint_corruption_fuzz) --resume auto took a checkpoint root replaced by a file or a
    # broken symlink for "no checkpoint yet": the run started over (and its first save failed)
    run = tmp_path / "run"
    root = run / "checkpoints"
    for step in (10, 20):
        write_step(root, step)
    assert ck.resolve_and_load("auto", str(tmp_path / "nothing-yet")) is None  # (a first session: as before)
    shutil.rmtree(root)
    if damage == "file":
        root.write_bytes(b"junk")
    else:
        os.symlink(root if damage == "symlink-loop" else tmp_path / "nowhere", root)
    expected = "not a directory" if damage == "file" else "a broken symlink"
    with pytest.raises(ck.CheckpointError, match=f"checkpoint directory '{root}' is {expected}"):
        ck.resolve_and_load("auto", str(root))
    with pytest.raises(ck.CheckpointError, match=f"no valid checkpoint found in '{run}' \\('{root}' is {expected}"):
        ck.resolve_and_load(str(run), None)


@pytest.mark.parametrize("content", [b"\x94\xff\x00garbage", b"step-\xd9\xa3\n", b"", b"step-00000020\nstep-1"])
def test_a_damaged_pointer_file_is_a_clear_error_and_retention_goes_on(tmp_path, content):
    # (found by test_checkpoint_corruption_fuzz) bytes that are not UTF-8 in `latest` or `best` raised
    # UnicodeDecodeError from read_pointer: in --resume of the pointer, and in every save's retention
    for step in (10, 20, 30):
        write_step(tmp_path, step)
    (tmp_path / ck.BEST).write_bytes(content)
    with pytest.raises(ck.CheckpointError, match=r"best' is damaged or unreadable: it holds no checkpoint name"):
        ck.resolve_and_load(str(tmp_path / ck.BEST), None)
    assert ck.read_pointer(str(tmp_path), ck.BEST) is None
    assert ck.apply_retention(str(tmp_path), keep_last=1) == ["step-00000010", "step-00000020"]
