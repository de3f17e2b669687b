"""A void claimed while the package's feed is with Amazon, and the feed settled meanwhile: what the
report said of the package is kept, so the label refused its void is read back as the feed left it,
never confirmed a second time."""
from __future__ import annotations

import pytest

from connector.engine import feeds as feeds_mod
from connector.engine.loop import drive
from connector.engine.steer import NotAllowed, release_order, void_order
from connector.kit.carrier import PermanentCarrierError
from connector.ledger import OrderState, PackageState

from ..e2e.helpers import advance
from .labelled import CancelFails
from .test_feed_faults import labeled_world, next_report

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def _void_refused_after_its_feed_confirmed_it(w, rt) -> str:
    """Drive one fed package through a void the carrier refuses once Amazon accepted its feed
    line; the order is released (as the hold's message says: the daemon verifies it) and its id
    returned."""
    feeds_mod.run_feeds(rt)
    feed = rt.ledger.feeds("demo-na")[0]
    assert feed.state == "SUBMITTED"
    package = rt.ledger.get_package(rt.ledger.feed_members(feed.id)[0].package_id)
    order_id = package.order_id
    carrier = rt.carriers["yunexpress"] = CancelFails(rt.carriers["yunexpress"])  # a timeout first

    assert not void_order(rt, order_id).complete  # claimed; the carrier did not answer
    assert rt.ledger.get_package(package.id).state is PackageState.VOIDING
    next_report(w, rt)  # the feed's report: its line for this order was accepted
    assert rt.ledger.get_feed_record(feed.id).state == "DONE"
    assert order_id in w.state("spapi")["feed_shipments"]

    carrier.error = PermanentCarrierError("parcel already scanned")
    with pytest.raises(NotAllowed):
        void_order(rt, order_id)
    record = rt.ledger.get_order(order_id)
    assert (record.state, record.hold_reason) == (OrderState.HELD, "void_refused")
    release_order(rt.ledger, order_id)
    return order_id


def test_a_label_whose_void_is_refused_after_its_feed_confirmed_it_is_not_confirmed_again(world):
    w, rt = labeled_world(world)
    try:
        order_id = _void_refused_after_its_feed_confirmed_it(w, rt)
        drive(rt, order_id, lambda: False)

        assert order_id not in w.state("spapi")["confirmations"], "confirmed again by confirmShipment"
        record = rt.ledger.get_order(order_id)
        assert record.state is OrderState.VERIFIED, (record.state, record.hold_reason, record.hold_message)
    finally:
        rt.close()


class NotShownYet:
    """Amazon's client, its getOrder answering as Amazon does for a while after a feed: the order
    without the feed's package yet."""

    def __init__(self, client):
        self.client, self.lagging = client, True

    def get_order(self, order_id, *args, **kwargs):
        order = self.client.get_order(order_id, *args, **kwargs)
        return {**order, "packages": []} if self.lagging and order else order

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_a_fed_label_whose_void_is_refused_waits_for_its_feed_line_to_show_not_confirmed_again(world):
    w, rt = labeled_world(world)
    try:
        order_id = _void_refused_after_its_feed_confirmed_it(w, rt)
        client = rt.amazon["demo-na"] = NotShownYet(rt.amazon["demo-na"])
        drive(rt, order_id, lambda: False)  # Amazon does not show the feed's line yet

        assert order_id not in w.state("spapi")["confirmations"], "confirmed again by confirmShipment"
        package = rt.ledger.packages(order_id)[-1]
        assert package.state is PackageState.CONFIRMED, package.state  # the verify step reads it back
        assert package.confirmed_at is not None

        client.lagging = False  # Amazon shows it now: verified at the next read-back
        advance(w, 3600)
        drive(rt, order_id, lambda: False)
        record = rt.ledger.get_order(order_id)
        assert record.state is OrderState.VERIFIED, (record.state, record.hold_reason, record.hold_message)
        assert order_id not in w.state("spapi")["confirmations"]
    finally:
        rt.close()


def test_a_label_whose_void_is_refused_after_its_feed_went_fatal_is_confirmed_by_confirmshipment(world):
    """A FATAL feed applied none of its lines: its package's outcome is unknown, not accepted.
    Once the void is refused, the package is sent by confirmShipment now, not taken as confirmed
    at the feed's time (and left for the read-backs to find missing, the ship-by running)."""
    w, rt = labeled_world(world)
    try:
        w.sandbox.servers["spapi"].emulator.feeds.store["fatal_left"] = 1
        feeds_mod.run_feeds(rt)
        feed = rt.ledger.feeds("demo-na")[0]
        package = rt.ledger.get_package(rt.ledger.feed_members(feed.id)[0].package_id)
        order_id = package.order_id
        carrier = rt.carriers["yunexpress"] = CancelFails(rt.carriers["yunexpress"])
        assert not void_order(rt, order_id).complete
        next_report(w, rt)  # FATAL: nothing applied
        assert rt.ledger.get_feed_record(feed.id).state != "SUBMITTED"
        assert order_id not in w.state("spapi")["feed_shipments"]
        carrier.error = PermanentCarrierError("parcel already scanned")
        with pytest.raises(NotAllowed):
            void_order(rt, order_id)
        release_order(rt.ledger, order_id)
        drive(rt, order_id, lambda: False)

        assert order_id in w.state("spapi")["confirmations"], (
            "taken as confirmed by a FATAL feed that applied nothing",
            [(p.state, p.confirmed_at) for p in rt.ledger.packages(order_id)])
    finally:
        rt.close()
