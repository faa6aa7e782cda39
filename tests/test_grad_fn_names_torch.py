"""``tensor.grad_fn.name()`` and ``repr(grad_fn)`` against PyTorch (torch 2.13): the same computation on a
tensor that requires grad in both libraries names its node alike, before and after backward frees it, for
arithmetic, reductions, shape ops, every kind of index, views, activations, losses, the matmul family, cat and
stack, and in-place ops. Where distnn's graph is another than PyTorch's (one node where PyTorch records two, or
the reverse), the op is in SKIPPED with the reason, and its node keeps a name of its own rather than PyTorch's."""
import re

import numpy as np
import pytest

import distnn
import distnn.functional as DF
from torch_twins import doubling_functions

RNG = np.random.default_rng(0)
A, B = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
C, V = RNG.standard_normal((4, 5)), RNG.standard_normal(4)
B3, B3b = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 4, 5))
X4, W4 = RNG.standard_normal((2, 3, 5, 5)), RNG.standard_normal((4, 3, 3, 3))
P = np.abs(A) + 0.5  # (positive: log, sqrt, pow)
LABELS = np.array([0, 1, 3])


def _t(m, a, requires_grad=True):
    return m.tensor(a.copy(), requires_grad=requires_grad)


def _inplace(m, f):
    """``f`` applied in place to a non-leaf copy of A: the copy, whose grad_fn is the in-place op's node."""
    t = _t(m, A).clone()
    f(t)
    return t


