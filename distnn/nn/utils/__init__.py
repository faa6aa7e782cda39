"""``distnn.nn.utils``: gradient clipping (``clip_grad.py``) and packed sequences (``rnn``), as ``torch.nn.utils``."""
from .clip_grad import clip_grad_norm_, clip_grad_value_, grad_norm
from . import rnn

__all__ = ["clip_grad_norm_", "clip_grad_value_", "grad_norm", "rnn"]
