"""A layer's own generator in a checkpoint: every kind a layer may hold (a numpy Generator on any bit generator,
``distnn.Generator``, the counter-based :class:`~distnn.data.batch_random.BatchShareGenerator`) goes into a
checkpoint and comes back exactly, and a run whose dropout layers draw from them resumes bitwise like the
uninterrupted run: in one process, on two simulated ranks and under ``mpiexec -n 2``
(``mpiexec -n 2 python -m pytest --with-mpi -m mpi``). A BatchShareGenerator's mask counter used to be left
out: the resumed run drew the masks of the generator's first steps again. Checkpoints written before (a numpy
generator's state as numpy gives it, nothing for the other kinds) still load."""
import copy
import warnings

import numpy as np
import pytest

import distnn
from distnn import random as dn_random
from distnn.data.batch_random import BatchShareGenerator
from distnn.distributed import LocalCommunicator, simulate
from distnn.train import checkpoint as ck
from distnn.train.callbacks.checkpoint_setup import attach

from checkpoint_runs import assert_bitwise, digits, final_state, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")
BATCH = 40  # global batch; 300 samples: 8 steps an epoch, the last of 20 samples


# ------------------------------------------------------------------ the state round trip
def _share(rows=np.arange(6), total=6, seed=(4, 2)):
    return BatchShareGenerator(list(seed), total, rows)


def _drawn_share():
    """A BatchShareGenerator that has drawn every way: per-sample masks (its counter), a shared per-sample
    draw (its numpy generator) and a mask whose batch axis is not its rows (its by-rows generator)."""
    g = _share()
    g.keep_mask((6, 5), 0.3)
    g.integers(0, 10, size=(6, 2))
    g.keep_mask((4, 5), 0.3)
    g.unit_uniform((6, 3))
    return g


def _model():
    gens = [np.random.default_rng(1), np.random.Generator(np.random.Philox(2)),
            np.random.Generator(np.random.MT19937(3)), np.random.Generator(np.random.SFC64(4)),
            distnn.Generator().manual_seed(5), _drawn_share(), _share()]  # (the last has drawn nothing yet)
    for g in gens[:5]:
        g.random(7)  # (mid-stream, MT19937's position too)
    return distnn.nn.Sequential(*[distnn.nn.Dropout(0.5, generator=g) for g in gens])


def _next_draws(model):
    out = []
    for m in model:
        g = m.generator
        if isinstance(g, BatchShareGenerator):
            out += [g.keep_mask((6, 9), 0.5), g.standard_normal((6, 2)), g.keep_mask((3, 2), 0.5)]
        else:
            out.append(g.random(5))
    return out


def _through_a_checkpoint(tmp_path, states):
    path = ck.write_checkpoint(str(tmp_path), 1, ck.serialize({"rng": {"modules": states}}), {"world_size": 1})
    state, _ = ck.read_checkpoint(path)
    return state["rng"]["modules"]


def test_every_kind_of_layer_generator_comes_back_exactly_through_a_checkpoint(tmp_path):
    model = _model()
    twin = copy.deepcopy(model)  # the uninterrupted one
    states = _through_a_checkpoint(tmp_path, dn_random.module_generator_states(model))
    assert sorted(states, key=int) == [str(i) for i in range(7)]
    _next_draws(model)  # the saved run draws on ...
    dn_random.set_module_generator_states(model, states)  # ... and is put back where it was saved
    for got, want in zip(_next_draws(model), _next_draws(twin), strict=True):
        np.testing.assert_array_equal(got, want)
    assert model[4].generator.initial_seed() == 5 and type(model[4].generator) is distnn.Generator


