"""A month in the sandbox: the real daemon against the emulators, on a simulated clock.

``mfn-connector sandbox simulate --days 30`` starts every emulator with a daily order stream
(``orders_per_day`` per seller account), then runs the daemon's passes every ``step_hours`` of
simulated time, moving the emulators' clocks and the daemon's (:mod:`connector.clock`) forward
together between passes. Parcels live their lives on the emulators' clocks (first scans,
deliveries, and the configured share that is late, lost, returned or never scanned); a share of
buyers cancel just after their label is bought, so labels get voided. After ``days`` the order
stream stops and the clock runs on for ``settle_days`` so parcels finish and the PII retention
windows pass. Then it reports what a seller is judged by (see :func:`figures`).

Everything lives under its own directory (ledger, labels, key, emulator state), never the
configuration's ``state_dir``, and the run refuses any endpoint that is not on loopback.
"""
from __future__ import annotations

import hashlib
import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import yaml

from .. import clock
from ..config import Config
from ..configured import load_config_with_plugins
from ..engine.alerts import AlertKind
from ..engine.loop import Engine
from ..engine.purge import life_end
from ..engine.runtime import Runtime, build_runtime
from ..engine.vtr import report, shipped_packages
from ..files import write_atomically
from ..hookspecs import hookimpl
from ..ledger import OrderState, PackageState
from ..model import utcnow
from ..plugins import PluginHost
from .loopback import refuse_remote_endpoints
from .runner import Sandbox, start_sandbox

log = logging.getLogger("connector.simulate")

HOUR = 3600.0


@dataclass(frozen=True)
class SimulationSettings:
    days: int = 30                 # days of the order stream
    settle_days: int = 45          # then the clock runs on without new orders
    orders_per_day: int = 10       # per seller account
    step_hours: float = 6.0        # simulated time between two daemon passes
    buyer_cancel_share: float = 0.03  # of labelled orders, cancelled by the buyer at once


