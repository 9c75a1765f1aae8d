"""adx against plain Keras: training and scoring speed, checkpoints, phases, utilisation, scaling.

Six parts, every measurement in a fresh subprocess, alternating A B A B where
two things are compared, --repeats times each:

1. training throughput of `adx train` against a plain-Keras script in seed
   000's notebook style (the same adx-built model, train images, batch size
   and epochs), for the default conv AE on digits and for seed 000's conv AE
   (units [2048], latent 512; 48.6M parameters as adx builds it) on generated
   96x96x3 images;
2. the share of adx's training time spent writing checkpoints (run.json's
   checkpoint_seconds), and what trainer.checkpoint_every=1 costs;
3. scoring throughput of `adx evaluate` and `adx predict` against
   keras.saving.load_model + model.predict + a numpy per-sample MSE;
4. the phases of the embedded default `adx train` (status.json's phase_seconds);
5. FLOPs per training step against this machine's float32 matmul FLOP/s;
6. time per epoch and peak RSS of `adx train dataset=folder` over 1k, 4k and
   16k images.

Parts 2, 3 and 5 use part 1's runs, so part 1 runs whenever one of them is
chosen. Prints a markdown table per part (raw min / median / max and
ratios) and the machine; asserts nothing. Run from the repo root:

    .venv/bin/python benchmarks/speed.py --quick            # tiny sizes, for development
    .venv/bin/python benchmarks/speed.py --write-readme     # make bench: about 20 minutes
    .venv/bin/python benchmarks/speed.py --parts 4,6 --repeats 5
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_memory import make_dataset  # the folder generator, shared

ADX = str(Path(sys.executable).with_name("adx"))
README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- speed:begin -->", "<!-- speed:end -->"
SECTION = "## speed.py: adx against plain Keras, checkpoints, phases, utilisation, scaling"
BATCH = 64
# The phase that does not come from status.json: Python, imports, Hydra's
# composition before the first stage, and the exit.
OUTSIDE_PHASES = "start-up, imports and exit"
MATMUL_SIZE = 2048


# --- what is measured ---------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One model on one dataset, as `adx train` overrides."""

    key: str
    label: str
    overrides: tuple[str, ...]
    epochs: int
    about: str


@dataclass(frozen=True)
class Plan:
    workloads: tuple[Workload, ...]
    repeats: int
    scaling_sizes: tuple[int, ...]
    scaling_epochs: int
    # Part 4's overrides beyond the output folder and verbosity (--quick only).
    default_extra: tuple[str, ...]


def make_plan(quick: bool, repeats: int | None) -> Plan:
    # Seed 000's model needs ~800 train images: 1000 normals at 80 % train,
    # with the 200 anomalies shared between val and test.
    size, n_normal, n_anomaly, epochs = (32, 100, 20, 1) if quick else (96, 1000, 200, 3)
    seed000 = Workload(
        "seed000",
        "seed 000's conv AE",
        (
            "model=conv_ae",
            "model.units=[2048]",
            "model.latent_dim=512",
            "model.filters=32",
            "model.num_hidden_layers=3",
            "dataset=synthetic",
            f"dataset.preprocess.image_size={size}",
            "dataset.channels=3",
            f"dataset.n_normal={n_normal}",
            f"dataset.n_anomaly={n_anomaly}",
            "dataset.split.train=0.8",
            "dataset.split.val=0.1",
            "dataset.split.test=0.1",
        ),
        epochs,
        f"model=conv_ae units=[2048] latent_dim=512 filters=32 num_hidden_layers=3 on "
        f"dataset=synthetic, {size}x{size}x3, {n_normal} normal + {n_anomaly} anomalous "
        f"images, split 0.8 / 0.1 / 0.1, epochs: {epochs}",
    )
    digits = Workload(
        "digits",
        "default conv AE",
        ("model=conv_ae", "dataset=digits"),
        2 if quick else 30,
        "model=conv_ae on dataset=digits with their defaults (digit 0 normal, 8x8 upscaled "
        f"to 32x32x1, split 0.6 / 0.2 / 0.2), epochs: {2 if quick else 30}",
    )
    return Plan(
        workloads=(digits, seed000),
        repeats=repeats or (1 if quick else 3),
        scaling_sizes=(100, 200, 400) if quick else (1000, 4000, 16000),
        scaling_epochs=2,
        default_extra=("trainer.epochs=2",) if quick else (),
    )


def train_overrides(epochs: int) -> list[str]:
    """A fixed number of epochs (no early stopping), quiet, no plots."""
    return [
        f"trainer.epochs={epochs}",
        f"trainer.patience={epochs}",
        f"trainer.batch_size={BATCH}",
        "trainer.verbose=0",
        "report.plots=[]",
    ]


