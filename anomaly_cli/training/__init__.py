"""Fitting a detector: seeds, optimizers, callbacks, the fit loop."""
