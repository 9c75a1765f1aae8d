"""The backbones of the feature-embedding detectors: the table, weights from a file,
the one-line errors, map smoothing, and the planted data PaDiM and PatchCore are
tested on (tests/models/test_padim.py, test_patchcore.py)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.backbone import gaussian_kernel, smooth
from anomaly_cli.models.backbone_weights import (
    BACKBONES,
    check_backbone,
    check_backbone_config,
)
from anomaly_cli.models.loading import build_model
from anomaly_cli.training.seeding import apply_seed
from tests.conftest import assert_one_line_error, run_adx_in_process, run_dirs
from tests.models.configs import model_config

# The two finest resnet50 levels: a checkpoint of 6 MB instead of 37.
SMALL_RESNET = ["conv2_block3_out", "conv3_block4_out"]


def striped(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Grayscale stripes of one orientation (+-3 degrees), random period and phase."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = 0.5 + rng.normal(0, 0.05, (n, 1, 1))
    period = rng.uniform(5, 7, (n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    images = 0.5 + 0.4 * np.sin(
        2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + phase
    )
    images += rng.normal(0, 0.03, images.shape)
    return np.clip(images, 0, 1)[..., None].astype("float32")


def rotated_patch_images(
    n_train: int = 60, n_test: int = 40, n_anomalies: int = 20, size: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train normals, test images, labels and defect masks. A defect is a square of
    the image (a quarter of the side) turned by 90 degrees: the same pixels moved,
    so the image's brightness and energy are exactly those of a normal one, and
    only the stripes' orientation inside the square gives it away."""
    rng = np.random.default_rng(seed)
    train, test = striped(n_train, size, rng), striped(n_test, size, rng)
    labels = np.zeros(n_test, dtype=np.int64)
    labels[n_test - n_anomalies :] = 1
    masks = np.zeros(test.shape[:3], dtype=bool)
    side = size // 4
    for i in np.flatnonzero(labels):
        top, left = rng.integers(0, size - side, 2)
        window = (i, slice(top, top + side), slice(left, left + side))
        test[window] = np.rot90(test[window])
        masks[window] = True
    return train, test, labels, masks


def test_rotated_patches_keep_every_pixel_value():
    _, test, labels, masks = rotated_patch_images(n_train=2, n_test=6, n_anomalies=3)
    rng = np.random.default_rng(0)
    again = striped(2, 32, rng), striped(6, 32, rng)
    assert masks[labels == 1].any(axis=(1, 2)).all() and not masks[labels == 0].any()
    for before, after in zip(again[1], test, strict=True):
        assert np.array_equal(np.sort(before.ravel()), np.sort(after.ravel()))
    assert not np.array_equal(again[1][labels == 1], test[labels == 1])


def padim_config(**changes: object) -> object:
    """model=padim with random weights; resnet50 cut after SMALL_RESNET, another
    backbone (a name in `changes`) at its default layers."""
    cfg = model_config("padim")
    cfg.backbone.weights = "none"
    named = "name" in dict(changes.get("backbone", {}))  # type: ignore[call-overload]
    cfg.backbone.layers = None if named else SMALL_RESNET
    return OmegaConf.merge(cfg, changes)


def patchcore_config(**changes: object) -> object:
    """model=patchcore with random weights, resnet50 cut after SMALL_RESNET."""
    cfg = model_config("patchcore")
    cfg.backbone.weights = "none"
    cfg.backbone.layers = SMALL_RESNET
    return OmegaConf.merge(cfg, changes)


def test_every_backbone_builds_with_its_default_layers_at_32_px():
    for name, spec in BACKBONES.items():
        apply_seed(0, deterministic=False)  # seeding.py: TF cannot take a global seed of 0
        cfg = padim_config(backbone={"name": name, "layers": None}, feature_dim=None)
        model = build_model(cfg, (32, 32, 3))
        assert model.feature_layers == list(spec.levels)
        embedding = np.asarray(model(np.zeros((1, 32, 32, 3), "float32")))
        assert embedding.shape[1:3] == (8, 8), name  # the first level: stride 4
        assert np.isfinite(embedding).all()


def _full_mobilenet(path: Path) -> keras.Model:
    keras.utils.set_random_seed(7)
    full = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    full.save_weights(path)
    return full


def test_weights_from_a_file_are_loaded_and_decide_the_scores(tmp_path: Path):
    path = tmp_path / "mobilenet_v2.weights.h5"
    full = _full_mobilenet(path)
    cfg = padim_config(backbone={"name": "mobilenet_v2", "weights": str(path)})
    train, test, _, _ = rotated_patch_images(n_train=12, n_test=6, n_anomalies=3)
    scores = []
    for keras_seed in (1, 2):  # random initial weights differ; the file's replace them
        keras.utils.set_random_seed(keras_seed)
        np.random.seed(0)  # the same channel subset
        model = build_model(cfg, (32, 32, 1))
        for layer in (layer for layer in model.extractor.layers if layer.weights):
            saved = full.get_layer(layer.name).get_weights()
            assert all(
                np.array_equal(a, b) for a, b in zip(layer.get_weights(), saved, strict=True)
            )
        model.fit_statistics(_batches(train))
        scores.append(model.score(test))
    assert np.array_equal(scores[0], scores[1])
    keras.utils.set_random_seed(1)
    np.random.seed(0)
    unloaded = build_model(padim_config(backbone={"name": "mobilenet_v2"}), (32, 32, 1))
    unloaded.fit_statistics(_batches(train))
    assert not np.allclose(unloaded.score(test), scores[0])


