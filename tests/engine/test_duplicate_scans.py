"""A carrier that lists the same scan twice in one answer (some repeat an event when their systems
sync, or page over it) has it stored once (the ledger's unique key), and counted once: the scan
count is what the valid-tracking report measures a parcel's tracking level by ("fully tracked"
needs two scans), so one scan counted twice would pass for two."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector.engine.loop import Engine
from connector.engine.track import apply
from connector.model import TrackingEvent, TrackingInfo, TrackingStatus, utcnow

from ..e2e.helpers import a_verified_parcel

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_a_scan_listed_twice_is_counted_once(world):
    rt = world({"sandbox": {"orders": 4}}).runtime()
    try:
        Engine(rt).run_until_quiet()
        package = a_verified_parcel(rt)
        now = utcnow()
        accepted = TrackingEvent(now - timedelta(days=1), TrackingStatus.ACCEPTED, "accepted", "Shenzhen",
                                 "A1")
        delivered = TrackingEvent(now - timedelta(hours=2), TrackingStatus.DELIVERED, "delivered", "", "D1")
        apply(rt, package, TrackingInfo(package.tracking_number, TrackingStatus.DELIVERED,
                                        (accepted, delivered, delivered)), now)

        done = rt.ledger.get_package(package.id)
        stored = [e for e in rt.ledger.tracking_events(package.id) if e.status not in ("pending", "unknown")]
        assert len(stored) == 2
        assert done.scans == 2
    finally:
        rt.close()
