"""Confirmations are verified in bulk from pages of shipped orders; getOrder reads only stragglers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connector import clock
from connector.amazon.mapping import parse_api_time
from connector.engine.loop import Engine
from connector.engine.verify import (
    SWEEP_CHECK,
    SWEEP_MARGIN,
    SWEEP_PAGE,
    SWEEP_PATIENCE,
    next_read_at,
)
from connector.ledger import OrderState

from ..e2e.helpers import advance

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]

GRACE = 900  # seconds before getOrder reads a straggler


def calls(w, operation: str) -> int:
    return w.state("spapi")["operation_calls"].get(operation, {}).get("total", 0)


def states(rt) -> dict[str, int]:
    return rt.ledger.counts()


BEFORE_CONFIRMED = (OrderState.NEW, OrderState.PLANNED, OrderState.LABEL_CLAIMED, OrderState.LABELED,
                    OrderState.CONFIRMING)


def confirm_everything(engine: Engine) -> None:
    """Passes until every order that can ship is confirmed (a label may take a second pass)."""
    engine.run_pass()
    for _ in range(5):
        if not engine.rt.ledger.orders(BEFORE_CONFIRMED):
            return
        engine.run_pass(ingest=False)
    raise AssertionError(f"still not confirmed: {engine.rt.ledger.counts()}")


def backlog_world(world, carrier: str = "yunexpress", **spapi_options):
    # A direct carrier, so every label is confirmed through confirmShipment and read back.
    return world({"sandbox": {"orders": 25, "emulators": {"spapi": spapi_options}},
                  "routing": {"default": [f"{carrier}:*"]}, "selection": {"overrides": []},
                  "engine": {"verify_grace_seconds": GRACE}})


def no_lag_world(world, extra: dict | None = None, **spapi_options):
    """backlog_world's, with searchOrders showing a change at once on both sides."""
    spapi = {"search_lag_seconds": 0, **spapi_options}
    return world({"sandbox": {"orders": 25, "emulators": {"spapi": spapi}},
                  "routing": {"default": ["yunexpress:*"]}, "selection": {"overrides": []},
                  "amazon": {"search_lag_seconds": 0}, "engine": {"verify_grace_seconds": GRACE},
                  **(extra or {})})


def test_a_backlog_of_confirmations_is_verified_from_a_page_per_account(world):
    w = backlog_world(world)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        confirm_everything(engine)
        confirmed = states(rt).get(OrderState.CONFIRMED.value, 0)
        assert confirmed >= 30, states(rt)
        assert calls(w, "getOrder") == 0
        searches = calls(w, "searchOrders")

        engine.run_pass(ingest=False)  # too fresh for searchOrders to show: nothing read
        assert calls(w, "searchOrders") == searches

        advance(w, 180)  # Amazon's searchOrders shows changes at least two minutes old
        engine.run_pass(ingest=False)
        counts = states(rt)
        assert counts.get(OrderState.CONFIRMED.value, 0) == 0, counts
        assert counts[OrderState.VERIFIED.value] >= confirmed
        assert calls(w, "getOrder") == 0  # not one order read back one by one
        assert calls(w, "searchOrders") - searches <= len(rt.config.accounts)  # one page per account

        advance(w, SWEEP_CHECK.total_seconds())
        engine.run_pass(ingest=False)  # nothing pending: no read at all
        assert calls(w, "searchOrders") - searches <= len(rt.config.accounts)
        assert w.state("spapi")["schema_violations"] == []
    finally:
        rt.close()


@pytest.mark.parametrize("carrier", ["yunexpress", "amazon_shipping"])  # sent, or confirmed by the label
def test_a_confirmation_leaves_its_order_resting_until_the_grace_is_over(world, carrier):
    """The rest is set with the confirmation itself: no further step, and no write of its own, only
    to find the grace not over yet."""
    w = backlog_world(world, carrier)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        snoozed: list[str] = []
        real_snooze = rt.ledger.snooze
        rt.ledger.snooze = lambda order_id, until: (snoozed.append(order_id), real_snooze(order_id, until))
        engine.run_pass()  # each order driven once, as far as it goes: up to its confirmation
        assert states(rt).get(OrderState.CONFIRMED.value, 0) >= 20 and snoozed == []
        rt.ledger.snooze = real_snooze
        confirm_everything(engine)
        confirmed = rt.ledger.orders([OrderState.CONFIRMED])
        assert len(confirmed) >= 30
        for record in confirmed:
            package = rt.ledger.open_package(record.order_id)
            assert record.next_attempt_at == package.updated_at + timedelta(seconds=GRACE)
            assert record.attempts == 0
        assert rt.ledger.orders([OrderState.CONFIRMED], due_before=clock.now()) == []
    finally:
        rt.close()


