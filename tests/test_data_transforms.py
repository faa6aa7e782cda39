"""distnn.data's transforms: standardization with training statistics only, standardizer modes, shifts and
rotations, deterministic shape-preserving augmentation."""
import json

import numpy as np
import pytest

import distnn.data as D
from distnn.data import DataError


def test_standardization_uses_training_statistics_only():
    s = D.load_dataset("wine")
    std = s.standardizer
    np.testing.assert_allclose(std.mean, s.train.x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(std.std, s.train.x.astype(np.float64).std(0), rtol=1e-12)
    all_x = np.concatenate([s.train.x, s.val.x, s.test.x]).astype(np.float64)
    assert not np.allclose(std.mean, all_x.mean(0))
    z = std(s.train.x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    zt = std(s.test.x)
    np.testing.assert_allclose(zt, (s.test.x - std.mean) / std.std, rtol=1e-5, atol=1e-5)
    state = json.loads(json.dumps(std.state_dict()))  # plain lists: JSON-serializable
    again = D.Standardizer.from_state_dict(state)
    np.testing.assert_array_equal(again(s.test.x), zt)


def test_standardizer_modes_and_constant_features():
    x = np.random.default_rng(0).normal(3, 2, size=(50, 2, 4, 4)).astype(np.float32)
    x[:, :, 0, 0] = 5.0  # constant pixel: std 1, so it maps to 0 rather than inf
    f = D.Standardizer("feature").fit(x)
    assert f.mean.shape == (2, 4, 4) and f.std[0, 0, 0] == 1.0
    assert np.all(np.isfinite(f(x))) and np.all(f(x)[:, :, 0, 0] == 0)
    c = D.Standardizer("channel").fit(x)
    assert c.mean.shape == (2, 1, 1)
    g = D.Standardizer("global").fit(x)
    assert g.mean.size == 1
    np.testing.assert_allclose(g.mean.item(), x.astype(np.float64).mean(), rtol=1e-10)
    with pytest.raises(DataError, match="fitted on samples of shape"):
        f(x.reshape(50, -1))
    tiny = np.random.default_rng(1).normal(0, 1, size=(40, 3)) * np.array([1e-8, 1.0, 0.0]) + np.array([0, 0, 1e-9])
    t = D.Standardizer("feature").fit(tiny)  # a feature in small units is still scaled to std 1
    np.testing.assert_allclose(t(tiny).std(0), [1.0, 1.0, 0.0], atol=1e-6)
    assert t.std[2] == 1.0  # a constant (tiny) feature: std 1, mapped to 0


def test_shift_is_exact_and_rotation_by_90_matches_rot90():
    img = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5) + 1
    out = D.affine_images(img, [0.0], [[1, -2]])  # down 1, left 2
    expected = np.zeros_like(img)
    expected[0, 0, 1:, :3] = img[0, 0, :4, 2:]
    np.testing.assert_array_equal(out, expected)
    rot = D.affine_images(img, [90.0], [[0, 0]])
    matches = [np.allclose(rot[0, 0], np.rot90(img[0, 0], k), atol=1e-4) for k in (1, -1)]
    assert any(matches)


def test_augmentation_deterministic_shape_preserving():
    s = D.load_dataset("digits")
    aug = D.RandomAffine(shift=1, rotate=10, image_shape=(1, 8, 8))
    x = s.train.x[:16]
    a = aug(x, np.random.default_rng(5))
    b = aug(x, np.random.default_rng(5))
    c = aug(x, np.random.default_rng(6))
    assert a.shape == x.shape and a.dtype == x.dtype
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    img = x.reshape(16, 1, 8, 8)
    np.testing.assert_array_equal(aug(img, np.random.default_rng(5)).reshape(16, 64), a)
    n = D.GaussianNoise(0.5)(np.zeros((2000, 4), np.float32), np.random.default_rng(0))
    assert abs(n.std() - 0.5) < 0.02 and n.dtype == np.float32
    train_tf, eval_tf = D.build_transforms(s, {"shift": 1, "rotate": 5.0, "noise": 0.1})
    assert train_tf(x, np.random.default_rng(0)).shape == x.shape and eval_tf is s.standardizer
    with pytest.raises(DataError, match=r"data.augment.shift = 1 needs image data; dataset 'iris' \(data.name\)"):
        D.build_transforms(D.load_dataset("iris"), {"shift": 1})
    with pytest.raises(DataError, match="unknown augmentation option"):
        D.build_transforms(s, {"blur": 1})
