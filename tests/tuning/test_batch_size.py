"""Seed 002's Algorithm 1 replayed on the AUROCs the paper printed (Tables 4 and 5)."""

from __future__ import annotations

import math

from anomaly_cli.tuning.batch_size import search_batch_size, table_rows

# Bracket Brown (MPDD), N = 262: Table 4.
TABLE_4 = {131: 0.8676, 65: 0.9194, 32: 0.8664, 98: 0.9762, 81: 0.9762}
# RSNA Pneumonia (BMAD), N = 26,684: Table 5 (sizes above 2000 are not trained).
TABLE_5 = {
    1667: 0.6071, 833: 0.6962, 416: 0.8521, 208: 0.7410, 312: 0.9154,
    364: 0.9695, 338: 0.9254, 351: 0.9514, 357: 0.9606,
}  # fmt: skip


def test_table_4_is_replayed_in_order_and_picks_98():
    search = search_batch_size(262, TABLE_4.__getitem__)
    assert [s.size for s in search.steps] == [131, 65, 32, 98, 81]
    assert [s.next for s in search.steps] == [
        "131/2 = 65", "65/2 = 32", "(65 + 131)/2 = 98", "(98 + 65)/2 = 81", "end",
    ]  # fmt: skip
    assert search.best == 98


def test_table_5_halves_past_2000_untrained_and_picks_364():
    search = search_batch_size(26684, TABLE_5.__getitem__)
    assert [s.size for s in search.steps] == [
        13342, 6671, 3335, 1667, 833, 416, 208, 312, 364, 338, 351, 357,
    ]  # fmt: skip
    assert [s.auroc is None for s in search.steps[:4]] == [True, True, True, False]
    assert search.best == 364
    rows = table_rows(search)
    assert [r["batch_size"] for r in rows if r["best"]] == [364]
    assert rows[8]["auroc_percent"] == 96.95


def test_the_cap_on_trainings_ends_the_search_with_the_best_so_far():
    trained = []

    def auroc(size: int) -> float:
        trained.append(size)
        return TABLE_5[size]

    search = search_batch_size(26684, auroc, max_trainings=3)
    assert trained == [1667, 833, 416]
    assert search.best == 416
    assert "max_trials=3" in search.stopped


def test_a_failed_training_counts_as_the_worst_auroc():
    aurocs = {50: 0.7, 25: math.nan, 37: 0.8, 43: 0.75, 40: 0.78}
    search = search_batch_size(100, aurocs.__getitem__, gap=5)
    assert search.best == 37
