"""A package Amazon's read-back shows under another carrier than the code sent ("Other": a code its
list no longer knows) is verified, and records how Amazon filed it (``Package.filed_as``): Amazon
does not count such tracking as valid, so neither does the valid-tracking rate (engine/vtr.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector import clock
from connector.engine.loop import Engine
from connector.engine.verify import verify_if_shown
from connector.engine.vtr import report, shipped_packages
from connector.ledger import OrderState, PackageState

from .test_bulk_verify import backlog_world, confirm_everything

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_a_package_filed_as_other_is_not_valid_tracking(world):
    w = backlog_world(world)
    rt = w.runtime()
    try:
        confirm_everything(Engine(rt))
        record = rt.ledger.orders([OrderState.CONFIRMED])[0]
        raw = rt.amazon[record.order.account].get_order(record.order_id)
        for package in raw["packages"]:
            package["carrier"] = "Other"
        package = rt.ledger.open_package(record.order_id)
        assert verify_if_shown(rt, raw, package, PackageState.CONFIRMED)
        package = rt.ledger.open_package(record.order_id) or rt.ledger.packages(record.order_id)[-1]
        assert package.state is PackageState.VERIFIED and package.filed_as == "Other"
        (verified,) = [h for h in rt.ledger.history(record.order_id)
                       if h["package_id"] == package.id and h["to"] == PackageState.VERIFIED.value]
        assert verified["note"] == f"package {package.package_ref}; set filed_as"  # in the same write
        assert [a.details["filed_as"] for a in rt.ledger.alerts()
                if a.kind == "carrier_filed_differently"] == ["Other"]
        now = clock.now()
        rt.ledger.advance(package, PackageState.VERIFIED, PackageState.IN_TRANSIT,
                          order_state=OrderState.IN_TRANSIT, scans=2, first_scan_at=now, last_scan_at=now)
        later = now + timedelta(days=40)
        lines = [p for p in shipped_packages(rt, since=later - timedelta(days=30))
                 if p.order_id == record.order_id]
        figures = report(lines, now=later, window_days=30, first_scan_days=7)
        (site,) = figures["sites"]
        assert site["packages"] == 1 and site["valid"] == 0, site  # Amazon: 'Other' is not valid
    finally:
        rt.close()
