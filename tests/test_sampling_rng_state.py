"""distnn.normal / poisson / binomial and the RNG state functions (get_rng_state, set_rng_state, initial_seed,
seed). Their numbers are distnn's generator's, never PyTorch's: checked by statistics, shapes, dtypes,
determinism under a seed or a generator, PyTorch's gradients and refusals, and the per-sample streams
(N data-parallel ranks draw what one process draws)."""
import numpy as np
import pytest
import torch

import distnn
from distnn import random as dn_random
from distnn.data.batch_random import BatchShareGenerator

N = 200_000


def _z_ok(sample, mean, var, z=6.0):
    """The sample mean is within ``z`` standard errors of ``mean``."""
    return abs(np.mean(sample) - mean) < z * np.sqrt(var / np.size(sample))


@pytest.fixture(autouse=True)
def _seeded():
    distnn.manual_seed(0)
    yield
    distnn.manual_seed(0)


def test_normal_overloads_shapes_dtypes_as_torch():
    mean32, std64 = np.zeros((3, 1), np.float32), np.ones(4)
    cases = [((mean32, 2.0), {}), ((1.5, std64), {}), ((mean32, mean32 + 1), {}),
             ((np.zeros((2, 1)), np.ones((1, 5))), {}), ((0.0, 1.0, (2, 3)), {}),
             ((0.0, 1.0, (2, 3)), {"dtype": "float64"}), ((0.0, 1.0, [4]), {})]
    for args, kwargs in cases:
        ours = distnn.normal(*[distnn.tensor(a) if isinstance(a, np.ndarray) else a for a in args],
                             **{k: np.dtype(v) for k, v in kwargs.items()})
        theirs = torch.normal(*[torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args],
                              **{k: getattr(torch, v) for k, v in kwargs.items()})
        assert ours.shape == tuple(theirs.shape) and str(theirs.dtype) == f"torch.{ours.dtype}", (args, kwargs)


