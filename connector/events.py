"""The event catalogue: what the ledger's outbox says happened, for ERPs and webhooks.

Every state change the ledger commits writes its event in the same transaction (the outbox), so
an event exists if and only if the change does. This module only names the events and shapes
their data from a state change; ``docs/erp-integration.md`` lists them with payload examples.
Event data never carries buyer PII: order ids, states, carriers, tracking numbers, reasons.
"""
from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EVENT_TYPES: dict[str, str] = {
    "order.received": "a new order is in the ledger (nothing bought yet)",
    "order.held": "the order cannot go on; data.reason is a hold reason (docs/hold-reasons.md)",
    "order.released": "a held order goes back to where it was held from",
    "order.cancelled": "Amazon cancelled the order before a label was bought",
    "package.labeled": "a label is bought and on disk; data.tracking_number is known",
    "package.confirmed": "Amazon accepted the shipment confirmation (not yet read back)",
    "package.verified": "reading the order back from Amazon shows the package shipped",
    "package.issued": "a label bought for an ERP went to it unconfirmed (the ERP confirms it itself, or "
                      "it ships another channel's order); tracking follows",
    "package.voided": "the label was cancelled at the carrier after Amazon cancelled the order",
    "tracking.updated": "the carrier's scans moved the parcel (in transit, out for delivery, failed "
                        "attempt, returning, returned, lost)",
    "package.delivered": "the carrier scanned the delivery",
    "alert.*": "an alert was raised (alert.vtr_below_threshold, alert.parcel_lost, ...; docs/tracking.md)",
}
"""Event type -> what it means (``alert.*`` stands for one type per alert kind)."""

_PACKAGE_EVENTS = {"LABELED": "package.labeled", "CONFIRMED": "package.confirmed",
                   "VERIFIED": "package.verified", "ISSUED": "package.issued", "VOIDED": "package.voided",
                   "DELIVERED": "package.delivered"}
_BUYING_STATES = {"LABEL_CLAIMED", "LABEL_CREATED"}
_TRACKING_STATES = {"IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERY_FAILED", "RETURNING", "RETURNED", "LOST"}


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    order_id: str | None
    at: datetime
    data: Mapping[str, Any]

    @property
    def webhook_id(self) -> str:
        """Stable across every delivery attempt and replay: receivers deduplicate on it."""
        return f"evt_{self.id}"

    def payload(self) -> dict[str, Any]:
        """The JSON body of a webhook (Standard Webhooks: type, timestamp, data)."""
        return {"type": self.type, "timestamp": self.at.isoformat().replace("+00:00", "Z"),
                "data": {"event_id": self.webhook_id, **self.data}}

    def body(self) -> bytes:
        return json.dumps(self.payload(), sort_keys=True, separators=(",", ":")).encode()


def order_event(from_state: str | None, to_state: str) -> str | None:
    """The event of an order-level state change; ``None`` for the engine's internal steps."""
    if from_state == to_state:
        return None  # a note on the order (e.g. PII purged), not a change
    if from_state is None:
        return "order.received"
    if to_state == "HELD":
        return "order.held"
    if to_state == "CANCELLED":
        return "order.cancelled"
    if from_state == "HELD":
        return "order.released"
    return None


def package_events(from_state: str | None, to_state: str) -> tuple[tuple[str, str | None, str], ...]:
    """The events of a package state change, in order, each as (type, previous state, state); none
    for claims and other internal steps."""
    if from_state == to_state:
        return ()
    if to_state == "LABELED" and from_state not in _BUYING_STATES:
        return ()  # a confirmation that did not take rolls back to LABELED: no second label
    if from_state == "VOIDING" and to_state != "VOIDED":
        return ()  # a refused void goes back where it was: nothing new to tell (order.held says it)
    if to_state == "VERIFIED" and from_state == "CONFIRMING":
        # confirmShipment's answer was lost and the read-back found it shown: Amazon accepted it,
        # so an ERP that waits for package.confirmed hears it too, as it would have
        return (("package.confirmed", from_state, "CONFIRMED"), ("package.verified", "CONFIRMED", to_state))
    if to_state in _PACKAGE_EVENTS:
        return ((_PACKAGE_EVENTS[to_state], from_state, to_state),)
    if to_state in _TRACKING_STATES:
        return (("tracking.updated", from_state, to_state),)
    return ()


def matches(event_type: str, patterns: Iterable[str]) -> bool:
    """``patterns`` as an endpoint subscribes: exact types or globs (``package.*``, ``*``)."""
    return any(fnmatch.fnmatchcase(event_type, p) for p in patterns)
