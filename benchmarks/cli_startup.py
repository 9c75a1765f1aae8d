"""Start-up time of the adx front end, against the < 1 s target for help.

Prints raw wall-clock numbers (median, min, max over --repeats runs) and the
ratio of each median to the target; asserts nothing. Run from the repo root:

    .venv/bin/python benchmarks/cli_startup.py --repeats 10
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 1.0
ADX = str(Path(sys.executable).with_name("adx"))
COMMANDS = {
    "import anomaly_cli.cli": [sys.executable, "-c", "import anomaly_cli.cli"],
    "adx --help": [ADX, "--help"],
    "adx train --help": [ADX, "train", "--help"],
    "adx evaluate --help": [ADX, "evaluate", "--help"],
    "adx sweep --help": [ADX, "sweep", "--help"],
}


def wall_times(command: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"{'command':<24}{'median s':>10}{'min s':>8}{'max s':>8}{'median/target':>15}")
    for name, command in COMMANDS.items():
        times = wall_times(command, args.repeats)
        median = statistics.median(times)
        print(
            f"{name:<24}{median:>10.3f}{min(times):>8.3f}{max(times):>8.3f}"
            f"{median / TARGET_SECONDS:>15.2f}"
        )


if __name__ == "__main__":
    main()
