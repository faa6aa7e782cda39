"""Layers with float64 weights and a float32 (or integer) input, or the reverse, against torch 2.13: refused with
torch's error type and wording (numpy computed in float64, silently), while one dtype throughout still runs and
autocast's casts are still taken."""
import numpy as np
import pytest

import distnn
from distnn import nn

torch = pytest.importorskip("torch")

R = np.random.default_rng(0)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _pair(lib, cls, *args, dtype="float64", **kw):
    ns = torch.nn if lib is torch else nn
    m = getattr(ns, cls)(*args, **kw)
    return m.double() if dtype == "float64" else m.float()


def _input(lib, shape, dtype):
    x = (R.standard_normal(shape) * 3).astype(dtype)
    return torch.from_numpy(x) if lib is torch else distnn.Tensor(x)


# (module, its arguments, an input shape, the gist both messages hold)
MODULES = [
    ("Linear", (3, 4), (2, 3), "mat1 and mat2 must have the same dtype, but got {x} and {w}"),
    ("Bilinear", (3, 3, 4), None, "All tensors must have the same dtype, got input1: {xl}, input2: {xl}, weight: {wl}"),
    ("Conv1d", (2, 3, 2), (1, 2, 5), "Input type ({xl}) and bias type ({wl}) should be the same"),
    ("Conv2d", (2, 3, 2), (1, 2, 4, 4), "Input type ({xl}) and bias type ({wl}) should be the same"),
    ("Conv3d", (2, 3, 2), (1, 2, 3, 3, 3), "Input type ({xl}) and bias type ({wl}) should be the same"),
    ("ConvTranspose1d", (2, 3, 2), (1, 2, 5), "expected scalar type {x} but found {w}"),
    ("ConvTranspose2d", (2, 3, 2), (1, 2, 4, 4), "expected scalar type {x} but found {w}"),
    ("ConvTranspose3d", (2, 3, 2), (1, 2, 3, 3, 3), "expected scalar type {x} but found {w}"),
    ("LayerNorm", (3,), (2, 3), "mixed dtype (CPU)"),
    ("BatchNorm1d", (3,), (4, 3), "mixed dtype (CPU)"),
    ("BatchNorm2d", (2,), (4, 2, 3, 3), "mixed dtype (CPU)"),
    ("GroupNorm", (2, 4), (2, 4, 3), "mixed dtype (CPU)"),
    ("InstanceNorm1d", (4,), (2, 4, 3), "mixed dtype (CPU)"),
    ("LSTM", (3, 4), (2, 1, 3), "RNN input dtype (torch.{xn}) does not match weight dtype (torch.{wn}). "
                           "Convert input: input.to(torch.{wn}), or convert model: model.to(torch.{xn})"),
    ("GRU", (3, 4), (2, 1, 3), "RNN input dtype (torch.{xn}) does not match weight dtype (torch.{wn}). "
                          "Convert input: input.to(torch.{wn}), or convert model: model.to(torch.{xn})"),
    ("RNN", (3, 4), (2, 1, 3), "RNN input dtype (torch.{xn}) does not match weight dtype (torch.{wn}). "
                          "Convert input: input.to(torch.{wn}), or convert model: model.to(torch.{xn})"),
    ("LSTMCell", (3, 4), (2, 3), "mat1 and mat2 must have the same dtype, but got {x} and {w}"),
    ("GRUCell", (3, 4), (2, 3), "mat1 and mat2 must have the same dtype, but got {x} and {w}"),
    ("RNNCell", (3, 4), (2, 3), "mat1 and mat2 must have the same dtype, but got {x} and {w}"),
    ("MultiheadAttention", (4, 2), (2, 1, 4), "mat1 and mat2 must have the same dtype, but got {x} and {w}"),
]
NAMES = {"float32": ("Float", "float"), "float64": ("Double", "double")}
KW = {"InstanceNorm1d": {"affine": True}}


