"""The rest of torch.nn.utils against PyTorch's: parameters <-> vector, get_total_norm / clip_grads_with_norm_
and the deprecated clip_grad_norm, conv/linear + batch-norm fusion, functional_call (distnn.func and the
deprecated stateless one), skip_init; results and refusals as PyTorch's."""
import numpy as np
import pytest

import distnn
from distnn import nn
from distnn.nn import utils as U
from torch_twins import copy_torch_weights, twin_models

TIGHT = dict(rtol=1e-12, atol=1e-12)


def _mlp_pair(torch):
    return twin_models(lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), seed=None,
                       dtype=np.float64)


# -------------------------------------------------------------------------------- parameters <-> vector
def test_parameters_to_vector_and_back_as_torch(torch):
    t, d = _mlp_pair(torch)
    tv, dv = torch.nn.utils.parameters_to_vector(t.parameters()), U.parameters_to_vector(d.parameters())
    np.testing.assert_array_equal(dv.data, tv.detach().numpy())
    (tv ** 2 * torch.arange(tv.numel(), dtype=torch.float64)).sum().backward()  # differentiable
    (dv ** 2 * distnn.Tensor(np.arange(dv.shape[0], dtype=np.float64))).sum().backward()
    for (k, tp), (_, dp) in zip(t.named_parameters(), d.named_parameters()):
        np.testing.assert_allclose(dp.grad, tp.grad.numpy(), **TIGHT, err_msg=k)
    new = np.random.default_rng(0).standard_normal(dv.shape[0])
    torch.nn.utils.vector_to_parameters(torch.from_numpy(new), t.parameters())
    vec = distnn.Tensor(new.copy())
    U.vector_to_parameters(vec, d.parameters())
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(d.state_dict()[k], v.numpy(), err_msg=k)
    vec.data[0] = 42.0  # the parameters view the vector's memory, as PyTorch's
    assert d[0].weight.data.flat[0] == 42.0
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        U.vector_to_parameters([1.0], d.parameters())
    with pytest.raises(RuntimeError, match="at least"):
        U.vector_to_parameters(distnn.Tensor(new[:3]), d.parameters())


# ---------------------------------------------------------------------------------------- norms, clipping
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, "inf"])
def test_get_total_norm_and_clip_grads_with_norm_as_torch(torch, norm_type):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(s) for s in [(3, 4), (5,), (2, 2, 2)]]
    tp = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    dp = [nn.Parameter(np.zeros(g.shape)) for g in grads]
    for a, b, g in zip(tp, dp, grads):
        a.grad, b.grad = torch.from_numpy(g.copy()), g.copy()
    nt = float("inf") if norm_type == "inf" else norm_type
    total_t = torch.nn.utils.get_total_norm([p.grad for p in tp], nt)
    total_d = U.get_total_norm([p.grad for p in dp], norm_type)
    assert isinstance(total_d, distnn.Tensor) and total_d.ndim == 0 and total_d.dtype == np.float64
    assert float(total_d.data) == pytest.approx(total_t.item(), rel=1e-12)
    torch.nn.utils.clip_grads_with_norm_(tp, 1.5, total_t)
    U.clip_grads_with_norm_(dp, 1.5, total_d)
    for a, b in zip(tp, dp):
        np.testing.assert_allclose(b.grad, a.grad.numpy(), **TIGHT)


def test_total_norm_refuses_non_finite_when_asked(torch):
    g = [distnn.Tensor(np.array([1.0, np.inf]))]
    with pytest.raises(RuntimeError, match="non-finite"):
        U.get_total_norm(g, error_if_nonfinite=True)
    assert np.isinf(float(U.get_total_norm(g).data))


def test_deprecated_clip_grad_norm_warns_as_torch_and_clips(torch):
    p = nn.Parameter(np.zeros(4))
    p.grad = np.full(4, 3.0)
    with pytest.warns(FutureWarning, match=r"`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                                           r"`torch.nn.utils.clip_grad_norm_`"):
        total = U.clip_grad_norm([p], 1.0)
    assert total == pytest.approx(6.0)
    np.testing.assert_allclose(np.linalg.norm(p.grad), 1.0, rtol=1e-6)


# ------------------------------------------------------------------------------------------------- fusion
def _bn_stats(torch, t_bn, d_bn, n):
    rng = np.random.default_rng(2)
    with torch.no_grad():
        t_bn.running_mean.copy_(torch.from_numpy(rng.standard_normal(n)))
        t_bn.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2, n)))
        if t_bn.weight is not None:
            t_bn.weight.copy_(torch.from_numpy(rng.standard_normal(n)))
            t_bn.bias.copy_(torch.from_numpy(rng.standard_normal(n)))
    copy_torch_weights(t_bn, d_bn)


