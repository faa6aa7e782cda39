"""Checkpoints in one process: format, atomicity, corruption, retention, exact resume (also simulated ranks).

The multi-process cases (kill -9, crashes mid-write, SIGTERM to mpiexec, full
disks) are in test_checkpoint_mpi.py.
"""
import json
import logging
import math
import os
import re
import shutil
import signal
import threading

import numpy as np
import pytest

import distnn
from distnn.data import build_transforms, load_dataset
from distnn.distributed import LocalCommunicator, simulate
from distnn.models import build_model
from distnn import optim
from distnn.optim import Adam
from distnn.optim.lr_scheduler import LinearWarmup
from distnn.train import checkpoint as ck
from distnn.train.checkpoint import fsio, hashing
from distnn.train import preemption, step_guard
from distnn.train.callbacks import Callback, EarlyStopping, LRSchedulerCallback, background_writer
from distnn.train.callbacks.checkpoint import ModelCheckpoint
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.trainer import Trainer


@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    return splits, build_transforms(splits, {"noise": 0.1}), build_transforms(splits)


pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def make_trainer(comm, digits, *, epochs=3, dropout=0.2, augment=True, subset=300, batch_size=40, callbacks=(),
                 accumulation_steps=1, dtype=None, data_parallel=True, optimizer=None):
    splits, (aug_tf, eval_tf), (plain_tf, _) = digits
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[32], dropout=dropout, input_shape=splits.input_shape, num_classes=10)
    if dtype is not None:
        model.to(dtype)
    opt = Adam(model.parameters(), lr=3e-3) if optimizer is None else optimizer(model.parameters())
    warm = LRSchedulerCallback(LinearWarmup(opt, warmup_steps=5), interval="step")
    es = EarlyStopping(monitor="val_loss", patience=50)
    return Trainer(model, opt, splits.train.subset(np.arange(subset)), splits.val, comm=comm, batch_size=batch_size,
                   epochs=epochs, callbacks=[warm, es, *callbacks], transform=aug_tf if augment else plain_tf,
                   eval_transform=eval_tf, seed=3, accumulation_steps=accumulation_steps, data_parallel=data_parallel)


def final_state(t):
    return {"model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(), "history": t.history,
            "step": t.state.global_step}


def assert_bitwise(a, b):
    assert a["step"] == b["step"]
    for k in a["model"]:
        np.testing.assert_array_equal(a["model"][k], b["model"][k], err_msg=k)
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for k in sa[i]:
            np.testing.assert_array_equal(np.asarray(sa[i][k]), np.asarray(sb[i][k]), err_msg=f"{i}.{k}")
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for ra, rb in zip(a["history"], b["history"]):
        for key in ("train_loss", "train_accuracy", "val_loss", "lr"):
            assert ra[key] == rb[key], key


def run_with_checkpoints(comm, digits, root, every=1, **kw):
    t = make_trainer(comm, digits, **kw)
    attach(t, str(root), {"dir": str(root), "every_steps": every, "keep_last": 0}, nonfinite="error")
    t.fit()
    return final_state(t)


def resume_run(comm, digits, root, spec, **kw):
    t = make_trainer(comm, digits, **kw)
    attach(t, str(root), {"dir": str(root), "every_steps": 0, "keep_last": 0}, resume_spec=str(spec))
    t.fit()
    return final_state(t)


