"""Image and pixel AUROC of adx's image models per defect kind, on generated MVTec-layout folders.

The data: anomaly_cli/data/defects.py writes textures (scikit-image's bundled
brick, grass and gravel photographs, a procedural weave) and an object (a
speckled pill) with four defect kinds (foreign texture, missing texture,
scratch, colour spot) in two sizes each, no download. Each (model variant,
category, seed) is one real `adx train` in a fresh process:

    adx train dataset=mvtec dataset.root=<data> dataset.category=<c>
        dataset.val_fraction=<v> dataset.preprocess.image_size=<px> dataset.cache=true
        dataset.seed=<s> trainer.seed=<s> trainer.epochs=<e> trainer.verbose=0
        logger=none report.plots=[] <the variant's overrides>

Per defect class, the image AUROC (good against that class) comes from the
run's scores.csv (its id names the class folder), the pixel AUROC from
pixel_metrics.json's per_class (models that give maps); "all" is the run's own
metrics.json AUROC and pixel AUROC. Rows are appended to a CSV as each run
finishes, so an interrupted benchmark resumes. Prints the tables (mean over
seeds) and, with --write-readme, puts them in benchmarks/README.md between
<!-- defects:begin --> and <!-- defects:end -->. Asserts nothing. From the repo root:

    .venv/bin/python benchmarks/defects.py --models conv_ae --categories weave --epochs 2
    .venv/bin/python benchmarks/defects.py --write-readme        # every default variant
    .venv/bin/python benchmarks/defects.py --models conv_ae "wide:model=conv_ae model.latent_dim=64"
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- defects:begin -->", "<!-- defects:end -->"
SECTION = "## `defects.py`: image and pixel AUROC per defect kind"
ADX = str(Path(sys.executable).with_name("adx"))

# Model variants: name -> the overrides of `adx train` that make it. The ones
# whose model config is not in configs/model/ yet are skipped with a note.
VARIANTS: dict[str, list[str]] = {
    "conv_ae": ["model=conv_ae", "model.loss=mse", "model.score=mse"],
    "unet": ["model=unet", "model.loss=mse", "model.score=mse"],
    "conv_ae_ssim": ["model=conv_ae", "model.loss=ssim", "model.score=ssim"],
    "conv_ae_gradient": ["model=conv_ae", "model.loss=mse_gradient", "model.score=gradient"],
    # No network on the benchmark machine: randomly initialised backbones.
    "padim": ["model=padim", "model.backbone.weights=none"],
    "patchcore": ["model=patchcore", "model.backbone.weights=none"],
    "draem": ["model=draem"],
    # The full 256 px images by 64 px windows (docs/windows.md).
    "conv_ae_windows": [
        "model=conv_ae",
        "dataset.preprocess.image_size=256",
        "model.window_size=64",
        "model.loss=mse_gradient",
        "model.score=top_k_mean",
    ],
    "vae": ["model=vae"],
    "beta_vae": ["model=beta_vae"],
    "dual_ae": ["model=dual_ae"],
    "deep_svdd": ["model=deep_svdd"],
    "iaead": ["model=iaead"],
    "ganomaly": ["model=ganomaly"],
    # An MLP on the flattened image (seed 003 made it for table rows).
    "dense_ae": ["model=dense_ae"],
}
COLUMNS = [
    "model",
    "category",
    "seed",
    "defect",
    "image_auroc",
    "pixel_auroc",
    "seconds",
    "epochs",
    "image_size",
]
# The defect column's value for the whole test set of a run.
ALL = "all"


def parse_variant(text: str) -> tuple[str, list[str]]:
    """`NAME` (a known variant) or `NAME:OVERRIDE OVERRIDE ...` (a new one)."""
    if ":" in text:
        name, overrides = text.split(":", 1)
        return name.strip(), shlex.split(overrides)
    if text not in VARIANTS:
        raise argparse.ArgumentTypeError(
            f"unknown model variant {text!r}; known: {', '.join(VARIANTS)}, "
            "or define one as NAME:OVERRIDES (e.g. 'wide:model=conv_ae model.latent_dim=64')"
        )
    return text, list(VARIANTS[text])


def variant_available(overrides: Sequence[str]) -> str | None:
    """Why a variant cannot run here (its model config is missing), or None."""
    for override in overrides:
        if override.startswith("model="):
            name = override.split("=", 1)[1]
            if not (REPO / "configs" / "model" / f"{name}.yaml").is_file():
                return f"configs/model/{name}.yaml does not exist (yet)"
    return None


def run_overrides(
    data: Path, category: str, seed: int, args: argparse.Namespace, variant: list[str]
) -> list[str]:
    # The variant comes last, so it may change anything the benchmark sets.
    return [
        "dataset=mvtec",
        f"dataset.root={data}",
        f"dataset.category={category}",
        f"dataset.val_fraction={args.val_fraction}",
        f"dataset.preprocess.image_size={args.image_size}",
        # A few hundred small images: decode them once, not every epoch.
        "dataset.cache=true",
        f"dataset.seed={seed}",
        f"trainer.seed={seed}",
        f"trainer.epochs={args.epochs}",
        "trainer.verbose=0",
        "logger=none",
        "report.plots=[]",
        *([f"trainer.threads={args.threads}"] if args.threads else []),
        *variant,
    ]


def image_size(args: argparse.Namespace, variant: Sequence[str]) -> int:
    """The size a variant trains at: its own dataset.preprocess.image_size, or --image-size."""
    key = "dataset.preprocess.image_size="
    sizes = [int(o[len(key) :]) for o in variant if o.startswith(key)]
    return sizes[-1] if sizes else args.image_size


def run_adx(overrides: list[str], run_dir: Path, log: Path) -> float:
    """`adx train OVERRIDES` in a fresh process; its wall seconds. Raises on failure."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "ADX_OUTPUT_DIR": str(run_dir.parent)}
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(
            [ADX, "train", *overrides, f"hydra.run.dir={run_dir}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=run_dir.parent,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text().strip().splitlines()[-6:])
        raise RuntimeError(f"adx train exited with {done.returncode}:\n{tail}")
    return time.perf_counter() - started


def defect_rows(run_dir: Path) -> list[dict[str, Any]]:
    """One row per defect class of a finished run, and one for the whole test set."""
    from sklearn.metrics import roc_auc_score

    scores = pd.read_csv(run_dir / "scores.csv")
    # MVTec ids are <category>/test/<class>/<file>: the class is the folder.
    scores["class"] = scores["id"].str.split("/").str[-2]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    pixel_path = run_dir / "pixel_metrics.json"
    pixel = json.loads(pixel_path.read_text()) if pixel_path.is_file() else {}
    per_class = pixel.get("per_class", {})
    good = scores[scores.label == 0]
    rows = [
        {
            "defect": ALL,
            "image_auroc": metrics.get("auroc"),
            "pixel_auroc": pixel.get("pixel_auroc"),
        }
    ]
    for defect in sorted(set(scores["class"][scores.label == 1])):
        chosen = pd.concat([good, scores[(scores["class"] == defect) & (scores.label == 1)]])
        rows.append(
            {
                "defect": defect,
                "image_auroc": float(roc_auc_score(chosen.label, chosen.score)),
                "pixel_auroc": per_class.get(defect, {}).get("pixel_auroc"),
            }
        )
    return rows


# --- tables -------------------------------------------------------------------------------


def kind_and_size(defect: str) -> tuple[str, str]:
    """'missing_texture_small' -> ('missing_texture', 'small'); 'all' -> ('all', '')."""
    if defect == ALL:
        return ALL, ""
    kind, _, size = defect.rpartition("_")
    return (kind, size) if size in ("small", "large") else (defect, "")


def metric_table(results: pd.DataFrame, metric: str, models: list[str]) -> str:
    """Rows (model, category), columns the defect kinds as 'small / large', then all."""
    frame = results.dropna(subset=[metric])
    if frame.empty:
        return f"(no {metric.replace('_', ' ')} in these runs)"
    means = frame.groupby(["model", "category", "defect"])[metric].mean()
    kinds = sorted({kind_and_size(d)[0] for d in frame.defect} - {ALL})
    rows = []
    for model in [m for m in models if m in set(frame.model)]:
        for category in sorted(set(frame[frame.model == model].category)):
            cells = means[model][category]

            def cell(defect: str, of: pd.Series = cells) -> str:
                return f"{of[defect]:.2f}" if defect in of else "–"

            row = [model, category]
            row += [f"{cell(k + '_small')} / {cell(k + '_large')}" for k in kinds]
            rows.append([*row, cell(ALL)])
    headers = ["model", "category", *[f"{k} (s / l)" for k in kinds], ALL]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def summary_table(results: pd.DataFrame, models: list[str]) -> str:
    """Per model: mean image and pixel AUROC over categories, the worst kind, s per run."""
    rows = []
    for model in [m for m in models if m in set(results.model)]:
        mine = results[results.model == model]
        overall = mine[mine.defect == ALL]
        by_defect = mine[mine.defect != ALL].groupby("defect").image_auroc.mean()
        worst = by_defect.idxmin() if not by_defect.empty else "–"
        pixel = overall.pixel_auroc.dropna()
        rows.append(
            [
                model,
                f"{overall.image_auroc.mean():.3f}",
                f"{pixel.mean():.3f}" if len(pixel) else "–",
                f"{worst} ({by_defect.min():.2f})" if not by_defect.empty else "–",
                len(overall),
                f"{overall.seconds.mean():.1f}",
                f"{overall.epochs.mean():.1f}",
            ]
        )
    return tabulate(
        rows,
        headers=[
            "model",
            "image AUROC (mean)",
            "pixel AUROC (mean)",
            "worst defect (image AUROC)",
            "runs",
            "s / run",
            "epochs / run",
        ],
        tablefmt="github",
        disable_numparse=True,
    )


def report(results: pd.DataFrame, models: list[str], header: str) -> str:
    return "\n\n".join(
        [
            header,
            "Mean over categories (image AUROC of the whole test set; worst: lowest mean "
            "image AUROC of one defect class against the good images):",
            summary_table(results, models),
            "Image AUROC per category and defect kind (good against that kind, small / large; "
            "mean over seeds):",
            metric_table(results, "image_auroc", models),
            "Pixel AUROC per category and defect kind (models that give anomaly maps):",
            metric_table(results, "pixel_auroc", models),
        ]
    )


def write_readme(markdown: str, readme: Path = README) -> None:
    """Put `markdown` between the markers in `readme` (a new section at the end if none)."""
    text = readme.read_text()
    block = f"{BEGIN}\n{markdown}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    readme.write_text(text)


def machine() -> str:
    from importlib import metadata

    cpuinfo = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else [])
        if line.startswith("model name")
    ]
    return (
        f"{names[0] if names else platform.machine()}, {os.cpu_count()} cores, "
        f"TensorFlow {metadata.version('tensorflow')}, "
        f"{datetime.datetime.now().isoformat(timespec='minutes')}"
    )


