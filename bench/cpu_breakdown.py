"""Benchmark: where the daemon's CPU per order goes, by thread and by component.

Not one of the issue's figures (``make bench`` does not run it): it runs bench/backlog.py's
backlog (500 orders, one seller, Amazon's production quotas) with the daemon started through
bench/instrumented.py, which sums CPU time by thread and by a few functions, and prints both
tables (docs/scaling.md quotes them). The instrument costs a few microseconds per wrapped call,
so the total comes out a little above ``backlog.py``'s.

    .venv/bin/python bench/cpu_breakdown.py [--orders 500]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import backlog

INSTRUMENTED = Path(__file__).resolve().parent / "instrumented.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    args = parser.parse_args()
    fd, report = tempfile.mkstemp(prefix="mfn-bench-cpu-", suffix=".json")
    os.close(fd)
    try:
        figures = {f.key: f for f in backlog.measure(
            args.orders, daemon=[sys.executable, str(INSTRUMENTED), report])}
        with open(report, encoding="utf-8") as fh:
            text = fh.read()
    finally:
        os.unlink(report)
    if not text:
        raise SystemExit("the daemon wrote no CPU report (killed before it could exit?)")
    found = json.loads(text)
    orders = sum(figures["confirm_ratio"].details["states"].values())  # in the ledger, as backlog.py counts
    total, backlog_figure = found["process_cpu"], figures["backlog_seconds"]
    print(f"{args.orders} seeded orders, {orders} in the ledger; the daemon's CPU {total:.2f} s "
          f"({total * 1000 / max(orders, 1):.1f} ms per order; {figures['cpu_ms_per_order'].measured} ms "
          f"by its exit rusage, as backlog.py counts); backlog {backlog_figure.measured} s")
    if backlog_figure.lower_bound:
        print("NOTE: stopped at the cap with orders still active; the figures cover only part of the work")
    print()
    switches = found["context_switches"]
    print(f"user {found['user_cpu']:.2f} s, system {found['system_cpu']:.2f} s "
          f"({100 * found['system_cpu'] / total:.0f}%); context switches "
          f"{switches['voluntary']:,} voluntary ({switches['voluntary'] / max(orders, 1):.0f} per order), "
          f"{switches['involuntary']:,} involuntary")
    statements = found["sql_statements"]
    if statements:
        every = sum(statements.values())
        print(f"SQL statements {every:,} ({every / max(orders, 1):.1f} per order; write transactions "
              f"{statements.get('COMMIT', 0) / max(orders, 1):.1f} per order): "
              + ", ".join(f"{word} {n:,}" for word, n in sorted(statements.items(), key=lambda i: -i[1])))
    print()
    print("| thread | CPU | share |\n|---|---|---|")
    for name, seconds in sorted(found["threads"].items(), key=lambda item: -item[1]):
        print(f"| {name} | {seconds:.2f} s | {100 * seconds / total:.0f}% |")
    print("\n| component (inclusive, rows overlap) | calls | CPU | per call | share |\n|---|---|---|---|---|")
    for row in sorted(found["functions"].values(), key=lambda row: -row["cpu"]):
        print(f"| {row['what']} | {row['calls']:,} | {row['cpu']:.2f} s | "
              f"{row['cpu'] * 1000 / max(row['calls'], 1):.2f} ms | {100 * row['cpu'] / total:.0f}% |")


if __name__ == "__main__":
    main()