# --- subprocesses ---------------------------------------------------------------------


class ChildFailed(RuntimeError):
    pass


class Child(NamedTuple):
    wall_seconds: float
    peak_rss_mib: float
    stdout: str


class AdxRun(NamedTuple):
    run_dir: Path
    wall_seconds: float
    run_json: dict[str, Any]
    status_json: dict[str, Any]
    peak_rss_mib: float


@dataclass
class Training:
    """Part 1's runs of one workload, kept for parts 2, 3 and 5."""

    adx: list[AdxRun] = field(default_factory=list)
    plain: list[dict[str, Any]] = field(default_factory=list)


class Bench:
    def __init__(self, work: Path, plan: Plan):
        self.work, self.plan = work, plan
        self.count = 0
        self.trainings: dict[str, Training] = {}
        (work / "logs").mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # adx's `latest` link and anything else relative to the output folder.
            "ADX_OUTPUT_DIR": str(work / "outputs"),
        }

    def child(self, command: list[str], label: str) -> Child:
        """Runs `command` alone; wall time and its own peak RSS (not all children's)."""
        self.count += 1
        log = self.work / "logs" / f"{self.count:03d}_{label}"
        out, err = log.with_suffix(".out"), log.with_suffix(".err")
        with out.open("w") as stdout, err.open("w") as stderr:
            started = time.perf_counter()
            process = subprocess.Popen(
                command, stdout=stdout, stderr=stderr, env=self.env, cwd=self.work
            )
            # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the
            # largest of every child so far.
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            tail = "\n".join(err.read_text().strip().splitlines()[-8:])
            raise ChildFailed(f"{label} exited with {process.returncode}:\n{tail}")
        return Child(wall, usage.ru_maxrss / 1024, out.read_text())

    def adx(self, verb: str, *overrides: str) -> AdxRun:
        """`adx VERB OVERRIDES` in a fresh process, in a run folder of its own."""
        # Numbered like the log files that `child` is about to write.
        run_dir = self.work / "runs" / f"{self.count + 1:03d}_{verb}"
        command = [ADX, verb, *overrides, f"hydra.run.dir={run_dir}"]
        done = self.child(command, f"adx_{verb}")
        return AdxRun(
            run_dir,
            done.wall_seconds,
            read_json(run_dir / "run.json"),
            read_json(run_dir / "status.json"),
            done.peak_rss_mib,
        )

    def script(self, mode: str, spec: dict[str, Any]) -> tuple[dict[str, Any], Child]:
        """One of this file's own child modes; its last stdout line is JSON."""
        command = [sys.executable, __file__, "--child", mode, "--spec", json.dumps(spec)]
        done = self.child(command, mode)
        return json.loads(done.stdout.strip().splitlines()[-1]), done

    def training(self, w: Workload) -> Training:
        """Part 1's A B A B runs of `w`, made once."""
        if w.key in self.trainings:
            return self.trainings[w.key]
        runs = Training()
        spec = {"overrides": list(w.overrides), "epochs": w.epochs, "batch_size": BATCH}
        for _ in range(self.plan.repeats):
            if runs.adx:  # part 3 scores the last run's checkpoint; the others only cost disk
                shutil.rmtree(runs.adx[-1].run_dir / "checkpoints", ignore_errors=True)
            runs.adx.append(self.adx("train", *w.overrides, *train_overrides(w.epochs)))
            result, done = self.script("plain_train", spec)
            runs.plain.append({**result, "wall_seconds": done.wall_seconds})
        self.trainings[w.key] = runs
        return runs


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# --- numbers and tables ---------------------------------------------------------------


