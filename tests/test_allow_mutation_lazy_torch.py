"""allow_mutation_on_saved_tensors copies a saved tensor only just before its memory is first written, as
PyTorch's (torch 2.13 is the oracle): the gradients are those of the values as of the op, whatever is changed
in place after it (the tensor, a view of it, its base, through an optimizer step or a state load), and
nothing is copied while nothing is written (the context's ``copies`` count, and tracemalloc)."""
import tracemalloc

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor
from distnn.autograd import graph as G

RNG = np.random.default_rng(7)
A = RNG.standard_normal((4, 4))
W = RNG.standard_normal((4, 4))


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _np(t):
    """A gradient as a numpy array (distnn's is one; torch's a Tensor)."""
    return np.array(t.detach().numpy() if hasattr(t, "detach") else t)


def _run(m, program, mutate=True):
    """``program(m, a, w, mutate)`` inside the context (a: a non-leaf made from a leaf x; w: a leaf);
    returns x's and w's gradients and the context's record."""
    x = (Tensor if m is distnn else m.tensor)(A.copy(), requires_grad=True)
    w = (Tensor if m is distnn else m.tensor)(W.copy(), requires_grad=True)
    with m.autograd.graph.allow_mutation_on_saved_tensors() as ctx:
        a = x * 1
        program(m, a, w, mutate)
    grads = [None if t.grad is None else _np(t.grad) for t in (x, w)]
    return grads, ctx


def _same(got, want):
    for g, t in zip(got, want):
        assert (g is None) == (t is None)
        if g is not None:
            np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-12)


def input_mutated(m, a, w, mutate):
    y = (a.sin() * w).sum()
    if mutate:
        a.mul_(3)  # (recorded: a's old values go to a.sin's and mul's backward)
    y.backward()


def output_mutated(m, a, w, mutate):
    b = a.exp()  # (exp's backward reads its result)
    y = (b * w).sum()
    if mutate:
        b.add_(5)
    y.backward()


def slice_mutated(m, a, w, mutate):
    y = (a * w).sum()
    if mutate:
        a[:2].mul_(10)
    y.backward()


def transpose_mutated(m, a, w, mutate):
    y = (a.sin() * w).sum()
    if mutate:
        with m.no_grad():
            a.t().mul_(-2)
    y.backward()


def base_of_saved_view_mutated(m, a, w, mutate):
    v = a.t()
    y = (v.sin() * w).sum()
    if mutate:
        with m.no_grad():  # (distnn refuses a recorded write of a tensor a transposed view of which lives)
            a.add_(1)
    y.backward()


def base_of_saved_slice_mutated(m, a, w, mutate):
    v = a[:2]
    y = (v * v).sum() + (w * 2).sum()
    if mutate:
        with m.no_grad():
            a.mul_(7)
    y.backward()


def mutated_twice(m, a, w, mutate):
    y = (a * a * w).sum()
    if mutate:
        a.mul_(2)
        a += 1
        a[1] = 0
    y.backward()


def mutated_by_detached_alias(m, a, w, mutate):
    y = (a.cos() * w).sum()
    if mutate:
        a.detach().mul_(4)  # (an alias sees the same memory: PyTorch clones for it too)
    y.backward()


def written_as_out(m, a, w, mutate):
    y = (a.sin() * w).sum()  # (sin saves a)
    if mutate:
        with m.no_grad():
            m.t_copy(w.detach() * 5, out=a)  # (an out= result: PyTorch's clones the saved tensor first)
    y.backward()


def inplace_result_mutated(m, a, w, mutate):
    a.exp_()  # (exp_'s backward reads its result: a's memory)
    y = (a * w).sum()
    if mutate:
        a.add_(1)
        a.sigmoid_()
    y.backward()


def relu_inplace_result_mutated(m, a, w, mutate):
    r = (F.relu if m is distnn else m.nn.functional.relu)(a - 0.5, inplace=True)
    y = (r.exp() * w).sum()
    if mutate:
        with m.no_grad():
            r.zero_()  # (relu's backward reads where its result is not 0)
    y.backward()


def mutated_after_backward(m, a, w, mutate):
    y = (a * w).sum()
    y.backward(retain_graph=True)
    if mutate:
        a.mul_(2)
    y.backward()  # (the second pass reads the values as of the op too)


PROGRAMS = [input_mutated, output_mutated, slice_mutated, transpose_mutated, base_of_saved_view_mutated,
            base_of_saved_slice_mutated, mutated_twice, mutated_by_detached_alias, written_as_out,
            inplace_result_mutated, relu_inplace_result_mutated, mutated_after_backward]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_gradients_are_torchs(torch, program):
    got, _ = _run(distnn, program)
    want, _ = _run(torch, program)
    _same(got, want)
    unmutated, ctx = _run(distnn, program, mutate=False)  # (the values as of the op: as if nothing changed)
    _same(got, unmutated)
    assert ctx.copies == 0


@pytest.mark.parametrize("program,copies", [(input_mutated, 1), (output_mutated, 1), (mutated_twice, 1),
                                            (slice_mutated, 1), (mutated_by_detached_alias, 1)],
                         ids=lambda p: getattr(p, "__name__", str(p)))
def test_a_saved_array_is_copied_once_at_its_first_write(program, copies):
    _, ctx = _run(distnn, program)
    assert ctx.copies == copies


