"""Orders held for an unknown SKU, released once the item master knows every SKU they need.

Called after SKUs are upserted (the HTTP API's ``PUT /v1/items/{sku}`` and ``POST /v1/items/bulk``)
when ``api.auto_release_unknown_sku`` is on. A released order goes back to the state it was held
from and the daemon plans it again, checking everything anew (an address or a cancel request may
hold it again, for that reason).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

from ..holds import HoldReason
from ..ledger import OrderRecord, OrderState, StaleStateError
from .runtime import Runtime

log = logging.getLogger("connector.engine")


def release_known_skus(rt: Runtime) -> list[str]:
    """Release every order HELD ``unknown_sku`` whose SKUs (lines with a quantity left to ship) are
    all in ``rt.catalog`` now; returns their order ids, oldest first."""
    released: list[str] = []
    for record in _held_for_unknown_sku(rt):
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


def _held_for_unknown_sku(rt: Runtime, page: int = 500) -> Iterator[OrderRecord]:
    """The orders held ``unknown_sku``, oldest first, without their addresses: nothing here needs
    them, and one sealed with a key no longer configured must not stop the release of the others."""
    after = None
    while True:
        rows = rt.ledger.order_page(states=[OrderState.HELD], hold_reason=HoldReason.UNKNOWN_SKU.value,
                                    after=after, limit=page)
        for record, _ in rows:
            yield record
        if len(rows) < page:
            return
        after = (rows[-1][1], rows[-1][0].order_id)
