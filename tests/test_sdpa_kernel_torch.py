"""distnn.nn.attention's sdpa_kernel, SDPBackend, SDPAParams and can_use_* against PyTorch 2.13 on CPU.

For each backend selection and input, F.scaled_dot_product_attention either runs (with the numbers of the
unrestricted call: distnn has one implementation) or fails as PyTorch's does: the same exception type and
message, and the same warnings (the reason PyTorch's CPU flash kernel would not take the input). The
selection and the priority order come back on exit, after an error too; the refusals of sdpa_kernel's
argument; the enum's names, values and printing; MultiheadAttention still importable from distnn.nn.attention.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn.functional import sdpa_backends  # noqa: E402
from distnn.nn import attention as DA  # noqa: E402

import torch.nn.attention as TA  # noqa: E402

TF = torch.nn.functional


def test_backend_enum_names_values_and_printing_equal_torchs():
    assert list(DA.SDPBackend.__members__) == list(TA.SDPBackend.__members__)
    for name, theirs in TA.SDPBackend.__members__.items():
        ours = DA.SDPBackend[name]
        assert int(ours) == int(theirs) and str(ours) == str(theirs) and repr(ours) == repr(theirs)


def _r(*shape):
    return np.random.default_rng(sum(shape)).standard_normal(shape)


# (query, key, value shapes, keyword arguments)
INPUTS = {
    "plain": ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4), {}),
    "3d": ((2, 3, 4), (2, 3, 4), (2, 3, 4), {}),
    "dropout": ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4), {"dropout_p": 0.5}),
    "3d_dropout": ((2, 3, 4), (2, 3, 4), (2, 3, 4), {"dropout_p": 0.5}),
    "gqa": ((1, 4, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4), {"enable_gqa": True}),
    "heads": ((1, 2, 3, 4), (1, 1, 3, 4), (1, 1, 3, 4), {}),
    "value_dim": ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 6), {}),
    "batch": ((2, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4), {}),
    "causal": ((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4), {"is_causal": True}),
    "float_mask": ((2, 2, 3, 4), (2, 2, 3, 4), (2, 2, 3, 4), {"attn_mask": _r(2, 1, 3, 3)}),
}
B = TA.SDPBackend
SELECTIONS = {
    "flash": ("FLASH_ATTENTION",), "math": ("MATH",), "flash_math": ("FLASH_ATTENTION", "MATH"),
    "efficient_cudnn": ("EFFICIENT_ATTENTION", "CUDNN_ATTENTION"), "none": (), "error": ("ERROR",),
    "overrideable": ("OVERRIDEABLE",),
}


def _outcome(lib, sdpa, enum, selection, case):
    """(the error's type and message or None, the warnings' messages, the output or None)."""
    qs, ks, vs, kw = INPUTS[case]
    kw = {k: (lib.tensor(v) if k == "attn_mask" else v) for k, v in kw.items()}
    q, k, v = (lib.tensor(_r(*s)) for s in (qs, ks, vs))
    backends = [getattr(enum, name) for name in selection]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with (TA if lib is torch else DA).sdpa_kernel(backends):
                out, error = sdpa(q, k, v, **kw), None
        except RuntimeError as e:
            out, error = None, (type(e), str(e))
    said = [str(w.message).split(" (Triggered internally")[0] for w in caught]
    return error, said, out


@pytest.mark.parametrize("selection", list(SELECTIONS))
@pytest.mark.parametrize("case", list(INPUTS))
def test_calls_allowed_and_refused_as_torchs_cpu(case, selection):
    t_err, t_said, _ = _outcome(torch, TF.scaled_dot_product_attention, TA.SDPBackend, SELECTIONS[selection], case)
    d_err, d_said, out = _outcome(distnn, DF.scaled_dot_product_attention, DA.SDPBackend, SELECTIONS[selection],
                                  case)
    assert d_err == t_err
    assert d_said == t_said
    if out is not None and "dropout_p" not in INPUTS[case][3]:  # (one implementation: the unrestricted numbers)
        qs, ks, vs, kw = INPUTS[case]
        kw = {k: (distnn.tensor(v) if k == "attn_mask" else v) for k, v in kw.items()}
        free = DF.scaled_dot_product_attention(*(distnn.tensor(_r(*s)) for s in (qs, ks, vs)), **kw)
        assert np.array_equal(out.data, free.data)


def test_selection_and_priority_come_back_on_exit_and_after_an_error():
    before, order = sdpa_backends.enabled_backends(), sdpa_backends.priority_order()
    q = distnn.tensor(_r(2, 3, 4))
    with pytest.raises(RuntimeError, match="No available kernel"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with DA.sdpa_kernel([DA.SDPBackend.CUDNN_ATTENTION, DA.SDPBackend.FLASH_ATTENTION], set_priority=True):
                assert sdpa_backends.priority_order()[:2] == [DA.SDPBackend.CUDNN_ATTENTION,
                                                               DA.SDPBackend.FLASH_ATTENTION]
                with torch.nn.attention.sdpa_kernel([B.CUDNN_ATTENTION, B.FLASH_ATTENTION], set_priority=True):
                    assert [int(b) for b in sdpa_backends.priority_order()] == torch._C._get_sdp_priority_order()
                with DA.sdpa_kernel(DA.SDPBackend.MATH):  # (nested: the inner one restores the outer one)
                    DF.scaled_dot_product_attention(q, q, q)
                assert sdpa_backends.enabled_backends() == [DA.SDPBackend.FLASH_ATTENTION,
                                                            DA.SDPBackend.CUDNN_ATTENTION]
                DF.scaled_dot_product_attention(q, q, q)  # (3-D: the flash kernel refuses it)
    assert sdpa_backends.enabled_backends() == before and sdpa_backends.priority_order() == order
    assert [int(b) for b in order] == torch._C._get_sdp_priority_order()
    assert sorted(int(b) for b in before) == sorted(int(b) for b in TA._cur_sdpa_kernel_backends())


@pytest.mark.parametrize("bad", [("MATH",), "math", None, 0], ids=["tuple", "str", "none", "int"])
def test_sdpa_kernel_refuses_what_torch_refuses(bad):
    def arg(enum):
        return tuple(getattr(enum, n) for n in bad) if isinstance(bad, tuple) else bad

    messages = []
    for lib in (TA, DA):
        with pytest.raises(AssertionError) as info:
            with lib.sdpa_kernel(arg(lib.SDPBackend)):
                pass
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "Backend must be an instance of SDPBackend" in messages[1]
    with DA.sdpa_kernel(DA.SDPBackend.MATH) as ctx, TA.sdpa_kernel(B.MATH) as theirs:
        assert ctx == theirs == {}


def test_can_use_flash_and_efficient_attention_answer_as_torch_without_cuda():
    q = _r(1, 2, 3, 4)
    theirs = TA.SDPAParams(*(torch.tensor(q),) * 3, None, 0.0, False, False)
    ours = DA.SDPAParams(*(distnn.tensor(q),) * 3, None, 0.0, False, False)
    assert (ours.dropout, ours.is_causal, ours.enable_gqa, ours.attn_mask) == (
        theirs.dropout, theirs.is_causal, theirs.enable_gqa, theirs.attn_mask)
    for name in ("can_use_flash_attention", "can_use_efficient_attention"):
        for debug in (False, True):
            with warnings.catch_warnings(record=True) as t_caught:
                warnings.simplefilter("always")
                t = getattr(TA, name)(theirs, debug)
            with warnings.catch_warnings(record=True) as d_caught:
                warnings.simplefilter("always")
                d = getattr(DA, name)(ours, debug)
            assert d is t is False and len(d_caught) == len(t_caught) == 0
        with pytest.raises(TypeError, match="SDPAParams"):
            getattr(DA, name)(q)


def test_multihead_attention_and_causal_mask_still_import_from_the_old_paths():
    from distnn.nn import MultiheadAttention
    from distnn.nn.attention import MultiheadAttention as M2, causal_mask

    assert MultiheadAttention is M2 and causal_mask(2).tolist() == [[False, True], [False, False]]
