"""Checkpoints load only as adx models, with Keras' safe_mode: no code runs on load."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from anomaly_cli.models.loading import load_checkpoint
from anomaly_cli.runs import DamagedFile


def test_a_keras_model_that_is_not_an_adx_model_is_refused(tmp_path: Path):
    path = tmp_path / "plain.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)
    with pytest.raises(DamagedFile, match=r"plain.keras holds a Sequential, not an adx model; x"):
        load_checkpoint(path, remedy="x")


def test_a_checkpoint_with_code_in_it_is_refused_by_safe_mode(tmp_path: Path):
    path = tmp_path / "lambda.keras"
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    model.save(path)
    with pytest.raises(
        DamagedFile, match=r"lambda.keras cannot be loaded as an adx model .*`Lambda` layer"
    ):
        load_checkpoint(path, remedy="train again")
