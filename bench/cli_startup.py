"""Benchmark: wall time of ``mfn-connector --help`` with every installed plugin loaded.

Every command starts this way (the CLI loads all plugins to offer their commands), so it is the
floor of any CLI call and of each daemon start. Runs the real console script in fresh processes
and prints the median and the slowest of ``--runs`` (after one warm-up for the file cache).

    .venv/bin/python bench/cli_startup.py            # also part of `make bench`
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("mfn-connector")
TARGET_MS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    subprocess.run([str(SCRIPT), "--help"], check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run([str(SCRIPT), "--help"], check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    median, worst = statistics.median(times), max(times)
    print(f"mfn-connector --help, all plugins, {args.runs} runs: median {median:.0f} ms, "
          f"slowest {worst:.0f} ms (target: at most {TARGET_MS} ms) -- "
          + ("OK" if median <= TARGET_MS else "OVER"))


if __name__ == "__main__":
    main()
