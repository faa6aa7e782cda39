"""The training history in chunk files: a save writes a bounded amount of it, however long the run.

Before format 2 every checkpoint held the whole history in ``trainer.json``, rewritten, hashed
and fsynced at every save: quadratic in the number of epochs when saving every epoch.
"""
import json
import os

import numpy as np
import pytest

import distnn
from distnn.data import load_dataset
from distnn.distributed import LocalCommunicator
from distnn.models import build_model
from distnn.optim import Adam
from distnn.train import checkpoint as ck
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.checkpoint import state as ck_state
from distnn.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

RECORD = {"epoch": 0, "train_loss": 2.5, "val_loss": float("nan"), "lr": 0.05, "note": "x"}


def _inode(path, name):
    return os.stat(os.path.join(path, name)).st_ino


def _history_in_trainer_json(path):
    with open(os.path.join(path, ck.TRAINER_JSON)) as f:
        return json.load(f)["history"]


def test_whole_chunks_are_written_once_then_linked_and_trainer_json_stays_small(tmp_path):
    root = str(tmp_path)
    state = {"model": {"w": np.zeros(3, np.float32)}, "history": []}
    ser = ck.Serializer({"model.json": "{}"}, history_chunk=3)
    paths = []
    for epoch in range(11):
        state["history"].append(dict(RECORD, epoch=epoch + 10))  # (records of one width)
        state["model"]["w"] += 1
        files = ser(state)
        # the same bytes as the plain serializer: the cache changes nothing on disk
        assert {k: bytes(v) for k, v in files.items()} == {
            k: bytes(v) for k, v in ck.serialize(state, {"model.json": "{}"}, history_chunk=3).items()}
        paths.append(ck.write_checkpoint(root, epoch, files, reuse=ser.reuse))
        ser.note_written(paths[-1])
        got, man = ck.read_checkpoint(paths[-1])
        assert json.dumps(got["history"]) == json.dumps(state["history"])  # (NaN included)
        assert sorted(got["_files"]) == ["model.json"]
        assert sorted(n for n in man["files"] if n.startswith("history-")) == [
            ck_state.chunk_name(k) for k in range((epoch + 1) // 3)]
        tail = _history_in_trainer_json(paths[-1])
        assert len(tail if isinstance(tail, list) else tail["tail"]) == (epoch + 1) % 3
    # each whole chunk was written once, by the first checkpoint that had it, and linked from then on
    for k, first in enumerate((2, 5, 8)):
        name = ck_state.chunk_name(k)
        assert {_inode(p, name) for p in paths[first:]} == {_inode(paths[first], name)}
    assert len({_inode(p, "model.npz") for p in paths}) == 11
    # trainer.json no longer grows with the run: the same tail, and only a chunk's name more for 3 epochs
    sizes = [os.path.getsize(os.path.join(p, ck.TRAINER_JSON)) for p in paths]
    assert sizes[10] - sizes[7] == sizes[7] - sizes[4] == len(',"history-000001.json"')


def test_a_changed_old_record_rewrites_its_chunk_and_leaves_older_checkpoints_alone(tmp_path):
    root = str(tmp_path)
    state = {"history": [dict(RECORD, epoch=e) for e in range(7)]}
    ser = ck.Serializer(history_chunk=3)
    first = ck.write_checkpoint(root, 1, ser(state), reuse=ser.reuse)
    ser.note_written(first)
    state["history"][1]["lr"] = 9.0            # a record in chunk 0 changed (a rewound run's history, say)
    second = ck.write_checkpoint(root, 2, ser(state), reuse=ser.reuse)
    ser.note_written(second)
    name0, name1 = ck_state.chunk_name(0), ck_state.chunk_name(1)
    assert _inode(first, name0) != _inode(second, name0)   # written anew, not through the link
    assert _inode(first, name1) == _inode(second, name1)   # unchanged: still linked
    assert ck.read_checkpoint(first)[0]["history"][1]["lr"] == 0.05
    assert ck.read_checkpoint(second)[0]["history"][1]["lr"] == 9.0
    del state["history"][4:]                   # shorter: chunk 1 is no longer whole
    third = ck.write_checkpoint(root, 3, ser(state), reuse=ser.reuse)
    got, man = ck.read_checkpoint(third)
    assert len(got["history"]) == 4 and name1 not in man["files"]
    assert ck.verify_checkpoint(first) == [] and ck.verify_checkpoint(second) == []


def test_a_damaged_or_missing_history_chunk_is_named(tmp_path):
    state = {"history": [dict(RECORD, epoch=e) for e in range(5)]}
    good = ck.write_checkpoint(str(tmp_path), 1, ck.serialize(state, history_chunk=2))
    bad = ck.write_checkpoint(str(tmp_path), 2, ck.serialize(state, history_chunk=2))
    chunk = os.path.join(bad, ck_state.chunk_name(1))
    data = bytearray(open(chunk, "rb").read())
    data[5] ^= 1
    open(chunk, "wb").write(data)
    problems = ck.verify_checkpoint(bad)
    assert len(problems) == 1 and "history-000001.json fails its SHA-256 check" in problems[0]
    warnings = []
    path, got, _ = ck.load_latest_valid(str(tmp_path), warnings.append)
    assert path == good and len(got["history"]) == 5
    assert "history-000001.json" in warnings[0]
    # trainer.json naming a chunk the manifest does not list (written by something else): corrupt, named
    files = ck.serialize(state, history_chunk=2)
    del files[ck_state.chunk_name(0)]
    odd = ck.write_checkpoint(str(tmp_path), 3, files)
    with pytest.raises(ck.CorruptCheckpointError, match="history file history-000000.json is not listed"):
        ck.read_checkpoint(odd)


def _trainer(splits, epochs):
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[16], dropout=0.2, input_shape=splits.input_shape, num_classes=10)
    return Trainer(model, Adam(model.parameters(), lr=3e-3), splits.train.subset(np.arange(64)),
                   splits.val.subset(np.arange(64)), comm=LocalCommunicator(), batch_size=32, epochs=epochs, seed=3)


@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async"])
def test_a_long_run_links_its_history_and_resumes_exactly(tmp_path, monkeypatch, async_save):
    monkeypatch.setattr(ck_state, "HISTORY_CHUNK", 4)  # a long run's history in a few epochs
    splits = load_dataset("digits")
    whole = _trainer(splits, 15)
    options = {"every_epochs": 1, "keep_last": 3, "keep_best": False, "async_save": async_save}
    attach(whole, str(tmp_path / "a"), {"dir": str(tmp_path / "a"), **options})
    whole.fit()
    kept = ck.list_checkpoints(str(tmp_path / "a"))
    assert [c.step for c in kept] == [26, 28, 30]  # 2 steps an epoch; older ones retired (and recycled)
    for c in kept:
        assert ck.verify_checkpoint(c.path) == []
        history = _history_in_trainer_json(c.path)
        assert history["__chunks__"] == [ck_state.chunk_name(k) for k in range(3)] and len(history["tail"]) < 4
    for k in range(3):  # whole chunks shared by the kept checkpoints
        assert len({_inode(c.path, ck_state.chunk_name(k)) for c in kept}) == 1
    # resuming from the oldest kept one (13 epochs: 3 chunks and a record) ends where the whole run did
    resumed = _trainer(splits, 15)
    attach(resumed, str(tmp_path / "b"), {"dir": str(tmp_path / "b"), **options}, resume_spec=kept[0].path)
    assert json.dumps(resumed.history) == json.dumps(whole.history[:13])  # as it was, timings included
    resumed.fit()
    untimed = [[{k: v for k, v in r.items() if k not in ("samples_per_sec", "wall_time")} for r in t.history]
               for t in (resumed, whole)]
    assert json.dumps(untimed[0]) == json.dumps(untimed[1])
    for k, v in whole.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[k], v, err_msg=k)


