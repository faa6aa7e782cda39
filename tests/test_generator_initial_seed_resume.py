"""A ``distnn.Generator`` a layer was given keeps its ``initial_seed()`` through a checkpoint, beside its stream: a
run resumed with the generator built afresh (another seed: ``Generator().seed()`` draws one from the OS) reports
the uninterrupted run's ``initial_seed()`` and continues its draws bitwise. A checkpoint written before (the
generator's state as numpy gives it, no seed) still loads: the stream continues, the seed stays the rebuilt
generator's own."""
import numpy as np
import pytest

import distnn
from distnn import random as dn_random
from distnn.distributed import LocalCommunicator
from distnn.train import checkpoint as ck
from distnn.train.callbacks.checkpoint_setup import attach

from checkpoint_runs import assert_bitwise, digits, final_state, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def _layer(gen):
    return distnn.nn.Sequential(distnn.nn.Dropout(0.5, generator=gen))


def _through_a_checkpoint(tmp_path, states):
    path = ck.write_checkpoint(str(tmp_path), 1, ck.serialize({"rng": {"modules": states}}), {"world_size": 1})
    state, _ = ck.read_checkpoint(path)
    return state["rng"]["modules"]


def test_initial_seed_and_stream_come_back_through_a_checkpoint(tmp_path):
    saved = distnn.Generator().manual_seed(2**64 - 5)  # (a seed beyond int64: JSON and the state keep it whole)
    saved.random(9)
    states = _through_a_checkpoint(tmp_path, dn_random.module_generator_states(_layer(saved)))
    fresh = distnn.Generator().manual_seed(99)
    dn_random.set_module_generator_states(_layer(fresh), states)
    assert fresh.initial_seed() == saved.initial_seed() == 2**64 - 5
    np.testing.assert_array_equal(fresh.random(6), saved.random(6))
    assert type(fresh) is distnn.Generator and fresh.device == "cpu"


def test_a_state_without_the_seed_as_written_before_still_loads():
    saved = distnn.Generator().manual_seed(5)
    saved.random(3)
    old = {"0": saved.bit_generator.state}  # (hand-made: the old format, numpy's state dict alone)
    fresh = distnn.Generator().manual_seed(99)
    dn_random.set_module_generator_states(_layer(fresh), old)
    assert fresh.initial_seed() == 99  # (nothing saved: the generator's own seed stays)
    np.testing.assert_array_equal(fresh.random(4), saved.random(4))


def test_numpy_generators_states_are_as_before_and_take_a_distnn_generators_state():
    plain = np.random.default_rng(4)
    assert dn_random.module_generator_states(_layer(plain)) == {"0": plain.bit_generator.state}
    saved = distnn.Generator().manual_seed(7)
    dn_random.set_module_generator_states(_layer(plain), dn_random.module_generator_states(_layer(saved)))
    np.testing.assert_array_equal(plain.random(4), saved.random(4))  # (numpy keeps no seed: the stream only)


# ------------------------------------------------------------------ a run resumed
def _trainer(digits):
    """The checkpoint tests' trainer, its dropout drawing from a distnn.Generator seeded from the OS's entropy:
    each build gets another seed, as a program that calls ``Generator().seed()`` does."""
    t = make_trainer(LocalCommunicator(), digits, epochs=2)
    drop = next(m for m in t.model.modules() if isinstance(m, distnn.nn.Dropout))
    drop.generator = distnn.Generator()
    drop.generator.seed()
    return t, drop.generator


def _resumed(digits, root, checkpoint):
    t, gen = _trainer(digits)
    attach(t, root, {"dir": root, "every_steps": 0, "keep_last": 0}, resume_spec=checkpoint, signals=())
    t.fit()
    return t, gen


def test_a_resumed_run_reports_the_uninterrupted_runs_initial_seed(digits, tmp_path):
    root = str(tmp_path / "ck")
    full, full_gen = _trainer(digits)
    attach(full, root, {"dir": root, "every_steps": 5, "keep_last": 0}, signals=())
    full.fit()
    t, gen = _resumed(digits, str(tmp_path / "resumed"), f"{root}/{ck.step_name(5)}")
    assert gen.initial_seed() == full_gen.initial_seed()
    assert_bitwise(final_state(full), final_state(t))
    assert gen.bit_generator.state == full_gen.bit_generator.state


def test_a_checkpoint_written_before_without_the_seed_resumes_the_stream(digits, tmp_path):
    root, old_root = str(tmp_path / "ck"), str(tmp_path / "old")
    full, full_gen = _trainer(digits)
    attach(full, root, {"dir": root, "every_steps": 5, "keep_last": 0}, signals=())
    full.fit()
    state, manifest = ck.read_checkpoint(f"{root}/{ck.step_name(5)}")
    files = state.pop("_files", {})
    for modules in [state["rng"]["modules"]] + [r["module_rng"] for r in state["ranks"]]:
        (layer,) = modules.values()  # (the one dropout layer)
        assert layer.pop("initial_seed") == full_gen.initial_seed()  # (now written: dropped by hand)
    kept = {k: v for k, v in manifest.items() if k not in ("files", "step", "format", "version", "created")}
    ck.write_checkpoint(old_root, 5, ck.serialize(state, files), kept)
    t, gen = _resumed(digits, str(tmp_path / "resumed"), f"{old_root}/{ck.step_name(5)}")
    assert_bitwise(final_state(full), final_state(t))  # (the stream continued exactly)
    assert gen.bit_generator.state == full_gen.bit_generator.state
    assert gen.initial_seed() != full_gen.initial_seed()  # (none saved: its own, from the OS, stays)
