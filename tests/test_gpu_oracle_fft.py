"""The GPU (cupy) against the CPU (numpy) for distnn.fft and stft/istft, written without a GPU (a static
review): cupy.fft under the same norms, complex intermediates with real ends; c2c, r2c and c2r with n/s padding
and trimming, the Hermitian ones, fftshift, and frames/overlap-add with a learned window. gpu_oracle.py says how
a case draws its inputs and how the devices are compared."""
import pytest

import distnn as dn
from distnn import backend

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


CASES = {
    "fft_c2c_r2c_c2r": lambda R: ([R.standard_normal((3, 8)), R.standard_normal((3, 8))], lambda a, b: dn.fft.irfft(
        dn.fft.rfft(a, n=10, norm="ortho") * dn.fft.fft(dn.complex(a, b), n=6), n=8)),
    "fft_hermitian_nd_shift": lambda R: ([R.standard_normal((3, 8)), R.standard_normal((3, 8))],
                                         lambda a, b: dn.fft.hfftn(
                                             dn.fft.ihfft2(a, norm="forward")
                                             + dn.fft.fftshift(dn.fft.ifft2(dn.complex(a, b)))[:, :5], s=(3, 8))),
    # (two windows: with one, istft(stft(a)) is a whatever the window, whose gradient is then 0 plus rounding)
    "stft_istft_window": lambda R: ([R.standard_normal((3, 8)), R.standard_normal((3, 8))],
                                    lambda a, b: dn.istft(dn.stft(a, 4, hop_length=1, window=b[0, :4].abs() + 0.5,
                                                                  return_complex=True),
                                                          4, hop_length=1, window=b[1, :4].abs() + 0.5, length=8)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
