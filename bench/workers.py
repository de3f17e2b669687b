"""Benchmark: accounts per worker set -- 1 worker against 3 sharing one PostgreSQL ledger.

Each worker is one ``mfn-connector run`` process; all of them read the same configuration, whose
``ledger.url`` names a fresh PostgreSQL database (created for the run, dropped after; the server
at ``MFN_BENCH_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``). Six
seller accounts with ``--orders`` orders each are served by the emulators in this process with
every quota lifted (so the worker set's own capacity is what is measured, not Amazon's pacing),
verify grace 0, and a 1-second retry delay: about one order in six gets its YunExpress tracking
number only on a later look, and at production's 30-second retry delay the run's last 25 to 30
seconds were those orders waiting, whatever the number of workers. Throughput: orders to ship /
seconds until every order is at rest. The figure is throughput with 3 workers / throughput with 1,
each the median of ``RUNS`` runs made alternately (1, 3, 1, 3, ...): a run of this size lasts
10 to 20 s, and on a shared 2-core machine one run alone moved the ratio between 1.2 and 1.5.
Beside the figure, each run's flow: orders at rest per second from the look that found a tenth of
them at rest to the one that found nine tenths (the ledger is read every quarter second). It
leaves out each worker's start and the tail of late tracking numbers, which last as long whatever
the number of workers, so the ratio of the flows says how far the worker set itself scaled.

Reports "not available" while ``connector.ledger.open_ledger`` refuses a ``postgresql://`` URL or
the server is not there.

    .venv/bin/python bench/workers.py --orders 50
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
import urllib.parse
from typing import Any

from common import (
    CLI,
    Child,
    Sandbox,
    Unavailable,
    active_count,
    bench_config,
    lifted_quotas,
    merchant_backlog,
    open_bench_ledger,
    watch,
    workdir,
)
from results import AT_LEAST, Figure, unavailable

ADMIN_URL = os.environ.get("MFN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ACCOUNTS = tuple(f"bench-{n}" for n in range(1, 7))
RETRY_DELAY_S = 1.0  # a look again at a late tracking number is waiting, not work: see above
RUNS = 3  # of each worker count, alternately; the figure takes the medians
LOOK_EVERY_S = 0.25  # how often the ledger is read for orders at rest (the flow's resolution)
GROWTH = 1.5  # 3 workers against 1: the throughput must grow at least this much
TITLE = "accounts per worker set: throughput of 3 workers vs 1 on one PostgreSQL"


class Database:
    """A fresh PostgreSQL database for one run, dropped at the end."""

    def __init__(self, name: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise Unavailable(f"psycopg is not installed ({exc})") from None
        self.name = name
        try:
            with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.OperationalError as exc:
            raise Unavailable(f"no PostgreSQL server at {_safe(ADMIN_URL)}: "
                              f"{str(exc).strip().splitlines()[0]}") from None
        parts = urllib.parse.urlsplit(ADMIN_URL)
        self.url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}", query=""))

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _safe(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def check_available() -> None:
    """Raise Unavailable unless the ledger opens a ``postgresql://`` URL."""
    from connector.ledger import open_ledger

    database = Database(f"bench_{os.getpid()}_probe")
    try:
        key = workdir("pgprobe") / "pii.key"
        try:
            ledger = open_ledger(database.url, key_file=str(key), create_key=True)
        except (ValueError, ImportError, NotImplementedError) as exc:
            raise Unavailable(f"the ledger does not open {_safe(database.url)}: {exc}") from None
        ledger.close()
    finally:
        database.drop()


def throughput(workers: int, orders: int, *, cap: float) -> dict[str, Any]:
    database = Database(f"bench_{os.getpid()}_{workers}w")
    try:
        directory = workdir(f"workers{workers}")
        config_path = bench_config(directory, orders=orders, accounts=ACCOUNTS, quotas=lifted_quotas(),
                                   verify_grace=0, ledger_url=database.url, extra=_short_retries)
        with Sandbox(config_path) as sandbox:
            expected = merchant_backlog(sandbox)
            ledger = open_bench_ledger(config_path)
            children = [Child([*CLI, "--config", str(config_path), "run"], env=sandbox.env)
                        for _ in range(workers)]
            counts: dict[str, int] = {}
            settled: list[tuple[float, int]] = []  # (monotonic time, orders at rest) at each look

            def done() -> bool:
                counts.clear()
                counts.update(ledger.counts())
                settled.append((time.monotonic(), sum(counts.values()) - active_count(counts)))
                return sum(counts.values()) >= expected and active_count(counts) == 0

            served, host = _own_cpu(), _host_busy()
            try:
                seconds = watch(children, done, cap=cap, every=LOOK_EVERY_S)
            finally:
                served = _own_cpu() - served  # the emulators (and this watcher) in this process
                host = _host_busy() - host
                usages = [child.stop() for child in children]
                ledger.close()
            state = sandbox.spapi_state()
            throttled = sandbox.throttled() or {}
        twice = sum(1 for packages in state["confirmations"].values() if len(packages) > 1)
        wall = cap if seconds is None else seconds
        return {"workers": workers, "orders_to_ship": expected, "seconds": round(wall, 1),
                "finished": seconds is not None, "per_second": round(expected / wall, 2),
                "cpu_seconds": round(sum(u.cpu for u in usages), 1), "throttled": throttled,
                "emulator_cpu_share": round(served / wall, 2),
                "host_busy_share": round(host / wall / (os.cpu_count() or 1), 2),
                "flow_per_second": _flow(settled), "orders_confirmed_twice": twice, "states": dict(counts)}
    finally:
        database.drop()


