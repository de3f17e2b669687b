"""``make bench``: every figure of the scale issue, each against its bound, in one run.

Writes bench/results/latest.json and latest.md (and, with ``--readme``, the table between the
``<!-- bench:start -->`` / ``<!-- bench:end -->`` markers of README.md). Each measurement is a
module of its own under bench/; one that cannot run on this code yet, or fails, shows as
"not available" with the reason, and the others still run.

    .venv/bin/python bench/run.py                   # full sizes (about 15 minutes)
    .venv/bin/python bench/run.py --quick           # smaller sizes, a few minutes
    .venv/bin/python bench/run.py --only list,cli   # re-measure some figures, keep the others
    .venv/bin/python bench/run.py --readme          # also rewrite the table in README.md
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable

import backlog
import cli_startup
import large_ledger
import peak
import results
import workers
from results import Figure

SIZES = {
    #          cli runs, backlog, ledger,  active, orders per account (workers), peak
    "full": dict(runs=15, backlog=500, ledger=100_000, active=1_500, per_account=100, peak=10_000),
    "quick": dict(runs=5, backlog=100, ledger=10_000, active=300, per_account=30, peak=1_000),
}
# The order of figures; a figure not listed goes last.
ORDER = ("confirm_ratio", "throttled", "backlog_seconds", "cpu_ms_per_order", "peak_feed_rate",
         "workers_growth", "orders_list_seconds", "orders_list_rss_mb", "run_once_ratio", "run_once_rss_mb",
         "cli_start_ms")


def steps(size: dict[str, int]) -> dict[str, Callable[[], list[Figure]]]:
    return {
        "cli": lambda: [cli_startup.measure(size["runs"])],
        "list": lambda: large_ledger.orders_list(size["ledger"]),
        "pass": lambda: large_ledger.run_once(size["ledger"], size["active"]),
        "workers": lambda: workers.measure(size["per_account"]),
        "backlog": lambda: backlog.measure(size["backlog"]),
        "peak": lambda: peak.measure(size["peak"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument("--readme", action="store_true", help="also rewrite the table in README.md")
    parser.add_argument("--only", default="",
                        help="comma-separated steps: " + ", ".join(steps(SIZES["full"])))
    args = parser.parse_args()
    plan = steps(SIZES["quick" if args.quick else "full"])
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(plan)
    unknown = sorted(set(chosen) - set(plan))
    if unknown:
        parser.error(f"--only: unknown step(s) {', '.join(unknown)}; known: {', '.join(plan)}")
    meta = results.machine() | {"quick": args.quick, "steps": chosen}
    figures: list[Figure] = []
    kept: list[Figure] = []
    started = time.monotonic()
    for name in chosen:
        step_started = time.monotonic()
        print(f"[bench] {name} ...", flush=True)
        try:
            got = plan[name]()
        except Exception as exc:  # one broken measurement must not hide the others
            traceback.print_exc()
            got = [Figure(f"{name}_failed", f"step `{name}`", 0, results.AT_MOST, note=f"not available: "
                          f"the measurement failed: {type(exc).__name__}: {str(exc).strip()[:300]}")]
        for f in got:
            print(f"[bench]   {f.title}: {f.measured} {f.unit} (bound {f.bound}) -- {f.verdict}", flush=True)
        figures.extend(got)
        if args.only:  # a partial run keeps the other figures of the last run, and says so
            kept = results.previous({f.key for f in figures})
            meta["kept"] = bool(kept)
        table = sorted(figures + kept, key=lambda f: ORDER.index(f.key) if f.key in ORDER else len(ORDER))
        meta["total_seconds"] = round(time.monotonic() - started)
        meta.setdefault("step_seconds", {})[name] = round(time.monotonic() - step_started)
        path = results.write(table, meta, readme=False)
    if args.readme:
        results.write(table, meta, readme=True)
    print(f"\n{path.read_text(encoding='utf-8')}")
    print(f"[bench] done in {meta['total_seconds']} s: {path} and {path.with_suffix('.json')}"
          + (" and README.md" if args.readme else ""))


if __name__ == "__main__":
    sys.exit(main())
