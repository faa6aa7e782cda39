"""The state of ``distnn.autocast``: per thread and per device, as PyTorch's.

One instance used by several threads at once (a decorated ``forward`` run by simulated ranks, which are
threads): each thread gets back its own state on leaving, whatever order the threads leave in. And a region
for one device leaves the other's autocast as it is (``autocast("cuda", enabled=False)`` inside a CPU region
keeps the CPU one on), against torch.autocast.
"""
import threading
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F

X = np.ones((2, 3), np.float32)
W = np.ones((4, 3), np.float32)


def test_a_decorator_shared_by_threads_restores_each_threads_own_state():
    x, w = distnn.Tensor(X), distnn.Tensor(W)
    inside = threading.Barrier(2)
    first_left = threading.Event()
    seen = {}

    @distnn.autocast("cpu")
    def forward(who):
        inside.wait()  # both threads are in the region before either leaves
        if who == "plain":
            first_left.wait()  # the thread that entered from an enabled region leaves first
        return F.linear(x, w)

    def in_region():  # enters the decorated forward from inside an autocast region of its own
        with distnn.autocast("cpu"):
            forward("nested")
            seen["nested, after"] = F.linear(x, w).dtype  # still inside its own region
            first_left.set()
        seen["nested, outside"] = F.linear(x, w).dtype

    def plain():  # enters it from outside any region
        forward("plain")
        seen["plain, outside"] = F.linear(x, w).dtype

    threads = [threading.Thread(target=in_region), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"nested, after": np.float16, "nested, outside": np.float32, "plain, outside": np.float32}
    assert not distnn.amp.is_autocast_enabled("cpu")


def _linear_dtype_in(nested, outer=("cpu", True)):
    """The dtype of a CPU linear inside ``nested`` (device, enabled) inside ``outer``, and whether CPU autocast
    is on there, in distnn and in torch."""
    torch = pytest.importorskip("torch")
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a "cuda" autocast without a GPU warns and is off)
        with torch.autocast(outer[0], dtype=torch.float16, enabled=outer[1]):
            with torch.autocast(nested[0], dtype=torch.float16, enabled=nested[1]):
                y = torch.nn.functional.linear(torch.tensor(X), torch.tensor(W))
                found.append((str(y.dtype).replace("torch.", ""), torch.is_autocast_enabled("cpu")))
        with distnn.autocast(outer[0], enabled=outer[1]):
            with distnn.autocast(nested[0], enabled=nested[1]):
                y = F.linear(distnn.tensor(X), distnn.tensor(W))
                found.append((str(y.dtype), distnn.amp.is_autocast_enabled("cpu")))
    return found


@pytest.mark.parametrize("nested", [("cuda", False), ("cuda", True), ("cpu", False), ("cpu", True)])
def test_a_region_for_one_device_leaves_the_others_autocast_alone(nested):
    torch_found, distnn_found = _linear_dtype_in(nested)
    assert distnn_found == torch_found
    assert not distnn.amp.is_autocast_enabled("cpu")
    assert F.linear(distnn.tensor(X), distnn.tensor(W)).dtype == np.float32


def test_cpu_region_inside_a_disabled_cuda_region():
    torch_found, distnn_found = _linear_dtype_in(("cpu", True), outer=("cuda", False))
    assert distnn_found == torch_found == ("float16", True)