def test_normal_statistics_per_overload():
    x = distnn.normal(distnn.tensor(np.full(N, 3.0)), 2.0).numpy()
    assert _z_ok(x, 3.0, 4.0) and abs(x.std() - 2.0) < 0.02
    x = distnn.normal(-1.0, distnn.tensor(np.full(N, 0.5))).numpy()
    assert _z_ok(x, -1.0, 0.25) and abs(x.std() - 0.5) < 0.005
    mean = distnn.tensor(np.array([[-5.0], [5.0]]))
    x = distnn.normal(mean, distnn.tensor(np.array([[0.1, 3.0]] * 2))[:, :, None].expand(2, 2, N // 4)
                      .reshape(2, -1)).numpy()
    assert x.shape == (2, N // 2) and _z_ok(x[0], -5.0, (0.01 + 9.0) / 2) and _z_ok(x[1], 5.0, (0.01 + 9.0) / 2)
    x = distnn.normal(10.0, 0.0, (5,)).numpy()
    assert np.all(x == 10.0)


def test_normal_is_deterministic_under_a_seed_and_a_generator():
    distnn.manual_seed(7)
    a = distnn.normal(0.0, 1.0, (50,)).numpy()
    distnn.manual_seed(7)
    b = distnn.normal(0.0, 1.0, (50,)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, distnn.normal(0.0, 1.0, (50,)).numpy())
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    m = distnn.zeros(50)
    before = dn_random.get_state()
    np.testing.assert_array_equal(distnn.normal(m, 1.0, generator=g1).numpy(),
                                  distnn.normal(m, 1.0, generator=g2).numpy())
    assert dn_random.get_state() == before  # generator= leaves the default generator alone


def test_normal_out_and_gradients_are_torchs_zeros():
    out = distnn.zeros(2, 3)
    assert distnn.normal(0.0, 1.0, (2, 3), out=out) is out and np.all(out.numpy() != 0)
    for make in (lambda m, s: distnn.normal(m, s), lambda m, s: distnn.normal(m, 2.0),
                 lambda m, s: distnn.normal(1.0, s)):
        m = distnn.tensor(np.array([0.0, 1.0]), requires_grad=True)
        s = distnn.tensor(np.array([1.0, 2.0]), requires_grad=True)
        make(m, s).sum().backward()
        for p in (m, s):
            assert p.grad is None or np.array_equal(p.grad, np.zeros(2))
    tm = torch.tensor([0.0, 1.0], requires_grad=True)
    ts = torch.tensor([1.0, 2.0], requires_grad=True)
    torch.normal(tm, ts).sum().backward()
    assert torch.equal(tm.grad, torch.zeros(2)) and torch.equal(ts.grad, torch.zeros(2))


@pytest.mark.parametrize("call, error, gist", [
    (lambda m: m.normal(m.zeros(2), -1.0), RuntimeError, "normal expects std >= 0.0"),
    (lambda m: m.normal(m.zeros(2), m.tensor([1.0, -2.0])), RuntimeError,
     "normal expects all elements of std >= 0.0"),
    (lambda m: m.normal(0.0, -1.0, (2,)), RuntimeError, "normal expects std >= 0.0"),
    (lambda m: m.normal(0.0, 1.0), TypeError, "normal() received an invalid combination of arguments"),
    (lambda m: m.normal(0.0, 1.0, 4), TypeError, "normal() received an invalid combination of arguments"),
    (lambda m: m.normal(m.tensor([1, 2]), 1.0), NotImplementedError, "not implemented for"),
    (lambda m: m.normal(m.zeros(2), m.ones(3)), RuntimeError, "must match the size"),
    (lambda m: m.poisson(m.tensor([-1.0, 2.0])), RuntimeError,
     "invalid Poisson rate, expected rate to be non-negative"),
    (lambda m: m.poisson(m.tensor([1, 2])), NotImplementedError, "not implemented for"),
    (lambda m: m.binomial(m.tensor([10, 20]), m.tensor([0.5, 0.2])), ValueError,
     "binomial only supports floating-point dtypes for count"),
])
def test_refusals_match_torch(call, error, gist):
    for module in (torch, distnn):
        with pytest.raises(error) as caught:
            call(module)
        assert gist in str(caught.value), (module.__name__, caught.value)


def test_binomial_refuses_what_torch_silently_accepts():
    with pytest.raises(RuntimeError, match="0 <= prob <= 1"):
        distnn.binomial(distnn.tensor([10.0]), distnn.tensor([1.5]))
    with pytest.raises(RuntimeError, match="count >= 0"):
        distnn.binomial(distnn.tensor([-10.0]), distnn.tensor([0.5]))


def test_poisson_and_binomial_statistics_dtypes_gradients():
    rates = distnn.tensor(np.repeat([0.5, 4.0, 30.0], N // 3))
    x = distnn.poisson(rates)
    assert x.dtype == np.float64 and np.all(x.numpy() == np.floor(x.numpy())) and x.numpy().min() >= 0
    for i, lam in enumerate((0.5, 4.0, 30.0)):
        part = x.numpy()[i * (N // 3):(i + 1) * (N // 3)]
        assert _z_ok(part, lam, lam) and abs(part.var() / lam - 1) < 0.05
    r = distnn.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = distnn.poisson(r)
    assert y.dtype == np.float32 and y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(r.grad, np.zeros(2))
    count = distnn.tensor(np.array([[10.0], [40.0]], np.float32))
    prob = distnn.tensor(np.full((1, N // 2), 0.25, np.float32))
    b = distnn.binomial(count, prob)
    assert b.shape == (2, N // 2) and b.dtype == np.float32
    for row, n in enumerate((10, 40)):
        assert _z_ok(b.numpy()[row], n * 0.25, n * 0.25 * 0.75) and b.numpy()[row].max() <= n
    p = distnn.tensor(np.array([0.5, 0.5]), requires_grad=True)
    out = distnn.binomial(distnn.tensor([3.0, 4.0]), p)
    assert out.requires_grad
    with pytest.raises(NotImplementedError, match="the derivative for 'binomial' is not implemented"):
        out.sum().backward()


def test_generator_keyword_of_poisson_and_binomial():
    rates, count = distnn.tensor(np.full(100, 3.0)), distnn.tensor(np.full(100, 9.0))
    prob = distnn.tensor(np.full(100, 0.3))
    for draw in (lambda g: distnn.poisson(rates, g), lambda g: distnn.binomial(count, prob, g)):
        before = dn_random.get_state()
        np.testing.assert_array_equal(draw(np.random.default_rng(4)).numpy(), draw(np.random.default_rng(4)).numpy())
        assert dn_random.get_state() == before


def test_rng_state_round_trip_restores_the_same_draws():
    state = distnn.get_rng_state()
    assert state.dtype == np.uint8 and state.ndim == 1
    first = [distnn.randn(5).numpy(), distnn.normal(0.0, 1.0, (4,)).numpy(), distnn.randint(0, 1000, (6,)).numpy(),
             distnn.rand(3).numpy()]
    distnn.manual_seed(123)  # elsewhere in between
    distnn.randn(7)
    distnn.set_rng_state(state)
    again = [distnn.randn(5).numpy(), distnn.normal(0.0, 1.0, (4,)).numpy(), distnn.randint(0, 1000, (6,)).numpy(),
             distnn.rand(3).numpy()]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # the state in the middle of a 32-bit pair (numpy caches half of a 64-bit draw) comes back too
    dn_random.default_generator().integers(0, 10, dtype=np.int32)
    mid = distnn.get_rng_state()
    a = dn_random.default_generator().integers(0, 1 << 30, size=5, dtype=np.int32)
    distnn.set_rng_state(mid)
    np.testing.assert_array_equal(a, dn_random.default_generator().integers(0, 1 << 30, size=5, dtype=np.int32))


@pytest.mark.parametrize("bad, error, gist", [
    (lambda: distnn.zeros(48), TypeError, "ByteTensor"),
    (lambda: [1, 2], TypeError, "ByteTensor"),
    (lambda: distnn.tensor(np.zeros(3, np.uint8)), RuntimeError, "size"),
    (lambda: distnn.tensor(np.zeros(48, np.uint8)), RuntimeError, "tag"),
    (lambda: distnn.tensor(np.concatenate([distnn.get_rng_state().numpy()[:-8], np.full(8, 7, np.uint8)])),
     RuntimeError, "corrupt"),
])
def test_bad_states_are_refused(bad, error, gist):
    before = dn_random.get_state()
    with pytest.raises(error, match=gist):
        distnn.set_rng_state(bad())
    assert dn_random.get_state() == before
    with pytest.raises(TypeError, match="ByteTensor"):
        torch.set_rng_state(torch.zeros(3))


def test_initial_seed_and_seed():
    distnn.manual_seed(42)
    assert distnn.initial_seed() == 42
    s = distnn.seed()
    assert isinstance(s, int) and 0 <= s < 2 ** 64 and distnn.initial_seed() == s
    a = distnn.randn(4).numpy()
    distnn.manual_seed(s)
    np.testing.assert_array_equal(a, distnn.randn(4).numpy())
    assert distnn.seed() != s  # nondeterministic (a repeat has chance 2**-64)


SEED = [5, 0, 2, 1]
DRAWS = {
    "normal-tensor": lambda x: distnn.normal(x, 0.5),
    "normal-std-tensor": lambda x: distnn.normal(1.0, x.abs()),
    "poisson": lambda x: distnn.poisson(x.abs() * 3),
    "binomial": lambda x: distnn.binomial((x.abs() * 10).floor(), distnn.full(x.shape, 0.4, dtype=x.dtype)),
}


@pytest.mark.parametrize("name", DRAWS)
@pytest.mark.parametrize("total, world", [(12, 2), (7, 3)])
def test_a_ranks_rows_get_the_draws_they_get_in_the_whole_batch(name, total, world):
    """Under the trainer's per-sample generator (as dropout draws its masks), a rank's rows draw what those
    samples draw in the whole batch on one process."""
    x = np.random.default_rng(1).standard_normal((total, 3, 4))

    def run(rows):
        with dn_random.use_generator(BatchShareGenerator(SEED, total, rows)):
            op = DRAWS[name]
            t = distnn.tensor(np.ascontiguousarray(x[rows]))
            return np.stack([op(t).numpy(), op(t).numpy()])  # two draws in a row

    whole = run(np.arange(total))
    assert not np.array_equal(whole[0], whole[1])
    for rank in range(world):
        rows = np.arange(rank, total, world)
        np.testing.assert_array_equal(run(rows), whole[:, rows], err_msg=f"rank {rank}/{world}")
