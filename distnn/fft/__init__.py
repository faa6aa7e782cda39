"""``distnn.fft``: PyTorch's ``torch.fft``, differentiable, on numpy.fft (CPU) or cupy.fft (GPU).

The transforms (:mod:`distnn.fft.transforms`): ``fft``, ``ifft``, ``fft2``, ``ifft2``, ``fftn``, ``ifftn``,
``rfft``, ``irfft``, ``rfft2``, ``irfft2``, ``rfftn``, ``irfftn``, ``hfft``, ``ihfft``, ``hfft2``, ``ihfft2``,
``hfftn``, ``ihfftn``, with PyTorch's ``n``/``s``, ``dim``, ``norm`` and ``out=``, dtypes and gradients (a real
input gets a real gradient; ``create_graph=True`` differentiates them again). The helpers
(:mod:`distnn.fft.helpers`): ``fftfreq``, ``rfftfreq``, ``fftshift``, ``ifftshift``. ``distnn.stft`` and
``distnn.istft`` are built on them (:mod:`distnn.functional.stft`).
"""
from .helpers import fftfreq, fftshift, ifftshift, rfftfreq
from .transforms import (fft, fft2, fftn, hfft, hfft2, hfftn, ifft, ifft2, ifftn, ihfft, ihfft2, ihfftn, irfft,
                         irfft2, irfftn, rfft, rfft2, rfftn)

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn", "irfftn",
           "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn", "fftfreq", "rfftfreq", "fftshift", "ifftshift"]
