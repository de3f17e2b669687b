"""Feeds that go wrong between the claim and the report, against the emulator: a package that
must no longer be confirmed is never sent, and no feed's trouble leaves its packages (or the
account's other orders) waiting for ever."""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest

from connector.amazon.errors import AuthError, TransientError
from connector.amazon.feeds import FeedsClient
from connector.engine import feeds as feeds_mod
from connector.engine.loop import drive
from connector.engine.outcome import Outcome
from connector.engine.steer import hold_order, void_order
from connector.ledger import OrderState, PackageState
from connector.model import utcnow

from ..e2e.helpers import advance, feeds_config, ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def labeled_world(world, orders: int = 40, engine: dict | None = None, **feeds):
    """A world confirming by feed at once, its shippable orders LABELED."""
    config = feeds_config(orders)
    config["amazon"]["feeds"].update(batch_wait_seconds=0, **feeds)
    config["engine"].update(engine or {})
    w = world(config)
    rt = w.runtime()
    ingest_all(rt)
    for record in rt.ledger.orders([OrderState.NEW]):
        drive(rt, record.order_id, lambda: False)
    return w, rt


def next_report(w, rt) -> None:
    """The emulator's feeds done, and the next feeds pass polls them at once."""
    advance(w, 5)
    feeds_mod._state(rt).checked.clear()
    feeds_mod.run_feeds(rt)


def failing(monkeypatch, operation: str, error: Exception) -> list[bool]:
    """FeedsClient.<operation> raises ``error`` while the returned flag is set."""
    real = getattr(FeedsClient, operation)
    fail = [True]

    def call(self, *args, **kwargs):
        if fail[0]:
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FeedsClient, operation, call)
    return fail


def claimed_not_uploaded(monkeypatch, rt):
    """A feed claimed whose document could not be created (a 503): it waits, CLAIMED, for the next pass."""
    fail = failing(monkeypatch, "create_feed_document",
                   TransientError("HTTP 503", status=503, operation="createFeedDocument"))
    feeds_mod.run_feeds(rt)
    fail[0] = False
    feed = rt.ledger.feeds("demo-na")[0]
    assert feed.state == "CLAIMED"
    return feed


def test_a_package_voided_or_held_before_its_feed_is_submitted_is_left_out_of_it(world, monkeypatch):
    w, rt = labeled_world(world)
    try:
        fail = failing(monkeypatch, "create_feed_document",
                       TransientError("HTTP 503", status=503, operation="createFeedDocument"))
        feeds_mod.run_feeds(rt)
        feed = rt.ledger.feeds("demo-na")[0]
        assert feed.state == "CLAIMED"
        members = rt.ledger.feed_members(feed.id)
        voided = rt.ledger.get_package(members[0].package_id)
        held = rt.ledger.get_package(members[1].package_id)
        assert void_order(rt, voided.order_id).complete
        hold_order(rt.ledger, held.order_id, "manual", "fraud check: do not ship")
        fail[0] = False
        feeds_mod._state(rt).checked.clear()  # poll_seconds later
        feeds_mod.run_feeds(rt)  # submitted again, without those two
        next_report(w, rt)

        feed = rt.ledger.get_feed_record(feed.id)
        assert feed.state == "DONE"
        assert feed.rows_total == sum(len(rt.ledger.get_package(m.package_id).items) for m in members[2:])
        shipments = w.state("spapi")["feed_shipments"]
        assert voided.order_id not in shipments and held.order_id not in shipments
        results = {m.package_id: m.result for m in rt.ledger.feed_members(feed.id)}
        assert results[voided.id] == "skipped" and results[held.id] == "retry"
        assert {results[m.package_id] for m in members[2:]} == {"accepted"}
        assert all(rt.ledger.get_package(m.package_id).order_id in shipments for m in members[2:])
        assert rt.ledger.get_package(voided.id).state is PackageState.VOIDED
        record = rt.ledger.get_order(held.order_id)
        assert (record.state, record.hold_reason, record.held_from) == (
            OrderState.HELD, "manual", OrderState.LABELED)
        assert rt.ledger.get_package(held.id).state is PackageState.LABELED
    finally:
        rt.close()


