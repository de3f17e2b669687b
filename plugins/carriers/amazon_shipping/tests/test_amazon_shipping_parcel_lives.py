"""Every parcel outcome Buy Shipping's getTracking can tell, driven by the SP-API emulator's clock
and read through the plugin's ``track()``: the classified events, the parcel's current status,
English texts, UTC times, and cancelShipment refused from the pickup on."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from amazon_shipping_testkit import request_for, seed_order
from mfn_carrier_amazon_shipping.sandbox_data import TRACKING_EVENTS

from connector.kit import PermanentCarrierError
from connector.kit import TrackingStatus as S
from connector.kit.sandbox import (
    ACCEPTED,
    ARRIVED,
    DELIVERED,
    DELIVERY_FACILITY,
    DELIVERY_FAILED,
    DEPARTED,
    INFO_RECEIVED,
    OUT_FOR_DELIVERY,
    PARCEL_OUTCOMES,
    RETURNED,
    RETURNING,
)
from connector.kit.testing import advance_clock, sandbox_control, sandbox_state

pytestmark = pytest.mark.e2e

# The status each shown step stands for, and the status of each of its events.
SHOWN = {
    INFO_RECEIVED: (S.PENDING, [S.PENDING]),
    ACCEPTED: (S.ACCEPTED, [S.ACCEPTED]),
    DEPARTED: (S.IN_TRANSIT, [S.IN_TRANSIT]),
    ARRIVED: (S.IN_TRANSIT, [S.IN_TRANSIT]),
    DELIVERY_FACILITY: (S.IN_TRANSIT, [S.IN_TRANSIT]),
    OUT_FOR_DELIVERY: (S.OUT_FOR_DELIVERY, [S.OUT_FOR_DELIVERY]),
    DELIVERED: (S.DELIVERED, [S.DELIVERED]),
    DELIVERY_FAILED: (S.FAILED_ATTEMPT, [S.FAILED_ATTEMPT]),
    RETURNING: (S.RETURNING, [S.RETURNING] * 3),  # Undeliverable, then the RETURNS leg
    RETURNED: (S.RETURNED, [S.RETURNED]),
}


def advance_to(server, at: datetime) -> None:
    seconds = (at - server.emulator.clock.now()).total_seconds() + 1
    if seconds > 0:
        advance_clock(server, seconds)


@pytest.mark.parametrize("outcome", PARCEL_OUTCOMES)
def test_a_parcel_lives_its_outcome(spapi_server, connect, outcome):
    server = spapi_server(token_ttl_seconds=10**8)
    carrier = connect(server)
    order = seed_order(server, site="US")
    shipment = carrier.create_shipment(request_for(order, service="YUNEXPRESS_AYPZXR"))
    number = shipment.tracking_number
    forced = sandbox_control(server, "parcels", {"tracking_number": shipment.carrier_shipment_id,
                                                 "outcome": outcome})  # by the shipment id
    assert forced["tracking_number"] == number
    plan = server.emulator.parcels.get(number).plan()

    status = None
    for step in plan:
        advance_to(server, step.at)
        [info] = carrier.track([number])
        status = SHOWN[step.kind][0] if step.kind in SHOWN else status
        assert info.status is status, (outcome, step.kind, info)
    advance_clock(server, 90 * 86400)  # nothing happens after the end
    [info] = carrier.track([number])
    assert info.status is status
    expected = [(event_status, (step.at + timedelta(seconds=event[0])).replace(microsecond=0))
                for step in plan if step.kind in SHOWN
                for event_status, event in zip(SHOWN[step.kind][1], TRACKING_EVENTS[step.kind], strict=True)]
    assert [(e.status, e.time) for e in info.events] == expected
    assert all(e.description_en and e.description_en == e.description for e in info.events)
    parcel = sandbox_state(server)["parcels"][number]
    assert (parcel["outcome"], parcel["stage"]) == (outcome, plan[-1].kind)
    final = {"delivered": S.DELIVERED, "late": S.DELIVERED, "no_first_scan": S.PENDING,
             "failed_delivery": S.FAILED_ATTEMPT, "returned": S.RETURNED}
    assert status is final.get(outcome, status)
    if outcome == "lost":
        assert status is S.IN_TRANSIT


def test_cancel_works_until_the_pickup_and_never_after(spapi_server, connect):
    server = spapi_server(token_ttl_seconds=10**8, parcel_outcomes={})
    carrier = connect(server)
    early, scanned, never = (carrier.create_shipment(request_for(seed_order(server, site="US", skip=n)))
                             for n in range(3))
    sandbox_control(server, "parcels", {"tracking_number": never.tracking_number, "outcome": "no_first_scan"})
    early_pickup = server.emulator.parcels.get(early.tracking_number).first_scan_at
    advance_to(server, early_pickup - timedelta(minutes=2))
    assert carrier.cancel(early) is True
    assert carrier.track([early.tracking_number])[0].status is S.CANCELLED
    advance_to(server, server.emulator.parcels.get(scanned.tracking_number).first_scan_at)
    with pytest.raises(PermanentCarrierError, match="picked up"):
        carrier.cancel(scanned)
    advance_clock(server, 30 * 86400)
    assert carrier.cancel(never) is True  # never picked up: still cancellable (and refunded)
    assert sandbox_state(server)["labels"][never.reference]["cancelled"] is True
