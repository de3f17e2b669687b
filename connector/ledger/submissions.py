"""ERP submissions: an order the ERP hands over (provider mode) or a label it bought elsewhere
(confirm-only), keyed by the ERP's own idempotency key.

The key, the order and (for confirm-only) its LABELED package are written in one transaction, so a
request repeated with the same key -- after a timeout, or after the server was killed -- finds the
order it created and never creates a second. The request's digest tells a true repeat from a key
reused for another request. Mixed into the SQL ledger stores.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..holds import HoldReason
from ..model import Order
from .base import OrderState, PackageState

KINDS = ("shipment", "confirmation")
# A request's digest hashes the whole request, the buyer's address with it, so it is erased with the
# address (purge_pii). A request repeated after that cannot be told from a key reused for another: it
# is answered with what its key made, as any repeat is (a key names one request forever).
PURGED_DIGEST = "purged"


def same_request(stored: str, digest: str) -> bool:
    """Whether a request with ``digest`` repeats the one stored under its key."""
    return stored in (digest, PURGED_DIGEST)


class SubmissionConflict(Exception):
    """The key was used for a different request (``field`` idempotency_key), or the order already
    came another way (``field`` order_id)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Submission:
    idempotency_key: str
    order_id: str
    kind: str
    request_digest: str
    created: bool  # True when this call created it; False for a repeat of the same request


@dataclass(frozen=True)
class ExternalLabel:
    """A label the ERP bought elsewhere, to be confirmed here (confirm-only)."""

    carrier: str
    service: str
    tracking_number: str
    items: list[dict[str, Any]]


class SubmissionStore:
    def submission(self, idempotency_key: str) -> Submission | None:
        row = self._conn().execute("SELECT * FROM submissions WHERE idempotency_key = ?",
                                   (idempotency_key,)).fetchone()
        return _submission(row, created=False) if row is not None else None

    def submit(self, idempotency_key: str, kind: str, digest: str, order: Order,
               label: ExternalLabel | None = None) -> Submission:
        """Record the submission and its order (NEW; or, with ``label``, LABELED with that label as
        package 1) in one transaction; a repeat of the same request returns the first one."""
        if kind not in KINDS:
            raise ValueError(f"unknown submission kind {kind!r}")
        with self._write() as conn:
            row = conn.execute("SELECT * FROM submissions WHERE idempotency_key = ?",
                               (idempotency_key,)).fetchone()
            if row is not None:
                if not same_request(row["request_digest"], digest) or row["kind"] != kind:
                    raise SubmissionConflict(
                        f"idempotency key {idempotency_key!r} was used for another request (order "
                        f"{row['order_id']}); a key names one request forever", "idempotency_key")
                return _submission(row, created=False)
            now = self._now()
            known = conn.execute("SELECT state, hold_reason, pii_purged_at FROM orders WHERE order_id = ?",
                                 (order.order_id,)).fetchone()
            if known is None:
                self._insert_order(conn, order, now, f"submitted by the ERP ({kind})")
            elif self._awaits_the_erp(conn, order.order_id, known):
                self._take_over(conn, order, now, kind)
            else:
                raise SubmissionConflict(f"order {order.order_id} is already in the ledger (polled from "
                                         "Amazon or submitted under another key)", "order_id")
            conn.execute("INSERT INTO submissions (idempotency_key, order_id, kind, request_digest,"
                         " created_at) VALUES (?, ?, ?, ?, ?)",
                         (idempotency_key, order.order_id, kind, digest, now))
            if label is not None:
                self._insert_external_label(conn, order, label, now)
            row = conn.execute("SELECT * FROM submissions WHERE idempotency_key = ?",
                               (idempotency_key,)).fetchone()
        return _submission(row, created=True)

    @staticmethod
    def _awaits_the_erp(conn: Any, order_id: str, row: Any) -> bool:
        """An order polled before its account was handed to the ERP, held for it and never given a
        package: the ERP's submission takes it over (the documented way out of that hold). Not once
        its buyer data was purged: the purge is final, and a new address would never be purged."""
        if (row["state"] != OrderState.HELD.value or row["hold_reason"] != HoldReason.OWNED_BY_ERP.value
                or row["pii_purged_at"] is not None):
            return False
        package = conn.execute("SELECT 1 FROM packages WHERE order_id = ? LIMIT 1", (order_id,)).fetchone()
        return package is None

    def _take_over(self, conn: Any, order: Order, now: str, kind: str) -> None:
        """The held order becomes the ERP's, NEW, with the submitted data and address."""
        self._rewrite_order(conn, order)
        self._set_state(conn, order.order_id, OrderState.HELD.value, OrderState.NEW, now,
                        f"taken over by the ERP's submission ({kind})")

    def _insert_external_label(self, conn: Any, order: Order, label: ExternalLabel, now: str) -> None:
        cur = conn.execute(
            "INSERT INTO packages (order_id, package_ref, idempotency_key, carrier, service, state, items,"
            " tracking_number, plan, created_at, updated_at) VALUES (?, '1', ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " RETURNING id",
            (order.order_id, f"{order.order_id}-1", label.carrier, label.service, PackageState.LABELED.value,
             json.dumps(label.items), label.tracking_number,
             json.dumps({"bought_by": "erp"}), now, now))
        self._transition(conn, order.order_id, int(cur.fetchone()[0]), now, None, PackageState.LABELED.value,
                         f"package 1: {label.carrier} {label.tracking_number}, bought by the ERP")
        self._set_state(conn, order.order_id, OrderState.NEW.value, OrderState.LABELED, now,
                        "label bought by the ERP; to be confirmed")


def _submission(row: Any, *, created: bool) -> Submission:
    return Submission(row["idempotency_key"], row["order_id"], row["kind"], row["request_digest"], created)
