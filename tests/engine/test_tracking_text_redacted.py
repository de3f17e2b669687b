"""A carrier's tracking text may quote the buyer: a last-mile scan signed for by the addressee, a
location with the delivery postcode. Those texts are stored in plain, shown by `orders show` and to
a `read` token, and kept after the address is purged, so the order's personal values are taken out
before they are stored, as from any other text of a carrier's."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector.engine.loop import Engine
from connector.engine.track import apply
from connector.ledger import PackageState
from connector.model import TrackingEvent, TrackingInfo, TrackingStatus, utcnow

from ..e2e.helpers import a_verified_parcel

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def test_tracking_events_are_stored_without_the_buyers_name_and_postcode(world):
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = a_verified_parcel(rt)
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


def test_a_parcel_still_followed_after_its_buyers_address_is_gone_stores_no_free_text(world):
    """A parcel still in transit at the purge's fallback (ship date + ledger.max_transit_days + the
    retention, which may come before tracking.max_days ends) is followed on, but its buyer's
    address is gone: nothing is left to take out of a later scan that names who signed for it.
    Its events are stored with their status, code and time, without the carrier's texts."""
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = a_verified_parcel(rt)
        buyer = rt.ledger.get_order(package.order_id).order.ship_to
        assert buyer.name and buyer.postal_code
        now = utcnow()
        accepted = TrackingEvent(now - timedelta(days=2), TrackingStatus.ACCEPTED, "Accepted at origin",
                                 location="SHENZHEN")
        apply(rt, package, TrackingInfo(package.tracking_number, TrackingStatus.IN_TRANSIT, (accepted,)), now)
        package = rt.ledger.get_package(package.id)
        assert rt.ledger.purge_pii([package.order_id]) == 1
        events = (accepted, TrackingEvent(now - timedelta(hours=1), TrackingStatus.DELIVERED,
                                f"Delivered, signed for by {buyer.name.upper()}", code="D1",
                                location=f"{buyer.city} {buyer.postal_code}",
                                description_en=f"Delivered, signed for by {buyer.name}"),)

        apply(rt, package, TrackingInfo(package.tracking_number, TrackingStatus.DELIVERED, events), now)

        (delivered,) = [e for e in rt.ledger.tracking_events(package.id)
                        if e.status == TrackingStatus.DELIVERED.value]
        texts = " | ".join((delivered.description, delivered.description_en, delivered.location))
        assert buyer.name not in texts and buyer.name.upper() not in texts
        assert buyer.postal_code not in texts
        assert delivered.code == "D1"
        stored = rt.ledger.tracking_events(package.id)  # an event stored before is not stored again
        ours = {TrackingStatus.ACCEPTED.value, TrackingStatus.DELIVERED.value}
        assert [(e.status, e.description, e.location) for e in stored if e.status in ours] == [
            (TrackingStatus.ACCEPTED.value, "Accepted at origin", "SHENZHEN"),
            (TrackingStatus.DELIVERED.value, "", "")]
        assert rt.ledger.get_package(package.id).state is PackageState.DELIVERED
    finally:
        rt.close()


@pytest.mark.parametrize("fails", ["the parcel", "the call"])
def test_a_carriers_tracking_error_is_logged_without_the_buyers_data(world, monkeypatch, caplog, fails):
    """A carrier's tracking error may quote the recipient as its scans do (a parcel refused by
    the addressee, a postcode it cannot route): the line logged of it has the address taken out."""
    import logging

    from connector.engine.track import TrackResult, _poll

    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        package = a_verified_parcel(rt)
        buyer = rt.ledger.get_order(package.order_id).order.ship_to
        assert buyer.name and buyer.postal_code
        said = f"refused by {buyer.name.upper()}, {buyer.postal_code}: returned"

        def track(numbers):
            if fails == "the call":
                raise RuntimeError(said)
            return [TrackingInfo(n, TrackingStatus.UNKNOWN, error=said) for n in numbers]

        carrier = rt.carriers[package.carrier]
        monkeypatch.setattr(carrier, "track", track)
        with caplog.at_level(logging.INFO, logger="connector"):
            _poll(rt, carrier, rt.carrier_specs[package.carrier], [package], utcnow(), TrackResult())
        assert "returned" in caplog.text
        assert buyer.name.upper() not in caplog.text and buyer.postal_code not in caplog.text
    finally:
        rt.close()
