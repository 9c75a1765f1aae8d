"""Anomaly scores: higher means more anomalous, everywhere."""