# ------------------------------------------------------------------- format
def test_encode_decode_round_trip_is_exact():
    gen = np.random.default_rng(5)
    gen.random(3)
    state = {
        "model": {"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "fc.bias": np.zeros(2, np.float64)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(3, np.float32)}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}]},
        "misc": {"nan": float("nan"), "inf": -float("inf"), "f32": np.float32(0.1), "i64": np.int64(7),
                 "tuple": (1, "a", None), "nested": [{"k": [1.5, True]}], "rng": gen.bit_generator.state,
                 "scalar_array": np.array(2.5)},
    }
    files = ck.serialize(state)
    assert set(files) == {"model.npz", "optimizer.npz", "state.npz", ck.TRAINER_JSON}
    skeleton = json.loads(files[ck.TRAINER_JSON])
    import io

    arrays = {f: dict(np.load(io.BytesIO(b))) for f, b in files.items() if f.endswith(".npz")}
    # model.npz is an ordinary state_dict npz (what run directories hold)
    assert sorted(arrays["model.npz"]) == ["fc.bias", "fc.weight"]
    out = ck.decode_state(skeleton, arrays)
    assert out["optimizer"]["state"][0]["step"] == 3 and 0 in out["optimizer"]["state"]
    assert out["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert np.isnan(out["misc"]["nan"]) and out["misc"]["inf"] == -np.inf
    assert type(out["misc"]["f32"]) is np.float32 and out["misc"]["f32"] == np.float32(0.1)
    assert type(out["misc"]["i64"]) is np.int64 and out["misc"]["tuple"] == (1, "a", None)
    assert out["misc"]["nested"] == [{"k": [1.5, True]}]
    g2 = np.random.default_rng()
    g2.bit_generator.state = out["misc"]["rng"]
    assert g2.random() == gen.random()
    np.testing.assert_array_equal(out["model"]["fc.weight"], state["model"]["fc.weight"])
    assert out["model"]["fc.bias"].dtype == np.float64
    with pytest.raises(TypeError, match="misc/obj"):
        ck.serialize({"misc": {"obj": object()}})


def _write(root, step, payload=b"x"):
    return ck.write_checkpoint(str(root), step, ck.serialize({"model": {"w": np.full(4, step, np.float32)}},
                                                              {"note.txt": payload}), {"world_size": 1})


def test_write_verify_and_latest(tmp_path):
    p1 = _write(tmp_path, 10)
    p2 = _write(tmp_path, 20)
    assert os.path.basename(p2) == "step-00000020" and ck.read_pointer(str(tmp_path)) == "step-00000020"
    assert ck.verify_checkpoint(p1) == [] and ck.verify_checkpoint(p2) == []
    man = ck.read_manifest(p2)
    assert man["step"] == 20 and set(man["files"]) == {"model.npz", ck.TRAINER_JSON, "note.txt"}
    state, man = ck.read_checkpoint(p2)
    np.testing.assert_array_equal(state["model"]["w"], np.full(4, 20, np.float32))
    assert state["_files"]["note.txt"] == b"x"
    # no temporary or trash directories are left behind
    assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000010", "step-00000020"]
    # writing the same step again replaces it atomically
    _write(tmp_path, 20, b"y")
    assert ck.read_checkpoint(p2)[0]["_files"]["note.txt"] == b"y"


@pytest.mark.parametrize("again", [False, True], ids=["new step", "same step again"])
def test_every_file_is_durable_before_a_name_points_at_it(tmp_path, monkeypatch, again):
    # The commit protocol, from the calls it makes: each file (manifest and pointer included) is fsynced,
    # after its write-back was started with all the others' (Linux), before the directory is renamed or
    # the pointer replaced; one fsync of the root follows both renames; a replaced checkpoint of the
    # same step is removed only after that fsync.
    if again:
        _write(tmp_path, 20, b"old")
    paths, events = {}, []
    real_open, real_fsync, real_rename, real_replace, real_unlink = os.open, os.fsync, os.rename, os.replace, os.unlink

    def opened(path, *args, **kw):
        fd = real_open(path, *args, **kw)
        paths[fd] = os.path.relpath(path, tmp_path)
        return fd

    def record(kind, real):
        def call(*args):
            events.append((kind, *[paths.get(a, a) if isinstance(a, int) else os.path.relpath(a, tmp_path)
                                   for a in args]))
            return real(*args)
        return call

    monkeypatch.setattr(os, "open", opened)
    monkeypatch.setattr(os, "fsync", record("fsync", real_fsync))
    monkeypatch.setattr(os, "rename", record("rename", real_rename))
    monkeypatch.setattr(os, "replace", record("replace", real_replace))
    monkeypatch.setattr(os, "unlink", record("unlink", real_unlink))
    if fsio.START_WRITEBACK is not None:
        monkeypatch.setattr(fsio, "START_WRITEBACK", record("writeback", fsio.START_WRITEBACK))
    _write(tmp_path, 20)
    monkeypatch.undo()

    def first(kind, pred=lambda e: True):
        return next(i for i, e in enumerate(events) if e[0] == kind and pred(e))

    commit = first("rename", lambda e: e[2] == "step-00000020")
    tmp_dir = events[commit][1]
    assert tmp_dir.startswith(".tmp-step-00000020")
    written = {f"{tmp_dir}/{n}" for n in ("model.npz", ck.TRAINER_JSON, "note.txt", ck.MANIFEST)}
    pointer_tmp = events[first("replace")][1]
    assert events[first("replace")][2] == "latest"
    fsynced = {e[1]: i for i, e in enumerate(events) if e[0] == "fsync"}
    for f in written | {pointer_tmp, tmp_dir}:
        assert fsynced.get(f, commit) < commit, (f, events)
    if fsio.START_WRITEBACK is not None:
        started = [e[1] for e in events[:first("fsync")] if e[0] == "writeback"]
        assert set(started) == written | {pointer_tmp}, events
    root_syncs = [i for i, e in enumerate(events) if e == ("fsync", ".")]
    assert len(root_syncs) == 1 and root_syncs[0] > first("replace") > commit, events
    removed = [i for i, e in enumerate(events) if e[0] == "unlink"]
    assert bool(removed) == again and all(i > root_syncs[0] for i in removed), events
    assert ck.read_checkpoint(os.path.join(tmp_path, "step-00000020"))[0]["_files"]["note.txt"] == b"x"


def test_with_syncfs_one_call_makes_the_files_durable_before_the_rename(tmp_path, monkeypatch):
    # DISTNN_CKPT_SYNCFS=1 (opt-in): one syncfs instead of an fsync per file and of the directory
    monkeypatch.setenv("DISTNN_CKPT_SYNCFS", "1")
    syncfs = fsio._load_syncfs()
    if syncfs is None:
        pytest.skip("syncfs needs Linux >= 5.8")
    events = []

    def record(kind, real, named=False):
        def call(*args):
            events.append((kind, os.path.basename(args[-1])) if named else (kind,))
            return real(*args)
        return call

    monkeypatch.setattr(fsio, "SYNCFS", record("syncfs", syncfs))
    monkeypatch.setattr(os, "fsync", record("fsync", os.fsync))
    monkeypatch.setattr(os, "rename", record("rename", os.rename, named=True))
    monkeypatch.setattr(os, "replace", record("replace", os.replace, named=True))
    path = _write(tmp_path, 20)
    monkeypatch.undo()
    assert events == [("syncfs",), ("rename", "step-00000020"), ("replace", "latest"), ("fsync",)], events
    assert ck.verify_checkpoint(path) == [] and ck.read_pointer(str(tmp_path)) == "step-00000020"


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "delete_manifest", "delete_file", "bad_manifest"])
def test_corrupt_newest_is_skipped_with_a_warning_naming_the_file(tmp_path, damage):
    _write(tmp_path, 10)
    newest = _write(tmp_path, 20)
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
    _write(tmp_path, 10)
    newest = _write(tmp_path, 20)
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
    _write(tmp_path, 10)
    newest = _write(tmp_path, 20)
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
    newest = _write(tmp_path, 20)
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
        _write(tmp_path, step)
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
        _write(tmp_path, step)
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
        _write(tmp_path, step)
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
        _write(root, step)
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
        _write(tmp_path, step)
    (tmp_path / ck.BEST).write_bytes(content)
    with pytest.raises(ck.CheckpointError, match=r"best' is damaged or unreadable: it holds no checkpoint name"):
        ck.resolve_and_load(str(tmp_path / ck.BEST), None)
    assert ck.read_pointer(str(tmp_path), ck.BEST) is None
    assert ck.apply_retention(str(tmp_path), keep_last=1) == ["step-00000010", "step-00000020"]


def test_failed_write_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    _write(tmp_path, 10)
    for fault in ("enospc:model.npz", "enospc:manifest.json", "enospc"):
        monkeypatch.setenv(ck.FAULT_ENV, f"{fault}@20")
        with pytest.raises(ck.CheckpointError, match="No space left on device"):
            _write(tmp_path, 20)
        assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000010"]
        assert ck.read_pointer(str(tmp_path)) == "step-00000010"
    # the same when the write recycles a retired checkpoint: the spare is used up, nothing else is touched
    _write(tmp_path, 15)
    spares = []
    ck.apply_retention(str(tmp_path), 1, spare=spares)
    for fault in ("enospc:model.npz", "enospc:manifest.json"):
        monkeypatch.setenv(ck.FAULT_ENV, f"{fault}@20")
        with pytest.raises(ck.CheckpointError, match="No space left on device"):
            ck.write_checkpoint(str(tmp_path), 20, ck.serialize({"model": {"w": np.zeros(4, np.float32)}}),
                                recycle=spares.pop() if spares else None)
        assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000015"]
        assert ck.verify_checkpoint(str(tmp_path / "step-00000015")) == []
    # a checkpoint root that cannot be created (a file is in the way)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ck.CheckpointError, match="cannot write checkpoint"):
        _write(blocker / "sub", 5)


