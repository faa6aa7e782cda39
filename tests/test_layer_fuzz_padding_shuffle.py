"""Seeded fuzz of the padding modules, the pixel and channel shuffles and Softmax2d against PyTorch (the
oracle), with tests/layer_fuzz_harness.py: random valid arguments and shapes, float64, outputs and input
gradients compared to tight tolerances; a configuration PyTorch takes and distnn refuses fails.

Covered: ConstantPad1d/2d/3d, ZeroPad1d/2d/3d, ReflectionPad1d/2d/3d, ReplicationPad1d/2d/3d,
CircularPad1d/2d/3d (batched and unbatched inputs, int or tuple padding, negative amounts), PixelShuffle,
PixelUnshuffle, ChannelShuffle with their F. functions, Softmax2d.

Left out, as for F.pad in test_layer_fuzz.py, each at its generator: circular padding wrapping more than
once around the cells a crop keeps, and a reflect/replicate/circular padding to an empty result (PyTorch's
results there are wrong or refused; distnn's are stated in test_padding_shuffle_oracle.py), and empty
inputs to the pixel shuffles (PyTorch's pixel_unshuffle returns an empty input unchanged, of the wrong
shape, and so pixel_shuffle's backward refuses its own gradient; distnn's shapes are tested there).

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4), ``DISTNN_LAYER_FUZZ_START`` the
first seed, as for tests/layer_fuzz_harness.py.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402

from layer_fuzz_harness import G, float32_pair, op_registry, run_cases  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


def _lead(c, n, empty=True):
    """n leading dims, now and then (with ``empty``) one of them 0 (an empty batch)."""
    return tuple(0 if empty and c.coin(0.05) else c.int(1, 3) for _ in range(n))


def _module_or_functional(c, module, functional, *args):
    if c.draw(functional=c.coin()):
        return (lambda x: getattr(DF, functional)(x, *args)), (lambda x: getattr(TF, functional)(x, *args))
    return getattr(dnn, module)(*args), getattr(torch.nn, module)(*args)


# ---------------------------------------------------------------------------- padding
def _pad_case(c, kind, dims):
    """(module args, input shape) for ``{kind}Pad{dims}d``, or None where left out."""
    shape = c.draw(shape=_lead(c, c.int(0, 1)) + (c.int(1, 3),) + tuple(c.int(1, 5) for _ in range(dims)))
    sizes = shape[::-1]  # (the pairs run from the last dimension backwards)
    # (reflect: each amount smaller than its dimension, or PyTorch refuses: most draws would be refused)
    top = [min(3, n - 1) if kind == "Reflection" else 3 for n in sizes[:dims] for _ in range(2)]
    if c.coin(0.3):
        padding = c.int(0, min(top))
    else:
        padding = tuple(c.int(-1, t) for t in top)
    c.draw(padding=padding)
    pairs = (padding,) * 2 * dims if isinstance(padding, int) else padding
    if kind == "Circular" and any(max(lo, hi) > n - max(-lo, 0) - max(-hi, 0)
                                  for lo, hi, n in zip(pairs[::2], pairs[1::2], sizes)):
        return None  # wrapping more than once around the cells kept: PyTorch's forward is garbage there
    if kind not in ("Constant", "Zero") and any(n + lo + hi <= 0 for lo, hi, n in zip(pairs[::2], pairs[1::2], sizes)):
        # An empty result: PyTorch refuses (or, reflect on some inputs, has a garbage gradient); cropped below
        # nothing: refused, but on an empty batch PyTorch's reflect gives a tensor of negative size. Left out.
        return None
    if kind == "Constant":
        return (padding, c.draw(value=c.pick(0.0, 1.5, -2, float("inf")))), shape
    return (padding,), shape


def _pad_op(kind, dims):
    name = f"{kind}Pad{dims}d"

    def generate(c):
        case = _pad_case(c, kind, dims)
        if case is None:
            return False
        args, shape = case
        return c.run(getattr(dnn, name)(*args), getattr(torch.nn, name)(*args), [G(c.normal(*shape))])
    return generate


for _kind in ("Constant", "Zero", "Reflection", "Replication", "Circular"):
    for _dims in (1, 2, 3):
        op(f"{_kind}Pad{_dims}d")(_pad_op(_kind, _dims))


# ---------------------------------------------------------------------------- shuffles, Softmax2d
@op("PixelShuffle")
def _pixel_shuffle(c):
    r = c.draw(upscale_factor=c.int(1, 3))
    shape = c.draw(shape=_lead(c, c.int(0, 2), empty=False) + (c.int(1, 2) * r * r, c.int(1, 3), c.int(1, 3)))
    dm, tm = _module_or_functional(c, "PixelShuffle", "pixel_shuffle", r)
    return c.run(dm, tm, [G(c.normal(*shape))])


@op("PixelUnshuffle")
def _pixel_unshuffle(c):
    r = c.draw(downscale_factor=c.int(1, 3))
    shape = c.draw(shape=_lead(c, c.int(0, 2), empty=False) + (c.int(1, 3), c.int(1, 2) * r, c.int(1, 3) * r))
    dm, tm = _module_or_functional(c, "PixelUnshuffle", "pixel_unshuffle", r)
    return c.run(dm, tm, [G(c.normal(*shape))])


@op("ChannelShuffle")
def _channel_shuffle(c):
    groups = c.draw(groups=c.int(1, 4))
    shape = c.draw(shape=_lead(c, 1) + (groups * c.int(1, 3),) + tuple(c.int(1, 3) for _ in range(c.int(1, 3))))
    dm, tm = _module_or_functional(c, "ChannelShuffle", "channel_shuffle", groups)
    return c.run(dm, tm, [G(c.normal(*shape))])


@op("Softmax2d")
def _softmax2d(c):
    shape = c.draw(shape=_lead(c, c.int(0, 1)) + (c.int(1, 4), c.int(1, 3), c.int(1, 3)))
    x = c.normal(*shape) * c.pick(1.0, 30.0)  # (large logits: the max subtracted)
    return c.run(dnn.Softmax2d(), torch.nn.Softmax2d(), [G(x)])


# ---------------------------------------------------------------------------- the fuzz
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # (numpy's, summing inf * upstream: a value=inf padding)
@pytest.mark.parametrize("name", sorted(OPS))
def test_padding_shuffle_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])


@pytest.mark.parametrize("layer, args, shape", [
    ("ConstantPad2d", ((1, 2, 0, 3), 0.5), (2, 3, 4, 5)),
    ("ZeroPad3d", (1,), (2, 2, 3, 4, 5)),
    ("ReflectionPad1d", ((3, 1),), (2, 3, 5)),
    ("ReflectionPad3d", ((1, 2, 0, 1, 2, 1),), (2, 2, 3, 4, 5)),
    ("ReplicationPad2d", ((2, -1, 3, 0),), (3, 4, 5)),
    ("CircularPad2d", ((2, 1, 1, 3),), (2, 3, 4, 5)),
    ("PixelShuffle", (2,), (2, 8, 3, 4)),
    ("PixelUnshuffle", (2,), (2, 3, 4, 6)),
    ("ChannelShuffle", (3,), (2, 6, 4, 5)),
    ("Softmax2d", (), (2, 5, 3, 4)),
])
def test_float32_matches_pytorch(layer, args, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    float32_pair(getattr(dnn, layer)(*args), getattr(torch.nn, layer)(*args), x)
