"""Test AUROC of every image model on the digits one-vs-all protocol.

Each digit in turn is the normal class and every other digit an anomaly
(scikit-learn's bundled digits, no download). Every (model, digit, seed)
is a real `adx train` run, composed by Hydra from the repo's configs with
only these overrides: `model=<m> dataset.normal_class=<d> dataset.seed=<s>
trainer.seed=<s> dataset.preprocess.image_size=<px>` (default 8, the digits'
own resolution; the dataset config upscales to 32), `protocol=...` when
asked, and a model's MODEL_OVERRIDES (padim and patchcore: 32 px, the least
their backbones take, and random backbone weights). scikit-learn's
IsolationForest is scored on the same train/test splits, on flattened pixels.

Rows are appended to a CSV as they finish, so an interrupted benchmark
resumes where it stopped. Prints the per-digit and overall tables (mean +-
std over seeds). Asserts nothing. From the repo root:

    .venv/bin/python benchmarks/digits_one_vs_all.py
    .venv/bin/python benchmarks/digits_one_vs_all.py --models conv_ae iaead --seeds 0 --digits 0 1
    .venv/bin/python benchmarks/digits_one_vs_all.py --protocol unsupervised --contamination 0.1
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
IMAGE_MODELS = (
    "conv_ae",
    "vae",
    "beta_vae",
    "unet",
    "deep_svdd",
    "iaead",
    "dual_ae",
    "ganomaly",
    "padim",
    "patchcore",
)
# What a model needs beyond --image-size: keras.applications backbones take 32 px
# and more, and the benchmark machine cannot download ImageNet weights.
MODEL_OVERRIDES = {
    model: ["dataset.preprocess.image_size=32", "model.backbone.weights=none"]
    for model in ("padim", "patchcore")
}
BASELINE = "isolation_forest"
COLUMNS = ["model", "digit", "seed", "auroc", "seconds", "epochs"]


def job_overrides(
    model: str, digit: int, seed: int, protocol: str, contamination: float, image_size: int
) -> list:
    overrides = [
        "dataset=digits",
        f"dataset.normal_class={digit}",
        f"dataset.preprocess.image_size={image_size}",
        f"dataset.seed={seed}",
        f"trainer.seed={seed}",
        "trainer.verbose=0",
        f"protocol={protocol}",
    ]
    if protocol == "unsupervised":
        overrides.append(f"protocol.contamination={contamination}")
    if model == BASELINE:
        return overrides
    return [*overrides, f"model={model}", *MODEL_OVERRIDES.get(model, [])]


def run_job(
    model: str,
    digit: int,
    seed: int,
    protocol: str,
    contamination: float,
    image_size: int,
    out: str,
) -> dict:
    """One train run (or the IsolationForest baseline) in this worker process."""
    from hydra import compose, initialize_config_dir

    from anomaly_cli.config_dir import config_dir
    from anomaly_cli.resolvers import register

    os.environ["ADX_OUTPUT_DIR"] = out
    register()
    overrides = job_overrides(model, digit, seed, protocol, contamination, image_size)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="adx"):
        cfg = compose("train", overrides=overrides)
    started = time.perf_counter()
    if model == BASELINE:
        auroc, epochs = isolation_forest_auroc(cfg, seed), 0
    else:
        from anomaly_cli import runs
        from anomaly_cli.tasks.train import train

        run_dir = Path(tempfile.mkdtemp(prefix=f"{model}_{digit}_{seed}_", dir=out))
        with contextlib.redirect_stdout(io.StringIO()):
            metrics = train(cfg, run_dir)
        auroc = float(metrics["auroc"])
        epochs = int(runs.read_json(run_dir / runs.RUN_INFO)["epochs_run"])
        shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "model": model,
        "digit": digit,
        "seed": seed,
        "auroc": auroc,
        "seconds": round(time.perf_counter() - started, 2),
        "epochs": epochs,
    }


def isolation_forest_auroc(cfg, seed: int) -> float:
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    from anomaly_cli.data.loader import load_splits

    splits = load_splits(cfg.dataset, cfg.protocol)

    def flat(split) -> np.ndarray:
        return np.stack(list(split.dataset().as_numpy_iterator())).reshape(len(split), -1)

    forest = IsolationForest(random_state=seed).fit(flat(splits.train))
    # score_samples is high for normal samples; negate so higher = more anomalous.
    return float(roc_auc_score(splits.test.labels, -forest.score_samples(flat(splits.test))))


def init_worker(threads: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def summarise(results: pd.DataFrame, models: list[str]) -> tuple[str, str]:
    """Per-digit mean +- std over seeds, and overall: the mean over digits
    with the std over seeds of each seed's digit-averaged AUROC."""
    order = [m for m in [*models, BASELINE] if m in set(results.model)]

    def cell(values: pd.Series) -> str:
        return f"{values.mean():.3f} ± {values.std(ddof=0):.3f}"

    per_digit = results.groupby(["model", "digit"]).auroc.apply(cell).unstack("digit")
    per_digit = per_digit.reindex(order)
    overall_rows = []
    for model in order:
        runs = results[results.model == model]
        by_seed = runs.groupby("seed").auroc.mean()
        overall_rows.append(
            [
                model,
                f"{by_seed.mean():.3f} ± {by_seed.std(ddof=0):.3f}",
                len(runs),
                f"{runs.seconds.mean():.1f}",
                f"{runs.epochs.mean():.1f}",
            ]
        )
    overall = tabulate(
        overall_rows,
        headers=["model", "AUROC mean ± std (seeds)", "runs", "s / run", "epochs / run"],
        tablefmt="github",
    )
    digits = tabulate(
        per_digit.reset_index().values.tolist(),
        headers=["model", *[str(d) for d in per_digit.columns]],
        tablefmt="github",
    )
    return overall, digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(IMAGE_MODELS))
    parser.add_argument("--digits", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--protocol", default="clean", choices=["clean", "unsupervised"])
    parser.add_argument("--contamination", type=float, default=0.1)
    parser.add_argument(
        "--image-size", type=int, default=8, help="8 = the digits' own resolution (config: 32)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads per worker")
    parser.add_argument(
        "--results", type=Path, default=None, help="CSV to append to (default: in a temp dir)"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))

    results_path = args.results or Path(tempfile.gettempdir()) / (
        f"adx_digits_one_vs_all_{args.protocol}_{args.image_size}px.csv"
    )
    done = pd.read_csv(results_path) if results_path.is_file() else pd.DataFrame(columns=COLUMNS)
    finished = {(r.model, int(r.digit), int(r.seed)) for r in done.itertuples()}
    jobs = [
        (model, digit, seed)
        for model in [*args.models, BASELINE]
        for digit in args.digits
        for seed in args.seeds
        if (model, digit, seed) not in finished
    ]
    print(f"{len(finished)} runs already in {results_path}; {len(jobs)} to go", flush=True)
    out = tempfile.mkdtemp(prefix="adx_digits_bench_")
    started = time.perf_counter()
    with ProcessPoolExecutor(
        args.workers, initializer=init_worker, initargs=(args.threads,)
    ) as pool:
        futures = [
            pool.submit(run_job, *job, args.protocol, args.contamination, args.image_size, out)
            for job in jobs
        ]
        for future in as_completed(futures):
            row = future.result()
            pd.DataFrame([row], columns=COLUMNS).to_csv(
                results_path, mode="a", header=not results_path.is_file(), index=False
            )
            print(
                f"{row['model']:>16} digit {row['digit']} seed {row['seed']}: "
                f"AUROC {row['auroc']:.4f} ({row['seconds']:.1f} s, {row['epochs']} epochs)",
                flush=True,
            )
    shutil.rmtree(out, ignore_errors=True)
    results = pd.read_csv(results_path)
    wanted = results[
        results.model.isin([*args.models, BASELINE])
        & results.digit.isin(args.digits)
        & results.seed.isin(args.seeds)
    ]
    overall, digits = summarise(wanted, args.models)
    print(
        f"\nprotocol={args.protocol}, {args.image_size}x{args.image_size} px; "
        f"{time.perf_counter() - started:.0f} s this session"
    )
    print(f"results: {results_path}\n\n{overall}\n")
    print(f"Per digit (normal class), mean ± std over seeds:\n{digits}")


if __name__ == "__main__":
    main()
