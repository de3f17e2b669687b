"""A carrier's tracking text may quote the buyer: a last-mile scan signed for by the addressee, a
location with the delivery postcode. Those texts are stored in plain, shown by `orders show` and to
a `read` token, and kept after the address is purged, so the order's personal values are taken out
before they are stored, as from any other text of a carrier's."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector.engine.loop import Engine
from connector.engine.track import apply
from connector.ledger import OrderState, PackageState
from connector.model import TrackingEvent, TrackingInfo, TrackingStatus, utcnow

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_tracking_events_are_stored_without_the_buyers_name_and_postcode(world):
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = next(p for r in rt.ledger.orders([OrderState.VERIFIED])
                       for p in rt.ledger.packages(r.order_id) if p.state is PackageState.VERIFIED)
        buyer = rt.ledger.get_order(package.order_id).order.ship_to
        assert buyer.name and buyer.postal_code
        now = utcnow()
        events = (TrackingEvent(now - timedelta(days=2), TrackingStatus.ACCEPTED, "Accepted at origin",
                                location="SHENZHEN"),
                  TrackingEvent(now - timedelta(hours=1), TrackingStatus.DELIVERED,
                                f"Delivered, signed for by {buyer.name.upper()}",
                                location=f"{buyer.city} {buyer.postal_code}",
                                description_en=f"Delivered, signed for by {buyer.name}"))

        apply(rt, package, TrackingInfo(package.tracking_number, TrackingStatus.DELIVERED, events), now)

        stored = rt.ledger.tracking_events(package.id)
        delivered = next(e for e in stored if e.status == TrackingStatus.DELIVERED.value)
        accepted = next(e for e in stored if e.status == TrackingStatus.ACCEPTED.value)
        texts = " | ".join((delivered.description, delivered.description_en, delivered.location))
        assert buyer.name not in texts and buyer.name.upper() not in texts
        assert buyer.postal_code not in texts
        assert delivered.description == "Delivered, signed for by ***"
        assert (accepted.description, accepted.location) == ("Accepted at origin", "SHENZHEN")
    finally:
        rt.close()