def _call(lib, m, cls, shape, dtype):
    if cls == "Bilinear":
        return m(_input(lib, (2, 3), dtype), _input(lib, (2, 3), dtype))
    x = _input(lib, shape, dtype)
    return m(x, x, x) if cls == "MultiheadAttention" else m(x)


@pytest.mark.parametrize("weights,inputs", [("float64", "float32"), ("float32", "float64")])
@pytest.mark.parametrize("case", MODULES, ids=[c[0] for c in MODULES])
def test_a_layer_refuses_an_input_of_another_dtype_as_torch(case, weights, inputs):
    cls, args, shape, gist = case
    (x, xl), (w, wl) = NAMES[inputs], NAMES[weights]
    gist = gist.format(x=x, xl=xl, w=w, wl=wl, xn=inputs, wn=weights)
    with pytest.raises(Exception) as theirs:
        _call(torch, _pair(torch, cls, *args, dtype=weights, **KW.get(cls, {})), cls, shape, inputs)
    with pytest.raises(Exception) as ours:
        _call(distnn, _pair(distnn, cls, *args, dtype=weights, **KW.get(cls, {})), cls, shape, inputs)
    assert type(theirs.value).__name__ in {c.__name__ for c in type(ours.value).__mro__}, (ours.value, theirs.value)
    assert gist in str(theirs.value) and gist in str(ours.value), (str(ours.value), str(theirs.value))


