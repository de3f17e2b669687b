"""The aggregates ``/metrics`` and ``/readyz`` read at scrape time, one short query each.

Mixed into the SQL ledger stores; uses their ``_conn`` and ``dialect``. Reads only (no write
lock, no buyer data). Reading JSON is spelt per dialect (SQLite's ``json_extract``, PostgreSQL's
``#>>``); everything else is shared SQL.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..model import parse_iso
from .base import PackageState

# A label exists (was paid for) once the carrier created the shipment: every state from
# LABEL_CREATED on, voided ones included (their refund is counted apart). PLANNED and
# LABEL_CLAIMED have bought nothing yet (a claim whose call was lost is resolved to one or the
# other); FAILED never had a label.
_NOT_BOUGHT = tuple(s.value for s in (PackageState.PLANNED, PackageState.LABEL_CLAIMED, PackageState.FAILED))
_NOT_BOUGHT_MARKS = ", ".join("?" * len(_NOT_BOUGHT))

# What a label cost: the plan's ``cost`` (price after discounts, in the carrier's currency), else
# its ``price`` (plans stored before costs were) -- as void.py reads it for the refund.
# The JSON columns hold what the ledger wrote (json.dumps), or '' for a refund never recorded.
_JSON_FIELD = {
    "sqlite": "CASE WHEN json_valid({column}) THEN json_extract({column}, '$.{path}') END",
    "postgresql": "CASE WHEN {column} <> '' THEN ({column}::json #>> '{{{path_pg}}}') END",
}


def _json_field(dialect: str, column: str, path: str) -> str:
    """SQL reading ``path`` (dotted) from the JSON text in ``column``; NULL when absent."""
    return _JSON_FIELD[dialect].format(column=column, path=path, path_pg=path.replace(".", ","))


def _cost(dialect: str, f: str) -> str:
    return (f"COALESCE({_json_field(dialect, 'plan', f'cost.{f}')},"
            f" {_json_field(dialect, 'plan', f'price.{f}')})")


def _refund(dialect: str, f: str) -> str:
    return f"CASE WHEN state = 'VOIDED' THEN {_json_field(dialect, 'refund', f)} END"


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
        voided ones (totals over the ledger's life: they only grow)."""
        dialect = self.dialect
        currency = f"COALESCE({_cost(dialect, 'currency')}, '')"
        rows = self._conn().execute(
            f"SELECT carrier, {currency} AS currency, COUNT(*) AS labels,"
            f" COALESCE(SUM(CAST({_cost(dialect, 'amount')} AS DOUBLE PRECISION)), 0) AS spend,"
            f" COALESCE(SUM(CAST({_refund(dialect, 'amount')} AS DOUBLE PRECISION)), 0) AS refunded"
            f" FROM packages WHERE state NOT IN ({_NOT_BOUGHT_MARKS})"
            f" GROUP BY carrier, {currency} ORDER BY carrier, 2", _NOT_BOUGHT).fetchall()
        return [LabelSpend(r["carrier"], r["currency"], int(r["labels"]), round(float(r["spend"]), 6),
                           round(float(r["refunded"]), 6)) for r in rows]

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