@pytest.mark.parametrize("transpose,bias,affine", [(False, True, True), (False, False, True), (True, True, True),
                                                   (False, True, False)])
def test_fuse_conv_bn_eval_as_torch(torch, transpose, bias, affine):
    if transpose:
        tc, dc = torch.nn.ConvTranspose2d(3, 4, 3, bias=bias).double(), nn.ConvTranspose2d(3, 4, 3, bias=bias, dtype=np.float64)
    else:
        tc, dc = torch.nn.Conv2d(3, 4, 3, bias=bias).double(), nn.Conv2d(3, 4, 3, bias=bias, dtype=np.float64)
    copy_torch_weights(tc, dc)
    tb, db = torch.nn.BatchNorm2d(4, affine=affine).double(), nn.BatchNorm2d(4, affine=affine, dtype=np.float64)
    _bn_stats(torch, tb, db, 4)
    if not affine:  # (PyTorch's fusion needs the affine weight; its weights function takes None)
        tw, tbias = torch.nn.utils.fuse_conv_bn_weights(tc.weight, tc.bias, tb.running_mean, tb.running_var, tb.eps,
                                                         None, None, transpose)
        dw, dbias = U.fuse_conv_bn_weights(dc.weight, dc.bias, db.running_mean, db.running_var, db.eps, None, None,
                                           transpose)
        np.testing.assert_allclose(dw.data, tw.detach().numpy(), **TIGHT)
        np.testing.assert_allclose(dbias.data, tbias.detach().numpy(), **TIGHT)
        return
    tc.eval(), tb.eval(), dc.eval(), db.eval()
    tf, df = torch.nn.utils.fuse_conv_bn_eval(tc, tb, transpose), U.fuse_conv_bn_eval(dc, db, transpose)
    assert df is not dc and isinstance(df.weight, nn.Parameter) and isinstance(df.bias, nn.Parameter)
    for k, v in tf.state_dict().items():
        np.testing.assert_allclose(df.state_dict()[k], v.numpy(), **TIGHT, err_msg=k)
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 6))
    np.testing.assert_allclose(df(distnn.Tensor(x)).data, db(dc(distnn.Tensor(x))).data, rtol=1e-10, atol=1e-12)
    assert df.weight.requires_grad == tf.weight.requires_grad and df.bias.requires_grad == tf.bias.requires_grad


@pytest.mark.parametrize("bias,features", [(True, 4), (False, 4), (True, 1)])
def test_fuse_linear_bn_eval_as_torch(torch, bias, features):
    tl, dl = torch.nn.Linear(3, 4, bias=bias).double(), nn.Linear(3, 4, bias=bias, dtype=np.float64)
    copy_torch_weights(tl, dl)
    tb, db = torch.nn.BatchNorm1d(features).double(), nn.BatchNorm1d(features, dtype=np.float64)
    _bn_stats(torch, tb, db, features)
    for m in (tl, tb, dl, db):
        m.eval()
    tf, df = torch.nn.utils.fuse_linear_bn_eval(tl, tb), U.fuse_linear_bn_eval(dl, db)
    for k, v in tf.state_dict().items():
        np.testing.assert_allclose(df.state_dict()[k], v.numpy(), **TIGHT, err_msg=k)


