"""Benchmark: wall time of ``mfn-connector --help`` with every installed plugin loaded.

Every command starts this way (the CLI loads all plugins to offer their commands), so it is the
floor of any CLI call and of each daemon start. Runs the real console script in fresh processes
and takes the median of ``--runs`` (after one warm-up for the file cache).

    .venv/bin/python bench/cli_startup.py            # also part of `make bench` (bench/run.py)
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results import AT_MOST, Figure

SCRIPT = Path(sys.executable).with_name("mfn-connector")
TARGET_MS = 300


def measure(runs: int = 15) -> Figure:
    subprocess.run([str(SCRIPT), "--help"], check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(SCRIPT), "--help"], check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    return Figure("cli_start_ms", "CLI start: `mfn-connector --help`", TARGET_MS, AT_MOST, "ms",
                  round(median), how=f"median of {runs} fresh processes after one warm-up, every plugin "
                                     f"loaded (slowest {max(times):.0f} ms).",
                  details={"runs_ms": [round(t, 1) for t in times]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    figure = measure(args.runs)
    print(f"mfn-connector --help: median {figure.measured:.0f} ms (target: at most {TARGET_MS} ms) "
          f"-- {figure.verdict}")


if __name__ == "__main__":
    main()
