"""Memory of `adx train -m` over 5 jobs in one process: does it grow from job to job?

Hydra's basic launcher runs every job of a sweep in the process that started
it, so whatever a job leaves behind (Keras' graph, layer names, tf.function
traces) adds up over a long sweep. When each job ends adx clears the Keras
session and forgets the job's entries in TensorFlow's custom-gradient registry,
which hold its traced graphs (`training/graph_memory.py`). This runs

    adx train -m debug=tiny trainer.epochs=1 trainer.seed=1,2,3,4,5 ...

in a fresh process, with a wrapper around the train task that reads the
process's RSS (VmRSS) and peak RSS (VmHWM) from /proc/self/status after each
job has ended, repeats that `--repeats` times (default 3) and prints, per
repeat and as min / median / max, RSS after job 1 and after job 5 and the
ratio job 5 / job 1 (target: within 1.1x). `--modes` compares what is freed
between jobs: `adx` (as shipped), `clear_session` (Keras' clear_session only,
adx before the registry was cleared) and `none` (nothing).
Prints raw numbers; asserts nothing. Linux only (/proc). Run from the repo root:

    .venv/bin/python benchmarks/multirun_memory.py
    .venv/bin/python benchmarks/multirun_memory.py --repeats 3 --modes adx clear_session none
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.1
MODES = {
    "adx": "adx as shipped (Keras' clear_session and the custom-gradient registry)",
    "clear_session": "Keras' clear_session only",
    "none": "nothing freed between jobs",
}
# Runs the real CLI with the train task wrapped: after each job, one JSON line on
# the file named by ADX_MEMORY_LOG with the job's number and the process's RSS.
_PROBE = """
import json, os, sys
import anomaly_cli.tasks.train as _train

def _status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

_original, _jobs = _train.run_cli_task, [0]

def _measured(*args, **kwargs):
    try:
        return _original(*args, **kwargs)
    finally:
        _jobs[0] += 1
        with open(os.environ["ADX_MEMORY_LOG"], "a") as log:
            record = {"job": _jobs[0], "rss_kib": _status_kib("VmRSS"),
                      "peak_kib": _status_kib("VmHWM")}
            log.write(json.dumps(record) + "\\n")

_train.run_cli_task = _measured
from anomaly_cli.training import graph_memory as _memory
_mode = os.environ["ADX_MEMORY_MODE"]
if _mode == "none":
    _memory.free_job_graphs = lambda before: None
elif _mode == "clear_session":
    def _keras_only(before):
        if "keras" in sys.modules:
            sys.modules["keras"].backend.clear_session()
    _memory.free_job_graphs = _keras_only
from anomaly_cli.cli import main
main(sys.argv[1:])
"""


def sweep(work: Path, jobs: int, mode: str) -> list[dict[str, float]]:
    """One `adx train -m` of `jobs` tiny jobs in a fresh process; RSS after each job."""
    log = work / "memory.jsonl"
    log.unlink(missing_ok=True)
    seeds = ",".join(str(i + 1) for i in range(jobs))
    command = [
        sys.executable, "-c", _PROBE, "train", "-m", "debug=tiny", "trainer.epochs=1",
        "trainer.verbose=0", "report.plots=[]", "logger=none", f"trainer.seed={seeds}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "ADX_OUTPUT_DIR": str(work / "outputs"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "ADX_MEMORY_LOG": str(log),
        "ADX_MEMORY_MODE": mode,
    }
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"adx train -m failed ({done.returncode}):\n{done.stderr[-2000:]}")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    if len(records) != jobs:
        raise SystemExit(f"expected {jobs} jobs, measured {len(records)}")
    print(f"  ({time.perf_counter() - started:.0f} s)", end="", flush=True)
    return records


def describe(values: list[float]) -> str:
    return f"{min(values):7.1f} {statistics.median(values):7.1f} {max(values):7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--modes", nargs="+", default=["adx"], choices=list(MODES), help="what is freed"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="adx_multirun_bench_"))
    try:
        for mode in args.modes:
            print(f"{MODES[mode]}: {args.jobs} jobs per sweep, {args.repeats} sweeps")
            first, last, peak_first, peak_last, ratios = [], [], [], [], []
            for repeat in range(args.repeats):
                work = root / f"{mode}_{repeat}"
                work.mkdir()
                print(f"  sweep {repeat + 1}", end="", flush=True)
                records = sweep(work, args.jobs, mode)
                rss = [r["rss_kib"] / 1024 for r in records]
                print("  RSS after each job (MiB): " + " ".join(f"{v:.0f}" for v in rss))
                first.append(rss[0])
                last.append(rss[-1])
                peak_first.append(records[0]["peak_kib"] / 1024)
                peak_last.append(records[-1]["peak_kib"] / 1024)
                ratios.append(rss[-1] / rss[0])
            print("                          min  median     max")
            print(f"  RSS after job 1 MiB  {describe(first)}")
            print(f"  RSS after job {args.jobs} MiB  {describe(last)}")
            print(f"  peak after job 1 MiB {describe(peak_first)}")
            print(f"  peak after job {args.jobs} MiB {describe(peak_last)}")
            median = statistics.median(ratios)
            verdict = "met" if median <= TARGET_RATIO else "NOT met"
            print(
                f"  RSS ratio job {args.jobs} / job 1: min {min(ratios):.3f} median {median:.3f} "
                f"max {max(ratios):.3f} (target {TARGET_RATIO}: {verdict})"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
