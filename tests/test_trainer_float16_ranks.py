"""The Trainer with float16 parameters on several ranks: gradients are weighted by the global count.

DataParallel pre-weights each rank's gradient by ``n_r / G`` (its samples over
the global count it expects). Without the global count it starts from
``G = world size``, which magnifies the first step's gradients (and those of
an epoch's short last batch) by about the local batch size: float16 ones
overflow to inf although the averaged gradient is small. The Trainer knows
the global count of every step and must tell DataParallel.
"""
import numpy as np

import distnn
import distnn.nn as nn
from distnn.data import TensorDataset
from distnn.distributed import LocalCommunicator, simulate
from distnn.optim import SGD
from distnn.train.trainer import Trainer


def _fit(comm):
    rng = np.random.default_rng(0)
    # large inputs of one sign: the mean gradient is ~6000 (float16 holds it), 32x that is not
    x = (np.abs(rng.standard_normal((80, 4))) * 3000 + 6000).astype(np.float16)
    y = rng.integers(0, 3, 80)
    distnn.manual_seed(0)
    model = nn.Linear(4, 3, dtype=np.float16)
    # batches of 64 and a short last one of 16 (a global count that changes)
    trainer = Trainer(model, SGD(model.parameters(), lr=1e-6), TensorDataset(x, y), comm=comm, batch_size=64,
                      epochs=2, shuffle=False)
    trainer.fit()
    return {k: v.astype(np.float64) for k, v in model.state_dict().items()}


def test_float16_model_on_two_ranks_matches_one_process():
    ref = _fit(LocalCommunicator())
    states = simulate(2, _fit)
    for k in ref:
        assert np.isfinite(states[0][k]).all(), f"{k}: not finite on 2 ranks (an overflowing gradient)"
        np.testing.assert_allclose(states[0][k], ref[k], rtol=0, atol=2e-3 * np.abs(ref[k]).max(), err_msg=k)
        np.testing.assert_array_equal(states[0][k], states[1][k], err_msg=k)
