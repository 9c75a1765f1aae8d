"""Free what a finished job's TensorFlow graphs hold, so a --multirun's process stays flat.

`keras.backend.clear_session()` drops Keras' own state, but TensorFlow also
keeps, in a global registry, one gradient function for every trace of a
`tf.custom_gradient` function inside a `tf.function` (swish's, for one), each
under a unique name (`CustomGradient-<n>`), and each holds its whole traced
graph. Nothing frees them: about 25 MiB per small conv_ae job, 1.12x the RSS
after 5 jobs than after 1 (benchmarks/multirun_memory.py). Only the graphs of
the job that traced them ever use these entries, so they go when it ends.

Nothing here imports TensorFlow: a job that never loaded it has nothing to free.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

_PREFIX = "CustomGradient-"


def custom_gradients() -> set[str]:
    """The custom-gradient entries that exist now (call when a job starts)."""
    registry = _registry()
    return set() if registry is None else {k for k in registry if k.startswith(_PREFIX)}


def free_job_graphs(before: set[str]) -> None:
    """Clear Keras' session and forget the custom gradients traced since `before`."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    registry = _registry()
    if registry is None:
        return
    traced = [k for k in list(registry) if k.startswith(_PREFIX) and k not in before]
    for name in traced:
        registry.pop(name, None)
    if traced:
        gc.collect()  # the graphs are cycles: free them now, not at some later collection


def _registry() -> dict[str, Any] | None:
    """TensorFlow's gradient registry, or None (not loaded, or a TF that moved it)."""
    ops = sys.modules.get("tensorflow.python.framework.ops")
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None