@pytest.mark.parametrize("old,new", [(1, 1.0), (1, True), (0.0, -0.0), ("ab", "".join(["a", "b"]))],
                         ids=["int-float", "int-bool", "zero-sign", "equal-str"])
def test_an_old_record_value_replaced_by_an_equal_one_is_saved_as_it_is_now(old, new):
    state = {"history": [dict(RECORD, epoch=e, lr=old) for e in range(9)]}
    ser = ck.Serializer(history_chunk=4)
    ser(state)
    state["history"][2]["lr"] = new            # equal to the old value, not the same object
    got = {k: bytes(v) for k, v in ser(state).items()}
    assert got == {k: bytes(v) for k, v in ck.serialize(state, history_chunk=4).items()}


def test_a_format_1_checkpoint_with_its_whole_history_inline_still_reads(tmp_path):
    state = {"model": {"w": np.arange(3.0)}, "history": [dict(RECORD, epoch=e) for e in range(300)]}
    files = ck.serialize(state, history_chunk=10**9)      # format 1's layout: no chunk files
    assert isinstance(json.loads(files[ck.TRAINER_JSON])["history"], list)
    path = ck.write_checkpoint(str(tmp_path), 1, files, {"version": 1})
    got, man = ck.read_checkpoint(path)
    assert man["version"] == 1 and json.dumps(got["history"]) == json.dumps(state["history"])
    ser = ck.Serializer()                                  # a resumed run's next save: format 2 or later
    assert ck_state.chunk_name(0) in ser(got) and ck.VERSION >= 2
