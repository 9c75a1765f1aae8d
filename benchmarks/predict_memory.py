"""Peak memory and speed of `adx predict` on folders of 500, 2,000 and 8,000 images.

Trains one small run (`adx train debug=tiny`), writes folders of 64x64 PNGs
(90 % blobs, 10 % with a patch; the same generator as data_memory.py), then
runs `adx predict run=<that run> input=<folder>` once per size, each in a
fresh process, and reads the process's peak RSS (ru_maxrss of the child).
predict streams the folder (a list of paths up front, then decode, score and
forget, batch by batch), so the peak should stay flat as the folder grows:
the ratio largest / smallest should stay near 1 (target: within 1.3x).
Prints raw numbers and ratios; asserts nothing. Run from the repo root:

    .venv/bin/python benchmarks/predict_memory.py
    .venv/bin/python benchmarks/predict_memory.py --sizes 500 2000 8000 --keep-dir /tmp/adx_bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_memory import make_dataset  # the folder generator, shared

TARGET_RATIO = 1.3
ADX = str(Path(sys.executable).with_name("adx"))
# Runs `adx ...` as its only child and prints that child's peak RSS (KiB on Linux).
_MEASURE = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def adx_env(work: Path) -> dict[str, str]:
    return {**os.environ, "ADX_OUTPUT_DIR": str(work / "outputs"), "TF_CPP_MIN_LOG_LEVEL": "3"}


def train(work: Path) -> Path:
    command = [ADX, "train", "debug=tiny", "trainer.verbose=0", "report.plots=[]"]
    subprocess.run(command, cwd=work, env=adx_env(work), check=True, capture_output=True)
    return (work / "outputs" / "latest").resolve()


def predict_peak(work: Path, run: Path, folder: Path) -> dict[str, float]:
    """One `adx predict` in a fresh process: exit code, peak RSS, wall time, rows written."""
    command = [sys.executable, "-c", _MEASURE, ADX, "predict", f"run={run}", f"input={folder}"]
    before = set((work / "outputs").iterdir())
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=adx_env(work), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    code, peak_kib = (int(v) for v in done.stdout.split()[-2:])
    if code != 0:
        raise SystemExit(f"adx predict failed ({code}):\n{done.stderr[-2000:]}")
    (made,) = set((work / "outputs").iterdir()) - before
    info = json.loads((made / "run.json").read_text())
    return {
        "files": info["counts"]["scored"] + info["counts"]["unreadable"],
        "scored": info["counts"]["scored"],
        "heatmaps": info["counts"]["heatmaps"],
        "wall_s": seconds,
        "task_s": info["wall_time_s"],
        "peak_rss_mib": peak_kib / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--keep-dir", type=Path, default=None, help="reuse/keep data here")
    args = parser.parse_args()
    root = args.keep_dir or Path(tempfile.mkdtemp(prefix="adx_predict_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        work = root / "work"
        work.mkdir(exist_ok=True)
        run = train(work)
        rows = []
        for n in args.sizes:
            folder = make_dataset(root, n)
            rows.append(predict_peak(work, run, folder))
            r = rows[-1]
            print(
                f"{r['files']:>6} files  {r['scored']:>6} scored  {r['heatmaps']:>3} heatmaps  "
                f"task {r['task_s']:6.1f} s  ({r['scored'] / r['task_s']:7.0f} images/s)  "
                f"wall {r['wall_s']:6.1f} s  peak RSS {r['peak_rss_mib']:7.1f} MiB",
                flush=True,
            )
        low, high = rows[0], rows[-1]
        ratio = high["peak_rss_mib"] / low["peak_rss_mib"]
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(
            f"peak RSS ratio {high['files']} / {low['files']} files: {ratio:.3f} "
            f"(target {TARGET_RATIO}: {verdict}); "
            f"files ratio {high['files'] / low['files']:.0f}x"
        )
    finally:
        if args.keep_dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