# name -> the computation, on (library, its functional module): the node of the result is compared
TABLE = {
    # arithmetic
    "add": lambda m, F: _t(m, A) + _t(m, B),
    "add_number": lambda m, F: _t(m, A) + 2.0,
    "radd": lambda m, F: 2.0 + _t(m, A),
    "sub": lambda m, F: _t(m, A) - _t(m, B),
    "rsub": lambda m, F: 2.0 - _t(m, A),
    "mul": lambda m, F: _t(m, A) * _t(m, B),
    "mul_number": lambda m, F: _t(m, A) * 3.0,
    "div": lambda m, F: _t(m, A) / _t(m, P),
    "div_number": lambda m, F: _t(m, A) / 3.0,
    "neg": lambda m, F: -_t(m, A),
    "pow_number": lambda m, F: _t(m, A) ** 2,
    "pow_tensor": lambda m, F: _t(m, P) ** _t(m, B),
    "rpow": lambda m, F: 2.0 ** _t(m, A),
    "abs": lambda m, F: _t(m, A).abs(),
    "exp": lambda m, F: _t(m, A).exp(),
    "log": lambda m, F: _t(m, P).log(),
    "sqrt": lambda m, F: _t(m, P).sqrt(),
    "rsqrt": lambda m, F: _t(m, P).rsqrt(),
    "log1p": lambda m, F: _t(m, P).log1p(),
    "expm1": lambda m, F: _t(m, A).expm1(),
    "reciprocal": lambda m, F: _t(m, P).reciprocal(),
    "square": lambda m, F: _t(m, A).square(),
    "sin": lambda m, F: _t(m, A).sin(),
    "cos": lambda m, F: _t(m, A).cos(),
    "tanh": lambda m, F: _t(m, A).tanh(),
    "sigmoid": lambda m, F: _t(m, A).sigmoid(),
    "clamp": lambda m, F: _t(m, A).clamp(-0.5, 0.5),
    "clamp_min": lambda m, F: _t(m, A).clamp(min=0.0),
    "clamp_tensor": lambda m, F: _t(m, A).clamp(_t(m, B)),
    "atan2": lambda m, F: m.atan2(_t(m, A), _t(m, B)),
    "hypot": lambda m, F: m.hypot(_t(m, A), _t(m, B)),
    "logaddexp": lambda m, F: m.logaddexp(_t(m, A), _t(m, B)),
    "logaddexp2": lambda m, F: m.logaddexp2(_t(m, A), _t(m, B)),
    "lgamma": lambda m, F: _t(m, P).lgamma(),
    "digamma": lambda m, F: _t(m, P).digamma(),
    "sign": lambda m, F: _t(m, A).sign(),
    "floor": lambda m, F: _t(m, A).floor(),
    "ceil": lambda m, F: _t(m, A).ceil(),
    "trunc": lambda m, F: _t(m, A).trunc(),
    "maximum": lambda m, F: m.maximum(_t(m, A), _t(m, B)),
    "minimum": lambda m, F: m.minimum(_t(m, A), _t(m, B)),
    "where": lambda m, F: m.where(m.tensor(A > 0), _t(m, A), _t(m, B)),
    "lerp": lambda m, F: m.lerp(_t(m, A), _t(m, B), 0.3),
    "lerp_tensor_weight": lambda m, F: m.lerp(_t(m, A), _t(m, B), _t(m, P / 4)),
    "lerp_0d_tensor_weight": lambda m, F: _t(m, A).lerp(_t(m, B), m.tensor(np.float64(0.3))),
    "round": lambda m, F: _t(m, A).round(),
    "round_decimals": lambda m, F: m.round(_t(m, A), decimals=2),
    "round_decimals_0": lambda m, F: _t(m, A).round(decimals=0),
    "fmod_number": lambda m, F: m.fmod(_t(m, A), 0.7),
    "fmod_tensor": lambda m, F: _t(m, A).fmod(_t(m, P)),
    "fmod_0d_tensor": lambda m, F: m.fmod(_t(m, A), m.tensor(0.7)),
    "remainder_number": lambda m, F: m.remainder(_t(m, A), 0.7),
    "remainder_tensor": lambda m, F: m.remainder(_t(m, A), _t(m, P, requires_grad=False)),
    "mod_number": lambda m, F: _t(m, A) % 0.7,
    "mod_tensor": lambda m, F: _t(m, A) % _t(m, P),
    "to_float32": lambda m, F: _t(m, A).to(m.float32),
    "clone": lambda m, F: _t(m, A).clone(),
    # reductions
    "sum": lambda m, F: _t(m, A).sum(),
    "sum_dim": lambda m, F: _t(m, A).sum(1),
    "sum_dim_keepdim": lambda m, F: _t(m, A).sum(0, keepdim=True),
    "sum_every_dim_named": lambda m, F: _t(m, A).sum((0, 1)),
    "sum_dim_of_vector": lambda m, F: _t(m, V).sum(0),
    "mean": lambda m, F: _t(m, A).mean(),
    "mean_dim": lambda m, F: _t(m, A).mean(1),
    "prod": lambda m, F: _t(m, P).prod(),
    "prod_dim": lambda m, F: _t(m, P).prod(1),
    "max": lambda m, F: _t(m, A).max(),
    "min": lambda m, F: _t(m, A).min(),
    "max_dim": lambda m, F: _t(m, A).max(1)[0],
    "max_dim_keepdim": lambda m, F: _t(m, A).max(1, keepdim=True)[0],
    "min_dim": lambda m, F: _t(m, A).min(0)[0],
    "sort": lambda m, F: _t(m, A).sort(1)[0],
    "topk": lambda m, F: _t(m, A).topk(2)[0],
    "kthvalue": lambda m, F: _t(m, A).kthvalue(2, 1)[0],
    "median": lambda m, F: _t(m, A).median(),
    "median_dim": lambda m, F: _t(m, A).median(1)[0],
    "nanmedian_dim": lambda m, F: _t(m, A).nanmedian(1)[0],
    "mode": lambda m, F: _t(m, A).mode(1)[0],
    "amax": lambda m, F: _t(m, A).amax(1),
    "amin": lambda m, F: _t(m, A).amin(1),
    "var": lambda m, F: _t(m, A).var(),
    "var_dim": lambda m, F: _t(m, A).var(1),
    "std": lambda m, F: _t(m, A).std(),
    "norm": lambda m, F: _t(m, A).norm(),
    "logsumexp": lambda m, F: _t(m, A).logsumexp(1),
    "cumsum": lambda m, F: _t(m, A).cumsum(1),
    "cumprod": lambda m, F: _t(m, A).cumprod(1),
    "logcumsumexp": lambda m, F: _t(m, A).logcumsumexp(1),
    # shape ops and views
    "view": lambda m, F: _t(m, A).view(4, 3),
    "reshape": lambda m, F: _t(m, A).reshape(4, 3),
    "reshape_same_shape": lambda m, F: _t(m, A).reshape(3, 4),
    "reshape_copy": lambda m, F: _t(m, A).t().reshape(12),  # (UnsafeViewBackward0 over CloneBackward0)
    "reshape_alias": lambda m, F: _t(m, A)[:, 1:].reshape(9),
    "t_": lambda m, F: _inplace(m, lambda t: t.t_()),  # (the in-place overload's node: TBackward1)
    "unsqueeze_": lambda m, F: _inplace(m, lambda t: t.unsqueeze_(0)),
    "squeeze_": lambda m, F: _inplace(m, lambda t: t.unsqueeze_(0).squeeze_()),
    "transpose_": lambda m, F: _inplace(m, lambda t: t.transpose_(0, 1)),
    "flatten": lambda m, F: _t(m, A).flatten(),
    "t": lambda m, F: _t(m, A).t(),
    "t_of_vector": lambda m, F: _t(m, V).t(),
    "T": lambda m, F: _t(m, A).T,
    "mT": lambda m, F: _t(m, B3).mT,
    "transpose": lambda m, F: _t(m, B3).transpose(0, 2),
    "swapaxes": lambda m, F: m.swapaxes(_t(m, B3), 0, 1),
    "permute": lambda m, F: _t(m, B3).permute(2, 0, 1),
    "unsqueeze": lambda m, F: _t(m, A).unsqueeze(0),
    "squeeze": lambda m, F: _t(m, A).unsqueeze(0).squeeze(),
    "squeeze_dim": lambda m, F: _t(m, A).unsqueeze(0).squeeze(0),
    "squeeze_dims": lambda m, F: _t(m, A).unsqueeze(0).squeeze((0, 1)),
    "expand": lambda m, F: _t(m, V).expand(3, 4),
    "expand_as": lambda m, F: _t(m, V).expand_as(_t(m, A)),
    "repeat": lambda m, F: _t(m, A).repeat(2, 1),
    "flip": lambda m, F: _t(m, A).flip(0),
    "roll": lambda m, F: _t(m, A).roll(1, 0),
    "contiguous_of_transposed": lambda m, F: _t(m, A).t().contiguous(),
    "narrow": lambda m, F: _t(m, A).narrow(1, 1, 2),
    "select": lambda m, F: _t(m, A).select(0, 1),
    "diagonal": lambda m, F: _t(m, A).diagonal(),
    "diag": lambda m, F: m.diag(_t(m, V)),
    "diag_embed": lambda m, F: m.diag_embed(_t(m, A)),
    "tril": lambda m, F: _t(m, A).tril(),
    "triu": lambda m, F: _t(m, A).triu(),
    # indexing: the last op PyTorch applies names the node
    "index_int": lambda m, F: _t(m, A)[1],
    "index_negative_int": lambda m, F: _t(m, A)[-1],
    "index_int_int": lambda m, F: _t(m, A)[1, 2],
    "index_0d_tensor": lambda m, F: _t(m, A)[m.tensor(1)],
    "index_slice": lambda m, F: _t(m, A)[1:],
    "index_whole_slice": lambda m, F: _t(m, A)[:],
    "index_slice_step": lambda m, F: _t(m, A)[::2],
    "index_slice_past_end": lambda m, F: _t(m, A)[1:10],
    "index_whole_slices": lambda m, F: _t(m, A)[:, :],
    "index_slice_then_whole": lambda m, F: _t(m, A)[1:, :],
    "index_whole_then_slice": lambda m, F: _t(m, A)[:, 1:3],
    "index_slice_then_int": lambda m, F: _t(m, A)[1:, 1],
    "index_int_then_slice": lambda m, F: _t(m, A)[1, 1:3],
    "index_ellipsis": lambda m, F: _t(m, A)[...],
    "index_ellipsis_int": lambda m, F: _t(m, A)[..., 1],
    "index_ellipsis_slice": lambda m, F: _t(m, A)[..., 0:2],
    "index_none": lambda m, F: _t(m, A)[None],
    "index_none_then_int": lambda m, F: _t(m, A)[None, 1],
    "index_int_then_none": lambda m, F: _t(m, A)[1, None],
    "index_whole_then_none": lambda m, F: _t(m, A)[:, None],
    "index_list": lambda m, F: _t(m, A)[[0, 2]],
    "index_long_tensor": lambda m, F: _t(m, A)[m.tensor(np.array([0, 2]))],
    "index_bool_tensor": lambda m, F: _t(m, A)[m.tensor(A > 0)],
    "index_int_then_list": lambda m, F: _t(m, A)[1, [0, 1]],
    "index_whole_then_list": lambda m, F: _t(m, A)[:, [0, 1]],
    "index_True": lambda m, F: _t(m, A)[True],
    "index_select": lambda m, F: _t(m, A).index_select(0, m.tensor(np.array([0, 2]))),
    "gather": lambda m, F: _t(m, A).gather(1, m.tensor(np.array([[0], [1], [2]]))),
    "masked_fill": lambda m, F: _t(m, A).masked_fill(m.tensor(A > 0), 0.0),
    "index_add": lambda m, F: _t(m, A).index_add(0, m.tensor(np.array([0, 2])), _t(m, B[:2])),
    # activations
    "relu": lambda m, F: F.relu(_t(m, A)),
    "gelu": lambda m, F: F.gelu(_t(m, A)),
    "silu": lambda m, F: F.silu(_t(m, A)),
    "leaky_relu": lambda m, F: F.leaky_relu(_t(m, A), 0.1),
    "elu": lambda m, F: F.elu(_t(m, A)),
    "softplus": lambda m, F: F.softplus(_t(m, A)),
    "hardtanh": lambda m, F: F.hardtanh(_t(m, A)),
    "softmax": lambda m, F: F.softmax(_t(m, A), 1),
    "log_softmax": lambda m, F: F.log_softmax(_t(m, A), 1),
    "logsigmoid": lambda m, F: F.logsigmoid(_t(m, A)),
    "hardswish": lambda m, F: F.hardswish(_t(m, A)),
    "hardsigmoid": lambda m, F: F.hardsigmoid(_t(m, A)),
    "mish": lambda m, F: F.mish(_t(m, A)),
    "selu": lambda m, F: F.selu(_t(m, A)),
    "celu": lambda m, F: F.celu(_t(m, A)),
    "glu": lambda m, F: F.glu(_t(m, A)),
    "softshrink": lambda m, F: F.softshrink(_t(m, A)),
    "hardshrink": lambda m, F: F.hardshrink(_t(m, A)),
    "threshold": lambda m, F: F.threshold(_t(m, A), 0.1, 0.0),
    # losses
    "l1_loss": lambda m, F: F.l1_loss(_t(m, A), m.tensor(B)),
    "nll_loss": lambda m, F: F.nll_loss(_t(m, A), m.tensor(LABELS)),
    "bce_with_logits": lambda m, F: F.binary_cross_entropy_with_logits(_t(m, A), m.tensor((B > 0) * 1.0)),
    "bce": lambda m, F: F.binary_cross_entropy(_t(m, A).sigmoid(), m.tensor((B > 0) * 1.0)),
    "smooth_l1_loss": lambda m, F: F.smooth_l1_loss(_t(m, A), m.tensor(B)),
    "soft_margin_loss": lambda m, F: F.soft_margin_loss(_t(m, A), m.tensor(np.sign(B))),
    # the matmul family, convolution, normalization
    "matmul_matrices": lambda m, F: _t(m, A) @ _t(m, C),
    "matmul_matrix_vector": lambda m, F: _t(m, A) @ _t(m, V),
    "matmul_vectors": lambda m, F: _t(m, V) @ _t(m, V),
    "mm": lambda m, F: m.mm(_t(m, A), _t(m, C)),
    "bmm": lambda m, F: m.bmm(_t(m, B3), _t(m, B3b)),
    "dot": lambda m, F: m.dot(_t(m, V), _t(m, V)),
    "conv2d": lambda m, F: F.conv2d(_t(m, X4), _t(m, W4), _t(m, V)),
    "max_pool2d": lambda m, F: F.max_pool2d(_t(m, X4), 2),
    "avg_pool2d": lambda m, F: F.avg_pool2d(_t(m, X4), 2),
    "layer_norm": lambda m, F: F.layer_norm(_t(m, A), (4,), _t(m, V), _t(m, V)),
    "batch_norm": lambda m, F: F.batch_norm(_t(m, A), None, None, training=True),
    "group_norm": lambda m, F: F.group_norm(_t(m, X4), 3),
    "embedding": lambda m, F: F.embedding(m.tensor(np.array([0, 2])), _t(m, A)),
    "embedding_bag": lambda m, F: F.embedding_bag(m.tensor(np.array([0, 1, 2, 1])), _t(m, A),
                                                  m.tensor(np.array([0, 2]))),
    "det": lambda m, F: m.linalg.det(_t(m, A[:, :3])),
    # padding: a node per mode and number of padded dims, as PyTorch's
    "pad_constant": lambda m, F: F.pad(_t(m, X4), (1, 1, 2, 2)),
    "pad_constant_value_crop": lambda m, F: F.pad(_t(m, A), (-1, 2), value=0.5),
    "pad_reflect_1d": lambda m, F: F.pad(_t(m, B3), (1, 2), mode="reflect"),
    "pad_reflect_2d": lambda m, F: F.pad(_t(m, X4), (1, 1, 0, 2), mode="reflect"),
    "pad_reflect_3d": lambda m, F: F.pad(_t(m, X4), (1, 1, 1, 1, 1, 1), mode="reflect"),
    "pad_replicate_1d": lambda m, F: F.pad(_t(m, A), (2, 0), mode="replicate"),
    "pad_replicate_2d": lambda m, F: F.pad(_t(m, X4), (0, 0, 1, 1), mode="replicate"),
    "pad_replicate_3d": lambda m, F: F.pad(_t(m, X4), (1, 0, 0, 1, 2, 2), mode="replicate"),
    # the pieces of a multi-output op: the op's node (distnn's a node per piece, named as PyTorch's one)
    "chunk": lambda m, F: _t(m, A).chunk(2, 1)[0],
    "unbind": lambda m, F: _t(m, A).unbind(0)[0],
    # cat and stack
    "cat": lambda m, F: m.cat([_t(m, A), _t(m, B)]),
    "cat_dim1": lambda m, F: m.cat([_t(m, A), _t(m, B)], 1),
    "stack": lambda m, F: m.stack([_t(m, A), _t(m, B)]),
    # in place, on a non-leaf
    "add_": lambda m, F: _inplace(m, lambda t: t.add_(1.0)),
    "mul_tensor_": lambda m, F: _inplace(m, lambda t: t.mul_(_t(m, B))),
    "iadd": lambda m, F: _inplace(m, lambda t: t.__iadd__(_t(m, B))),
    "relu_": lambda m, F: _inplace(m, lambda t: t.relu_()),
    "copy_": lambda m, F: _inplace(m, lambda t: t.copy_(_t(m, B))),
    "exp_": lambda m, F: _inplace(m, lambda t: t.exp_()),
    "clamp_": lambda m, F: _inplace(m, lambda t: t.clamp_(0, 1)),
    "setitem_number": lambda m, F: _inplace(m, lambda t: t.__setitem__(0, 1.0)),
    "setitem_tensor": lambda m, F: _inplace(m, lambda t: t.__setitem__(0, _t(m, V))),
}