def test_a_batch_share_generator_not_drawn_from_when_saved_starts_over_when_restored(tmp_path):
    g = _share()
    saved = _through_a_checkpoint(tmp_path, dn_random.module_generator_states(distnn.nn.Sequential(
        distnn.nn.Dropout(0.5, generator=g))))
    first = [g.keep_mask((6, 4), 0.5), g.random((6, 2)), g.keep_mask((2, 4), 0.5)]
    dn_random.set_module_generator_states(distnn.nn.Sequential(distnn.nn.Dropout(0.5, generator=g)), saved)
    again = [g.keep_mask((6, 4), 0.5), g.random((6, 2)), g.keep_mask((2, 4), 0.5)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_state_of_another_kind_of_generator_is_a_clear_error():
    numpy_layer = distnn.nn.Sequential(distnn.nn.Dropout(0.5, generator=np.random.default_rng(0)))
    share_layer = distnn.nn.Sequential(distnn.nn.Dropout(0.5, generator=_share()))
    with pytest.raises(ValueError, match=r"layer '0'.*BatchShareGenerator.*numpy.random.Generator"):
        dn_random.set_module_generator_states(numpy_layer, dn_random.module_generator_states(share_layer))
    with pytest.raises(ValueError, match=r"layer '0'.*numpy.random.Generator \(PCG64\).*BatchShareGenerator"):
        dn_random.set_module_generator_states(share_layer, dn_random.module_generator_states(numpy_layer))
    philox = distnn.nn.Sequential(distnn.nn.Dropout(0.5, generator=np.random.Generator(np.random.Philox(0))))
    with pytest.raises(ValueError, match=r"layer '0'.*Philox"):
        dn_random.set_module_generator_states(philox, dn_random.module_generator_states(numpy_layer))


class _Gan(distnn.nn.Module):  # a "generator" that is a network, not a random generator
    def __init__(self):
        super().__init__()
        self.generator = distnn.nn.Linear(2, 2)

    def __getattr__(self, name):  # (not Module's lookup: the walk asks getattr, and gets the network)
        return super().__getattr__(name)


def test_a_generator_that_cannot_be_saved_is_named_in_a_warning_and_a_network_is_not_one():
    class _LookAlike:  # draws like a generator, but has no state distnn can save (a class of this test's own:
        def random(self, size=None, dtype=np.float64):  # the warning comes once per class)
            return np.full(size, 0.75, dtype)

    model = distnn.nn.Sequential(distnn.nn.Dropout(0.5, generator=_LookAlike()), _Gan())
    with pytest.warns(RuntimeWarning, match=r"layer '0'.*_LookAlike.*cannot be saved"):
        assert dn_random.module_generator_states(model) == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dn_random.module_generator_states(model) == {}  # (once per class: every save asks)


def test_a_layer_state_as_checkpoints_before_held_it_still_loads():
    # checkpoints written before held a numpy generator's state exactly as numpy gives it, and nothing for a
    # BatchShareGenerator: such a state restores the former and leaves the latter as it is
    numpy_gen, share = np.random.default_rng(3), _drawn_share()
    model = distnn.nn.Sequential(distnn.nn.Dropout(0.5, generator=numpy_gen),
                                 distnn.nn.Dropout(0.5, generator=share))
    old = {"0": np.random.default_rng(9).bit_generator.state}  # (hand-made: the old format)
    before = share.draw_state()
    dn_random.set_module_generator_states(model, old)
    assert numpy_gen.bit_generator.state == old["0"] and share.draw_state() == before


# ------------------------------------------------------------------ a run resumed, bitwise
def _trainer(comm, digits, **kw):
    """The checkpoint tests' trainer, its two dropout layers given generators of their own: a
    BatchShareGenerator for this rank's rows of each global batch, and a numpy one per rank."""
    rank, world = comm.rank, comm.size
    batch = BATCH - BATCH % world  # (a global batch every rank gets an equal share of: 39 on 3 ranks)
    t = make_trainer(comm, digits, batch_size=batch, **kw)
    drops = [m for m in t.model.modules() if isinstance(m, distnn.nn.Dropout)]
    assert len(drops) == 1
    t.model.add_module("extra_dropout", distnn.nn.Dropout(0.2))
    drops.append(t.model.extra_dropout)
    drops[0].generator = BatchShareGenerator([11, 3], batch, np.arange(rank, batch, world))
    drops[1].generator = np.random.default_rng([5, rank])
    return t


def _with_states(t):
    share = next(m.generator for m in t.model.modules() if isinstance(m.__dict__.get("generator"), BatchShareGenerator))
    return {**final_state(t), "share": share.draw_state(), "numpy": t.model.extra_dropout.generator.bit_generator.state}


def _uninterrupted_and_resumed(comm, digits, root, steps):
    full = _trainer(comm, digits)
    attach(full, root, {"dir": root, "every_steps": 1, "keep_last": 0}, signals=())
    full.fit()
    resumed = []
    for step in steps:
        t = _trainer(comm, digits)
        attach(t, f"{root}-{step}", {"dir": f"{root}-{step}", "every_steps": 0, "keep_last": 0},
               resume_spec=f"{root}/{ck.step_name(step)}", signals=())
        t.fit()
        resumed.append(_with_states(t))
    return _with_states(full), resumed


def _assert_resumed_exactly(full, resumed):
    assert full["share"][0] > 0  # (the BatchShareGenerator drew masks: the test has teeth)
    for r in resumed:
        assert_bitwise(full, r)
        assert r["share"] == full["share"] and r["numpy"] == full["numpy"]


def test_a_run_whose_dropout_draws_from_its_own_generators_resumes_bitwise(digits, tmp_path):
    full, resumed = _uninterrupted_and_resumed(LocalCommunicator(), digits, str(tmp_path / "ck"), (5, 8, 11))
    _assert_resumed_exactly(full, resumed)


def test_two_simulated_ranks_resume_their_own_layer_generators_bitwise(digits, tmp_path):
    results = simulate(2, lambda comm: _uninterrupted_and_resumed(comm, digits, str(tmp_path / "ck"), (11,)))
    for full, resumed in results:
        _assert_resumed_exactly(full, resumed)
    assert results[0][0]["numpy"] != results[1][0]["numpy"]  # (each rank's own streams)


@pytest.mark.mpi(min_size=2)
def test_mpi_a_run_whose_dropout_draws_from_its_own_generators_resumes_bitwise(digits, mpi_tmp_path):
    import distnn.distributed as dist

    full, resumed = _uninterrupted_and_resumed(dist.init(), digits, str(mpi_tmp_path / "ck"), (5, 11))
    _assert_resumed_exactly(full, resumed)


def test_a_checkpoint_in_the_format_before_resumes_its_numpy_generators_exactly(digits, tmp_path):
    # a checkpoint as distnn wrote it before: the numpy generator's state as numpy gives it, and nothing for the
    # BatchShareGenerator (made by hand from one written now): it resumes, the numpy stream continues exactly
    root, old_root = str(tmp_path / "ck"), str(tmp_path / "old")
    full = _trainer(LocalCommunicator(), digits)
    attach(full, root, {"dir": root, "every_steps": 5, "keep_last": 0}, signals=())
    full.fit()
    state, manifest = ck.read_checkpoint(f"{root}/{ck.step_name(5)}")
    files = state.pop("_files", {})
    for modules in [state["rng"]["modules"]] + [r["module_rng"] for r in state["ranks"]]:
        assert modules.pop("2")["kind"] == "BatchShareGenerator"
        assert set(modules) == {"extra_dropout"} and "bit_generator" in modules["extra_dropout"]
    kept = {k: v for k, v in manifest.items() if k not in ("files", "step", "format", "version", "created")}
    ck.write_checkpoint(old_root, 5, ck.serialize(state, files), kept)
    t = _trainer(LocalCommunicator(), digits)
    attach(t, old_root, {"dir": old_root, "every_steps": 0, "keep_last": 0}, resume_spec="auto", signals=())
    assert t.model.extra_dropout.generator.bit_generator.state == state["rng"]["modules"]["extra_dropout"]
    assert t.model[2].generator.draw_state() == (0, None, None)  # (nothing saved: as before, it starts over)
    t.fit()
    assert t.state.global_step == full.state.global_step
