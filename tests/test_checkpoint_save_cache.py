"""What a checkpoint save keeps from one save to the next (to hold training up less) changes nothing on disk.

The :class:`~distnn.train.checkpoint.Serializer` of a checkpoint callback reuses, between saves, the
JSON text of the history's records (and its encoder), and the state capture skips copies and lookups for plain values. The oracle throughout:
the bytes a fresh :func:`~distnn.train.checkpoint.serialize` makes of the same state.
"""
from collections import OrderedDict
import copy
import dataclasses
import os

import numpy as np
import pytest

import distnn
from distnn import nn
from distnn import random as dn_random
from distnn.data import load_dataset
from distnn.distributed import LocalCommunicator
from distnn.models import build_model
from distnn.optim import SGD
from distnn.optim.lr_scheduler import StepLR
from distnn.train import checkpoint as ck
from distnn.train.callbacks import LRSchedulerCallback
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.trainer import Trainer
from distnn.train.trainer_state import TrainState, _fields_of

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

EXTRA = {"model.json": "{}"}


def _bytes(files):
    return [(name, bytes(data)) for name, data in files.items()]  # (in order: the manifest lists them so)


def _check(ser, state, chunk=None):
    """``ser``'s files of ``state`` are a fresh serializer's, byte for byte and in the same order."""
    assert isinstance(state.get("history"), list)  # (the serializer's caches are for a history of records)
    got = _bytes(ser(state))
    assert got == _bytes(ck.serialize(state, EXTRA, history_chunk=chunk))
    return got


def _model(*names, scale=1.0):
    return OrderedDict((n, np.full(3, scale, np.float32)) for n in names)


