"""Data protection: erase buyer PII once Amazon's retention window has passed.

Amazon's DPP allows PII for 30 days after delivery. Until tracking lands, delivery is assumed at
ship date + ``ledger.max_transit_days`` (a conservative bound for China-origin parcels), so the
address goes at ship date + max transit + retention days. Order ids, tracking numbers and totals
stay.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from ..ledger import OrderState, PackageState
from ..model import utcnow
from .runtime import Runtime

log = logging.getLogger("connector.engine")


def purge_expired_pii(rt: Runtime) -> int:
    settings = rt.config.ledger
    keep = timedelta(days=settings.max_transit_days + settings.pii_retention_days)
    now = utcnow()
    expired = []
    for record in rt.ledger.orders([OrderState.VERIFIED, OrderState.CANCELLED]):
        if record.pii_purged:
            continue
        if record.state == OrderState.CANCELLED:
            expired.append(record.order_id)  # nothing to ship: no reason to keep the address
            continue
        shipped = [p.shipped_at for p in rt.ledger.packages(record.order_id)
                   if p.state == PackageState.VERIFIED and p.shipped_at]
        if shipped and max(shipped) + keep <= now:
            expired.append(record.order_id)
    if not expired:
        return 0
    purged = rt.ledger.purge_pii(expired)
    log.info("purged buyer PII of %d order(s) past the retention window", purged)
    return purged
