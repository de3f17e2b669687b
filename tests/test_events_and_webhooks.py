"""The outbox (an event written with every state change it describes) and the signed webhooks
that deliver it: at least once, in order per order id, retried with back-off, given up after a
while, replayable, signed as Standard Webhooks receivers verify."""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from connector.events import matches, order_event, package_events
from connector.ledger import OrderState, PackageState, StaleStateError
from connector.ledger.crypto import PiiCipher
from connector.ledger.sqlite import SqliteLedger
from connector.webhooks import WebhookSettings, deliver, sign

from .ledger.test_sqlite_ledger import ITEMS, Clock, make_order

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def ledger(tmp_path):
    clock = Clock()
    led = SqliteLedger(tmp_path / "ledger.db", PiiCipher([Fernet.generate_key()]), clock=clock)
    led.migrate()
    led.clock = clock
    yield led
    led.close()


class Receiver:
    """A webhook endpoint on loopback: answers each POST with the next scripted status (then 200)."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.received.append({"status": status, "body": body,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self, status: int = 200) -> list[str]:
        return [r["headers"]["webhook-id"] for r in self.received if r["status"] == status]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def settings(url: str, **extra) -> WebhookSettings:
    return WebhookSettings.from_section({"endpoints": [{"name": "erp", "url": url, "secret": SECRET,
                                                       **extra.pop("endpoint", {})}],
                                         "backoff_base_seconds": 60, **extra})


def soon(ledger: SqliteLedger, seconds: float = 1):
    """A moment after the ledger's clock (whose readings stamp the queued deliveries)."""
    return ledger.clock.now + timedelta(seconds=seconds)


def receive(ledger: SqliteLedger, order_id: str) -> None:
    ledger.upsert_order(make_order(order_id))


# -- the catalogue and the outbox ----------------------------------------------------------------


def test_state_changes_map_to_the_catalogue() -> None:
    assert order_event(None, "NEW") == "order.received"
    assert order_event("PLANNED", "HELD") == "order.held"
    assert order_event("HELD", "PLANNED") == "order.released"
    assert order_event("HELD", "CANCELLED") == "order.cancelled"
    assert order_event("VERIFIED", "VERIFIED") is None  # a note, e.g. PII purged
    assert order_event("NEW", "PLANNED") is None  # internal step
    def kinds(from_state, to_state):
        return [kind for kind, _, _ in package_events(from_state, to_state)]

    assert kinds("LABEL_CREATED", "LABELED") == ["package.labeled"]
    assert kinds("CONFIRMING", "LABELED") == []  # a refused confirmation rolls back
    assert kinds("VERIFIED", "IN_TRANSIT") == ["tracking.updated"]
    assert kinds("OUT_FOR_DELIVERY", "DELIVERED") == ["package.delivered"]
    assert kinds("PLANNED", "LABEL_CLAIMED") == []
    assert kinds("VOIDING", "VOIDED") == ["package.voided"]
    for back in ("VERIFIED", "LABELED", "LABEL_CREATED"):  # a refused void: back where it was, no news
        assert kinds("VOIDING", back) == []
    assert kinds("CONFIRMED", "VERIFIED") == ["package.verified"]
    # confirmShipment's answer lost, the package found shown: it was confirmed too, then verified
    assert package_events("CONFIRMING", "VERIFIED") == (("package.confirmed", "CONFIRMING", "CONFIRMED"),
                                                         ("package.verified", "CONFIRMED", "VERIFIED"))
    assert matches("package.labeled", ["package.*"]) and not matches("order.held", ["package.*"])


def test_every_change_writes_its_event_in_the_same_transaction(ledger) -> None:
    receive(ledger, "111-0000001-0000001")
    ledger.hold("111-0000001-0000001", "unknown_sku", "SKU X is not in the catalog")
    ledger.release("111-0000001-0000001")
    events = ledger.events()
    assert [e.type for e in events] == ["order.received", "order.held", "order.released"]
    held = events[1].data
    assert held["reason"] == "unknown_sku" and held["message"] == "SKU X is not in the catalog"
    assert "Zelda" not in json.dumps([e.payload() for e in events])  # no buyer PII in events
    package = ledger.plan_package("111-0000001-0000001", "1", "K-1", "yunexpress", "AYPZXR", ITEMS)
    with pytest.raises(StaleStateError):  # a refused change writes no event
        ledger.advance(package, PackageState.LABELED, PackageState.CONFIRMING, OrderState.CONFIRMING)
    assert len(ledger.events()) == 3
    ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED)
    assert len(ledger.events()) == 3  # the claim is an internal step


