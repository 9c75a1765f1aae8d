"""trainer.checkpoint_every: every N epochs, or (auto) while saving stays within its share."""

from __future__ import annotations

import pytest

from anomaly_cli.training.checkpoint_policy import CheckpointBudget, checkpoint_interval


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_interval_saves_every_that_many_epochs_whatever_it_costs():
    budget = CheckpointBudget(every=3)
    assert [e for e in range(1, 10) if budget.due(e, now=60.0, final=60.0)] == [3, 6, 9]
    assert (checkpoint_interval("auto"), checkpoint_interval(None), checkpoint_interval(4)) == (
        None,
        None,
        4,
    )


def test_auto_saves_once_the_save_and_the_final_one_fit_within_five_percent():
    clock = Clock()
    budget = CheckpointBudget(every=None, clock=clock)
    # A save of 1 s, and 1 s for the final one: due once 2 s are 5 % of the time.
    clock.now += 10.0
    assert not budget.due(1, now=1.0, final=1.0)
    clock.now += 28.0  # 38 s trained: (0 + 1 + 1) <= 0.05 * (38 + 2)
    assert budget.due(2, now=1.0, final=1.0)
    with budget.timed("last"):
        clock.now += 1.5
    assert budget.spent == pytest.approx(1.5)
    assert budget.expected("last", nbytes=10**12) == pytest.approx(1.5)  # measured wins
    # 1.5 s spent: the next save waits until 4 s are 5 % of the time (80 s).
    clock.now += 30.0
    assert not budget.due(3, now=1.5, final=1.0)
    clock.now += 11.0  # 80.5 s in all
    assert budget.due(4, now=1.5, final=1.0)


def test_before_any_save_is_timed_its_cost_is_estimated_from_its_bytes():
    budget = CheckpointBudget(every=None)
    small, large = budget.expected("best", 4_000), budget.expected("best", 1_500_000_000)
    assert 0 < small < 0.1 < 5 < large
