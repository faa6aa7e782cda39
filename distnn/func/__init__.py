"""``distnn.func``: PyTorch's ``torch.func`` on distnn's reverse-mode engine.

``functional_call`` (in distnn.nn.utils.stateless); the transforms ``grad``, ``grad_and_value``, ``vjp``,
``jvp``, ``linearize`` (:mod:`.grad_transforms`), ``jacrev``, ``jacfwd``, ``hessian`` (:mod:`.jacobians`),
``vmap`` (:mod:`.vmap`: a loop over the samples), ``functionalize`` and ``stack_module_state``. They compose
as torch's (``grad(grad(f))``, ``vmap(grad(f))``, ``jacrev(jacrev(f))``): see :mod:`._tracking`. distnn has no
forward-mode AD: ``jvp``, ``linearize`` and ``jacfwd`` give torch's values by reverse passes.
"""
from distnn.nn.utils.stateless import func_functional_call as functional_call

from .functionalize import functionalize
from .grad_transforms import grad, grad_and_value, jvp, linearize, vjp
from .jacobians import hessian, jacfwd, jacrev
from .module_state import stack_module_state
from .vmap import vmap

__all__ = ["functional_call", "grad", "grad_and_value", "vjp", "jvp", "linearize", "jacrev", "jacfwd", "hessian",
           "vmap", "functionalize", "stack_module_state"]
