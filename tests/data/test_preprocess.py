"""Image preprocessing (crop, resize, channels, range, GCN, masks) and augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from anomaly_cli.data.preprocess import Augment, ImagePreprocess
from anomaly_cli.errors import AdxUserError


def prep(**cfg) -> ImagePreprocess:
    return ImagePreprocess.from_config({"image_size": 8, **cfg})


def test_centre_crop_keeps_the_middle_of_a_wide_image():
    # 10 x 30: the left and right 10 columns are black, the middle 10 white.
    image = np.zeros((10, 30, 3), np.uint8)
    image[:, 10:20] = 255
    out = prep(image_size=10).apply(tf.constant(image)).numpy()
    assert out.shape == (10, 10, 3) and np.allclose(out, 1.0, atol=1e-5)
    squeezed = prep(image_size=10, crop="none").apply(tf.constant(image)).numpy()
    assert squeezed[:, 0].max() < 0.1  # without the crop, black edges stay in


def test_channels_and_value_ranges():
    rgba = tf.constant(np.full((12, 12, 4), 255, np.uint8))
    gray = prep(channels="grayscale", value_range=[-1, 1]).apply(rgba).numpy()
    assert gray.shape == (8, 8, 1) and np.allclose(gray, 1.0, atol=1e-3)
    one = tf.constant(np.zeros((12, 12, 1), np.uint8))
    rgb = prep(channels="rgb", value_range=[-1, 1]).apply(one).numpy()
    assert rgb.shape == (8, 8, 3) and np.allclose(rgb, -1.0)


def test_global_contrast_normalisation_centres_each_image():
    image = tf.constant(np.random.default_rng(0).integers(0, 255, (8, 8, 1)).astype(np.uint8))
    out = prep(channels="grayscale", gcn=True).apply(image).numpy()
    assert abs(out.mean()) < 1e-5 and np.mean(np.abs(out)) == pytest.approx(1.0, rel=1e-4)


def test_masks_follow_the_crop_and_stay_binary():
    mask = np.zeros((10, 30), np.uint8)
    mask[2:5, 12:15] = 255  # inside the centre square (columns 10..19)
    out = prep(image_size=10).apply_mask(tf.constant(mask[..., None])).numpy()
    assert out.shape == (10, 10) and set(np.unique(out)) == {0.0, 1.0}
    assert out.sum() == 9 and out[2:5, 2:5].all()


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"value_range": [0, 255]}, r"value_range=\[0, 255\] is not supported; use \[0,1\]"),
        ({"channels": "cmyk"}, "channels=cmyk; choose one of: grayscale, rgb"),
        ({"crop": "random"}, "crop=random; choose one of: center, none"),
        ({"image_size": 0}, "image_size=0 must be a positive number"),
    ],
)
def test_bad_preprocessing_names_the_key(cfg: dict, message: str):
    with pytest.raises(AdxUserError, match=message):
        prep(**cfg)


def test_augmentation_is_seeded_and_off_by_default():
    assert Augment.from_config({"flip": False, "rotation": 0.0}) is None
    augment = Augment.from_config({"flip": True, "rotation": 15})
    image = tf.constant(np.arange(64, dtype=np.float32).reshape(8, 8, 1) / 64)
    a, b = (augment(image, tf.constant([1, 2])).numpy() for _ in range(2))
    assert np.array_equal(a, b) and a.shape == (8, 8, 1)
    outputs = {augment(image, tf.constant([1, i])).numpy().tobytes() for i in range(6)}
    assert len(outputs) > 1  # different seeds, different views
    flip_only = Augment(flip=True)
    flips = [flip_only(image, tf.constant([0, i])).numpy() for i in range(8)]
    assert any(np.array_equal(f, image.numpy()[:, ::-1]) for f in flips)
    with pytest.raises(AdxUserError, match=r"rotation=200.0 must be between 0 and 180"):
        Augment.from_config({"rotation": 200})
