"""distnn.set_default_dtype(float64) as torch.set_default_dtype: new tensors from Python floats, factory
functions, Python-float promotion and new modules' parameters follow the current default."""
import numpy as np
import pytest

import distnn
from distnn import nn

torch = pytest.importorskip("torch")


@pytest.fixture
def default_float64():
    """Both libraries' default dtype float64 for one test, restored whatever the test does."""
    ours, theirs = distnn.get_default_dtype(), torch.get_default_dtype()
    distnn.set_default_dtype(distnn.float64)
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        distnn.set_default_dtype(ours)
        torch.set_default_dtype(theirs)


def name(dtype):
    return str(dtype).replace("torch.", "") if isinstance(dtype, torch.dtype) else np.dtype(dtype).name


CREATED = {
    "tensor([1.5])": lambda m: m.tensor([1.5]), "tensor(2.0)": lambda m: m.tensor(2.0),
    "tensor([1, 2])": lambda m: m.tensor([1, 2]), "tensor([1+2j])": lambda m: m.tensor([1 + 2j]),
    "zeros": lambda m: m.zeros(2, 3), "ones": lambda m: m.ones((2,)), "empty": lambda m: m.empty(2),
    "randn": lambda m: m.randn(2), "rand": lambda m: m.rand(2, 2), "eye": lambda m: m.eye(2),
    "full(1.5)": lambda m: m.full((2,), 1.5), "full(3)": lambda m: m.full((2,), 3),
    "arange(0, 1.0, 0.25)": lambda m: m.arange(0, 1.0, 0.25), "arange(3)": lambda m: m.arange(3),
    "linspace": lambda m: m.linspace(0, 1, 5), "logspace": lambda m: m.logspace(0, 1, 3),
    "int tensor * 1.5": lambda m: m.arange(3) * 1.5, "int tensor / 2": lambda m: m.arange(3) / 2,
    "sqrt(int tensor)": lambda m: m.sqrt(m.arange(3)), "float32 tensor * 1.5": lambda m: m.ones(2).float() * 1.5,
    "bernoulli": lambda m: m.bernoulli(m.full((3,), 0.5)), "zeros_like(int)": lambda m: m.zeros_like(m.arange(3)),
}
COMPLEX = {
    "tensor(1j)": lambda m: m.tensor(1j), "tensor([1+2j])": lambda m: m.tensor([1 + 2j]),
    "tensor([1, 2.5, 1j])": lambda m: m.tensor([1, 2.5, 1j]), "tensor([[1j], [2]])": lambda m: m.tensor([[1j], [2]]),
    "full(1j)": lambda m: m.full((2,), 1j), "ones * 1j": lambda m: m.ones(2) * 1j,
    "tensor(1j, dtype=complex128)": lambda m: m.tensor(1j, dtype=m.complex128),
    "tensor(complex128 array)": lambda m: m.tensor(np.array([1j])),
}
CREATED.update(COMPLEX)


@pytest.mark.parametrize("what", sorted(COMPLEX))
def test_python_complexes_take_the_default_complex_dtype_as_torch(what):
    """complex64 under the float32 default (numpy gave complex128); complex128 under float64 (CREATED)."""
    assert distnn.get_default_dtype() == distnn.float32
    assert name(COMPLEX[what](distnn).dtype) == name(COMPLEX[what](torch).dtype)
    np.testing.assert_array_equal(COMPLEX[what](distnn).numpy(), COMPLEX[what](torch).numpy())


@pytest.mark.parametrize("what", sorted(CREATED))
def test_created_tensors_follow_the_default_dtype_as_torch(default_float64, what):
    assert name(CREATED[what](distnn).dtype) == name(CREATED[what](torch).dtype)


def test_values_are_torchs_in_float64(default_float64):
    for ours, theirs in ((distnn.linspace(0, 1, 7), torch.linspace(0, 1, 7)),
                         (distnn.arange(0, 1.0, 0.1), torch.arange(0, 1.0, 0.1)),
                         (distnn.tensor([0.1]) * 3, torch.tensor([0.1]) * 3)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())  # (float32 would round 0.1 differently)


MODULES = {
    "Linear": lambda m: m.nn.Linear(2, 3), "Conv2d": lambda m: m.nn.Conv2d(1, 2, 3),
    "ConvTranspose2d": lambda m: m.nn.ConvTranspose2d(1, 2, 3), "BatchNorm1d": lambda m: m.nn.BatchNorm1d(3),
    "LayerNorm": lambda m: m.nn.LayerNorm(3), "GroupNorm": lambda m: m.nn.GroupNorm(1, 2),
    "Embedding": lambda m: m.nn.Embedding(3, 2), "EmbeddingBag": lambda m: m.nn.EmbeddingBag(3, 2),
    "LSTM": lambda m: m.nn.LSTM(2, 3), "GRU": lambda m: m.nn.GRU(2, 3), "RNN": lambda m: m.nn.RNN(2, 3),
    "PReLU": lambda m: m.nn.PReLU(), "Bilinear": lambda m: m.nn.Bilinear(2, 2, 3),
    "MultiheadAttention": lambda m: m.nn.MultiheadAttention(4, 2),
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_new_modules_parameters_follow_the_default_dtype_as_torch(default_float64, module):
    ours, theirs = MODULES[module](distnn).state_dict(), MODULES[module](torch).state_dict()
    assert {k: name(v.dtype) for k, v in ours.items()} == {k: name(v.dtype) for k, v in theirs.items()}
    assert all(name(v.dtype) != "float32" for v in ours.values())


def test_a_float64_model_trains_against_torch_on_python_floats(default_float64):
    distnn.manual_seed(0)
    lin = nn.Linear(3, 2)
    ref = torch.nn.Linear(3, 2)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(np.array(lin.weight.data)))
        ref.bias.copy_(torch.from_numpy(np.array(lin.bias.data)))
    x = [[0.1, 0.2, 0.3], [1.0, -2.0, 0.5]]
    ours, theirs = (lin(distnn.tensor(x)) * 0.7).sum(), (ref(torch.tensor(x)) * 0.7).sum()
    ours.backward()
    theirs.backward()
    assert name(ours.dtype) == "float64"
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(lin.weight.grad), ref.weight.grad.numpy(), rtol=1e-14)


