"""The ledger's feeds: one claim per package (a feed or a single confirmation, never both), and a
feed settled in one transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.fernet import Fernet

from connector.ledger import OrderState, PackageState, StaleStateError
from connector.ledger.crypto import PiiCipher
from connector.ledger.feeds import FeedOutcome

from .test_sqlite_ledger import planned

SHIP = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)


@pytest.fixture
def ledger(make_store):
    return make_store(PiiCipher([Fernet.generate_key()]))


def labeled(ledger, order_id: str):
    package = planned(ledger, order_id)
    package = ledger.advance(
        package, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED
    )
    return ledger.advance(
        package,
        PackageState.LABEL_CLAIMED,
        PackageState.LABELED,
        OrderState.LABELED,
        tracking_number=f"YT{order_id[-7:]}",
    )


def test_a_feed_claim_and_a_single_claim_exclude_each_other(ledger):
    a, b, c = (labeled(ledger, f"111-0000000-000000{n}") for n in (1, 2, 3))
    # the single path claims b first
    ledger.advance(b, PackageState.LABELED, PackageState.CONFIRMING, OrderState.CONFIRMING)
    feed_row, members = ledger.claim_feed(
        "acme",
        "POST_FLAT_FILE_FULFILLMENT_DATA",
        ["ATVPDKIKX0DER"],
        [(a, 1), (b, 1), (c, 2)],
        shipped_at=SHIP,
    )
    assert [m.package_id for m in members] == [a.id, c.id]
    assert [(m.first_row, m.last_row) for m in members] == [(1, 1), (2, 3)]
    assert ledger.get_feed_record(feed_row).rows_total == 3
    assert ledger.in_open_feed(a.id) and ledger.in_open_feed(c.id) and not ledger.in_open_feed(b.id)
    claimed = ledger.get_package(a.id)
    assert (
        claimed.state is PackageState.CONFIRMING
        and claimed.shipped_at == SHIP
        and claimed.confirm_attempts == 1
    )
    assert ledger.get_order(a.order_id).state is OrderState.CONFIRMING
    # ... and the single path cannot claim what the feed holds
    with pytest.raises(StaleStateError):
        ledger.advance(a, PackageState.LABELED, PackageState.CONFIRMING, OrderState.CONFIRMING)
    # a second feed finds nothing left to claim
    assert ledger.claim_feed(
        "acme", "POST_FLAT_FILE_FULFILLMENT_DATA", ["ATVPDKIKX0DER"], [(a, 1), (c, 2)], shipped_at=SHIP
    ) == (0, [])
    assert [f.id for f in ledger.feeds("acme")] == [feed_row]


def test_settling_moves_every_member_in_one_go_and_only_once(ledger):
    a, b, c, d = (labeled(ledger, f"111-0000000-000001{n}") for n in range(4))
    feed_row, _ = ledger.claim_feed(
        "acme",
        "POST_FLAT_FILE_FULFILLMENT_DATA",
        ["ATVPDKIKX0DER"],
        [(p, 1) for p in (a, b, c, d)],
        shipped_at=SHIP,
    )
    ledger.feed_uploaded(feed_row, "doc-1")
    ledger.feed_submitted(feed_row, "50001")
    with pytest.raises(StaleStateError):
        ledger.feed_submitted(feed_row, "50002")
    counts = ledger.settle_feed(
        feed_row,
        [
            FeedOutcome(a.id, "accepted"),
            FeedOutcome(
                b.id, "rejected", "record 2: 18028 incomplete", "amazon_rejected", "refused in feed 50001"
            ),
            FeedOutcome(c.id, "retry", "record 3: transient"),
        ],
        processing_status="DONE",
        summary="DONE",
    )
    assert counts == {"accepted": 1, "rejected": 1, "retry": 1, "unknown": 1}  # d: not in the report
    assert ledger.get_package(a.id).state is PackageState.CONFIRMED and ledger.get_package(a.id).confirmed_at
    assert ledger.get_order(a.order_id).state is OrderState.CONFIRMED
    held = ledger.get_order(b.order_id)
    assert (
        held.state is OrderState.HELD
        and held.hold_reason == "amazon_rejected"
        and held.held_from is OrderState.LABELED
    )
    assert ledger.get_package(b.id).state is PackageState.LABELED
    assert ledger.get_order(c.order_id).state is OrderState.LABELED
    assert ledger.get_package(d.id).state is PackageState.CONFIRMED
    assert (
        ledger.confirmed_by_feed(a.id)
        and ledger.confirmed_by_feed(d.id)
        and not ledger.confirmed_by_feed(b.id)
    )
    assert not any(ledger.in_open_feed(p.id) for p in (a, b, c, d))
    record = ledger.get_feed_record(feed_row)
    assert (record.state, record.feed_id, record.rows_accepted, record.rows_rejected) == (
        "DONE",
        "50001",
        1,
        1,
    )
    assert ledger.settle_feed(feed_row, [FeedOutcome(a.id, "rejected")]) == {}  # settled once
    assert ledger.feeds("acme", open_only=True) == []


def test_orders_confirmed_by_a_feed_rest_for_the_verify_grace_the_others_are_due_at_once(ledger):
    """Their verify step would only wait out the grace (the bulk reads verify them meanwhile), so
    they are not due before it is over; a package sent back to LABELED is due at once."""
    a, b = (labeled(ledger, f"111-0000000-000002{n}") for n in range(2))
    feed_row, _ = ledger.claim_feed(
        "acme", "POST_FLAT_FILE_FULFILLMENT_DATA", ["ATVPDKIKX0DER"], [(a, 1), (b, 1)], shipped_at=SHIP
    )
    ledger.settle_feed(
        feed_row,
        [FeedOutcome(a.id, "accepted"), FeedOutcome(b.id, "retry", "record 2: transient")],
        confirmed_rests_for=timedelta(minutes=5),
    )
    now = datetime.now(timezone.utc)
    both = [OrderState.CONFIRMED, OrderState.LABELED]
    due_now = [k.order_id for k in ledger.schedule(both, due_before=now)]
    assert due_now == [b.order_id]
    later = ledger.schedule([OrderState.CONFIRMED], due_before=now + timedelta(minutes=6))
    assert [k.order_id for k in later] == [a.order_id]


def test_a_feeds_members_rest_from_the_claim_until_the_feed_ends(ledger):
    """Claimed with a rest, a member's order is not due while its feed is open (looking at it would
    only find the feed still open); the feed's end makes each member due at once."""
    a, b = (labeled(ledger, f"111-0000000-000003{n}") for n in range(2))
    claimed = datetime.now(timezone.utc)
    feed_row, _ = ledger.claim_feed("acme", "POST_FLAT_FILE_FULFILLMENT_DATA", ["ATVPDKIKX0DER"],
                                    [(a, 1), (b, 1)], shipped_at=SHIP, members_rest=timedelta(minutes=10))
    confirming = [OrderState.CONFIRMING]
    assert ledger.schedule(confirming, due_before=claimed + timedelta(minutes=9)) == []
    later = ledger.schedule(confirming, due_before=claimed + timedelta(minutes=11))
    assert sorted(k.order_id for k in later) == [a.order_id, b.order_id]
    ledger.settle_feed(feed_row, [FeedOutcome(a.id, "retry", "record 1: transient"),
                                  FeedOutcome(b.id, "rejected", "record 2: no such order item",
                                                          "amazon_rejected", "refused in the feed")])
    due = ledger.schedule([OrderState.LABELED], due_before=datetime.now(timezone.utc))
    assert [k.order_id for k in due] == [a.order_id]  # b is held: a hold is never due
    assert ledger.get_order(b.order_id).state is OrderState.HELD