# --- the benchmark ------------------------------------------------------------------------


def prepare_data(out: Path, args: argparse.Namespace) -> Path:
    """The generated folders under `out`/data, made once per set of data settings."""
    from anomaly_cli.data.defects import build_defect_dataset

    data = out / "data"
    settings = {
        "categories": sorted(args.categories),
        "image_size": args.data_size,
        "n_train": args.n_train,
        "n_test_good": args.n_test_good,
        "n_test_per_defect": args.n_test_per_defect,
        "seed": args.data_seed,
    }
    manifest = data / "settings.json"
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        if found != settings:
            sys.exit(
                f"{data} was generated with {found}, not {settings}; "
                "choose another --out (its results.csv belongs to that data)"
            )
        return data
    shutil.rmtree(data, ignore_errors=True)
    started = time.perf_counter()
    build_defect_dataset(
        data,
        categories=args.categories,
        image_size=args.data_size,
        n_train=args.n_train,
        n_test_good=args.n_test_good,
        n_test_per_defect=args.n_test_per_defect,
        seed=args.data_seed,
    )
    manifest.write_text(json.dumps(settings, indent=2))
    print(f"generated {data} in {time.perf_counter() - started:.1f} s", flush=True)
    return data


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from anomaly_cli.data.defects import CATEGORIES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        type=parse_variant,
        default=[parse_variant(name) for name in VARIANTS],
        help="variant names or NAME:OVERRIDES; default: every variant in VARIANTS",
    )
    parser.add_argument("--categories", nargs="+", choices=CATEGORIES, default=list(CATEGORIES))
    parser.add_argument("--image-size", type=int, default=128, help="model input side, px")
    parser.add_argument("--data-size", type=int, default=256, help="generated images' side, px")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--n-train", type=int, default=80)
    parser.add_argument("--n-test-good", type=int, default=20)
    parser.add_argument("--n-test-per-defect", type=int, default=8)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="trainer.threads of each run")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "adx_defects_bench",
        help="holds data/, runs/ and results.csv; reused, so a stopped benchmark resumes",
    )
    parser.add_argument("--keep-runs", action="store_true", help="keep each run's folder")
    parser.add_argument("--write-readme", action="store_true", help=f"between {BEGIN} / {END}")
    parser.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    # Runs start in their own folder, so every path they get must be absolute.
    args.out = args.out.resolve()
    sys.path.insert(0, str(REPO))
    args.out.mkdir(parents=True, exist_ok=True)
    data = prepare_data(args.out, args)
    results_path = args.out / "results.csv"
    done = read_results(results_path)
    finished = {
        (r.model, r.category, int(r.seed), int(r.image_size))
        for r in done.itertuples()
        if r.defect == ALL
    }
    variants = dict(args.models)
    for name, overrides in list(variants.items()):
        reason = variant_available(overrides)
        if reason:
            print(f"skipping {name}: {reason}", flush=True)
            del variants[name]
    jobs = [
        (name, category, seed)
        for name in variants
        for category in args.categories
        for seed in args.seeds
        if (name, category, seed, image_size(args, variants[name])) not in finished
    ]
    print(f"{len(finished)} runs already in {results_path}; {len(jobs)} to go", flush=True)
    started = time.perf_counter()
    failures = []
    for name, category, seed in jobs:
        size = image_size(args, variants[name])
        run_dir = args.out / "runs" / f"{name}_{category}_{seed}_{size}px"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        overrides = run_overrides(data, category, seed, args, variants[name])
        try:
            seconds = run_adx(overrides, run_dir, run_dir.with_suffix(".log"))
        except RuntimeError as failure:  # one broken variant costs its rows, not the benchmark
            failures.append(f"{name} on {category} (seed {seed}): {failure}")
            print(f"FAILED {failures[-1]}", flush=True)
            continue
        epochs = json.loads((run_dir / "run.json").read_text()).get("epochs_run") or 0
        rows = [
            {
                "model": name,
                "category": category,
                "seed": seed,
                **row,
                "seconds": round(seconds, 1),
                "epochs": epochs,
                "image_size": size,
            }
            for row in defect_rows(run_dir)
        ]
        # Only whole runs go in (the "all" row last marks it finished), so a
        # stop between two appends cannot leave half a run behind.
        frame = pd.DataFrame(rows[1:] + rows[:1], columns=COLUMNS)
        frame.to_csv(results_path, mode="a", header=not results_path.is_file(), index=False)
        if not args.keep_runs:
            shutil.rmtree(run_dir, ignore_errors=True)
        print(
            f"{name:>14} {category:>8} seed {seed}: image AUROC {rows[0]['image_auroc']:.3f}, "
            f"pixel AUROC {_num(rows[0]['pixel_auroc'])} ({seconds:.1f} s, {epochs} epochs)",
            flush=True,
        )
    results = read_results(results_path)
    wanted = results[
        results.model.isin(list(variants))
        & results.category.isin(args.categories)
        & results.seed.isin(args.seeds)
        & (results.image_size == results.model.map(lambda m: image_size(args, variants.get(m, []))))
    ]
    command = " ".join([".venv/bin/python benchmarks/defects.py", *_shown_args(argv)])
    header = (
        f"`{command}`: {args.image_size} px model input (generated at {args.data_size} px; "
        f"{args.n_train} train, {args.n_test_good} good and {args.n_test_per_defect} per "
        f"defect class in test), {args.epochs} epochs, seeds {args.seeds}, on {machine()}; "
        f"{time.perf_counter() - started:.0f} s this session."
    )
    markdown = report(wanted, list(variants), header)
    if failures:
        markdown += "\n\nFailed runs:\n\n" + "\n".join(
            f"- {f.splitlines()[0]} {f.splitlines()[-1]}" for f in failures
        )
    print(f"\nresults: {results_path}\n\n{markdown}")
    if args.write_readme:
        write_readme(markdown, args.readme)
        print(f"wrote {args.readme}")
    return wanted


def read_results(path: Path) -> pd.DataFrame:
    """The rows so far; none yet (every variant skipped or failed) is an empty table."""
    return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=COLUMNS)


def _num(value: Any) -> str:
    return (
        "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"
    )


def _shown_args(argv: Sequence[str] | None) -> list[str]:
    """The command line as typed, less the paths that only matter on one machine."""
    given = list(sys.argv[1:] if argv is None else argv)
    shown, skip = [], False
    for item in given:
        if skip:
            skip = False
            continue
        if item in ("--out", "--readme"):
            skip = True
            continue
        shown.append(shlex.quote(item))
    return shown


if __name__ == "__main__":
    main()