def test_a_new_alert_is_an_event(ledger) -> None:
    receive(ledger, "111-0000001-0000001")
    assert ledger.raise_alert("ship_by_near", "111-0000001-0000001", "5 h left", {"hours": 5})
    assert not ledger.raise_alert("ship_by_near", "111-0000001-0000001", "4 h left", {"hours": 4})
    alerts = [e for e in ledger.events() if e.type.startswith("alert.")]
    assert [(e.type, e.order_id) for e in alerts] == [("alert.ship_by_near", "111-0000001-0000001")]


def test_an_alert_about_another_channels_order_is_that_orders_event(ledger, receiver) -> None:
    """Provider mode keeps another channel's order as <channel>-<order_id>. An alert about it
    (parcel_lost, parcel_late, ship_by_near) was an event of no order, as one about a site is: left
    out of `GET /v1/events?order_id=`, and its webhook could overtake the order's own events."""
    conf = settings(receiver.url)
    deliver(ledger, conf)
    order_id = "shopify-1001"
    receive(ledger, order_id)
    ledger.hold(order_id, "manual", "checking")
    assert ledger.raise_alert("parcel_lost", order_id, "no scan for 20 days", {"days": 20})
    assert [e.type for e in ledger.events(order_id=order_id)] == ["order.received", "order.held",
                                                                   "alert.parcel_lost"]
    receiver.script = [503]  # the order's first event fails: the rest of the order waits for it
    deliver(ledger, conf, now=soon(ledger))
    assert receiver.ids(503) == ["evt_1"] and receiver.ids() == []
    deliver(ledger, conf, now=soon(ledger, 3600))
    assert receiver.ids() == ["evt_1", "evt_2", "evt_3"]


# -- signing ----------------------------------------------------------------------------------


def test_signature_verifies_with_the_standard_webhooks_library_and_tampering_fails() -> None:
    body = b'{"type":"order.received"}'
    timestamp = int(time.time())
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(SECRET, "evt_1", timestamp, body)}
    hook = Webhook(SECRET)
    assert hook.verify(body, headers) == {"type": "order.received"}
    with pytest.raises(WebhookVerificationError):
        hook.verify(body.replace(b"received", b"held"), headers)
    with pytest.raises(WebhookVerificationError):
        hook.verify(body, {**headers, "webhook-id": "evt_2"})


# -- delivery -----------------------------------------------------------------------------------


def test_delivered_signed_in_order_and_new_endpoints_start_now(ledger, receiver) -> None:
    receive(ledger, "111-0000001-0000001")  # before the endpoint existed: not sent
    conf = settings(receiver.url)
    deliver(ledger, conf)
    assert receiver.received == []
    receive(ledger, "111-0000001-0000002")
    ledger.hold("111-0000001-0000002", "manual", "checking")
    report = deliver(ledger, conf)
    assert report.delivered == 2 and receiver.ids() == ["evt_2", "evt_3"]
    first = receiver.received[0]
    hook = Webhook(SECRET)
    payload = hook.verify(first["body"], first["headers"])  # the real timestamp: verifies now
    assert payload["type"] == "order.received" and payload["data"]["order_id"] == "111-0000001-0000002"
    assert deliver(ledger, conf).delivered == 0  # nothing twice
    assert ledger.webhook_counts("erp") == {"delivered": 2}


def test_a_failing_receiver_gets_it_later_with_the_same_id_and_order_is_kept(ledger, receiver) -> None:
    conf = settings(receiver.url)
    deliver(ledger, conf)
    receive(ledger, "111-0000001-0000001")
    ledger.hold("111-0000001-0000001", "manual", "checking")
    receive(ledger, "111-0000001-0000002")
    receiver.script = [500]  # the first event of order 1 fails
    report = deliver(ledger, conf, now=soon(ledger))
    assert (report.delivered, report.failed) == (1, 1)
    assert receiver.ids(500) == ["evt_1"] and receiver.ids() == ["evt_3"]  # order 2 is not held up
    assert deliver(ledger, conf, now=soon(ledger)).delivered == 0  # not due yet: back-off
    later = soon(ledger, 62)
    assert deliver(ledger, conf, now=later).delivered == 2
    assert receiver.ids() == ["evt_3", "evt_1", "evt_2"]  # order 1: received before held


