from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from anomaly_cli import resolvers


class _FrozenClock:
    @staticmethod
    def now() -> datetime:
        return datetime(2026, 1, 2, 3, 4, 5)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolvers, "datetime", _FrozenClock)
    monkeypatch.setattr(resolvers, "_claimed", {})


def test_runs_started_in_the_same_second_get_distinct_dirs(tmp_path: Path, frozen: None):
    first = resolvers.unique_dir(str(tmp_path), "train_conv_ae_digits")
    resolvers._claimed.clear()  # as if a second process resolved the same name
    second = resolvers.unique_dir(str(tmp_path), "train_conv_ae_digits")
    assert Path(first).name == "2026-01-02_03-04-05_train_conv_ae_digits"
    assert Path(second).name == "2026-01-02_03-04-05_train_conv_ae_digits_2"
    assert Path(first).is_dir() and Path(second).is_dir()


def test_one_process_resolves_to_one_dir_however_often_it_asks(tmp_path: Path, frozen: None):
    names = {resolvers.unique_dir(str(tmp_path), "x") for _ in range(3)}
    assert len(names) == 1
    assert len(list(tmp_path.iterdir())) == 1


def test_names_only_creates_nothing(tmp_path: Path, frozen: None):
    with resolvers.names_only():
        name = resolvers.unique_dir(str(tmp_path / "out"), "x")
    assert name.endswith("2026-01-02_03-04-05_x")
    assert not (tmp_path / "out").exists()


def test_run_label_reads_the_source_runs_config(tmp_path: Path):
    (tmp_path / "config.yaml").write_text("model: {name: conv_ae}\ndataset: {name: digits}\n")
    assert resolvers.run_label(str(tmp_path), "unused") == "conv_ae_digits"
    assert resolvers.run_label(str(tmp_path / "missing"), "unused") == "unknown"
