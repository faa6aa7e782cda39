"""Trainer on map-style datasets (TensorDataset, a user's __getitem__): the same training as on arrays,
N simulated ranks == 1 process, exact mid-epoch resume; datasets it cannot shard refused by name."""
import copy

import numpy as np
import pytest

import distnn
from distnn.data import (DataLoader, Dataset, IterableDataset, Subset, TensorDataset, build_transforms,
                         load_dataset)
from distnn.distributed import LocalCommunicator, simulate
from distnn.models import build_model
from distnn.optim import SGD
from distnn.train.callbacks import Callback
from distnn.train.trainer import Trainer


@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    # augmentation: the transform draws, so the test sees whether a map-style dataset's batches get the same draws
    train_tf, eval_tf = build_transforms(splits, {"noise": 0.1})
    return splits, train_tf, eval_tf


def as_tensor_dataset(ds):
    return TensorDataset(distnn.tensor(ds.x), distnn.tensor(ds.y))


def run(comm, digits, train, val, epochs=2, batch_size=64, callbacks=(), state=None, **kw):
    splits, train_tf, eval_tf = digits
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[32], dropout=0.2, input_shape=splits.input_shape, num_classes=10)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    t = Trainer(model, opt, train, val, comm=comm, batch_size=batch_size, epochs=epochs, callbacks=list(callbacks),
                transform=train_tf, eval_transform=eval_tf, seed=5, **kw)
    if state is not None:
        t.load_state_dict(state)
    history = t.fit()
    return history, {k: np.array(v) for k, v in t.model.state_dict().items()}


def assert_bitwise(a, b):
    (ha, sa), (hb, sb) = a, b
    assert len(ha) == len(hb)
    for ra, rb in zip(ha, hb):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert ra[key] == rb[key], key
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def test_tensor_dataset_trains_bitwise_like_the_arrays(digits):
    splits = digits[0]
    arrays = run(LocalCommunicator(), digits, splits.train, splits.val)
    tensors = run(LocalCommunicator(), digits, as_tensor_dataset(splits.train), as_tensor_dataset(splits.val))
    assert_bitwise(arrays, tensors)
    # numpy arrays in the TensorDataset, and a Subset of it, too
    numpy_ds = TensorDataset(splits.train.x, splits.train.y)
    assert_bitwise(arrays, run(LocalCommunicator(), digits, Subset(numpy_ds, range(len(numpy_ds))), splits.val))


@pytest.mark.parametrize("world", [2, 3])
def test_tensor_dataset_on_simulated_ranks_matches_one_process(digits, world):
    # 1257 samples, global batch 66 / 63: uneven shards (padding) and a short last batch on 2 and 3 ranks.
    # N ranks train what 1 process does up to the rounding of a gradient sum split over ranks (as with
    # arrays, tests/test_trainer_ranks.py), and bit for bit what N ranks do on the arrays.
    splits = digits[0]
    train, val = as_tensor_dataset(splits.train), as_tensor_dataset(splits.val)
    kw = dict(batch_size=66 if world == 2 else 63)
    one = run(LocalCommunicator(), digits, train, val, **kw)
    many = simulate(world, lambda c: run(c, digits, train, val, **kw))
    many_arrays = simulate(world, lambda c: run(c, digits, splits.train, splits.val, **kw))
    for result in many:
        assert_bitwise(many_arrays[0], result)  # (replicas equal, and equal to the arrays' run)
    (h1, s1), (hn, sn) = one, many[0]
    for r1, rn in zip(h1, hn):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert r1[key] == pytest.approx(rn[key], abs=1e-6), key
    for k in s1:
        np.testing.assert_allclose(s1[k], sn[k], atol=1e-6, err_msg=k)


class Stop(Exception):
    pass


class Snapshot(Callback):
    def __init__(self, at):
        self.at, self.state = at, None

    def on_batch_end(self, trainer, logs):
        if trainer.state.global_step == self.at:
            self.state = copy.deepcopy(trainer.state_dict())
            raise Stop


def test_tensor_dataset_resumes_mid_epoch_exactly(digits):
    splits = digits[0]
    train, val = as_tensor_dataset(splits.train), as_tensor_dataset(splits.val)
    whole = simulate(2, lambda c: run(c, digits, train, val))

    def interrupted(comm):
        snap = Snapshot(7)  # epoch 0 has 20 steps (1257 / 64): step 7 is mid-epoch
        with pytest.raises(Stop):
            run(comm, digits, train, val, callbacks=[snap])
        return snap.state

    states = simulate(2, interrupted)
    assert states[0]["state"]["batch_in_epoch"] == 7 and states[0]["state"]["epoch"] == 0
    resumed = simulate(2, lambda c: run(c, digits, train, val, state=states[c.rank]))
    assert_bitwise(whole[0], resumed[0])