def test_a_feeds_members_are_not_looked_at_until_the_feed_ends(world):
    """Claimed for a feed, the orders rest (the feed's end wakes them): a look while the feed is
    open finds it open and rests the order again, for as long; the feed's end moves them all."""
    w, rt = labeled_world(world)
    try:
        feeds_mod.run_feeds(rt)
        members = [r.order_id for r in rt.ledger.orders([OrderState.CONFIRMING])]
        assert members and rt.ledger.feeds("demo-na", open_only=True)
        almost = utcnow() + feeds_mod.IN_FEED_REST - timedelta(seconds=5)
        assert rt.ledger.schedule([OrderState.CONFIRMING], due_before=almost) == []
        assert drive(rt, members[0], lambda: False, 1) is Outcome.REST  # looked at anyway
        assert rt.ledger.get_order(members[0]).next_attempt_at > utcnow() + feeds_mod.IN_FEED_REST \
            - timedelta(seconds=5)
        assert members[0] not in w.state("spapi")["confirmations"]
        next_report(w, rt)  # settles the feed (and may claim the next marketplace's orders)
        assert {rt.ledger.get_order(o).state for o in members}.isdisjoint({OrderState.CONFIRMING})
    finally:
        rt.close()


def test_a_worker_holding_a_package_a_feed_settles_meanwhile_does_not_send_it(world):
    """The feeds thread settles the feed (its line refused: the package LABELED, the order held)
    between an order worker's read of the CONFIRMING package and its in_open_feed() check."""
    w, rt = labeled_world(world)
    try:
        labeled = rt.ledger.orders([OrderState.LABELED])
        w.sandbox.servers["spapi"].emulator.feeds.reject_orders = {
            r.order_id: {"code": "18028", "message": "incomplete"} for r in labeled}
        feeds_mod.run_feeds(rt)
        feed = rt.ledger.feeds("demo-na")[0]
        assert feed.state == "SUBMITTED"
        target = rt.ledger.get_package(rt.ledger.feed_members(feed.id)[0].package_id).order_id
        advance(w, 5)
        feeds_mod._state(rt).checked.clear()
        in_open_feed = rt.ledger.in_open_feed

        def settled_first(package_id):
            rt.ledger.in_open_feed = in_open_feed
            feeds_mod.run_feeds(rt)  # the feeds thread, right now
            return in_open_feed(package_id)

        rt.ledger.in_open_feed = settled_first
        drive(rt, target, lambda: False, 1)  # one step of the order's worker
        assert rt.ledger.in_open_feed == in_open_feed, "the feed was never checked"
        record = rt.ledger.get_order(target)
        assert (record.state, record.hold_reason) == (OrderState.HELD, "amazon_rejected")
        assert rt.ledger.open_package(target).state is PackageState.LABELED
        assert target not in w.state("spapi")["confirmations"]
    finally:
        rt.close()


def test_a_submission_refused_for_good_gives_the_account_back_to_confirm_shipment(world, monkeypatch):
    """createFeedDocument answers 403 every time (no feeds role): once its feed is given up, the
    account starts no feed for a while and its orders are confirmed one by one meanwhile."""
    w, rt = labeled_world(world, max_submit_attempts=2)
    try:
        failing(monkeypatch, "create_feed_document",
                AuthError("Access to requested resource is denied.", status=403, code="Unauthorized"))
        labeled = [r.order_id for r in rt.ledger.orders([OrderState.LABELED])]
        for _ in range(6):  # passes poll_seconds apart
            feeds_mod._state(rt).checked.clear()
            feeds_mod.run_feeds(rt)
            for order_id in labeled:  # the order workers
                rt.ledger.clear_deferral(order_id)
                drive(rt, order_id, lambda: False, 3)
            advance(w, 2)
        feeds = rt.ledger.feeds()
        assert feeds and {f.state for f in feeds} == {"FAILED"}
        assert len(feeds) == len({f.account for f in feeds}), "a new feed was claimed during the pause"
        confirmed = w.state("spapi")["confirmations"]
        assert labeled and all(order_id in confirmed for order_id in labeled)
        assert {rt.ledger.get_order(o).state for o in labeled} <= {OrderState.CONFIRMED, OrderState.VERIFIED}
    finally:
        rt.close()