def test_a_parked_order_waits_until_its_time_and_a_state_change_wakes_it(ledger):
    """LABELED orders waiting for a feed and CONFIRMING ones a feed holds are parked (not due);
    other states are not touched; the next state change clears the park."""
    a, b = (labeled(ledger, f"111-0000000-000000{n}") for n in (1, 2))
    ledger.claim_feed("acme", "POST_FLAT_FILE_FULFILLMENT_DATA", ["ATVPDKIKX0DER"], [(b, 1)], shipped_at=SHIP)
    planned_only = planned(ledger, "111-0000000-0000009")
    now = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    later = datetime(2026, 3, 1, 9, 1, tzinfo=timezone.utc)
    for order_id in (a.order_id, b.order_id, planned_only.order_id):
        ledger.park_for_feed(order_id, later)
    states = [OrderState.LABELED, OrderState.CONFIRMING, OrderState.PLANNED]
    due = {k.order_id for k in ledger.schedule(states, due_before=now)}
    assert due == {planned_only.order_id}  # the two feed orders wait; PLANNED was not parked
    ledger.advance(ledger.get_package(b.id), PackageState.CONFIRMING, PackageState.CONFIRMED,
                   OrderState.CONFIRMED)
    assert b.order_id in {k.order_id for k in ledger.schedule([OrderState.CONFIRMED], due_before=now)}


