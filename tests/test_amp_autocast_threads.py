"""One ``distnn.autocast`` instance used by several threads at once (a decorated ``forward`` run by simulated
ranks, which are threads): each thread gets back its own state on leaving, whatever order the threads leave in.
The state is thread-local, so what an instance restores must be too."""
import threading

import numpy as np

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
