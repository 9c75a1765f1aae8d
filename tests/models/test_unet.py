"""The U-Net autoencoder: block structure, skip switches, depth, planted image
anomalies, save/load, shapes and bad settings."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.layers import McDropout
from anomaly_cli.models.loading import build_model, load_checkpoint
from anomaly_cli.scoring.scorer import dropout_sampling
from anomaly_cli.training.seeding import apply_seed
from tests.models.planted import fit_briefly, planted_images

CFG = OmegaConf.load(Path(__file__).resolve().parents[2] / "configs/model/unet.yaml")
SMALL = OmegaConf.merge(CFG, {"filters": 4})


def of_type(model: keras.Model, kind: type) -> list[keras.layers.Layer]:
    return [layer for layer in model.network.layers if type(layer) is kind]


def images(n: int = 5, shape: tuple[int, ...] = (16, 16, 1)) -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(n, *shape)).astype("float32")


def test_seed_defaults_give_32_64_128_and_a_256_wide_bottleneck():
    model = build_model(CFG, (16, 16, 3))
    widths = [layer.filters for layer in of_type(model, keras.layers.Conv2D)]
    assert widths == [32, 32, 64, 64, 128, 128, 256, 256, 128, 128, 64, 64, 32, 32, 3]
    assert model.network.get_layer("output").kernel.shape == (1, 1, 32, 3)
    assert model.network.get_layer("output").activation.__name__ == "sigmoid"


@pytest.mark.parametrize(
    ("skips", "concats"),
    [
        (True, ["up3_concat", "up2_concat", "up1_concat"]),
        ([False, True, False], ["up2_concat"]),
        ([False, True, True], ["up3_concat", "up2_concat"]),
        (False, []),
    ],
)
def test_down_and_up_blocks_and_one_concat_per_kept_skip(skips, concats: list[str]):
    model = build_model(OmegaConf.merge(SMALL, {"skip_connections": skips}), (16, 16, 1))
    assert len(of_type(model, keras.layers.MaxPooling2D)) == 3
    assert len(of_type(model, keras.layers.UpSampling2D)) == 3
    assert [layer.name for layer in of_type(model, keras.layers.Concatenate)] == concats
    kept = [True] * 3 if skips is True else [False] * 3 if skips is False else skips
    assert model.get_config()["skip_connections"] == kept
    # Each up block's first conv reads the upsampled maps, plus the skip's when kept.
    for level, keep in enumerate(kept, start=1):
        below = 4 * 2**level  # width coming up from the level below (bottleneck: 32)
        expected = below + 4 * 2 ** (level - 1) * keep
        assert model.network.get_layer(f"up{level}_conv1").kernel.shape[2] == expected
    # The concatenated skip is the down block's output of the same resolution.
    for name in concats:
        level = name[2]
        concat = model.network.get_layer(name)
        assert concat.input[1] is model.network.get_layer(f"down{level}_conv2").output


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_depth_sets_the_number_of_levels_and_widths_double(depth: int):
    model = build_model(OmegaConf.merge(SMALL, {"num_hidden_layers": depth}), (16, 16, 2))
    widths = [4 * 2**level for level in range(depth + 1)]
    down = [model.network.get_layer(f"down{i + 1}_conv2").filters for i in range(depth)]
    up = [model.network.get_layer(f"up{i + 1}_conv2").filters for i in range(depth)]
    assert down == up == widths[:-1]
    assert model.network.get_layer("bottleneck_conv2").filters == widths[-1]
    assert len(of_type(model, keras.layers.MaxPooling2D)) == depth
    assert len(of_type(model, keras.layers.Concatenate)) == depth
    side = 16 // 2**depth
    bottleneck = model.network.get_layer("bottleneck_conv2").output
    assert bottleneck.shape == (None, side, side, widths[-1])
    assert model(images(2, (16, 16, 2))).shape == (2, 16, 16, 2)


def test_transposed_upsampling_batch_norm_and_mc_dropout():
    cfg = {"num_hidden_layers": 2, "upsampling": "transpose", "batch_norm": True, "dropout": 0.2}
    model = build_model(OmegaConf.merge(SMALL, cfg), (8, 8, 1))
    transposed = of_type(model, keras.layers.Conv2DTranspose)
    assert [layer.filters for layer in transposed] == [8, 4]
    assert not of_type(model, keras.layers.UpSampling2D)
    # Two convs per block, five blocks (2 down, bottleneck, 2 up).
    assert len(of_type(model, keras.layers.BatchNormalization)) == 10
    dropouts = of_type(model, McDropout)
    assert len(dropouts) == 5 and all(layer.rate == 0.2 for layer in dropouts)
    assert not of_type(model, keras.layers.Dropout)  # only the MC-capable subclass
    x = images(3, (8, 8, 1))
    assert np.array_equal(model.score(x), model.score(x))
    with dropout_sampling(model) as active:
        assert len(active) == 5
        assert not np.array_equal(model.score(x), model.score(x))


def test_planted_patches_score_higher_with_all_skips():
    apply_seed(0, deterministic=True)
    train, test, labels = planted_images(n_train=256, size=16)
    cfg = OmegaConf.merge(CFG, {"num_hidden_layers": 2, "filters": 8, "batch_norm": True})
    model = build_model(cfg, train.shape[1:])
    history = fit_briefly(model, train, epochs=8, batch_size=16, learning_rate=3e-3)
    # An all-zero output already ranks the bright patches high; the model must
    # have learnt to reconstruct to count (docs/models/unet.md, "Saturated output").
    assert history.history["loss"][-1] < 0.5 * float(np.mean(train**2))
    assert roc_auc_score(labels, model.score(test)) >= 0.85


def test_save_and_load_reproduce_scores_exactly(tmp_path: Path):
    apply_seed(1, deterministic=True)
    cfg = {
        "num_hidden_layers": 2,
        "batch_norm": True,
        "dropout": 0.1,
        "skip_connections": [False, True],
    }
    model = build_model(OmegaConf.merge(SMALL, cfg), (8, 8, 1))
    train = images(64, (8, 8, 1))
    fit_briefly(model, train, epochs=1)
    model.save(tmp_path / "best.keras")
    loaded = load_checkpoint(tmp_path / "best.keras")
    x = images(7, (8, 8, 1))
    assert type(loaded).__name__ == "UNetAutoencoder"
    assert loaded.get_config()["skip_connections"] == [False, True]
    assert np.array_equal(loaded.score(x), model.score(x))
    assert np.array_equal(loaded.anomaly_map(x), model.anomaly_map(x))


def test_score_and_map_shapes_and_values():
    model = build_model(OmegaConf.merge(SMALL, {"num_hidden_layers": 2}), (8, 8, 3))
    x = images(5, (8, 8, 3))
    scores, maps = model.score(x, batch_size=2), model.anomaly_map(x, batch_size=2)
    assert scores.shape == (5,) and maps.shape == (5, 8, 8)
    recon = np.asarray(model(x))
    assert np.allclose(scores, ((x - recon) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    assert np.allclose(maps.mean(axis=(1, 2)), scores, rtol=1e-5)


@pytest.mark.parametrize(
    ("shape", "change", "message"),
    [
        (
            (12, 12, 1),
            {},
            "model=unet with num_hidden_layers=3 needs image sides divisible by 8; .* 12x12",
        ),
        ((16, 20, 1), {"num_hidden_layers": 3}, "divisible by 8; the dataset gives 16x20"),
        ((17,), {}, "model=unet needs images .* gives rows of 17 features"),
        ((8, 8, 1), {"num_hidden_layers": 0}, r"model\.num_hidden_layers=0 must be >= 1"),
        ((8, 8, 1), {"filters": 0}, r"model\.filters=0 must be >= 1"),
        (
            (8, 8, 1),
            {"skip_connections": [True, False]},
            r"one true/false per level \(num_hidden_layers=3\)",
        ),
        ((8, 8, 1), {"skip_connections": [1, 1, 0]}, "one true/false per level"),
        ((8, 8, 1), {"upsampling": "bilinear"}, "model.upsampling=bilinear; choose one of"),
        ((8, 8, 1), {"dropout": 1.0}, r"model\.dropout=1\.0 must lie in \[0, 1\)"),
    ],
)
def test_bad_shapes_and_settings_say_what_fits(shape, change: dict, message: str):
    with pytest.raises(AdxUserError, match=message):
        build_model(OmegaConf.merge(SMALL, change), shape)


def test_depth_two_takes_sides_that_depth_three_refuses():
    model = build_model(OmegaConf.merge(SMALL, {"num_hidden_layers": 2}), (12, 12, 1))
    assert model(images(1, (12, 12, 1))).shape == (1, 12, 12, 1)
