"""float16 tensors with a Python number: PyTorch's mul/div/leaky_relu/addcmul/addcdiv read the number as a float32
and round only the result to float16 (its "opmath"); distnn against torch 2.13 bit for bit, forward and backward,
on random inputs and scalars. add/sub (which do round the number into float16 first) and add's alpha guard the
unchanged rules."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import distnn as dn
import distnn.nn.functional as DF

RNG = np.random.default_rng(20261125)
SCALARS = [float(s) for s in RNG.standard_normal(12) * 3] + [0.1, 1 / 3, 0.7, 1e-3, 3.14159, -2.71828, 3001.0, 7]


def _bits(x):
    x = x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x.data)
    assert x.dtype == np.float16
    return x.view(np.uint16)


def _half(shape=(97,), scale=4.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float16)


def _check(fn_torch, fn_dn, arrays, s, grad=True):
    ts = [torch.tensor(a, requires_grad=grad) for a in arrays]
    ds = [dn.tensor(a, requires_grad=grad) for a in arrays]
    out_t, out_d = fn_torch(*ts, s), fn_dn(*ds, s)
    np.testing.assert_array_equal(_bits(out_d), _bits(out_t))
    if grad:
        g = _half(out_t.shape, 1.0)
        out_t.backward(torch.tensor(g))
        out_d.backward(dn.tensor(g))
        for t, d in zip(ts, ds):
            np.testing.assert_array_equal(_bits(d.grad), _bits(t.grad))


BINARY = {
    "h * s": lambda L, h, s: h * s,
    "s * h": lambda L, h, s: s * h,
    "h / s": lambda L, h, s: h / s,
    "s / h": lambda L, h, s: s / h,
    "mul(h, s)": lambda L, h, s: L.mul(h, s),
    "div(h, s)": lambda L, h, s: L.div(h, s),
    "leaky_relu(h, s)": lambda L, h, s: (TF if L is torch else DF).leaky_relu(h, s),
    "h + s": lambda L, h, s: h + s,  # (guards: add rounds the number into float16, as before)
    "h - s": lambda L, h, s: h - s,
    "add(h, h, alpha=s)": lambda L, h, s: L.add(h, h * 1, alpha=s),
}
# (torch's add with alpha on float16 rounds alpha into float16 and fuses in float32 over whole 32-element vectors,
# but its scalar loop over the last n % 32 elements rounds alpha * b into float16 first: a length of 96 keeps the
# guard to the vectorized body, which distnn's scaled_sum follows)
_LENGTH = {"add(h, h, alpha=s)": 96}


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("s", SCALARS)
def test_half_op_with_number_matches_torch_bitwise(name, s):
    fn = BINARY[name]
    _check(lambda h, s: fn(torch, h, s), lambda h, s: fn(dn, h, s), [_half((_LENGTH.get(name, 97),))], s)


@pytest.mark.parametrize("op", ["addcmul", "addcdiv"])
@pytest.mark.parametrize("s", SCALARS)
@pytest.mark.parametrize("shapes", [((97,), (97,), (97,)), ((5, 7), (1, 7), (5, 1)), ((3,), (3,), (3,))])
def test_half_addc_value_matches_torch_bitwise(op, s, shapes):
    arrays = [_half(shape) for shape in shapes]
    if op == "addcdiv":
        arrays[2] = arrays[2] + np.float16(9)  # (away from 0: no inf of a tiny divisor in the comparison)
    _check(lambda a, b, c, s: getattr(torch, op)(a, b, c, value=s),
           lambda a, b, c, s: getattr(dn, op)(a, b, c, value=s), arrays, s)


INPLACE = {
    "mul_": lambda h, s: h.mul_(s),
    "div_": lambda h, s: h.div_(s),
    "addcmul_": lambda h, s: h.addcmul_(h * 0.5, h * 1.5, value=s),
    "addcdiv_": lambda h, s: h.addcdiv_(h * 0.5, h * 0 + 3, value=s),
    "add_": lambda h, s: h.add_(s),  # (guard)
}


@pytest.mark.parametrize("name", list(INPLACE))
@pytest.mark.parametrize("s", SCALARS)
@pytest.mark.parametrize("grad_mode", [False, True])  # (off: distnn's direct in-place path; on: its general one)
def test_half_inplace_with_number_matches_torch_bitwise(name, s, grad_mode):
    h = _half()
    t, d = torch.tensor(h), dn.tensor(h)
    if grad_mode:  # (a non-leaf that requires grad: recorded, so the general path)
        tl, dl = torch.tensor(h, requires_grad=True), dn.tensor(h, requires_grad=True)
        t, d = tl * 1, dl * 1
    INPLACE[name](t, s)
    INPLACE[name](d, s)
    np.testing.assert_array_equal(_bits(d), _bits(t))
    if grad_mode:
        g = _half(h.shape, 1.0)
        t.backward(torch.tensor(g))
        d.backward(dn.tensor(g))
        np.testing.assert_array_equal(_bits(dl.grad), _bits(tl.grad))


def test_half_leaky_relu_inplace_matches_torch_bitwise():
    for s in SCALARS[:8]:
        h = _half()
        t, d = torch.tensor(h), dn.tensor(h)
        TF.leaky_relu(t, abs(s), inplace=True)
        DF.leaky_relu(d, abs(s), inplace=True)
        np.testing.assert_array_equal(_bits(d), _bits(t))


def test_half_times_an_int_past_float16_precision_matches_torch():
    h = _half()
    for n in (2049, 3001, 4097):  # (not exact in float16: torch reads them as float32)
        np.testing.assert_array_equal(_bits(dn.tensor(h) * n), _bits(torch.tensor(h) * n))
