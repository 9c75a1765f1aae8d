"""Thresholds, metrics and sweep grids: plain NumPy / scikit-learn functions."""