# name -> (the computation, why distnn's graph is another than PyTorch's): distnn keeps a name of its own
SKIPPED = {
    "rdiv": (lambda m, F: 1.0 / _t(m, P), "PyTorch records reciprocal then mul (MulBackward0 over "
             "ReciprocalBackward0), distnn one node"),
    "cross_entropy": (lambda m, F: F.cross_entropy(_t(m, A), m.tensor(LABELS)),
                      "PyTorch records log_softmax then nll_loss, distnn one fused node"),
    "mse_loss": (lambda m, F: F.mse_loss(_t(m, A), m.tensor(B)), "PyTorch's is one MseLossBackward0 node, "
                 "distnn composes it of recorded ops"),
    "kl_div_batchmean": (lambda m, F: F.kl_div(_t(m, A), m.tensor(P), reduction="batchmean"),
                         "PyTorch divides a kl_div sum by the batch size (two nodes), distnn one fused node"),
    "matmul_batched": (lambda m, F: _t(m, B3) @ _t(m, B3b), "PyTorch folds the batch dims around a bmm "
                       "(UnsafeViewBackward0 over BmmBackward0), distnn one MatMul node"),
    "linear": (lambda m, F: F.linear(_t(m, A), _t(m, C.T), _t(m, C[0])),
               "PyTorch records addmm over t() of the weight (AddmmBackward0, TBackward0), distnn one fused node"),
    "zero_": (lambda m, F: _inplace(m, lambda t: t.zero_()), "PyTorch records ZeroBackward0, distnn writes "
              "the zeros through an index (CopySlices)"),
    "conv1d": (lambda m, F: F.conv1d(_t(m, X4[:, :, 0]), _t(m, W4[:, :, 0])), "PyTorch's convolution is one node, "
               "distnn's 1-D one a 2-D convolution between an unsqueeze and a squeeze"),
    "max_pool1d": (lambda m, F: F.max_pool1d(_t(m, X4[:, :, 0]), 2), "PyTorch pools 1-D as 2-D between an unsqueeze "
                   "and a squeeze (SqueezeBackward1 on top), distnn in one MaxPool1d node"),
    "pad_circular": (lambda m, F: F.pad(_t(m, X4), (1, 1, 1, 1), mode="circular"), "PyTorch copies the input and "
                     "its wrapped edges into slices of a new tensor (CopySlices on top), distnn one gather node"),
    "matmul_dense_sparse": (lambda m, F: _t(m, A) @ m.tensor(C).to_sparse(), "PyTorch's is one MmBackward0 node, "
                            "distnn computes it as a transpose of sparse @ dense (TransposeBackward0 on top)"),
    "instance_norm": (lambda m, F: F.instance_norm(_t(m, X4)), "PyTorch records a batch_norm between two views "
                      "(ViewBackward0 on top), distnn one node"),
}