def test_packages_of_feeds_never_submitted_are_held_after_max_attempts_claims(world, monkeypatch):
    w, rt = labeled_world(world, engine={"max_attempts": 2}, max_submit_attempts=1)
    try:
        failing(monkeypatch, "create_feed_document",
                AuthError("Access to requested resource is denied.", status=403, code="Unauthorized"))
        feeds_mod.run_feeds(rt)  # claimed once, given up: back to LABELED
        [first] = rt.ledger.feeds("demo-na")
        members = [m.package_id for m in rt.ledger.feed_members(first.id)]
        assert {rt.ledger.get_package(p).state for p in members} == {PackageState.LABELED}
        advance(w, 901)  # the account's pause after a give-up is over
        feeds_mod.run_feeds(rt)  # claimed again, given up: held
        for package_id in members:
            package = rt.ledger.get_package(package_id)
            record = rt.ledger.get_order(package.order_id)
            assert package.state is PackageState.LABELED and package.confirm_attempts == 2
            assert (record.state, record.hold_reason) == (OrderState.HELD, "retries_exhausted")
            assert "could not be submitted" in record.hold_message and "403" in record.hold_message
        assert not w.state("spapi")["confirmations"]
    finally:
        rt.close()


def test_a_feed_whose_report_cannot_be_read_holds_up_neither_the_others_nor_its_packages(world, monkeypatch):
    w, rt = labeled_world(world, max_rows=3, max_open_feeds=5, max_read_attempts=3)
    try:
        feeds_mod.run_feeds(rt)
        feeds_mod.run_feeds(rt)
        first, second = rt.ledger.feeds("demo-na")[:2]
        assert (first.state, second.state) == ("SUBMITTED", "SUBMITTED")
        get_feed, get_feed_document = FeedsClient.get_feed, FeedsClient.get_feed_document
        unreadable = set()

        def reading(self, feed_id):
            status = get_feed(self, feed_id)
            if feed_id == first.feed_id and status.get("resultFeedDocumentId"):
                unreadable.add(status["resultFeedDocumentId"])
            return status

        def document(self, document_id):
            if document_id in unreadable:
                raise TransientError("the report is not valid gzip", operation="downloadFeedDocument")
            return get_feed_document(self, document_id)

        monkeypatch.setattr(FeedsClient, "get_feed", reading)
        monkeypatch.setattr(FeedsClient, "get_feed_document", document)
        advance(w, 60)
        feeds_mod._state(rt).checked.clear()
        feeds_mod.run_feeds(rt)
        assert rt.ledger.get_feed_record(first.id).state == "SUBMITTED"  # tried again later
        assert rt.ledger.get_feed_record(second.id).state == "DONE"
        assert len(rt.ledger.feeds("demo-na")) > 2, "no new feed while one could not be read"
        for _ in range(2):
            advance(w, 60)
            feeds_mod._state(rt).checked.clear()
            feeds_mod.run_feeds(rt)
        failed = rt.ledger.get_feed_record(first.id)
        assert failed.state == "FAILED" and "could not be read 3 times" in failed.summary
        members = rt.ledger.feed_members(first.id)
        assert {m.result for m in members} == {"unknown"}
        assert {rt.ledger.get_package(m.package_id).state for m in members} == {PackageState.CONFIRMED}
    finally:
        rt.close()