def test_only_stragglers_are_read_back_with_get_order(world):
    # Amazon drops some confirmations after answering 204: no page of shipped orders shows them.
    w = backlog_world(world, silent_drop_rate=0.2)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        confirm_everything(engine)
        confirmed = states(rt).get(OrderState.CONFIRMED.value, 0)
        advance(w, 180)
        engine.run_pass(ingest=False)
        stragglers = states(rt).get(OrderState.CONFIRMED.value, 0)
        dropped = w.state("spapi")["silent_drops"]
        assert 0 < stragglers == dropped < confirmed / 2
        assert calls(w, "getOrder") == 0  # within the grace period

        advance(w, GRACE)
        engine.run_pass(ingest=False)
        assert calls(w, "getOrder") == stragglers  # one read per straggler, none for the rest
    finally:
        rt.close()


def test_a_read_starts_where_the_last_complete_one_ended_by_amazons_clock(world):
    """Stragglers keep an account pending: the next read asks only for what changed since the
    ``lastUpdatedBefore`` Amazon gave the last complete read, not the whole backlog again."""
    w = backlog_world(world, silent_drop_rate=0.2)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        confirm_everything(engine)
        client = rt.amazon[rt.config.accounts[0].name]
        reads: list[tuple] = []  # (lastUpdatedAfter asked, lastUpdatedBefore answered)
        real = client.search_orders_pages

        def spy(**kwargs):
            for page in real(**kwargs):
                reads.append((kwargs["last_updated_after"], page.get("lastUpdatedBefore")))
                yield page

        client.search_orders_pages = spy
        advance(w, 180)
        engine.run_pass(ingest=False)
        assert states(rt).get(OrderState.CONFIRMED.value, 0) > 0  # the dropped ones
        assert len(reads) == 1
        advance(w, SWEEP_CHECK.total_seconds() + 1)
        engine.run_pass(ingest=False)
        assert len(reads) == 2
        first_before = reads[0][1]
        assert first_before and reads[1][0] == parse_api_time(first_before)
    finally:
        rt.close()


def test_a_read_waits_until_it_is_worth_a_page():
    lag = timedelta(minutes=2)  # amazon.search_lag_seconds' default
    t0 = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    second = timedelta(seconds=1)
    # every pending confirmation shows two minutes after it was sent: one read gets them all
    assert next_read_at([t0, t0 + 5 * second], lag) == t0 + 5 * second + lag
    # confirmations keep coming: the oldest waits at most SWEEP_PATIENCE more for a fuller page
    trickle = [t0 + n * 30 * second for n in range(10)]
    assert next_read_at(trickle, lag) == t0 + SWEEP_PATIENCE + lag
    # a backlog: read as soon as a full page shows
    backlog = [t0 + n * second / 2 for n in range(SWEEP_PAGE + 50)]
    assert next_read_at(backlog, lag) == backlog[SWEEP_PAGE - 1] + lag


def lag_world(world, *, assumed: float, amazon: float):
    """A backlog world whose daemon assumes searchOrders shows a change ``assumed`` seconds after
    it, and whose emulated Amazon shows it after ``amazon`` seconds."""
    return world({"sandbox": {"orders": 25, "emulators": {"spapi": {"search_lag_seconds": amazon}}},
                  "routing": {"default": ["yunexpress:*"]}, "selection": {"overrides": []},
                  "amazon": {"search_lag_seconds": assumed},
                  "engine": {"verify_grace_seconds": GRACE}})


def test_where_searchorders_shows_changes_at_once_a_backlog_is_verified_at_once(world):
    w = lag_world(world, assumed=0, amazon=0)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        confirm_everything(engine)
        advance(w, SWEEP_CHECK.total_seconds() + 1)  # the next read may come (not two minutes)
        engine.run_pass(ingest=False)
        counts = states(rt)
        assert OrderState.CONFIRMED.value not in counts and counts[OrderState.VERIFIED.value] >= 30, counts
        assert calls(w, "getOrder") == 0
    finally:
        rt.close()


def test_a_lag_assumed_too_short_spends_a_read_but_skips_no_order(world):
    """Amazon lags two minutes where the daemon assumed none: the early reads show nothing, the
    confirmations stay pending (not stragglers) and a later read verifies every one."""
    w = lag_world(world, assumed=0, amazon=120)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        client = rt.amazon[rt.config.accounts[0].name]
        reads: list[object] = []
        real = client.search_orders_pages
        client.search_orders_pages = lambda **kwargs: (reads.append(kwargs), real(**kwargs))[1]
        confirm_everything(engine)
        engine.run_pass(ingest=False)
        assert reads  # read as soon as confirmations were pending, as assumed, but in vain:
        counts = states(rt)
        assert OrderState.VERIFIED.value not in counts and counts[OrderState.CONFIRMED.value] >= 30
        advance(w, 180)
        engine.run_pass(ingest=False)
        counts = states(rt)
        assert OrderState.CONFIRMED.value not in counts and counts[OrderState.VERIFIED.value] >= 30, counts
        assert calls(w, "getOrder") == 0  # no confirmation was taken for a straggler
    finally:
        rt.close()


