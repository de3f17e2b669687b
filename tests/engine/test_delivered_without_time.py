"""A carrier whose overall status says DELIVERED while none of its events does: the parcel ends
DELIVERED at its newest scan (its tracking stops there), so its buyer's address goes
``pii_retention_days`` later like any delivered parcel's -- before, it had no delivery time and
was never purged. (A ledger that stored such a parcel already: tests/ledger/test_large_ledger.py.)"""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector.engine.loop import Engine
from connector.engine.purge import purge_expired_pii
from connector.engine.track import apply
from connector.ledger import PackageState
from connector.model import TrackingEvent, TrackingInfo, TrackingStatus, utcnow

from ..e2e.helpers import a_verified_parcel

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_delivered_by_the_overall_status_ends_at_the_newest_scan_and_its_address_goes(world):
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = a_verified_parcel(rt)
        now = utcnow()
        newest = now - timedelta(days=3)
        events = (TrackingEvent(newest - timedelta(days=2), TrackingStatus.ACCEPTED, "accepted"),
                  TrackingEvent(newest, TrackingStatus.OUT_FOR_DELIVERY, "out for delivery"))

        said = TrackingInfo(package.tracking_number, TrackingStatus.DELIVERED, events)  # no delivered event
        assert apply(rt, package, said, now)

        done = rt.ledger.get_package(package.id)
        assert done.state is PackageState.DELIVERED and done.next_track_at is None  # followed no more
        assert done.delivered_at == newest and done.last_scan_at == newest
        retention = timedelta(days=rt.config.ledger.pii_retention_days)
        purge_expired_pii(rt, now=newest + retention - timedelta(hours=1))
        assert not rt.ledger.get_order(package.order_id).pii_purged
        purge_expired_pii(rt, now=newest + retention + timedelta(hours=1))
        assert rt.ledger.get_order(package.order_id).pii_purged
    finally:
        rt.close()
