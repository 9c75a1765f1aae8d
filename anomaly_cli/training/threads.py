"""How many threads TensorFlow may use in one job (`trainer.threads`).

TensorFlow sizes its two thread pools (within an op, and between ops) to every
core it can see. That is right for one run, but a parallel launcher runs
several jobs at once on the same machine, and N jobs of N threads each spend
their time switching instead of computing. So, unless `trainer.threads` says
otherwise, a job under `hydra/launcher=joblib` with `n_jobs` > 1 gets its
share of the cores, and a job under a submitit launcher the `cpus_per_task`
it asked for. The pools are sized when TensorFlow first runs an op, so
`apply_threads` runs before any data is read.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from anomaly_cli.errors import AdxUserError

log = logging.getLogger("adx")


def check_threads(threads: Any) -> None:
    """trainer.threads is null (TensorFlow's choice, or the launcher's share) or >= 1."""
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise AdxUserError(
            f"trainer.threads={threads} must be a whole number of at least 1, "
            "or null to let adx choose"
        )


def job_threads(threads: int | None, launcher: Any = None) -> int | None:
    """The threads one job's TensorFlow should use; None leaves TensorFlow's default.

    `launcher` is the job's `hydra.launcher` node (read from Hydra when omitted).
    """
    if threads is not None:
        return int(threads)
    if launcher is None:
        launcher = _hydra_launcher()
    if launcher is None:
        return None
    target = str(launcher.get("_target_") or "")
    if "submitit" in target and launcher.get("cpus_per_task"):
        return int(launcher.get("cpus_per_task"))
    if "joblib" in target:
        concurrent = _joblib_jobs(launcher.get("n_jobs"))
        if concurrent > 1:
            return max(1, available_cores() // concurrent)
    return None


def apply_threads(threads: int | None) -> int | None:
    """Size TensorFlow's thread pools for this job; returns the size now in force (None: default).

    Call before TensorFlow runs its first op. In a process that already ran
    one (an earlier job of an in-process sweep, a reused joblib worker) the
    pools keep the size they got then: the same size is fine, another one is
    logged and ignored.
    """
    if threads is None:
        return None
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        log.warning(
            "trainer.threads=%d cannot apply: TensorFlow already started in this process "
            "with %d threads",
            threads,
            tf.config.threading.get_intra_op_parallelism_threads(),
        )
    return tf.config.threading.get_intra_op_parallelism_threads() or None


def available_cores() -> int:
    """Cores this process may run on (a cluster job's allocation, not the whole node)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _joblib_jobs(n_jobs: Any) -> int:
    """How many jobs joblib runs at once: n_jobs, where -1 means one per core, -2 all but one."""
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    if n_jobs < 0:
        return max(1, available_cores() + 1 + n_jobs)
    return max(1, n_jobs)


def _hydra_launcher() -> Any:
    """This job's launcher settings; None outside a --multirun (a lone run has every core)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return HydraConfig.get().get("launcher")
