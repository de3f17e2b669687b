"""Three worker processes share one PostgreSQL ledger and six seller accounts, and are killed at
random while orders flow: every order finishes, nothing is bought or confirmed twice, and a dead
worker's accounts are owned again within the lease time."""
from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from connector.ledger import open_ledger
from connector.model import utcnow

from .helpers import (
    SEEDED_HOLDS,
    active_orders,
    assert_exactly_once,
    ledger_of,
    run_cli,
    run_once_until_quiet,
    start_daemon,
    wait_while_active,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 3.0
HEARTBEAT_S = LEASE_S / 3


def six_accounts() -> list[dict]:
    """The sandbox's three seller accounts, each twice (another seller id, the same region)."""
    base = yaml.safe_load((ROOT / "config" / "sandbox.yaml").read_text(encoding="utf-8"))["accounts"]
    out = []
    for account in base:
        for n in (1, 2):
            twin = copy.deepcopy(account)
            twin["name"] = f"{account['name']}-{n}"
            twin["refresh_token"] = f"{account['refresh_token']}-{n}"
            out.append(twin)
    return out


def owners(world) -> dict[str, str | None]:
    """account -> the worker whose lease on it is running now."""
    ledger = ledger_of(world)
    try:
        now = utcnow()
        return {ls.key: (ls.worker_id if ls.expires_at and ls.expires_at > now else None)
                for ls in ledger.leases() if not ls.key.startswith("@")}
    finally:
        ledger.close()


def _stop(procs: list[subprocess.Popen]) -> list[int]:
    """SIGTERM to each worker still running; their exit codes."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    return [proc.wait(timeout=60) for proc in procs]


def _shared_out(world) -> bool:
    """Every account leased, two to each of three workers."""
    now = owners(world)
    return len(now) == 6 and all(now.values()) and len(set(now.values())) == 3


def pid_of(worker_id: str | None) -> int | None:
    return int(worker_id.split(":")[1]) if worker_id else None


def test_three_workers_six_accounts_random_sigkills(world, postgres_server):
    postgres_server.require()
    w = world({"ledger": {"url": postgres_server.fresh_url()}, "accounts": six_accounts(),
               "sandbox": {"orders": 12},
               "engine": {"workers": 2, "lease_seconds": LEASE_S, "poll_interval_seconds": 1}})
    env = dict(os.environ)
    env.update(w.sandbox.env)
    config = w.config()  # the workers share one PII key, as hosts sharing a ledger must
    open_ledger(config.ledger_url, key_file=str(config.pii_key_file), create_key=True).close()

    def start() -> subprocess.Popen:
        command = [sys.executable, "-m", "connector.cli", "--config", str(w.config_path), "run"]
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    procs = [start() for _ in range(3)]
    rng = random.Random(20261204)
    reowned_after: list[float] = []
    killed: set[int] = set()
    try:
        deadline = time.monotonic() + 30

        while not _shared_out(w):
            assert time.monotonic() < deadline, owners(w)
            time.sleep(0.2)
        for _ in range(4):
            time.sleep(rng.uniform(0.5, 2.0))
            victim = rng.randrange(len(procs))
            held = [a for a, o in owners(w).items() if pid_of(o) == procs[victim].pid]
            procs[victim].send_signal(signal.SIGKILL)
            killed.add(procs[victim].pid)
            procs[victim].wait(timeout=30)
            killed_at = time.monotonic()
            while True:  # its accounts move to the living workers
                now_owners = owners(w)
                if all(now_owners[a] and pid_of(now_owners[a]) != procs[victim].pid for a in held):
                    break
                assert time.monotonic() - killed_at < LEASE_S + HEARTBEAT_S + 2, (held, now_owners)
                time.sleep(0.1)
            reowned_after.append(time.monotonic() - killed_at)
            procs[victim] = start()  # a new worker joins and gets its share back
        deadline = time.monotonic() + 30
        while not _shared_out(w):  # the last one to join has its share (and is past its start-up)
            assert time.monotonic() < deadline, owners(w)
            time.sleep(0.2)
    finally:
        exits = _stop(procs)
    assert all(code == 0 for code in exits), exits  # a stop request ends each worker cleanly
    # A dead worker's accounts were owned again within the lease time (plus one heartbeat).
    assert reowned_after and max(reowned_after) <= LEASE_S + HEARTBEAT_S + 2, reowned_after
    time.sleep(LEASE_S)  # leases of the killed workers run out; one daemon finishes what is left
    run_once_until_quiet(w)
    # the seed's orders include some no service may take under the sandbox's site rules
    result = assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"no_eligible_service"})
    assert result["orders"] == result["expected"] and result["verified"] >= 12
    workers = run_cli(w, "workers")
    assert workers.returncode == 0 and "account" in workers.stdout, workers.stderr[-2000:]
    listed = json.loads(run_cli(w, "workers", "--json").stdout)
    assert listed["shared"] is True and len(listed["leases"]) >= 6
    # The killed workers are told from those stopped by SIGTERM: a crash does not pass as a stop.
    # (a worker killed before its first heartbeat never registered: it is not listed at all)
    ended = {w["pid"]: w["status"] for w in listed["workers"] if w["pid"] in killed | {p.pid for p in procs}}
    registered = killed & set(ended)
    assert registered and ended == {**dict.fromkeys(registered, "died"),
                                    **{p.pid: "stopped" for p in procs}}, (killed, ended)
    assert sum(" died " in line for line in workers.stdout.splitlines()) == len(registered), workers.stdout


def test_a_worker_whose_ledger_connections_are_dropped_carries_on(world, postgres_server, tmp_path):
    """A PostgreSQL restart, a failover or an administrator ends every session of a running
    daemon, orders in flight: the dispatcher's read of what is due and the orders' locks fail on
    the dropped connections. The daemon carries on on new ones, and every order still gets done
    exactly once, instead of the daemon exiting."""
    import psycopg

    postgres_server.require()
    w = world({"ledger": {"url": postgres_server.fresh_url()}, "sandbox": {"orders": 12},
               "engine": {"workers": 2, "lease_seconds": 6, "poll_interval_seconds": 1}})
    env = dict(os.environ)
    env.update(w.sandbox.env)
    config = w.config()
    open_ledger(config.ledger_url, key_file=str(config.pii_key_file), create_key=True).close()
    log_path = tmp_path / "daemon.log"
    with open(log_path, "w") as log:
        command = [sys.executable, "-m", "connector.cli", "--config", str(w.config_path), "run"]
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    admin = psycopg.connect(postgres_server.database_url(), autocommit=True, application_name="test")
    try:
        deadline = time.monotonic() + 30
        while not active_orders(w):  # the first poll is in: orders are being driven
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.1)
        daemons = ("SELECT pid FROM pg_stat_activity WHERE application_name = 'mfn-connector'"
                   " AND datname = current_database()")
        for _ in range(3):  # each time, whatever is in flight then
            deadline = time.monotonic() + 10
            while not admin.execute(daemons).fetchall():  # (it connects again as it needs to)
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.05)
            admin.execute(f"SELECT pg_terminate_backend(pid) FROM ({daemons}) AS d")
            time.sleep(0.3)
        deadline = time.monotonic() + 60
        while True:  # until every order is done, exactly once, with the daemon running all along
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                result = assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"no_eligible_service"})
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        admin.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, log_path.read_text()[-3000:]
    assert "the ledger failed" in log_path.read_text()  # the faults did reach the dispatcher
    assert result["orders"] == result["expected"]


@pytest.mark.timeout(600)
@pytest.mark.slow(weight=4)
def test_three_workers_under_faults_kills_and_feeds(world, postgres_server, tmp_path):
    """tests/e2e/test_soak.py's storm, on a worker set: 15% faults on every emulator, workers
    SIGKILLed at random and started again while their accounts move between them, labels
    rate-shopped across the carriers, confirmations sent by feed. Each package still has one label,
    and one confirmation by confirmShipment or by one feed line, never both."""
    postgres_server.require()
    w = world({"ledger": {"url": postgres_server.fresh_url()}, "accounts": six_accounts(),
               "sandbox": {"orders": 12, "timeout_seconds": 1.5, "emulators": {
                   "spapi": {"feeds": {"in_queue_seconds": 1, "processing_seconds": 2}}}},
               "engine": {"workers": 4, "lease_seconds": LEASE_S, "poll_interval_seconds": 2,
                          "verify_grace_seconds": 0},
               "amazon": {"feeds": {"mode": "always", "poll_seconds": 0.5, "batch_wait_seconds": 2}}},
              faults=0.15)
    config = w.config()  # the workers share one PII key, as hosts sharing a ledger must
    open_ledger(config.ledger_url, key_file=str(config.pii_key_file), create_key=True).close()
    log = tmp_path / "workers.log"
    procs = [start_daemon(w, log) for _ in range(3)]
    rng = random.Random(20261206)
    try:
        for _ in range(5):
            time.sleep(rng.uniform(1.0, 4.0))
            victim = rng.randrange(len(procs))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(timeout=30)
            procs[victim] = start_daemon(w, log)
        deadline = time.monotonic() + 30
        # every live worker, the last one started included, holds its share: past its start-up,
        # so a stop now is a clean one
        while not (_shared_out(w) and {pid_of(o) for o in owners(w).values()} == {p.pid for p in procs}):
            assert time.monotonic() < deadline, owners(w)
            time.sleep(0.2)
        wait_while_active(w, 90)
    finally:
        exits = _stop(procs)
    assert all(code == 0 for code in exits), (exits, log.read_text(encoding="utf-8")[-3000:])
    if active_orders(w):
        time.sleep(LEASE_S)  # the killed workers' leases run out; one daemon finishes what is left
        run_once_until_quiet(w, max_runs=25)
    result = assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"no_eligible_service"})
    assert result["orders"] == result["expected"] and result["verified"] >= 12, result
    assert result["by_feed"] >= 1 and result["carriers"] >= 2, result
    injected = sum(sum(w.state(name)["faults_injected"].values()) for name in w.sandbox.servers)
    assert injected >= 20, "the faults were not actually injected"


def test_a_pass_beside_workers_that_hold_every_account_says_it_acted_for_none(world, postgres_server):
    """`run --once` next to running daemons: they hold every account's lease, so the pass drives
    nothing. It says so, instead of a summary of zeros that reads as a quiet day."""
    postgres_server.require()
    w = world({"ledger": {"url": postgres_server.fresh_url()}, "sandbox": {"orders": 4}})
    config = w.config()
    ledger = open_ledger(config.ledger_url, key_file=str(config.pii_key_file), create_key=True)
    try:
        ledger.hold_worker_lock("a-running-daemon")  # alive, as a daemon's own connection says
        names = [a.name for a in config.accounts]
        owned = ledger.worker_heartbeat("a-running-daemon", host="h", pid=1, accounts=names,
                                        jobs=("@leader",), lease_seconds=300)
        assert owned == {*names, "@leader"}
        result = run_cli(w, "run", "--once")
    finally:
        ledger.close()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "this pass acted for no account: each is leased to a running worker, or" in result.stderr