def test_with_no_lag_stragglers_alone_spend_no_more_reads(world):
    """Every pending confirmation was in a complete read, beyond the margin for the two clocks
    (Amazon dropped them): there is nothing a new page could show, whatever the lag, until a new
    confirmation comes."""
    w = no_lag_world(world, silent_drop_rate=0.2)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        confirm_everything(engine)
        advance(w, SWEEP_CHECK.total_seconds() + 1)
        engine.run_pass(ingest=False)
        stragglers = states(rt).get(OrderState.CONFIRMED.value, 0)
        assert 0 < stragglers == w.state("spapi")["silent_drops"]
        # within the clock margin they are read again; past it, a complete read covers them
        advance(w, SWEEP_MARGIN.total_seconds() + SWEEP_CHECK.total_seconds())
        engine.run_pass(ingest=False)
        searches = calls(w, "searchOrders")
        for _ in range(3):
            advance(w, SWEEP_CHECK.total_seconds() + 1)
            engine.run_pass(ingest=False)
        assert calls(w, "searchOrders") == searches
        assert states(rt).get(OrderState.CONFIRMED.value, 0) == stragglers and calls(w, "getOrder") == 0
    finally:
        rt.close()


def test_a_package_amazon_files_under_another_carrier_is_verified_with_an_alert_the_next_clears(world):
    """Amazon shows the confirmation under "Other" (its list no longer knows the code sent): the
    order is verified -- it did ship -- but its tracking does not count towards the valid-tracking
    rate, so a person is told, once per site and code; a package filed under the code sent clears
    it, in a later run too."""
    from connector.engine.verify import verify_if_shown
    from connector.ledger import PackageState

    w = backlog_world(world)
    rt = w.runtime()
    try:
        confirm_everything(Engine(rt))
        by_site: dict[str, list] = {}
        for record in rt.ledger.orders([OrderState.CONFIRMED]):
            by_site.setdefault(record.order.site, []).append(record)
        first, second, third = max(by_site.values(), key=len)[:3]  # one site's
        for record in (first, second):
            raw = rt.amazon[record.order.account].get_order(record.order_id)
            for package in raw["packages"]:
                package["carrier"] = "Other"
            assert verify_if_shown(rt, raw, rt.ledger.open_package(record.order_id), PackageState.CONFIRMED)
        (raised,) = [a for a in rt.ledger.alerts() if a.kind == "carrier_filed_differently"]
        assert rt.ledger.get_order(first.order_id).state is OrderState.VERIFIED
        # each package records how Amazon filed it (not valid tracking), the alert or not
        assert [rt.ledger.packages(r.order_id)[-1].filed_as for r in (first, second)] == ["Other", "Other"]
    finally:
        rt.close()
    sent = raised.details["carrier_code"]
    assert raised.subject == f"{first.order.site}:{sent}" and raised.details["filed_as"] == "Other"
    assert f"under 'Other' (order {first.order_id})" in raised.message  # raised once: by the first
    assert f"site_rules.{first.order.site}.carrier_codes" in raised.message
    rt = w.runtime()  # a later run: the alert is still open
    try:
        raw = rt.amazon[third.order.account].get_order(third.order_id)
        assert verify_if_shown(rt, raw, rt.ledger.open_package(third.order_id), PackageState.CONFIRMED)
        still_open = [a for a in rt.ledger.alerts() if a.kind == "carrier_filed_differently"]
        filed_as_sent = rt.ledger.packages(third.order_id)[-1]
    finally:
        rt.close()
    assert still_open == []
    assert filed_as_sent.state is PackageState.VERIFIED and filed_as_sent.filed_as is None


