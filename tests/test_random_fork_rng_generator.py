"""distnn.random's torch.random names (fork_rng, seed, get_rng_state/set_rng_state, Generator) and
distnn.Generator, against torch's behaviour: state round trips repeat the draws, fork_rng restores the
default generator however the block ends, a Generator is taken by every generator= argument."""
import copy
import pickle

import numpy as np
import pytest
import torch

import distnn
import distnn.random as drandom


def test_torch_random_names_are_there():
    for name in ("fork_rng", "get_rng_state", "set_rng_state", "initial_seed", "manual_seed", "seed",
                 "Generator"):
        assert hasattr(torch.random, name) and hasattr(drandom, name), name
    assert drandom.Generator is distnn.Generator


def test_fork_rng_restores_the_default_generator_as_torch():
    for lib in (torch, distnn):
        lib.manual_seed(3)
        before = lib.rand(4)
        lib.manual_seed(3)
        with lib.random.fork_rng(devices=[]):
            inside = lib.rand(4)
            lib.rand(10)
        after = lib.rand(4)
        np.testing.assert_array_equal(np.asarray(inside), np.asarray(before))
        np.testing.assert_array_equal(np.asarray(after), np.asarray(before))  # (the block drew nothing, seen after)


def test_fork_rng_restores_after_an_exception_and_not_when_disabled():
    distnn.manual_seed(5)
    expected = distnn.rand(3).numpy()
    distnn.manual_seed(5)
    with pytest.raises(KeyError):
        with drandom.fork_rng():
            distnn.rand(7)
            raise KeyError("out")
    np.testing.assert_array_equal(distnn.rand(3).numpy(), expected)
    distnn.manual_seed(5)
    with drandom.fork_rng(enabled=False):
        distnn.rand(3)
    assert not np.array_equal(distnn.rand(3).numpy(), expected)
    for lib in (torch.random, drandom):  # (devices must be an iterable, as torch's)
        with pytest.raises(TypeError, match="not iterable"):
            with lib.fork_rng(devices=3):
                pass


def test_random_module_state_round_trip_repeats_the_draws():
    distnn.manual_seed(11)
    distnn.randn(5)
    state = drandom.get_rng_state()
    assert state.dtype == np.uint8 and state.shape == (48,)
    first = distnn.randn(6).numpy()
    drandom.set_rng_state(state)
    np.testing.assert_array_equal(distnn.randn(6).numpy(), first)
    value = drandom.seed()
    assert drandom.initial_seed() == value and 0 <= value < 2 ** 64
    with pytest.raises(TypeError, match="ByteTensor"):
        drandom.set_rng_state(distnn.zeros(48))


def test_generator_methods_match_torchs():
    for lib in (torch, distnn):
        g = lib.Generator()
        assert g.initial_seed() == 67280421310721 and str(g.device) == "cpu"
        assert g.manual_seed(7) is g and g.initial_seed() == 7
        assert g.manual_seed(-1).initial_seed() == 2 ** 64 - 1
        state = g.get_state()
        assert state.dtype == (torch.uint8 if lib is torch else np.uint8) and state.ndim == 1
        assert g.set_state(state) is g
        value = g.seed()
        assert g.initial_seed() == value and 0 <= value < 2 ** 64
        with pytest.raises(RuntimeError, match="manual_seed expected a long, but got float"):
            g.manual_seed(1.5)
        with pytest.raises(TypeError, match="ByteTensor"):
            g.set_state(lib.zeros(3))
        with pytest.raises(RuntimeError, match="RNG state size to be 3"):
            g.set_state(lib.zeros(3, dtype=lib.uint8))
        with pytest.raises(RuntimeError, match="device type at start of device string: foo"):
            lib.Generator(device="foo")


def test_generator_state_round_trip_and_seeding_like_manual_seed():
    g = distnn.Generator().manual_seed(42)
    distnn.manual_seed(42)
    np.testing.assert_array_equal(distnn.rand(5, generator=g).numpy(), distnn.rand(5).numpy())
    state = g.get_state()
    first = distnn.randn(4, generator=g).numpy()
    distnn.rand(9, generator=g)
    g.set_state(state)
    np.testing.assert_array_equal(distnn.randn(4, generator=g).numpy(), first)
    clone = pickle.loads(pickle.dumps(g))
    assert isinstance(clone, distnn.Generator) and clone.initial_seed() == 42
    np.testing.assert_array_equal(clone.random(3), copy.deepcopy(g).random(3))


def test_generator_is_taken_by_generator_arguments():
    g1, g2 = distnn.Generator().manual_seed(3), distnn.Generator().manual_seed(3)
    layer = distnn.nn.Linear(4, 3, generator=g1)
    w = distnn.nn.init.normal_(distnn.zeros(4, 3), generator=g2)
    assert layer.weight.shape == (3, 4) and w.shape == (4, 3)
    drop = distnn.nn.Dropout(0.5, generator=distnn.Generator().manual_seed(1))
    states = drandom.module_generator_states(distnn.nn.Sequential(drop))
    assert list(states) == ["0"]
    ints = distnn.randint(0, 10, (6,), generator=distnn.Generator().manual_seed(2))
    assert ints.shape == (6,)
