"""Checkpoints in one process, the format and its atomicity: exact encoding, write/verify/latest, durability
before a name points at a file (fsync, syncfs), failed writes and preemption mid-write leaving no partial
checkpoint, linked unchanged files, retention and recycling, same-step rewrites that fail or crash."""
import json
import os
import shutil
import signal

import numpy as np
import pytest

from distnn.distributed import LocalCommunicator
from distnn.train import checkpoint as ck
from distnn.train.checkpoint import fsio
from distnn.train import preemption
from distnn.train.callbacks.checkpoint_setup import attach

from checkpoint_runs import write_step, assert_bitwise, digits, final_state, make_trainer, run_with_checkpoints


pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


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


def test_write_verify_and_latest(tmp_path):
    p1 = write_step(tmp_path, 10)
    p2 = write_step(tmp_path, 20)
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
    write_step(tmp_path, 20, b"y")
    assert ck.read_checkpoint(p2)[0]["_files"]["note.txt"] == b"y"


@pytest.mark.parametrize("again", [False, True], ids=["new step", "same step again"])
def test_every_file_is_durable_before_a_name_points_at_it(tmp_path, monkeypatch, again):
    # The commit protocol, from the calls it makes: each file (manifest and pointer included) is fsynced,
    # after its write-back was started with all the others' (Linux), before the directory is renamed or
    # the pointer replaced; one fsync of the root follows both renames; a replaced checkpoint of the
    # same step is removed only after that fsync.
    if again:
        write_step(tmp_path, 20, b"old")
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
    write_step(tmp_path, 20)
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
    path = write_step(tmp_path, 20)
    monkeypatch.undo()
    assert events == [("syncfs",), ("rename", "step-00000020"), ("replace", "latest"), ("fsync",)], events
    assert ck.verify_checkpoint(path) == [] and ck.read_pointer(str(tmp_path)) == "step-00000020"


def test_failed_write_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    write_step(tmp_path, 10)
    for fault in ("enospc:model.npz", "enospc:manifest.json", "enospc"):
        monkeypatch.setenv(ck.FAULT_ENV, f"{fault}@20")
        with pytest.raises(ck.CheckpointError, match="No space left on device"):
            write_step(tmp_path, 20)
        assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000010"]
        assert ck.read_pointer(str(tmp_path)) == "step-00000010"
    # the same when the write recycles a retired checkpoint: the spare is used up, nothing else is touched
    write_step(tmp_path, 15)
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
        write_step(blocker / "sub", 5)


def test_a_preemption_signal_in_the_middle_of_a_write_leaves_it_complete(tmp_path, monkeypatch):
    monkeypatch.setenv(ck.FAULT_ENV, "signal_after:model.npz@20")  # SIGTERM between two files of step 20
    write_step(tmp_path, 10)
    with preemption.PreemptionHandler():
        write_step(tmp_path, 20)
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
        write_step(tmp_path, s)
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


def test_a_failed_rename_in_a_same_step_rewrite_puts_the_old_checkpoint_back(tmp_path, monkeypatch):
    # rewriting step 20 moves the old one aside first; if the new one cannot be renamed in, the old goes back
    write_step(tmp_path, 10)
    old = write_step(tmp_path, 20, payload=b"old")
    real = os.rename

    def rename(src, dst):
        if os.path.basename(str(src)).startswith(".tmp-step-"):
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(ck.CheckpointError, match="Input/output error"):
        write_step(tmp_path, 20, payload=b"new")
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