def _state(model, opt_state, history=()):
    return {"state": {"epoch": 1}, "history": list(history), "model": model,
            "optimizer": {"state": opt_state, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
            "rng": {"x": np.arange(2)}}


def _momentum(*keys, scale=1.0):
    return {k: {"momentum_buffer": np.full(2, scale)} for k in keys}


def test_dicts_of_arrays_whose_keys_types_or_places_change_are_saved_as_they_are_now():
    ser = ck.Serializer(EXTRA)
    states = [
        _state(_model("0.weight", "0.bias"), _momentum(0, 1)),
        _state(_model("0.weight", "0.bias", scale=2), _momentum(0, 1, scale=3)),   # new arrays, same keys
        _state(_model("0.weight", "0.bias", "2.weight"), _momentum(0, 1, 2)),     # a layer more
        _state(_model("0.bias", "0.weight"), _momentum(1, 0)),                     # another order
        _state(_model("0.weight", "0.bias"), _momentum("0", "1")),                 # str keys for int keys
        _state(_model("0.weight", "0.bias"), _momentum(1)),
        _state(_model("0.weight", "0.bias"), _momentum(True)),                     # a bool key for 1
        _state(_model("0.weight", "0.bias"), {0: {"step": 3, "exp_avg": np.ones(2)}}),  # a scalar among them
        _state(_model("0.weight", "__x"), _momentum(0, 1)),                        # a key spelled as __dict__
        _state({"0.weight": np.float32(1.5), "0.bias": np.ones(1)}, _momentum(0)),  # a numpy scalar
        _state({"0.weight": [np.ones(1)], "0.bias": np.ones(1)}, _momentum(0)),    # a list of arrays
        _state({"0.weight": np.ones(1), "0.bias": {}}, _momentum(0)),              # an empty dict
        _state(_model("0.weight", "0.bias"), {0: {"momentum_buffer": np.ones(2, np.float16)}}),  # a dtype
        _state(_model("0.weight", "0.bias"), _momentum(0, 1)),                     # the first one again
    ]
    for state in states:
        _check(ser, state)
    for state in reversed(states):
        _check(ser, state)


def test_a_dict_of_arrays_of_the_same_keys_in_another_place_is_saved_there():
    ser = ck.Serializer(EXTRA)
    for where in ("a", "b", "a"):               # the same keys under another name: its arrays' keys are others
        _check(ser, {"history": [], "optimizer": {where: {"m": np.ones(2)}, "x": [1]}, "model": {where: np.ones(1)}})
    _check(ser, {"history": [], "optimizer": {"m": np.ones(2)}, "model": {"m": np.ones(2)}})  # (in both files)


def test_dicts_of_arrays_that_come_and_go_keep_their_own_text():
    ser = ck.Serializer(EXTRA)
    opt = {"state": _momentum(0), "x": [1]}
    for model in ({"w": np.ones(1)}, {"w": [1]}, {"v": np.ones(2)}, {"v": np.ones(2)}):
        _check(ser, {"history": [], "model": model, "optimizer": opt})


def test_two_states_saved_in_turn_by_one_serializer():
    ser = ck.Serializer(EXTRA)
    a, b = _state(_model("w"), _momentum(0)), _state(_model("w", "b"), _momentum(0, 1))
    for _ in range(3):
        for state in (a, b):
            state["model"]["w"] += 1
            _check(ser, state)


def test_a_duplicate_array_key_is_refused_as_without_the_cache():
    ser = ck.Serializer(EXTRA)
    ok = {"history": [], "optimizer": {"a": {"b": np.ones(1)}, "x": [1]}}
    _check(ser, ok)
    _check(ser, ok)                             # a second save of the same state
    bad = {"history": [], "optimizer": {"a/b": np.zeros(1), "a": {"b": np.ones(1)}, "x": [1]}}  # both "a/b"
    for serialize in (ser, ck.serialize):
        with pytest.raises(TypeError, match="duplicate array key 'a/b'"):
            serialize(bad)
    bad = {"history": [], "optimizer": {"state": {1: {"m": np.ones(1)}, "1": {"m": np.ones(1)}}, "x": [1]}}
    for serialize in (ser, ck.serialize):
        with pytest.raises(TypeError, match="duplicate array key"):
            serialize(bad)
    _check(ser, ok)                             # and the next save is whole


@pytest.mark.parametrize("chunk", [None, 4])
def test_a_resumed_or_rewound_history_is_saved_as_a_fresh_serializer_saves_it(chunk):
    rng = np.random.default_rng(0)

    def record(epoch):
        return {"epoch": epoch, "train_loss": float(rng.random()), "val_loss": float("nan") if epoch == 3 else 0.5,
                "lr": 0.05}

    model, opt = _model("w"), _momentum(0)
    history = [record(e) for e in range(10)]
    ser = ck.Serializer(EXTRA, history_chunk=chunk)
    for e in range(10, 14):
        history.append(record(e))
        _check(ser, _state(model, opt, history), chunk)
    # resumed from epoch 6's checkpoint, in this process: the trainer's history is copies of the saved records
    # (load_state_dict), shorter than the serializer has seen, and grows again with other values
    history = [dict(r) for r in history[:6]]
    for e in range(6, 12):
        history.append(record(e))
        got = _check(ser, _state(model, opt, history), chunk)
        assert got == _bytes(ck.Serializer(EXTRA, history_chunk=chunk)(_state(model, opt, history)))
    history[2]["lr"] = 0.05                     # an old record's value replaced by an equal one: the same bytes
    _check(ser, _state(model, opt, history), chunk)
    history[1] = {**history[1], "note": "x"}    # an old record replaced
    _check(ser, _state(model, opt, history), chunk)
    del history[1]["note"]                      # and edited in place
    _check(ser, _state(model, opt, history), chunk)


class _Delegating(nn.Module):
    """A wrapper that answers for its inner layer's attributes (its generator too)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["_modules"]["inner"], name)


class _PropertyGenerator(nn.Identity):
    """A layer whose generator is a property of its class, not an instance attribute."""

    @property
    def generator(self):
        return self._gen


def _reference_states(model):  # what module_generator_states is: getattr on each module, by name
    return {name: m.generator.bit_generator.state for name, m in model.named_modules()
            if isinstance(getattr(m, "generator", None), np.random.Generator)}


def test_module_generator_states_are_found_wherever_the_generator_lives():
    gen = np.random.default_rng
    prop = _PropertyGenerator()
    prop._gen = gen(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5, generator=gen(2)), nn.Dropout(0.5), prop,
                          _Delegating(nn.Dropout(0.5, generator=gen(3))))
    states = dn_random.module_generator_states(model)
    assert states == _reference_states(model)
    assert sorted(states) == ["1", "3", "4", "4.inner"]
    model[2].generator = gen(4)                 # a generator given to a layer later
    model.add_module("5", nn.Sequential(nn.Dropout(0.1, generator=gen(5))))  # and a layer added
    model[1].generator = None                   # and one taken away
    states = dn_random.module_generator_states(model)
    assert states == _reference_states(model) and sorted(states) == ["2", "3", "4", "4.inner", "5.0"]
    # (and restored to the modules where they were found)
    saved = copy.deepcopy(states)
    for name, m in model.named_modules():
        if name in saved:
            m.generator.random()
    dn_random.set_module_generator_states(model, saved)
    assert dn_random.module_generator_states(model) == saved


def test_optimizer_and_scheduler_state_dicts_are_copies():
    w = nn.Parameter(np.ones(2, np.float32))
    opt = SGD([w], lr=0.1, momentum=0.9)
    opt.param_groups[0]["custom"] = [1.0, [2.0]]
    sched = StepLR(opt, step_size=1)
    sd, ssd = opt.state_dict(), sched.state_dict()
    sd["param_groups"][0]["custom"][1].append(3.0)
    sd["param_groups"][0]["custom"].append(4.0)
    for v in ssd.values():
        if isinstance(v, list):
            v.append(9)
    assert opt.param_groups[0]["custom"] == [1.0, [2.0]]
    assert all(not isinstance(v, list) or 9 not in v for v in sched.state_dict().values())


def test_trainer_state_in_a_state_dict_is_a_copy_as_asdict_gives():
    class Wider(TrainState):
        pass

    for state in (TrainState(best_metric=0.5, epoch_sums={"loss": 1.0, "count": 3}),
                  TrainState(epoch_sums={"loss": np.float64(1.5)}),            # a numpy value: deep-copied
                  Wider(epoch_sums={"loss": 2.0})):
        got = _fields_of(state)
        assert got == dataclasses.asdict(state) and list(got) == list(dataclasses.asdict(state))
        assert got["epoch_sums"] is not state.epoch_sums
        got["epoch_sums"]["loss"] = -1
        assert state.epoch_sums["loss"] != -1


def _trainer(splits, root, epochs, resume_spec=None):
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[16], dropout=0.2, input_shape=splits.input_shape, num_classes=10)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = LRSchedulerCallback(StepLR(opt, step_size=2, gamma=0.5))
    t = Trainer(model, opt, splits.train.subset(np.arange(200)), splits.val, comm=LocalCommunicator(),
                batch_size=50, epochs=epochs, callbacks=[sched], seed=1)
    cb = attach(t, root, {"dir": root, "every_epochs": 1, "keep_last": 0, "async_save": True},
                resume_spec=resume_spec, extra_files=EXTRA)
    return t, cb


def test_every_checkpoint_of_a_resumed_run_is_what_a_fresh_serializer_makes_of_its_content(tmp_path):
    splits = load_dataset("digits")
    root = str(tmp_path / "ckpt")
    _trainer(splits, root, epochs=4)[0].fit()
    second = ck.list_checkpoints(root)[1].path
    resumed, cb = _trainer(splits, root, epochs=6, resume_spec=second)  # the newer two are discarded
    resumed.fit()
    assert cb.saves == 4
    paths = [info.path for info in ck.list_checkpoints(root)]
    assert len(paths) == 6
    for path in paths:
        state, _ = ck.read_checkpoint(path)
        state = {k: v for k, v in state.items() if k != "_files"}
        for name, data in _bytes(ck.serialize(state, EXTRA)):
            with open(os.path.join(path, name), "rb") as f:
                assert f.read() == data, (path, name)