def test_a_preemption_signal_in_the_middle_of_a_write_leaves_it_complete(tmp_path, monkeypatch):
    monkeypatch.setenv(ck.FAULT_ENV, "signal_after:model.npz@20")  # SIGTERM between two files of step 20
    _write(tmp_path, 10)
    with preemption.PreemptionHandler():
        _write(tmp_path, 20)
        assert preemption.requested() == signal.SIGTERM  # the handler only noted it
    assert ck.read_pointer(str(tmp_path)) == "step-00000020"
    assert ck.verify_checkpoint(str(tmp_path / "step-00000020")) == []


@pytest.mark.parametrize("links", [True, False], ids=["linked", "no-links"])
def test_files_equal_in_every_checkpoint_are_linked_not_rewritten(digits, tmp_path, monkeypatch, links):
    if not links:  # a file system without hard links: written as usual
        def no_link(*a, **k):
            raise OSError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    t = make_trainer(LocalCommunicator(), digits, epochs=4)
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 3, "keep_best": False},
           extra_files={"config.toml": "a = 1\n", "model.json": "{}"})
    t.fit()
    cps = ck.list_checkpoints(str(tmp_path))
    assert [c.step for c in cps] == [16, 24, 32]  # step 8's was removed: its links there are gone, not the data
    for c in cps:
        assert ck.verify_checkpoint(c.path) == []
        assert open(os.path.join(c.path, "config.toml")).read() == "a = 1\n"
    inodes = {os.stat(os.path.join(c.path, "config.toml")).st_ino for c in cps}
    assert len(inodes) == (1 if links else 3)
    assert len({os.stat(os.path.join(c.path, "model.npz")).st_ino for c in cps}) == 3  # the state: written


def test_retention_keeps_last_k_and_the_protected(tmp_path):
    for s in (1, 2, 3, 4, 5):
        _write(tmp_path, s)
    removed = ck.apply_retention(str(tmp_path), 2, protect=["step-00000002"])
    assert removed == ["step-00000001", "step-00000003"]
    assert [c.step for c in ck.list_checkpoints(str(tmp_path))] == [2, 4, 5]
    ck.discard_newer(str(tmp_path), 4)
    assert [c.step for c in ck.list_checkpoints(str(tmp_path))] == [2, 4]
    assert ck.read_pointer(str(tmp_path)) == "step-00000004"


def test_a_retired_checkpoint_is_recycled_in_place_by_the_next_write(tmp_path):
    root = str(tmp_path)
    big = np.random.default_rng(0).standard_normal(5000).astype(np.float32)

    def files(scale, note, extra=()):
        out = ck.serialize({"model": {"w": big * scale}}, {"note.txt": note, "shared.json": b"{}"})
        out.update(extra)
        return out

    def reuse_from(path):
        sha = ck.read_manifest(path)["files"]["shared.json"]["sha256"]
        return {"shared.json": (os.path.join(path, "shared.json"), sha)}

    p1 = ck.write_checkpoint(root, 1, files(1, b"long note " * 50, {"old.bin": b"z" * 10}))
    p2 = ck.write_checkpoint(root, 2, files(2, b"second"), reuse=reuse_from(p1))
    assert os.stat(os.path.join(p2, "shared.json")).st_nlink == 2  # linked with step 1's copy
    inode = os.stat(os.path.join(p1, "model.npz")).st_ino
    spares = []
    assert ck.apply_retention(root, 1, spare=spares) == ["step-00000001"]
    assert [c.name for c in ck.list_checkpoints(root)] == ["step-00000002"] and len(spares) == 1
    assert os.path.basename(spares[0]).startswith(".spare-step-00000001")
    p3 = ck.write_checkpoint(root, 3, files(3, b"short"), reuse=reuse_from(p2), recycle=spares.pop())
    # step 1's files became step 3's: the same inode rewritten, shorter ones truncated, the others gone
    assert os.stat(os.path.join(p3, "model.npz")).st_ino == inode
    assert sorted(os.listdir(p3)) == ["manifest.json", "model.npz", "note.txt", "shared.json", ck.TRAINER_JSON]
    state, _ = ck.read_checkpoint(p3)
    np.testing.assert_array_equal(state["model"]["w"], big * 3)
    assert state["_files"]["note.txt"] == b"short"
    # the shared (linked) file was re-linked, never written through: step 2 still verifies
    assert ck.verify_checkpoint(p2) == [] and ck.verify_checkpoint(p3) == []
    assert os.stat(os.path.join(p3, "shared.json")).st_ino == os.stat(os.path.join(p2, "shared.json")).st_ino
    assert sorted(n for n in os.listdir(root) if n.startswith(".")) == []
    # a spare left behind by a crash is cleaned up like a temporary directory
    ck.apply_retention(root, 1, spare=spares)
    assert len(spares) == 1 and os.path.isdir(spares[0])
    assert ck.cleanup_temporaries(root) == [os.path.basename(spares[0])] and not os.path.exists(spares[0])


def test_resume_auto_without_checkpoints_and_errors(tmp_path):
    assert ck.resolve_and_load("auto", str(tmp_path / "none")) is None
    with pytest.raises(ck.CheckpointError, match="--out"):
        ck.resolve_and_load("auto", None)
    with pytest.raises(ck.CheckpointError, match="no such"):
        ck.resolve_and_load(str(tmp_path / "missing"), None)
    _write(tmp_path / "checkpoints", 3)
    # a run directory resolves to its checkpoints/ root
    path, _, _ = ck.resolve_and_load(str(tmp_path), None)
    assert path.endswith("step-00000003")


@pytest.mark.parametrize("enabled", [True, False])
def test_resume_auto_with_no_checkpoint_says_whether_this_run_writes_any(digits, tmp_path, caplog, enabled):
    # (slurm/train.sbatch always passes --resume auto: with checkpointing off, a stop starts over)
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    with caplog.at_level(logging.INFO):
        attach(t, str(tmp_path), {"dir": str(tmp_path), "enabled": enabled}, resume_spec="auto")
    said = [r.getMessage() for r in caplog.records if "no checkpoint in" in r.getMessage()]
    assert len(said) == 1 and "starting from the beginning" in said[0]
    assert ("checkpointing is off in this run" in said[0]) is not enabled, said


# ------------------------------------------------------------------- exact resume
def test_exact_resume_bitwise_mid_epoch_and_epoch_end(digits, tmp_path):
    # dropout, noise augmentation, Adam, per-step warmup, early-stopping state: everything must continue exactly
    full = run_with_checkpoints(LocalCommunicator(), digits, tmp_path / "a", every=1)
    spe = 8  # 300 samples / batch 40
    assert full["step"] == 3 * spe
    for step in (3, spe, spe + 5, 2 * spe):  # mid-epoch, after an epoch's last step, ...
        resumed = resume_run(LocalCommunicator(), digits, tmp_path / f"r{step}",
                             tmp_path / "a" / ck.step_name(step))
        assert_bitwise(full, resumed)


