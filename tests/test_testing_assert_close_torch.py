"""distnn.testing.assert_close / assert_allclose / make_tensor against torch.testing's: the same inputs as
torch tensors and distnn tensors pass or fail alike, with the same exception type and the same message
(mismatched elements, greatest absolute/relative differences and where, the tolerances allowed)."""
import math
import warnings

import numpy as np
import pytest
import torch

import distnn
from distnn.testing import assert_allclose, assert_close, make_tensor

NAN, INF = float("nan"), float("inf")
# (actual, expected, dtype, options): values as nested lists, one dtype for both unless a pair is given
CASES = [
    ([1.0, 2.0, 3.0], [1.0, 2.5, 3.0], "float32", {}),
    ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 5.0]], "float32", {}),
    ([[1.0, 2.0], [3.0, 4.0]], [[1.1, 2.0], [3.0, 4.0001]], "float64", {}),
    ([1, 2, 3], [1, 2, 4], "int64", {}),
    ([1, 2, 3, 9], [1, 5, 3, 4], "int32", {}),
    ([1, 2], [1, 4], "uint8", {}),
    ([True, False], [True, True], "bool", {}),
    (1.0, 2.0, "float32", {}),
    (3, 4, "int64", {}),
    ([NAN], [NAN], "float32", {}),
    ([NAN, 1.0], [NAN, 1.0], "float32", {"equal_nan": True}),
    ([1.0, NAN, 3.0], [1.0, 2.0, 0.0], "float64", {}),
    ([1.0, INF], [1.0, INF], "float32", {}),
    ([1.0, INF], [1.0, -INF], "float32", {}),
    ([0.0], [1e-6], "float32", {}),
    ([1.0, 2.0], [1.0, 2.001], "float16", {}),
    ([1.0, 2.0], [1.0, 2.01], "float16", {}),
    ([1 + 1j], [1 + 2j], "complex64", {}),
    ([1.0, 2.0], [1.0, 2.5], "float32", {"rtol": 0.3, "atol": 0.0}),
    ([1.0, 2.0], [1.0, 2.5], "float32", {"rtol": 0.0, "atol": 0.0}),
    ([1.0, 2.0], [1.0, 2.5], "float32", {"rtol": 1e-3}),
    ([1.0, 2.0], [1.0, 2.0], "float32", {"atol": 1e-3}),
    ([1.0, 2.0], [1.0, 2.0], ("float32", "float64"), {}),
    ([1.0, 2.5], [1, 2], ("float32", "int64"), {"check_dtype": False}),
    ([1, 2], [1.0, 2.0], ("int64", "float64"), {"check_dtype": False}),
    ([1.0, 2.0], [1.0, 2.0, 3.0], "float32", {}),
    ([1.0, 2.0], [1.0, 2.5], "float32", {"msg": "custom"}),
    ([1.0, 2.0], [1.0, 2.5], "float32", {"msg": lambda m: "Header\n" + m}),
]


def _torch(values, dtype):
    return torch.tensor(values, dtype=getattr(torch, dtype))


def _ours(values, dtype):
    return distnn.tensor(np.array(values, dtype=dtype))