def test_fusion_refusals_as_torch(torch):
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        U.fuse_conv_bn_eval(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    with pytest.raises(AssertionError, match="linear.out_features == bn.num_features or bn.num_features == 1"):
        U.fuse_linear_bn_eval(nn.Linear(2, 3).eval(), nn.BatchNorm1d(2).eval())


# --------------------------------------------------------------------------------------- functional_call
def test_functional_call_as_torch(torch):
    t, d = _mlp_pair(torch)
    rng = np.random.default_rng(4)
    new = {"0.weight": rng.standard_normal((4, 3)), "2.bias": rng.standard_normal(2)}
    t_new = {k: torch.tensor(v, requires_grad=True) for k, v in new.items()}
    d_new = {k: distnn.Tensor(v.copy(), requires_grad=True) for k, v in new.items()}
    x = rng.standard_normal((5, 3))
    before = {k: v.copy() for k, v in d.state_dict().items()}
    out_t = torch.func.functional_call(t, t_new, (torch.from_numpy(x),))
    out_d = distnn.func.functional_call(d, d_new, (distnn.Tensor(x),))
    np.testing.assert_allclose(out_d.data, out_t.detach().numpy(), **TIGHT)
    (out_t ** 2).sum().backward()
    (out_d ** 2).sum().backward()
    for k in new:
        np.testing.assert_allclose(d_new[k].grad, t_new[k].grad.numpy(), **TIGHT, err_msg=k)
    assert d[0].weight.grad is None and d[2].weight.grad is not None  # the module's own, where not replaced
    for k, v in d.state_dict().items():  # restored
        np.testing.assert_array_equal(v, before[k])
    # a tuple of dicts, and a single non-tuple argument
    out = distnn.func.functional_call(d, ({"0.weight": d_new["0.weight"]}, {"2.bias": d_new["2.bias"]}),
                                      distnn.Tensor(x))
    np.testing.assert_allclose(out.data, out_d.data, **TIGHT)
    with pytest.raises(ValueError, match=r"\['0.weight'\] appeared in multiple dictionaries"):
        distnn.func.functional_call(d, ({"0.weight": d_new["0.weight"]}, {"0.weight": d_new["0.weight"]}),
                                    distnn.Tensor(x))


def test_functional_call_strict_and_kwargs_as_torch(torch):
    d = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match=r"Error\(s\) in reparametrizing for Linear:\n\tUnexpected key\(s\): "
                                           r"'nope'.\n\tMissing key\(s\): 'bias'."):
        distnn.func.functional_call(d, {"weight": distnn.zeros(2, 2), "nope": distnn.zeros(1)}, distnn.ones(1, 2),
                                    strict=True)
    out = distnn.func.functional_call(d, {"nope": distnn.zeros(1)}, distnn.ones(1, 2))  # not strict: an attribute
    assert not hasattr(d, "nope") and tuple(out.shape) == (1, 2)

    class KW(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.ones(2))

        def forward(self, x, scale=1.0):
            return x * self.w * scale

    out = distnn.func.functional_call(KW(), {"w": distnn.Tensor(np.full(2, 3.0))}, (distnn.ones(2),), {"scale": 2.0})
    np.testing.assert_allclose(out.data, 6.0)


def test_functional_call_ties_weights_as_torch(torch):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    m = Tied()
    x = distnn.ones(1, 2)
    eye = distnn.Tensor(np.eye(2, dtype=np.float32))
    np.testing.assert_allclose(distnn.func.functional_call(m, {"a.weight": eye}, x).data, 1.0)  # both replaced
    untied = distnn.func.functional_call(m, {"a.weight": eye}, x, tie_weights=False)  # b keeps its own
    np.testing.assert_allclose(untied.data, m.b(x).data, rtol=1e-6)
    with pytest.raises(ValueError, match=r"functional_call got multiple values for keys \['a.weight', 'b.weight'\], "
                                         "which are tied. Consider using tie_weights=False"):
        distnn.func.functional_call(m, {"a.weight": eye, "b.weight": distnn.Tensor(np.eye(2, dtype=np.float32))}, x)


def test_deprecated_stateless_functional_call_warns_as_torch(torch):
    d = nn.Linear(2, 2)
    with pytest.warns(FutureWarning, match="`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0"):
        out = U.stateless.functional_call(d, {"bias": distnn.zeros(2)}, distnn.zeros(1, 2))
    np.testing.assert_array_equal(out.data, 0.0)


def test_functional_call_restores_the_module_when_forward_raises():
    d = nn.Linear(2, 2)
    w = d.weight
    with pytest.raises(ValueError):
        distnn.func.functional_call(d, {"weight": distnn.zeros(2, 2)}, distnn.ones(1, 3))
    assert d.weight is w


# ---------------------------------------------------------------------------------------------- skip_init
def test_skip_init_builds_without_advancing_the_stream():
    distnn.manual_seed(7)
    m = U.skip_init(nn.Linear, 5, 3, dtype=np.float64)
    assert isinstance(m, nn.Linear) and tuple(m.weight.shape) == (3, 5) and m.weight.dtype == np.float64
    after = distnn.randn(4).data
    distnn.manual_seed(7)
    np.testing.assert_array_equal(after, distnn.randn(4).data)  # as if nothing had been built


def test_skip_init_refusals_as_torch():
    with pytest.raises(RuntimeError, match="Module must support a 'device' arg to skip initialization"):
        U.skip_init(nn.Sequential)
    with pytest.raises(RuntimeError, match="Expected a Module; got"):
        U.skip_init(int)