@pytest.mark.parametrize("optimizer", [
    lambda ps: optim.NAdam(ps, lr=3e-3, decoupled_weight_decay=True, weight_decay=1e-2),  # float state mu_product
    lambda ps: optim.ASGD(ps, lr=3e-2, t0=4),  # float state eta and mu, averaging from step 5
    lambda ps: optim.Rprop(ps, lr=1e-3),
    lambda ps: optim.Adafactor(ps, weight_decay=1e-2),  # row_var/col_var: state of another shape than the params'
], ids=["NAdam", "ASGD", "Rprop", "Adafactor"])
def test_exact_resume_bitwise_with_the_added_optimizers(digits, tmp_path, optimizer):
    full = run_with_checkpoints(LocalCommunicator(), digits, tmp_path / "a", every=5, optimizer=optimizer)
    assert full["optimizer"]["state"]  # (it stepped)
    resumed = resume_run(LocalCommunicator(), digits, tmp_path / "r", tmp_path / "a" / ck.step_name(10),
                         optimizer=optimizer)
    assert_bitwise(full, resumed)


def test_exact_resume_bitwise_two_simulated_ranks(digits, tmp_path):
    full = simulate(2, lambda c: run_with_checkpoints(c, digits, tmp_path / "a", every=5))
    for k in full[0]["model"]:
        np.testing.assert_array_equal(full[0]["model"][k], full[1]["model"][k])
    man = ck.read_manifest(str(tmp_path / "a" / ck.step_name(10)))
    assert man["world_size"] == 2 and man["batch_in_epoch"] == 2 and man["global_sample_position"] == 80
    state, _ = ck.read_checkpoint(str(tmp_path / "a" / ck.step_name(10)))
    assert len(state["ranks"]) == 2 and state["ranks"][0]["rng"] != state["ranks"][1]["rng"]
    resumed = simulate(2, lambda c: resume_run(c, digits, tmp_path / "b", tmp_path / "a" / ck.step_name(10)))
    assert_bitwise(full[0], resumed[0])
    assert_bitwise(full[1], resumed[1])


def test_preemption_request_stops_saves_and_resumes_exactly(digits, tmp_path):
    full = final_state(_fit(make_trainer(LocalCommunicator(), digits)))

    class Signal(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.state.global_step == 11:
                preemption.request()  # what the SIGTERM handler does
                preemption.request()  # a second signal changes nothing

    t = make_trainer(LocalCommunicator(), digits, callbacks=[Signal()])
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 1, "keep_best": False})
    with pytest.raises(preemption.Preempted) as info:
        t.fit()
    # the flag is seen at the next step boundary: step 12 is taken, then everyone stops
    assert info.value.step == 12 and info.value.checkpoint.endswith("step-00000012")
    assert info.value.exit_code == preemption.EXIT_PREEMPTED == 75
    assert ck.read_pointer(str(tmp_path)) == "step-00000012"
    # step 8's checkpoint, retired at step 12, is not left behind as a spare by the preempted run
    assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000012"]
    preemption.clear()
    t2 = make_trainer(LocalCommunicator(), digits, callbacks=[Signal()])
    attach(t2, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1}, resume_spec="auto")
    t2.fit()
    assert_bitwise(full, final_state(t2))


@pytest.mark.parametrize("on_error", ["stop", "continue"])
def test_preemption_whose_checkpoint_fails_exits_74_and_keeps_the_previous_one(digits, tmp_path, monkeypatch,
                                                                               on_error):
    # a full disk at the preemption checkpoint: status 74, not 75 (a job script that requeues on 75 would
    # requeue into the same failure, with no progress); the previous checkpoint stays the latest
    class Signal(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.state.global_step == 11:
                preemption.request()

    monkeypatch.setenv(ck.FAULT_ENV, "enospc:model.npz@12")
    t = make_trainer(LocalCommunicator(), digits, callbacks=[Signal()])
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_best": False, "on_error": on_error})
    with pytest.raises(preemption.Preempted) as info:
        t.fit()
    e = info.value
    assert e.step == 12 and e.checkpoint is None and "No space left on device" in e.error
    assert e.exit_code == preemption.EXIT_PREEMPTED_UNSAVED == 74 and "NO checkpoint written" in str(e)
    assert ck.read_pointer(str(tmp_path)) == "step-00000008"
    assert [c.step for c in ck.list_checkpoints(str(tmp_path))] == [8]


@pytest.mark.parametrize("world", [1, 2])
def test_a_signal_a_simulated_rank_sends_stops_the_run_at_the_step_an_mpi_rank_would(digits, tmp_path, monkeypatch,
                                                                                      world):
    # DISTNN_FAULT_SIGNAL_AT=RANK:7 signals the process at step 7. An MPI rank's handler runs in the rank's own
    # thread before it reads the flag: one rank stops after step 7, several after step 8 (the flags ride in
    # step 8's exchange; test_checkpoint_mpi.py). A simulated rank's handler runs in the main thread, later:
    # the rank read the flag a step late, so the run stopped after step 8 (1 rank) or 9 (2 ranks).
    monkeypatch.setenv("DISTNN_FAULT_SIGNAL_AT", f"{world - 1}:7")
    rank0_read_step_7 = threading.Event()
    guard_call = step_guard.StepGuard.__call__

    def call(guard, trainer, loss_sum):
        # 2 ranks: rank 0 reads the flag at step 7 before rank 1 signals (else whether it saw the flag in
        # time would be a race), so only the signalling rank's own reading can stop the run after step 8
        step = trainer.state.global_step + 1
        if guard.world > 1 and guard.rank == 1 and step == 7:
            assert rank0_read_step_7.wait(60)
        skip = guard_call(guard, trainer, loss_sum)
        if guard.rank == 0 and step == 7:
            rank0_read_step_7.set()
        return skip

    monkeypatch.setattr(step_guard.StepGuard, "__call__", call)

    def run(comm):
        t = make_trainer(comm, digits, epochs=2)  # 8 steps an epoch
        attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 0, "keep_last": 0, "keep_best": False})
        with pytest.raises(preemption.Preempted) as info:
            t.fit()
        return info.value.step, t.state.global_step

    with preemption.PreemptionHandler(only_when_watched=True):  # as `distnn train --simulate-ranks` has it
        res = simulate(world, run)
    stop = 7 if world == 1 else 8
    assert res == [(stop, stop)] * world
    assert [c.step for c in ck.list_checkpoints(str(tmp_path))] == [stop]


