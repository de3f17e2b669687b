"""A label bought for an ERP and handed to it unconfirmed (ISSUED) is followed like a verified
one: when its carrier never scans it, it is declared LOST after ``tracking.first_scan_days`` and
raises ``parcel_lost``, as a verified parcel does -- before, it stayed ISSUED for good, silently."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector.engine.loop import Engine
from connector.engine.track import apply
from connector.ledger import OrderState, PackageState
from connector.model import TrackingInfo, TrackingStatus

from ..e2e.helpers import a_verified_parcel

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_an_issued_label_never_scanned_turns_lost_and_alerts(world):
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        verified = a_verified_parcel(rt)
        issued = rt.ledger.advance(verified, PackageState.VERIFIED, PackageState.ISSUED,
                                   order_state=OrderState.ISSUED)
        handover = issued.shipped_at
        nothing = TrackingInfo(issued.tracking_number, TrackingStatus.UNKNOWN)
        days = rt.config.tracking.first_scan_days

        assert not apply(rt, issued, nothing, handover + timedelta(days=days - 1))
        assert rt.ledger.get_package(issued.id).state is PackageState.ISSUED

        assert apply(rt, rt.ledger.get_package(issued.id), nothing, handover + timedelta(days=days + 1))
        lost = rt.ledger.get_package(issued.id)
        assert lost.state is PackageState.LOST
        assert ("parcel_lost", lost.order_id) in {(a.kind, a.subject) for a in rt.ledger.alerts()}
    finally:
        rt.close()
