"""report.html: one page per train, evaluate and compare folder, readable in any browser.

The page is built from the files the folder already holds, whichever exist:
the metrics (or compare's table), the threshold and how it was fitted, the
data summary, run.json, every PNG under plots/, the config, and links to
the other artifacts. It is self-contained so it still works when the folder
is copied, mailed or served from anywhere: no external CSS, scripts or
fonts, plots embedded as `data:` URIs, and links relative to the folder.
Every value from a file is escaped; nothing is templated.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from anomaly_cli import runs
from anomaly_cli.errors import first_lines
from anomaly_cli.evaluation.metrics import display_name

log = logging.getLogger("adx")

# Files the page links to (plots are shown, not linked; the page never links itself).
LINKED_SUFFIXES = (".csv", ".json", ".txt", ".md", ".yaml", ".log", ".keras")
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}
h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.85em}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.9em;color:#555}
.facts span{display:inline-block;margin-right:2em;font-size:1.1em}
.note{background:#fff4ce;border-left:4px solid #e0a800;padding:.5em 1em}
"""


def write_report(
    run_dir: Path, title: str | None = None, notes: Sequence[str] = (), lines: Sequence[str] = ()
) -> Path:
    """Write `run_dir`/report.html from the folder's files; returns its path.

    `notes` are warnings shown highlighted under the title, `lines` plain facts
    listed there (compare: which folder each column is).
    """
    path = Path(run_dir) / runs.REPORT_HTML
    runs.write_text(path, build_report(Path(run_dir), title, notes, lines))
    return path


def write_report_or_warn(
    run_dir: Path, title: str | None = None, notes: Sequence[str] = (), lines: Sequence[str] = ()
) -> Path | None:
    """write_report, where a failure is a warning: the run's own files are complete."""
    try:
        return write_report(run_dir, title, notes, lines)
    except Exception as error:  # never lose a finished run to its summary page
        log.warning(
            "%s not written (%s: %s); every other file of the run is complete",
            runs.REPORT_HTML,
            type(error).__name__,
            first_lines(error)[:200],
        )
        return None


def build_report(
    run_dir: Path, title: str | None = None, notes: Sequence[str] = (), lines: Sequence[str] = ()
) -> str:
    """The page's HTML text."""
    info = runs.optional_json_object(run_dir / runs.RUN_INFO)
    heading = title or _default_title(run_dir, info)
    sections = [
        _facts(run_dir, info),
        _notes(notes),
        _lines(lines),
        _metrics(run_dir),
        _compare(run_dir),
        _threshold(run_dir),
        _data(run_dir),
        _run_info(info),
        _plots(run_dir),
        _config(run_dir),
        _artifacts(run_dir),
    ]
    body = "\n".join(s for s in sections if s)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(heading)} - adx report</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<h1>{escape(heading)}</h1>\n<p>{_origin(run_dir, info)}</p>\n{body}\n"
        "</body>\n</html>\n"
    )


def _origin(run_dir: Path, info: Mapping[str, Any]) -> str:
    """The folder, the verb that wrote it, and the run an evaluate re-scored."""
    text = f"Run folder <code>{escape(run_dir.name)}</code>"
    if info.get("verb"):
        text += f", written by <code>adx {escape(str(info['verb']))}</code>"
    if info.get("source_run"):
        text += f" from the run <code>{escape(Path(str(info['source_run'])).name)}</code>"
    return text


def _default_title(run_dir: Path, info: Mapping[str, Any]) -> str:
    if info.get("model") and info.get("dataset"):
        return f"{info['model']} on {info['dataset']} ({info.get('verb', 'run')})"
    return run_dir.name


def _facts(run_dir: Path, info: Mapping[str, Any]) -> str:
    metrics, threshold = (
        runs.optional_json_object(run_dir / runs.METRICS_JSON),
        runs.optional_json_object(run_dir / runs.THRESHOLD),
    )
    facts = []
    if "auroc" in metrics:
        facts.append(f"AUROC {_number(metrics['auroc'])}")
    if "f1" in metrics:
        facts.append(f"F1 {_number(metrics['f1'])}")
    if "value" in threshold:
        facts.append(
            f"threshold {_number(threshold['value'], '.6g')} ({threshold.get('strategy')})"
        )
    if info.get("train_seconds") is not None:
        facts.append(f"trained in {_number(info['train_seconds'], '.1f')} s")
    if not facts:
        return ""
    return '<p class="facts">' + "".join(f"<span>{escape(f)}</span>" for f in facts) + "</p>"


def _notes(notes: Sequence[str]) -> str:
    return "".join(f'<p class="note">{escape(n)}</p>\n' for n in notes)


def _lines(lines: Sequence[str]) -> str:
    if not lines:
        return ""
    return "<ul>\n" + "".join(f"<li>{escape(line)}</li>\n" for line in lines) + "</ul>"


def _metrics(run_dir: Path) -> str:
    metrics = runs.optional_json_object(run_dir / runs.METRICS_JSON)
    if not metrics:
        return ""
    rows = [(display_name(k), _value(k, v)) for k, v in metrics.items()]
    pixel = runs.optional_json_object(run_dir / runs.PIXEL_METRICS)
    rows += [(k, _value(k, v)) for k, v in pixel.items()]
    return "<h2>Test metrics</h2>\n" + _table(["Metric", "Value"], rows)


