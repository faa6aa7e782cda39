"""nn.init's structured initializers (dirac_, eye_, orthogonal_, sparse_) and PyTorch's deprecated
non-underscore names: the same deterministic values as PyTorch's, the random ones' structure (their numbers
come from distnn's generators), refusals and warnings as PyTorch's."""
import warnings

import numpy as np
import pytest

import distnn
from distnn import nn
from distnn.nn import init


def param(*shape, dtype=np.float64):
    return nn.Parameter(np.full(shape, 7.0, dtype=dtype))


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 4, 3, 3), 2), ((4, 6, 3, 2, 3), 1), ((6, 2, 5), 3),
                                          ((2, 5, 4, 4), 1)])
def test_dirac_equals_torch(torch, shape, groups):
    t = torch.full(shape, 7.0, dtype=torch.float64)
    torch.nn.init.dirac_(t, groups)
    np.testing.assert_array_equal(init.dirac_(param(*shape), groups).data, t.numpy())


def test_dirac_conv_passes_channels_through():
    conv = nn.Conv2d(3, 3, 3, padding=1, bias=False, dtype=np.float64)
    init.dirac_(conv.weight)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5))
    np.testing.assert_allclose(conv(distnn.Tensor(x)).data, x, atol=1e-15)


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2)])
def test_eye_equals_torch(torch, shape):
    t = torch.full(shape, 7.0, dtype=torch.float64)
    np.testing.assert_array_equal(init.eye_(param(*shape)).data, torch.nn.init.eye_(t).numpy())


@pytest.mark.parametrize("shape,gain", [((6, 4), 1.0), ((4, 6), 2.0), ((5, 2, 3), 0.5), ((8, 8), 1.0)])
def test_orthogonal_structure(shape, gain):
    w = init.orthogonal_(param(*shape), gain=gain, generator=np.random.default_rng(1)).data.reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_is_haar_distributed_thanks_to_the_sign_fix():
    # without the sign fix Q's diagonal (from a positive-leaning R) would be biased; Haar: mean 0
    rng = np.random.default_rng(2)
    diag = np.array([np.diag(init.orthogonal_(param(4, 4), generator=rng).data) for _ in range(2000)])
    assert abs(diag.mean()) < 0.03


@pytest.mark.parametrize("rows,cols,sparsity", [(10, 6, 0.3), (7, 3, 0.5), (5, 4, 0.0), (4, 9, 1.0)])
def test_sparse_zeros_per_column_and_spread(rows, cols, sparsity):
    w = init.sparse_(param(rows, cols), sparsity, std=0.02, generator=np.random.default_rng(3)).data
    zeros = int(np.ceil(sparsity * rows))
    np.testing.assert_array_equal((w == 0).sum(axis=0), zeros)
    big = init.sparse_(param(2000, 50), 0.1, std=0.02, generator=np.random.default_rng(4)).data
    nonzero = big[big != 0]
    assert abs(nonzero.std() - 0.02) < 0.001 and abs(nonzero.mean()) < 0.001
    positions = (init.sparse_(param(10, 4000), 0.2, generator=np.random.default_rng(5)).data == 0).mean(axis=1)
    np.testing.assert_allclose(positions, 0.2, atol=0.03)  # each row equally likely to be zeroed


def test_sparse_reproducible_from_the_default_generator():
    distnn.manual_seed(3)
    a = init.sparse_(param(6, 5), 0.5).data.copy()
    distnn.manual_seed(3)
    np.testing.assert_array_equal(init.sparse_(param(6, 5), 0.5).data, a)


def test_refusals_as_torch(torch):
    cases = [
        (lambda m: m.dirac_(torch_or(m, (3, 3))), "Only tensors with 3, 4, or 5 dimensions are supported"),
        (lambda m: m.dirac_(torch_or(m, (3, 3, 3)), 2), "dim 0 must be divisible by groups"),
        (lambda m: m.eye_(torch_or(m, (3, 3, 3))), "Only tensors with 2 dimensions are supported"),
        (lambda m: m.orthogonal_(torch_or(m, (3,))), "Only tensors with 2 or more dimensions are supported"),
        (lambda m: m.sparse_(torch_or(m, (3, 3, 3)), 0.1), "Only tensors with 2 dimensions are supported"),
    ]
    for call, msg in cases:
        with pytest.raises(ValueError, match=msg):
            call(torch.nn.init)
        with pytest.raises(ValueError, match=msg):
            call(init)


def torch_or(module, shape):
    if module is init:
        return param(*shape)
    import torch

    return torch.zeros(shape)


def test_orthogonal_of_an_empty_tensor_is_left_alone(torch):
    assert init.orthogonal_(param(0, 3)).shape == (0, 3)


@pytest.mark.parametrize("name,args", [("uniform", ()), ("normal", ()), ("constant", (0.5,)), ("xavier_uniform", ()),
                                       ("xavier_normal", ()), ("kaiming_uniform", ()), ("kaiming_normal", ()),
                                       ("orthogonal", ()), ("sparse", (0.5,)), ("dirac", ()), ("eye", ())])
def test_deprecated_names_warn_as_torch_and_do_the_same(torch, name, args):
    shape = (4, 4, 3) if name == "dirac" else (4, 4)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        getattr(torch.nn.init, name)(torch.zeros(shape), *args)
    with pytest.warns(FutureWarning) as ours:
        a = getattr(init, name)(param(*shape), *args, **({} if name in ("constant", "eye", "dirac") else
                                                           {"generator": np.random.default_rng(6)}))
    assert str(ours[0].message) == str(theirs[0].message) == \
        f"`nn.init.{name}` is now deprecated in favor of `nn.init.{name}_`."
    assert theirs[0].category is FutureWarning
    b = getattr(init, name + "_")(param(*shape), *args, **({} if name in ("constant", "eye", "dirac") else
                                                            {"generator": np.random.default_rng(6)}))
    np.testing.assert_array_equal(a.data, b.data)