def test_keras_downloaded_h5_format_loads(tmp_path: Path):
    """The ImageNet files Keras downloads are in the legacy HDF5 weights format."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    full = _full_mobilenet(tmp_path / "unused.weights.h5")
    path = tmp_path / "mobilenet_v2_no_top.h5"
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, full)
    model = build_model(
        padim_config(backbone={"name": "mobilenet_v2", "weights": str(path)}), (32, 32, 3)
    )
    layer = model.extractor.get_layer("block_2_project")
    assert np.array_equal(layer.get_weights()[0], full.get_layer(layer.name).get_weights()[0])


@pytest.mark.parametrize(
    ("changes", "shape", "message"),
    [
        ({"backbone": {"name": "vgg99"}}, (32, 32, 1), r"^model\.backbone\.name=vgg99 is not a "),
        (
            {"backbone": {"weights": "/nowhere/resnet50.h5"}},
            (32, 32, 1),
            r"^model\.backbone\.weights=/nowhere/resnet50\.h5 is not a file; .*"
            r"resnet50_weights_tf_dim_ordering_tf_kernels_notop\.h5",
        ),
        ({}, (16, 16, 1), r"^dataset\.preprocess\.image_size=16 is smaller than resnet50 takes"),
        (
            {"backbone": {"layers": ["conv9_out"]}},
            (32, 32, 1),
            r"^model\.backbone\.layers names conv9_out, which resnet50 does not have",
        ),
        ({}, (32, 32, 4), r"^model=padim needs grayscale or RGB images; .* 4 channels"),
        ({"backbone": {"colour": 1}}, (32, 32, 1), r"^model\.backbone\.colour is not a setting"),
    ],
)
def test_bad_backbone_settings_are_one_line_errors(changes, shape, message):
    with pytest.raises(AdxUserError, match=message) as error:
        build_model(padim_config(**changes), shape)
    assert "\n" not in str(error.value)


def test_a_file_that_is_not_weights_names_the_setting(tmp_path: Path):
    path = tmp_path / "notes.h5"
    path.write_text("not hdf5")
    with pytest.raises(AdxUserError, match=r"^model\.backbone\.weights=.*notes\.h5 could not be"):
        build_model(padim_config(backbone={"weights": str(path)}), (32, 32, 1))


def test_imagenet_without_network_says_how_to_bring_the_file(monkeypatch):
    def no_network(*args: object, **kwargs: object) -> None:
        raise Exception("URL fetch failure on https://...: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    with pytest.raises(AdxUserError) as error:
        build_model(padim_config(backbone={"weights": "imagenet"}), (32, 32, 1))
    line = str(error.value)
    assert line.startswith("model.backbone.weights=imagenet: the ImageNet weights of resnet50")
    assert "~/.keras/models/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in line
    assert "model.backbone.weights=<its path>" in line and "\n" not in line


def test_config_check_runs_without_the_model():
    check_backbone_config(model_config("padim"))  # imagenet: nothing to check before data
    with pytest.raises(AdxUserError, match=r"model\.backbone\.weights=/no/file\.h5 is not a file"):
        check_backbone_config(
            OmegaConf.merge(model_config("padim"), {"backbone": {"weights": "/no/file.h5"}})
        )
    assert check_backbone("backbone", {"weights": None}) == {
        "name": "resnet50",
        "layers": None,
        "weights": "none",
    }


def test_a_missing_weights_file_stops_train_before_any_folder(tmp_path: Path):
    result = run_adx_in_process(
        "train", "model=patchcore", "model.backbone.weights=missing.h5", cwd=tmp_path
    )
    assert_one_line_error(result, "model.backbone.weights=missing.h5 is not a file")
    assert run_dirs(tmp_path) == set()


def test_smoothing_keeps_constant_maps_and_the_mass_of_an_impulse():
    flat = np.full((2, 32, 32), 3.0, np.float32)
    assert np.allclose(np.asarray(smooth(flat, 4.0)), 3.0, atol=1e-5)
    impulse = np.zeros((1, 32, 32), np.float32)
    impulse[0, 16, 16] = 1.0
    blurred = np.asarray(smooth(impulse, 2.0))
    assert blurred.sum() == pytest.approx(1.0, abs=1e-4)
    assert blurred[0].argmax() == 16 * 32 + 16 and blurred.max() < 0.05
    assert np.array_equal(np.asarray(smooth(impulse, 0.0)), impulse)
    assert gaussian_kernel(4.0).sum() == pytest.approx(1.0)


def _batches(x: np.ndarray, size: int = 8):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(x).batch(size)