class Centered:
    """A user's dataset: __getitem__ transforms each sample (centres it, labels as Python ints)."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        x, y = self.ds.x[i], self.ds.y[i]
        return distnn.tensor(x * 2.0 - 16.0), int(y)


def test_a_user_dataset_with_its_own_getitem_trains_like_the_transformed_arrays(digits):
    splits = digits[0]
    shifted = [Dataset(d.x * 2.0 - 16.0, d.y, d.num_classes) for d in (splits.train, splits.val)]
    arrays = run(LocalCommunicator(), digits, *shifted)
    assert_bitwise(arrays, run(LocalCommunicator(), digits, Centered(splits.train), Centered(splits.val)))


def test_a_pytorch_tensor_dataset_works_too(digits):
    torch = pytest.importorskip("torch")
    splits = digits[0]
    tds = [torch.utils.data.TensorDataset(torch.from_numpy(d.x), torch.from_numpy(d.y))
           for d in (splits.train, splits.val)]
    assert_bitwise(run(LocalCommunicator(), digits, splits.train, splits.val, epochs=1),
                   run(LocalCommunicator(), digits, *tds, epochs=1))


class Stream(IterableDataset):
    def __iter__(self):
        yield from ((np.zeros(64, np.float32), 0) for _ in range(10))


class Triples:
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.zeros(64, np.float32), 0, 1


@pytest.mark.parametrize("bad, match", [
    (Stream(), "Stream is an IterableDataset"),
    (Triples(), r"\(x, y\) samples, but sample 0 is a tuple of 3"),
    (TensorDataset(np.zeros((4, 64), np.float32)), r"\(x, y\) samples, but sample 0 is a tuple of 1"),
    ((np.zeros((4, 64), np.float32), np.zeros(4, np.int64)), r"\(x, y\) tuple of arrays.*TensorDataset\(x, y\)"),
    (object(), "expected a distnn.data.Dataset.*got object"),
    (DataLoader(TensorDataset(np.zeros((4, 64), np.float32), np.zeros(4, np.int64))), "got a DataLoader"),
])
@pytest.mark.parametrize("role", ["train_data", "val_data"])
def test_datasets_the_trainer_cannot_shard_are_refused_by_name(digits, bad, match, role):
    splits = digits[0]
    model = build_model("mlp", hidden_sizes=[8], input_shape=splits.input_shape, num_classes=10)
    data = {"train_data": splits.train, "val_data": splits.val, role: bad}
    with pytest.raises(TypeError, match=f"{role}.*{match}"):
        Trainer(model, SGD(model.parameters(), lr=0.1), data["train_data"], data["val_data"],
                comm=LocalCommunicator())


def test_an_empty_dataset_is_refused(digits):
    splits = digits[0]
    model = build_model("mlp", hidden_sizes=[8], input_shape=splits.input_shape, num_classes=10)
    with pytest.raises(ValueError, match="val_data: TensorDataset is empty"):
        Trainer(model, SGD(model.parameters(), lr=0.1), splits.train,
                TensorDataset(np.zeros((0, 64), np.float32), np.zeros(0, np.int64)), comm=LocalCommunicator())


def _one_hot(y):
    return np.eye(10, dtype=np.float32)[y]


@pytest.mark.parametrize("make, shape", [
    (lambda d: Dataset(d.x, _one_hot(d.y), 10), r"float32 labels of shape \(\d+, 10\)"),
    (lambda d: TensorDataset(d.x, _one_hot(d.y)), r"float32 labels of shape \(10,\)"),
    (lambda d: TensorDataset(d.x, d.y.astype(np.float32)), r"float32 labels of shape \(\)"),
])
@pytest.mark.parametrize("role", ["train_data", "val_data"])
def test_labels_that_are_not_class_indices_are_refused_by_name(digits, make, shape, role):
    # one-hot rows reached the loss and then failed in the accuracy ("cannot reshape array of size 480 into
    # shape (48,)"), float labels at the first step or the first validation
    splits = digits[0]
    model = build_model("mlp", hidden_sizes=[8], input_shape=splits.input_shape, num_classes=10)
    data = {"train_data": splits.train, "val_data": splits.val, role: make(splits.val)}
    with pytest.raises(TypeError, match=f"{role}.*integer class labels.*{shape}.*argmax"):
        Trainer(model, SGD(model.parameters(), lr=0.1), data["train_data"], data["val_data"],
                comm=LocalCommunicator())