def _fit(t):
    t.fit()
    return t


@pytest.mark.parametrize("saved,resumed,augment,dropout", [(2, 1, False, 0.0), (1, 2, False, 0.0), (4, 2, False, 0.0),
                                                            (4, 1, False, 0.0), (2, 1, True, 0.2), (1, 3, True, 0.2),
                                                            (4, 2, True, 0.2)])
def test_resume_on_a_different_world_size(digits, tmp_path, saved, resumed, augment, dropout):
    # only the summation order differs from the uninterrupted run (float64, so that "summation tolerance"
    # is tight): the noise augmentation and the dropout masks of a sample are the same on any number of ranks
    kw = dict(dropout=dropout, augment=augment, batch_size=40 if resumed != 3 else 60, dtype=np.float64)

    def world(n, fn):
        return fn(LocalCommunicator()) if n == 1 else simulate(n, fn)[0]

    full = world(saved, lambda c: run_with_checkpoints(c, digits, tmp_path / "a", every=5, **kw))
    res = world(resumed, lambda c: resume_run(c, digits, tmp_path / "b", tmp_path / "a" / ck.step_name(10), **kw))
    assert res["step"] == full["step"]
    for k in full["model"]:
        assert res["model"][k].dtype == np.float64
        np.testing.assert_allclose(res["model"][k], full["model"][k], rtol=1e-10, atol=1e-12, err_msg=k)
    for a, b in zip(full["history"], res["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-10)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-10)


def test_global_batch_must_match_on_resume(digits, tmp_path):
    run_with_checkpoints(LocalCommunicator(), digits, tmp_path, every=0, epochs=1)
    t = make_trainer(LocalCommunicator(), digits, batch_size=20)
    with pytest.raises(ck.CheckpointError, match="global batch of 40"):
        attach(t, str(tmp_path), {"dir": str(tmp_path)}, resume_spec="auto")


def test_checkpoint_of_another_model_is_a_clear_error(digits, tmp_path):
    run_with_checkpoints(LocalCommunicator(), digits, tmp_path, every=0, epochs=1)
    splits = digits[0]
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[16], input_shape=splits.input_shape, num_classes=10)
    t = Trainer(model, Adam(model.parameters()), splits.train.subset(np.arange(300)), comm=LocalCommunicator(),
                batch_size=40, epochs=2)
    with pytest.raises(ck.CheckpointError, match="cannot resume from .*step-00000008.*this config's model") as e:
        attach(t, str(tmp_path), {"dir": str(tmp_path)}, resume_spec="auto")
    assert e.value.report is True


def test_epoch_end_checkpoint_with_agreed_early_stop_does_not_train_on(digits, tmp_path):
    class Stop(Callback):
        def on_epoch_end(self, trainer, logs):
            if trainer.state.epoch == 1:
                trainer.request_stop("test stop")

    t = make_trainer(LocalCommunicator(), digits, epochs=5, callbacks=[Stop()])
    attach(t, str(tmp_path), {"dir": str(tmp_path), "keep_last": 0})
    t.fit()
    assert len(t.history) == 2 and t.state.stopped_early
    t2 = make_trainer(LocalCommunicator(), digits, epochs=5)
    attach(t2, str(tmp_path / "x"), {"dir": str(tmp_path / "x")}, resume_spec=str(tmp_path / ck.step_name(16)))
    t2.fit()
    assert len(t2.history) == 2 and t2.state.global_step == 16


# ------------------------------------------------------------------- policies
def test_policies_every_epoch_keep_last_and_best(digits, tmp_path):
    t = make_trainer(LocalCommunicator(), digits, epochs=4)
    cb = attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 2, "monitor": "val_loss"})
    t.fit()
    names = [c.name for c in ck.list_checkpoints(str(tmp_path))]
    assert all(ck.verify_checkpoint(str(tmp_path / n)) == [] for n in names)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no spare left after training
    best = ck.read_pointer(str(tmp_path), ck.BEST)
    assert best == cb.best_name and best in names
    assert names[-2:] == ["step-00000024", "step-00000032"] and len(names) <= 3
    best_epoch = min(range(4), key=lambda e: t.history[e]["val_loss"])
    assert best == ck.step_name(8 * (best_epoch + 1))
    man = ck.read_manifest(str(tmp_path / best))
    assert man["metrics"]["val_loss"] == pytest.approx(t.history[best_epoch]["val_loss"])


