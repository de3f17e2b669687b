"""The aggregates ``/metrics`` and ``/readyz`` read at scrape time, one short query each.

Mixed into the SQL ledger stores; uses their ``_conn``, ``dialect`` and ``_bad_data``. Reads only
(no write lock, no buyer data). Reading JSON is spelt per dialect (SQLite's ``json_extract``,
guarded by ``json_valid``; PostgreSQL's ``#>>``, which a row whose stored JSON is invalid -- a hand
edit, a restore gone wrong -- fails as a whole: PostgreSQL 15 cannot test JSON before casting it,
so then, and only then, the label spend is read again row by row in Python).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..model import parse_iso
from .base import PackageState
from .stored import stored_json

# A label exists (was paid for) once the carrier created the shipment: every state from
# LABEL_CREATED on, voided ones included (their refund is counted apart). PLANNED and
# LABEL_CLAIMED have bought nothing yet (a claim whose call was lost is resolved to one or the
# other); FAILED never had a label.
_NOT_BOUGHT = tuple(s.value for s in (PackageState.PLANNED, PackageState.LABEL_CLAIMED, PackageState.FAILED))
_NOT_BOUGHT_MARKS = ", ".join("?" * len(_NOT_BOUGHT))

_SPEND_PAGE = 5000  # packages per read, row by row: a page of plans is held, not the ledger's

# What a label cost, in SQL: the plan's ``cost`` (price after discounts, in the carrier's currency),
# else its ``price`` (plans stored before costs were) -- as void.py reads it for the refund.
_JSON_FIELD = {
    "sqlite": "CASE WHEN json_valid({column}) THEN json_extract({column}, '$.{path}') END",
    "postgresql": "CASE WHEN {column} <> '' THEN ({column}::json #>> '{{{path_pg}}}') END",
}


def _json_field(dialect: str, column: str, path: str) -> str:
    """SQL reading ``path`` (dotted) from the JSON text in ``column``; NULL when absent."""
    return _JSON_FIELD[dialect].format(column=column, path=path, path_pg=path.replace(".", ","))


def _cost_sql(dialect: str, f: str) -> str:
    return (f"COALESCE({_json_field(dialect, 'plan', f'cost.{f}')},"
            f" {_json_field(dialect, 'plan', f'price.{f}')})")


def _refund_sql(dialect: str, f: str) -> str:
    return f"CASE WHEN state = 'VOIDED' THEN {_json_field(dialect, 'refund', f)} END"


def _at(value: Any, *path: str) -> Any:
    """``path`` read from the JSON ``value``; None when absent."""
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# The same, row by row. The JSON columns hold what the ledger wrote (json.dumps), or '' for a
# refund never recorded.
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
        try:
            return self._label_spend_in_sql()
        except self.db_errors as exc:
            if not self._bad_data(exc):
                raise
            return self._label_spend_row_by_row()  # (PostgreSQL: a stored JSON or amount it cannot cast)

    def _label_spend_in_sql(self) -> list[LabelSpend]:
        dialect = self.dialect
        currency = f"COALESCE({_cost_sql(dialect, 'currency')}, '')"
        rows = self._conn().execute(
            f"SELECT carrier, {currency} AS currency, COUNT(*) AS labels,"
            f" COALESCE(SUM(CAST({_cost_sql(dialect, 'amount')} AS DOUBLE PRECISION)), 0) AS spend,"
            f" COALESCE(SUM(CAST({_refund_sql(dialect, 'amount')} AS DOUBLE PRECISION)), 0) AS refunded"
            f" FROM packages WHERE state NOT IN ({_NOT_BOUGHT_MARKS})"
            f" GROUP BY carrier, {currency} ORDER BY carrier, 2", _NOT_BOUGHT).fetchall()
        return [LabelSpend(r["carrier"], r["currency"], int(r["labels"]), round(float(r["spend"]), 6),
                           round(float(r["refunded"]), 6)) for r in rows]

    def _label_spend_row_by_row(self) -> list[LabelSpend]:
        totals: dict[tuple[str, str], list[float]] = {}
        for carrier, state, plan_text, refund in self._bought_labels():
            plan = stored_json(plan_text)
            currency = _cost(plan, "currency")
            total = totals.setdefault((carrier, "" if currency is None else str(currency)), [0, 0.0, 0.0])
            total[0] += 1
            total[1] += _amount(_cost(plan, "amount"))
            if state == PackageState.VOIDED.value:
                total[2] += _amount(_at(stored_json(refund), "amount"))
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
