"""Argument refusals against PyTorch 2.13: each place that words its parser's "received an invalid combination of
arguments" (reductions, their ``out=``, clamp, view, where, mm/bmm, linalg.matrix_norm, normal, isin, the
orthogonal polynomials), the in-place clamp's refusal of number bounds it cannot hold (C++'s dtype names), and
the methods that take no ``out`` (Python's own TypeError, the method named as PyTorch's). Oracle: torch, the same
call; the error's type and message must be the same."""
import pytest

from torch_outcome import both


def _x(L):
    return L.ones(2, 3)


def _ints(L, dtype):
    return L.tensor([1, 2], dtype=getattr(L, dtype))


CASES = {
    # reduce_arguments / reduce_out: sum, prod and mean's two overloads
    "sum keepdim without dim": lambda L: L.sum(_x(L), keepdim=True),
    "sum method keepdim without dim": lambda L: _x(L).sum(keepdim=True),
    "sum method out": lambda L: _x(L).sum(out=L.empty(2)),
    "mean method out": lambda L: _x(L).mean(out=L.empty(2)),
    "prod dim None": lambda L: L.prod(_x(L), None),
    "prod method dim None": lambda L: _x(L).prod(None),
    "sum out without dim": lambda L: L.sum(_x(L), out=L.empty(2)),
    "prod out without dim": lambda L: L.prod(_x(L), out=L.empty(2)),
    "sum out Parameter": lambda L: L.sum(_x(L), out=L.nn.Parameter(L.ones(2))),
    "sum method out Parameter": lambda L: _x(L).sum(out=L.nn.Parameter(L.ones(2))),
    "mean keepdim and out": lambda L: L.mean(_x(L), keepdim=True, out=L.empty(2)),
    "mean out int": lambda L: L.mean(_x(L), out=3),
    "mean dim out int": lambda L: L.mean(_x(L), 0, out=3),
    # reduce_out_more: std, var, all, any with a non-Tensor out
    "std dim out int": lambda L: L.std(_x(L), 0, out=3),
    "var out int": lambda L: L.var(_x(L), out=3),
    "all out int": lambda L: L.all(_x(L), out=3),
    "all dim out int": lambda L: L.all(_x(L), 0, out=3),
    "any dim out int": lambda L: L.any(_x(L), 0, out=3),
    # clamp_arguments
    "clamp Tensor max number min": lambda L: L.clamp(_x(L), max=L.ones(3), min=1),
    "clamp number min Tensor max": lambda L: L.clamp(_x(L), min=1, max=L.ones(3)),
    "clamp out str": lambda L: L.clamp(_x(L), out="a", min=1, max=L.ones(3)),
    "clamp method keywords": lambda L: _x(L).clamp(max=L.ones(3), min=1),
    "clamp method out": lambda L: _x(L).clamp(0, out=L.empty(2)),
    "clamp_ bound twice": lambda L: _x(L).clamp_(1, max=3, min=2),
    "clamp_min str": lambda L: L.clamp_min(_x(L), "a"),
    "clamp_min min None": lambda L: L.clamp_min(_x(L), min=None),
    "clamp_min_ None": lambda L: _x(L).clamp_min_(None),
    "clamp Parameter str": lambda L: L.clamp(L.nn.Parameter(L.ones(2)), "a"),
    # view_strides
    "view size and dtype": lambda L: _x(L).view(3, dtype=L.float32),
    "view keywords size dtype": lambda L: _x(L).view(size=(3, 2), dtype=L.float32),
    "view keywords dtype size": lambda L: _x(L).view(dtype=L.float32, size=(3, 2)),
    "view None": lambda L: _x(L).view(None),
    "view float": lambda L: _x(L).view(2.0),
    "view nothing": lambda L: _x(L).view(),
    "view float int": lambda L: _x(L).view(2.0, 3),
    "view list of floats": lambda L: _x(L).view([2.0, 3]),
    "view tuple of floats": lambda L: _x(L).view((2.0, 3)),
    "view unknown keyword": lambda L: _x(L).view(foo=3),
    "view size float": lambda L: _x(L).view(size=2.0),
    "view size list of floats": lambda L: _x(L).view(size=[2.0, 3]),
    "view size None": lambda L: _x(L).view(size=None),
    "view dtype None": lambda L: _x(L).view(dtype=None),
    "view tuple and int": lambda L: _x(L).view((2, 3), 1),
    "view shape keyword": lambda L: _x(L).view(shape=(6,)),
    "view Parameter": lambda L: _x(L).view(L.nn.Parameter(L.ones(2))),
    # where_out
    "where condition out": lambda L: L.where(_x(L) > 0, out=L.empty(2, 3)),
    "where condition input": lambda L: L.where(_x(L) > 0, _x(L)),
    "where condition input out": lambda L: L.where(_x(L) > 0, _x(L), out=L.empty(2, 3)),
    "where condition number out": lambda L: L.where(_x(L) > 0, 1.0, out=L.empty(2, 3)),
    "where Parameter out": lambda L: L.where(_x(L) > 0, L.nn.Parameter(_x(L)), out=L.nn.Parameter(_x(L))),
    # matmul_out
    "mm int out": lambda L: L.mm(_x(L), 3, out=L.empty(2)),
    "mm Parameter int out": lambda L: L.mm(L.nn.Parameter(_x(L)), 3, out=L.empty(2)),
    "mm out int": lambda L: L.mm(_x(L), _x(L).T, out=3),
    "bmm out int": lambda L: L.bmm(L.ones(1, 2, 3), L.ones(1, 3, 2), out=3),
    # linalg/_arguments
    "matrix_norm dim int": lambda L: L.linalg.matrix_norm(L.ones(3, 3), dim=1, keepdim=True),
    "matrix_norm keepdim then dim": lambda L: L.linalg.matrix_norm(L.ones(3, 3), keepdim=True, dim=1),
    "matrix_norm fro dim int": lambda L: L.linalg.matrix_norm(L.ones(3, 3), "fro", keepdim=True, dim=1),
    # sampling
    "normal two floats": lambda L: L.normal(0.0, 1.0),
    "normal two ints": lambda L: L.normal(0, 1),
    "normal int size": lambda L: L.normal(0.0, 1.0, 3),
    # index_math
    "isin two ints": lambda L: L.isin(1, 2),
    "isin float int": lambda L: L.isin(1.0, 2),
    # methods without out: Python's TypeError, named as PyTorch's
    "amax method out": lambda L: _x(L).amax(0, out=L.empty(3)),
    "amax method out only": lambda L: _x(L).amax(out=L.empty(3)),
    "amin method out": lambda L: _x(L).amin(dim=0, keepdim=True, out=L.empty(3)),
    "logsumexp method out": lambda L: _x(L).logsumexp(0, out=L.empty(3)),
    "norm method out": lambda L: _x(L).norm(2, 0, out=L.empty(3)),
    "norm method out only": lambda L: _x(L).norm(out=L.empty(3)),
    "max method out": lambda L: _x(L).max(0, out=L.empty(3)),
    "matmul method out": lambda L: _x(L).matmul(_x(L).T, out=L.empty(2, 2)),
}

