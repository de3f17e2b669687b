"""Every parcel outcome the emulator can live, driven by its clock and read through the plugin's
``track()``: the classified events (DHL's codes, SBX- codes where none is known), the parcel's
current status, English texts, times (origin local, destination GMT), and the delete refused from
the pickup on."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from dhl_ecommerce_testkit import make_request
from mfn_carrier_dhl_ecommerce.sandbox import EVENTS

from connector.kit import PermanentCarrierError
from connector.kit import TrackingStatus as S
from connector.kit.sandbox import (
    ACCEPTED,
    ARRIVED,
    CUSTOMS,
    CUSTOMS_CLEARED,
    DELIVERED,
    DELIVERY_FACILITY,
    DELIVERY_FAILED,
    DEPARTED,
    EXPORT,
    INFO_RECEIVED,
    LAST_MILE,
    ORIGIN_FACILITY,
    OUT_FOR_DELIVERY,
    PARCEL_OUTCOMES,
    RETURNED,
    RETURNING,
)
from connector.kit.testing import advance_clock, sandbox_control, sandbox_state

pytestmark = pytest.mark.e2e

# The status of each step; DHL shows every step, some as several events.
SHOWN = {
    INFO_RECEIVED: S.PENDING,
    ACCEPTED: S.ACCEPTED,
    ORIGIN_FACILITY: S.IN_TRANSIT,
    EXPORT: S.IN_TRANSIT,
    DEPARTED: S.IN_TRANSIT,
    ARRIVED: S.IN_TRANSIT,
    CUSTOMS: S.CUSTOMS,
    CUSTOMS_CLEARED: S.CUSTOMS,
    LAST_MILE: S.IN_TRANSIT,
    DELIVERY_FACILITY: S.IN_TRANSIT,
    OUT_FOR_DELIVERY: S.OUT_FOR_DELIVERY,
    DELIVERED: S.DELIVERED,
    DELIVERY_FAILED: S.FAILED_ATTEMPT,
    RETURNING: S.RETURNING,
    RETURNED: S.RETURNED,
}


def advance_to(server, at: datetime) -> None:  # noqa: ANN001
    seconds = (at - server.emulator.clock.now()).total_seconds() + 1
    if seconds > 0:
        advance_clock(server, seconds)


@pytest.mark.parametrize("outcome", PARCEL_OUTCOMES)
def test_a_parcel_lives_its_outcome(sandbox, connect, outcome) -> None:  # noqa: ANN001
    server = sandbox()
    carrier = connect(server)
    shipment = carrier.create_shipment(make_request(f"111-0000009-000000{PARCEL_OUTCOMES.index(outcome)}-1"))
    number = shipment.tracking_number
    sandbox_control(server, "parcels", {"tracking_number": number, "outcome": outcome})
    plan = server.emulator.parcels.get(number).plan()

    status, info = None, None
    for step in plan:
        advance_to(server, step.at)
        [info] = carrier.track([number])
        status = SHOWN[step.kind]
        assert info.status is status, (outcome, step.kind, info)
    assert info is not None
    advance_clock(server, 90 * 86400)  # nothing happens after the end
    [info] = carrier.track([number])
    assert info.status is status
    expected = [
        (code, SHOWN[step.kind], (step.at + timedelta(seconds=offset)).replace(microsecond=0))
        for step in plan
        for offset, code, _text in EVENTS[step.kind]
    ]
    assert [(e.code, e.status, e.time) for e in info.events] == expected
    assert all(e.description_en == e.description != "" for e in info.events)
    parcel = sandbox_state(server)["parcels"][number]
    assert (parcel["outcome"], parcel["stage"]) == (outcome, plan[-1].kind)
    final = {
        "delivered": S.DELIVERED,
        "late": S.DELIVERED,
        "no_first_scan": S.PENDING,
        "failed_delivery": S.FAILED_ATTEMPT,
        "returned": S.RETURNED,
    }
    assert status is final.get(outcome, status)


def test_delete_works_until_the_pickup_and_never_after(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox(parcel_outcomes={})
    carrier = connect(server)
    early, scanned, never = (
        carrier.create_shipment(make_request(f"111-0000008-000000{n}-1")) for n in range(3)
    )
    sandbox_control(server, "parcels", {"tracking_number": never.tracking_number, "outcome": "no_first_scan"})
    early_pickup = server.emulator.parcels.get(early.tracking_number).first_scan_at
    advance_to(server, early_pickup - timedelta(minutes=2))
    assert carrier.cancel(early) is True
    assert carrier.track([early.tracking_number])[0].status is S.CANCELLED
    advance_to(server, server.emulator.parcels.get(scanned.tracking_number).first_scan_at)
    with pytest.raises(PermanentCarrierError, match="already picked up"):
        carrier.cancel(scanned)
    advance_clock(server, 30 * 86400)
    assert carrier.cancel(never) is True  # never picked up: still deletable
