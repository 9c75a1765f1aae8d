"""SSIM, MS-SSIM and the gradient term: TensorFlow's numbers, maps that point at a
defect, and the TensorFlow twins (training losses, saliency) agreeing with NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from anomaly_cli.errors import AdxUserError
from anomaly_cli.scoring import structure
from anomaly_cli.scoring.reconstruction import (
    STRUCTURAL_KINDS,
    check_image_kind,
    error_map,
    reconstruction_error,
)


def texture(n: int, size: int, channels: int, seed: int = 0) -> np.ndarray:
    """Band-limited noise in [0, 1]: a fine texture, like grass or fabric."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(size=(n, size, size, channels)), (0, 1, 1, 0))
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return noise.astype(np.float32)


def pairs(shape: tuple[int, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(sum(shape))
    x = texture(shape[0], shape[1], shape[3])[:, : shape[1], : shape[2]]
    noisy = np.clip(x + 0.1 * rng.normal(size=x.shape), 0, 1).astype(np.float32)
    low_contrast = (0.5 + 0.3 * (x - 0.5)).astype(np.float32)
    unrelated = rng.random(x.shape).astype(np.float32)
    return {
        "identical": (x, x.copy()),
        "noise": (x, noisy),
        "contrast": (x, low_contrast),
        "unrelated": (x, unrelated),
    }


@pytest.mark.parametrize("shape", [(2, 11, 11, 1), (2, 16, 16, 3), (2, 32, 24, 2)])
def test_ssim_is_tensorflows(shape: tuple[int, ...]):
    import tensorflow as tf

    for name, (x, y) in pairs(shape).items():
        expected = tf.image.ssim(x, y, max_val=1.0).numpy()
        got = structure.ssim(x, y)
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=name)
        if name == "identical":
            np.testing.assert_allclose(reconstruction_error(x, y, "ssim"), 0.0, atol=1e-12)
        else:
            assert (reconstruction_error(x, y, "ssim") > 0.01).all(), name


def test_ms_ssim_is_tensorflows_with_all_five_scales():
    import tensorflow as tf

    x = texture(1, 180, 2, seed=3)[:, :177]  # odd height: the padded halving
    assert structure.ms_ssim_scales(177, 180) == 5
    for name, (a, b) in pairs(x.shape).items():
        a, b = a[:, :177, :180], b[:, :177, :180]
        expected = tf.image.ssim_multiscale(a, b, max_val=1.0).numpy()
        np.testing.assert_allclose(structure.ms_ssim(a, b), expected, atol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    ("size", "scales"),
    [(16, 1), (20, 1), (21, 2), (32, 2), (64, 3), (128, 4), (160, 4), (161, 5), (176, 5)],
)
def test_small_images_use_the_scales_they_allow_with_weights_summing_to_one(size: int, scales: int):
    assert structure.ms_ssim_scales(size, size) == scales
    weights = structure.ms_ssim_weights(scales)
    assert len(weights) == scales
    assert weights.sum() == pytest.approx(1.0 if scales < 5 else sum(structure.MS_SSIM_WEIGHTS))


def test_ms_ssim_on_small_images_is_one_for_identical_and_lower_for_different():
    x = texture(2, 32, 3)
    assert structure.ms_ssim(x, x) == pytest.approx([1.0, 1.0])
    blurred = ndimage.gaussian_filter(x, (0, 1.5, 1.5, 0))
    assert (structure.ms_ssim(x, blurred) < 0.9).all()


def textured_with_smooth_patch(
    size: int = 32,
) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """A texture and its copy with the texture wiped out of an 8 x 8 patch (the
    patch holds the texture's local mean, so brightness barely changes)."""
    x = texture(2, size, 3)
    patch = (slice(16, 24), slice(6, 14))
    wiped = x.copy()
    wiped[:, patch[0], patch[1]] = x[:, patch[0], patch[1]].mean(axis=(1, 2), keepdims=True)
    return x, wiped, patch


@pytest.mark.parametrize("kind", STRUCTURAL_KINDS)
def test_maps_are_image_sized_and_peak_where_texture_is_missing(kind: str):
    x, wiped, patch = textured_with_smooth_patch()
    amap = error_map(x, wiped, kind)
    assert amap.shape == (2, 32, 32)
    for sample in amap:
        row, col = np.unravel_index(np.argmax(sample), sample.shape)
        # The peak lies on the patch or within one SSIM window radius of it.
        assert 16 - 5 <= row < 24 + 5 and 6 - 5 <= col < 14 + 5, (kind, row, col)
        far = sample[:, 26:]  # more than a window away from the patch
        assert sample[patch].mean() > 20 * max(far.mean(), 1e-9), kind
        np.testing.assert_allclose(far, 0.0, atol=1e-9)


def test_a_wiped_texture_costs_more_under_ssim_than_its_pixel_error_suggests():
    """The same squared error spread as faint noise costs SSIM less than texture
    removed from one patch: SSIM sees the lost contrast and structure."""
    x, wiped, _ = textured_with_smooth_patch()
    rng = np.random.default_rng(5)
    noise = rng.normal(size=x.shape)
    energy = np.sqrt(
        np.square(x - wiped).sum(axis=(1, 2, 3)) / np.square(noise).sum(axis=(1, 2, 3))
    )
    noisy = x + energy[:, None, None, None] * noise
    np.testing.assert_allclose(
        reconstruction_error(x, noisy, "mse"), reconstruction_error(x, wiped, "mse"), rtol=1e-6
    )
    wiped_map, noisy_map = error_map(x, wiped, "ssim"), error_map(x, noisy, "ssim")
    assert (wiped_map.max(axis=(1, 2)) > 2 * noisy_map.max(axis=(1, 2))).all()


@pytest.mark.parametrize("kind", STRUCTURAL_KINDS)
def test_large_batches_are_compared_in_chunks_with_the_same_result(
    kind: str, monkeypatch: pytest.MonkeyPatch
):
    x = texture(5, 24, 2)
    y = ndimage.gaussian_filter(x, (0, 1, 1, 0))
    whole_scores, whole_maps = reconstruction_error(x, y, kind), error_map(x, y, kind)
    monkeypatch.setattr(structure, "_CHUNK_VALUES", 2 * 24 * 24 * 2)  # two images a chunk
    np.testing.assert_array_equal(reconstruction_error(x, y, kind), whole_scores)
    np.testing.assert_array_equal(error_map(x, y, kind), whole_maps)


def test_identical_images_have_zero_error_of_every_structural_kind():
    x = texture(2, 24, 1)
    for kind in STRUCTURAL_KINDS:
        np.testing.assert_allclose(reconstruction_error(x, x, kind), 0.0, atol=1e-12)
        np.testing.assert_allclose(error_map(x, x, kind), 0.0, atol=1e-12)


@pytest.mark.parametrize("kind", STRUCTURAL_KINDS)
@pytest.mark.parametrize("shape", [(2, 20, 20, 3), (2, 33, 40, 1), (1, 6, 7, 2)])
def test_the_tensorflow_twin_equals_the_numpy_score(kind: str, shape: tuple[int, ...]):
    from anomaly_cli.models.structural_losses import structural_error

    rng = np.random.default_rng(1)
    x = rng.random(shape).astype(np.float32)
    reconstruction = np.clip(x + 0.2 * rng.normal(size=shape), 0, 1).astype(np.float32)
    got = np.asarray(structural_error(x, reconstruction, kind))
    np.testing.assert_allclose(got, reconstruction_error(x, reconstruction, kind), atol=1e-5)


def test_the_training_losses_are_the_scores_and_have_finite_gradients():
    import tensorflow as tf

    from anomaly_cli.models.structural_losses import training_loss
    from anomaly_cli.scoring.reconstruction import LOSSES

    rng = np.random.default_rng(2)
    x = tf.constant(rng.random((2, 32, 32, 1)), tf.float32)
    flat = tf.fill(x.shape, 0.5)  # contrast-structure <= 0 at some scales: MS-SSIM's relu
    for name in LOSSES:
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_mean(training_loss(name)(x, flat * 0.9 + 0.1 * x))
        gradient = tape.gradient(value, x).numpy()
        assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0, name
        if name in STRUCTURAL_KINDS:
            expected = reconstruction_error(x.numpy(), (flat * 0.9 + 0.1 * x).numpy(), name)
            assert float(value) == pytest.approx(expected.mean(), abs=1e-5), name


@pytest.mark.parametrize(("setting", "kind"), [("score", "ssim"), ("loss", "mse_gradient")])
def test_structural_kinds_on_rows_name_the_setting_and_the_fix(setting: str, kind: str):
    with pytest.raises(AdxUserError) as raised:
        check_image_kind(setting, kind, (17,), "dense_ae")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"model.{setting}={kind} compares image neighbourhoods")
    assert f"use model.{setting}=mse" in message
    check_image_kind(setting, kind, (8, 8, 1), "dense_ae")  # images are fine
    check_image_kind(setting, "mse", (17,), "dense_ae")  # pixel kinds take anything
