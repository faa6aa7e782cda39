"""Shared by the tests/test_checkpoint_*.py files (one process): the digits data set, a checkpointed Trainer, its
final state compared bitwise, a run with checkpoints and its resume."""
import numpy as np
import pytest

import distnn
from distnn.data import build_transforms, load_dataset
from distnn.models import build_model
from distnn.optim import Adam
from distnn.optim.lr_scheduler import LinearWarmup
from distnn.train import checkpoint as ck
from distnn.train.callbacks import EarlyStopping, LRSchedulerCallback
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.trainer import Trainer


@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    return splits, build_transforms(splits, {"noise": 0.1}), build_transforms(splits)


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


def write_step(root, step, payload=b"x"):
    return ck.write_checkpoint(str(root), step, ck.serialize({"model": {"w": np.full(4, step, np.float32)}},
                                                              {"note.txt": payload}), {"world_size": 1})
