"""``Serializer(..., text=False)``: trainer.json's text made later (by the background writer, off the training
thread) must be the bytes made at the save point, whatever training changes meanwhile.

The oracle is :func:`distnn.train.checkpoint.serialize` (no cache, text made at once) on the state as it was.
"""
import copy
import json

import numpy as np
import pytest

from distnn.train import checkpoint as ck

EXTRA = {"model.json": '{"arch": "mlp"}', "config.toml": "[train]\nepochs = 3\n"}


def _state(epochs: int):
    history = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": float("inf") if e == 2 else 0.5, "lr": 0.05}
               for e in range(epochs)]
    return {"state": {"epoch": epochs - 1, "global_step": 10 * epochs, "epoch_sums": {"loss": 3.5, "count": 8.0}},
            "history": history, "model": {"w": np.arange(6.0).reshape(2, 3), "b": np.ones(3)},
            "optimizer": {"state": {0: {"momentum_buffer": np.full((2, 3), 0.5)}}, "param_groups": [{"lr": 0.05}]},
            "callbacks": {"lr_schedule": {"base_lrs": [0.05], "last_epoch": epochs}},
            "ranks": [{"rng": {"state": 2 ** 100 + r}, "stop_requested": False} for r in range(2)]}


def _bytes(files):
    return {name: bytes(data) for name, data in files.items()}


@pytest.mark.parametrize("chunk", [None, 4])
@pytest.mark.parametrize("epochs", [1, 3, 9])
def test_text_made_later_is_the_text_of_the_state_at_the_call(chunk, epochs):
    ser = ck.Serializer(EXTRA, history_chunk=chunk)
    for e in range(1, epochs + 1):  # (a serializer that has seen earlier saves: its cached records and chunks)
        state = _state(e)
        expected = _bytes(ck.serialize(copy.deepcopy(state), EXTRA, history_chunk=chunk))
        files = ser(state, text=False)
        assert isinstance(files[ck.TRAINER_JSON], ck.PendingText)
        with pytest.raises(TypeError):
            memoryview(files[ck.TRAINER_JSON])  # (never written by mistake as it is)
        # training goes on before the writer makes the text: the state's values and containers change
        state["history"].append({"epoch": 99, "train_loss": 0.0, "val_loss": 0.0, "lr": 0.0})
        state["history"][0]["lr"] = 1.0
        state["state"]["global_step"] += 1
        state["state"]["epoch_sums"]["loss"] = -1.0
        state["callbacks"]["lr_schedule"]["base_lrs"].append(0.1)
        state["ranks"][1]["rng"]["state"] = 0
        state["model"]["w"] += 100
        ck.fill_text(files)
        assert _bytes(files) == expected
        assert json.loads(files[ck.TRAINER_JSON])["state"]["global_step"] == 10 * e


def test_fill_text_leaves_finished_files_alone():
    ser = ck.Serializer(EXTRA)
    files = ser(_state(2))  # (text=True: made at once, as before)
    assert isinstance(files[ck.TRAINER_JSON], bytes)
    before = _bytes(files)
    ck.fill_text(files)
    assert _bytes(files) == before == _bytes(ck.serialize(_state(2), EXTRA))
