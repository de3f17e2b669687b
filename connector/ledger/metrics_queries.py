"""The aggregates ``/metrics`` and ``/readyz`` read at scrape time, one short query each (the
label spend, a page of packages at a time).

Mixed into the SQL ledger stores; uses their ``_conn``. Reads only (no write lock, no buyer
data), in SQL both stores share. JSON is read here, not in SQL: there one row whose stored JSON is
invalid (a hand edit, a restore gone wrong) failed the whole read on PostgreSQL, which cannot test
JSON before casting it.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..model import parse_iso
from .base import PackageState

# A label exists (was paid for) once the carrier created the shipment: every state from
# LABEL_CREATED on, voided ones included (their refund is counted apart). PLANNED and
# LABEL_CLAIMED have bought nothing yet (a claim whose call was lost is resolved to one or the
# other); FAILED never had a label.
_NOT_BOUGHT = tuple(s.value for s in (PackageState.PLANNED, PackageState.LABEL_CLAIMED, PackageState.FAILED))
_NOT_BOUGHT_MARKS = ", ".join("?" * len(_NOT_BOUGHT))

_SPEND_PAGE = 5000  # packages per read: a page of plans is held, not the ledger's


def _json(text: str | None) -> Any:
    """The JSON stored in ``text``; None when there is none, or it is no JSON."""
    try:
        return json.loads(text or "null")
    except ValueError:
        return None


def _at(value: Any, *path: str) -> Any:
    """``path`` read from the JSON ``value``; None when absent."""
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# What a label cost: the plan's ``cost`` (price after discounts, in the carrier's currency), else
# its ``price`` (plans stored before costs were) -- as void.py reads it for the refund.
# The JSON columns hold what the ledger wrote (json.dumps), or '' for a refund never recorded.
def _cost(plan: Any, field: str) -> Any:
    cost = _at(plan, "cost", field)
    return cost if cost is not None else _at(plan, "price", field)


def _amount(value: Any) -> float:
    """An amount as stored (a decimal string); 0 when there is none, or it is no number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class LabelSpend:
    """Labels bought from one carrier, in one currency, since the ledger began."""

    carrier: str
    currency: str  # '' when the package's plan names no cost
    labels: int
    spend: float
    refunded: float  # what voided labels gave back


class MetricsQueries:
    """label_spend / poll_times / event_positions / oldest_pending_webhooks / open_alert_counts."""

    def label_spend(self) -> list[LabelSpend]:
        """Every label bought, by carrier and currency: how many, their cost and the refunds of the
        voided ones (totals over the ledger's life: they only grow). A label whose plan cannot be
        read counts under no currency (''), at no cost; a refund that cannot be read, as none."""
        totals: dict[tuple[str, str], list[float]] = {}
        for carrier, state, plan_text, refund in self._bought_labels():
            plan = _json(plan_text)
            currency = _cost(plan, "currency")
            total = totals.setdefault((carrier, "" if currency is None else str(currency)), [0, 0.0, 0.0])
            total[0] += 1
            total[1] += _amount(_cost(plan, "amount"))
            if state == PackageState.VOIDED.value:
                total[2] += _amount(_at(_json(refund), "amount"))
        return [LabelSpend(carrier, currency, int(labels), round(spend, 6), round(refunded, 6))
                for (carrier, currency), (labels, spend, refunded) in sorted(totals.items())]

    def _bought_labels(self) -> Iterator[tuple[str, str, str, str]]:
        """(carrier, state, plan, refund) of every package whose label was bought, a page at a time."""
        after = 0
        while True:
            rows = self._conn().execute(
                f"SELECT id, carrier, state, plan, refund FROM packages WHERE id > ?"
                f" AND state NOT IN ({_NOT_BOUGHT_MARKS}) ORDER BY id LIMIT ?",
                (after, *_NOT_BOUGHT, _SPEND_PAGE)).fetchall()
            yield from ((r[1], r[2], r[3], r[4]) for r in rows)
            if len(rows) < _SPEND_PAGE:
                return
            after = rows[-1][0]

    def poll_times(self) -> dict[str, datetime]:
        """When each account's order poll last succeeded: its watermark row is written only after a
        whole sweep is in the ledger (``updated_at``, on the ledger's clock)."""
        rows = self._conn().execute("SELECT account, updated_at FROM watermarks").fetchall()
        return {r["account"]: parse_iso(r["updated_at"]) for r in rows}

    def event_positions(self) -> tuple[int, dict[str, int]]:
        """The newest event id of the outbox, and each consumer's cursor (``hooks``,
        ``webhook:<endpoint>``): how far behind the outbox each one reads."""
        conn = self._conn()
        newest = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])
        rows = conn.execute("SELECT consumer, last_event_id FROM event_cursors").fetchall()
        return newest, {r["consumer"]: int(r["last_event_id"]) for r in rows}

    def oldest_pending_webhooks(self) -> dict[str, datetime]:
        """Per endpoint with deliveries still pending, since when the oldest pending one waits: its
        event's time, or its replay's (``webhooks replay`` of old events is no stuck receiver)."""
        rows = self._conn().execute(
            "SELECT d.endpoint, MIN(COALESCE(d.replayed_at, e.at)) AS oldest FROM webhook_deliveries d"
            " JOIN events e ON e.id = d.event_id WHERE d.state = 'pending' GROUP BY d.endpoint").fetchall()
        return {r["endpoint"]: parse_iso(r["oldest"]) for r in rows}

    def open_alert_counts(self) -> dict[str, int]:
        """Open (unresolved) alerts by kind."""
        rows = self._conn().execute("SELECT kind, COUNT(*) AS n FROM alerts WHERE resolved_at IS NULL"
                                    " GROUP BY kind").fetchall()
        return {r["kind"]: int(r["n"]) for r in rows}
