"""Every parcel outcome the emulator can live, driven by its clock and read through the plugin's
``track()``: the classified checkpoints, the parcel's current status, English texts, local times
read back to UTC, and the cancel refused from the first scan (PU10) on."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from yanwen_testkit import make_request

from connector.kit import PermanentCarrierError
from connector.kit import TrackingStatus as S
from connector.kit.sandbox import (
    ACCEPTED,
    ARRIVED,
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

# (checkpoint code, status) of each step the emulator shows (import customs holds are not shown).
SHOWN = {INFO_RECEIVED: ("SC10", S.PENDING), ACCEPTED: ("PU10", S.ACCEPTED),
         ORIGIN_FACILITY: ("OR10", S.IN_TRANSIT), EXPORT: ("EX10", S.CUSTOMS),
         DEPARTED: ("LH10", S.IN_TRANSIT), ARRIVED: ("LH20", S.IN_TRANSIT),
         CUSTOMS_CLEARED: ("IM10", S.CUSTOMS), LAST_MILE: ("LM10", S.IN_TRANSIT),
         DELIVERY_FACILITY: ("LM20", S.IN_TRANSIT), OUT_FOR_DELIVERY: ("LM25", S.OUT_FOR_DELIVERY),
         DELIVERED: ("LM40", S.DELIVERED), DELIVERY_FAILED: ("LM50", S.FAILED_ATTEMPT),
         RETURNING: ("LM85", S.RETURNING), RETURNED: ("LM90", S.RETURNED)}


def advance_to(server, at: datetime) -> None:
    seconds = (at - server.emulator.clock.now()).total_seconds() + 1
    if seconds > 0:
        advance_clock(server, seconds)


@pytest.mark.parametrize("reference", ["PKG-LIFE-A", "PKG-LIFE-B"])  # both wordings
@pytest.mark.parametrize("outcome", PARCEL_OUTCOMES)
def test_a_parcel_lives_its_outcome(sandbox, connect, outcome, reference):
    server = sandbox()
    carrier = connect(server)
    if reference.endswith("B"):
        carrier.create_shipment(make_request("PKG-OTHER"))  # the next sequence number: the other wording
    shipment = carrier.create_shipment(make_request(reference))
    number = shipment.tracking_number
    sandbox_control(server, "parcels", {"tracking_number": number, "outcome": outcome})
    plan = server.emulator.parcels.get(number).plan()

    status, info = None, None
    for step in plan:
        advance_to(server, step.at)
        [info] = carrier.track([number])
        status = SHOWN[step.kind][1] if step.kind in SHOWN else status
        assert info.status is status, (outcome, step.kind, info)
    assert info is not None
    shown = [step for step in plan if step.kind in SHOWN]
    assert [(e.code, e.status) for e in info.events] == [SHOWN[step.kind] for step in shown]
    assert [e.time for e in info.events] == [step.at.replace(microsecond=0) for step in shown]
    assert all(e.description_en and not re.search(r"[\u4e00-\u9fff]", e.description_en) for e in info.events)

    advance_clock(server, 90 * 86400)  # nothing happens after the end
    assert carrier.track([number])[0].events == info.events
    parcel = sandbox_state(server)["parcels"][number]
    assert (parcel["outcome"], parcel["stage"]) == (outcome, plan[-1].kind)
    final = {"delivered": S.DELIVERED, "late": S.DELIVERED, "no_first_scan": S.PENDING,
             "failed_delivery": S.FAILED_ATTEMPT, "returned": S.RETURNED}
    assert status is final.get(outcome, status)
    order_status = carrier.get_order(shipment.carrier_shipment_id).status
    assert order_status == {"delivered": 4, "late": 4, "no_first_scan": 0, "failed_delivery": 7,
                            "returned": 10}.get(outcome, 3)


def test_cancel_works_until_the_first_scan_and_never_after(sandbox, connect):
    server = sandbox(parcel_outcomes={})
    carrier = connect(server)
    early, scanned, never = (carrier.create_shipment(make_request(f"PKG-VOID-{n}")) for n in range(3))
    sandbox_control(server, "parcels", {"tracking_number": never.tracking_number, "outcome": "no_first_scan"})
    early_scan = server.emulator.parcels.get(early.tracking_number).first_scan_at
    advance_to(server, early_scan - timedelta(minutes=2))
    assert carrier.cancel(early) is True
    advance_to(server, server.emulator.parcels.get(scanned.tracking_number).first_scan_at)
    with pytest.raises(PermanentCarrierError, match="cannot be cancelled"):
        carrier.cancel(scanned)
    advance_clock(server, 30 * 86400)
    assert carrier.cancel(never) is True  # never scanned: still cancellable
    assert sandbox_state(server)["parcels"][never.tracking_number]["stage"] == "cancelled"
