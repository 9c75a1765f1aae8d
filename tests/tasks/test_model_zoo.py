"""Every model in configs/model/ through the real CLI: train, then evaluate.

The per-model tests (tests/models/) check each detector's maths on planted
anomalies. This one checks what only the real fit loop exercises: the YAML's
_target_ and keys, the shape check against a real dataset, the training hooks
(centres, warm-up switches, statistics gathered after fit) and that the
checkpoint holds all of that state: `adx evaluate` must reproduce the
train run's scores exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY, latest, run_adx, run_adx_in_process, train_run
from tests.data.fixtures_timeseries import make_timeseries_csv

IMAGES = TINY  # 130 synthetic images
WINDOWS = (
    "dataset=timeseries",
    "dataset.path=series.csv",
    "dataset.time_column=time",
    "dataset.anomaly_column=label",
)
SHORT = ("trainer.epochs=3", "trainer.batch_size=32")
FEATURES = ("dataset.preprocess.image_size=32", "model.backbone.weights=none")

# Each model with a dataset it fits and settings that keep the run short.
CASES = {
    "conv_ae": IMAGES,
    "vae": IMAGES,
    "beta_vae": IMAGES,
    "unet": (*IMAGES, "model.filters=8"),
    "deep_svdd": (*IMAGES, "model.pretrain_epochs=1", "model.warmup_epochs=1"),
    "iaead": (*IMAGES, "model.warmup_epochs=1", "model.filters=8"),
    "dual_ae": (*IMAGES, "model.units=[64,32]", "model.decoder_units=[64]"),
    "ganomaly": IMAGES,
    "draem": (*IMAGES, "model.filters=8", "model.discriminator_filters=8"),
    "dense_ae": WINDOWS,
    "lstm_ae": (*WINDOWS, "model.units=[16]"),
    "conv1d_ae": WINDOWS,
    # One pass over the data, no epochs; a random backbone (no download in tests),
    # cut after two levels, at the 32 px resnet50 needs.
    "padim": (*IMAGES, *FEATURES, "model.backbone.layers=[conv2_block3_out,conv3_block4_out]"),
    "patchcore": (*IMAGES, *FEATURES, "model.backbone.layers=[conv2_block3_out,conv3_block4_out]"),
}


def test_every_model_config_has_a_case():
    assert set(CASES) == {p.stem for p in (REPO / "configs/model").glob("*.yaml")}


@pytest.mark.parametrize("model", sorted(CASES))
def test_train_then_evaluate_reproduces_the_scores(model: str, tmp_path: Path):
    make_timeseries_csv(tmp_path)
    run = train_run(tmp_path, f"model={model}", *CASES[model], *SHORT)
    info = json.loads((run / "run.json").read_text())
    assert info["model"] == model and info["epochs_run"] >= 1

    # The train run drew every plot with this model; evaluate only has to re-score.
    quick = ("trainer.verbose=0", "report.plots=[]", "logger=none")
    result = run_adx_in_process("evaluate", f"run={run}", *quick, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = latest(tmp_path)
    assert evaluated != run
    assert (evaluated / "scores.csv").read_text() == (run / "scores.csv").read_text()


def test_a_model_given_the_wrong_kind_of_samples_names_what_fits(tmp_path: Path):
    make_timeseries_csv(tmp_path)
    result = run_adx_in_process("train", "model=unet", *WINDOWS, cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "model=unet needs images (height, width, channels); dataset=timeseries gives windows "
        "of 32 steps x 2 channels" in result.stderr
    )


def test_training_that_would_end_inside_the_warm_up_is_refused(tmp_path: Path):
    # A process of its own: what reaches the terminal is checked below.
    result = run_adx(
        "train", "model=iaead", *IMAGES, "trainer.epochs=2", "model.warmup_epochs=4", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "trainer.epochs=2 ends before the model's warm-up does" in result.stderr
    assert "trainer.epochs >= 5" in result.stderr
    # The run folder, and the outputs/ folder made for it, are gone again. (This
    # used to glob "train_*", which never matches "<timestamp>_train_...".)
    assert not (tmp_path / "outputs").exists()
    # TensorFlow's native start-up lines stay off the terminal: only the error shows.
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.splitlines() if line.startswith("adx: error:")
    ]
