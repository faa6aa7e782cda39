"""The autograd engine: deep graphs, shared tensors, accumulation, graph freeing, no_grad, hooks."""
import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref

import numpy as np
import pytest

import distnn
from distnn import Function, Tensor

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _leaf(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


def _run_python(code, timeout=120):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------ deep graphs
def test_chain_of_100k_ops_backward():
    x = _leaf([1.0, 2.0])
    y = x
    for i in range(100_000):
        y = y * 1.00001 if i % 2 == 0 else y + 0.5
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.00001 ** 50_000] * 2, rtol=1e-10)


def test_deleting_an_unbackwarded_100k_chain_does_not_crash():
    # In a child process: a deallocation that recursed per node would crash the
    # interpreter (a segfault, not an exception), which must not take pytest down.
    proc = _run_python("""
        import numpy as np, distnn
        x = distnn.Tensor(np.ones(3), requires_grad=True)
        y = x
        for i in range(100_000):
            y = y * 1.0 if i % 2 else y.tanh()
        del y
        z = x
        for i in range(100_000):
            z = z + 1.0
        z = None  # rebinding drops the chain as well
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


# ------------------------------------------------------------------ sharing and accumulation
def test_diamond_graph_accumulates_both_paths():
    x = _leaf([0.5, -1.0, 2.0])
    a = x * 3.0  # a feeds two branches that meet again
    y = (a.tanh() + a * a).sum()
    y.backward()
    av = 3 * x.data
    np.testing.assert_allclose(x.grad, 3 * ((1 - np.tanh(av) ** 2) + 2 * av))


def test_same_tensor_twice_in_one_op():
    x = _leaf([1.5, -2.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)
    a = x * 1.0
    x.grad = None
    (a + a).sum().backward()  # one node consumed twice by the same op
    np.testing.assert_allclose(x.grad, [2.0, 2.0])


def test_grad_accumulates_across_backward_calls_on_fresh_graphs():
    x = _leaf([1.0, 2.0, 3.0])
    for _ in range(2):
        (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * 2 * x.data)


def test_zero_dim_leaf_accumulates():
    c, a = Tensor(np.float64(2.0), requires_grad=True), Tensor(np.arange(3.0))
    for _ in range(2):
        (a * c).sum().backward()
    assert c.grad.shape == () and float(c.grad) == 6.0


def test_leaf_grads_are_never_aliased():
    """Add hands the same array to both parents: each leaf must get its own copy, or
    accumulating into one would silently change the other."""
    a, b = _leaf([1.0, 1.0]), _leaf([1.0, 1.0])
    for _ in range(2):
        (a + b).sum().backward()
    assert a.grad is not b.grad
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])


def test_adopted_views_do_not_alias_pending_gradients():
    """A leaf may adopt a gradient without copying only when nothing else holds its buffer.

    Here the inner Add hands one array G to a Reshape of w (whose backward returns a
    view of G) and to w * 5. If w adopted that view, accumulating w * 5's gradient into
    w.grad would overwrite G, which the Tanh branch has yet to read.
    """
    w = _leaf(np.arange(6.0).reshape(2, 3) / 10)
    c = np.arange(6.0).reshape(2, 3) + 1
    for _ in range(2):
        (((w * 3.0).tanh() + (w * 5.0 + w.reshape(2, 3))) * c).sum().backward()
        ((w.T + w.T) * c.T).sum().backward()  # one array handed to two Transpose nodes
    expected = 2 * (c * (3 * (1 - np.tanh(3 * w.data) ** 2) + 6) + 2 * c)
    np.testing.assert_allclose(w.grad, expected, rtol=1e-12)


def test_explicit_gradient_is_not_modified_or_kept():
    x = _leaf([1.0, 2.0])
    seed = np.array([1.0, 1.0])
    for _ in range(2):
        (x * 1.0).backward(seed)
    np.testing.assert_array_equal(seed, [1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_backward_on_a_leaf_and_with_tensor_gradient():
    x = _leaf([1.0, 2.0])
    x.backward(Tensor(np.array([3.0, 4.0])))
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_broadcast_gradients_are_reduced_to_input_shapes():
    a, b, c = _leaf(np.ones((3, 1))), _leaf(np.ones((1, 4))), _leaf(2.0)
    (a * b + c).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (1, 4) and c.grad.shape == ()
    np.testing.assert_array_equal(a.grad, np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad, np.full((1, 4), 3.0))
    assert c.grad == 12.0


def test_grads_keep_dtype_and_leaf_layout():
    w = Tensor(np.ones((5, 3), dtype=np.float32), requires_grad=True)
    x = Tensor(np.ones((4, 3), dtype=np.float32))
    (x @ w.T).sum().backward()  # W's gradient arrives transposed: it must still be laid out like W
    assert w.grad.dtype == np.float32 and w.grad.flags.c_contiguous
    np.testing.assert_array_equal(w.grad, np.full((5, 3), 4.0))


# ------------------------------------------------------------------ graph freeing
def _nodes(root):
    seen, stack = [], [root._node]
    while stack:
        n = stack.pop()
        if isinstance(n, Function) and all(n is not s for s in seen):
            seen.append(n)
            stack.extend(n.parents or ())
    return seen


def test_graph_is_freed_after_backward():
    gc.disable()  # freeing must not depend on the cycle collector: no reference cycles
    try:
        x = _leaf(np.linspace(-1, 1, 6))
        h = (x * 2.0).exp()
        saved = weakref.ref(h._node.out)  # Exp keeps its output for backward
        loss = (h.tanh() * x).sum()
        inner = [weakref.ref(n) for n in _nodes(loss) if n is not loss._node]
        tensor = weakref.ref(h)
        del h
        assert saved() is not None and all(r() is not None for r in inner)
        loss.backward()
        assert tensor() is None, "an intermediate tensor must not outlive its last user reference"
        assert saved() is None, "saved arrays must be released after backward"
        # the nodes stay while the loss holds its node (their edges are next_functions, as PyTorch's) but keep
        # nothing else, and die with the loss: no reference cycles
        assert loss._node.parents is None and set(vars(loss._node)) == {"freed_edges"}
        assert all(set(vars(r())) <= {"freed_edges", "torch_name"} for r in inner)
        del loss
        assert all(r() is None for r in inner), "interior graph nodes must die with the loss"
    finally:
        gc.enable()


def test_second_backward_through_freed_graph_raises():
    x = _leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()
    # An interior node freed by one backward is caught on another root too.
    h = x * 3.0
    (h * 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 5.0).sum().backward()


def test_retain_graph_allows_a_second_backward():
    x = _leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * 2 * x.data)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


# ------------------------------------------------------------------ recording switches
def test_no_grad_builds_no_graph():
    x = _leaf([1.0, 2.0])
    with distnn.no_grad():
        y = (x * 2.0).exp()
        with distnn.enable_grad():
            z = x * 3.0
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert distnn.is_grad_enabled()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()

    @distnn.no_grad()
    def f(t):
        return t * t

    assert f(x).grad_fn is None and distnn.is_grad_enabled()


def test_no_grad_is_per_thread():
    x = _leaf([1.0])
    seen = []
    with distnn.no_grad():
        t = threading.Thread(target=lambda: seen.append((x * 2.0).requires_grad))
        t.start()
        t.join()
    assert seen == [True]


def test_inputs_that_need_no_grad_are_skipped():
    asked = []

    class Spy(Function):
        def forward(self, a, b):
            asked.append(self.needs_input_grad)
            return a * b

        def backward(self, g):
            return g, g

    x, c = _leaf([1.0, 2.0]), Tensor(np.array([3.0, 4.0]))
    Spy.apply(x, c).sum().backward()
    assert asked == [(True, False)]
    assert c.grad is None and x.grad is not None
    # Mul computes only the gradient that is needed.
    m = x * c
    assert m._node.b is not None and m._node.a is None


def test_integer_and_constant_inputs_do_not_enter_the_graph():
    x = _leaf([1.0, 2.0, 3.0])
    idx = Tensor(np.array([2, 0]))
    y = x[idx] * 2.0
    assert y._node is not None
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 2.0])


# ------------------------------------------------------------------ hooks
def test_hook_fires_once_per_backward_with_the_final_gradient():
    w = _leaf([1.0, 2.0])
    a, b, c = (np.array(v) for v in ([1.0, 0.0], [0.0, 10.0], [100.0, 100.0]))
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.copy()))
    loss = (w * a).sum() + ((w * b).sum() + (w * c).sum())  # w used three times
    loss.backward()
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], a + b + c)
    ((w * a).sum() * 2.0).backward()  # a second backward: the hook sees the accumulated grad
    assert len(calls) == 2
    np.testing.assert_array_equal(calls[1], 3 * a + b + c)
    handle.remove()
    (w * a).sum().backward()
    assert len(calls) == 2


def test_hook_fires_before_backward_ends_for_early_leaves():
    """A parameter near the loss gets its final grad (and hook) while earlier layers still wait."""
    order = []
    w1, w2 = _leaf([1.0]), _leaf([2.0])
    w1.register_post_accumulate_grad_hook(lambda t: order.append("w1"))
    w2.register_post_accumulate_grad_hook(lambda t: order.append("w2"))
    h = (w1 * 3.0).tanh()
    (h * w2).sum().backward()
    assert order == ["w2", "w1"]


def test_hook_only_on_leaves():
    x = _leaf([1.0])
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2.0).register_post_accumulate_grad_hook(lambda t: None)


def test_backward_arity_mismatch_is_reported():
    class Wrong(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, g):
            return (g,)

    x, y = _leaf([1.0]), _leaf([2.0])
    with pytest.raises(RuntimeError, match="Wrong.backward returned 1 gradient.*for 2 input"):
        Wrong.apply(x, y).sum().backward()


# ------------------------------------------------------------------ import without optional deps
def test_import_without_cupy_or_mpi4py():
    proc = _run_python("""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("cupy", "cupyx", "mpi4py", "torch"):
                    raise ImportError(f"{name} blocked for this test")
                return None

        sys.meta_path.insert(0, Block())
        import numpy as np
        import distnn
        import distnn.functional as F
        x = distnn.Tensor(np.ones((2, 3)), requires_grad=True)
        F.cross_entropy(F.linear(x, distnn.Tensor(np.ones((4, 3)))), np.array([0, 3])).backward()
        assert x.grad.shape == (2, 3)
        assert distnn.get_array_module(x) is np and not distnn.backend.gpu_available()
        assert not any(m.split(".")[0] in ("cupy", "mpi4py", "torch") for m in sys.modules)
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_grad_mode_forms():
    x = _leaf([1.0])

    @distnn.no_grad
    def f(t):
        return t * 2.0

    assert f(x).grad_fn is None and f.__name__ == "f"
    ng = distnn.no_grad()
    with ng:
        with ng:  # the same instance entered twice
            pass
        assert not distnn.is_grad_enabled()
    assert distnn.is_grad_enabled()
    with distnn.set_grad_enabled(False):
        assert (x * 2.0).grad_fn is None
    assert distnn.is_grad_enabled()
    distnn.set_grad_enabled(False)
    try:
        assert not distnn.is_grad_enabled()
    finally:
        distnn.set_grad_enabled(True)


def test_backward_begin_hook_sees_the_leaves_and_scales_the_seed():
    from distnn.autograd.engine import backward_context, register_backward_begin_hook

    a, b, c = _leaf([1.0, 2.0]), _leaf([3.0, 4.0]), _leaf([5.0])
    seen = []

    def hook(root, leaves):
        seen.append(sorted(id(t) for t in leaves))
        backward_context()["mark"] = True
        return 0.5 if a in leaves else None

    marks = []

    class Probe(Function):
        def forward(self, x):
            return x.copy()

        def backward(self, g):
            marks.append(backward_context().get("mark"))
            return g

    handle = register_backward_begin_hook(hook)
    try:
        (Probe.apply(a) * b).sum().backward()
        np.testing.assert_allclose(a.grad, [1.5, 2.0])  # b * 0.5: every gradient of the pass is scaled
        np.testing.assert_allclose(b.grad, [0.5, 1.0])
        assert seen[-1] == sorted([id(a), id(b)]) and marks == [True]
        c.sum().backward(Tensor(np.array(2.0, dtype=np.float32)))  # a pass that is none of the hook's business
        np.testing.assert_allclose(c.grad, [2.0])
        assert seen[-1] == [id(c)] and backward_context() is None
        g = np.array([1.0, 1.0], dtype=np.float32)
        (a * 1.0).backward(g)  # an explicit gradient is scaled too, the caller's array left alone
        np.testing.assert_allclose(a.grad, [2.0, 2.5])
        assert np.array_equal(g, [1.0, 1.0])
    finally:
        handle.remove()
    (a * 1.0).sum().backward()
    np.testing.assert_allclose(a.grad, [3.0, 3.5])  # removed: no scaling
