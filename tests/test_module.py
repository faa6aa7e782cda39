"""Module API: registration order, names, containers, modes, zero_grad, repr, state_dict errors."""
import numpy as np
import pytest

import distnn
from distnn import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.act = nn.ReLU()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(4, 4)
        self.blocks = nn.ModuleList([Block(), Block()])
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Linear(4, 1, bias=False)})
        self.drop = nn.Dropout(0.5)
        self.register_buffer("steps", np.zeros(1, np.float32))
        self.register_buffer("scratch", np.zeros(2, np.float32), persistent=False)


EXPECTED_PARAMS = [
    "stem.weight", "stem.bias",
    "blocks.0.conv.weight", "blocks.0.conv.bias", "blocks.0.bn.weight", "blocks.0.bn.bias",
    "blocks.1.conv.weight", "blocks.1.conv.bias", "blocks.1.bn.weight", "blocks.1.bn.bias",
    "heads.a.weight", "heads.a.bias", "heads.b.weight",
]


def test_named_parameters_in_registration_order():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == EXPECTED_PARAMS
    assert [p for p in net.parameters()] == [p for _, p in net.named_parameters()]
    assert len(list(net.stem.parameters())) == 2


def test_names_match_torch_for_the_same_architecture(torch):
    def build(lib):
        return lib.nn.Sequential(lib.nn.Conv2d(1, 4, 3), lib.nn.BatchNorm2d(4), lib.nn.ReLU(), lib.nn.Flatten(),
                                 lib.nn.Linear(4 * 4 * 4, 3), lib.nn.LayerNorm(3), lib.nn.PReLU())
    d, t = build(distnn), build(torch)
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in d.named_modules()] == [n for n, _ in t.named_modules()]
    assert list(d.state_dict()) == list(t.state_dict())
    for (n, p), (_, q) in zip(d.named_parameters(), t.named_parameters()):
        assert p.shape == tuple(q.shape), n


def test_repr_matches_torch(torch):
    def build(lib):
        return lib.nn.Sequential(
            lib.nn.Conv2d(1, 6, 5, padding=2), lib.nn.BatchNorm2d(6), lib.nn.ReLU(), lib.nn.MaxPool2d(2),
            lib.nn.Conv2d(6, 16, 3, stride=2, bias=False), lib.nn.AvgPool2d(2), lib.nn.Flatten(),
            lib.nn.Linear(16, 8), lib.nn.LayerNorm(8), lib.nn.Tanh(), lib.nn.Dropout(0.2), lib.nn.Linear(8, 2),
            lib.nn.LayerNorm(2, elementwise_affine=False), lib.nn.BatchNorm1d(2, affine=False),
            lib.nn.BatchNorm1d(2, bias=False, momentum=None), lib.nn.GELU(approximate="tanh"), lib.nn.LeakyReLU(0.2),
            lib.nn.Softmax(dim=1), lib.nn.Conv1d(2, 4, 3, padding=1, dilation=2, groups=2), lib.nn.AdaptiveAvgPool2d(1),
        )
    assert repr(build(distnn)) == repr(build(torch))



def test_repr_of_a_module_with_children_and_an_extra_repr_matches_torch(torch):
    """The one-line extra_repr goes on a line of its own above the children, as PyTorch's (distnn kept it
    beside the module's name): a parametrized Linear, a nested one, LinearCrossEntropyLoss."""
    def build(lib):
        from importlib import import_module

        parametrize = import_module(f"{lib.__name__}.nn.utils.parametrize")

        class Scale(lib.nn.Module):
            def forward(self, w):
                return 2 * w

        outer = lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.LinearCrossEntropyLoss(4, 3))
        parametrize.register_parametrization(outer[0], "weight", Scale())
        return outer

    assert repr(build(distnn)) == repr(build(torch))

def test_children_and_modules():
    net = Net()
    assert [n for n, _ in net.named_children()] == ["stem", "blocks", "heads", "drop"]
    names = [n for n, _ in net.named_modules()]
    assert names[:4] == ["", "stem", "blocks", "blocks.0"]
    assert "heads.b" in names and len(names) == len(list(net.modules()))


def test_where_names_the_qualified_path():
    net = Net()
    assert net.blocks[1].bn.where() == "BatchNorm2d 'blocks.1.bn'"
    assert net.heads["a"].where() == "Linear 'heads.a'"
    seq = nn.Sequential(nn.Linear(2, 2))
    assert seq[0].where() == "Linear '0'"
    outer = nn.Sequential(seq)  # re-parenting updates the name
    assert seq[0].where() == "Linear '0.0'" and outer.where() == "Sequential"


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.blocks.eval()
    assert net.training and not net.blocks[0].bn.training


