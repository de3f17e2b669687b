"""Orders held for an unknown SKU, released once the item master knows every SKU they need.

Called after SKUs are upserted (the HTTP API's ``PUT /v1/items/{sku}`` and ``POST /v1/items/bulk``)
when ``api.auto_release_unknown_sku`` is on. A released order goes back to the state it was held
from and the daemon plans it again, checking everything anew (an address or a cancel request may
hold it again, for that reason).
"""
from __future__ import annotations

import logging

from ..holds import HoldReason
from ..ledger import StaleStateError
from .runtime import Runtime
from .steer import held_for

log = logging.getLogger("connector.engine")


def release_known_skus(rt: Runtime) -> list[str]:
    """Release every order HELD ``unknown_sku`` whose SKUs (lines with a quantity left to ship) are
    all in ``rt.catalog`` now; returns their order ids, oldest first."""
    released: list[str] = []
    for record in held_for(rt.ledger, HoldReason.UNKNOWN_SKU.value):
        skus = {i.sku for i in record.order.items if i.quantity > 0}
        if not skus or any(rt.catalog.get(sku) is None for sku in sorted(skus)):
            continue
        try:
            rt.ledger.release(record.order_id)
        except (StaleStateError, KeyError):  # released, purged or changed meanwhile: not ours to move
            continue
        log.info("order %s released: SKU %s now in the item master", record.order_id, ", ".join(sorted(skus)))
        released.append(record.order_id)
    return released