def _outcome(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the type is compared
        return type(error), str(error).replace("torch.Size([", "(").replace("torch.", "")
    return None


def _spell(message):
    # (torch prints a shape as Size([2]) and a 1-element tuple as [2] there; distnn as a tuple)
    return message.replace("(2])", "(2,)").replace("(3])", "(3,)")


@pytest.mark.parametrize("actual, expected, dtype, options", CASES)
def test_assert_close_matches_torch(actual, expected, dtype, options):
    da, de = (dtype, dtype) if isinstance(dtype, str) else dtype
    theirs = _outcome(torch.testing.assert_close, _torch(actual, da), _torch(expected, de), **options)
    ours = _outcome(assert_close, _ours(actual, da), _ours(expected, de), **options)
    if theirs is None:
        assert ours is None
        return
    assert ours is not None and ours[0] is theirs[0], (ours, theirs)
    assert ours[1] == _spell(theirs[1])


@pytest.mark.parametrize("actual, expected", [
    (1.0, 1.0 + 1e-9), (1.0, 1.1), (1, 2), (1, 1.0), (1 + 1j, 1 + 1j), (None, None), (None, 1), (True, False),
    ([1.0, 2.0], [1.0, 2.5]), ([1.0, 2.0], [1.0]), ({"a": 1.0, "b": [2, 3]}, {"a": 1.0, "b": [2, 4]}),
    ({"a": 1.0}, {"b": 1.0}), ((1.0, "x"), (1.0, "x")), (np.float32(1.5), np.float32(1.5)),
    (np.array([1.0, 2.0]), np.array([1.0, 2.5])), (np.array([1, 2]), np.array([1, 2], dtype=np.int32)),
])
def test_numbers_sequences_mappings_and_arrays_match_torch(actual, expected):
    theirs = _outcome(torch.testing.assert_close, actual, expected)
    ours = _outcome(assert_close, actual, expected)
    assert ours == theirs or (ours[0] is theirs[0] and ours[1] == _spell(theirs[1])), (ours, theirs)


def test_nested_tensors_name_the_failing_item_as_torch():
    theirs = _outcome(torch.testing.assert_close, {"w": [torch.ones(2), torch.tensor([1.0, 3.0])]},
                      {"w": [torch.ones(2), torch.tensor([1.0, 2.0])]})
    ours = _outcome(assert_close, {"w": [distnn.ones(2), distnn.tensor([1.0, 3.0])]},
                    {"w": [distnn.ones(2), distnn.tensor([1.0, 2.0])]})
    assert ours == theirs and theirs[1].endswith("The failure occurred for item ['w'][1]")


def test_kinds_that_no_pair_compares_are_refused_as_torch():
    for actual, expected in ((distnn.ones(2), np.ones(2, np.float32)), (distnn.ones(2), "ab"),
                             (distnn.ones(2), (1.0, 1.0)), (distnn.ones(2), 1.0)):
        kind, message = _outcome(assert_close, actual, expected)
        assert kind is TypeError and message.startswith("No comparison pair was able to handle inputs of type")
    parameter = distnn.nn.Parameter(distnn.ones(2))
    assert_close(parameter, distnn.ones(2))
    kind, _ = _outcome(assert_close, parameter, distnn.ones(2), allow_subclasses=False)
    assert kind is TypeError


def test_stride_and_device_checks():
    base = np.arange(6.0).reshape(2, 3)
    t, c = distnn.tensor(base).t(), distnn.tensor(np.ascontiguousarray(base.T))
    assert_close(t, c)
    theirs = _outcome(torch.testing.assert_close, torch.tensor(base).t().contiguous(), torch.tensor(base).t(),
                      check_stride=True)
    assert _outcome(assert_close, c, t, check_stride=True) == theirs
    assert_close(distnn.ones(2), distnn.ones(2), check_device=False)


def test_assert_allclose_warns_and_is_looser_as_torchs():
    for lib, fn, tensor in ((torch, torch.testing.assert_allclose, torch.tensor),
                            (distnn, assert_allclose, distnn.tensor)):
        with pytest.warns(FutureWarning, match=r"assert_allclose\(\)` is deprecated"):
            fn(tensor([1.0, 2.0]), [1.0, 2.0001])  # (within float32's old rtol 1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            fn(tensor([NAN]), [NAN])  # (equal_nan defaults to True)
            fn(tensor([1, 2]), [1.0, 2.0])  # (expected takes actual's dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        theirs = _outcome(torch.testing.assert_allclose, torch.tensor([1.0, 2.0]), [1.0, 2.5])
        ours = _outcome(assert_allclose, distnn.tensor([1.0, 2.0]), [1.0, 2.5])
    assert ours == theirs and "(up to 0.0001 allowed)" in ours[1]


DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "complex64",
          "complex128"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_make_tensor_ranges_and_flags_as_torch(dtype):
    distnn.manual_seed(0)
    ours = make_tensor(40, 50, dtype=np.dtype(dtype), device="cpu")
    theirs = torch.testing.make_tensor(40, 50, dtype=getattr(torch, dtype), device="cpu")
    assert ours.shape == tuple(theirs.shape) and ours.dtype == np.dtype(dtype) and ours.device == "cpu"
    values, reference = ours.numpy(), theirs.numpy()
    parts = (values.real, values.imag) if values.dtype.kind == "c" else (values,)
    for part in parts:  # (the same default interval: its ends reached by torch's draws bound ours)
        ref = reference.real if values.dtype.kind == "c" else reference
        assert part.min() >= min(ref.min(), -9 if dtype not in ("bool", "uint8") else 0)
        assert part.max() <= max(ref.max(), 9)
        assert part.astype(np.float64).std() > 0
    shaped = make_tensor((2, 3), dtype=np.dtype(dtype), device="cpu", noncontiguous=True, exclude_zero=True)
    torch_shaped = torch.testing.make_tensor((2, 3), dtype=getattr(torch, dtype), device="cpu", noncontiguous=True)
    assert shaped.shape == (2, 3) and shaped.is_contiguous() is torch_shaped.is_contiguous() is False
    assert shaped.stride() == torch_shaped.stride() and shaped.storage_offset() == torch_shaped.storage_offset()
    assert np.all(shaped.numpy() != 0)
    distnn.manual_seed(0)  # (drawn from distnn's generator: repeatable)
    np.testing.assert_array_equal(make_tensor(40, 50, dtype=np.dtype(dtype), device="cpu").numpy(), values)


def test_make_tensor_bounds_memory_format_and_refusals_match_torch():
    ours = make_tensor(1000, dtype=np.float64, device="cpu", low=2.0, high=3.0, requires_grad=True)
    assert ours.requires_grad and ours.is_leaf and 2.0 <= ours.numpy().min() and ours.numpy().max() < 3.0
    ints = make_tensor(1000, dtype=np.int64, device="cpu", low=-2.5, high=1.5)  # (rounded up: [-2, 2))
    assert set(ints.numpy().tolist()) == set(torch.testing.make_tensor(1000, dtype=torch.int64, device="cpu",
                                                                       low=-2.5, high=1.5).tolist())
    assert make_tensor(200, dtype=np.uint8, device="cpu", low=-100, high=1000).numpy().min() >= 0  # (clamped)
    nhwc = make_tensor(2, 3, 4, 5, dtype=np.float32, device="cpu", memory_format=distnn.channels_last)
    assert nhwc.stride() == torch.testing.make_tensor(2, 3, 4, 5, dtype=torch.float32, device="cpu",
                                                      memory_format=torch.channels_last).stride()
    for kwargs, kind in (({"low": math.nan}, ValueError), ({"low": 3, "high": 2}, ValueError),
                         ({"low": 300, "high": 400}, ValueError), ({"requires_grad": True}, ValueError),
                         ({"noncontiguous": True, "memory_format": "channels_last"}, ValueError)):
        torch_kwargs = {k: (torch.channels_last if v == "channels_last" else v) for k, v in kwargs.items()}
        ours = _outcome(make_tensor, 3, dtype=np.uint8, device="cpu", **kwargs)
        theirs = _outcome(torch.testing.make_tensor, 3, dtype=torch.uint8, device="cpu", **torch_kwargs)
        assert ours[0] is theirs[0] is kind
        assert ours[1].split(",")[0].split(" but")[0] == theirs[1].split(",")[0].split(" but")[0], (ours, theirs)
    with pytest.raises(TypeError, match="is not supported by distnn.testing.make_tensor"):
        make_tensor(3, dtype=object, device="cpu")