POLYNOMIALS = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
               "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
               "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "hermite_polynomial_h",
               "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p"]

# in-place clamps of number bounds whose result the tensor cannot hold (C++'s names), and of Tensor bounds (ATen's)
CLAMP_CASTS = {
    "int64 clamp_ float": lambda L: _ints(L, "int64").clamp_(0.5),
    "int64 clamp_ float keyword": lambda L: _ints(L, "int64").clamp_(min=0.5),
    "int64 clamp_ int and float": lambda L: _ints(L, "int64").clamp_(0, 0.5),
    "int64 clamp_ 0-d tensor beside a number": lambda L: _ints(L, "int64").clamp_(L.tensor(0.5), 3),
    "int64 clamp_ complex": lambda L: _ints(L, "int64").clamp_(1 + 1j),
    "int32 clamp_ max float": lambda L: _ints(L, "int32").clamp_(max=0.5),
    "int16 clip_ float": lambda L: _ints(L, "int16").clip_(0.5),
    "int8 clamp_ float": lambda L: _ints(L, "int8").clamp_(0.5),
    "uint8 clamp_ negative float": lambda L: _ints(L, "uint8").clamp_(-1.5),
    "bool clamp_ int": lambda L: L.tensor([True]).clamp_(1),
    "bool clamp_ ints": lambda L: L.tensor([True]).clamp_(1, 2),
    "bool clamp_min_ int": lambda L: L.tensor([True]).clamp_min_(1),
    "bool torch.clamp_min_ float": lambda L: L.clamp_min_(L.tensor([True]), 0.5),
    "int64 torch.clamp_max_ float": lambda L: L.clamp_max_(_ints(L, "int64"), 0.5),
    "int64 torch.clip_ max float": lambda L: L.clip_(_ints(L, "int64"), max=0.5),
    "int64 clamp_ 0-d tensor": lambda L: _ints(L, "int64").clamp_(L.tensor(0.5)),
    "int64 clamp_min_ tensor": lambda L: _ints(L, "int64").clamp_min_(L.tensor([0.5])),
    "bool clamp_ bool": lambda L: L.tensor([True]).clamp_(True),
    "int64 clamp_ ints": lambda L: _ints(L, "int64").clamp_(2, 3),
    "float16 clamp_ float": lambda L: L.ones(2, dtype=L.float16).clamp_(0.5),
}