def test_a_package_moved_or_held_before_submission_leaves_the_feed_and_the_rows_close_up(ledger):
    a, b, c, d = (labeled(ledger, f"111-0000000-000003{n}") for n in range(4))
    feed_row, _ = ledger.claim_feed(
        "acme", "POST_FLAT_FILE_FULFILLMENT_DATA", ["ATVPDKIKX0DER"], [(a, 1), (b, 2), (c, 1), (d, 2)],
        shipped_at=SHIP,
    )
    ledger.advance(ledger.get_package(a.id), PackageState.CONFIRMING, PackageState.VOIDING)  # a void
    ledger.hold(b.order_id, "manual", "do not ship")
    assert ledger.leave_out_of_feed(feed_row, result="retry") == {"skipped": 1, "retry": 1}
    assert ledger.get_package(b.id).state is PackageState.LABELED and not ledger.in_open_feed(b.id)
    record = ledger.get_order(b.order_id)
    assert (record.state, record.hold_reason, record.held_from) == (
        OrderState.HELD, "manual", OrderState.LABELED)
    assert ledger.get_package(a.id).state is PackageState.VOIDING
    left = [(m.package_id, m.first_row, m.last_row) for m in ledger.feed_members(feed_row) if not m.result]
    assert left == [(c.id, 1, 1), (d.id, 2, 3)]
    assert ledger.get_feed_record(feed_row).rows_total == 3
    assert ledger.leave_out_of_feed(feed_row, result="retry") == {}  # nothing more to leave out
    # a feed submitted is left as it is; one no package is left in ends FAILED
    ledger.hold(c.order_id, "manual", "do not ship")
    ledger.feed_uploaded(feed_row, "doc-1")
    ledger.feed_submitted(feed_row, "50001")
    assert ledger.leave_out_of_feed(feed_row, result="retry") == {}
    other, _ = ledger.claim_feed("acme", "POST_FLAT_FILE_FULFILLMENT_DATA", ["ATVPDKIKX0DER"],
                                 [(labeled(ledger, "111-0000000-0000040"), 1)], shipped_at=SHIP)
    ledger.feed_uploaded(other, "doc-2")
    ledger.hold("111-0000000-0000040", "manual", "do not ship")
    assert ledger.leave_out_of_feed(other, result="unknown") == {"unknown": 1}
    assert ledger.get_feed_record(other).state == "FAILED"
    assert ledger.get_package(ledger.feed_members(other)[0].package_id).state is PackageState.CONFIRMED
    assert [f.id for f in ledger.feeds("acme", open_only=True)] == [feed_row]


def test_a_refused_line_keeps_the_hold_an_order_has_and_adds_to_its_message(ledger):
    """An operator's hold placed while the package sat in the feed is not replaced by
    amazon_rejected (a release of every amazon_rejected order must not end it)."""
    a = labeled(ledger, "111-0000000-0000050")
    feed_row, _ = ledger.claim_feed(
        "acme", "POST_FLAT_FILE_FULFILLMENT_DATA", ["ATVPDKIKX0DER"], [(a, 1)], shipped_at=SHIP
    )
    ledger.hold(a.order_id, "manual", "fraud check: do not ship")
    ledger.feed_uploaded(feed_row, "doc-1")
    ledger.feed_submitted(feed_row, "50001")
    outcome = FeedOutcome(a.id, "rejected", "record 1: 18028", "amazon_rejected", "refused in 50001")
    assert ledger.settle_feed(feed_row, [outcome]) == {"rejected": 1}
    record = ledger.get_order(a.order_id)
    assert (record.state, record.hold_reason, record.held_from) == (
        OrderState.HELD, "manual", OrderState.LABELED)
    assert record.hold_message == "fraud check: do not ship; amazon_rejected: refused in 50001"
    assert ledger.get_package(a.id).state is PackageState.LABELED


def test_a_buyers_cancel_request_before_submission_takes_the_package_out_of_the_feed(ledger):
    """A feed can never carry an order whose buyer asked to cancel (the single path holds it), and
    a request that arrives while the feed waits to be (re)submitted takes its package out too."""
    a, b = (labeled(ledger, f"111-0000000-000006{n}") for n in range(2))
    feed_row, _ = ledger.claim_feed(
        "acme", "POST_FLAT_FILE_FULFILLMENT_DATA", ["ATVPDKIKX0DER"], [(a, 1), (b, 1)], shipped_at=SHIP
    )
    order = ledger.get_order(b.order_id).order
    ledger.upsert_order(replace(order, buyer_cancel_requested=True,
                                last_updated=order.last_updated + timedelta(minutes=5)))
    assert ledger.leave_out_of_feed(feed_row, result="retry") == {"retry": 1}
    assert ledger.get_package(b.id).state is PackageState.LABELED and not ledger.in_open_feed(b.id)
    assert ledger.get_order(b.order_id).state is OrderState.LABELED  # confirm() holds it next
    left = [(m.package_id, m.first_row, m.last_row) for m in ledger.feed_members(feed_row) if not m.result]
    assert left == [(a.id, 1, 1)]