class _Boom(Callback):
    """Raises at the start of epoch ``epoch`` (index): right after the previous epoch's save was handed over."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, trainer):
        if trainer.state.epoch == self.epoch:
            raise RuntimeError("boom in a user callback")


@pytest.mark.parametrize("async_save", [False, True])
def test_an_error_during_fit_leaves_no_spare_and_a_whole_newest_checkpoint(digits, tmp_path, async_save):
    # keep_last 1: the epoch-2 save retires step 8 as the spare; the error comes before the next save uses it
    t = make_trainer(LocalCommunicator(), digits, epochs=5, callbacks=[_Boom(2)])
    cb = attach(t, str(tmp_path), {"dir": str(tmp_path), "keep_last": 1, "keep_best": False,
                                   "async_save": async_save})
    with pytest.raises(RuntimeError, match="boom in a user callback"):
        t.fit()
    assert cb._pending is None or cb._pending is True or cb._pending.done()  # the write in flight was finished
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")], os.listdir(tmp_path)
    assert [c.name for c in ck.list_checkpoints(str(tmp_path))] == ["step-00000016"]
    assert ck.verify_checkpoint(str(tmp_path / "step-00000016")) == []


def test_every_callback_cleans_up_after_an_error_even_when_one_clean_up_fails(digits):
    from distnn.train.callbacks import ProgressBar

    class BadCleanUp(Callback):
        def on_exception(self, trainer, exception):
            raise OSError("clean-up failed too")

    class Seen(Callback):
        def __init__(self):
            self.seen = None

        def on_exception(self, trainer, exception):
            self.seen = exception

    bar, seen = ProgressBar(use_bar=True), Seen()
    t = make_trainer(LocalCommunicator(), digits, epochs=3, callbacks=[bar, BadCleanUp(), _Boom(1), seen])
    with pytest.raises(RuntimeError, match="boom") as e:
        t.fit()
    assert seen.seen is e.value  # the original error, not the failed clean-up's
    assert any("BadCleanUp.on_exception failed: OSError: clean-up failed too" in n for n in e.value.__notes__)
    assert bar.bar is None  # the progress bar was closed before the traceback


def test_async_save_writes_the_same_checkpoints(digits, tmp_path):
    def run(root, async_save):
        t = make_trainer(LocalCommunicator(), digits, epochs=2)
        cb = attach(t, str(root), {"dir": str(root), "every_steps": 3, "keep_last": 0, "async_save": async_save})
        t.fit()
        return cb

    run(tmp_path / "sync", False)
    cb = run(tmp_path / "async", True)
    assert cb._pending is None and cb.saves == len(ck.list_checkpoints(str(tmp_path / "async")))
    for c in ck.list_checkpoints(str(tmp_path / "sync")):
        a, _ = ck.read_checkpoint(c.path)
        b, _ = ck.read_checkpoint(str(tmp_path / "async" / c.name))
        for k in a["model"]:
            np.testing.assert_array_equal(a["model"][k], b["model"][k])
        for i, s in a["optimizer"]["state"].items():  # (written from the live arrays' copies at the save)
            for k, v in s.items():
                np.testing.assert_array_equal(v, b["optimizer"]["state"][i][k])
        assert [r["rng"] for r in a["ranks"]] == [r["rng"] for r in b["ranks"]]


def test_a_model_and_optimizer_whose_state_dict_takes_no_copy_argument_are_checkpointed(digits, tmp_path):
    """A user's override of ``state_dict()`` (without distnn's ``copy=``) is called as written."""
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    calls = []

    class OwnModel(type(t.model)):
        def state_dict(self):
            calls.append("model")
            return super().state_dict()

    class OwnAdam(Adam):
        def state_dict(self):
            calls.append("optimizer")
            return super().state_dict()

    t.model.__class__, t.optimizer.__class__ = OwnModel, OwnAdam
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 0})
    t.fit()
    assert {"model", "optimizer"} <= set(calls)
    state, _ = ck.read_checkpoint(ck.list_checkpoints(str(tmp_path))[-1].path)
    for k, v in t.model.state_dict().items():
        np.testing.assert_array_equal(state["model"][k], v)
    assert state["optimizer"]["state"].keys() == t.optimizer.state_dict()["state"].keys()


@pytest.mark.parametrize("async_save", [False, True])
def test_checkpoint_npz_files_have_valid_crcs_and_checksums(digits, tmp_path, monkeypatch, async_save):
    import zipfile

    # every npz file on the hashing threads (the digits MLP's files are smaller than the default threshold)
    monkeypatch.setattr(hashing, "PARALLEL_HASH_BYTES", 1)
    t = make_trainer(LocalCommunicator(), digits, epochs=2)
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_steps": 3, "keep_last": 0, "async_save": async_save})
    t.fit()
    cps = ck.list_checkpoints(str(tmp_path))
    assert len(cps) >= 5
    for c in cps:
        assert ck.verify_checkpoint(c.path) == []
        for name in ("model.npz", "optimizer.npz"):
            with zipfile.ZipFile(os.path.join(c.path, name)) as z:
                assert z.testzip() is None, (c.name, name)  # the CRC-32s were filled before the write


def test_a_failed_write_returns_only_after_the_hashing_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "PARALLEL_HASH_BYTES", 1)
    monkeypatch.setenv(ck.FAULT_ENV, "enospc:b.npz")
    done = []

    def slow_prepare():
        import time

        time.sleep(0.2)
        done.append(True)

    files = {"a.npz": b"x" * 1000, "b.npz": b"y" * 1000, "c.npz": b"z" * 1000}
    with pytest.raises(ck.CheckpointError, match=r"b\.npz.*No space left"):
        ck.write_checkpoint(str(tmp_path), 5, files, prepare={"c.npz": slow_prepare})
    assert done == [True]  # c.npz's preparation (it writes into the caller's buffer) had finished
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("async_save", [False, True])
def test_on_error_stop_and_continue(digits, tmp_path, monkeypatch, caplog, async_save):
    monkeypatch.setenv(ck.FAULT_ENV, "enospc:optimizer.npz@16")

    def run(policy):
        t = make_trainer(LocalCommunicator(), digits, epochs=3)
        root = tmp_path / policy
        attach(t, str(root), {"dir": str(root), "on_error": policy, "async_save": async_save})
        return t, root

    t, root = run("stop")
    with pytest.raises(ck.CheckpointError, match=r"optimizer\.npz.*No space left.*on_error"):
        t.fit()
    assert ck.read_pointer(str(root)) == "step-00000008"
    assert [c.name for c in ck.list_checkpoints(str(root))] == ["step-00000008"]
    assert not [n for n in os.listdir(root) if n.startswith(".tmp")]
    t, root = run("continue")
    with caplog.at_level(logging.WARNING, logger="distnn"):
        t.fit()
    assert len(t.history) == 3
    assert [c.name for c in ck.list_checkpoints(str(root))] == ["step-00000008", "step-00000024"]
    assert any("No space left" in r.getMessage() for r in caplog.records)


def _done_when_ended(job):
    """``Job.done`` for tests: waits for the write to end, so "ended by the next step" needs no timing."""
    job.result()
    return True


@pytest.mark.parametrize("world,data_parallel", [(1, True), (2, True), (2, False)])
def test_async_failure_is_agreed_a_step_after_the_write_ends(digits, tmp_path, monkeypatch, world, data_parallel):
    # 8 steps per epoch: the epoch-2 save (step 16) fails in the background, and the write has ended by
    # the next step's end: rank 0's look at it waits for its end (a 10 ms sleep a step used to stand for
    # that, and a write slowed by a busy machine was agreed a step or two later). Agreed at step 17
    # (1 rank) or 18 (2 ranks: rank 0 says so at step 17's end, in step 18's gradient exchange, or
    # without DataParallel in the step guard's allgather), on every rank alike; before, at the next save (24).
    monkeypatch.setenv(ck.FAULT_ENV, "enospc:optimizer.npz@16")
    monkeypatch.setattr(background_writer.Job, "done", _done_when_ended)

    def run(comm):
        t = make_trainer(comm, digits, epochs=3, subset=320, data_parallel=data_parallel)
        root = tmp_path / f"w{world}{data_parallel}"
        attach(t, str(root), {"dir": str(root), "async_save": True, "keep_last": 0})
        with pytest.raises(ck.CheckpointError, match=r"optimizer\.npz.*No space left.*background from global step 16"
                                                      r"; agreed at step (\d+)\)") as e:
            t.fit()
        if comm.rank == 0:
            assert [c.name for c in ck.list_checkpoints(str(root))] == ["step-00000008"]
        return t.state.global_step, str(e.value)

    res = simulate(world, run) if world > 1 else [run(LocalCommunicator())]
    assert len({step for step, _ in res}) == 1  # the same step on every rank
    assert res[0][0] == 16 + world, res
    assert f"agreed at step {16 + world})" in res[0][1]


class _Score(Callback):
    """Puts a scripted ``score`` into the epoch metrics (before the checkpoint callback reads them)."""

    def __init__(self, values):
        self.values = values

    def on_epoch_end(self, trainer, logs):
        logs["score"] = self.values[trainer.state.epoch]


@pytest.mark.parametrize("async_save", [False, True])
def test_a_failed_save_of_an_improvement_does_not_become_the_best(digits, tmp_path, monkeypatch, async_save):
    monkeypatch.setenv(ck.FAULT_ENV, "enospc:model.npz@16")  # epoch 2, the new best score, is not written
    t = make_trainer(LocalCommunicator(), digits, epochs=4, callbacks=[_Score([3.0, 1.0, 2.0, 2.5])])
    cb = attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 1, "monitor": "score",
                                   "mode": "min", "on_error": "continue", "async_save": async_save})
    t.fit()
    # epoch 3 (score 2) is the best that was written: it is kept and pointed at, not the failed step 16
    assert (cb.best, cb.best_name) == (2.0, "step-00000024")
    assert ck.read_pointer(str(tmp_path), ck.BEST) == "step-00000024"
    assert [c.name for c in ck.list_checkpoints(str(tmp_path))] == ["step-00000024", "step-00000032"]


# ------------------------------------------------------------------- non-finite values
def test_nonfinite_on_one_rank_is_skipped_on_every_rank(digits, monkeypatch):
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "1:4")

    def run(comm, policy):
        t = make_trainer(comm, digits, epochs=1)
        attach(t, "unused", {"enabled": False}, nonfinite=policy)
        t.fit()
        return t.state.skipped_steps, t.model.state_dict(), t.step_guard.last_bad_ranks

    res = simulate(2, run, "skip")
    assert res[0][0] == res[1][0] == 1
    for k in res[0][1]:
        assert np.isfinite(res[0][1][k]).all()
        np.testing.assert_array_equal(res[0][1][k], res[1][1][k])  # replicas stay equal
    with pytest.raises(step_guard.NonFiniteError, match=r"step 4 \(epoch 1, batch 4\) on rank\(s\) \[1\]"):
        simulate(2, run, "error")


def test_fault_switches_name_the_jobs_ranks_inside_a_group(digits, monkeypatch):
    # an ensemble member trains on its group's communicator: RANK in DISTNN_FAULT_*_AT is still the job's rank
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "1:4")

    def run(comm):
        group = comm.split(comm.rank)  # one rank per group: rank 0 of its group on both
        t = make_trainer(group, digits, epochs=1)
        attach(t, "unused", {"enabled": False}, nonfinite="skip")
        t.fit()
        return group.rank, group.world_rank, t.state.skipped_steps

    assert simulate(2, run) == [(0, 0, 0), (0, 1, 1)]


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_nonfinite_loss_with_finite_gradients_on_one_rank_is_skipped_on_every_rank(digits, monkeypatch,
                                                                                      accumulation_steps):
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_LOSS_AT", "1:3")  # rank 1's loss is NaN, its gradients are not

    def run(comm, policy):
        t = make_trainer(comm, digits, epochs=1, accumulation_steps=accumulation_steps)
        attach(t, "unused", {"enabled": False}, nonfinite=policy)
        t.fit()
        return t.state.skipped_steps, t.model.state_dict(), t.step_guard.last_bad_ranks, t.history[-1]

    res = simulate(2, run, "skip")
    assert res[0][0] == res[1][0] == 1 and res[0][2] == res[1][2] == [1]
    assert math.isfinite(res[0][3]["train_loss"])  # the skipped step's loss is not counted
    for k in res[0][1]:
        np.testing.assert_array_equal(res[0][1][k], res[1][1][k])  # replicas stay equal
    with pytest.raises(step_guard.NonFiniteError, match=r"step 3 \(epoch 1, batch 3\) on rank\(s\) \[1\]"):
        simulate(2, run, "error")


def test_too_many_consecutive_nonfinite_steps_is_an_error(digits, monkeypatch):
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "0:2,0:3,0:5,0:6,0:7")
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    attach(t, "unused", {"enabled": False}, nonfinite="skip", max_nonfinite=3)
    with pytest.raises(step_guard.NonFiniteError, match=r"step 7 .* 3 steps in a row \(train.max_nonfinite = 3\)"):
        t.fit()
    assert t.state.skipped_steps == 4


def test_attach_rejects_unknown_options(digits):
    t = make_trainer(LocalCommunicator(), digits)
    with pytest.raises(ValueError, match="every_step\\b.*known keys"):
        attach(t, "x", {"every_step": 3})
    with pytest.raises(ValueError, match="on_error"):
        attach(t, "x", {"on_error": "ignore"})
    with pytest.raises(ValueError, match="nonfinite"):
        attach(t, "x", {"enabled": False}, nonfinite="maybe")


# ------------------------------------------------------------------- the CLI
def test_cli_train_checkpoints_and_evaluate_predict_read_them(tmp_path, capsys, digits):
    from distnn.cli import main

    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--simulate-ranks", "2", "--quiet", "--set", "train.epochs=2",
            "--set", "run.plots=false"]
    assert main(args) == 0
    cps = ck.list_checkpoints(str(run / "checkpoints"))
    assert [c.step for c in cps] == [20, 40]  # digits_mlp: 1257 samples, global batch 64; every epoch
    man = ck.read_manifest(cps[0].path)
    assert man["world_size"] == 2 and man["global_batch_size"] == 64 and man["epoch_end"]
    assert {"model.npz", "optimizer.npz", "trainer.json", "model.json", "config.toml"} <= set(man["files"])
    capsys.readouterr()
    assert main(["evaluate", cps[0].path]) == 0
    assert "accuracy" in capsys.readouterr().out
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=digits[0].test.x[:5])
    assert main(["predict", cps[0].path, "--input", str(inputs), "--output", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 6
    # the same checkpoint resumed (a finished run: nothing left to train) gives the same final model
    assert main(args + ["--resume", "auto"]) == 0
    # a corrupt checkpoint is refused with the file named
    target = os.path.join(cps[0].path, "model.npz")
    data = bytearray(open(target, "rb").read())
    data[-30] ^= 1
    open(target, "wb").write(bytes(data))
    capsys.readouterr()
    assert main(["evaluate", cps[0].path]) == 2
    assert "model.npz fails its SHA-256 check" in capsys.readouterr().err
    assert main(["train", "--resume", "auto"]) == 2
    assert "--out RUN_DIR" in capsys.readouterr().err


def test_cli_resume_path_continues_from_that_checkpoint_bitwise(tmp_path, capsys):
    from distnn.cli import main

    def args(out, *extra):
        return ["train", "--out", str(out), "--simulate-ranks", "2", "--quiet", "--set", "train.epochs=3",
                "--set", "run.plots=false", *extra]

    assert main(args(tmp_path / "full")) == 0
    first = ck.list_checkpoints(str(tmp_path / "full" / "checkpoints"))[0]
    assert first.step == 40  # after epoch 2 of 3 (retention removed epoch 1's)
    capsys.readouterr()
    assert main(args(tmp_path / "resumed", "--resume", first.path)) == 0
    assert f"resumed from {first.path}" in capsys.readouterr().err
    with np.load(tmp_path / "full" / "model.npz") as a, np.load(tmp_path / "resumed" / "model.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert [c.step for c in ck.list_checkpoints(str(tmp_path / "resumed" / "checkpoints"))] == [60]


# ------------------------------------------------------------------- resuming an older checkpoint of the run
@pytest.mark.parametrize("best,expected", [("step-00000010", "step-00000010"), (None, None)])
def test_discarding_newer_checkpoints_re_points_best(tmp_path, best, expected):
    # `best` kept naming a checkpoint moved aside, so `evaluate RUN/checkpoints/best` failed
    for step in (10, 20, 30):
        _write(tmp_path, step)
    ck.write_pointer(str(tmp_path), ck.BEST, "step-00000030")
    assert ck.discard_newer(str(tmp_path), 10, best=best) == ["step-00000020", "step-00000030"]
    assert ck.read_pointer(str(tmp_path)) == "step-00000010"
    assert ck.read_pointer(str(tmp_path), ck.BEST) == expected
    assert os.path.exists(tmp_path / ck.BEST) == (expected is not None)


@pytest.mark.parametrize("latest", ["step-00000010", None])
def test_discarding_newer_checkpoints_is_durable(tmp_path, monkeypatch, latest):
    # the renames aside were made durable only by a pointer's rewrite: where no pointer named a moved
    # checkpoint (latest gone, or naming an older one), a power loss brought the abandoned future back
    import stat

    for step in (10, 20, 30):
        _write(tmp_path, step)
    if latest is None:
        os.remove(tmp_path / ck.LATEST)
    else:
        ck.write_pointer(str(tmp_path), ck.LATEST, latest)
    log = []
    fsync, rename = os.fsync, os.rename

    def spied_fsync(fd):
        st = os.fstat(fd)
        log.append(("fsync", st.st_ino, stat.S_ISDIR(st.st_mode)))
        return fsync(fd)

    def spied_rename(src, dst):
        log.append(("rename", dst))
        return rename(src, dst)

    monkeypatch.setattr(os, "fsync", spied_fsync)
    monkeypatch.setattr(os, "rename", spied_rename)
    assert ck.discard_newer(str(tmp_path), 10) == ["step-00000020", "step-00000030"]
    last = max(i for i, ev in enumerate(log) if ev[0] == "rename")
    assert ("fsync", os.stat(tmp_path).st_ino, True) in log[last + 1:]


def test_resuming_an_older_checkpoint_through_a_symlink_moves_the_newer_ones_aside(digits, tmp_path):
    run_with_checkpoints(LocalCommunicator(), digits, tmp_path / "a", every=4)
    os.symlink(tmp_path / "a", tmp_path / "link")
    t = make_trainer(LocalCommunicator(), digits)
    attach(t, str(tmp_path / "a"), {"dir": str(tmp_path / "a"), "every_steps": 0, "keep_last": 0},
           resume_spec=str(tmp_path / "link" / ck.step_name(8)))
    t.callbacks.on_train_begin(t)  # (where the newer ones are moved aside)
    left = sorted(n for n in os.listdir(tmp_path / "a") if n.startswith("step-"))
    assert left == ["step-00000004", "step-00000008"], left
    assert any(n.startswith("discarded-step-00000012") for n in os.listdir(tmp_path / "a"))


@pytest.mark.parametrize("make", [lambda m: ModelCheckpoint("unused", monitor=m),
                                  lambda m: EarlyStopping(monitor=m)], ids=["checkpoint", "early-stopping"])
def test_a_resumed_run_with_another_monitored_metric_tracks_its_best_afresh(make):
    # the best val_loss (1.01) was compared with val_accuracy values: no accuracy below 1.01 ever improved
    saved = make("val_loss")
    saved.best, saved.best_name = 1.01, "step-00000040"
    if isinstance(saved, EarlyStopping):
        saved.best_epoch, saved.wait = 4, 3
    state = saved.state_dict()
    same = make("val_loss")
    same.load_state_dict(state)
    assert same.best == 1.01
    other = make("val_accuracy")
    other.load_state_dict(state)
    assert other.best in (None, -math.inf)
    if isinstance(other, EarlyStopping):
        assert other.wait == 0 and other.best_epoch == -1
        assert other.improved(0.5)


def test_a_failed_rename_in_a_same_step_rewrite_puts_the_old_checkpoint_back(tmp_path, monkeypatch):
    # rewriting step 20 moves the old one aside first; if the new one cannot be renamed in, the old goes back
    _write(tmp_path, 10)
    old = _write(tmp_path, 20, payload=b"old")
    real = os.rename

    def rename(src, dst):
        if os.path.basename(str(src)).startswith(".tmp-step-"):
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(ck.CheckpointError, match="Input/output error"):
        _write(tmp_path, 20, payload=b"new")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000010", "step-00000020"]
    assert ck.verify_checkpoint(old) == [] and ck.read_pointer(str(tmp_path)) == "step-00000020"
    assert ck.read_checkpoint(old)[0]["_files"]["note.txt"] == b"old"


def test_a_crash_between_the_renames_of_a_same_step_rewrite_loses_nothing(digits, tmp_path):
    # killed after step-24 was moved aside and before its rewrite was renamed in: --resume auto used to start
    # from step 20 and the cleanup then deleted both copies of step 24
    full = run_with_checkpoints(LocalCommunicator(), digits, tmp_path / "a", every=4)
    root = tmp_path / "a"
    os.rename(root / "step-00000024", root / ".trash-step-00000024-0badc0de")
    shutil.copytree(root / ".trash-step-00000024-0badc0de", root / ".tmp-step-00000024-123-0badf00d")
    t = make_trainer(LocalCommunicator(), digits)
    cb = attach(t, str(root), {"dir": str(root), "every_steps": 4, "keep_last": 0}, resume_spec="auto")
    assert cb.resumed_from[1] == 24
    t.fit()
    assert_bitwise(full, final_state(t))
    assert not [n for n in os.listdir(root) if n.startswith(".")]
