"""Peak memory and speed of `dataset=folder` over 2,000 and 20,000 64x64 PNGs.

For each size, writes a folder dataset (90 % normal blobs, 10 % blobs with a
bright patch), then in a fresh subprocess loads it with the folder source
(listing plus the one-off decode check of every file) and makes ONE pass over
the train split's `dataset().batch(64)`. Prints raw numbers per size and the
ratio of the two peak RSS figures; streaming should keep that ratio near 1
(target: within 1.3x). Asserts nothing. Run from the repo root:

    .venv/bin/python benchmarks/data_memory.py
    .venv/bin/python benchmarks/data_memory.py --sizes 2000 20000 --keep-dir /tmp/adx_bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

IMAGE_SIZE = 64
ABNORMAL_SHARE = 0.1
TARGET_RATIO = 1.3


def write_images(folder: Path, start: int, count: int, patch: bool) -> None:
    from PIL import Image

    rng = np.random.default_rng(start)
    grid = np.arange(IMAGE_SIZE, dtype=np.float32)
    for i in range(start, start + count):
        cy, cx = rng.uniform(16, 48, 2)
        sigma = rng.uniform(6, 12)
        image = rng.uniform(0.5, 0.9) * np.exp(
            -((grid[:, None] - cy) ** 2 + (grid[None, :] - cx) ** 2) / (2 * sigma**2)
        )
        if patch:
            top, left = rng.integers(0, IMAGE_SIZE - 12, 2)
            image[top : top + 12, left : left + 12] = 1.0
        pixels = (image * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.png")


def make_dataset(root: Path, n: int) -> Path:
    """root/n<N>/{normal,abnormal}/*.png; reused when a finished one is already there."""
    target = root / f"n{n}"
    done = target / ".complete"
    if done.is_file():
        return target
    n_abnormal = round(n * ABNORMAL_SHARE)
    jobs = []
    for name, count, patch in (("normal", n - n_abnormal, False), ("abnormal", n_abnormal, True)):
        folder = target / name
        folder.mkdir(parents=True, exist_ok=True)
        chunk = 1000
        jobs += [(folder, s, min(chunk, count - s), patch) for s in range(0, count, chunk)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for future in [pool.submit(write_images, *job) for job in jobs]:
            future.result()
    done.write_text("")
    return target


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(folder: Path, batch_size: int) -> None:
    """One load and one pass in this (fresh) process; prints one JSON line."""
    import tensorflow as tf  # imported first so its own footprint is in the baseline
    from omegaconf import OmegaConf

    from anomaly_cli.data import folder as folder_source
    from anomaly_cli.data.base import LoadContext

    baseline = current_rss_mib()
    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "configs/dataset/folder.yaml")
    cfg.normal_dir, cfg.abnormal_dirs = str(folder / "normal"), str(folder / "abnormal")
    started = time.perf_counter()
    splits = folder_source.load(cfg, LoadContext(seed=0))
    scan_s = time.perf_counter() - started
    after_load = current_rss_mib()
    images, started = 0, time.perf_counter()
    for batch in splits.train.dataset().batch(batch_size):
        images += int(tf.shape(batch)[0])
    pass_s = time.perf_counter() - started
    print(
        json.dumps(
            {
                "files": splits.info["images_found"],
                "images": images,
                "scan_s": scan_s,
                "pass_s": pass_s,
                "rss_after_import_mib": baseline,
                "rss_after_load_mib": after_load,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def measure(folder: Path, batch_size: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(folder), "--batch-size", str(batch_size)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--keep-dir", type=Path, help="write (or reuse) the datasets here and keep them"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.batch_size)
        return
    root = args.keep_dir or Path(tempfile.mkdtemp(prefix="adx_data_memory_"))
    try:
        header = (
            f"{'files':>7}{'gen s':>8}{'scan s':>8}{'train imgs':>11}{'pass s':>8}"
            f"{'imgs/s':>9}{'RSS import':>11}{'RSS load':>10}{'peak RSS':>10}{'peak-import':>12}"
        )
        print("RSS in MiB (import: after importing TensorFlow); scan: listing + decode check")
        print(header)
        peaks = []
        for n in args.sizes:
            started = time.perf_counter()
            folder = make_dataset(root, n)
            generate_s = time.perf_counter() - started
            row = measure(folder, args.batch_size)
            peaks.append(row["peak_rss_mib"])
            print(
                f"{row['files']:>7}{generate_s:>8.1f}{row['scan_s']:>8.1f}{row['images']:>11}"
                f"{row['pass_s']:>8.1f}{row['images'] / row['pass_s']:>9.0f}"
                f"{row['rss_after_import_mib']:>11.0f}{row['rss_after_load_mib']:>10.0f}"
                f"{row['peak_rss_mib']:>10.0f}"
                f"{row['peak_rss_mib'] - row['rss_after_import_mib']:>12.0f}"
            )
        if len(peaks) > 1:
            ratio = max(peaks) / min(peaks)
            print(
                f"peak RSS ratio largest/smallest: {ratio:.3f} "
                f"(target <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'missed'})"
            )
    finally:
        if args.keep_dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