def test_an_unreachable_receiver_loses_nothing(ledger, receiver) -> None:
    conf = settings(receiver.url)
    deliver(ledger, conf)
    receive(ledger, "111-0000001-0000001")
    down = settings("http://127.0.0.1:9/hooks")  # nothing listens on the discard port
    down = WebhookSettings.from_section({"endpoints": [{"name": "erp", "url": down.endpoints[0].url,
                                                       "secret": SECRET}], "timeout_seconds": 1})
    assert deliver(ledger, down, now=soon(ledger)).failed == 1
    assert deliver(ledger, conf, now=ledger.clock.now + timedelta(hours=1)).delivered == 1
    assert receiver.ids() == ["evt_1"]


def test_given_up_after_dead_after_hours_then_replayed_with_the_same_id(ledger, receiver) -> None:
    conf = settings(receiver.url, dead_after_hours=1)
    deliver(ledger, conf)
    receive(ledger, "111-0000001-0000001")
    receiver.script = [503, 503]
    deliver(ledger, conf, now=soon(ledger))
    report = deliver(ledger, conf, now=ledger.clock.now + timedelta(hours=2))
    assert report.dead == 1 and ledger.webhook_counts("erp") == {"dead": 1}
    assert ledger.replay_webhooks("erp", dead_only=True) == 1
    assert deliver(ledger, conf, now=ledger.clock.now + timedelta(hours=2)).delivered == 1
    assert receiver.ids(503) == ["evt_1", "evt_1"] and receiver.ids() == ["evt_1"]
    assert ledger.replay_webhooks("erp") == 1  # delivered ones too, on request
    deliver(ledger, conf, now=ledger.clock.now + timedelta(hours=2))
    assert receiver.ids() == ["evt_1", "evt_1"]


def test_an_endpoint_gets_only_what_it_subscribes_to(ledger, receiver) -> None:
    conf = settings(receiver.url, endpoint={"events": ["order.held"]})
    deliver(ledger, conf)
    receive(ledger, "111-0000001-0000001")
    ledger.hold("111-0000001-0000001", "manual", "checking")
    deliver(ledger, conf)
    assert [json.loads(r["body"])["type"] for r in receiver.received] == ["order.held"]


def test_held_again_for_another_reason_is_an_event_with_the_new_reason(ledger) -> None:
    receive(ledger, "111-0000001-0000001")
    ledger.hold("111-0000001-0000001", "unknown_sku", "SKU X is not in the catalog")
    ledger.hold("111-0000001-0000001", "manual", "checking with the buyer")
    held = [e.data for e in ledger.events() if e.type == "order.held"]
    assert [(h["previous_state"], h["reason"]) for h in held] == [("NEW", "unknown_sku"),
                                                                  ("HELD", "manual")]


def test_a_voided_label_carries_its_refund_as_an_object(ledger) -> None:
    receive(ledger, "111-0000001-0000001")
    package = ledger.plan_package("111-0000001-0000001", "1", "K-1", "yunexpress", "AYPZXR", ITEMS)
    package = ledger.advance(package, PackageState.PLANNED, PackageState.VOIDING)
    ledger.advance(package, PackageState.VOIDING, PackageState.VOIDED, OrderState.VOIDED,
                   refund={"amount": "3.20", "currency": "USD"})
    voided = [e for e in ledger.events() if e.type == "package.voided"]
    assert voided[0].data["refund"] == {"amount": "3.20", "currency": "USD"}
    assert json.loads(voided[0].body())["data"]["refund"]["currency"] == "USD"


@pytest.mark.parametrize("secret, ok", [
    (SECRET, True),
    ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", False),  # unpadded base64
    ("whsec_c2hvcnQ=", False),  # too short
    ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", False),  # no prefix
])
def test_secrets_are_checked_when_the_configuration_loads(secret: str, ok: bool) -> None:
    from connector.kit.settings import SettingsError
    section = {"endpoints": [{"name": "erp", "url": "https://erp.example/hooks", "secret": secret}]}
    if ok:
        endpoint = WebhookSettings.from_section(section).endpoints[0]
        assert sign(endpoint.secret, "evt_1", 1, b"{}").startswith("v1,")
    else:
        with pytest.raises(SettingsError, match="endpoints"):
            WebhookSettings.from_section(section)


