"""adx's benchmark sweeper, found by Hydra in its `hydra_plugins` namespace.

Hydra only instantiates sweepers that live under `hydra_plugins`; the logic
is in `anomaly_cli.benchmarking.runner`.
"""
