"""The forward a rank runs again after it ran ahead (:class:`~distnn.distributed.ForwardRanAhead`) draws the random
numbers a run where nothing ran ahead draws.

Rank 1's loss raises and the loop keeps the output past rank 1's next forward (with SyncBatchNorm in the model):
that forward's first SyncBatchNorm round meets the others' backward, every rank names it, and rank 1 runs the
forward again (tests/test_data_parallel_kept_output39.py). The layers before the first SyncBatchNorm ran twice on
rank 1; with dropout there, rank 1 drew its masks twice, so its replica's gradients were not those of any run
where each forward runs once. Now the generators are put back before the second run.

Oracle: the same run with the failed output let go at once (nothing runs ahead, each forward runs once, the
failed micro-batch or step ends alike): parameters bitwise equal, on every rank. Dropout draws from the default
generator, from a generator of its own (``Dropout(generator=...)``), or from one lent, made when first asked
(``use_generator.deferred``, as the trainer's); or from a :class:`~distnn.data.batch_random.BatchShareGenerator`
(counter-based masks: its mask count must be put back too) lent made around each micro-batch ("lent-share") or around
the whole loop ("lent-share-loop": the re-run begins mid-count, and the micro-batches whose length is not its rows'
draw from its by-rows generator), or given to the layer ("own-share"); faults as in the kept-output test (the next
forward a synchronizing one, one under no_sync(), the next step's). Simulated ranks (2, 3) and ``mpiexec -n 2`` /
``-n 3`` (pytest-mpi).
"""
import contextlib
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.backend import to_numpy
from distnn.data.batch_random import BatchShareGenerator
from distnn.distributed import DataParallel, SyncBatchNorm, simulate
from distnn.optim import SGD
from distnn.random import use_generator

pytestmark = pytest.mark.timeout(300)

MICROS = {"micro-sync-next": 2, "micro-nosync-next": 3, "step": 1}
SOURCES = ("default", "own", "lent", "lent-share", "lent-share-loop", "own-share")


class _Net(nn.Module):
    def __init__(self, comm, source):
        super().__init__()
        generator = (np.random.default_rng(77 + comm.rank) if source == "own"
                     else _share_across_loop(comm, 77) if source == "own-share" else None)
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 6, dtype=np.float64)
        self.drop = nn.Dropout(0.4, generator=generator)
        self.bn = SyncBatchNorm(8, dtype=np.float64, comm=comm)

    def forward(self, x):
        return self.fc2(F.tanh(self.bn(self.drop(self.fc1(x)))))


def _batch(comm, step, micro):
    rng = np.random.default_rng(1000 * step + 10 * micro + comm.rank)
    n = 3 + micro + 2 * comm.rank
    return distnn.Tensor(rng.standard_normal((n, 4))), rng.integers(0, 6, n)


def _share_across_loop(comm, seed):
    """A BatchShareGenerator whose rows are those of micro-batch 0 (the others' masks: by rows)."""
    return BatchShareGenerator([seed], 64, 10 * comm.rank + np.arange(3 + 2 * comm.rank))


def _share_for(comm, step, micro):
    """The BatchShareGenerator of one micro-batch: its global batch is every rank's samples, in rank order."""
    lengths = [3 + micro + 2 * r for r in range(comm.size)]
    start = sum(lengths[:comm.rank])
    return BatchShareGenerator([step, micro], sum(lengths), np.arange(start, start + lengths[comm.rank]))


def _lend(comm, source, step, micro):
    if source == "lent":
        return use_generator.deferred(np.random.default_rng, (100 * step + 10 * micro + comm.rank,))
    return use_generator(_share_for(comm, step, micro)) if source == "lent-share" else contextlib.nullcontext()


def train(comm, fault, source, keep, steps=3):
    """In step 0 rank 1's loss of micro-batch 0 raises; ``keep``: its output is kept until the end (rank 1 runs
    ahead at its next forward), else let go at once. Returns (errors, ran-ahead warnings, parameters)."""
    micros = MICROS[fault]
    distnn.manual_seed(5 + comm.rank)
    model = _Net(comm, source)
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    errors, kept = [], []
    loop = use_generator(_share_across_loop(comm, 9)) if source == "lent-share-loop" else contextlib.nullcontext()
    with warnings.catch_warnings(record=True) as seen, loop:
        warnings.simplefilter("always")
        for step in range(steps):
            opt.zero_grad()
            failed = False
            for micro in range(micros):
                x, y = _batch(comm, step, micro)
                lend = _lend(comm, source, step, micro)
                try:
                    with dp.no_sync() if micro < micros - 1 else contextlib.nullcontext(), lend:
                        try:  # (caught inside the block: leaving it would end the micro-batch there)
                            out = dp(x)
                            if step == 0 and micro == 0 and comm.rank == 1:
                                if keep:
                                    kept.append(out)
                                raise ValueError("the loss refused the targets")
                            F.cross_entropy(out, y).backward()
                        except ValueError as e:
                            errors.append((type(e).__name__, str(e)))
                            failed = micro == micros - 1
                        out = None
                except Exception as e:
                    errors.append((type(e).__name__, str(e)))
                    failed = micro == micros - 1
                if errors and step == 0 and micro == 0 and not failed:
                    opt.zero_grad()  # (what the failed micro-batch accumulated)
            if not failed:
                opt.step()
    ran_ahead = [str(w.message) for w in seen if "began a forward while" in str(w.message)]
    return errors, ran_ahead, {k: to_numpy(v).copy() for k, v in model.named_parameters()}


def assert_same_as_clean(kept, clean):
    size = len(kept)
    assert sum(len(r[1]) for r in kept) >= 1, "rank 1 never ran ahead: the test does not exercise the re-run"
    assert not any(r[1] for r in clean)
    for rank in range(size):
        assert ("ValueError", "the loss refused the targets") in [tuple(e) for e in kept[rank][0]] or rank != 1
        for k, v in kept[rank][2].items():
            np.testing.assert_array_equal(v, kept[0][2][k], err_msg=f"rank {rank} of {size}: {k} (replicas)")
            np.testing.assert_array_equal(v, clean[rank][2][k], err_msg=f"rank {rank} of {size}: {k} (clean run)")


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("fault", list(MICROS))
def test_the_forward_run_again_draws_what_a_clean_run_draws(fault, source, size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same_as_clean(simulate(size, train, fault, source, True), simulate(size, train, fault, source, False))


def test_the_oracle_tells_a_forward_that_draws_twice(monkeypatch):
    """Without putting the generators back (the old re-run), rank 1's parameters differ from the clean run's."""
    import distnn.distributed.sync_abandoned as sync_abandoned

    clean = simulate(2, train, "micro-sync-next", "default", False)
    monkeypatch.setattr(sync_abandoned, "rewind", lambda points: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twice = simulate(2, train, "micro-sync-next", "default", True)
    # (any rank's record: catch_warnings is per process, so a simulated rank may record another's warning)
    assert any(r[1] for r in twice), "rank 1 never ran ahead"
    assert not np.array_equal(clean[1][2]["fc1.weight"], twice[1][2]["fc1.weight"])


@pytest.fixture(scope="module")
def comm():
    import distnn.distributed as dist

    return dist.init()


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("fault", list(MICROS))
def test_mpi_the_forward_run_again_draws_what_a_clean_run_draws(comm, fault, source):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = comm.allgather_object(train(comm, fault, source, True))
        clean = comm.allgather_object(train(comm, fault, source, False))
    assert_same_as_clean(kept, clean)