def _compare(run_dir: Path) -> str:
    """compare.csv (or a sweep's summary.csv): a column per run, metrics as rows."""
    path = run_dir / runs.COMPARE_CSV
    if not path.is_file():
        path = run_dir / runs.SUMMARY_CSV
    if not path.is_file():
        return ""
    import pandas as pd

    frame = pd.read_csv(path)
    columns = [c for c in frame.columns if c != "metric"]
    rows = [
        [
            display_name(row["metric"]),
            *(_value(row["metric"], row[c]) for c in columns),
        ]
        for _, row in frame.iterrows()
    ]
    return "<h2>Test metrics per run</h2>\n" + _table(["Metric", *columns], rows)


def _threshold(run_dir: Path) -> str:
    record = runs.optional_json_object(run_dir / runs.THRESHOLD)
    if not record:
        return ""
    counts = record.get("val_counts") or {}
    fitted = f"fitted on {record.get('fitted_on', 'val')}"
    if counts:
        fitted += " (" + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")"
    text = (
        f"A sample is flagged as an anomaly when its score is above "
        f"{_number(record.get('value'), '.6g')}, chosen by the {record.get('strategy')} strategy "
        f"(asked for: {record.get('requested', record.get('strategy'))}), {fitted}."
    )
    if record.get("fallback_reason"):
        text += f" Fallback: {record['fallback_reason']}."
    text += " Re-threshold without retraining: adx sweep or adx evaluate threshold=..."
    rows = [(k, _plain(v)) for k, v in record.items()]
    return f"<h2>Threshold</h2>\n<p>{escape(text)}</p>\n" + _table(["Field", "Value"], rows)


def _data(run_dir: Path) -> str:
    data = runs.optional_json_object(run_dir / runs.DATA_INFO)
    if not data:
        return ""
    parts = ["<h2>Data</h2>"]
    counts = data.get("counts")
    if isinstance(counts, dict) and all(isinstance(v, dict) for v in counts.values()):
        kinds = list(dict.fromkeys(k for v in counts.values() for k in v))
        rows = [[split, *(_plain(v.get(k, 0)) for k in kinds)] for split, v in counts.items()]
        parts.append(_table(["Split", *kinds], rows))
    rest = [(k, _plain(v)) for k, v in data.items() if k != "counts"]
    parts.append(_table(["Field", "Value"], rest))
    return "\n".join(parts)


def _run_info(info: Mapping[str, Any]) -> str:
    if not info:
        return ""
    return "<h2>Run</h2>\n" + _table(["Field", "Value"], [(k, _plain(v)) for k, v in info.items()])


def _plots(run_dir: Path) -> str:
    """Every PNG under plots/, embedded, each linking to its file: the registered plots
    in report.plots' order (curves first, then images), then any others by name."""
    from anomaly_cli.reporting.plots import PLOT_FILES

    folder = run_dir / runs.PLOTS_DIR
    found = (
        sorted(p for p in folder.rglob("*.png") if not p.name.startswith("."))
        if folder.is_dir()
        else []
    )
    order = {name: rank for rank, name in enumerate(PLOT_FILES.values())}
    pngs = sorted(found, key=lambda p: order.get(p.relative_to(run_dir).as_posix(), len(order)))
    if not pngs:
        return ""
    figures = []
    for png in pngs:
        relative = png.relative_to(run_dir).as_posix()
        caption = png.relative_to(folder).with_suffix("").as_posix().replace("_", " ")
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        figures.append(
            f'<figure><a href="{_href(relative)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(caption)}"></a><figcaption>{escape(caption)}</figcaption></figure>'
        )
    return "<h2>Plots</h2>\n" + "\n".join(figures)


def _config(run_dir: Path) -> str:
    path = run_dir / runs.CONFIG
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace")
    return f"<h2>Config</h2>\n<pre>{escape(text)}</pre>"


def _artifacts(run_dir: Path) -> str:
    files = [
        p
        for p in _candidates(run_dir)
        if p.is_file() and p.suffix in LINKED_SUFFIXES and not p.name.startswith(".")
    ]
    if not files:
        return ""
    items = []
    for path in sorted(files):
        relative = path.relative_to(run_dir).as_posix()
        size = _size(path.stat().st_size)
        items.append(f'<li><a href="{_href(relative)}">{escape(relative)}</a> ({size})</li>')
    return "<h2>Files</h2>\n<ul>\n" + "\n".join(items) + "\n</ul>"


def _candidates(run_dir: Path) -> Iterable[Path]:
    yield from run_dir.iterdir()
    yield run_dir / runs.CHECKPOINT
    yield run_dir / ".hydra" / "overrides.yaml"


def _href(relative: str) -> str:
    """A link relative to the page, so it survives moving the folder."""
    return escape(quote(relative), quote=True)


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB"):
        if count < 1024:
            return f"{count:.0f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>\n" for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def _value(key: str, value: Any) -> str:
    """Counts as integers, times to 0.1 s, every other number to 4 places (as the tables)."""
    from anomaly_cli.reporting.tables import format_value

    try:
        number = float(value)
    except (TypeError, ValueError):
        return _plain(value)
    if math.isnan(number):
        return "n/a"
    if key.endswith("seconds"):
        return f"{number:.1f}"
    if key in ("images", "anomalous_pixels"):
        return str(int(number))
    return format_value(key, number)


def _number(value: Any, spec: str = ".4f") -> str:
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return str(value)


def _plain(value: Any) -> str:
    if isinstance(value, (dict, list)):
        if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
            return ", ".join(str(v) for v in value) or "(none)"
        return json.dumps(value)
    return "" if value is None else str(value)
