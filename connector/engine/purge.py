"""Data protection: erase buyer PII once Amazon's retention window has passed.

Amazon's Data Protection Policy allows buyer PII for 30 days after delivery
(docs/amazon-sp-api.md#data-protection). The address goes ``ledger.pii_retention_days`` after the
parcel's life ended: its delivery, or its return to the sender. Only a parcel that never reaches
such an end (lost, or not followed any more) falls back to the ship date +
``ledger.max_transit_days`` + the retention. A cancelled or voided order keeps nothing, and neither
does a held order Amazon has cancelled: nothing of it can ship any more (Amazon confirms no shipment
of a cancelled order), and a hold no one settles must not keep the address for good. Order ids,
tracking numbers and totals stay.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..ledger import (
    NOTHING_TO_SHIP_STATES,
    SHIPPED_ORDER_STATES,
    TRACKED_PACKAGE_STATES,
    OrderState,
    Package,
    PackageState,
)
from ..model import utcnow
from .runtime import Runtime

log = logging.getLogger("connector.engine")

_CONFIRMED = frozenset({PackageState.CONFIRMED, *TRACKED_PACKAGE_STATES})


def purge_expired_pii(rt: Runtime, *, now: datetime | None = None) -> int:
    """Erase the addresses past the retention window. The ledger selects them in SQL by the rule
    :func:`life_end` states, reading only the orders whose address is still there and decrypting
    nothing, so an hourly sweep with nothing due costs next to nothing however long the history."""
    settings = rt.config.ledger
    retention = timedelta(days=settings.pii_retention_days)
    fallback = timedelta(days=settings.max_transit_days)
    now = now or utcnow()
    expired = rt.ledger.pii_expired(
        gone=NOTHING_TO_SHIP_STATES,  # nothing to ship: no reason to keep the address
        shipped=[*SHIPPED_ORDER_STATES, OrderState.HELD, OrderState.ISSUED],
        confirmed=_CONFIRMED, ended_before=now - retention, shipped_before=now - retention - fallback,
        cancelled=[OrderState.HELD])  # what else Amazon cancelled settles soon: void or cancel
    if not expired:
        return 0
    purged = rt.ledger.purge_pii(expired)
    log.info("purged buyer PII of %d order(s) past the retention window", purged)
    return purged


def life_end(package: Package, fallback: timedelta) -> datetime | None:
    """When the parcel's life ended (delivered, returned), or its ship date + ``fallback`` when it
    never reached an end; None for a package not confirmed on Amazon (a held order's PII stays
    while it may still ship). An order's address goes once its packages with an end all ended
    ``pii_retention_days`` ago (and at least one has an end): the rule the ledger's
    ``pii_expired`` applies in SQL."""
    if package.state is PackageState.DELIVERED and package.delivered_at:
        return package.delivered_at
    if package.state is PackageState.RETURNED and package.last_scan_at:
        return package.last_scan_at
    if package.shipped_at and package.state in _CONFIRMED:
        return package.shipped_at + fallback
    return None