def test_zero_grad():
    lin = nn.Linear(3, 2)
    lin(distnn.Tensor(np.ones((4, 3), np.float32))).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    assert (lin.weight.grad == 0).all() and lin.weight.grad.shape == (2, 3)
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_gradients_accumulate_until_zeroed():
    lin = nn.Linear(3, 1)
    x = distnn.Tensor(np.ones((2, 3), np.float32))
    lin(x).sum().backward()
    first = lin.weight.grad.copy()
    lin(x).sum().backward()
    np.testing.assert_allclose(lin.weight.grad, 2 * first)


def test_shared_parameter_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]


def test_state_dict_has_persistent_buffers_only():
    sd = Net().state_dict()
    assert "steps" in sd and "scratch" not in sd
    assert "blocks.0.bn.running_mean" in sd and "blocks.0.bn.num_batches_tracked" in sd
    assert all(isinstance(v, np.ndarray) for v in sd.values())


def test_state_dict_is_a_copy():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    sd["weight"][...] = 123
    assert not (lin.weight.data == 123).any()


def test_state_dict_without_copy_gives_the_arrays_themselves():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict(copy=False)
    assert sd["weight"] is lin.weight.data and sd["bias"] is lin.bias.data
    assert list(sd) == list(lin.state_dict())


def test_load_state_dict_in_place_and_strict_errors():
    a, b = Net(), Net()
    w_before = b.stem.weight
    b.load_state_dict(a.state_dict())
    assert b.stem.weight is w_before  # loaded in place: optimizers keep their references
    np.testing.assert_array_equal(b.stem.weight.data, a.stem.weight.data)

    sd = a.state_dict()
    del sd["heads.a.bias"]
    sd["extra.weight"] = np.zeros(3)
    with pytest.raises(KeyError) as err:
        b.load_state_dict(sd)
    msg = str(err.value)
    assert "missing keys: ['heads.a.bias']" in msg and "unexpected keys: ['extra.weight']" in msg
    missing, unexpected = b.load_state_dict(sd, strict=False)
    assert missing == ["heads.a.bias"] and unexpected == ["extra.weight"]


def test_load_state_dict_reports_every_shape_mismatch():
    a = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    b = nn.Sequential(nn.Linear(5, 3), nn.Linear(3, 1))
    with pytest.raises(ValueError) as err:
        b.load_state_dict(a.state_dict())
    msg = str(err.value)
    assert "'0.weight': checkpoint (3, 4) vs model (3, 5)" in msg
    assert "'1.weight': checkpoint (2, 3) vs model (1, 3)" in msg and "'1.bias'" in msg
    # nothing was half-loaded
    assert b[0].weight.shape == (3, 5)


def test_requires_grad_and_to_dtype():
    lin = nn.Linear(3, 2)
    lin.requires_grad_(False)
    assert not any(p.requires_grad for p in lin.parameters())
    bn = nn.BatchNorm1d(3).to(np.float64)
    assert bn.weight.dtype == np.float64 and bn.running_mean.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64  # integers are not cast


def test_sequential_indexing_and_apply():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU)
    assert [type(m).__name__ for m in seq[1:]] == ["ReLU", "Linear"]
    seen = []
    seq.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Sequential"]  # children first, as PyTorch
    out = seq(distnn.Tensor(np.ones((5, 2), np.float32)))
    assert out.shape == (5, 1)


def test_attribute_errors_are_clear():
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'wieght'"):
        nn.Linear(2, 2).wieght


def test_a_batchnorm_state_dict_without_num_batches_tracked_loads_as_in_pytorch(torch):
    """PyTorch fills the key in for version-less dicts (older checkpoints lack it) and keeps the module's count."""
    from distnn.models import build_model

    tbn = torch.nn.BatchNorm2d(3)
    tbn(torch.randn(4, 3, 2, 2))
    sd = {k: v.numpy() for k, v in tbn.state_dict().items() if k != "num_batches_tracked"}
    bn = nn.BatchNorm2d(3)
    bn.num_batches_tracked.data[...] = 7
    assert bn.load_state_dict(sd) == ([], [])
    np.testing.assert_allclose(bn.running_mean.data, tbn.running_mean.numpy(), rtol=1e-6)
    assert int(bn.num_batches_tracked.data) == 7  # kept, as torch keeps it
    with pytest.raises(KeyError, match=r"missing keys: \['running_mean'\]"):  # the other keys stay required
        bn.load_state_dict({k: v for k, v in sd.items() if k != "running_mean"})
    # nested (a ResNet's blocks): every BatchNorm's count may be absent, nothing else
    model = build_model("resnet", input_shape=(3, 8, 8), num_classes=4)
    full = model.state_dict()
    lean = {k: v for k, v in full.items() if not k.endswith("num_batches_tracked")}
    assert len(lean) < len(full) and model.load_state_dict(lean) == ([], [])
    with pytest.raises(KeyError, match="missing keys"):
        model.load_state_dict({k: v for k, v in lean.items() if not k.endswith("bn1.running_var")})
