"""Alerts: what a person must look at, raised once per (kind, subject) until it clears.

An alert goes to the log (WARNING), to the ``mfn_alert`` hook (an ERP, a chat bot) and into the
ledger, which keeps it open so the next pass does not raise it again; :func:`clear` closes it
when the cause is gone (a late parcel delivered, a rate back above the bar). The kinds are
explained in docs/tracking.md.
"""
from __future__ import annotations

import enum
import logging
from typing import Any

from .runtime import Runtime

log = logging.getLogger("connector.alerts")


class AlertKind(str, enum.Enum):
    VTR_BELOW_THRESHOLD = "vtr_below_threshold"              # subject: SITE/category
    SERVICE_VTR_BELOW_THRESHOLD = "service_vtr_below_threshold"  # subject: carrier:service
    PARCEL_LOST = "parcel_lost"                              # subject: order id
    PARCEL_LATE = "parcel_late"                              # subject: order id
    SHIP_BY_NEAR = "ship_by_near"                            # subject: order id
    CARRIER_CREDENTIALS_REFUSED = "carrier_credentials_refused"  # subject: carrier code
    CARRIER_FILED_DIFFERENTLY = "carrier_filed_differently"  # subject: SITE:carrier code sent


def alert(rt: Runtime, kind: AlertKind, subject: str, message: str, **details: Any) -> bool:
    """Raise (or refresh) an alert; True when it is new, and only then is it logged (its event
    reaches the ``mfn_alert`` hook and the webhooks through the outbox)."""
    if not rt.ledger.raise_alert(kind.value, subject, message, details):
        return False
    log.warning("alert %s %s: %s", kind.value, subject, message)
    return True


def clear(rt: Runtime, kind: AlertKind, subject: str) -> None:
    if rt.ledger.resolve_alert(kind.value, subject):
        log.info("alert %s %s cleared", kind.value, subject)
