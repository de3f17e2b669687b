"""The set-up the void and hold tests share: one sandbox order with its label bought and not yet
confirmed, and a carrier whose cancel fails as told."""
from __future__ import annotations

from connector.engine.loop import drive
from connector.kit.carrier import CarrierError, TransientCarrierError
from connector.ledger import OrderState
from connector.model import FulfillmentStatus

from ..e2e.helpers import ingest_all

YUNEXPRESS_WORLD = {"sandbox": {"orders": 8}, "routing": {"default": ["yunexpress:*"]},
                    "selection": {"overrides": []}, "engine": {"verify_grace_seconds": 0}}


def labelled_order(world):
    """A world of eight sandbox orders shipped by YunExpress, each driven to its label: the world,
    its runtime (the caller closes it) and an unshipped LABELED order's id."""
    w = world(YUNEXPRESS_WORLD)
    rt = w.runtime()
    ingest_all(rt)
    for record in rt.ledger.orders([OrderState.NEW]):
        drive(rt, record.order_id, lambda: False, 3)  # planned, bought, its label on disk
    order_id = next(r.order_id for r in rt.ledger.orders([OrderState.LABELED])
                    if r.order.status is FulfillmentStatus.UNSHIPPED)
    return w, rt, order_id


class CancelFails:
    """A carrier whose cancel raises ``error`` (a timeout unless told: the void stays in doubt);
    everything else is the carrier's own."""

    def __init__(self, carrier, error: CarrierError | None = None):
        self.carrier, self.error = carrier, error or TransientCarrierError("read timed out")

    def cancel(self, shipment):
        raise self.error

    def __getattr__(self, name):
        return getattr(self.carrier, name)