def test_what_was_made_before_keeps_its_dtype_and_the_default_comes_back():
    before, lin = distnn.tensor([1.5]), nn.Linear(2, 2)
    old = distnn.get_default_dtype()
    try:
        distnn.set_default_dtype(distnn.float64)
        assert distnn.get_default_dtype() is distnn.float64
        assert before.dtype == np.float32 and lin.weight.dtype == np.float32
        assert distnn.finfo().bits == 64 and distnn.result_type(1.5, 2) == np.float64
        assert distnn.ones(2).float().dtype == np.float32  # (.float() is float32 whatever the default)
    finally:
        distnn.set_default_dtype(old)
    assert distnn.get_default_dtype() is distnn.float32 and distnn.tensor([1.5]).dtype == np.float32


def test_float16_default_as_torch():
    old, told = distnn.get_default_dtype(), torch.get_default_dtype()
    try:
        distnn.set_default_dtype(distnn.float16)
        torch.set_default_dtype(torch.float16)
        for what in ("tensor([1.5])", "zeros", "arange(0, 1.0, 0.25)", "int tensor * 1.5"):
            assert name(CREATED[what](distnn).dtype) == name(CREATED[what](torch).dtype), what
    finally:
        distnn.set_default_dtype(old)
        torch.set_default_dtype(told)


def test_clip_grad_norm_and_total_norm_follow_the_gradients_and_default_dtype(default_float64):
    """A 0-d tensor as torch's: float64 for float64 gradients, tensor(0.) of the default dtype with none."""
    ours, theirs = nn.Parameter(distnn.ones(3)), torch.nn.Parameter(torch.ones(3))
    ours.grad, theirs.grad = distnn.full((3,), 4.0), torch.full((3,), 4.0)
    for got, want in [(nn.utils.clip_grad_norm_([ours], 1.0), torch.nn.utils.clip_grad_norm_([theirs], 1.0)),
                      (nn.utils.clip_grad_norm_([], 1.0), torch.nn.utils.clip_grad_norm_([], 1.0)),
                      (nn.utils.get_total_norm([]), torch.nn.utils.get_total_norm([]))]:
        assert isinstance(got, distnn.Tensor) and got.shape == ()
        assert name(got.dtype) == name(want.dtype) == "float64"
        np.testing.assert_allclose(got.data, want.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_of_float32_gradients_stays_float32(default_float64):
    ours, theirs = nn.Parameter(distnn.ones(2).float()), torch.nn.Parameter(torch.ones(2).float())
    ours.grad, theirs.grad = distnn.ones(2).float(), torch.ones(2).float()
    got, want = nn.utils.clip_grad_norm_([ours], 1.0), torch.nn.utils.clip_grad_norm_([theirs], 1.0)
    assert name(got.dtype) == name(want.dtype) == "float32"


@pytest.mark.parametrize("args", [(1.0, 0.0), (1.0, 0), (1, 0), (True, False)], ids=str)
def test_where_of_two_python_numbers_is_torchs_dtype(default_float64, args):
    # (numpy's where of two Python floats is float64 whatever the default: float16 shows it)
    for d, t in ((distnn.float16, torch.float16), (distnn.float64, torch.float64)):
        distnn.set_default_dtype(d)
        torch.set_default_dtype(t)
        ours = distnn.where(distnn.tensor([True, False]), *args)
        theirs = torch.where(torch.tensor([True, False]), *args)
        assert name(ours.dtype) == name(theirs.dtype)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("kwargs", [dict(name="charlm", num_classes=20, input_shape=(12,)),
                                    dict(name="transformer", num_classes=3, vocab_size=20, input_shape=(12,))],
                         ids=lambda k: k["name"])
def test_zoo_models_parameters_follow_the_default_dtype(default_float64, kwargs):
    # (their learned position embeddings were float32 beside float64 layers)
    from distnn.models import build_model

    model = build_model(**kwargs)
    assert {n: p.dtype for n, p in model.named_parameters() if p.dtype != np.float64} == {}


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_python_complex_numbers_take_the_default_complex_dtype(default):
    """torch.tensor(1+2j) is complex64 under a float32 default (complex128 under float64), and torch.full with
    a complex fill is complex, not the default float with the imaginary part dropped (found by the h27 README
    audit: distnn gave complex128 and a float32 full)."""
    old, told = distnn.get_default_dtype(), torch.get_default_dtype()
    try:
        distnn.set_default_dtype(getattr(distnn, default))
        torch.set_default_dtype(getattr(torch, default))
        for make in (lambda m: m.tensor(1 + 2j), lambda m: m.tensor([1, 2j]), lambda m: m.tensor([[1.5, 2j]]),
                     lambda m: m.full((2,), 1 + 2j)):
            ours, theirs = make(distnn), make(torch)
            assert name(ours.dtype) == name(theirs.dtype)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    finally:
        distnn.set_default_dtype(old)
        torch.set_default_dtype(told)
