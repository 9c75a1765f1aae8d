"""Seed 002's dataset-derived training settings: dynamic seeds (Eq. 24), batch size (Eq. 25).

`trainer.seed=dynamic` and `trainer.batch_size=auto` are resolved here, once,
from the training split's size, into the plain integers every other module
reads (docs/stable_training.md says which N and why the clamps). Nothing here
imports TensorFlow: checks.py reads the spellings before any data exists.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from omegaconf import DictConfig

log = logging.getLogger("adx")

# The spellings that ask for a value computed from the data.
DYNAMIC_SEED = "dynamic"
AUTO_BATCH_SIZE = "auto"

SEED_MODULUS = 200  # Eq. 24
# Eq. 25's regimes meet at N = 6300; below it the fit is logarithmic growth.
REGIME_BOUNDARY = 6300
# The first regime is negative below N = 23 and under 8 up to N = 43; a batch
# smaller than this gives batch statistics too noisy to be what the fit meant.
MIN_BATCH_SIZE = 8
# The second regime falls below its own start (84 at N = 6300) past N ~ 66,000
# and is negative past N ~ 74,000: it is held at that start instead.
LARGE_REGIME_FLOOR = math.floor(
    444.1692 * math.log(REGIME_BOUNDARY) - 0.0174 * REGIME_BOUNDARY - 3691.6901
)
# Attempt a (0-based) shifts every seed by this times a, so the three seeds of
# one attempt never repeat another attempt's.
ATTEMPT_SEED_STRIDE = 3


@dataclass(frozen=True)
class LibrarySeeds:
    """One seed per random number generator (Eq. 24's k = 0, 1, 2)."""

    numpy: int
    tensorflow: int
    python: int

    def shifted(self, offset: int) -> LibrarySeeds:
        return LibrarySeeds(self.numpy + offset, self.tensorflow + offset, self.python + offset)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def dynamic_seeds(n: int) -> LibrarySeeds:
    """Eq. 24: seed = (N mod 200) + k, k = 0 NumPy, 1 TensorFlow, 2 Python (the
    paper's pseudocode order; its prose lists Python first)."""
    base = int(n) % SEED_MODULUS
    return LibrarySeeds(numpy=base, tensorflow=base + 1, python=base + 2)


def eq25(n: int) -> float:
    """Eq. 25 as printed, with the natural logarithm (the only base that gives
    the paper's regimes positive values and meets near N = 6300)."""
    if n <= REGIME_BOUNDARY:
        return -0.0045 * n + 19.3299 * math.log(n) - 59.7382
    return 444.1692 * math.log(n) - 0.0174 * n - 3691.6901


def adaptive_batch_size(n: int) -> int:
    """Eq. 25 floored (the paper's pseudocode), kept within [MIN_BATCH_SIZE, N]."""
    if n < 1:
        raise ValueError(f"the training split has {n} samples; Eq. 25 needs at least one")
    size = math.floor(eq25(n))
    if n > REGIME_BOUNDARY:
        size = max(size, LARGE_REGIME_FLOOR)
    return min(n, max(MIN_BATCH_SIZE, size))


def is_dynamic_seed(value: Any) -> bool:
    return isinstance(value, str) and value == DYNAMIC_SEED


def is_auto_batch_size(value: Any) -> bool:
    return isinstance(value, str) and value == AUTO_BATCH_SIZE


def adapts_to_data(trainer: DictConfig) -> bool:
    """Whether the trainer has settings only the data can decide (run.json records them)."""
    return (
        is_dynamic_seed(trainer.get("seed"))
        or is_auto_batch_size(trainer.get("batch_size"))
        or attempt_count(trainer) is not None
    )


def attempt_count(trainer: DictConfig) -> int | None:
    """trainer.attempts, or None for a trainer without attempts (trainer=default)."""
    value = trainer.get("attempts")
    return None if value is None else int(value)


@dataclass(frozen=True)
class ResolvedTrainer:
    """The trainer settings a run used, as run.json records them."""

    train_size: int
    seed: int | str  # as configured: an integer or "dynamic"
    seeds: LibrarySeeds
    batch_size: int
    batch_size_from: str  # "config" or "Eq. 25"

    @property
    def adapted(self) -> bool:
        """Whether the data decided the seeds or the batch size."""
        return is_dynamic_seed(self.seed) or self.batch_size_from != "config"

    def report(self) -> dict[str, Any]:
        return {
            "train_size": self.train_size,
            "seed": self.seed,
            "seeds": self.seeds.to_dict(),
            "batch_size": self.batch_size,
            "batch_size_from": self.batch_size_from,
        }


def resolve_trainer(cfg: DictConfig, train_size: int) -> tuple[DictConfig, ResolvedTrainer]:
    """A copy of cfg whose trainer.seed and trainer.batch_size are integers.

    trainer.seed becomes the NumPy seed (it also seeds the per-epoch shuffle);
    the three library seeds are returned for `apply_library_seeds`.
    """
    configured_seed = cfg.trainer.seed
    if is_dynamic_seed(configured_seed):
        seeds = dynamic_seeds(train_size)
    else:
        seed = int(configured_seed)
        seeds = LibrarySeeds(seed, seed, seed)
    auto = is_auto_batch_size(cfg.trainer.batch_size)
    batch_size = adaptive_batch_size(train_size) if auto else int(cfg.trainer.batch_size)
    if is_dynamic_seed(configured_seed) or auto:
        log.info(
            "trainer from N=%d training samples: seeds numpy %d, tensorflow %d, python %d; "
            "batch size %d (%s)",
            train_size,
            seeds.numpy,
            seeds.tensorflow,
            seeds.python,
            batch_size,
            "Eq. 25" if auto else "trainer.batch_size",
        )
    resolved = copy.deepcopy(cfg)
    resolved.trainer.seed = seeds.numpy
    resolved.trainer.batch_size = batch_size
    return resolved, ResolvedTrainer(
        train_size=int(train_size),
        seed=configured_seed if isinstance(configured_seed, str) else int(configured_seed),
        seeds=seeds,
        batch_size=batch_size,
        batch_size_from="Eq. 25" if auto else "config",
    )
