"""A module's extra state in distnn's files: arrays are saved and loaded; Python objects are refused
before anything is written (they would need pickle, which distnn never reads back)."""
import os

import numpy as np
import pytest

from distnn import nn
from distnn.train import checkpoint as ck
from distnn.train.npz_io import load_npz
from distnn.train.run_dir import save_model


class Tagged(nn.Linear):
    def __init__(self, extra):
        super().__init__(3, 2)
        self.extra, self.loaded = extra, None

    def get_extra_state(self):
        return self.extra

    def set_extra_state(self, state):
        self.loaded = state


def test_array_extra_state_round_trips_through_a_checkpoints_npz():
    src = nn.Sequential(Tagged(np.arange(4, dtype=np.int64)))
    arrays = load_npz(ck.npz_bytes(src.state_dict()))
    assert sorted(arrays) == ["0._extra_state", "0.bias", "0.weight"]
    dst = nn.Sequential(Tagged(None))
    dst.load_state_dict(arrays)
    np.testing.assert_array_equal(dst[0].loaded, np.arange(4))
    np.testing.assert_array_equal(dst[0].weight.numpy(), src[0].weight.numpy())


@pytest.mark.parametrize("extra", [{"tag": "v1"}, [{"a": 1}], object()])
def test_object_extra_state_is_refused_naming_the_key_and_nothing_is_written(tmp_path, extra):
    # it was pickled into model.npz, which no distnn reader could then load ("Object arrays cannot be loaded")
    model = nn.Sequential(Tagged(extra))
    with pytest.raises(ValueError, match=r"'0._extra_state' is a \w+ of Python objects.*get_extra_state"):
        save_model(str(tmp_path), model, {"model": {"name": "custom"}})
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="'0._extra_state'"):
        ck.npz_bytes(model.state_dict())
