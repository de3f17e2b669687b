"""Every parcel outcome the emulator can live, driven by its clock and read through the plugin's
``track()``: the classified events, the parcel's current status, English texts, times, and the
delete refused from the first scan on."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from yunexpress_testkit import control, make_request

from connector.kit import PermanentCarrierError, TrackingInfo
from connector.kit import TrackingStatus as S
from connector.kit.sandbox import (
    ACCEPTED,
    ARRIVED,
    CUSTOMS_CLEARED,
    DELIVERED,
    DELIVERY_FAILED,
    DEPARTED,
    INFO_RECEIVED,
    LAST_MILE,
    ORIGIN_FACILITY,
    OUT_FOR_DELIVERY,
    PARCEL_OUTCOMES,
    RETURNED,
    RETURNING,
)

pytestmark = pytest.mark.e2e

# The status each step the emulator shows stands for (the other steps are not shown).
SHOWN = {INFO_RECEIVED: S.PENDING, ACCEPTED: S.ACCEPTED, ORIGIN_FACILITY: S.IN_TRANSIT,
         DEPARTED: S.IN_TRANSIT, ARRIVED: S.IN_TRANSIT, CUSTOMS_CLEARED: S.CUSTOMS, LAST_MILE: S.IN_TRANSIT,
         OUT_FOR_DELIVERY: S.OUT_FOR_DELIVERY, DELIVERED: S.DELIVERED, DELIVERY_FAILED: S.FAILED_ATTEMPT,
         RETURNING: S.RETURNING, RETURNED: S.RETURNED}


def advance_to(server, at: datetime) -> None:
    """Move the emulator's clock just past ``at``."""
    seconds = (at - server.emulator.clock.now()).total_seconds() + 1
    if seconds > 0:
        control(server, "clock", {"advance_seconds": seconds})


@pytest.mark.parametrize("outcome", PARCEL_OUTCOMES)
def test_a_parcel_lives_its_outcome(sandbox, connect, outcome):
    server = sandbox(track_type2_rate=0.0)
    carrier = connect(server)
    shipment = carrier.create_shipment(make_request(f"PKG-LIFE-{outcome}"))
    number = shipment.tracking_number
    forced = control(server, "parcels", {"tracking_number": shipment.carrier_shipment_id, "outcome": outcome})
    assert forced["tracking_number"] == number and forced["parcel"]["outcome"] == outcome
    plan = server.emulator.parcels.get(number).plan()

    status, info = None, None
    for step in plan:
        advance_to(server, step.at)
        [info] = carrier.track([number])
        status = SHOWN.get(step.kind, status)
        assert info.status is status, (outcome, step.kind, info)
    assert isinstance(info, TrackingInfo)
    shown = [step for step in plan if step.kind in SHOWN]
    assert [e.status for e in info.events] == [SHOWN[step.kind] for step in shown]
    assert [e.time for e in info.events] == [step.at.replace(microsecond=0) for step in shown]  # via UTC+8
    assert all(e.description and e.description_en and e.time.tzinfo for e in info.events)
    assert all(not any("\u4e00" <= ch <= "\u9fff" for ch in e.description_en) for e in info.events)

    control(server, "clock", {"advance_seconds": 90 * 86400})  # nothing happens after the end
    [later] = carrier.track([shipment.carrier_shipment_id])
    assert later.status is status and later.events == info.events
    state = control(server, "state")["parcels"][number]
    assert state["outcome"] == outcome and state["stage"] == plan[-1].kind
    assert state["aliases"] == [shipment.carrier_shipment_id]
    if outcome in ("delivered", "late"):
        assert (state["delivered_at"] > state["promised_at"]) is (outcome == "late")
    expected_final = {"delivered": S.DELIVERED, "late": S.DELIVERED, "no_first_scan": S.PENDING,
                      "failed_delivery": S.FAILED_ATTEMPT, "returned": S.RETURNED}
    assert status is expected_final.get(outcome, status)
    if outcome == "lost":
        assert status in (S.IN_TRANSIT, S.CUSTOMS)


def test_delete_works_until_the_first_scan_and_never_after(sandbox, connect):
    server = sandbox(track_type2_rate=0.0, parcel_outcomes={})
    carrier = connect(server)
    early, scanned, never = (carrier.create_shipment(make_request(f"PKG-VOID-{n}")) for n in range(3))
    control(server, "parcels", {"tracking_number": never.tracking_number, "outcome": "no_first_scan"})
    first_scan = server.emulator.parcels.get(scanned.tracking_number).first_scan_at

    early_scan = server.emulator.parcels.get(early.tracking_number).first_scan_at
    advance_to(server, early_scan - timedelta(minutes=2))
    assert carrier.cancel(early) is True  # not scanned yet
    [info] = carrier.track([early.tracking_number])
    assert info.status is S.CANCELLED and [e.status for e in info.events] == [S.PENDING, S.CANCELLED]

    advance_to(server, first_scan)
    with pytest.raises(PermanentCarrierError, match="cannot delete"):
        carrier.cancel(scanned)
    assert carrier.track([scanned.tracking_number])[0].status is S.ACCEPTED

    control(server, "clock", {"advance_seconds": 20 * 86400})  # never scanned: still deletable
    assert carrier.cancel(never) is True
    state = control(server, "state")
    assert state["parcels"][never.tracking_number]["stage"] == "cancelled"
    assert state["labels"]["PKG-VOID-1"]["cancelled"] is False
