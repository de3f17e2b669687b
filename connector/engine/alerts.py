"""Alerts: what a person must look at, raised once per (kind, subject) until it clears.

An alert goes to the log (WARNING), to the ``mfn_alert`` hook (an ERP, a chat bot) and into the
ledger, which keeps it open so the next pass does not raise it again; :func:`clear` closes it
when the cause is gone (a late parcel delivered, a rate back above the bar). The kinds are
explained in docs/tracking.md.
"""
from __future__ import annotations

import enum
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger("connector.alerts")


class AlertKind(str, enum.Enum):
    VTR_BELOW_THRESHOLD = "vtr_below_threshold"              # subject: SITE/category
    SERVICE_VTR_BELOW_THRESHOLD = "service_vtr_below_threshold"  # subject: carrier:service
    PARCEL_LOST = "parcel_lost"                              # subject: order id
    PARCEL_LATE = "parcel_late"                              # subject: order id
    SHIP_BY_NEAR = "ship_by_near"                            # subject: order id
    CARRIER_CREDENTIALS_REFUSED = "carrier_credentials_refused"  # subject: carrier code (or code:tracking)
    CARRIER_FILED_DIFFERENTLY = "carrier_filed_differently"  # subject: SITE:carrier code sent
    AMAZON_CREDENTIALS_REFUSED = "amazon_credentials_refused"  # subject: account name


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


class KnownOpen:
    """The open alerts of one kind as this process knows them, for a check made on a hot path (every
    quote, every verification): "nothing to clear" needs no ledger read, and a cause seen again and
    again raises once. Read from the ledger at first use and again every :attr:`REFRESH_S` seconds
    (another worker, or an earlier run, may have raised or cleared one), and kept up to date by
    this process's own raises and clears."""

    REFRESH_S = 300.0

    def __init__(self, kind: AlertKind) -> None:
        self.kind = kind
        self._subjects: set[str] = set()
        self._raised: set[str] = set()  # raised by this process since it last cleared them
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def _known(self, rt: Runtime) -> set[str]:  # under the lock
        now = time.monotonic()
        if self._read_at is None or now - self._read_at > self.REFRESH_S:
            self._subjects = {a.subject for a in rt.ledger.alerts(kind=self.kind.value)}
            # one of ours that another worker cleared since: its cause seen here again raises it again
            self._raised &= self._subjects
            self._read_at = now
        return self._subjects

    def raise_once(self, rt: Runtime, subject: str, message: str, **details: Any) -> bool:
        """Raise the alert unless this process raised it already (and has not cleared it since);
        True when it did now (once a run: an alert left open by an earlier run is raised again)."""
        with self._lock:
            known = self._known(rt)
            if subject in self._raised:
                return False
            self._raised.add(subject)
            known.add(subject)
        alert(rt, self.kind, subject, message, **details)
        return True

    def clear(self, rt: Runtime, subject: str) -> None:
        with self._lock:
            self._raised.discard(subject)
            known = self._known(rt)
            if subject not in known:
                return
            known.discard(subject)
        clear(rt, self.kind, subject)
