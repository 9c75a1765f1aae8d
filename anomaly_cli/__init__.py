"""adx: a command-line experiment runner for deep anomaly detection.

Importing this package must stay cheap: TensorFlow is imported only inside the
functions that train or score.
"""

__version__ = "0.2.0"
