"""Training-speed knobs on this CPU: which are worth exposing, measured, not assumed.

Trains the default conv AE (adx's own model class, 32x32x1, about 0.9M
parameters) the plain Keras way on 2,048 generated images, 3 timed epochs
after one untimed epoch (tracing), in a fresh process per setting, settings
interleaved A B C ... A B C, and prints seconds per epoch (min / median / max)
and each setting's speed against the baseline (batch 64, steps_per_execution
1, TensorFlow's default threads, no XLA):

- `steps_per_execution` 8: several steps per call into the compiled function;
- `jit_compile=True` (XLA);
- batch size 16 and 256 (not a speed knob alone: it changes what is learnt);
- one intra-op thread instead of TensorFlow's default (every core).

Asserts nothing. Run from the repo root (`make bench` runs it after speed.py):

    .venv/bin/python benchmarks/options.py
    .venv/bin/python benchmarks/options.py --repeats 5 --write-readme
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import load, machine, median, num, ratio, spread, table, write_readme  # shared

BEGIN, END = "<!-- options:begin -->", "<!-- options:end -->"
SECTION = "## options.py: training-speed knobs on this CPU"
IMAGES, EPOCHS = 2048, 3
BASELINE = {"batch_size": 64, "steps_per_execution": 1, "jit_compile": False, "threads": 0}
SETTINGS = {
    "baseline (batch 64)": {},
    "steps_per_execution=8": {"steps_per_execution": 8},
    "jit_compile=True (XLA)": {"jit_compile": True},
    "batch 16": {"batch_size": 16},
    "batch 256": {"batch_size": 256},
    "1 intra-op thread": {"threads": 1},
}


def child(setting: dict[str, Any]) -> dict[str, Any]:
    """Seconds per epoch of one setting, in this (fresh) process."""
    import numpy as np
    import tensorflow as tf

    if setting["threads"]:
        tf.config.threading.set_intra_op_parallelism_threads(setting["threads"])
    import keras

    from anomaly_cli.models.conv_ae import ConvAutoencoder

    x = np.random.default_rng(0).random((IMAGES, 32, 32, 1), dtype=np.float32)
    keras.utils.set_random_seed(555)
    model = ConvAutoencoder(
        sample_shape=(32, 32, 1),
        num_hidden_layers=3,
        filters=32,
        units=[256],
        latent_dim=16,
        loss="mse",
        score="mse",
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        "mse",
        steps_per_execution=setting["steps_per_execution"],
        jit_compile=setting["jit_compile"],
    )
    fit = {"batch_size": setting["batch_size"], "shuffle": True, "verbose": 0}
    model.fit(x, x, epochs=1, **fit)  # tracing and thread pools, not timed
    started = time.perf_counter()
    model.fit(x, x, epochs=EPOCHS, **fit)
    return {"seconds_per_epoch": (time.perf_counter() - started) / EPOCHS}


def measure(repeats: int) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(repeats):
        for name, change in SETTINGS.items():  # interleaved, so drift hits every setting
            spec = json.dumps({**BASELINE, **change})
            done = subprocess.run(
                [sys.executable, __file__, "--child", spec],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds[name].append(
                json.loads(done.stdout.strip().splitlines()[-1])["seconds_per_epoch"]
            )
    return seconds


def report(seconds: dict[str, list[float]], repeats: int) -> str:
    base = median(seconds["baseline (batch 64)"])
    rows = [
        [name, spread(values, ".3f"), num(ratio(base, median(values)), ".2f")]
        for name, values in seconds.items()
    ]
    return "\n\n".join(
        [
            f"`.venv/bin/python benchmarks/options.py`, {repeats} repeat(s), on {machine()}; "
            f"load average {load()} (1 / 5 / 15 min).",
            table(["setting", "s / epoch", "speed against the baseline (medians)"], rows),
            f"The default conv AE (32x32x1) trained with plain Keras `fit` on {IMAGES:,} "
            f"generated images, {EPOCHS} timed epochs after an untimed one, a fresh process "
            "per setting, settings interleaved. A speed above 1 is faster than the baseline.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    started = time.perf_counter()
    text = report(measure(args.repeats), args.repeats)
    text += f"\n\nWhole benchmark: {time.perf_counter() - started:.0f} s wall."
    print(text)
    if args.write_readme:
        write_readme(text, BEGIN, END, SECTION)


if __name__ == "__main__":
    main()