def test_a_carrier_taken_out_of_the_configuration_counts_as_a_failed_submission(world, monkeypatch, caplog):
    w, rt = labeled_world(world, max_submit_attempts=2)
    try:
        feed = claimed_not_uploaded(monkeypatch, rt)
        members = rt.ledger.feed_members(feed.id)
        carrier = rt.ledger.get_package(members[0].package_id).carrier
        del rt.carrier_specs[carrier]  # the configuration no longer has it (a restart)
        for _ in range(3):  # passes poll_seconds apart
            feeds_mod._state(rt).checked.clear()
            feeds_mod.run_feeds(rt)
            advance(w, 5)
        feed = rt.ledger.get_feed_record(feed.id)
        assert feed.state == "FAILED" and f"carrier {carrier!r}" in feed.summary
        assert {rt.ledger.get_package(m.package_id).state for m in members} == {PackageState.LABELED}
        assert not [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    finally:
        rt.close()


REPORT_OF_NOTHING = (
    b"Feed Processing Summary:\n\tNumber of records processed\t\t0\n\tNumber of records successful\t\t0\n\n"
    b"original-record-number\torder-id\terror-code\terror-type\terror-message\n"
    b"\t\t90001\tError\tThe file header is not valid for POST_FLAT_FILE_FULFILLMENT_DATA.\n")


def test_a_report_that_says_nothing_succeeded_accepts_no_line(world, monkeypatch):
    """An error for no line (the whole file's) and 0 records successful: the lines with no error
    of their own are not accepted but read back from the orders, the report's words kept."""
    w, rt = labeled_world(world)
    try:
        monkeypatch.setattr(FeedsClient, "download", lambda self, document: REPORT_OF_NOTHING)
        feeds_mod.run_feeds(rt)
        next_report(w, rt)
        feed = rt.ledger.feeds("demo-na")[0]
        members = rt.ledger.feed_members(feed.id)
        assert members and {m.result for m in members} == {"unknown"}
        assert all("90001" in m.error and "0 record(s) successful" in m.error for m in members)
        assert feed.rows_accepted == 0
    finally:
        rt.close()


def test_a_report_whose_error_names_another_order_than_its_record_refuses_no_line(world, monkeypatch):
    """The report puts an error on record 1 but names the order of record 2 (its record numbers
    do not count lines as ``first_record_number`` says): it cannot tell which line was refused.
    No order is held for another's refusal and no refused line is taken as accepted: every line
    is read back from the orders."""
    w, rt = labeled_world(world)
    try:
        def download(self, document):
            feed = rt.ledger.feeds("demo-na")[0]
            second = rt.ledger.get_package(rt.ledger.feed_members(feed.id)[1].package_id)
            return (f"Feed Processing Summary:\n\tNumber of records processed\t\t{feed.rows_total}\n"
                    f"\tNumber of records successful\t\t{feed.rows_total - 1}\n\n"
                    "original-record-number\torder-id\terror-code\terror-type\terror-message\n"
                    f"1\t{second.order_id}\t10004\tError\tQuantity exceeds what is left to ship.\n").encode()

        monkeypatch.setattr(FeedsClient, "download", download)
        feeds_mod.run_feeds(rt)
        next_report(w, rt)
        feed = rt.ledger.feeds("demo-na")[0]
        members = rt.ledger.feed_members(feed.id)
        assert len(members) > 2 and {m.result for m in members} == {"unknown"}
        assert all("record 1" in m.error for m in members)
        assert not [r for r in rt.ledger.orders([OrderState.HELD]) if r.hold_reason == "amazon_rejected"]
    finally:
        rt.close()


def test_a_report_with_an_error_past_the_end_of_the_document_accepts_no_line(world, monkeypatch):
    """An error on a record the document does not have (and no summary to count successes): the
    report does not number the lines as configured, so no line is taken as accepted."""
    w, rt = labeled_world(world)
    try:
        def download(self, document):
            feed = rt.ledger.feeds("demo-na")[0]
            return ("original-record-number\terror-code\terror-type\terror-message\n"
                    f"{feed.rows_total + 1}\t10004\tError\tQuantity exceeds what is left to ship.\n").encode()

        monkeypatch.setattr(FeedsClient, "download", download)
        feeds_mod.run_feeds(rt)
        next_report(w, rt)
        feed = rt.ledger.feeds("demo-na")[0]
        members = rt.ledger.feed_members(feed.id)
        assert members and {m.result for m in members} == {"unknown"}
        assert all(f"record {feed.rows_total + 1} is not a line" in m.error for m in members)
    finally:
        rt.close()


def test_a_package_with_more_lines_than_a_feed_holds_is_confirmed_singly(world):
    """``max_rows`` 1: a package of two item lines fits no feed. It is confirmed by confirmShipment
    (not parked for a feed that never takes it), and the packages of one line still go by feed."""
    w, rt = labeled_world(world, orders=120, max_rows=1)
    try:
        advance(w, 60)  # the labels whose tracking number comes later
        for record in rt.ledger.orders([OrderState.LABEL_CLAIMED]):
            rt.ledger.clear_deferral(record.order_id)
            drive(rt, record.order_id, lambda: False, 1)
        labeled = [rt.ledger.open_package(r.order_id) for r in rt.ledger.orders([OrderState.LABELED])]
        wide = [p.order_id for p in labeled if len(p.items) > 1]
        narrow = {p.order_id for p in labeled if len(p.items) == 1}
        assert wide and narrow, "the seeded orders have no package of several lines"
        for _ in range(3):
            feeds_mod.run_feeds(rt)
            for order_id in wide:  # the order workers, as the dispatcher hands them out
                rt.ledger.clear_deferral(order_id)
                drive(rt, order_id, lambda: False, 3)
            next_report(w, rt)
        fed = set(w.state("spapi")["feed_shipments"])
        confirmed = w.state("spapi")["confirmations"]
        assert all(order_id in confirmed and order_id not in fed for order_id in wide)
        assert fed and fed <= narrow
    finally:
        rt.close()


def test_a_void_during_its_feed_s_submission_lands_after_the_feed_is_created(world, monkeypatch):
    """An operator voids a package while the feeds thread uploads its feed's document. The void
    waits for the feed to be created, then goes on as the void of a confirmed label: the ledger
    never says the package was left out of a document that carried it."""
    w, rt = labeled_world(world)
    try:
        upload = FeedsClient.upload
        seen = {}

        def uploading(self, url, document):
            if seen:  # the first feed's upload only
                return upload(self, url, document)
            feed = rt.ledger.feeds("demo-na")[0]
            package = rt.ledger.get_package(rt.ledger.feed_members(feed.id)[0].package_id)
            operator = threading.Thread(target=lambda: seen.update(void=void_order(rt, package.order_id)))
            operator.start()  # the operator's void, on the API's thread, meanwhile: until it ends
            deadline = time.monotonic() + 10  # or waits for the feed (the submission holds it)
            while operator.is_alive() and rt._locks.get(f"feed:{feed.id}", [None, 0])[1] < 2:
                assert time.monotonic() < deadline, "the void neither ended nor waited for the feed"
                time.sleep(0.01)
            seen.update(feed=feed.id, package=package, during=rt.ledger.get_package(package.id).state,
                        operator=operator)
            return upload(self, url, document)

        monkeypatch.setattr(FeedsClient, "upload", uploading)
        feeds_mod.run_feeds(rt)
        seen["operator"].join(10)
        package = seen["package"]
        assert seen["during"] is PackageState.CONFIRMING, "the void landed in the middle of the submission"
        assert seen["void"].complete and rt.ledger.get_package(package.id).state is PackageState.VOIDED
        assert rt.ledger.get_feed_record(seen["feed"]).state == "SUBMITTED"
        assert {m.package_id: m.result for m in rt.ledger.feed_members(seen["feed"])}[package.id] != "skipped"
        next_report(w, rt)
        assert package.order_id in w.state("spapi")["feed_shipments"]  # as the ledger knows
    finally:
        rt.close()


def test_a_label_of_an_order_amazon_cancelled_goes_in_no_feed_and_is_voided(world):
    """A LABELED package whose order Amazon has just cancelled is claimed by no feed (its line
    would only be refused, or the void wait for the feed's lock): its step voids it."""
    from .test_label_claim_recovery import amazon_cancels

    w, rt = labeled_world(world, orders=40)
    try:
        cancelled = next(r.order_id for r in rt.ledger.orders([OrderState.LABELED]))
        amazon_cancels(w, cancelled)
        ingest_all(rt)
        for _ in range(3):
            feeds_mod.run_feeds(rt)
            next_report(w, rt)
        feeds = rt.ledger.feeds(rt.config.accounts[0].name)
        members = {rt.ledger.get_package(m.package_id).order_id for f in feeds
                   for m in rt.ledger.feed_members(f.id)}
        assert members and cancelled not in members  # the others went
        drive(rt, cancelled, lambda: False)
        assert rt.ledger.get_order(cancelled).state is OrderState.VOIDED
    finally:
        rt.close()


def test_a_retry_code_in_a_feed_submitted_again_after_a_lost_answer_is_read_back(world, monkeypatch):
    """The first createFeed went through (its answer lost) and was processed; the feed submitted
    again has its lines refused with a code of ``retry_error_codes``. As any refusal in a feed
    submitted again, that is no proof nothing was applied: the packages are read back (Amazon shows
    them: verified), not given back to be confirmed again."""
    w, rt = labeled_world(world, retry_error_codes=["99999"])
    try:
        real = FeedsClient.create_feed
        lost: list[str] = []

        def answer_lost(self, *args, **kwargs):
            feed_id = real(self, *args, **kwargs)
            if not lost:  # the first createFeed: created on Amazon, its answer lost
                lost.append(feed_id)
                raise TransientError("no answer: ReadTimeout", operation="createFeed", ambiguous=True)
            return feed_id

        monkeypatch.setattr(FeedsClient, "create_feed", answer_lost)
        feeds_mod.run_feeds(rt)
        (twice,) = [f for f in rt.ledger.feeds() if f.state == "UPLOADED"]
        ours = {rt.ledger.get_package(m.package_id).order_id for m in rt.ledger.feed_members(twice.id)}
        advance(w, 5)
        assert w.state("spapi")["feeds"][lost[0]]["processingStatus"] == "DONE"  # its lines applied
        emulator = w.sandbox.servers["spapi"].emulator
        emulator.feeds.reject_orders = {o: {"code": "99999", "message": "try again later"} for o in ours}
        feeds_mod._state(rt).checked.clear()  # poll_seconds later
        feeds_mod.run_feeds(rt)  # submitted again
        twice = rt.ledger.get_feed_record(twice.id)
        assert twice.state == "SUBMITTED" and twice.attempts == 2
        feeds_mod._pause(rt, twice.account)  # the account confirms by confirmShipment for a while
        next_report(w, rt)
        assert {m.result for m in rt.ledger.feed_members(twice.id)} == {"unknown"}
        emulator.feeds.reject_orders = {}
        for order_id in ours:
            rt.ledger.clear_deferral(order_id)
            drive(rt, order_id, lambda: False, 3)
        state = w.state("spapi")
        for order_id in ours:
            record = rt.ledger.get_order(order_id)
            assert record.state is OrderState.VERIFIED, (order_id, record.state, record.hold_message)
            assert order_id not in state["confirmations"], order_id
    finally:
        rt.close()


def test_a_carrier_code_dropped_from_the_sites_list_since_the_claim_is_not_fed(world, monkeypatch):
    """The site's carrier list dropped a claimed package's code before its feed was submitted
    (site_rules corrected against Seller Central, the daemon restarted). Sent anyway, Amazon would
    file the line as "Other" (tracking not counted as valid); the single path holds such an order
    ``carrier_not_accepted`` instead. The submission fails (as for a carrier taken out of the
    configuration): the feed is given up, its packages go back to confirm(), which holds that order."""
    from connector.rules import SiteRulesPatch

    w, rt = labeled_world(world, max_submit_attempts=2)
    try:
        feed = claimed_not_uploaded(monkeypatch, rt)
        package = rt.ledger.get_package(rt.ledger.feed_members(feed.id)[0].package_id)
        site = rt.ledger.get_order(package.order_id).order.site
        code = rt.amazon_carrier_code(package.carrier, site)
        rt.site_rules[site] = SiteRulesPatch(site, carrier_codes={code: None}).apply(rt.site_rules[site])
        feeds_mod.run_feeds(rt)
        next_report(w, rt)
        feed = rt.ledger.get_feed_record(feed.id)
        assert feed.state == "FAILED" and "not in Amazon's list" in feed.summary, feed.summary
        assert package.order_id not in w.state("spapi")["feed_shipments"]
        rt.ledger.clear_deferral(package.order_id)
        drive(rt, package.order_id, lambda: False, 3)
        record = rt.ledger.get_order(package.order_id)
        assert (record.state, record.hold_reason) == (OrderState.HELD, "carrier_not_accepted")
        assert package.order_id not in w.state("spapi")["confirmations"]
    finally:
        rt.close()


def test_an_order_whose_data_is_not_json_is_left_out_of_the_feed_and_held_when_driven(world):
    """A LABELED order whose stored data cannot be read (a hand edit or a restore gone wrong) is
    left out of its account's feed, the others go in; driven, it is held ledger_inconsistent. Read
    in the feed's batch, that one row failed the whole read: no order was confirmed by feed."""
    w, rt = labeled_world(world, orders=12)
    try:
        groups: dict[tuple[str, str], list[str]] = {}
        for record in rt.ledger.orders([OrderState.LABELED]):
            groups.setdefault((record.order.account, record.order.marketplace_id), []).append(record.order_id)
        (account, _), (broken, *others) = max(groups.items(), key=lambda group: len(group[1]))
        assert others
        with rt.ledger._write() as conn:
            conn.execute("UPDATE orders SET data = ? WHERE order_id = ?",
                         ('{"order_id": "' + broken + '", "status": "UNSH', broken))
        feeds_mod.run_feeds(rt)
        members = {m.package_id for m in rt.ledger.feed_members(rt.ledger.feeds(account)[0].id)}
        assert members == {rt.ledger.packages(o)[-1].id for o in others}
        assert drive(rt, broken, lambda: False) is Outcome.REST
        held = rt.ledger.order_lines(states=[OrderState.HELD], limit=50)
        assert [(line.order_id, line.hold_reason) for line in held if line.order_id == broken] == [
            (broken, "ledger_inconsistent")]
    finally:
        rt.close()


def test_a_package_whose_line_cannot_be_written_stays_out_of_feeds(world):
    """A tracking number ending in a line break (as a carrier's answer may) cannot go in the
    tab-separated document. Claimed for a feed, it would fail each submission of every package
    of the feed, until the feed was given up and the account paused; it is left to confirm(),
    and the feed carries the others."""
    w, rt = labeled_world(world)
    try:
        bad = feeds_mod._batch(rt, rt.config.account("demo-na"))[0][1]
        with rt.ledger._write() as conn:
            conn.execute("UPDATE packages SET tracking_number = ? WHERE id = ?",
                         (bad.tracking_number + "\r\n", bad.id))
        feeds_mod.run_feeds(rt)
        next_report(w, rt)
        feed = rt.ledger.feeds("demo-na")[0]
        assert feed.state == "DONE", feed.summary
        assert bad.id not in {m.package_id for m in rt.ledger.feed_members(feed.id)}
        assert rt.ledger.get_package(bad.id).state is PackageState.LABELED
    finally:
        rt.close()


def test_a_confirmation_amazon_never_shows_is_sent_again_by_confirm_shipment_not_by_a_feed(world):
    """A feed's accepted line Amazon does not show: the verify step sends it again, and while the
    account still confirms by feed that re-send goes by confirmShipment, as documented (a feed line
    sent again may be refused for quantity if the first one did land, holding the order)."""
    w, rt = labeled_world(world)
    try:
        feeds_mod.run_feeds(rt)
        next_report(w, rt)
        feed = rt.ledger.feeds("demo-na")[0]
        assert feed.state == "DONE"
        package = rt.ledger.get_package(rt.ledger.feed_members(feed.id)[0].package_id)
        assert package.state is PackageState.CONFIRMED
        spapi = w.sandbox.servers["spapi"].emulator
        with spapi.lock:  # Amazon does not show it
            order = spapi.store["orders"][package.order_id]["order"]
            (shown,) = [p for p in order["packages"] if p["trackingNumber"] == package.tracking_number]
            spapi.drop_package(order, shown["packageReferenceId"])
        for _ in range(2):  # read back twice, not shown: LABELED again, to be sent again
            drive(rt, package.order_id, lambda: False, 1)
        assert rt.ledger.get_package(package.id).state is PackageState.LABELED
        feeds_mod.run_feeds(rt)  # the account still confirms by feed
        drive(rt, package.order_id, lambda: False)
        assert [f.id for f in rt.ledger.feeds() if any(
            m.package_id == package.id for m in rt.ledger.feed_members(f.id))] == [feed.id]
        assert package.order_id in w.state("spapi")["confirmations"]
    finally:
        rt.close()


def test_while_the_account_cannot_start_a_feed_its_labels_are_not_left_to_feeds(world):
    """``max_open_feeds`` feeds open, Amazon processing none of them for hours: no new feed can be
    started, so the account's other LABELED packages go by confirmShipment meanwhile instead of
    waiting for the feeds to be given up (``max_processing_seconds``)."""
    w, rt = labeled_world(world, max_rows=3, max_open_feeds=1)
    try:
        spapi = w.sandbox.servers["spapi"].emulator
        spapi.feeds.in_queue = timedelta(days=5)  # Amazon starts none of them
        feeds_mod.run_feeds(rt)
        feeds_mod.run_feeds(rt)  # the next pass: every account's feed slot taken
        open_feeds = rt.ledger.feeds(open_only=True)
        assert open_feeds and {f.state for f in open_feeds} == {"SUBMITTED"}
        assert len(open_feeds) == len({f.account for f in open_feeds})
        labeled = [r.order_id for r in rt.ledger.orders([OrderState.LABELED])]
        assert labeled
        for order_id in labeled:
            drive(rt, order_id, lambda: False)
        confirmed = w.state("spapi")["confirmations"]
        assert [o for o in labeled if o not in confirmed] == [], "left to feeds that cannot start"
    finally:
        rt.close()


def test_a_feed_not_submitted_is_tried_again_every_poll_seconds_not_at_every_pass(world, monkeypatch):
    """createFeedDocument fails (a 503 for a while): the feed is submitted again at most every
    ``poll_seconds``, as a feed whose status could not be read is polled again -- not at each pass,
    where ``max_submit_attempts`` passes a few seconds apart would give it up for a passing fault."""
    w, rt = labeled_world(world, poll_seconds=3600, max_open_feeds=1, max_submit_attempts=10)
    try:
        calls: list[int] = []
        real = FeedsClient.create_feed_document

        def unavailable(self):
            calls.append(1)
            raise TransientError("HTTP 503", status=503, operation="createFeedDocument")

        monkeypatch.setattr(FeedsClient, "create_feed_document", unavailable)
        feeds_mod.run_feeds(rt)
        claimed = rt.ledger.feeds(open_only=True)
        assert claimed and {f.state for f in claimed} == {"CLAIMED"} and len(calls) == len(claimed)
        for _ in range(4):  # the next passes, seconds apart
            feeds_mod.run_feeds(rt)
        assert len(calls) == len(claimed), "submitted again before poll_seconds"
        monkeypatch.setattr(FeedsClient, "create_feed_document", real)
        feeds_mod._state(rt).checked.clear()  # poll_seconds later
        feeds_mod.run_feeds(rt)
        assert {rt.ledger.get_feed_record(f.id).state for f in claimed} == {"SUBMITTED"}
    finally:
        rt.close()


def test_a_buyers_cancel_request_while_its_feed_waits_to_be_submitted_holds_the_order(world, monkeypatch):
    """The buyer asks to cancel while the feed claimed with the package is not created yet (its
    submission failed): the package leaves the feed, and the order is held as a LABELED one is."""
    w, rt = labeled_world(world)
    try:
        feed = claimed_not_uploaded(monkeypatch, rt)
        package = rt.ledger.get_package(rt.ledger.feed_members(feed.id)[0].package_id)
        order = rt.ledger.get_order(package.order_id).order
        rt.ledger.upsert_order(replace(order, buyer_cancel_requested=True,
                                       last_updated=order.last_updated + timedelta(minutes=5)))
        feeds_mod._state(rt).checked.clear()
        feeds_mod.run_feeds(rt)  # submitted again
        drive(rt, package.order_id, lambda: False)
        next_report(w, rt)
        record = rt.ledger.get_order(package.order_id)
        assert (record.state, record.hold_reason) == (OrderState.HELD, "buyer_cancel_requested")
        state = w.state("spapi")
        assert package.order_id not in state["feed_shipments"]
        assert package.order_id not in state["confirmations"]
    finally:
        rt.close()
