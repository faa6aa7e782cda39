"""``precision = "16-mixed"`` with ``data_parallel=False`` on several ranks: each rank steps its own replica
on its own gradients, so its loss scaler is its own too (its float16 overflows, its skips, its scale). A run
resumed from a checkpoint must equal the uninterrupted one on every rank, the scale included; the checkpoint
held rank 0's scaler only, so the other ranks resumed with rank 0's scale (and skip count).
"""
import numpy as np
import pytest

import distnn
from distnn.amp import GradScaler
from distnn.data import Dataset, build_transforms, load_dataset
from distnn.distributed import simulate
from distnn.models import build_model
from distnn.optim import Adam
from distnn.train.callbacks.base import Callback
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.trainer import Trainer

from checkpoint_runs import assert_bitwise, final_state

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    return splits, build_transforms(splits)


class _Scales(Callback):
    def __init__(self):
        self.scales = []

    def on_batch_end(self, trainer, logs):
        self.scales.append(trainer.amp.scaler.get_scale())


def _trainer(comm, digits, callbacks=()):
    splits, (aug_tf, eval_tf) = digits
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[32], input_shape=splits.input_shape, num_classes=10)
    # an init_scale and growth that make the two ranks' scales part ways within the first epoch
    scaler = GradScaler("cpu", init_scale=2.0 ** 16, growth_interval=2)
    return Trainer(model, Adam(model.parameters(), lr=3e-3), splits.train.subset(np.arange(240)), splits.val,
                   comm=comm, batch_size=40, epochs=2, transform=aug_tf, eval_transform=eval_tf, seed=3, data_parallel=False, precision="16-mixed",
                   grad_scaler=scaler, callbacks=callbacks)


def _scaler_state(t):
    return t.amp.scaler.state_dict(), t.state.scaler_skipped_steps


def _uninterrupted_and_resumed(comm, digits, root, step):
    scales = _Scales()
    full = _trainer(comm, digits, [scales])
    attach(full, root, {"dir": root, "every_steps": 1, "keep_last": 0}, signals=())
    full.fit()
    resumed = _trainer(comm, digits)
    attach(resumed, root + "-b", {"dir": root + "-b"}, resume_spec=f"{root}/step-{step:08d}", signals=())
    resumed.fit()
    return final_state(full), final_state(resumed), _scaler_state(full), _scaler_state(resumed), scales.scales


def test_each_rank_resumes_its_own_loss_scale(digits, tmp_path):
    results = simulate(2, lambda comm: _uninterrupted_and_resumed(comm, digits, str(tmp_path / "ck"), 5))
    for full, resumed, full_scaler, resumed_scaler, _ in results:
        assert resumed_scaler == full_scaler
        assert_bitwise(full, resumed)
    # (the check has teeth: the ranks' scales differ at the step resumed from)
    assert results[0][4][4] != results[1][4][4]


@pytest.mark.parametrize("sync", [False, True])
def test_batch_norm_replicas_under_16_mixed(digits, sync):
    # a ResNet's BatchNorm (per-rank statistics) or SyncBatchNorm on float16 activations: the replicas stay
    # the same bits, the running statistics float32 and finite
    from distnn.distributed import SyncBatchNorm

    splits, (aug_tf, eval_tf) = digits

    def run(comm):
        distnn.manual_seed(0)
        model = build_model("resnet", layers=[1, 1, 1], widths=[8, 8, 8], input_shape=(1, 8, 8), num_classes=10)
        if sync:
            model = SyncBatchNorm.convert_sync_batchnorm(model, comm=comm)
        x = np.asarray(eval_tf(splits.train.x[:128]), dtype=np.float32).reshape(-1, 1, 8, 8)
        t = Trainer(model, Adam(model.parameters(), lr=3e-3), Dataset(x, splits.train.y[:128], 10), comm=comm,
                    batch_size=32, epochs=1, seed=3, precision="16-mixed")
        t.fit()
        return t.model.state_dict()

    a, b = simulate(2, run)
    stats = [k for k in a if k.endswith(("running_mean", "running_var"))]
    assert stats
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        assert np.isfinite(a[k]).all(), k
    assert all(a[k].dtype == np.float32 for k in stats)
