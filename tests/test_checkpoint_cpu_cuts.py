"""What a checkpoint save skips to cost less CPU (issue 7) changes nothing a checkpoint holds.

A save reads rank 0's random states once (the save's gather's, also the trainer state's), spells the
path of a dict's arrays once, and reads the ``best`` pointer from its descriptor. Oracles: the bytes a
fresh, cache-less :func:`~distnn.train.checkpoint.serialize` makes of each checkpoint's content; a run
resumed from a checkpoint against the uninterrupted run, bitwise; the random states read directly.
"""
import os

import numpy as np
import pytest

import distnn
from distnn import nn
from distnn import random as dn_random
from distnn.data import load_dataset
from distnn.distributed import LocalCommunicator
from distnn.optim import SGD, Adam
from distnn.optim.lr_scheduler import StepLR
from distnn.train import checkpoint as ck
from distnn.train.callbacks import Callback, LRSchedulerCallback
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.regular_file import read_regular
from distnn.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

EXTRA = {"model.json": "{}", "config.toml": "[train]\nepochs = 4\n"}


@pytest.fixture(scope="module")
def splits():
    return load_dataset("digits")


def _model(in_features):
    distnn.manual_seed(0)
    # a dropout with a generator of its own: its state is in the checkpoint's rng/modules
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, 16), nn.ReLU(),
                         nn.Dropout(0.3, generator=np.random.default_rng(7)), nn.Linear(16, 10))


def _trainer(splits, root, epochs, async_save, resume_spec=None, callbacks=(), optimizer=SGD, extra=EXTRA):
    model = _model(int(np.prod(splits.input_shape)))
    opt = optimizer(model.parameters(), lr=0.05) if optimizer is Adam else optimizer(model.parameters(), lr=0.05,
                                                                                     momentum=0.9)
    sched = LRSchedulerCallback(StepLR(opt, step_size=2, gamma=0.5))
    t = Trainer(model, opt, splits.train.subset(np.arange(200)), splits.val, comm=LocalCommunicator(),
                batch_size=50, epochs=epochs, callbacks=[sched, *callbacks], seed=1)
    cb = attach(t, root, {"dir": root, "every_epochs": 1, "every_steps": 3, "keep_last": 0,
                          "async_save": async_save}, resume_spec=resume_spec, extra_files=extra)
    return t, cb


def _weights(trainer):
    return {k: np.array(v) for k, v in trainer.model.state_dict().items()}


def _assert_fresh_bytes(root, extra_of=lambda path: EXTRA):
    """Every checkpoint under ``root`` holds what a fresh serializer makes of its own content."""
    paths = [info.path for info in ck.list_checkpoints(root)]
    assert paths
    for path in paths:
        state, _ = ck.read_checkpoint(path)  # (checksums verified)
        state = {k: v for k, v in state.items() if k != "_files"}
        for name, data in ck.serialize(state, extra_of(path)).items():
            with open(os.path.join(path, name), "rb") as f:
                assert f.read() == bytes(data), (path, name)
    return paths


@pytest.mark.parametrize("async_save", [False, True])
def test_a_checkpoints_random_states_are_those_of_its_save_point(splits, tmp_path, async_save):
    root = str(tmp_path / "ckpt")
    seen = []

    class Record(Callback):  # the states each save must hold: read directly, at the save point
        def on_epoch_end(self, trainer, logs):
            seen.append((trainer.state.global_step, dn_random.get_state(),
                         dn_random.module_generator_states(trainer.model)))

    t, _ = _trainer(splits, root, 3, async_save, callbacks=[Record()])
    t.fit()
    by_step = {step: (rng, modules) for step, rng, modules in seen}
    for info in ck.list_checkpoints(root):
        state, _ = ck.read_checkpoint(info.path)
        assert state["rng"]["distnn"] == state["ranks"][0]["rng"]
        assert state["rng"]["modules"] == state["ranks"][0]["module_rng"]
        assert list(state["rng"]["modules"]) == ["3"]  # (the dropout's own generator)
        if info.step in by_step:  # an epoch's end: the very states the trainer had there
            assert state["rng"]["distnn"] == by_step[info.step][0]
            assert state["rng"]["modules"] == by_step[info.step][1]
    _assert_fresh_bytes(root)