def test_every_event_type_has_a_row_in_the_integrators_catalogue() -> None:
    from pathlib import Path

    from connector.events import EVENT_TYPES

    text = (Path(__file__).parents[1] / "docs" / "erp-integration.md").read_text(encoding="utf-8")
    missing = [t for t in EVENT_TYPES if f"| `{t.replace('*', '<kind>')}` |" not in text]
    assert missing == []


def test_a_redirect_is_a_failure_not_a_delivery(ledger) -> None:
    """A redirected POST comes back as a GET without the body: its 200 must not count the event
    delivered (an endpoint moved, or http:// redirected to https://)."""
    seen: list[str] = []

    class Moved(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["content-length"]))
            seen.append("POST")
            self.send_response(301)
            self.send_header("Location", "/new-home")
            self.send_header("content-length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            seen.append("GET")
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conf = settings(f"http://127.0.0.1:{server.server_address[1]}/hooks")
        deliver(ledger, conf)
        receive(ledger, "111-0000001-0000001")
        report = deliver(ledger, conf, now=soon(ledger))
    finally:
        server.shutdown()
        server.server_close()
    assert (report.delivered, report.failed) == (0, 1) and seen == ["POST"]
    assert ledger.webhook_counts("erp") == {"pending": 1}


def test_an_endpoint_that_never_answers_is_left_after_a_few_posts_and_a_stop_ends_the_pass(ledger) -> None:
    """Waiting timeout_seconds for each of a batch would hold the leader's other jobs (tracking,
    alerts) for many minutes, and a stop request for as long."""
    import socket

    from connector.webhooks import UNANSWERED_IN_A_ROW

    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        conf = settings(f"http://127.0.0.1:{silent.getsockname()[1]}/hooks", timeout_seconds=0.3, batch=20)
        deliver(ledger, conf)
        for n in range(10):
            receive(ledger, f"111-0000001-{n:07d}")
        started = time.monotonic()
        report = deliver(ledger, conf, now=soon(ledger))
        took = time.monotonic() - started
        stopped = deliver(ledger, conf, now=ledger.clock.now + timedelta(hours=1), should_stop=lambda: True)
        asked, reads = iter([False] * 3), []  # a stop requested during the pass
        due = ledger.due_webhooks
        ledger.due_webhooks = lambda *args: reads.append(args) or due(*args)
        late = deliver(ledger, conf, now=ledger.clock.now + timedelta(hours=2),
                       should_stop=lambda: next(asked, True))
    finally:
        silent.close()
    assert report.failed == UNANSWERED_IN_A_ROW and took < 0.3 * (UNANSWERED_IN_A_ROW + 2)
    assert ledger.webhook_counts("erp") == {"pending": 10}  # the rest wait: nothing is lost
    assert (stopped.delivered, stopped.failed) == (0, 0)
    assert late.failed >= 1 and len(reads) == 1  # the pass ended: no more reads of what is due


def test_a_replayed_event_gets_dead_after_hours_again_from_its_replay(ledger, receiver) -> None:
    """A replay after an outage must not be given up at its first failure: the event is older than
    dead_after_hours, but the operator asked for it again just now."""
    conf = settings(receiver.url, dead_after_hours=1)
    deliver(ledger, conf)
    receive(ledger, "111-0000001-0000001")
    receiver.script = [503, 503, 503, 503]
    deliver(ledger, conf, now=soon(ledger))
    assert deliver(ledger, conf, now=ledger.clock.now + timedelta(hours=2)).dead == 1
    ledger.clock.now += timedelta(hours=2)  # the replay, two hours later
    assert ledger.replay_webhooks("erp", dead_only=True) == 1
    report = deliver(ledger, conf, now=soon(ledger))
    assert (report.failed, report.dead) == (1, 0) and ledger.webhook_counts("erp") == {"pending": 1}
    assert deliver(ledger, conf, now=ledger.clock.now + timedelta(hours=2)).dead == 1  # its hour ran out


def test_an_answer_whose_body_trickles_in_does_not_hold_the_pass(ledger) -> None:
    """The status line says delivered or not: the body is never read. Read, a receiver that sends its
    answer's body a byte at a time (or without end) would hold the leader's other jobs for as long,
    each byte coming well within timeout_seconds."""
    class Trickling(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200)
            self.send_header("content-length", "40")
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass  # the daemon hung up without reading it

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conf = settings(f"http://127.0.0.1:{server.server_address[1]}/hooks", timeout_seconds=1)
        deliver(ledger, conf)
        receive(ledger, "111-0000001-0000001")
        started = time.monotonic()
        report = deliver(ledger, conf, now=soon(ledger))
        took = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert report.delivered == 1 and ledger.webhook_counts("erp") == {"delivered": 1}
    assert took < 2, took  # not the body's four seconds


def test_the_back_off_stays_at_its_maximum_however_many_attempts_failed(ledger, receiver) -> None:
    """2 ** (attempts - 1) times a float overflows past 1024 failures, which a long dead_after_hours
    allows (a month at backoff_max_seconds: 60 is 43,000): the failure was never recorded, so the
    event was posted again at every pass, and the pass raised before the endpoints after it."""
    conf = settings(receiver.url, backoff_max_seconds=60, dead_after_hours=24 * 30)
    assert conf.retry_delay(1) == timedelta(seconds=60)
    assert conf.retry_delay(1025) == conf.retry_delay(100_000) == timedelta(seconds=60)
    deliver(ledger, conf)
    receive(ledger, "111-0000001-0000001")
    deliver(ledger, conf, now=ledger.clock.now - timedelta(seconds=1))  # queued, not due yet
    ledger._conn().execute("UPDATE webhook_deliveries SET attempts = 1100")
    receiver.script = [503]
    report = deliver(ledger, conf, now=soon(ledger))
    assert report.failed == 1 and ledger.webhook_counts("erp") == {"pending": 1}
    assert deliver(ledger, conf, now=soon(ledger, 30)).failed == 0  # waits its minute


def test_a_simulated_clock_does_not_date_the_signature(ledger, receiver, daemon_clock) -> None:
    """A simulation moves the daemon's clock days ahead; the receiver checks webhook-timestamp
    against its own clock (5 minutes' tolerance), so the header is the wall clock's, or every
    message of a simulated run is refused as stale and, retried, given up."""
    conf = settings(receiver.url)
    deliver(ledger, conf)
    receive(ledger, "111-0000001-0000001")
    daemon_clock.advance(3 * 24 * 3600)
    assert deliver(ledger, conf, now=soon(ledger)).delivered == 1
    (message,) = receiver.received
    assert abs(int(message["headers"]["webhook-timestamp"]) - time.time()) < 60
    Webhook(SECRET).verify(message["body"], message["headers"])  # not WebhookVerificationError


def test_a_second_deliverers_late_failure_leaves_a_delivered_event_delivered(ledger, receiver) -> None:
    """Two delivery passes at once (`webhooks deliver` beside the daemon, or a leader that lost its
    lease mid-pass and the one that took over) both post an event read as due. The one that timed
    out recorded its failure over the other's delivery: the event was counted dead (and sent again
    by a replay of the dead ones) or, before dead_after_hours, posted again."""
    conf = settings(receiver.url, dead_after_hours=1)
    deliver(ledger, conf)
    receive(ledger, "111-0000001-0000001")
    ledger.enqueue_webhooks("erp", ["*"])
    ((event, _, _),) = ledger.due_webhooks("erp", soon(ledger))  # the second pass read it due
    assert deliver(ledger, conf, now=soon(ledger)).delivered == 1  # the first delivered it
    ledger.webhook_result("erp", event.id, status="timeout", delivered=False, next_attempt_at=None)
    assert ledger.webhook_counts("erp") == {"delivered": 1}
    ledger.webhook_result("erp", event.id, status="503", delivered=False,
                          next_attempt_at=soon(ledger, 60))
    assert ledger.webhook_counts("erp") == {"delivered": 1}
    assert ledger.replay_webhooks("erp", dead_only=True) == 0
    receive(ledger, "111-0000002-0000002")  # the other way round: given up by one, delivered by the other
    ledger.enqueue_webhooks("erp", ["*"])
    ((event, _, _),) = ledger.due_webhooks("erp", soon(ledger))
    ledger.webhook_result("erp", event.id, status="timeout", delivered=False, next_attempt_at=None)
    ledger.webhook_result("erp", event.id, status="200", delivered=True, next_attempt_at=None)
    assert ledger.webhook_counts("erp") == {"delivered": 2}