def test_a_code_misspelt_in_the_site_rules_is_filed_as_other_and_alerted_end_to_end(world):
    """The operator's site rules spell YunExpress without its space; Amazon's list (the emulator's
    own, given apart from the daemon's) does not know that code, so it answers 204 and files the
    packages as "Other", as sellers have seen. Nothing refuses: the read-back alone notices, and
    must raise the alert."""
    from connector.sandbox.spapi import site_carrier_codes

    amazons_list = {site: sorted(codes) for site, codes in site_carrier_codes().items()}
    assert "Yun Express" in amazons_list["US"] and "YunExpress" not in amazons_list["US"]
    misspelt = {"US": {"carrier_codes": {"YunExpress": [], "Yun Express": None}}}
    w = no_lag_world(world, {"site_rules": misspelt}, carrier_codes=amazons_list)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        confirm_everything(engine)
        advance(w, SWEEP_MARGIN.total_seconds() + SWEEP_CHECK.total_seconds())
        engine.run_pass(ingest=False)
        us = [r for r in rt.ledger.orders([OrderState.VERIFIED]) if r.order.site == "US"]
        alerts = [a for a in rt.ledger.alerts() if a.kind == "carrier_filed_differently"]
    finally:
        rt.close()
    filed = w.state("spapi")["confirmations"]
    assert us and {c["carrierCode"] for r in us for c in filed[r.order_id].values()} == {"YunExpress"}
    (alert,) = [a for a in alerts if a.subject == "US:YunExpress"]
    assert alert.details["filed_as"] == "Other" and "site_rules.US.carrier_codes" in alert.message


def test_a_filing_alert_raised_by_one_worker_is_cleared_by_another(world, monkeypatch):
    """Each worker keeps what it knows of the open alerts in memory, read again from the ledger
    every few minutes: a worker that read them before another raised one still clears it."""
    from connector.engine.alerts import KnownOpen
    from connector.engine.verify import verify_if_shown
    from connector.ledger import PackageState

    monkeypatch.setattr(KnownOpen, "REFRESH_S", 0.0)  # "a few minutes later", at once
    w = backlog_world(world)
    a, b = w.runtime(), w.runtime()  # two workers on one ledger
    try:
        confirm_everything(Engine(a))
        by_site: dict[str, list] = {}
        for record in a.ledger.orders([OrderState.CONFIRMED]):
            by_site.setdefault(record.order.site, []).append(record)
        first, second, third = max(by_site.values(), key=len)[:3]

        def verify(rt, record, filed_as=None):
            raw = rt.amazon[record.order.account].get_order(record.order_id)
            for package in raw["packages"] if filed_as else []:
                package["carrier"] = filed_as
            assert verify_if_shown(rt, raw, rt.ledger.open_package(record.order_id), PackageState.CONFIRMED)
            return [x.subject for x in rt.ledger.alerts() if x.kind == "carrier_filed_differently"]

        assert verify(a, first) == []  # a reads the open alerts: none
        assert len(verify(b, second, filed_as="Other")) == 1
        assert verify(a, third) == []  # a's next look at the ledger finds b's alert and clears it
    finally:
        a.close()
        b.close()


def test_a_feed_report_read_minutes_after_amazon_applied_it_is_verified_in_bulk(world):
    """Amazon applies a feed's lines while it processes the feed; the report that makes them
    CONFIRMED here may be read minutes later (a daemon stopped meanwhile; a feed of thousands of
    lines). A read from the confirmation would start after Amazon's change: every one of them would
    be a straggler for getOrder. It reads from the feed's claim instead."""
    from ..e2e.helpers import feeds_config

    config = feeds_config(25, batch_wait_seconds=0)
    config["engine"]["verify_grace_seconds"] = GRACE
    w = world(config)
    rt = w.runtime()
    try:
        engine = Engine(rt)
        engine.run_pass()
        for _ in range(6):  # labels bought, then claimed for feeds (Amazon applies them at once)
            if rt.ledger.orders([OrderState.CONFIRMING]) and not rt.ledger.orders([OrderState.LABELED]):
                break
            engine.run_pass(ingest=False)
        assert w.state("spapi")["feeds"]
        advance(w, 300)  # the reports are read five minutes after the feeds were processed
        for _ in range(20):
            engine.run_pass(ingest=False)
            if not rt.ledger.orders([OrderState.CONFIRMING, OrderState.LABELED]):
                break
            advance(w, 1)
        # (a report read at a later pass than another: the pass between may verify the earlier ones)
        confirmed = sum(states(rt).get(s.value, 0) for s in (OrderState.CONFIRMED, OrderState.VERIFIED))
        assert confirmed >= 20, states(rt)
        advance(w, 180)  # old enough for searchOrders to show, within the grace
        for _ in range(5):  # (a read cut short to spare the poll's tokens goes on at the next look)
            engine.run_pass(ingest=False)
            if not rt.ledger.orders([OrderState.CONFIRMED]):
                break
            advance(w, 11)
        counts = states(rt)
        assert OrderState.CONFIRMED.value not in counts and counts[OrderState.VERIFIED.value] >= confirmed
        assert calls(w, "getOrder") == 0
    finally:
        rt.close()