@pytest.mark.parametrize("async_save", [False, True])
def test_a_run_resumed_from_each_checkpoint_ends_as_the_uninterrupted_run_bitwise(splits, tmp_path, async_save):
    full, _ = _trainer(splits, str(tmp_path / "full"), 4, async_save)
    full.fit()
    root = str(tmp_path / "part")
    _trainer(splits, root, 2, async_save)[0].fit()
    _assert_fresh_bytes(root)
    for info in ck.list_checkpoints(root)[1:3]:  # a mid-epoch step save, and an epoch's end
        resumed, _ = _trainer(splits, str(tmp_path / f"from-{info.step}"), 4, async_save, resume_spec=info.path)
        resumed.fit()
        got, want = _weights(resumed), _weights(full)
        assert list(got) == list(want)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        assert resumed.optimizer.param_groups[0]["lr"] == full.optimizer.param_groups[0]["lr"]


class _ChangeLayout(Callback):
    """Between saves: a parameter group added (its parameters' optimizer state created lazily at the next
    step), the scheduler replaced, the checkpoint's extra files (the config) replaced."""

    def __init__(self, checkpoint):
        self.checkpoint = checkpoint
        self.extras = {}

    def on_epoch_end(self, trainer, logs):
        epoch = trainer.state.epoch
        if epoch == 0:
            extra_layer = trainer.model[4]  # (a group of its own, at another lr: the groups change shape)
            groups = trainer.optimizer.param_groups
            groups[0]["params"] = [p for p in groups[0]["params"]
                                   if all(p is not q for q in extra_layer.parameters())]
            trainer.optimizer.add_param_group({"params": list(extra_layer.parameters()), "lr": 0.01})
        if epoch in (0, 2):  # (a scheduler of the new groups; then another one)
            schedule = next(cb for cb in trainer.callbacks.callbacks if isinstance(cb, LRSchedulerCallback))
            schedule.scheduler = StepLR(trainer.optimizer, step_size=1 + epoch, gamma=0.9)
        if epoch >= 1:
            self.checkpoint.extra_files = {**EXTRA, "config.toml": f"[train]\nepochs = {epoch}\n"}
        self.extras[trainer.state.global_step] = dict(self.checkpoint.extra_files)


@pytest.mark.parametrize("optimizer", [SGD, Adam])
def test_state_whose_keys_and_shapes_change_between_saves_is_saved_as_a_fresh_writer_saves_it(
        splits, tmp_path, optimizer):
    root = str(tmp_path / "ckpt")
    t, cb = _trainer(splits, root, 4, True, optimizer=optimizer, extra=dict(EXTRA))
    change = _ChangeLayout(cb)
    t.callbacks.callbacks.insert(0, change)  # (before the checkpoint's own on_epoch_end: saved as changed)
    t.fit()

    def extra_of(path):  # the extra files as the callback had them at that checkpoint's step
        step = int(os.path.basename(path)[5:])
        return change.extras[max((s for s in change.extras if s <= step), default=None)] if any(
            s <= step for s in change.extras) else EXTRA

    paths = _assert_fresh_bytes(root, extra_of)
    groups = [len(ck.read_checkpoint(p)[0]["optimizer"]["param_groups"]) for p in paths]
    assert groups[0] == 1 and groups[-1] == 2
    configs = set()
    for p in paths:
        with open(os.path.join(p, "config.toml")) as f:
            configs.add(f.read())
    assert len(configs) >= 3  # (the first, then one an epoch)
    # the newest checkpoint loads into a trainer of that layout, and the load gives its state back bitwise
    last, _ = ck.read_checkpoint(paths[-1])
    np.testing.assert_array_equal(last["model"]["4.weight"], np.array(t.model.state_dict()["4.weight"]))


