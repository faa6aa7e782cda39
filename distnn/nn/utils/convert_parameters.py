"""``parameters_to_vector`` and ``vector_to_parameters``, as ``torch.nn.utils`` (convert_parameters.py)."""
from __future__ import annotations

import distnn
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_same_device(params) -> None:
    kinds = {get_array_module(p.data).__name__ for p in params}
    if len(kinds) > 1:
        raise TypeError("Found two parameters on different devices, this is currently not supported.")


def parameters_to_vector(parameters) -> Tensor:
    """All of ``parameters`` flattened and concatenated into one vector, differentiably (a gradient of the
    vector reaches the parameters), as PyTorch's."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    params = list(parameters)
    _check_same_device(params)
    return distnn.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec, parameters) -> None:
    """Give each of ``parameters``, in order, its slice of the vector ``vec`` (reshaped to the parameter's
    shape), as PyTorch's: the parameters' data become views of ``vec``'s memory."""
    if not isinstance(vec, Tensor):
        mod = type(vec).__module__
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__ if mod == 'builtins' else mod + '.' + type(vec).__name__}")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    params = list(parameters)
    _check_same_device(params + [vec])
    need = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] < need:
        raise RuntimeError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} is not a vector of at least "
                           f"{need} elements (the parameters' total)")
    pointer = 0
    for p in params:
        n = p.numel()
        p.data = vec.data[pointer:pointer + n].reshape(p.shape)
        p._bump_version()
        pointer += n
