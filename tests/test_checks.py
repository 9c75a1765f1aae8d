"""Config checks that run before any data is read (anomaly_cli/checks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from anomaly_cli.checks import check_image_size_for_model, check_unit_range
from anomaly_cli.errors import AdxUserError
from tests.conftest import compose_config, run_adx_in_process


def config(*overrides: str):
    """A train config on a folder dataset (its preprocessing has value_range and gcn)."""
    cfg = compose_config("train", "dataset=mvtec", "dataset.root=/nowhere", *overrides)
    return OmegaConf.create(OmegaConf.to_container(cfg))


@pytest.mark.parametrize(
    ("overrides", "needs"),
    [
        (("model=padim", "dataset.preprocess.value_range=[-1,1]"), "model=padim"),
        (("model=draem", "dataset.preprocess.gcn=true"), "model=draem"),
        (("model=conv_ae", "model.score=ssim", "dataset.preprocess.gcn=true"), "model.score=ssim"),
        (("model=unet", "model.loss=mse_gradient", "dataset.preprocess.value_range=[-1,1]"),
         "model.loss=mse_gradient"),
    ],
)  # fmt: skip
def test_models_and_scores_built_for_unit_range_images_refuse_others(overrides, needs):
    expected = rf"^{needs} needs images in \[0, 1\].*value_range=\[0,1\]"
    with pytest.raises(AdxUserError, match=expected):
        check_unit_range(config(*overrides))


def test_other_models_and_the_default_range_pass():
    check_unit_range(config("model=patchcore"))
    check_unit_range(config("model=conv_ae", "dataset.preprocess.value_range=[-1,1]"))


def test_adx_train_stops_before_the_data_with_exit_code_2(tmp_path: Path):
    # The folder does not exist: the check comes before the data is looked for.
    result = run_adx_in_process(
        "train", "model=patchcore", "dataset=mvtec", f"dataset.root={tmp_path / 'none'}",
        "dataset.preprocess.value_range=[-1,1]", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "model=patchcore needs images in [0, 1]" in result.stderr
    assert not (tmp_path / "outputs").exists()  # no run folder, not even an empty one


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model=conv_ae", "model.window_size=64", "dataset.preprocess.image_size=32"),
         r"^model.window_size=64 is larger than the 32x32 images of model=conv_ae"),
        (("model=padim", "dataset.preprocess.image_size=16"),
         r"^dataset.preprocess.image_size=16 is smaller than resnet50 takes \(32 px\)"),
    ],
)  # fmt: skip
def test_what_a_model_needs_of_the_image_size_is_checked_before_the_data(overrides, message):
    with pytest.raises(AdxUserError, match=message):
        check_image_size_for_model(config(*overrides))
    fitting = [o for o in overrides if "image_size" not in o]
    check_image_size_for_model(config(*fitting, "dataset.preprocess.image_size=64"))
