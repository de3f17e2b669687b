"""A parcel that never arrives is followed ``tracking.max_days`` after handover, then no more: its
``parcel_lost`` and ``parcel_late`` alerts, which only tracking closed (a scan, a delivery), and
which no command acknowledges, stayed open for good. The watch closes them once tracking has given
the parcel up; the parcel stays LOST, and the alert is kept in the history (``report alerts --all``)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector.engine.loop import Engine
from connector.engine.track import apply
from connector.engine.watch import parcel_guard
from connector.ledger import PackageState
from connector.model import TrackingInfo, TrackingStatus

from ..e2e.helpers import a_verified_parcel

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_the_alerts_of_a_parcel_given_up_by_tracking_close(world):
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = a_verified_parcel(rt)
        handover = package.shipped_at
        settings = rt.config.tracking
        nothing = TrackingInfo(package.tracking_number, TrackingStatus.UNKNOWN)
        assert apply(rt, package, nothing, handover + timedelta(days=settings.first_scan_days + 1))
        rt.ledger.raise_alert("parcel_late", package.order_id, "late", {})
        open_of = lambda: {a.kind for a in rt.ledger.alerts() if a.subject == package.order_id}  # noqa: E731
        assert open_of() == {"parcel_lost", "parcel_late"}

        parcel_guard(rt, now=handover + timedelta(days=settings.max_days - 1))  # still followed
        assert open_of() == {"parcel_lost", "parcel_late"}

        parcel_guard(rt, now=handover + timedelta(days=settings.max_days + 1))  # given up
        assert open_of() == set()
        assert rt.ledger.get_package(package.id).state is PackageState.LOST
        assert {a.kind for a in rt.ledger.alerts(open_only=False) if a.subject == package.order_id} == {
            "parcel_lost", "parcel_late"}
    finally:
        rt.close()