def test_a_dicts_arrays_keep_their_paths_as_keys(tmp_path):
    state = {"model": {"a.w": np.ones(2), "b": {"c": np.zeros(1)}, "s": 1.5},
             "optimizer": {"state": {0: {"m": np.ones(3)}, "k": {"v": np.full(2, 2.0)}}},
             "extra": {"x": {"y": np.arange(3), "z": [np.ones(1), 2]}, "": {"q": np.ones(1)}}}
    skeleton, arrays = ck.encode_state(state)
    assert list(arrays["model.npz"]) == ["a.w", "b/c"]
    assert list(arrays["optimizer.npz"]) == ["state/0/m", "state/k/v"]
    assert list(arrays["state.npz"]) == ["extra/x/y", "extra/x/z/0", "extra//q"]
    back = ck.decode_state(skeleton, arrays)
    np.testing.assert_array_equal(back["extra"]["x"]["y"], np.arange(3))
    assert back["optimizer"]["state"][0]["m"].shape == (3,)
    with pytest.raises(TypeError, match="duplicate array key 'extra/a/b' at extra/a/b"):
        ck.encode_state({"extra": {"a/b": np.ones(1), "a": {"b": np.ones(1)}}})
    with pytest.raises(TypeError, match="duplicate array key ''"):
        ck.encode_state({"model": {"": np.ones(1)}})


def test_a_bounded_read_of_a_regular_file_gives_its_bytes_and_refuses_a_pipe(tmp_path):
    p = tmp_path / "latest"
    p.write_bytes(b"step-00000001 sha256=" + b"a" * 64 + b"\n")
    assert read_regular(str(p), 4096) == p.read_bytes()
    assert read_regular(str(p), 5) == b"step-"
    assert read_regular(str(p)) == p.read_bytes()
    (tmp_path / "empty").write_bytes(b"")
    assert read_regular(str(tmp_path / "empty"), 10) == b""
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="named pipe"):
        read_regular(str(tmp_path / "fifo"), 4096)
    with pytest.raises(OSError, match="directory"):
        read_regular(str(tmp_path), 4096)
    with pytest.raises(FileNotFoundError):
        read_regular(str(tmp_path / "missing"), 10)


@pytest.mark.parametrize("optimizer", [SGD, Adam])
def test_an_optimizers_uncopied_state_dict_is_its_own_arrays_and_a_copied_one_is_not(optimizer):
    model = _model(8)
    opt = optimizer(model.parameters(), lr=0.1) if optimizer is Adam else optimizer(model.parameters(), lr=0.1,
                                                                                    momentum=0.9)
    for p in model.parameters():
        p.grad = np.ones_like(np.asarray(p.data))
    opt.step()
    live = [opt.state[p] for p in opt.param_groups[0]["params"]]
    for copy in (False, True):
        got = opt.state_dict(copy=copy)["state"]
        assert sorted(got) == list(range(len(live)))
        for i, s in enumerate(live):
            assert list(got[i]) == list(s)
            for k, v in s.items():
                if isinstance(v, np.ndarray):
                    assert (got[i][k] is v) is not copy
                    np.testing.assert_array_equal(got[i][k], v)
                else:
                    assert got[i][k] == v


def test_a_modules_state_dict_takes_the_hooked_path_for_a_submodules_extra_state():
    class WithExtra(nn.Linear):
        def get_extra_state(self):
            return np.arange(3)

        def set_extra_state(self, state):
            self.seen = state

    distnn.manual_seed(0)
    plain = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 2)))
    assert list(plain.state_dict(copy=False)) == ["0.weight", "0.bias", "1.1.weight", "1.1.bias"]
    hooked = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), WithExtra(2, 2)))
    for copy in (False, True):
        sd = hooked.state_dict(copy=copy)
        assert list(sd) == ["0.weight", "0.bias", "1.1.weight", "1.1.bias", "1.1._extra_state"]
        np.testing.assert_array_equal(sd["1.1._extra_state"], np.arange(3))
    calls = []
    plain[1][1].register_state_dict_pre_hook(lambda m, prefix, keep_vars: calls.append(prefix))
    plain.state_dict(copy=False)
    assert calls == ["1.1."]
