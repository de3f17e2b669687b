"""Benchmark: peak day -- ``--orders`` orders (10,000) before ship-by, confirmed through feeds.

The goal is ten times the confirmShipment ceiling (2/s), i.e. 20 confirmations per second, which
only bulk confirmation through the Feeds API can reach. One seller; the emulators run in this
process with Amazon's published quotas for confirmShipment, getOrder and the Feeds operations
(as the emulator declares them), except searchOrders, lifted: a peak's orders arrive through the
day, and the figure is about confirming them, not about reading 100 pages at once. The daemon
confirms by feed (``amazon.feeds.mode: always``: the figure is what feeds carry, not when ``auto``
turns to them); the emulator keeps a feed queued ``FEED_QUEUE_SECONDS`` and processing
``FEED_PROCESSING_SECONDS`` (Amazon takes minutes; the delay only shifts the curve). The daemon
runs as ``mfn-connector run`` until no order waits for its confirmation (each confirmed, held or
cancelled); the figure is orders confirmed / seconds from the daemon's start -- labels included,
as on a real peak day.

Reports "not available" until the Feeds client (``connector.amazon.feeds``) and the
``amazon.feeds`` setting exist.

    .venv/bin/python bench/peak.py --orders 2000
"""
from __future__ import annotations

import argparse
import importlib.util
import json
from typing import Any

from common import (
    CLI,
    Child,
    Sandbox,
    Unavailable,
    bench_config,
    merchant_backlog,
    open_bench_ledger,
    watch,
    workdir,
)
from results import AT_LEAST, Figure, unavailable

GOAL = 20.0                     # confirmations per second: 10x confirmShipment's 2/s
FEED_QUEUE_SECONDS = 5          # the emulator's feed IN_QUEUE, then IN_PROGRESS for
FEED_PROCESSING_SECONDS = 30    # this long (Amazon takes minutes; the delay only shifts the curve)
CONFIRMED = ("CONFIRMED", "VERIFIED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED", "DELIVERY_FAILED",
             "RETURNING", "RETURNED", "LOST")
WAITING = ("NEW", "PLANNED", "LABEL_CLAIMED", "LABELED", "CONFIRMING")  # not confirmed yet
TITLE = "peak: 10,000 orders before ship-by, confirmations per second through feeds"


def feeds_settings() -> Any:
    """The ``amazon.feeds`` section the bench sets; Unavailable while there is none."""
    if importlib.util.find_spec("connector.amazon.feeds") is None:
        raise Unavailable("no Feeds API client yet (connector/amazon/feeds.py)")
    from connector.config import AmazonSettings

    schema = AmazonSettings.SCHEMA.get("properties", {}).get("feeds")
    if schema is None:
        raise Unavailable("the configuration has no amazon.feeds setting yet")
    if schema.get("type") == "boolean":
        return True
    properties = schema.get("properties", {})
    if "always" in properties.get("mode", {}).get("enum", ()):
        return {"mode": "always"}  # the figure is what feeds can carry, not when `auto` turns to them
    return {"enabled": True} if "enabled" in properties else {}


def _configure(feeds: Any) -> Any:
    def extra(data: dict[str, Any]) -> None:
        data["amazon"]["feeds"] = feeds
        data["amazon"]["quotas"]["searchOrders"] = {"rate": 1000, "burst": 1000}
        spapi = data["sandbox"].setdefault("emulators", {}).setdefault("spapi", {})
        spapi["feeds"] = {"in_queue_seconds": FEED_QUEUE_SECONDS,
                          "processing_seconds": FEED_PROCESSING_SECONDS}
    return extra


def measure(orders: int = 10_000, *, cap_factor: float = 1.0) -> list[Figure]:
    """Stop at ``cap_factor`` x the time the goal allows: by then the rate is what it is."""
    title = TITLE if orders == 10_000 else TITLE.replace("10,000", f"{orders:,}")
    try:
        feeds = feeds_settings()
    except Unavailable as exc:
        return [unavailable("peak_feed_rate", title, GOAL, AT_LEAST, "/s", str(exc))]
    directory = workdir("peak")
    config_path = bench_config(directory, orders=orders, extra=_configure(feeds))
    with Sandbox(config_path) as sandbox:
        expected = merchant_backlog(sandbox)
        cap = max(120.0, cap_factor * expected / GOAL)
        ledger = open_bench_ledger(config_path)
        daemon = Child([*CLI, "--config", str(config_path), "run"], env=sandbox.env)
        counts: dict[str, int] = {}

        def confirmed_all() -> bool:
            counts.clear()
            counts.update(ledger.counts())
            return sum(counts.values()) >= expected and not any(counts.get(s) for s in WAITING)

        try:
            seconds = watch([daemon], confirmed_all, cap=cap, every=1.0)
        finally:
            usage = daemon.stop()
            ledger.close()
        throttled = sandbox.throttled() or {}
        single = sandbox.calls("confirmShipment")
        feeds_created = sandbox.calls("createFeed")
    confirmed = sum(counts.get(s, 0) for s in CONFIRMED)
    wall = cap if seconds is None else seconds
    return [Figure("peak_feed_rate", title, GOAL, AT_LEAST, "/s", round(confirmed / wall, 2),
                   how=f"{orders:,} seeded orders ({expected:,} to ship), one seller, production quotas but "
                       f"searchOrders, feeds always, the emulator's feeds queued {FEED_QUEUE_SECONDS} s and "
                       f"processed in {FEED_PROCESSING_SECONDS} s; "
                       f"{confirmed:,} confirmed in {wall:.0f} s from the daemon's start"
                       + (" (stopped at the cap)" if seconds is None else "")
                       + f"; {feeds_created} createFeed and {single} confirmShipment calls, "
                       f"{sum(throttled.values())} 429s; daemon CPU {usage.cpu:.0f} s, peak RSS "
                       f"{usage.maxrss_mb:.0f} MB.",
                   details={"states": dict(counts), "throttled": throttled, "seconds": round(wall, 1)})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    args = parser.parse_args()
    for figure in measure(args.orders):
        print(json.dumps(figure.to_json(), indent=2, default=str))


if __name__ == "__main__":
    main()
