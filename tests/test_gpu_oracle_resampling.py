"""The GPU (cupy) against the CPU (numpy) for resampling and padding, changed since the last run on a GPU
(commit c209826), written without a GPU (a static review): F.interpolate's bicubic mode and antialias=True (the
taps' index and weight vectors built on the host and moved per axis, an antialiasing window's missing taps masked
with a host mask), the pad modes (index vectors built on the host and moved; reflect, replicate, circular with
crops), the pixel and channel shuffles, affine_grid and grid_sample in 4-D and 5-D (corner indices and masks
built on the device, eight or sixteen gathered taps a point, the input's gradient a cupyx scatter_add; points
outside [-1, 1] for every padding mode). gpu_oracle.py says how a case draws its inputs and how the devices are
compared."""
import pytest

from distnn import backend
from distnn import functional as F

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


def _image(R):
    return R.standard_normal((2, 3, 11, 9))


def _volume(R):
    return R.standard_normal((2, 3, 4, 5, 3))


CASES = {
    "interpolate_bicubic": lambda R: ([_image(R)], lambda x: F.interpolate(x, scale_factor=(1.6, 0.6),
                                                                           mode="bicubic")),
    "interpolate_antialias_bilinear": lambda R: ([_image(R)], lambda x: F.interpolate(
        x, size=(3, 9), mode="bilinear", antialias=True)),
    "interpolate_antialias_bicubic": lambda R: ([_image(R)], lambda x: F.interpolate(
        x, scale_factor=(0.3, 1.7), mode="bicubic", antialias=True, align_corners=True)),
    "pad_reflect_crop": lambda R: ([_image(R)], lambda x: F.pad(x, (2, -1, 3, 1), mode="reflect")),
    "pad_replicate_3d": lambda R: ([_image(R)[:, :, :4]],
                                   lambda x: F.pad(x[None], (1, 2, 0, 3, 2, 1), mode="replicate")),
    "pad_circular_crop": lambda R: ([_image(R)], lambda x: F.pad(x, (-2, 4, 9, 0), mode="circular")),
    "pixel_shuffle": lambda R: ([R.standard_normal((2, 12, 3, 5))], lambda x: F.pixel_shuffle(x, 2)),
    "pixel_unshuffle": lambda R: ([R.standard_normal((2, 3, 6, 9))], lambda x: F.pixel_unshuffle(x, 3)),
    "channel_shuffle": lambda R: ([R.standard_normal((2, 6, 4, 5))], lambda x: F.channel_shuffle(x, 3)),
    "grid_sample_bilinear_zeros": lambda R: ([_image(R), R.uniform(-1.4, 1.4, (2, 4, 5, 2))],
                                             lambda x, g: F.grid_sample(x, g, align_corners=False)),
    "grid_sample_bilinear_reflection": lambda R: ([_image(R), R.uniform(-3.0, 3.0, (2, 4, 5, 2))],
                                                  lambda x, g: F.grid_sample(x, g, padding_mode="reflection",
                                                                             align_corners=True)),
    "grid_sample_nearest_border": lambda R: ([_image(R), R.uniform(-1.4, 1.4, (2, 4, 5, 2))],
                                             lambda x, g: F.grid_sample(x, g, mode="nearest", padding_mode="border",
                                                                        align_corners=False)),
    "affine_grid_then_grid_sample": lambda R: ([_image(R), R.standard_normal((2, 2, 3))], lambda x, t: F.grid_sample(
        x, F.affine_grid(t, (2, 3, 6, 7), align_corners=False), align_corners=False)),
    "upsample_bilinear": lambda R: ([_image(R)], lambda x: F.upsample_bilinear(x, scale_factor=1.5)),
    # 5-D and bicubic grid_sample: eight / sixteen gathered taps per point
    "grid_sample_3d_trilinear_reflection": lambda R: ([_volume(R), R.uniform(-2.5, 2.5, (2, 3, 2, 4, 3))],
                                                      lambda x, g: F.grid_sample(x, g, padding_mode="reflection",
                                                                                 align_corners=False)),
    "grid_sample_3d_trilinear_zeros": lambda R: ([_volume(R), R.uniform(-1.4, 1.4, (2, 3, 2, 4, 3))],
                                                 lambda x, g: F.grid_sample(x, g, align_corners=True)),
    "grid_sample_3d_nearest_border": lambda R: ([_volume(R), R.uniform(-1.4, 1.4, (2, 3, 2, 4, 3))],
                                                lambda x, g: F.grid_sample(x, g, mode="nearest", padding_mode="border",
                                                                           align_corners=False)),
    "grid_sample_bicubic_zeros": lambda R: ([_image(R), R.uniform(-1.4, 1.4, (2, 4, 5, 2))],
                                            lambda x, g: F.grid_sample(x, g, mode="bicubic", align_corners=False)),
    "grid_sample_bicubic_reflection": lambda R: ([_image(R), R.uniform(-3.0, 3.0, (2, 4, 5, 2))],
                                                 lambda x, g: F.grid_sample(x, g, mode="bicubic",
                                                                            padding_mode="reflection",
                                                                            align_corners=True)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
