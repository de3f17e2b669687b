"""Benchmark: a 500-order backlog through the real daemon against the sandbox.

Amazon's published production quotas apply on both sides (confirmShipment 2/s burst 10,
getOrder 0.5/s burst 30, searchOrders 0.0056/s burst 20). The emulators run in this process;
the daemon runs as `mfn-connector run --once` in a child process, so its CPU time is measured
apart from the emulators'. Prints confirmed orders per second against the confirmShipment
ceiling, verified orders per second against the getOrder ceiling, and daemon CPU ms per order.

    make bench                       # 500 orders
    .venv/bin/python bench/backlog.py --orders 100 --workers 8
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.config import load_config  # noqa: E402
from connector.ledger import OrderState, open_ledger  # noqa: E402
from connector.plugins import load_plugins  # noqa: E402
from connector.ratelimit import DEFAULT_QUOTAS  # noqa: E402
from connector.sandbox.runner import start_sandbox  # noqa: E402


def write_config(directory: Path, orders: int, workers: int) -> Path:
    data = yaml.safe_load((ROOT / "config" / "sandbox.yaml").read_text(encoding="utf-8"))
    data["state_dir"] = str(directory / "state")
    data["catalog"] = str(ROOT / "config" / "catalog.sandbox.csv")
    data["accounts"] = [a for a in data["accounts"] if a["name"] == "demo-na"]
    data["accounts"][0]["marketplaces"] = ["US"]  # one seller, one set of buckets: the ceiling is clear
    data["amazon"]["quotas"] = {}  # Amazon's published defaults on both sides
    data["amazon"]["read_timeout_seconds"] = 30
    data["engine"]["workers"] = workers
    data["engine"].pop("verify_grace_seconds", None)  # production default: the poll verifies
    # A direct carrier, so every label goes through confirmShipment (Buy Shipping labels confirm
    # themselves and would leave the confirmation pipeline unmeasured).
    data["routing"] = {"default": ["yunexpress:*"]}
    data["sandbox"]["orders"] = orders
    data["logging"] = {"level": "WARNING", "format": "text"}
    path = directory / "bench.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="mfn-bench-"))
    config_path = write_config(directory, args.orders, args.workers)
    host = load_plugins()
    sandbox = start_sandbox(load_config(config_path), host, base_port=0)
    env = dict(os.environ, **sandbox.env)
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        runs = 0
        while True:
            runs += 1
            result = subprocess.run([sys.executable, "-m", "connector.cli", "--config", str(config_path),
                                     "run", "--once"], env=env, capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"daemon failed:\n{result.stderr[-3000:]}")
            config = load_config(config_path)
            ledger = open_ledger(config.ledger_url, key_file=str(config.pii_key_file), create_key=False)
            counts = ledger.counts()
            active = sum(n for s, n in counts.items() if s not in ("VERIFIED", "HELD", "CANCELLED"))
            ledger.close()
            if active == 0 or runs >= 40:
                break
            time.sleep(20)  # like the daemon's next tick: confirmations show in search after 2 min
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        spapi = requests.get(sandbox.env["MFN_SANDBOX_SPAPI"] + "/_sandbox/state", timeout=30).json()
    finally:
        sandbox.stop()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    accepted = [datetime.fromisoformat(p["firstAcceptedAt"].replace("Z", "+00:00"))
                for pkgs in spapi["confirmations"].values() for p in pkgs.values()]
    window = (max(accepted) - min(accepted)).total_seconds() if len(accepted) > 1 else 0.0
    verified = counts.get(OrderState.VERIFIED.value, 0)
    handled = sum(counts.values())
    confirm_ceiling = DEFAULT_QUOTAS["confirmShipment"][0]
    verify_ceiling = DEFAULT_QUOTAS["getOrder"][0]
    confirm_rate = (len(accepted) - 1) / window if window else 0.0
    report = {
        "orders_seeded": args.orders, "orders_in_ledger": handled, "states": counts,
        "daemon_runs": runs, "wall_seconds": round(wall, 1),
        "confirmations": len(accepted), "confirmation_window_seconds": round(window, 1),
        "confirmed_per_second": round(confirm_rate, 3),
        "confirm_ceiling_per_second": confirm_ceiling,
        "confirm_ratio": round(confirm_rate / confirm_ceiling, 3),
        "verified_per_second": round(verified / wall, 3),
        "verify_ceiling_per_second": verify_ceiling,
        "verify_ratio": round(verified / wall / verify_ceiling, 3),
        "daemon_cpu_seconds": round(cpu, 2),
        "daemon_cpu_ms_per_order": round(cpu * 1000 / max(handled, 1), 2),
        "workers": args.workers,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"backlog-{args.orders}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"\nconfirmed {report['confirmed_per_second']}/s against the {confirm_ceiling}/s confirmShipment "
          f"ceiling (ratio {report['confirm_ratio']}); verified {report['verified_per_second']}/s against "
          f"the {verify_ceiling}/s getOrder ceiling (ratio {report['verify_ratio']}); daemon CPU "
          f"{report['daemon_cpu_ms_per_order']} ms per order")


if __name__ == "__main__":
    main()