def _same_refusal(run):
    theirs, ours = both(run, exact_type=True)
    assert theirs[0] == "error", theirs  # (each case is one PyTorch refuses, or a clamp it runs)
    assert ours == theirs


@pytest.mark.parametrize("name", list(CASES))
def test_refusal_as_torch(name):
    _same_refusal(CASES[name])


@pytest.mark.parametrize("name", POLYNOMIALS)
def test_polynomial_of_two_numbers_refused_as_torch(name):
    _same_refusal(lambda L: getattr(L.special, name)(1.0, 2))


@pytest.mark.parametrize("name", list(CLAMP_CASTS))
def test_inplace_clamp_cast_as_torch(name):
    theirs, ours = both(CLAMP_CASTS[name], exact_type=True)
    assert ours == theirs


# Tensor methods that are distnn functions with the tensor first: PyTorch's methods take no out (those of several
# overloads, whose refusal its parser words as an invalid combination, are left out)
METHODS_WITHOUT_OUT = {
    "tril": (), "diagonal": (), "diag_embed": (), "trace": (), "swapaxes": (0, 1), "t": (), "tile": ((2,),),
    "rot90": (), "fliplr": (), "unflatten": (0, (3, 1)), "ravel": (), "unbind": (), "outer": ("v",),
    "dot": ("v",), "mm": ("m",), "mv": ("v",), "addmm": ("m", "m"), "kron": ("m",), "cross": ("m",),
    "masked_select": ("mask",), "argwhere": (), "cumprod": (0,), "cummax": (0,), "logcumsumexp": (0,),
    "diff": (), "nansum": (), "nanmean": (), "aminmax": (), "kthvalue": (1,), "mode": (), "unique": (),
    "unique_consecutive": (), "histc": (),
}


@pytest.mark.parametrize("name", list(METHODS_WITHOUT_OUT))
def test_method_out_refused_as_torch(name):
    def run(L):
        operands = {"v": L.ones(3), "m": L.ones(3, 3), "mask": L.ones(3, 3) > 0}
        args = [operands.get(a, a) if isinstance(a, str) else a for a in METHODS_WITHOUT_OUT[name]]
        return getattr(L.ones(3, 3), name)(*args, out=L.empty(3))

    _same_refusal(run)


@pytest.mark.parametrize("call", [lambda L, p: L.sum(p, keepdim=True), lambda L, p: L.prod(p, keepdim=True),
                                  lambda L, p: L.mean(p, keepdim=True), lambda L, p: L.prod(p, None),
                                  lambda L, p: L.mean(p, keepdim=True, out=L.empty(2))],
                         ids=["sum", "prod", "mean", "prod None", "mean out"])
def test_reduction_refusal_names_a_parameter_as_torch(call):
    _same_refusal(lambda L: call(L, L.nn.Parameter(L.ones(2, 3))))


WHERE_METHOD = {
    "number other and out": lambda L, x, c: x.where(c, 1.0, out=x),
    "out only": lambda L, x, c: x.where(c, out=x),
    "out None": lambda L, x, c: x.where(c, x, out=None),
    "other and out by keyword": lambda L, x, c: x.where(c, other=x, out=x),
    "condition alone": lambda L, x, c: x.where(c),
    "unknown keyword": lambda L, x, c: x.where(c, foo=1),
    "two unknown keywords": lambda L, x, c: x.where(c, x, foo=1, out=x),
    "number other": lambda L, x, c: x.where(c, 0.0),
    "keywords": lambda L, x, c: x.where(condition=c, other=0.0),
}


@pytest.mark.parametrize("name", list(WHERE_METHOD))
def test_where_method_arguments_as_torch(name):
    def run(L):
        x = L.tensor([1.0, -2.0])
        return WHERE_METHOD[name](L, x, x > 0)

    theirs, ours = both(run, exact_type=True)
    assert ours == theirs
