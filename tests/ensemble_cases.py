"""Shared by the tests/test_ensemble_*.py files: a tiny ensemble config and its training run."""
import numpy as np

from distnn.data import Dataset, DatasetSplits
from distnn.train import ensemble as E


def ensemble_cfg(**ens):
    return {"model": {"name": "mlp", "hidden_sizes": [8]}, "optimizer": {"name": "sgd", "lr": 0.1},
            "run": {"seed": 5}, "train": {"epochs": 2}, "data": {"name": "digits", "batch_size": 16}, "ensemble": ens}


def toy_splits(n=50, d=3, k=3, seed=0):
    r = np.random.default_rng(seed)
    mk = lambda m: Dataset(r.normal(size=(m, d)).astype(np.float32), r.integers(0, k, m), k, "toy")  # noqa: E731
    return DatasetSplits(mk(n), mk(11), mk(13))


TINY = ["train.epochs=2", "model.hidden_sizes=[16]", "checkpoint.enabled=false", "run.plots=false"]


def train_ensemble(out, *overrides, simulate_ranks=None):
    from distnn.train.job import run_training

    return run_training("digits_mlp", [*TINY, *overrides], out=str(out), quiet=True, simulate_ranks=simulate_ranks)


def member_weights(run, member):
    from distnn.train import run_dir as rd

    model, _, _ = rd.load_model(E.member_dir(run, member))
    return model.state_dict()
