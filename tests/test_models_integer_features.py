"""The zoo's real-valued models read integer or bool features as numbers in their parameters' float type (as a
PyTorch user casts them with ``x.float()``), now that distnn's layers, like PyTorch's, refuse an integer input to
a float weight; the output is the one of the same features given as floats."""
import numpy as np
import pytest

import distnn
from distnn.models import build_model

CASES = [dict(name="mlp", num_classes=3, input_shape=(6,)),
         dict(name="lenet", num_classes=3, input_shape=(1, 28, 28)),
         dict(name="resnet", num_classes=3, input_shape=(3, 8, 8)),
         dict(name="lstm", num_classes=3, input_shape=(6,), input_size=1)]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: k["name"])
@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_])
def test_integer_features_read_as_floats(kwargs, dtype):
    model = build_model(**kwargs)
    model.eval()
    x = np.random.RandomState(0).randint(0, 2 if dtype is np.bool_ else 5, size=(2,) + kwargs["input_shape"])
    ints = x.astype(dtype)
    got = model(distnn.Tensor(ints))
    want = model(distnn.Tensor(ints.astype(np.float32)))
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got.numpy(), want.numpy())
