"""Benchmark: a ledger that grows without slowing (a history of finished orders, bench/history.py).

* ``orders list`` over a ledger of ``--size`` orders: wall time and peak RSS of the child
  process (its output goes to a file).
* a ``run --once`` pass driving ``--active`` new orders (seeded in the emulators, every quota
  lifted so the pass measures the daemon, not Amazon's pacing; verify grace 0 so the pass reads
  each confirmation back) over that history, against the same pass over an empty ledger (three of
  each, alternately): the ratio of the median wall times says whether a pass is bounded by its
  active orders or by the ledger's size; the peak RSS of the passes over the history is the other
  figure.

    .venv/bin/python bench/large_ledger.py --size 10000 --active 300
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile

from common import (
    Sandbox,
    bench_config,
    failure,
    lifted_quotas,
    merchant_backlog,
    open_bench_ledger,
    run_cli,
    workdir,
)
from history import cached_history, install
from results import AT_MOST, Figure, unavailable

LIST_SECONDS, RSS_MB, PASS_RATIO = 1.0, 200.0, 1.5
LIST_RUNS = 5  # one run of about a second varies by a third on a shared 2-core machine: the median of 5
PASS_RUNS = 3
_AT_REST = ("VERIFIED", "HELD", "CANCELLED", "DELIVERED")  # the history is DELIVERED or CANCELLED


def orders_list(size: int, *, timeout: float = 300) -> list[Figure]:
    db, key = cached_history(size)
    directory = workdir("list")
    install(db, key, directory / "state")
    config_path = bench_config(directory, orders=0)
    title = f"`orders list` with {size:,} orders in the ledger"
    runs = []
    for _ in range(LIST_RUNS):
        with tempfile.TemporaryFile() as out:
            usage = run_cli(config_path, "orders", "list", stdout=out, timeout=timeout)
            out.seek(0)
            lines = sum(1 for _ in out)
        if usage.returncode != 0 and not usage.timed_out:
            raise failure("orders list", usage)
        runs.append(usage)
        if usage.timed_out:
            break
    walls = sorted(u.wall for u in runs)
    usage = sorted(runs, key=lambda u: u.wall)[len(runs) // 2]  # the median run
    usage.maxrss_mb = max(u.maxrss_mb for u in runs)
    how = (f"`mfn-connector orders list` (every order, output to a file: {lines - 1:,} rows) as a child "
           f"process over a ledger of {size:,} finished orders cloned from real ones (bench/history.py), "
           f"addresses sealed with the ledger's key; the median of {len(runs)} runs "
           f"({', '.join(f'{w:.2f}' for w in walls)} s), the largest peak RSS (os.wait4)")
    if usage.timed_out:
        how += f"; stopped after {timeout:.0f} s"
    return [
        Figure("orders_list_seconds", f"{title}: wall time", LIST_SECONDS, AT_MOST, "s", round(usage.wall, 2),
               lower_bound=usage.timed_out, how=how + "."),
        Figure("orders_list_rss_mb", f"{title}: peak RSS", RSS_MB, AT_MOST, "MB", round(usage.maxrss_mb),
               lower_bound=usage.timed_out, how="same run."),
    ]


def _pass(active: int, history: int | None, timeout: float) -> tuple[float, float, bool, int, int]:
    """One ``run --once`` over ``active`` seeded orders (and a history of ``history`` orders)."""
    directory = workdir("pass")
    if history:
        install(*cached_history(history), directory / "state")
    config_path = bench_config(directory, orders=active, quotas=lifted_quotas(), verify_grace=0)
    with Sandbox(config_path) as sandbox:
        to_ship = merchant_backlog(sandbox)
        usage = run_cli(config_path, "run", "--once", env=sandbox.env, timeout=timeout)
    if usage.returncode != 0 and not usage.timed_out:
        raise failure("run --once", usage)
    ledger = open_bench_ledger(config_path)
    try:
        counts = ledger.counts()
    finally:
        ledger.close()
        shutil.rmtree(directory, ignore_errors=True)  # a copy of the history is hundreds of MB
    rested = sum(counts.get(s, 0) for s in _AT_REST) - (history or 0)
    return usage.wall, usage.maxrss_mb, usage.timed_out, to_ship, rested


def run_once(size: int, active: int, *, timeout: float = 900) -> list[Figure]:
    title = f"a `run --once` pass with {size:,} orders in the ledger, {active:,} active"
    empty_walls, walls, rss, empty_rss = [], [], 0.0, 0.0
    cut = False
    for _ in range(PASS_RUNS):  # alternately, so that a slow spell of the machine hits both
        empty_wall, one_empty_rss, empty_cut, to_ship, empty_rested = _pass(active, None, timeout)
        if empty_cut:
            reason = f"the pass over an empty ledger did not end within {timeout:.0f} s"
            return [unavailable("run_once_ratio", f"{title}: time vs the same pass on an empty ledger",
                                PASS_RATIO, AT_MOST, "x", reason),
                    unavailable("run_once_rss_mb", f"{title}: peak RSS", RSS_MB, AT_MOST, "MB", reason)]
        wall, one_rss, cut, _, rested = _pass(active, size, max(timeout, 10 * empty_wall))
        empty_walls.append(empty_wall)
        walls.append(wall)
        rss, empty_rss = max(rss, one_rss), max(empty_rss, one_empty_rss)
        if cut:
            break
    wall, empty_wall = statistics.median(walls), statistics.median(empty_walls)
    how = (f"{active:,} seeded orders ({to_ship:,} to ship) driven by one `mfn-connector run --once` (child "
           f"process) with every quota lifted and verify grace 0, over {size:,} finished orders "
           f"(bench/history.py), against the same pass over an empty ledger; {len(walls)} of each, "
           f"alternately, and the medians (a pass of about 20 s varies by a fifth on a shared 2-core "
           f"machine): {_seconds(walls)}{' (stopped)' if cut else ''}, peak RSS {rss:.0f} MB; over the empty "
           f"ledger {_seconds(empty_walls)}, peak RSS {empty_rss:.0f} MB. Orders of the {active:,} at rest "
           f"(verified, held or cancelled) after the last pass: {rested:,} over the history, "
           f"{empty_rested:,} over the empty ledger")
    details = {"wall_seconds": [round(w, 1) for w in walls],
               "empty_wall_seconds": [round(w, 1) for w in empty_walls],
               "maxrss_mb": round(rss), "empty_maxrss_mb": round(empty_rss), "to_ship": to_ship,
               "at_rest": rested, "empty_at_rest": empty_rested}
    return [
        Figure("run_once_ratio", f"{title}: time vs the same pass on an empty ledger", PASS_RATIO, AT_MOST,
               "x", round(wall / empty_wall, 2), lower_bound=cut, how=how + ".", details=details),
        Figure("run_once_rss_mb", f"{title}: peak RSS", RSS_MB, AT_MOST, "MB", round(rss), lower_bound=cut,
               how="same runs, the largest."),
    ]


def _seconds(walls: list[float]) -> str:
    return f"{statistics.median(walls):.1f} s (of {', '.join(f'{w:.1f}' for w in walls)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--active", type=int, default=1_500)
    parser.add_argument("--only", choices=("list", "pass"))
    args = parser.parse_args()
    figures = []
    if args.only != "pass":
        figures += orders_list(args.size)
    if args.only != "list":
        figures += run_once(args.size, args.active)
    for figure in figures:
        print(json.dumps(figure.to_json(), indent=2, default=str))


if __name__ == "__main__":
    main()
