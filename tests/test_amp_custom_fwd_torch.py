"""distnn.amp.custom_fwd / custom_bwd / is_autocast_available against torch.amp's: the same custom matmul
Function in both, inside and outside CPU autocast, with and without cast_inputs: the dtypes forward sees, the
autocast state forward and backward run under, the output's and the gradients' dtypes and values."""
import numpy as np
import pytest
import torch

import distnn
from distnn.amp import custom_bwd, custom_fwd, is_autocast_available


def _torch_function(cast_inputs, seen):
    class MatMul(torch.autograd.Function):
        @staticmethod
        @torch.amp.custom_fwd(device_type="cpu", cast_inputs=cast_inputs)
        def forward(ctx, a, b):
            seen["forward"] = (str(a.dtype).replace("torch.", ""), torch.is_autocast_enabled("cpu"))
            ctx.save_for_backward(a, b)
            with torch.autocast("cpu", enabled=False):  # (the product itself in the dtype forward was given)
                return a @ b

        @staticmethod
        @torch.amp.custom_bwd(device_type="cpu")
        def backward(ctx, grad):
            seen["backward"] = torch.is_autocast_enabled("cpu")
            a, b = ctx.saved_tensors
            with torch.autocast("cpu", enabled=False):
                return (grad @ b.T).to(a.dtype), (a.T @ grad).to(b.dtype)
    return MatMul


def _distnn_function(cast_inputs, seen):
    class MatMul(distnn.Function):
        @custom_fwd(device_type="cpu", cast_inputs=cast_inputs)
        def forward(self, a, b):
            seen["forward"] = (str(a.dtype), distnn.is_autocast_enabled("cpu"))
            self.a, self.b = a, b
            return a @ b

        @custom_bwd(device_type="cpu")
        def backward(self, grad):
            seen["backward"] = distnn.is_autocast_enabled("cpu")
            return (grad @ self.b.T).astype(self.a.dtype), (self.a.T @ grad).astype(self.b.dtype)
    return MatMul


@pytest.mark.parametrize("cast", [None, "float32", "float16"])
@pytest.mark.parametrize("in_autocast", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_custom_fwd_bwd_match_torch(cast, in_autocast, dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal((4, 2)).astype(dtype)
    results = {}
    for lib in ("torch", "distnn"):
        seen = {}
        if lib == "torch":
            fn = _torch_function(None if cast is None else getattr(torch, cast), seen)
            x, y = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
            region = torch.autocast("cpu", dtype=torch.float16, enabled=in_autocast)
        else:
            fn = _distnn_function(None if cast is None else getattr(distnn, cast), seen)
            x, y = distnn.tensor(a, requires_grad=True), distnn.tensor(b, requires_grad=True)
            region = distnn.autocast("cpu", dtype=distnn.float16, enabled=in_autocast)
        with region:
            out = fn.apply(x, y)
        out.sum().backward()  # (outside the region: custom_bwd brings forward's state back)
        results[lib] = dict(seen, out=str(out.dtype).replace("torch.", ""), value=out.detach().float().numpy()
                            if lib == "torch" else out.numpy().astype(np.float32),
                            grads=(str(x.grad.dtype).replace("torch.", ""), str(y.grad.dtype).replace("torch.", "")),
                            gx=np.asarray(x.grad, dtype=np.float32))
    ours, theirs = results["distnn"], results["torch"]
    for key in ("forward", "backward", "out", "grads"):
        assert ours[key] == theirs[key], key
    tol = 2e-2 if "float16" in (ours["forward"][0], dtype) else 1e-5
    np.testing.assert_allclose(ours["value"], theirs["value"], rtol=tol, atol=tol)
    np.testing.assert_allclose(ours["gx"], theirs["gx"], rtol=tol, atol=tol)


def test_cast_inputs_gives_gradients_back_in_the_inputs_dtype_through_a_graph():
    fn = _distnn_function(distnn.float16, {})
    x = distnn.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    w = distnn.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    with distnn.autocast("cpu"):
        h = x * 2.0  # (a float32 node between the leaf and the op)
        out = fn.apply(h, w)
    assert out.dtype == np.float16
    out.sum().backward()
    assert x.grad.dtype == np.float32 and np.allclose(x.grad, 4.0)


def test_is_autocast_available_and_refusals_match_torch():
    for device in ("cpu", "cuda", "cuda:0", "mps", "meta", "xpu"):
        expected = device.partition(":")[0] in ("cpu", "cuda")
        assert is_autocast_available(device) is expected, device
        assert torch.amp.is_autocast_available(device) in (True, expected)
    for mod in (torch.amp, distnn.amp):
        with pytest.raises(RuntimeError, match="device type at start of device string: foo"):
            mod.is_autocast_available("foo")
        with pytest.raises(ValueError, match="Expected `device_type` of type `str`, got: `<class 'int'>`"):
            mod.custom_fwd(device_type=1)
        with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
            mod.custom_bwd(device_type=None)
        with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'device_type'"):
            mod.custom_fwd(lambda self, x: x)
