"""Complex autograd, PyTorch's convention, and how an op opts in.

The gradient of a real loss ``L`` with respect to a complex tensor ``z = x + iy`` is
``dL/dx + i dL/dy`` (PyTorch's: the conjugate Wirtinger derivative times 2), so ``|z|^2`` gives ``2z``.
For a holomorphic ``f`` the chain rule then reads ``grad_z = grad_out * conj(f'(z))``: the real formulas
with the saved operands conjugated (``mul``: ``grad * conj(b)``, ``matmul``: ``grad @ b^H``).

A node is *complex* when an input that requires grad is complex or its output is (checked once per
recorded op by ``Function.apply``; the real path pays one dtype test per such input). Only ops that
declare complex support may record one; every other op refuses, naming itself, rather than give a
silently wrong gradient. A ``Function`` subclass opts in with ``supports_complex = True``, and then

* nothing more when its ``backward`` is right for complex as written (linear ops that read no operand:
  add, reshape, sum, indexing, cat...);
* or ``conj_saved = ("a", "b")``: the names of the saved attributes its ``backward`` multiplies by; for
  a complex node they are conjugated around the call (mul, div, exp, matmul);
* or a ``backward_complex(self, g)`` method, the engine's call for a complex node: its own formula
  (angle, sgn, pow, cast).

A real input that requires grad of a complex node (``x * 1j``) gets the real part of its gradient,
as PyTorch's ``handle_r_to_c``; the op's formula need not care. For ``create_graph=True`` a complex
node also needs a graph backward marked ``complex_ok`` (``derivatives.register(..., complex_ok=True)``).
"""
from __future__ import annotations


def conj(v):
    """The complex conjugate of a saved operand (an array or a number); a real one is returned as it is
    (no copy)."""
    dtype = getattr(v, "dtype", None)
    if dtype is None:
        return v.conjugate() if isinstance(v, complex) else v
    return v.conj() if dtype.kind == "c" else v


def mark(fn, arrays, needs, out_dtype) -> None:
    """Make recorded node ``fn`` a complex one, or refuse its op by name (called by ``Function.apply`` only
    when an input that requires grad or the output is complex)."""
    cls = type(fn)
    if not cls.supports_complex:
        what = "its result is complex" if out_dtype.kind == "c" else "an input that requires grad is complex"
        raise NotImplementedError(
            f"{cls.__name__} ({cls.__module__}) does not support complex autograd ({what}). Complex gradients "
            "cover + - * / neg reciprocal pow, conj, real, imag, abs, angle, sgn, exp, log, sqrt, sin, cos, tan, "
            "tanh, sinh, cosh, square, sum, mean, matmul/mm/bmm/dot/vdot, complex/polar/view_as_real/"
            "view_as_complex, casts, the shape and indexing ops, roll, distnn.fft's transforms and stft/istft; "
            "detach() the input or compute this op on view_as_real(z)")
    fn.complex_node = True
    if out_dtype.kind == "c":
        real = tuple(i for i, (a, need) in enumerate(zip(arrays, needs)) if need and a.dtype.kind != "c")
        if real:
            fn.real_inputs = real
    fn.backward = fn._backward_of_complex_node  # (an instance attribute: the engine calls it, real nodes never see it)
