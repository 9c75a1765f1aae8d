"""Layers shared by the detectors."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="adx")
class McDropout(keras.layers.Dropout):
    """Dropout that Monte Carlo scoring can switch on at inference.

    `sampling` is a scoring-time switch, not part of the saved config: with it
    on, the layer drops units even when called with training=False, so T
    forward passes give T different reconstructions (seed 002, sec. 3.3.4)
    while BatchNormalization and everything else stay in inference mode.
    """

    def __init__(self, rate: float, **kwargs: Any):
        super().__init__(rate, **kwargs)
        self.sampling = False

    def call(self, inputs: Any, training: bool = False) -> Any:
        return super().call(inputs, training=bool(training) or self.sampling)