@pytest.mark.parametrize("case", MODULES, ids=[c[0] for c in MODULES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_dtype_throughout_still_runs_in_it(case, dtype):
    cls, args, shape, _ = case
    out = _call(distnn, _pair(distnn, cls, *args, dtype=dtype, **KW.get(cls, {})), cls, shape, dtype)
    out = out[0] if isinstance(out, tuple) else out
    assert out.dtype == np.dtype(dtype)


F_CASES = {  # functional forms with one odd operand out: (call, gist)
    "linear: bias": (lambda m, F, d: F.linear(d("f", 2, 3), d("f", 4, 3), d("d", 4)),
                     "self and mat2 must have the same dtype, but got Double and Float"),
    "linear: integer input": (lambda m, F, d: F.linear(m.ones(2, 3, dtype=m.int64), d("f", 4, 3)),
                              "expected m1 and m2 to have the same dtype, but got: long int != float"),
    "linear: 3-D input": (lambda m, F, d: F.linear(d("f", 2, 2, 3), d("d", 4, 3)), "same dtype"),
    "conv1d: weight": (lambda m, F, d: F.conv1d(d("f", 1, 2, 5), d("d", 3, 2, 2)),
                       "expected scalar type Float but found Double"),
    "conv2d: bias": (lambda m, F, d: F.conv2d(d("d", 1, 2, 4, 4), d("d", 3, 2, 2, 2), d("f", 3)),
                     "Input type (double) and bias type (float) should be the same"),
    "conv2d: integer input": (lambda m, F, d: F.conv2d(m.ones(1, 2, 4, 4, dtype=m.int64), d("f", 3, 2, 2, 2)),
                              "expected scalar type Long but found Float"),
    "conv_transpose3d: bias": (lambda m, F, d: F.conv_transpose3d(d("f", 1, 2, 3, 3, 3), d("f", 2, 3, 2, 2, 2),
                                                                  d("d", 3)),
                               "expected scalar type Float but found Double"),
    "layer_norm: weight only": (lambda m, F, d: F.layer_norm(d("f", 2, 3), (3,), d("d", 3)),
                                "mixed dtype (CPU): expect parameter to have scalar type of Float"),
    "batch_norm: running stats": (lambda m, F, d: F.batch_norm(d("f", 4, 3), d("d", 3), d("d", 3).abs()),
                                  "mixed dtype (CPU): expect parameter to have scalar type of Float"),
    "group_norm: float32 params": (lambda m, F, d: F.group_norm(d("d", 2, 4, 3), 2, d("f", 4), d("f", 4)),
                                   "mixed dtype (CPU): all inputs must share same datatype"),
    "instance_norm: weight": (lambda m, F, d: F.instance_norm(d("d", 2, 4, 3), weight=d("f", 4)),
                              "mixed dtype (CPU): all inputs must share same datatype"),
    "multi_head_attention_forward": (lambda m, F, d: F.multi_head_attention_forward(
        d("f", 2, 1, 4), d("f", 2, 1, 4), d("f", 2, 1, 4), 4, 2, d("d", 12, 4), d("d", 12), None, None, False, 0.,
        d("d", 4, 4), d("d", 4)), "mat1 and mat2 must have the same dtype, but got Float and Double"),
}


@pytest.mark.parametrize("name", sorted(F_CASES))
def test_functional_forms_refuse_as_torch(name):
    call, gist = F_CASES[name]

    def run(lib):
        F = torch.nn.functional if lib is torch else distnn.functional
        make = (lambda dt, *s: _input(lib, s, {"f": "float32", "d": "float64"}[dt]))
        with pytest.raises(Exception) as caught:
            call(lib, F, make)
        return caught.value
    theirs, ours = run(torch), run(distnn)
    assert type(theirs).__name__ in {c.__name__ for c in type(ours).__mro__}, (ours, theirs)
    assert gist in str(theirs) and gist in str(ours), (str(ours), str(theirs))


@pytest.mark.parametrize("cls,state", [("LSTM", "c_0"), ("GRU", "h_0"), ("GRUCell", "hidden state")])
def test_an_initial_state_of_another_dtype_is_refused(cls, state):
    m = getattr(nn, cls)(3, 4)
    x = _input(distnn, (2, 3) if cls.endswith("Cell") else (2, 1, 3), "float32")
    h = distnn.zeros(*((2, 4) if cls.endswith("Cell") else (1, 1, 4)), dtype=distnn.float64)
    hx = (h.float(), h) if cls == "LSTM" else h
    with pytest.raises(RuntimeError, match=f"mat1 and mat2 must have the same dtype, but got Double and Float "
                                           rf"\(the {state}'s dtype"):
        m(x, hx)


def test_lazy_modules_under_a_float64_default_refuse_float32_input_as_torch():
    ours, theirs = distnn.get_default_dtype(), torch.get_default_dtype()
    distnn.set_default_dtype(distnn.float64)
    torch.set_default_dtype(torch.float64)
    try:
        for cls, shape, gist in (("LazyLinear", (2, 3), "mat1 and mat2 must have the same dtype, but got Float and "
                                                        "Double"),
                                 ("LazyBatchNorm1d", (4, 3), "mixed dtype (CPU): expect parameter to have scalar type "
                                                             "of Float"),
                                 ("LazyConv1d", (1, 2, 5), "Input type (float) and bias type (double)")):
            args = () if cls == "LazyBatchNorm1d" else (3,) if cls == "LazyLinear" else (3, 2)
            for lib in (torch, distnn):
                ns = torch.nn if lib is torch else nn
                with pytest.raises(RuntimeError, match=gist.replace("(", r"\(").replace(")", r"\)")):
                    getattr(ns, cls)(*args)(_input(lib, shape, "float32"))
            y = getattr(nn, cls)(*args)(_input(distnn, shape, "float64"))
            assert y.dtype == np.float64
    finally:
        distnn.set_default_dtype(ours)
        torch.set_default_dtype(theirs)


def test_autocast_still_runs_a_float32_model_on_float32_input():
    m = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    with distnn.autocast("cpu"):
        y = m(_input(distnn, (2, 3), "float32"))
    assert y.shape == (2, 2)


def test_float16_input_with_float32_norm_parameters_is_torchs_mixed_type():
    for cls, args, shape in (("LayerNorm", (3,), (2, 3)), ("BatchNorm1d", (3,), (4, 3)), ("GroupNorm", (1, 2),
                                                                                          (2, 2, 3))):
        x = R.standard_normal(shape).astype(np.float16)
        getattr(torch.nn, cls)(*args)(torch.from_numpy(x))  # (allowed there)
        getattr(nn, cls)(*args)(distnn.Tensor(x))