def _flow(settled: list[tuple[float, int]]) -> float | None:
    """Orders come to rest per second while the backlog flows: from the first look that found a
    tenth of them at rest to the first that found nine tenths. Unlike the whole run's throughput,
    it leaves out the workers' start and the tail of late tracking numbers, which last as long
    whatever the number of workers."""
    final = settled[-1][1] if settled else 0
    tenth = next((s for s in settled if s[1] >= final * 0.1), None)
    nine_tenths = next((s for s in settled if s[1] >= final * 0.9), None)
    if tenth is None or nine_tenths is None or nine_tenths[0] <= tenth[0]:
        return None
    return round((nine_tenths[1] - tenth[1]) / (nine_tenths[0] - tenth[0]), 1)


def _short_retries(data: dict[str, Any]) -> None:
    data["engine"]["retry_delay_seconds"] = RETRY_DELAY_S


def _host_busy() -> float:
    """CPU seconds every process on this host has spent so far (``/proc/stat``, all but idle and
    I/O wait): the workers, PostgreSQL and the emulators share the host's cores."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(orders: int = 100, *, cap: float = 600) -> list[Figure]:
    try:
        check_available()
    except Unavailable as exc:
        return [unavailable("workers_growth", TITLE, GROWTH, AT_LEAST, "x", str(exc))]
    ones, threes = [], []
    for _ in range(RUNS):  # alternately, so that a slow spell of the machine hits both
        ones.append(throughput(1, orders, cap=cap))
        threes.append(throughput(3, orders, cap=cap))
    one, three = _median_run(ones), _median_run(threes)
    ratio = three["per_second"] / one["per_second"] if one["per_second"] else 0.0
    notes = []
    for run in (*ones, *threes):
        if not run["finished"]:
            notes.append(f"{run['workers']} worker(s) stopped at the {cap:.0f} s cap")
        if run["orders_confirmed_twice"]:
            notes.append(f"{run['workers']} worker(s): {run['orders_confirmed_twice']} orders confirmed "
                         "twice")
        if run["throttled"]:
            notes.append(f"{run['workers']} worker(s): 429s {run['throttled']}")
    return [Figure("workers_growth", TITLE, GROWTH, AT_LEAST, "x", round(ratio, 2),
                   how=f"{len(ACCOUNTS)} accounts x {orders} seeded orders ({one['orders_to_ship']} to "
                       f"ship), every quota lifted, retry delay {RETRY_DELAY_S:.0f} s, each worker a "
                       f"`mfn-connector run` process on the same "
                       f"configuration and a fresh PostgreSQL database; {RUNS} runs of each, alternately, "
                       f"and the medians: 1 worker {one['per_second']}/s ({one['seconds']} s, of "
                       f"{_each(ones, 'seconds')}), 3 workers {three['per_second']}/s ({three['seconds']} s, "
                       f"of {_each(threes, 'seconds')}). While the backlog flowed (a tenth to nine tenths "
                       f"of the orders at rest) 1 worker settled {_each(ones, 'flow_per_second')} orders/s "
                       f"and 3 workers {_each(threes, 'flow_per_second')}: {_flow_ratio(ones, threes)}. "
                       f"In those median runs the "
                       f"emulators, one Python process, used {one['emulator_cpu_share']:.0%} and "
                       f"{three['emulator_cpu_share']:.0%} of a core meanwhile; the workers "
                       f"{one['cpu_seconds']} s and {three['cpu_seconds']} s of CPU; the host's "
                       f"{os.cpu_count()} CPUs (workers, PostgreSQL and emulators together) were "
                       f"{one['host_busy_share']:.0%} and {three['host_busy_share']:.0%} busy."
                       + (f" {'; '.join(notes)}." if notes else ""),
                   details={"one": ones, "three": threes})]


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose throughput is the median (an odd number of runs)."""
    middle = statistics.median_low(run["per_second"] for run in runs)
    return next(run for run in runs if run["per_second"] == middle)


def _flow_ratio(ones: list[dict[str, Any]], threes: list[dict[str, Any]]) -> str:
    """The median flows' ratio, as words (a run too short to sample has no flow)."""
    one = [r["flow_per_second"] for r in ones if r["flow_per_second"]]
    three = [r["flow_per_second"] for r in threes if r["flow_per_second"]]
    if not one or not three:
        return "too short a flow to sample"
    return f"{statistics.median(three) / statistics.median(one):.2f} x, medians against medians"


def _each(runs: list[dict[str, Any]], key: str) -> str:
    """One value of every run, in the order they ran ("9.1, 9.0, 10.1")."""
    return ", ".join(f"{run[key]}" for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100, help="seeded orders per account")
    args = parser.parse_args()
    for figure in measure(args.orders):
        print(json.dumps(figure.to_json(), indent=2, default=str))


if __name__ == "__main__":
    main()
