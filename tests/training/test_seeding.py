"""Seeding: every seed, 0 included, gives reproducible training batches."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_cli.data.base import ArraySplit
from anomaly_cli.data.pipeline import training_batches
from anomaly_cli.training.seeding import apply_seed


@pytest.mark.parametrize("seed", [0, 7])
def test_training_batches_are_reproducible_for_every_seed(seed: int):
    x = np.arange(40, dtype="float32").reshape(20, 2)
    split = ArraySplit(ids=np.arange(20), labels=np.zeros(20, dtype=np.int8), x=x)

    def first_values() -> list[float]:
        apply_seed(seed)
        return [float(b[0][0, 0]) for b in training_batches(split, 5, seed, 0, 2)]

    values = first_values()
    assert len(values) == 8  # 2 epochs x 4 batches
    assert values == first_values()
    assert sorted(values[:4]) != values[:4] or values[:4] != values[4:]  # shuffled per epoch
