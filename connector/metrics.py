"""Prometheus metrics of the daemon, served at ``/metrics`` (docs/operations.md lists each one).

Two kinds:

* **process counters**, counted as things happen, in :data:`REGISTRY` (ours, not
  prometheus_client's global one, so nothing else in the process leaks into ``/metrics``):
  SP-API requests by account, operation and status (HTTP code or network failure) with their
  duration, 429s, seconds spent waiting on the client-side quota buckets, carrier calls by
  carrier, operation and outcome with their duration. The client, the rate limiter and
  ``carrier_calls.timed`` call the one-line recorders below. They start at zero with the process,
  as Prometheus counters do;
* **ledger figures**, read when Prometheus scrapes (:class:`LedgerCollector`): orders by state,
  holds by reason, labels and their cost, valid-tracking rate per site (cached
  :data:`VTR_CACHE_SECONDS`), outbox lag, the last successful order poll per account, open
  alerts, and whether the daemon is ready (:func:`readiness`, also ``/readyz``).

No label carries buyer data or an order id: label values are accounts, operations, states,
reasons, carriers, currencies, sites, categories and endpoint names, all bounded sets.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from . import __version__, clock
from .holds import HoldReason
from .ledger.base import OrderState
from .ledger.metrics_queries import MetricsQueries

if TYPE_CHECKING:
    from .engine.runtime import Runtime

log = logging.getLogger("connector.metrics")

# The text format every Prometheus server reads (our names are plain ASCII, so 0.0.4 is exact).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
VTR_CACHE_SECONDS = 60.0  # the rate reads every shipped package of the window: not at every scrape
DEFAULT_READY_POLLS = 3  # /readyz tolerates this many missed poll intervals by default

REGISTRY = CollectorRegistry()
# No ``*_created`` series beside every counter: they double the scrape and nothing here reads them
# (a process-wide switch of prometheus_client; this daemon is its only user in the process).
disable_created_metrics()

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

SPAPI_REQUESTS = Counter(
    "mfn_spapi_requests", "SP-API HTTP requests sent, by seller account, operation and status (the HTTP "
    "status code, or connect-failed / connect-timeout / read-timeout / connection-error / incomplete-body)",
    ["account", "operation", "status"], registry=REGISTRY)
SPAPI_THROTTLED = Counter(
    "mfn_spapi_throttled", "SP-API requests Amazon answered 429 (quota exceeded), by account and operation",
    ["account", "operation"], registry=REGISTRY)
SPAPI_DURATION = Histogram(
    "mfn_spapi_request_duration_seconds", "Duration of one SP-API HTTP request, by operation",
    ["operation"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
QUOTA_WAIT = Counter(
    "mfn_spapi_quota_wait_seconds", "Seconds callers waited for a token of the client-side SP-API quota "
    "bucket (pacing, and the pause after a 429), by account and operation",
    ["account", "operation"], registry=REGISTRY)
CARRIER_CALLS = Counter(
    "mfn_carrier_calls", "Carrier API operations called by the engine, by carrier, operation and outcome "
    "(ok, or the exception's class name)", ["carrier", "operation", "outcome"], registry=REGISTRY)
CARRIER_DURATION = Histogram(
    "mfn_carrier_call_duration_seconds", "Duration of one carrier operation (retries inside the "
    "plugin included), by carrier and operation", ["carrier", "operation"], buckets=_LATENCY_BUCKETS,
    registry=REGISTRY)


# -- recorders (one line at each instrumented place) -----------------------------------------------


def spapi_request(account: str, operation: str, status: str, seconds: float) -> None:
    """One SP-API HTTP request ended with ``status`` ("200", "429", "read-timeout"...)."""
    SPAPI_REQUESTS.labels(account, operation, status).inc()
    SPAPI_DURATION.labels(operation).observe(max(0.0, seconds))
    if status == "429":
        SPAPI_THROTTLED.labels(account, operation).inc()


def quota_waiter(account: str, operation: str) -> Callable[[float], None]:
    """What a quota bucket calls with the seconds it is about to sleep for a token."""
    child = QUOTA_WAIT.labels(account, operation)
    return lambda seconds: child.inc(max(0.0, seconds))


def carrier_call(carrier: str, operation: str, outcome: str, seconds: float) -> None:
    """One carrier operation ended with ``outcome`` ("ok" or an exception's class name)."""
    CARRIER_CALLS.labels(carrier, operation, outcome).inc()
    CARRIER_DURATION.labels(carrier, operation).observe(max(0.0, seconds))


# -- readiness --------------------------------------------------------------------------------------


@dataclass
class Readiness:
    """Whether the daemon does its job now: the ledger answers, every polled account polled lately."""

    ledger_ok: bool
    max_poll_age_seconds: float
    polls: dict[str, datetime | None] = field(default_factory=dict)  # polled accounts -> last success
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems

    def to_dict(self, now: datetime) -> dict[str, Any]:
        accounts = {}
        for name, at in self.polls.items():
            age = None if at is None else round(max(0.0, (now - at).total_seconds()), 1)
            accounts[name] = {"last_successful_poll": at.isoformat() if at else None, "age_seconds": age,
                              "ok": age is not None and age <= self.max_poll_age_seconds}
        return {"status": "ready" if self.ready else "not ready", "ledger": "ok" if self.ledger_ok else
                "unreachable", "max_poll_age_seconds": self.max_poll_age_seconds, "accounts": accounts,
                "problems": list(self.problems)}


def max_poll_age(rt: Runtime) -> float:
    """``api.ready_poll_max_age_seconds``, else three poll intervals."""
    configured = rt.config.api.ready_poll_max_age_seconds
    return float(configured) if configured else DEFAULT_READY_POLLS * rt.engine.poll_interval_seconds


def polled_accounts(rt: Runtime) -> list[str]:
    """The accounts the daemon polls (an ERP submits the orders of an ``orders_owner: erp`` one)."""
    return [a.name for a in rt.config.accounts if a.orders_owner != "erp"]


def readiness(rt: Runtime, now: datetime | None = None) -> Readiness:
    now = now or clock.now()
    limit = max_poll_age(rt)
    try:
        polls = queries(rt).poll_times()
    except Exception as exc:  # noqa: BLE001 - any failure to read means "not ready", never a 500
        log.debug("readiness: the ledger did not answer: %s", type(exc).__name__)  # polled often
        return Readiness(False, limit, problems=[f"ledger: did not answer a query ({type(exc).__name__})"])
    state = Readiness(True, limit)
    for name in polled_accounts(rt):
        at = polls.get(name)
        state.polls[name] = at
        if at is None:
            state.problems.append(f"account {name}: no successful order poll yet")
        elif (now - at).total_seconds() > limit:
            state.problems.append(f"account {name}: last successful order poll "
                                  f"{(now - at).total_seconds():.0f} s ago (limit {limit:g} s)")
    return state


def queries(rt: Runtime) -> MetricsQueries:
    ledger = rt.ledger
    if not isinstance(ledger, MetricsQueries):
        raise TypeError(f"{type(ledger).__name__} does not provide the metrics queries (MetricsQueries)")
    return ledger


# -- the ledger, read at scrape time ---------------------------------------------------------------


class LedgerCollector:
    """The ledger's figures as metric families, computed when Prometheus scrapes."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._vtr_lock = threading.Lock()
        self._vtr: tuple[float, list[Metric]] | None = None  # (computed at, on clock.monotonic; families)

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("mfn_build_info", "The running mfn-connector's version (always 1)",
                                 labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        now = clock.now()
        try:
            families = list(self._ledger_families(now))
            up = 1
        except Exception:  # noqa: BLE001 - the scrape still answers, and says the ledger did not
            log.exception("metrics: reading the ledger failed")
            families, up = [], 0
        yield _gauge("mfn_ledger_up", "1 when the ledger answered this scrape's queries, else 0", up)
        ready = readiness(self.rt, now)
        yield _gauge("mfn_ready", "1 when /readyz answers 200 (ledger reachable, every polled account polled "
                     "within api.ready_poll_max_age_seconds), else 0", int(ready.ready))
        yield _gauge("mfn_ready_poll_max_age_seconds", "The poll age /readyz tolerates",
                     ready.max_poll_age_seconds)
        yield from families
        if up:
            yield from self._vtr_families(now)

    def _ledger_families(self, now: datetime) -> Iterator[Metric]:
        ledger, q = self.rt.ledger, queries(self.rt)
        counts = ledger.counts()
        orders = GaugeMetricFamily("mfn_orders", "Orders in the ledger, by state", labels=["state"])
        for state in _known_first((s.value for s in OrderState), counts):
            orders.add_metric([state], counts.get(state, 0))
        yield orders
        held_counts = ledger.held_reasons()
        held = GaugeMetricFamily("mfn_orders_held", "Orders HELD for a person, by hold reason",
                                 labels=["reason"])
        for reason in _known_first((r.value for r in HoldReason), held_counts):
            held.add_metric([reason], held_counts.get(reason, 0))
        yield held

        spend_rows = q.label_spend()
        labels = CounterMetricFamily("mfn_labels_bought", "Labels bought (the carrier created the "
                                     "shipment), voided ones included, by carrier", labels=["carrier"])
        per_carrier: dict[str, int] = {}
        for row in spend_rows:
            per_carrier[row.carrier] = per_carrier.get(row.carrier, 0) + row.labels
        for carrier, n in sorted(per_carrier.items()):
            labels.add_metric([carrier], n)
        spend = CounterMetricFamily("mfn_label_spend", "What the labels bought cost (their plan's cost, in "
                                    "the carrier's currency), voided ones included",
                                    labels=["carrier", "currency"])
        refunds = CounterMetricFamily("mfn_label_refunds", "What voided labels were refunded",
                                      labels=["carrier", "currency"])
        for row in spend_rows:
            spend.add_metric([row.carrier, row.currency], row.spend)
            refunds.add_metric([row.carrier, row.currency], row.refunded)
        yield from (labels, spend, refunds)

        newest, cursors = q.event_positions()
        yield _gauge("mfn_outbox_newest_event_id", "Id of the newest event in the outbox", newest)
        lag = GaugeMetricFamily("mfn_outbox_lag_events", "Events in the outbox a consumer has not read yet "
                                "(hooks: the in-process plugin hooks; webhook:NAME: an endpoint's queue)",
                                labels=["consumer"])
        for consumer, cursor in sorted(cursors.items()):
            lag.add_metric([consumer], max(0, newest - cursor))
        yield lag
        endpoints = [e.name for e in self.rt.config.webhooks.endpoints]
        deliveries = GaugeMetricFamily("mfn_webhook_deliveries", "Webhook deliveries by endpoint and state "
                                       "(pending, delivered, dead)", labels=["endpoint", "state"])
        for endpoint in endpoints:
            found = ledger.webhook_counts(endpoint)
            for state in _known_first(("pending", "delivered", "dead"), found):
                deliveries.add_metric([endpoint, state], found.get(state, 0))
        yield deliveries
        oldest = q.oldest_pending_webhooks()
        age = GaugeMetricFamily("mfn_webhook_oldest_pending_age_seconds", "How long the oldest delivery "
                                "still pending has waited, since its event or its replay, by endpoint "
                                "(0: nothing pending)",
                                labels=["endpoint"])
        for endpoint in sorted(set(endpoints) | set(oldest)):
            at = oldest.get(endpoint)
            age.add_metric([endpoint], 0.0 if at is None else max(0.0, (now - at).total_seconds()))
        yield age

        polls = q.poll_times()
        last = GaugeMetricFamily("mfn_order_poll_last_success_timestamp_seconds", "When the account's "
                                 "order poll last succeeded (Unix time; absent before the first)",
                                 labels=["account"])
        poll_age = GaugeMetricFamily("mfn_order_poll_age_seconds", "Seconds since the account's order poll "
                                     "last succeeded, on the daemon's clock", labels=["account"])
        for name in polled_accounts(self.rt):
            if name in polls:
                last.add_metric([name], polls[name].timestamp())
                poll_age.add_metric([name], max(0.0, (now - polls[name]).total_seconds()))
        yield from (last, poll_age)

        alerts = q.open_alert_counts()
        open_alerts = GaugeMetricFamily("mfn_alerts_open", "Open alerts (report alerts), by kind",
                                        labels=["kind"])
        for kind, n in sorted(alerts.items()):
            open_alerts.add_metric([kind], n)
        yield open_alerts

    def _vtr_families(self, now: datetime) -> list[Metric]:
        with self._vtr_lock:
            tick = clock.monotonic()
            if self._vtr is None or tick - self._vtr[0] >= VTR_CACHE_SECONDS:
                try:
                    self._vtr = (tick, vtr_families(self.rt, now))
                except Exception:  # noqa: BLE001 - the other figures still go out
                    log.exception("metrics: computing the valid-tracking rate failed")
                    return []
            return self._vtr[1]


def vtr_families(rt: Runtime, now: datetime) -> list[Metric]:
    """The valid-tracking rate per site and per (site, category), as ``report vtr`` counts it."""
    from .engine.vtr import report, shipped_packages

    window = rt.config.alerts.window_days
    first_scan_days = rt.config.tracking.first_scan_days
    figures = report(shipped_packages(rt, since=now - timedelta(days=window)), now=now, window_days=window,
                     first_scan_days=first_scan_days)
    by_site, by_category = figures["sites"], figures["vtr"]
    help_tail = f"over the last {window:g} days by promised delivery date"
    counted = GaugeMetricFamily("mfn_vtr_packages", f"Confirmed packages counted in the rate, {help_tail}",
                                labels=["site"])
    rate = GaugeMetricFamily("mfn_vtr_ratio", f"Valid-tracking rate (0-1) per site, {help_tail}; absent "
                             "while no package counts", labels=["site"])
    projected = GaugeMetricFamily("mfn_vtr_projected_ratio", "Where the valid-tracking rate is heading "
                                  "(0-1): upcoming packages included, those still awaiting their first "
                                  "scan left out; what the daemon's alerts watch", labels=["site"])
    rows = {row["site"]: row for row in by_site}
    sites = sorted({s for a in rt.config.accounts for s in a.marketplaces} | set(rows))
    for site in sites:
        row = rows.get(site, {})
        counted.add_metric([site], row.get("packages", 0))
        _add_ratio(rate, [site], row.get("rate"))
        _add_ratio(projected, [site], row.get("projected"))
    category_rate = GaugeMetricFamily("mfn_vtr_category_ratio", "Valid-tracking rate (0-1) per site and "
                                      "product category (how Amazon judges it)", labels=["site", "category"])
    category_projected = GaugeMetricFamily("mfn_vtr_category_projected_ratio", "Projected valid-tracking "
                                           "rate (0-1) per site and product category",
                                           labels=["site", "category"])
    for row in by_category:
        _add_ratio(category_rate, [row["site"], row["category"]], row["rate"])
        _add_ratio(category_projected, [row["site"], row["category"]], row["projected"])
    return [counted, rate, projected, category_rate, category_projected]


# -- the scrape ------------------------------------------------------------------------------------


class _Scrape:
    """The process registry and one runtime's ledger figures, as one registry to expose."""

    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition(collector: LedgerCollector) -> bytes:
    """Every metric in the Prometheus text format (:data:`CONTENT_TYPE`)."""
    return generate_latest(_Scrape(REGISTRY, collector))  # type: ignore[arg-type]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _add_ratio(family: GaugeMetricFamily, labels: list[str], percent: float | None) -> None:
    if percent is not None:
        family.add_metric(labels, round(percent / 100, 6))


def _known_first(known: Iterable[str], found: dict[str, Any]) -> list[str]:
    """Every known value (zeros included: a series that appears from nowhere breaks rate() and
    alerts), then any other value the ledger holds (a plugin's hold reason...)."""
    known = list(known)
    return known + sorted(k for k in found if k not in known)
