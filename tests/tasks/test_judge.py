"""The judging stage on hand-made scores and labels: no model, no files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.evaluation.judge import judge

VAL_SCORES = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
VAL_LABELS = np.array([0, 0, 0, 0, 1])
TEST_SCORES = np.array([0.05, 0.25, 0.35, 0.5, 0.8, 0.2])
TEST_LABELS = np.array([0, 0, 0, 1, 1, 1])


def _judge(**threshold):
    return judge(OmegaConf.create(threshold), VAL_SCORES, VAL_LABELS, TEST_SCORES, TEST_LABELS)


def test_the_threshold_comes_from_val_normals_and_the_metrics_from_test():
    judgement = _judge(strategy="percentile", q=50)
    # The median of the four normal val scores; the val anomaly (0.9) plays no part.
    assert judgement.threshold.value == pytest.approx(0.25)
    assert (judgement.threshold.strategy, judgement.threshold.requested) == (
        "percentile",
        "percentile",
    )
    # Test above 0.25: 0.35 (normal) and 0.5, 0.8 (anomalies); 0.25 itself is not above.
    metrics = judgement.metrics
    assert (metrics["tp"], metrics["fp"], metrics["tn"], metrics["fn"]) == (2, 1, 2, 1)
    assert metrics["auroc"] == pytest.approx(7 / 9)  # 7 of 9 (anomaly, normal) pairs ranked right
    assert judgement.val_counts == {"normal": 4, "anomaly": 1}


def test_a_label_strategy_uses_the_val_anomalies():
    judgement = _judge(strategy="youden", fallback_q=95)
    # Youden's best point flags only 0.9; the threshold lies halfway below it.
    assert judgement.threshold.value == pytest.approx((0.9 + 0.4) / 2)
    assert judgement.threshold.strategy == "youden"


def test_a_fixed_threshold_is_taken_as_given():
    judgement = _judge(strategy="fixed", value=0.3)
    assert judgement.threshold.value == 0.3
    assert judgement.metrics["tp"] + judgement.metrics["fp"] == 3  # 0.35, 0.5, 0.8


def test_threshold_record_is_what_threshold_json_holds():
    record = _judge(strategy="percentile", q=50).threshold_record()
    assert list(record) == [
        "value",
        "strategy",
        "requested",
        "fallback_reason",
        "fitted_on",
        "val_counts",
    ]
    assert (record["fitted_on"], record["val_counts"]) == ("val", {"normal": 4, "anomaly": 1})


def test_judging_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    _judge(strategy="best_f1", fallback_q=95)
    assert os.listdir(tmp_path) == []


def test_a_val_split_without_normals_is_a_user_error():
    with pytest.raises(AdxUserError, match="no normal sample"):
        judge(
            OmegaConf.create({"strategy": "percentile", "q": 95}),
            np.array([0.5]),
            np.array([1]),
            TEST_SCORES,
            TEST_LABELS,
        )