class BuyerCancels:
    """A plugin of the simulation: right after a label is bought, a fixed share of buyers cancel
    the order on Amazon (the emulator's control endpoint), so the daemon must void the label."""

    def __init__(self, spapi_url: str, share: float, seed: int) -> None:
        self.url, self.share, self.seed = spapi_url.rstrip("/"), share, seed
        self.session = requests.Session()
        self.session.trust_env = False  # loopback: never through a proxy
        self.outcomes: Counter[str] = Counter()

    def picks(self, order_id: str) -> bool:
        digest = hashlib.sha256(f"{self.seed}:{order_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2 ** 32 < self.share

    @hookimpl
    def mfn_package_labeled(self, order_id, package):
        if not self.picks(order_id):
            return
        answer = self.session.post(f"{self.url}/_sandbox/orders/{order_id}/cancel",
                                   json={"reason": "simulation: buyer changed their mind"}, timeout=10)
        # 409: the label's purchase already confirmed the order (Buy Shipping); Amazon keeps it
        self.outcomes["cancelled" if answer.status_code == 200 else f"refused_{answer.status_code}"] += 1


def run_simulation(config: Config, host: PluginHost, settings: SimulationSettings, directory: Path, *,
                   progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the simulation in ``directory`` (emptied first: only one that is empty or an earlier
    simulation's, see :func:`clear_for_simulation`) and return :func:`figures`."""
    # a production file passed by mistake: refused before the directory is made or an emulator
    # starts (the live emulators' addresses, exported below, are loopback)
    refuse_remote_endpoints(config, "the simulation")
    clear_for_simulation(directory, config)
    derived = _derived_config(config, settings, directory)
    base, _ = load_config_with_plugins(str(derived), host)
    sandbox = start_sandbox(base, host, base_port=0, state_dir=directory / "sandbox")
    started = time.monotonic()
    clock.reset()
    try:
        sandbox.export_env()
        config, _ = load_config_with_plugins(str(derived), host)
        cancels = BuyerCancels(sandbox.servers["spapi"].url, settings.buyer_cancel_share, config.sandbox.seed)
        host.register(cancels, name="simulation-buyer-cancels")
        rt = build_runtime(config, host, loopback_only=True)
        try:
            # the stream's orders appear at each day's end and searchOrders shows them two minutes
            # later: passes run ten minutes after the boundaries
            _advance(sandbox, 600)
            start = utcnow()
            engine = Engine(rt)
            step = settings.step_hours * HOUR
            steps = int(round((settings.days + settings.settle_days) * 24 / settings.step_hours))
            stream_steps = int(round(settings.days * 24 / settings.step_hours))
            at_end_of_stream: dict[str, Any] = {}
            for n in range(steps + 1):
                engine.run_pass(ingest=True)
                if n == stream_steps:
                    at_end_of_stream = _vtr(rt, utcnow(), window_days=30)
                    _stop_order_stream(sandbox)
                if n % int(max(1, 24 / settings.step_hours) * 5) == 0:
                    progress(f"day {n * settings.step_hours / 24:5.1f}: {_one_line(rt)}")
                if n < steps:
                    _advance(sandbox, step)
            result = figures(rt, start=start, settings=settings, cancels=cancels)
            result["vtr_at_end_of_stream"] = at_end_of_stream
            result["wall_seconds"] = round(time.monotonic() - started, 1)
            result["directory"] = str(directory)
            return result
        finally:
            rt.close()
            host.pm.unregister(name="simulation-buyer-cancels")
            host.reports.pop("simulation-buyer-cancels", None)
    finally:
        sandbox.stop()
        clock.reset()


def figures(rt: Runtime, *, start: datetime, settings: SimulationSettings, cancels: BuyerCancels
            ) -> dict[str, Any]:
    """What the month did: orders, labels and their cost against the cheapest eligible, voids,
    VTR over the whole run, late and lost parcels, confirmations after ship-by, alerts, and whether
    every buyer's PII went on time."""
    now = utcnow()
    whole_run = math.ceil((now - start).total_seconds() / 86400) + 1
    records = rt.ledger.orders()
    packages = {r.order_id: rt.ledger.packages(r.order_id) for r in records}
    bought = [p for ps in packages.values() for p in ps if p.tracking_number]
    chosen = sum(_amount(p.plan.get("comparable")) for p in bought if p.plan.get("cheapest"))
    cheapest = sum(_amount(p.plan["cheapest"].get("comparable")) for p in bought if p.plan.get("cheapest"))
    alerts = Counter(a.kind for a in rt.ledger.alerts(open_only=False))
    voided = [p for p in bought if p.state is PackageState.VOIDED]
    return {
        "settings": {"days": settings.days, "settle_days": settings.settle_days,
                     "orders_per_day_per_account": settings.orders_per_day, "step_hours": settings.step_hours,
                     "accounts": len(rt.config.accounts), "buyer_cancel_share": settings.buyer_cancel_share},
        "orders": {"total": len(records), "by_state": _tally(r.state.value for r in records),
                   "held_by_reason": _tally(r.hold_reason for r in records if r.state == OrderState.HELD)},
        "labels": {"bought": len(bought),
                   "by_carrier": _tally(p.carrier for p in bought),
                   "comparable_cost": round(chosen, 2), "cheapest_eligible_cost": round(cheapest, 2),
                   "not_the_cheapest": sum(p.plan["cheapest"].get("option") != f"{p.carrier}:{p.service}"
                                           for p in bought if p.plan.get("cheapest")),
                   "currency": rt.fx.base},
        "voids": {"buyer_cancels": dict(cancels.outcomes), "voided": len(voided),
                  "refund": round(sum(_amount(p.refund) for p in voided), 2),
                  "void_refused": sum(r.hold_reason == "void_refused" for r in records)},
        "vtr": _vtr(rt, now, window_days=whole_run),
        "alerts": dict(sorted(alerts.items())),
        "lost_alerts": alerts.get(AlertKind.PARCEL_LOST.value, 0),
        "pii": pii_figures(rt, records, packages, now, grace=timedelta(hours=settings.step_hours)),
    }


def pii_figures(rt: Runtime, records: list, packages: dict, now: datetime, *,
                grace: timedelta) -> dict[str, int]:
    """For every order whose buyer PII had to go by ``now``: gone within ``grace`` (one pass) of its
    deadline, gone late, or still here."""
    retention = timedelta(days=rt.config.ledger.pii_retention_days)
    fallback = timedelta(days=rt.config.ledger.max_transit_days)
    out = Counter({"due": 0, "on_time": 0, "late": 0, "kept_past_due": 0, "not_due_yet": 0})
    for record in records:
        if record.state in (OrderState.CANCELLED, OrderState.VOIDED, OrderState.HELD, OrderState.NEW):
            continue  # cancelled ones go at once; unshipped ones are not judged here
        ends = [end for p in packages[record.order_id] if (end := life_end(p, fallback))]
        if not ends:
            continue
        due = max(ends) + retention
        if due > now:
            out["not_due_yet"] += 1
            continue
        out["due"] += 1
        purged_at = next((h["at"] for h in rt.ledger.history(record.order_id)
                          if h["note"] == "pii purged"), None)
        if purged_at is None:
            out["kept_past_due"] += 1
        elif purged_at <= due + grace:
            out["on_time"] += 1
        else:
            out["late"] += 1
    return dict(out)


# -- helpers --------------------------------------------------------------------------------------


MARKER = ".mfn-simulation"  # in each directory a simulation made: the only kind it will empty


class NotASimulationDirectory(ValueError):
    """The directory given holds files no simulation made (a daemon's state, say)."""


def clear_for_simulation(directory: Path, config: Config) -> None:
    """Make ``directory`` an empty simulation directory. One that holds anything but an earlier
    simulation's files (its marker, or the simulation.yaml an older version left) is refused, and
    so is the configuration's own state_dir: the simulation empties it first, and a live ledger,
    PII key and labels must never go with it."""
    resolved = directory.resolve()
    if resolved == config.state_dir.resolve() or resolved in config.state_dir.resolve().parents:
        raise NotASimulationDirectory(f"{directory} is (or holds) the configuration's state_dir, with "
                                      "the daemon's ledger and labels: give the simulation a directory "
                                      "of its own")
    if directory.exists():
        entries = list(directory.iterdir())
        ours = (directory / MARKER).exists() or (directory / "simulation.yaml").exists()
        if entries and not ours:
            names = ", ".join(sorted(e.name for e in entries)[:5])
            raise NotASimulationDirectory(f"{directory} holds files no simulation made ({names}): the "
                                          "simulation empties its directory first; give it a new or empty "
                                          "one")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by mfn-connector sandbox simulate; emptied by its next run\n",
                                    encoding="utf-8")


def _derived_config(config: Config, settings: SimulationSettings, directory: Path) -> Path:
    """The configuration file with the simulation's own state and order stream, next to its state."""
    data = yaml.safe_load(config.path.read_text(encoding="utf-8"))
    data["state_dir"] = str(directory)
    data["catalog"] = str(config.catalog_path)
    data.pop("labels_dir", None)
    ledger = data.setdefault("ledger", {})
    for key in ("url", "pii_key_file"):
        ledger.pop(key, None)
    ledger["create_pii_key"] = True
    sandbox = data.setdefault("sandbox", {})
    sandbox["orders"] = 0
    sandbox.setdefault("emulators", {}).setdefault("spapi", {})["orders_per_day"] = settings.orders_per_day
    path = directory / "simulation.yaml"
    # (as private as the configuration it copies: its credentials may be written out in it)
    return write_atomically(path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode("utf-8"))


def _advance(sandbox: Sandbox, seconds: float) -> None:
    """Move every emulator's clock and the daemon's by the same amount."""
    session = requests.Session()
    session.trust_env = False
    for server in sandbox.servers.values():
        answer = session.post(f"{server.url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=30)
        answer.raise_for_status()
    clock.advance(seconds)


def _stop_order_stream(sandbox: Sandbox) -> None:
    emulator = sandbox.servers["spapi"].emulator
    with emulator.lock:
        emulator.orders_per_day = 0


def _vtr(rt: Runtime, now: datetime, *, window_days: float) -> dict[str, Any]:
    return report(shipped_packages(rt, since=now - timedelta(days=window_days)), now=now,
                  window_days=window_days, first_scan_days=rt.config.tracking.first_scan_days)


def _one_line(rt: Runtime) -> str:
    counts = rt.ledger.counts()
    return ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))


def _tally(values: Any) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _amount(money: Any) -> float:
    return float(money["amount"]) if isinstance(money, dict) and money.get("amount") is not None else 0.0
