"""Benchmark: one worker acting for many seller accounts (a 3PL's shape) -- its database connections,
memory, threads and CPU.

Not one of the issue's figures (``make bench`` does not run it): one ``mfn-connector run`` process
serves ``--accounts`` sellers of ``--orders`` seeded orders each, every quota lifted, verify grace 0,
on a SQLite ledger, or on a fresh PostgreSQL database with ``--postgres`` (the server at
``MFN_BENCH_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``). Once a second
it reads the ledger's counts, the worker's threads and resident memory (``/proc``), and on
PostgreSQL how many connections the worker holds to the run's database (``pg_stat_activity``).
When every order is at rest it waits ``--idle`` seconds more and reports the CPU the idle worker
spent (its polls and periodic jobs). docs/scaling.md quotes it.

    .venv/bin/python bench/accounts.py --accounts 300 --orders 1 [--postgres]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from common import (
    CLI,
    Child,
    Sandbox,
    active_count,
    bench_config,
    lifted_quotas,
    merchant_backlog,
    open_bench_ledger,
    watch,
    workdir,
)
from workers import ADMIN_URL, Database

RETRY_DELAY_S = 1.0  # a late YunExpress number is looked at again soon: the run measures work, not waits


def _threads_and_rss(pid: int | None) -> tuple[int | None, int | None]:
    """The process's threads and resident memory (MB), or None where /proc cannot tell."""
    if pid is None:
        return None, None
    try:
        threads = len(os.listdir(f"/proc/{pid}/task"))
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    rss = next((int(line.split()[1]) // 1024 for line in status.splitlines() if line.startswith("VmRSS")),
               None)
    return threads, rss


def _connections(database: str) -> int:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s",
                                (database,)).fetchone()[0])


def measure(accounts: int, orders: int, *, postgres: bool, idle: float, cap: float = 900) -> dict[str, Any]:
    database = Database(f"bench_{os.getpid()}_accounts") if postgres else None
    try:
        directory = workdir("accounts")
        config_path = bench_config(
            directory, orders=orders, accounts=[f"seller-{n}" for n in range(1, accounts + 1)],
            quotas=lifted_quotas(), verify_grace=0, ledger_url=database.url if database else None,
            extra=lambda data: data["engine"].__setitem__("retry_delay_seconds", RETRY_DELAY_S))
        with Sandbox(config_path) as sandbox:
            expected = merchant_backlog(sandbox)
            ledger = open_bench_ledger(config_path)
            child = Child([*CLI, "--config", str(config_path), "run"], env=sandbox.env)
            counts: dict[str, int] = {}
            peak = {"threads": 0, "rss_mb": 0, "connections": 0}

            def look() -> None:
                threads, rss = _threads_and_rss(child.command_pid())
                peak["threads"] = max(peak["threads"], threads or 0)
                peak["rss_mb"] = max(peak["rss_mb"], rss or 0)
                if database is not None:
                    peak["connections"] = max(peak["connections"], _connections(database.name))

            def settled() -> bool:
                look()
                counts.clear()
                counts.update(ledger.counts())
                return sum(counts.values()) >= expected and active_count(counts) == 0

            try:
                seconds = watch([child], settled, cap=cap, every=1.0)
                before = child.cpu_so_far()
                end = time.monotonic() + idle
                while time.monotonic() < end:
                    look()
                    time.sleep(1.0)
                after = child.cpu_so_far()
            finally:
                usage = child.stop()
                ledger.close()
    finally:
        if database is not None:
            database.drop()
    idle_ms = (after - before) * 1000 / idle if before is not None and after is not None and idle else None
    return {"accounts": accounts, "orders_to_ship": expected,
            "ledger": "postgresql" if postgres else "sqlite",
            "settled_seconds": None if seconds is None else round(seconds, 1), "states": dict(counts),
            "peak_threads": peak["threads"], "peak_rss_mb": peak["rss_mb"],
            "maxrss_mb": round(usage.maxrss_mb, 1),
            "peak_connections": peak["connections"] if postgres else None,
            "cpu_seconds": round(usage.cpu, 2),
            "idle_cpu_ms_per_s": None if idle_ms is None else round(idle_ms, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--orders", type=int, default=1, help="seeded orders per account")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database, not SQLite")
    parser.add_argument("--idle", type=float, default=30.0,
                        help="seconds measured idle after the orders settle")
    args = parser.parse_args()
    print(json.dumps(measure(args.accounts, args.orders, postgres=args.postgres, idle=args.idle), indent=2))


if __name__ == "__main__":
    main()
