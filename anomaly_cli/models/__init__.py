"""Detectors: one module per model family, each an AnomalyModel (keras.Model)."""
