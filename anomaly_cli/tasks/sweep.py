"""`adx sweep threshold=a:b`: re-threshold a run's saved test scores, no retraining."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

from anomaly_cli import runs
from anomaly_cli.config_dir import config_dir
from anomaly_cli.errors import AdxUserError, first_lines
from anomaly_cli.tasks.common import current_run_dir, run_cli_task

if TYPE_CHECKING:  # pandas costs a third of a second: keep `adx sweep --help` quick
    import numpy as np
    import pandas as pd

_SCORE_COLUMNS = ("label", "score")


def rewrite_overrides(args: Sequence[str]) -> list[str]:
    """`threshold=<grid>` becomes `threshold.grid='<grid>'`.

    Hydra's grammar would read `[0.01,0.05]` as floats and `a:b` as a string;
    quoting hands the text over exactly as typed, so it prints as typed.
    """
    rewritten = []
    for arg in args:
        if arg.startswith("threshold="):
            grid = arg.removeprefix("threshold=")
            if "'" in grid or "\\" in grid:
                raise AdxUserError(
                    f"threshold={grid} is not a grid; write a:b, a:b:step or [t1,t2,...]"
                )
            arg = f"threshold.grid='{grid}'"
        rewritten.append(arg)
    return rewritten


def sweep(cfg: DictConfig, run_dir: Path | None = None) -> pd.DataFrame:
    """Metrics of the source run's test scores at every threshold of the grid."""

    from anomaly_cli.evaluation.grid import format_threshold, parse_grid
    from anomaly_cli.evaluation.metrics import ranking_metrics, threshold_metrics
    from anomaly_cli.evaluation.thresholds import predict
    from anomaly_cli.reporting.tables import sweep_frame, sweep_table

    grid = parse_grid(cfg.threshold.grid, int(cfg.threshold.steps))
    run_dir = Path(run_dir or current_run_dir())
    source = runs.find_run(cfg.run, cfg.paths.output_dir, needs=(runs.SCORES,))
    labels, values = read_scores(source / runs.SCORES)
    columns = [format_threshold(t) for t in grid]
    per_threshold = [threshold_metrics(labels, predict(values, float(t))) for t in grid]
    frame = sweep_frame(columns, per_threshold)
    ranking = ranking_metrics(labels, values)
    table = sweep_table(frame)
    caption = (
        f"Threshold sweep of {source.name} ({len(values)} test samples; "
        f"AUROC {ranking['auroc']:.4f}, AUPR-out {ranking['aupr_out']:.4f})"
    )
    runs.write_csv(run_dir / runs.SWEEP_CSV, frame)
    runs.write_text(run_dir / runs.SWEEP_TXT, f"{caption}\n{table}\n")
    runs.write_text(run_dir / "source_run.txt", f"{source}\n")
    print(caption)
    print(table)
    print(f"Run directory: {run_dir}")
    return frame


def read_scores(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Labels (0/1) and finite scores from a run's scores.csv, or DamagedFile naming it."""
    import numpy as np
    import pandas as pd

    fix = "pass run=<dir> of a finished train or evaluate run"
    try:
        scores = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise runs.DamagedFile(f"{path} is damaged ({first_lines(error)[:120]}); {fix}") from error
    missing = [c for c in _SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise runs.DamagedFile(f"{path} lacks column(s) {', '.join(missing)}; {fix}")
    labels = pd.to_numeric(scores["label"], errors="coerce").to_numpy(np.float64)
    values = pd.to_numeric(scores["score"], errors="coerce").to_numpy(np.float64)
    if len(values) == 0:
        raise runs.DamagedFile(f"{path} holds no scores; {fix}")
    if not np.isin(labels, (0, 1)).all():
        raise runs.DamagedFile(f"{path} has labels other than 0 and 1; {fix}")
    if not np.isfinite(values).all():
        raise runs.DamagedFile(f"{path} has scores that are not finite numbers; {fix}")
    if len(np.unique(labels)) < 2:
        raise AdxUserError(
            f"{path} holds only {'anomalies' if labels[0] else 'normal samples'}; a sweep "
            "needs both to measure anything"
        )
    return labels.astype(np.int8), values


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="sweep")
def main(cfg: DictConfig) -> None:
    run_cli_task(sweep, cfg, "sweep")
