"""The process counters where they are counted (a 429, a network failure, a quota wait, a carrier
call), the ledger's metric queries, and readiness -- without a sandbox."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
import requests
import responses
from cryptography.fernet import Fernet

from connector import metrics
from connector.amazon.client import SpApiClient
from connector.amazon.errors import TransientError
from connector.api.settings import ApiSettings
from connector.engine.carrier_calls import timed
from connector.ledger import OrderState, PackageState
from connector.ledger.crypto import PiiCipher
from connector.ledger.metrics_queries import MetricsQueries
from connector.ledger.sqlite import SqliteLedger
from connector.model import FulfillmentStatus, Money, Order, OrderItem
from connector.ratelimit import RateLimiter

from .amazon.conftest import ENDPOINT, FakeClock, LwaStub, make_tokens

ORDER_ID = "111-0000001-0000001"
GET_URL = f"{ENDPOINT}/orders/2026-01-01/orders/{ORDER_ID}"
QUOTA_EXCEEDED = {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota.", "details": ""}]}
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        LwaStub(mock)
        yield mock


def client(account: str, clock: FakeClock) -> SpApiClient:
    session = requests.Session()
    return SpApiClient(account=account, endpoint=ENDPOINT, tokens=make_tokens(session),
                       limiter=RateLimiter(clock=clock, sleep=clock.sleep), session=session,
                       backoff_base=0.001, backoff_max=0.002)


def test_a_429_is_counted_with_its_request_and_the_wait_it_caused(rsps):
    clock = FakeClock()
    rsps.add(responses.GET, GET_URL, status=429, json=QUOTA_EXCEEDED)
    rsps.add(responses.GET, GET_URL, json={"order": {"orderId": ORDER_ID}})
    labels = {"account": "unit-429", "operation": "getOrder"}
    before = value("mfn_spapi_request_duration_seconds_count", operation="getOrder")

    assert client("unit-429", clock).get_order(ORDER_ID)["orderId"] == ORDER_ID

    assert value("mfn_spapi_throttled_total", **labels) == 1
    assert value("mfn_spapi_requests_total", **labels, status="429") == 1
    assert value("mfn_spapi_requests_total", **labels, status="200") == 1
    assert value("mfn_spapi_request_duration_seconds_count", operation="getOrder") == before + 2
    # the 429 emptied and paused the bucket: the retry waited for a token, and that wait is counted
    assert clock.sleeps and value("mfn_spapi_quota_wait_seconds_total", **labels) == pytest.approx(
        sum(clock.sleeps))


def test_a_request_that_got_no_answer_is_counted_by_what_failed(rsps):
    rsps.add(responses.GET, GET_URL, body=requests.ReadTimeout("slow"))
    rsps.add(responses.GET, GET_URL, json={"order": {"orderId": ORDER_ID}})
    client("unit-timeout", FakeClock()).get_order(ORDER_ID)
    labels = {"account": "unit-timeout", "operation": "getOrder"}
    assert value("mfn_spapi_requests_total", **labels, status="read-timeout") == 1
    assert value("mfn_spapi_requests_total", **labels, status="200") == 1
    assert value("mfn_spapi_throttled_total", **labels) == 0


def test_waiting_on_a_quota_bucket_is_counted_per_account_and_operation():
    clock = FakeClock()
    limiter = RateLimiter({"unitOp": (0.5, 1)}, pacing=1.0, clock=clock, sleep=clock.sleep)
    bucket = limiter.bucket("unit-wait", "unitOp")
    bucket.acquire()  # the burst: no wait
    assert value("mfn_spapi_quota_wait_seconds_total", account="unit-wait", operation="unitOp") == 0
    bucket.acquire()  # one token per 2 s
    assert clock.sleeps == [pytest.approx(2.0)]
    assert value("mfn_spapi_quota_wait_seconds_total", account="unit-wait", operation="unitOp") == \
        pytest.approx(2.0)
    assert not bucket.acquire(timeout=0)  # a refused try waits for nothing
    assert value("mfn_spapi_quota_wait_seconds_total", account="unit-wait", operation="unitOp") == \
        pytest.approx(2.0)


def test_carrier_calls_are_counted_by_outcome():
    labels = {"carrier": "unit-carrier", "operation": "track"}
    assert timed("unit-carrier", "track", lambda: 42) == 42

    def fail():
        raise TransientError("down")

    with pytest.raises(TransientError):
        timed("unit-carrier", "track", fail)
    assert value("mfn_carrier_calls_total", **labels, outcome="ok") == 1
    assert value("mfn_carrier_calls_total", **labels, outcome="TransientError") == 1
    assert value("mfn_carrier_call_duration_seconds_count", **labels) == 2


# -- the ledger's metric queries ----------------------------------------------------------------------


class Ledger(SqliteLedger, MetricsQueries):  # whether or not SqliteLedger mixes the queries in already
    pass


@pytest.fixture
def ledger(tmp_path):
    ticks = iter(T0 + timedelta(seconds=n) for n in range(10_000))
    led = Ledger(tmp_path / "ledger.db", PiiCipher([Fernet.generate_key()]), clock=lambda: next(ticks))
    led.migrate()
    yield led
    led.close()


def order(n: int) -> Order:
    return Order(order_id=f"111-0000001-{n:07d}", account="acme", marketplace_id="ATVPDKIKX0DER", site="US",
                 status=FulfillmentStatus.UNSHIPPED, last_updated=T0,
                 items=(OrderItem("item-1", "SKU-RED", 1, unit_price=Money(Decimal("9.99"), "USD")),))


def package(ledger: Ledger, n: int, carrier: str, plan: dict, *states: PackageState, **fields):
    ledger.upsert_order(order(n))
    pkg = ledger.plan_package(f"111-0000001-{n:07d}", "1", f"key-{n}", carrier, "STD",
                              [{"order_item_id": "item-1", "quantity": 1}], plan=plan)
    for state in states:
        pkg = ledger.advance(pkg, pkg.state, state, **(fields if state is states[-1] else {}))
    return pkg


def cost(amount: str, currency: str = "CNY") -> dict:
    return {"cost": {"amount": amount, "currency": currency}, "price": {"amount": "999", "currency": "USD"}}


def test_label_spend_sums_the_labels_bought_by_carrier_and_currency(ledger):
    claimed, created, labeled = PackageState.LABEL_CLAIMED, PackageState.LABEL_CREATED, PackageState.LABELED
    package(ledger, 1, "yanwen", cost("10.50"), claimed, created, labeled)
    package(ledger, 2, "yanwen", cost("4.25"), claimed, created, labeled, PackageState.VOIDING,
            PackageState.VOIDED, refund={"amount": "4.25", "currency": "CNY"})
    package(ledger, 3, "yanwen", cost("99"))  # planned: nothing bought
    package(ledger, 4, "yanwen", cost("99"), claimed)  # claimed: not bought yet
    package(ledger, 5, "yanwen", cost("99"), claimed, PackageState.FAILED)  # refused: no label
    package(ledger, 6, "yanwen", cost("7", "USD"), claimed, created)
    package(ledger, 7, "dhl", {"price": {"amount": "3.10", "currency": "EUR"}}, claimed, created)  # no cost
    package(ledger, 8, "dhl", {}, claimed, created)  # no plan at all

    rows = {(r.carrier, r.currency): r for r in ledger.label_spend()}
    assert set(rows) == {("yanwen", "CNY"), ("yanwen", "USD"), ("dhl", "EUR"), ("dhl", "")}
    assert (rows["yanwen", "CNY"].labels, rows["yanwen", "CNY"].spend, rows["yanwen", "CNY"].refunded) == \
        (2, pytest.approx(14.75), pytest.approx(4.25))
    assert (rows["yanwen", "USD"].labels, rows["yanwen", "USD"].spend) == (1, 7.0)
    assert (rows["dhl", "EUR"].spend, rows["dhl", ""].spend, rows["dhl", ""].labels) == (3.1, 0.0, 1)


def test_poll_times_outbox_positions_and_alerts(ledger):
    assert ledger.poll_times() == {} and ledger.event_positions() == (0, {})
    ledger.set_watermark("acme", datetime(2020, 1, 1, tzinfo=timezone.utc))  # Amazon's bound, not ours
    polled = ledger.poll_times()["acme"]
    assert T0 <= polled < T0 + timedelta(minutes=5)  # when the poll wrote it, on the ledger's clock
    ledger.upsert_order(order(1))  # order.received
    ledger.enqueue_webhooks("erp", ["*"])  # a new endpoint starts at the newest event
    ledger.raise_alert("parcel_lost", "111-0000001-0000001", "lost", {})
    ledger.enqueue_webhooks("erp", ["*"])
    ledger.set_event_cursor("hooks", 1)
    newest, cursors = ledger.event_positions()
    assert newest == 2 and cursors == {"webhook:erp": 2, "hooks": 1}
    oldest = ledger.oldest_pending_webhooks()
    assert set(oldest) == {"erp"} and oldest["erp"] == ledger.events(after=1)[0].at
    assert ledger.open_alert_counts() == {"parcel_lost": 1}
    ledger.resolve_alert("parcel_lost", "111-0000001-0000001")
    assert ledger.open_alert_counts() == {}


def test_a_replayed_delivery_is_as_old_as_its_replay(ledger):
    """`webhooks replay` of last month's events: their deliveries are pending since the replay, not
    since the events, or MfnWebhookDeliveryStuck fires at once over a receiver that is fine."""
    ledger.enqueue_webhooks("erp", ["*"])
    ledger.upsert_order(order(1))
    ledger.enqueue_webhooks("erp", ["*"])
    event = ledger.events(after=0)[0]
    ledger.webhook_result("erp", event.id, status="200", delivered=True, next_attempt_at=None)
    assert ledger.oldest_pending_webhooks() == {}
    assert ledger.replay_webhooks("erp") == 1
    replayed = ledger.oldest_pending_webhooks()["erp"]
    assert replayed > event.at + timedelta(seconds=1)  # the ledger's clock ticks a second a reading


# -- readiness ------------------------------------------------------------------------------------------


class PollLedger(MetricsQueries):
    def __init__(self, polls=None, error: Exception | None = None) -> None:
        self.polls, self.error = polls or {}, error

    def poll_times(self):
        if self.error:
            raise self.error
        return self.polls


def runtime(ledger, *, max_age=None, owners=("connector", "connector", "erp")):
    accounts = [SimpleNamespace(name=f"acct-{i}", orders_owner=o) for i, o in enumerate(owners)]
    api = ApiSettings.from_section({"ready_poll_max_age_seconds": max_age} if max_age else {})
    return SimpleNamespace(ledger=ledger, engine=SimpleNamespace(poll_interval_seconds=180),
                           config=SimpleNamespace(api=api, accounts=accounts))


def test_readiness_by_poll_age_skipping_erp_accounts():
    now = T0
    fresh = {"acct-0": now - timedelta(seconds=30), "acct-1": now - timedelta(seconds=539)}
    state = metrics.readiness(runtime(PollLedger(fresh)), now)
    assert state.ready and state.max_poll_age_seconds == 540  # 3 x engine.poll_interval_seconds
    assert set(state.polls) == {"acct-0", "acct-1"}  # acct-2's orders come from the ERP

    stale = {"acct-0": now - timedelta(seconds=30)}
    state = metrics.readiness(runtime(PollLedger(stale), max_age=20), now)
    assert not state.ready
    assert state.problems == ["account acct-0: last successful order poll 30 s ago (limit 20 s)",
                              "account acct-1: no successful order poll yet"]
    body = state.to_dict(now)
    assert body["status"] == "not ready" and body["accounts"]["acct-1"] == {
        "last_successful_poll": None, "age_seconds": None, "ok": False}


def test_readiness_when_the_ledger_fails_names_only_the_error_class():
    state = metrics.readiness(runtime(PollLedger(error=OSError("/secret/path/ledger.db: disk I/O"))), T0)
    assert not state.ready and not state.ledger_ok
    assert state.problems == ["ledger: did not answer a query (OSError)"]
    assert "secret" not in str(state.to_dict(T0))


def test_orders_by_state_list_every_state_even_at_zero():
    assert metrics._known_first((s.value for s in OrderState), {"PLUGIN_STATE": 1})[-1] == "PLUGIN_STATE"


def test_a_scrape_still_answers_when_the_ledger_does_not():
    from prometheus_client.parser import text_string_to_metric_families

    rt = runtime(PollLedger(error=OSError("disk I/O error")))
    text = metrics.exposition(metrics.LedgerCollector(rt)).decode()
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert values["mfn_ledger_up"] == 0 and values["mfn_ready"] == 0
    assert values["mfn_ready_poll_max_age_seconds"] == 540
    assert "mfn_orders" not in values and "mfn_vtr_packages" not in values
