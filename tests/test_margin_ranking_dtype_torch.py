"""``F.margin_ranking_loss``'s result dtype with a target tensor of another dtype, as PyTorch 2.13's (its loss is
composed of pointwise ops, so a float64 target makes a float64 loss of float32 inputs), values and gradients."""
import numpy as np
import pytest

import distnn
import distnn.functional as F

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("inputs, target", [(np.float32, np.float64), (np.float64, np.float32), (np.float32, np.int64),
                                            (np.float32, np.float16), (np.float16, np.float32),
                                            (np.float32, np.float32)])
def test_result_dtype_values_and_gradients(inputs, target, reduction):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 6))
    t = np.where(rng.random(6) < 0.5, -1, 1).astype(target)
    ours = [distnn.tensor(v.astype(inputs), requires_grad=True) for v in (a, b)]
    theirs = [torch.tensor(v.astype(inputs), requires_grad=True) for v in (a, b)]
    r = F.margin_ranking_loss(*ours, distnn.tensor(t), margin=0.3, reduction=reduction)
    q = torch.nn.functional.margin_ranking_loss(*theirs, torch.tensor(t), margin=0.3, reduction=reduction)
    assert r.dtype == np.dtype(str(q.dtype).replace("torch.", ""))
    tol = dict(rtol=1e-12) if r.dtype == np.float64 else dict(rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(r.numpy(), q.detach().numpy(), **tol)
    r.sum().backward()
    q.sum().backward()
    for o, th in zip(ours, theirs):
        assert o.grad.dtype == np.dtype(str(th.grad.dtype).replace("torch.", ""))
        np.testing.assert_allclose(o.grad, th.grad.numpy(), **tol)


def test_array_target_in_the_inputs_dtype():
    # (distnn also takes a numpy target, which PyTorch does not: numpy's float64 default keeps the inputs' dtype)
    x = distnn.tensor(np.ones(3, np.float32), requires_grad=True)
    assert F.margin_ranking_loss(x, x * 0, np.array([1.0, -1.0, 1.0])).dtype == np.float32