def finite(values: list[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def median(values: list[Any]) -> float | None:
    kept = finite(values)
    return statistics.median(kept) if kept else None


def num(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def spread(values: list[Any], spec: str = ".2f") -> str:
    """min / median / max, the house format for repeated measurements."""
    kept = finite(values)
    if not kept:
        return "n/a"
    return " / ".join(format(v, spec) for v in (min(kept), statistics.median(kept), max(kept)))


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def table(header: list[str], rows: list[list[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def train_images(run: AdxRun) -> int | None:
    counts = run.run_json.get("counts", {}).get("train")
    return sum(counts.values()) if isinstance(counts, dict) else None


def scored_images(run_json: dict[str, Any]) -> int | None:
    counts = run_json.get("counts", {})
    if not all(isinstance(counts.get(s), dict) for s in ("val", "test")):
        return None
    return sum(counts["val"].values()) + sum(counts["test"].values())


def adx_throughput(run: AdxRun) -> float | None:
    images, seconds = train_images(run), run.run_json.get("train_seconds")
    epochs = run.run_json.get("epochs_run")
    return images * epochs / seconds if images and epochs and seconds else None


def phase(status: dict[str, Any], name: str) -> float | None:
    phases = status.get("phase_seconds")
    return phases.get(name) if isinstance(phases, dict) else None


# --- the parts ------------------------------------------------------------------------


def part_training(bench: Bench) -> str:
    rows, notes = [], []
    for w in bench.plan.workloads:
        runs = bench.training(w)
        adx_speed = [adx_throughput(r) for r in runs.adx]
        plain_speed = [p["train_images"] * p["epochs"] / p["fit_seconds"] for p in runs.plain]
        images = runs.plain[0]["train_images"]
        rows.append(
            [
                w.label,
                "adx train",
                f"{images} x {w.epochs}",
                spread([r.run_json.get("train_seconds") for r in runs.adx]),
                spread(adx_speed, ".1f"),
                spread([r.wall_seconds for r in runs.adx], ".1f"),
                num(ratio(median(adx_speed), median(plain_speed)), ".3f"),
            ]
        )
        rows.append(
            [
                w.label,
                "plain Keras",
                f"{images} x {w.epochs}",
                spread([p["fit_seconds"] for p in runs.plain]),
                spread(plain_speed, ".1f"),
                spread([p["wall_seconds"] for p in runs.plain], ".1f"),
                "",
            ]
        )
        notes.append(f"{w.label}: {w.about}, {runs.plain[0]['params']:,} parameters.")
        if any(train_images(r) != images for r in runs.adx):
            notes.append(f"{w.label}: adx's train split differs from the plain script's!")
    header = [
        "model",
        "side",
        "train images x epochs",
        "fit s",
        "images/s",
        "process wall s",
        "adx / plain images/s (medians, target >= 1)",
    ]
    return "\n\n".join(
        [
            "### 1. Training throughput: `adx train` against plain Keras",
            table(header, rows, right_from=2),
            "\n".join(f"- {n}" for n in notes),
            "Both sides train the same model, built by adx's own builder "
            "(`anomaly_cli.models.loading.build_model`), on the same train split "
            "(`anomaly_cli.data.loader.load_splits`, read into one numpy array before "
            "timing), batch 64, no early stopping. The plain script then trains it the "
            'plain Keras way: `compile(Adam(lr), "mse")`, `fit(x, x, shuffle=True, '
            "validation_data=(v, v))` with v the validation split's normal images (the "
            "validation pass adx makes for early stopping; seed 000's notebook had none), "
            "no callbacks, TensorFlow's non-deterministic defaults. adx's fit "
            "seconds are run.json's `train_seconds`: its `model.fit` from a tf.data "
            "pipeline, with a validation pass over val's normal images each epoch, "
            "checkpoint writing, the TensorBoard logger (adx's default) and "
            "`trainer.deterministic=true` (its default). Process wall covers everything "
            "each process does (adx also scores val and test and writes its artifacts).",
        ]
    )


def part_checkpoints(bench: Bench) -> str:
    rows = []
    for w in bench.plan.workloads:
        runs = bench.training(w)
        rows.append(checkpoint_row(w, runs.plain[0]["params"], runs.adx, "auto (default)"))
    notes = []
    seed000 = next(w for w in bench.plan.workloads if w.key == "seed000")
    params = bench.training(seed000).plain[0]["params"]
    # The experiment's own length (experiment=caltech101_airplanes trains 20 epochs): a
    # 3-epoch run's share is mostly the save that ends training.
    full = 2 if bench.plan.repeats == 1 and seed000.epochs == 1 else 20
    long_run = bench.adx("train", *seed000.overrides, *train_overrides(full))
    shutil.rmtree(long_run.run_dir / "checkpoints", ignore_errors=True)
    rows.append(checkpoint_row(seed000, params, [long_run], "auto (default)"))
    every = [*seed000.overrides, *train_overrides(seed000.epochs), "trainer.checkpoint_every=1"]
    try:
        run = bench.adx("train", *every)
        shutil.rmtree(run.run_dir / "checkpoints", ignore_errors=True)
        rows.append(checkpoint_row(seed000, params, [run], "1 (every epoch)"))
    except ChildFailed as failure:
        notes.append(
            "`trainer.checkpoint_every=1` could not be run (not an option of this adx "
            f"yet?): {str(failure).splitlines()[-1]}"
        )
    header = [
        "model",
        "checkpoint_every",
        "parameters",
        "epochs",
        "train s",
        "checkpoint s",
        "checkpoint share of train s",
    ]
    text = [
        "### 2. Checkpoint writing inside `train_seconds`",
        table(header, rows, right_from=2),
        "From part 1's adx runs, one run of seed 000's model for the 20 epochs its "
        "experiment trains, and one of it with `trainer.checkpoint_every=1`: run.json's "
        "`checkpoint_seconds`, the seconds spent writing checkpoints inside "
        "`train_seconds`; share = checkpoint_seconds / train_seconds, min / median / "
        "max over runs. Parameters: the plain script's "
        "`model.count_params()`.",
    ]
    if any(r.run_json.get("checkpoint_seconds") is None for r in bench.training(seed000).adx):
        notes.append("run.json has no `checkpoint_seconds` (yet): shown as n/a.")
    return "\n\n".join([*text, *(f"- {n}" for n in notes)])


def checkpoint_row(w: Workload, params: int, runs: list[AdxRun], every: str) -> list[str]:
    train = [r.run_json.get("train_seconds") for r in runs]
    saving = [r.run_json.get("checkpoint_seconds") for r in runs]
    shares = [s / t if s is not None and t else None for s, t in zip(saving, train, strict=True)]
    epochs = {r.run_json.get("epochs_run") for r in runs}
    return [
        w.label,
        every,
        f"{params:,}",
        "/".join(str(e) for e in sorted(epochs, key=str)),
        spread(train),
        spread(saving),
        spread(shares, ".3f"),
    ]


def part_scoring(bench: Bench) -> str:
    rows = []
    for w in bench.plan.workloads:
        run_dir = bench.training(w).adx[-1].run_dir
        folder = bench.work / "predict_input" / w.key
        exported, _ = bench.script(
            "export_png", {"overrides": list(w.overrides), "folder": str(folder)}
        )
        spec = {
            "overrides": list(w.overrides),
            "checkpoint": str(run_dir / "checkpoints/best.keras"),
        }
        timings: dict[str, list[tuple[float | None, int | None, float]]] = {
            "adx evaluate": [],
            "plain Keras": [],
            "adx predict (PNG files)": [],
            "plain Keras (PNG files)": [],
        }
        for _ in range(bench.plan.repeats):
            run = bench.adx("evaluate", f"run={run_dir}", "report.plots=[]")
            timings["adx evaluate"].append(
                (phase(run.status_json, "scoring"), scored_images(run.run_json), run.wall_seconds)
            )
            result, done = bench.script("plain_score", spec)
            timings["plain Keras"].append(
                (result["score_seconds"], result["images"], done.wall_seconds)
            )
            run = bench.adx("predict", f"run={run_dir}", f"input={folder}")
            timings["adx predict (PNG files)"].append(
                (phase(run.status_json, "scoring"), exported["images"], run.wall_seconds)
            )
            result, done = bench.script("plain_score", {**spec, "folder": str(folder)})
            timings["plain Keras (PNG files)"].append(
                (result["score_seconds"], result["images"], done.wall_seconds)
            )
        speeds = {
            how: median([images / s for s, images, _ in rounds if s and images])
            for how, rounds in timings.items()
        }
        for how, rounds in timings.items():
            plain = speeds["plain Keras (PNG files)" if "PNG" in how else "plain Keras"]
            speed = [images / s if s and images else None for s, images, _ in rounds]
            rows.append(
                [
                    w.label,
                    how,
                    str(rounds[0][1] if rounds[0][1] is not None else "n/a"),
                    spread([s for s, _, _ in rounds]),
                    num(median(speed), ".0f"),
                    spread([wall for _, _, wall in rounds], ".1f"),
                    "" if how.startswith("plain") else num(ratio(median(speed), plain), ".3f"),
                ]
            )
    header = [
        "model",
        "how",
        "images",
        "scoring s",
        "images/s (median)",
        "process wall s",
        "adx / plain images/s (target >= 1)",
    ]
    return "\n\n".join(
        [
            "### 3. Scoring throughput: `adx evaluate` and `adx predict` against plain Keras",
            table(header, rows, right_from=2),
            "Each scores the val and test images of part 1's last adx run with its "
            "`checkpoints/best.keras`. adx's scoring seconds are status.json's "
            '`phase_seconds["scoring"]`: evaluate scores the rebuilt val and test arrays '
            "(`report.plots=[]`); predict reads the same images written out as PNG files "
            "(decoding included; after scoring it also draws up to 50 heatmaps, its "
            "default, which counts in its wall time only). The plain script loads the "
            "same arrays before timing, then `keras.saving.load_model` (timed apart), "
            "`model.predict(x, batch_size=64)` and a numpy per-sample MSE; against "
            "predict, it decodes the same PNG files with Pillow into one array inside the "
            "timed part, as a notebook would.",
        ]
    )


def part_phases(bench: Bench) -> str:
    extra = bench.plan.default_extra
    runs = [bench.adx("train", "trainer.verbose=0", *extra) for _ in range(bench.plan.repeats)]
    walls = [r.wall_seconds for r in runs]
    wall = median(walls)
    names: list[str] = []
    for r in runs:
        names += [n for n in (r.status_json.get("phase_seconds") or {}) if n not in names]
    rows = []
    for name in names:
        seconds = median([phase(r.status_json, name) for r in runs])
        rows.append([name, num(seconds), num(ratio(seconds, wall), ".1%")])
    outside = [
        r.wall_seconds - sum(finite(list((r.status_json.get("phase_seconds") or {}).values())))
        for r in runs
    ]
    if names:
        rows.append(
            [OUTSIDE_PHASES, num(median(outside)), num(ratio(median(outside), wall), ".1%")]
        )
    # "loading data" is where adx first imports TensorFlow: how much of it that is.
    imports = [bench.script("import_tf", {})[0]["seconds"] for _ in range(bench.plan.repeats)]
    rows.append(
        [
            "(importing TensorFlow and Keras alone, a fresh process)",
            spread(imports),
            num(ratio(median(imports), wall), ".1%"),
        ]
    )
    rows.append(["**wall (measured around the process)**", spread(walls), "100.0%"])
    epochs = [r.run_json.get("epochs_run") for r in runs]
    notes = [
        "`adx train trainer.verbose=0` (plus its run folder"
        + (f" and {' '.join(extra)}, --quick" if extra else "")
        + f"): the embedded default (conv AE on digits, logger and plots as shipped), "
        f"epochs run: {', '.join(str(e) for e in epochs)}. Phases: status.json's "
        f'`phase_seconds`, median over runs; "{OUTSIDE_PHASES}" = wall - their sum. '
        "adx imports TensorFlow in the first phase that needs it (`loading data`, which "
        "builds tf.data pipelines), so that phase holds the import; the row in brackets "
        "times the import alone in a fresh process and is not part of the sum."
    ]
    if not names:
        notes.append("status.json has no `phase_seconds` (yet): only the wall time is shown.")
    return "\n\n".join(
        [
            "### 4. Where `adx train` spends its time",
            table(["phase", "median s", "share of wall"], rows),
            *notes,
        ]
    )


def part_utilisation(bench: Bench) -> str:
    entries = []
    for w in bench.plan.workloads:
        plain = bench.training(w).plain[0]
        entries.append(
            {"key": w.key, "overrides": list(w.overrides), "shape": plain["input_shape"]}
        )
    counted, _ = bench.script("flops", {"models": entries, "matmul_size": MATMUL_SIZE})
    peak = counted["matmul_flops_per_s"]
    rows = []
    for w in bench.plan.workloads:
        runs, flops = bench.training(w), counted["models"][w.key]
        forward = flops["profiler"] if flops["profiler"] else flops["ops"]
        train_per_image = 3 * forward / BATCH
        work = train_per_image * runs.plain[0]["train_images"] * w.epochs
        sides = {
            "adx train": median([r.run_json.get("train_seconds") for r in runs.adx]),
            "plain Keras": median([p["fit_seconds"] for p in runs.plain]),
        }
        for side, seconds in sides.items():
            achieved = work / seconds if seconds else None
            rows.append(
                [
                    w.label,
                    side,
                    num(flops["profiler"] / 1e9 if flops["profiler"] else None, ".3f"),
                    num(flops["ops"] / 1e9, ".3f"),
                    num(3 * forward / 1e9, ".2f"),
                    num(achieved / 1e9 if achieved else None, ".2f"),
                    num(ratio(achieved, peak), ".1%"),
                ]
            )
    header = [
        "model",
        "side",
        "forward GFLOP, batch 64 (profiler)",
        "forward GFLOP, batch 64 (conv + matmul ops)",
        "train GFLOP / step (3 x forward)",
        "achieved GFLOP/s (median fit s)",
        "achieved / matmul peak",
    ]
    return "\n\n".join(
        [
            "### 5. Utilisation: FLOPs per step against this machine's matmul peak",
            table(header, rows, right_from=2),
            f"Float32 matmul peak of this machine: **{peak / 1e9:.1f} GFLOP/s** "
            f"(tf.matmul of two {MATMUL_SIZE}x{MATMUL_SIZE} float32 matrices, 2n^3 FLOPs, "
            f"best of {counted['matmul_repeats']}, TensorFlow's default threads).",
            "Forward FLOPs come from the model's traced graph (`model(x, training=False)` "
            "in a tf.function at batch 64): the first column is TensorFlow's profiler "
            "(`tf.compat.v1.profiler` with `float_operation()`), the second counts only "
            "Conv2D, Conv2DBackpropInput (Conv2DTranspose) and MatMul ops from their "
            "shapes, as a cross-check; the profiler's figure is used where it has one. "
            "Assumed: a training step costs 3 x the forward pass (the backward pass about "
            "2 x). Achieved = train FLOPs per image x train images x epochs / part 1's "
            "median fit seconds; both sides' fit seconds also hold the validation passes, "
            "and adx's its checkpoint writing, which this count does not credit.",
        ]
    )


def part_scaling(bench: Bench) -> str:
    epochs = bench.plan.scaling_epochs
    root = bench.work / "folders"
    folders, generated = {}, {}
    for n in bench.plan.scaling_sizes:
        started = time.perf_counter()
        folders[n] = make_dataset(root, n)
        generated[n] = time.perf_counter() - started

    def train_on(folder: Path, *extra: str) -> AdxRun:
        return bench.adx(
            "train",
            "dataset=folder",
            f"dataset.normal_dir={folder / 'normal'}",
            f"dataset.abnormal_dirs={folder / 'abnormal'}",
            "dataset.preprocess.image_size=32",
            "dataset.preprocess.channels=grayscale",
            *train_overrides(epochs),
            *extra,
        )

    # The middle size once more with decoded images kept in memory after epoch 1.
    middle = sorted(folders)[len(folders) // 2]
    results: dict[int, list[AdxRun]] = {n: [] for n in folders}
    cached: list[AdxRun] = []
    for _ in range(bench.plan.repeats):
        for n, folder in folders.items():  # sizes interleaved, as A B A B
            results[n].append(train_on(folder))
        cached.append(train_on(folders[middle], "dataset.cache=true"))
    rows, per_1k, peaks = [], {}, {}
    previous: tuple[float | None, int | None] = (None, None)
    for n, runs in results.items():
        images = train_images(runs[0])
        per_epoch = [
            r.run_json["train_seconds"] / r.run_json["epochs_run"]
            if r.run_json.get("epochs_run")
            else None
            for r in runs
        ]
        epoch_s = median(per_epoch)
        per_1k[n] = ratio(epoch_s, images / 1000 if images else None)
        peaks[n] = median([r.peak_rss_mib for r in runs])
        # What each added 1k images costs: the first epoch's tracing and the other
        # fixed costs per epoch cancel out, which per-1k figures of small sizes hide.
        added = (
            ratio(epoch_s - previous[0], (images - previous[1]) / 1000)
            if None not in (epoch_s, images, *previous) and images != previous[1]
            else None
        )
        previous = (epoch_s, images)
        rows.append(
            [
                f"{n:,}",
                f"{images:,}" if images else "n/a",
                num(generated[n], ".1f"),
                spread(per_epoch),
                num(per_1k[n], ".3f"),
                num(added, ".3f") if added is not None else "",
                spread([r.peak_rss_mib for r in runs], ".0f"),
                spread([r.wall_seconds for r in runs], ".1f"),
            ]
        )
    cached_epoch = [r.run_json["train_seconds"] / r.run_json["epochs_run"] for r in cached]
    rows.append(
        [
            f"{middle:,}, `dataset.cache=true`",
            f"{train_images(cached[0]):,}",
            "",
            spread(cached_epoch),
            "",
            "",
            spread([r.peak_rss_mib for r in cached], ".0f"),
            spread([r.wall_seconds for r in cached], ".1f"),
        ]
    )
    small, large = min(folders), max(folders)
    header = [
        "files",
        "train images",
        "generate s",
        "s / epoch",
        "s / epoch per 1k train images (median)",
        "added s / epoch per added 1k train images (against the row above)",
        "peak RSS MiB",
        "process wall s",
    ]
    return "\n\n".join(
        [
            "### 6. Scaling: `adx train dataset=folder` over more images",
            table(header, rows),
            f"Per-epoch time per 1k train images, {large:,} / {small:,} files: "
            f"**{num(ratio(per_1k[large], per_1k[small]), '.3f')}** (flat if time is "
            f"linear in the images); peak RSS {large:,} / {small:,}: "
            f"**{num(ratio(peaks[large], peaks[small]), '.3f')}** (near 1 if the data "
            "streams). The last column is the marginal cost, without the fixed part of an "
            "epoch (its share of the first epoch's tracing, the validation set-up, the "
            "checkpoint): flat if each image costs the same at every size.",
            f"64x64 PNGs from data_memory.py's generator (90 % blobs, 10 % with a patch), "
            f"read with `dataset.preprocess.image_size=32 dataset.preprocess.channels="
            f"grayscale` (decoded and resized every epoch: `dataset.cache` is off by "
            f"default), the default conv AE, {epochs} epochs, `report.plots=[]`. s / epoch "
            "= run.json's train_seconds / epochs_run (validation pass included); peak RSS "
            "of each adx process alone (`os.wait4`). The last row keeps the decoded "
            f"images in memory after the first epoch (`dataset.cache=true`), {epochs} "
            "epochs as the others, so only the epochs after the first read from memory.",
        ]
    )


PARTS = {
    1: part_training,
    2: part_checkpoints,
    3: part_scoring,
    4: part_phases,
    5: part_utilisation,
    6: part_scaling,
}


# --- child modes (each in a fresh process) ----------------------------------------------


def compose_train(overrides: list[str]) -> Any:
    """The config `adx train OVERRIDES` runs with, composed by Hydra in-process."""
    from hydra import compose, initialize_config_dir

    from anomaly_cli.config_dir import config_dir
    from anomaly_cli.resolvers import register

    register()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="adx"):
        return compose("train", overrides=overrides)


def load_arrays(overrides: list[str], names: tuple[str, ...]) -> tuple[Any, np.ndarray]:
    """The config and the named splits as one numpy array, as adx's loader gives them
    ("val_normal": the validation split's normal samples, what adx validates on)."""
    from anomaly_cli.data.loader import load_splits

    cfg = compose_train(overrides)
    splits = load_splits(cfg.dataset, cfg.protocol)

    def split(name: str) -> Any:
        return splits.val.normal_only() if name == "val_normal" else getattr(splits, name)

    parts = [
        np.concatenate(list(split(n).dataset().batch(1024).as_numpy_iterator())) for n in names
    ]
    return cfg, np.concatenate(parts)


def child_plain_train(spec: dict[str, Any]) -> dict[str, Any]:
    import keras

    from anomaly_cli.models.loading import build_model

    cfg, x = load_arrays(spec["overrides"], ("train",))
    # The same work as adx: a validation pass over the normal validation images per epoch.
    _, v = load_arrays(spec["overrides"], ("val_normal",))
    keras.utils.set_random_seed(int(cfg.trainer.seed))
    model = build_model(cfg.model, tuple(x.shape[1:]))
    model.compile(keras.optimizers.Adam(float(cfg.optimizer.lr)), "mse")
    started = time.perf_counter()
    model.fit(
        x,
        x,
        batch_size=spec["batch_size"],
        epochs=spec["epochs"],
        shuffle=True,
        validation_data=(v, v),
        verbose=0,
    )
    return {
        "fit_seconds": time.perf_counter() - started,
        "train_images": len(x),
        "epochs": spec["epochs"],
        "params": model.count_params(),
        "input_shape": list(x.shape[1:]),
    }


def child_plain_score(spec: dict[str, Any]) -> dict[str, Any]:
    import keras

    import anomaly_cli.models.conv_ae  # noqa: F401  registers the class load_model needs

    folder = spec.get("folder")
    if folder is None:
        _, x = load_arrays(spec["overrides"], ("val", "test"))
    started = time.perf_counter()
    model = keras.saving.load_model(spec["checkpoint"], compile=False)
    loaded = time.perf_counter()
    if folder is not None:  # the notebook way: every file decoded into one array (timed)
        from PIL import Image

        files = sorted(Path(folder).glob("*.png"))
        x = np.stack([np.asarray(Image.open(f), dtype=np.float32) / 255.0 for f in files])
        x = x[..., None] if x.ndim == 3 else x
    reconstruction = model.predict(x, batch_size=BATCH, verbose=0)
    scores = np.mean((x - reconstruction) ** 2, axis=tuple(range(1, x.ndim)))
    done = time.perf_counter()
    return {
        "load_seconds": loaded - started,
        "score_seconds": done - loaded,
        "images": len(scores),
    }


def child_import_tf(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    return {"seconds": time.perf_counter() - started}


def child_export_png(spec: dict[str, Any]) -> dict[str, Any]:
    """val + test as 8-bit PNGs: what `adx predict input=<folder>` reads."""
    from PIL import Image

    _, x = load_arrays(spec["overrides"], ("val", "test"))
    folder = Path(spec["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            folder / f"{i:05d}.png"
        )
    return {"images": len(pixels)}


def child_flops(spec: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    counted = {}
    for entry in spec["models"]:
        from anomaly_cli.models.loading import build_model

        cfg = compose_train(entry["overrides"])
        model = build_model(cfg.model, tuple(entry["shape"]))
        forward = tf.function(lambda x, model=model: model(x, training=False))
        graph = forward.get_concrete_function(
            tf.TensorSpec((BATCH, *entry["shape"]), tf.float32)
        ).graph
        counted[entry["key"]] = {"profiler": profiler_flops(graph), "ops": op_flops(graph)}
    size, repeats = spec["matmul_size"], 10
    a = tf.random.normal((size, size), dtype=tf.float32)
    b = tf.random.normal((size, size), dtype=tf.float32)
    tf.matmul(a, b).numpy()  # warm-up: thread pools and kernels
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        tf.matmul(a, b).numpy()  # .numpy() waits for the result
        best = min(best, time.perf_counter() - started)
    return {
        "models": counted,
        "matmul_flops_per_s": 2 * size**3 / best,
        "matmul_repeats": repeats,
    }


def profiler_flops(graph: Any) -> float | None:
    import tensorflow as tf

    profiler = tf.compat.v1.profiler
    options = (
        profiler.ProfileOptionBuilder(profiler.ProfileOptionBuilder.float_operation())
        .with_empty_output()
        .build()
    )
    try:
        return float(profiler.profile(graph=graph, options=options).total_float_ops) or None
    except Exception:  # the profiler is TF1-era: any failure only loses this column
        return None


def op_flops(graph: Any) -> float:
    """Multiply-adds (x2) of the conv and matmul ops, from their static shapes."""
    total = 0.0
    for op in graph.get_operations():
        if op.type == "Conv2D":  # output (n, h, w, c_out) x filter (kh, kw, c_in, c_out)
            kh, kw, c_in, _ = op.inputs[1].shape
            total += 2 * math.prod(op.outputs[0].shape) * kh * kw * c_in
        elif op.type == "Conv2DBackpropInput":  # each input pixel spreads over the kernel
            kh, kw, c_out, _ = op.inputs[1].shape  # filter (kh, kw, c_out, c_in)
            total += 2 * math.prod(op.inputs[2].shape) * kh * kw * c_out
        elif op.type in ("MatMul", "BatchMatMulV2"):
            a = op.inputs[0].shape
            inner = a[-2] if op.get_attr("transpose_a") else a[-1]
            total += 2 * math.prod(op.outputs[0].shape) * inner
    return total


CHILDREN = {
    "plain_train": child_plain_train,
    "plain_score": child_plain_score,
    "import_tf": child_import_tf,
    "export_png": child_export_png,
    "flops": child_flops,
}


# --- the whole benchmark ----------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"TensorFlow {metadata.version('tensorflow')}, Keras {metadata.version('keras')}, "
        f"{datetime.datetime.now().isoformat(timespec='minutes')}"
    )


def load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def write_readme(markdown: str, begin: str = BEGIN, end: str = END, section: str = SECTION) -> None:
    """Put `markdown` between the markers in benchmarks/README.md (a new section if none)."""
    text = README.read_text()
    block = f"{begin}\n{markdown}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{section}\n\n{block}\n"
    README.write_text(text)


def parse_parts(text: str) -> list[int]:
    parts = sorted({int(p) for p in text.split(",") if p.strip()})
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"no part {unknown}; parts are 1 to {len(PARTS)}")
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for development")
    parser.add_argument("--parts", type=parse_parts, default=list(PARTS), help="e.g. 1,4,6")
    parser.add_argument("--repeats", type=int, help="runs per measurement (3; --quick: 1)")
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help=f"put the tables between {BEGIN} and {END} in benchmarks/README.md",
    )
    parser.add_argument("--keep-dir", type=Path, help="write the runs and data here, keep them")
    parser.add_argument("--child", choices=CHILDREN, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](json.loads(args.spec))))
        return

    started = time.perf_counter()
    if {2, 3, 5} & set(args.parts):  # they read part 1's runs: show its table too
        args.parts = sorted({1, *args.parts})
    plan = make_plan(args.quick, args.repeats)
    work = args.keep_dir or Path(tempfile.mkdtemp(prefix="adx_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(work, plan)
    header = (
        f"`.venv/bin/python benchmarks/speed.py{' --quick' if args.quick else ''}"
        f"{'' if args.parts == list(PARTS) else ' --parts ' + ','.join(map(str, args.parts))}`"
        f", {plan.repeats} repeat(s), on {machine()}; load average at the start "
        f"{load()} (1 / 5 / 15 min)."
    )
    print(header, flush=True)
    sections = [header]
    try:
        for number in args.parts:
            try:
                section = PARTS[number](bench)
            except ChildFailed as failure:  # one broken part costs its table, not the rest
                section = f"### Part {number} failed\n\n```\n{failure}\n```"
            print(f"\n{section}\n", flush=True)
            sections.append(section)
    finally:
        if args.keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    closing = f"Whole benchmark: {total:.0f} s wall; load average at the end {load()}."
    print(closing)
    sections.append(closing)
    if args.write_readme:
        if args.quick:
            print("--quick never writes the README")
        else:
            write_readme("\n\n".join(sections))
            print(f"wrote {README}")


if __name__ == "__main__":
    main()
