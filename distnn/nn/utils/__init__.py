"""``distnn.nn.utils``, as ``torch.nn.utils``: gradient clipping (``clip_grad.py``), packed sequences (``rnn``),
parameters as one vector (``convert_parameters.py``), parametrizations (``parametrize``, ``parametrizations``),
the older hook-based weight and spectral norms (``hooked_norms.py``), batch-norm fusion (``fusion.py``),
``stateless.functional_call``, ``skip_init`` and pruning (``prune``)."""
from .clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm, grad_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights
from .hooked_norms import remove_spectral_norm, remove_weight_norm, spectral_norm, weight_norm
from .skip_init import skip_init
from . import parametrizations, parametrize, prune, rnn, stateless

__all__ = [
    "clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "fuse_conv_bn_eval",
    "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights", "get_total_norm", "grad_norm",
    "parameters_to_vector", "parametrizations", "parametrize", "prune", "remove_spectral_norm", "remove_weight_norm", "rnn",
    "skip_init", "spectral_norm", "stateless", "vector_to_parameters", "weight_norm",
]