def _torch_functional(torch):
    import torch.nn.functional as TF

    return TF


@pytest.mark.parametrize("op", sorted(TABLE))
def test_grad_fn_name_is_torchs(torch, op):
    d, t = TABLE[op](distnn, DF), TABLE[op](torch, _torch_functional(torch))
    want = t.grad_fn.name()
    assert d.grad_fn.name() == want
    # the name survives backward freeing the node (a tensor printed after the step), as PyTorch's does
    d.sum().backward()
    t.sum().backward()
    assert d.grad_fn.name() == t.grad_fn.name() == want


@pytest.mark.parametrize("op", ["index_int", "index_list", "view", "matmul_matrices", "max_dim", "prod_dim"])
def test_the_name_survives_autograd_grad_freeing_the_node(torch, op):
    d, t = TABLE[op](distnn, DF), TABLE[op](torch, _torch_functional(torch))
    leaf = d.grad_fn.next_functions[0][0].variable
    distnn.autograd.grad(d.sum(), leaf)
    torch.autograd.grad(t.sum(), t.grad_fn.next_functions[0][0].variable)
    assert d.grad_fn.parents is None  # (freed)
    assert d.grad_fn.name() == t.grad_fn.name()


@pytest.mark.parametrize("op", sorted(SKIPPED))
def test_a_node_of_another_graph_keeps_a_name_of_its_own(torch, op):
    f, why = SKIPPED[op]
    d, t = f(distnn, DF), f(torch, _torch_functional(torch))
    assert why and d.grad_fn.name() != t.grad_fn.name()  # (when they agree, the op belongs in TABLE)