def test_a_view_at_another_offset_is_seen():
    """A write of ``x[1:]`` when ``x`` was saved, and of ``x`` when ``x[2:]`` was: the old values (PyTorch's keys
    by data pointer and misses both; its gradients here are those of the changed values)."""
    for write_all, saved in ((False, slice(None)), (True, slice(2, None))):
        x = Tensor(np.arange(4.0))
        w = Tensor(np.ones(4)[saved], requires_grad=True)
        with G.allow_mutation_on_saved_tensors() as ctx:
            y = (x[saved] * w).sum()
            (x if write_all else x[1:]).mul_(10)
            assert ctx.copies == 1
            y.backward()
        np.testing.assert_array_equal(_np(w.grad), np.arange(4.0)[saved])


def test_a_write_of_memory_the_saved_array_does_not_overlap_copies_nothing():
    x = Tensor(np.arange(6.0))
    w = Tensor(np.ones(3), requires_grad=True)
    with G.allow_mutation_on_saved_tensors() as ctx:
        y = (x[:3] * w).sum()
        x[3:].mul_(2)
        assert ctx.copies == 0
        y.backward()
    np.testing.assert_array_equal(_np(w.grad), [0.0, 1.0, 2.0])


def test_a_forward_inside_the_context_holds_no_copies():
    n = 500
    x = Tensor(np.ones((n, n)))
    w = Tensor(np.ones((n, n)), requires_grad=True)
    with G.allow_mutation_on_saved_tensors() as ctx:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            y = (x * w).sum()  # (mul saves both operands)
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert held < x.data.nbytes // 2  # (copying the saved operands would hold two arrays)
        assert ctx.copies == 0
        y.backward()


def _optimizer_program(m, mutate):
    lin = m.nn.Linear(3, 2, bias=False, dtype=m.float64)
    with m.no_grad():
        lin.weight.copy_((Tensor if m is distnn else m.tensor)(W[:2, :3].copy()))
    x = (Tensor if m is distnn else m.tensor)(A[:, :3].copy(), requires_grad=True)
    opt = m.optim.SGD(lin.parameters(), lr=0.5)
    with m.autograd.graph.allow_mutation_on_saved_tensors():
        y = (lin(x) ** 2).sum()  # (the weight is saved for x's gradient)
        lin.weight.grad = (Tensor if m is distnn else m.tensor)(np.ones((2, 3)))
        if mutate == "step":
            opt.step()
        elif mutate == "load":
            lin.load_state_dict({"weight": (Tensor if m is distnn else m.tensor)(np.full((2, 3), 9.0))})
        elif mutate == "init":
            m.nn.init.zeros_(lin.weight)
        lin.weight.grad = None
        y.backward()
    return _np(x.grad)


@pytest.mark.parametrize("mutate", ["step", "load", "init"])
def test_writes_outside_the_ops_copy_the_saved_parameter_first(torch, mutate):
    got = _optimizer_program(distnn, mutate)
    np.testing.assert_allclose(got, _optimizer_program(torch, mutate), rtol=1e-12)
    np.testing.assert_allclose(got, _optimizer_program(distnn, None), rtol=1e-12)


def _batch_norm_program(m, F_, update):
    """An eval-mode batch norm (its backward reads running_var), then a training one that updates the buffers."""
    T = Tensor if m is distnn else m.tensor
    x = T(A.copy(), requires_grad=True)
    rm, rv = T(np.zeros(4)), T(np.full(4, 2.0))
    with m.autograd.graph.allow_mutation_on_saved_tensors():
        y = (F_.batch_norm(x, rm, rv, training=False) * T(W.copy())).sum()
        if update:
            F_.batch_norm(T(W.copy() * 3), rm, rv, training=True, momentum=0.5)
        y.backward()
    return _np(x.grad)


def test_a_running_statistic_updated_after_an_eval_forward_leaves_its_gradient(torch):
    """The gradient of the eval forward as it ran (torch's without the update): distnn's eval node keeps a
    statistic derived from running_var, not the buffer. PyTorch's context misses this write (its dispatch mode
    does not see batch_norm's update) and its gradient reads the updated running_var."""
    got = _batch_norm_program(distnn, F, True)
    np.testing.assert_allclose(got, _batch_norm_program(torch, torch.nn.functional, False), rtol=1e-12)


def test_after_the_context_writes_copy_nothing_and_backward_is_refused():
    x = Tensor(np.arange(4.0))
    w = Tensor(np.ones(4), requires_grad=True)
    with G.allow_mutation_on_saved_tensors() as ctx:
        y = (x * w).sum()
    x.mul_(2)
    assert ctx.copies == 0
    with pytest.raises(AssertionError, match="outside of the 'allow_mutation_on_saved_tensors' context"):
        y.backward()


def test_nesting_is_refused_and_the_outer_context_still_copies():
    x = Tensor(np.arange(4.0))
    w = Tensor(np.ones(4), requires_grad=True)
    with G.allow_mutation_on_saved_tensors() as ctx:
        with pytest.raises(RuntimeError, match="cannot be nested"):
            with G.allow_mutation_on_saved_tensors():
                pass
        y = (x * w).sum()
        x.add_(1)
        assert ctx.copies == 1
        y.backward()
    np.testing.assert_array_equal(_np(w.grad), np.arange(4.0))
