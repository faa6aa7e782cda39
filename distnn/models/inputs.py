"""How the zoo's models read integer features."""
from __future__ import annotations

from distnn.autograd.tensor import Tensor


def as_real(module, x):
    """``x`` in ``module``'s parameter float type when it holds integers or bools, else ``x`` itself.

    The zoo's real-valued models (mlp, lenet, resnet, the sequence models without an embedding) read integer
    features (token ids under ``data.token_vocab``, counts) as numbers, as a PyTorch user casts them with
    ``x.float()``: distnn's layers, like PyTorch's, refuse an integer input to a float weight.
    """
    data = x.data if isinstance(x, Tensor) else x
    if data.dtype.kind in "biu":
        return Tensor(data.astype(next(module.parameters()).data.dtype))
    return x
