"""The rest of PyTorch's top-level functions (README "Tensor functions"): sampling (``normal``, ``poisson``,
``binomial``), the RNG state, threads, print options, determinism flags, the default device, process-state
queries, complex numbers and windows. ``distnn/__init__.py`` exports everything in ``__all__``.

The top-level creation functions are wrapped here so that they honour :func:`set_default_device`.
"""
from . import determinism, default_device, printing, process_state, rng_state, thread_settings
from .determinism import *  # noqa: F401,F403
from .default_device import *  # noqa: F401,F403
from .functional import complex_numbers, sampling, windows
from .functional.complex_numbers import *  # noqa: F401,F403
from .functional.sampling import *  # noqa: F401,F403
from .functional.windows import *  # noqa: F401,F403
from .printing import *  # noqa: F401,F403
from .process_state import *  # noqa: F401,F403
from .rng_state import *  # noqa: F401,F403
from .thread_settings import *  # noqa: F401,F403

__all__ = [*sampling.__all__, *rng_state.__all__, *thread_settings.__all__, *printing.__all__,
           *determinism.__all__, *default_device.__all__, *process_state.__all__, *complex_numbers.__all__,
           *windows.__all__]

# the creation functions that take no input tensor: made on the default device (windows included)
CREATION_FUNCTIONS = ("tensor", "zeros", "ones", "full", "empty", "eye", "arange", "linspace", "logspace",
                      "rand", "randn", "randint", "randperm", *windows.__all__)


def wrap_creation_functions(namespace: dict) -> None:
    """Rebind ``namespace``'s creation functions (distnn's module globals) to honour the default device."""
    for name in CREATION_FUNCTIONS:
        namespace[name] = default_device.on_default_device(namespace[name])
