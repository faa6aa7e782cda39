"""``<<``, ``>>``, ``<<=``, ``>>=`` and the reflected forms on integer tensors, as PyTorch's operators: values,
dtypes (its promotion), counts outside [0, width), refusals of floats, and in-place writes into the tensor."""
import numpy as np
import pytest
import torch

import distnn

DTYPES = ["int8", "uint8", "int16", "int32", "int64"]

CASES = {
    "t << 1": lambda t, o: t << 1,
    "t >> 1": lambda t, o: t >> 1,
    "t << o": lambda t, o: t << o,
    "t >> o": lambda t, o: t >> o,
    "3 << t": lambda t, o: 3 << o,
    "100 >> t": lambda t, o: 100 >> o,
    "t << 1000": lambda t, o: t << 1000,
    "t >> 1000": lambda t, o: t >> 1000,
    "t >> -3": lambda t, o: t >> -3,
    "t << True": lambda t, o: t << True,
}


def _both(dtype):
    values = [1, 5, 100, 0] if dtype == "uint8" else [-7, 5, 100, 0]
    counts = [0, 1, 3, 7]
    ours = distnn.tensor(np.array(values, dtype=dtype)), distnn.tensor(np.array(counts, dtype="int64"))
    theirs = torch.tensor(np.array(values, dtype=dtype)), torch.tensor(counts)
    return ours, theirs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CASES))
def test_shift_operators_match_torch(case, dtype):
    (t, o), (tt, to) = _both(dtype)
    ours, theirs = CASES[case](t, o), CASES[case](tt, to)
    assert str(ours.dtype).replace("distnn.", "") == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(ours.data, theirs.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_inplace_shifts_write_into_the_tensor_as_torch(dtype):
    (t, _), (tt, _) = _both(dtype)
    alias, talias = t, tt
    t <<= 2
    tt <<= 2
    assert t is alias and tt is talias
    np.testing.assert_array_equal(t.data, tt.numpy())
    t >>= 1
    tt >>= 1
    assert t is alias
    np.testing.assert_array_equal(t.data, tt.numpy())
    assert str(t.dtype).replace("distnn.", "") == dtype


@pytest.mark.parametrize("op", [lambda a, b: a << b, lambda a, b: a >> b])
@pytest.mark.parametrize("operands", ["float tensor", "float count", "bool tensors"])
def test_shifts_of_floats_and_bools_are_refused_as_torch(op, operands):
    def make(lib):
        if operands == "float tensor":
            return lib.tensor([1.0, 2.0]), 1
        if operands == "float count":
            return lib.tensor([1, 2]), 1.5
        return lib.tensor([True]), lib.tensor([True])

    with pytest.raises(NotImplementedError) as theirs:
        op(*make(torch))
    with pytest.raises(NotImplementedError, match="not implemented for") as ours:
        op(*make(distnn))
    assert str(ours.value).split("'")[-2] == str(theirs.value).split("'")[-2]  # the refused dtype's name