def test_custom_function_and_fallback_names_keep_the_class_name(torch):
    class Twice(distnn.autograd.Function):
        def forward(self, a):
            return a * 2

        def backward(self, g):
            return (g * 2,)

    y = Twice.apply(_t(distnn, A))
    assert y.grad_fn.name() == "TwiceBackward"
    y.sum().backward()
    assert y.grad_fn.name() == "TwiceBackward"


def _repr_pattern(name):
    return re.compile(rf"<{re.escape(name)} object at 0x[0-9a-f]+>\Z")


@pytest.mark.parametrize("op", ["mul", "index_int", "index_slice", "sum_dim", "t", "matmul_matrices"])
def test_node_repr_and_the_tensors_grad_fn_suffix_are_torchs(torch, op):
    d, t = TABLE[op](distnn, DF), TABLE[op](torch, _torch_functional(torch))
    name = t.grad_fn.name()
    assert _repr_pattern(name).match(repr(d.grad_fn)), repr(d.grad_fn)
    assert _repr_pattern(name).match(repr(t.grad_fn))
    assert repr(d.grad_fn) == f"<{name} object at {id(d.grad_fn):#x}>"
    assert str(d).endswith(f"grad_fn=<{name}>)")
    assert str(d).rsplit("grad_fn=", 1)[1] == str(t).rsplit("grad_fn=", 1)[1]
    d.sum().backward()  # (freed by backward: the same repr)
    assert _repr_pattern(name).match(repr(d.grad_fn))


def test_repr_of_a_custom_function_node_and_accumulate_grad_are_torchs(torch):
    Twice, TorchTwice = doubling_functions(torch)  # (both classes named Twice)
    x, tx = _t(distnn, A), _t(torch, A)
    assert _repr_pattern("distnn.autograd.function.TwiceBackward").match(repr(Twice.apply(x).grad_fn))
    assert _repr_pattern("torch.autograd.function.TwiceBackward").match(repr(TorchTwice.apply(tx).grad_fn))
    acc, tacc = (x * 2).grad_fn.next_functions[0][0], (tx * 2).grad_fn.next_functions[0][0]
    assert _repr_pattern("AccumulateGrad").match(repr(acc)) and _repr_pattern("AccumulateGrad").match(repr(tacc))
