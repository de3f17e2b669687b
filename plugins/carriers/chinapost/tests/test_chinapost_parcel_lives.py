"""Every parcel outcome the emulator can live, in Chinese and in English, driven by its clock and
read through the plugin's ``track()``: the classified events, the parcel's current status, English
texts, times, and the cancel refused from the acceptance scan on."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from chinapost_testkit import make_request

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

# The status each step stands for; China Post shows every step (customs for customs_rate parcels).
SHOWN = {INFO_RECEIVED: S.PENDING, ACCEPTED: S.ACCEPTED, ORIGIN_FACILITY: S.IN_TRANSIT, EXPORT: S.IN_TRANSIT,
         DEPARTED: S.IN_TRANSIT, ARRIVED: S.IN_TRANSIT, CUSTOMS: S.CUSTOMS, CUSTOMS_CLEARED: S.CUSTOMS,
         LAST_MILE: S.IN_TRANSIT, DELIVERY_FACILITY: S.IN_TRANSIT, OUT_FOR_DELIVERY: S.OUT_FOR_DELIVERY,
         DELIVERED: S.DELIVERED, DELIVERY_FAILED: S.FAILED_ATTEMPT, RETURNING: S.RETURNING,
         RETURNED: S.RETURNED}
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def advance_to(server, at: datetime) -> None:
    seconds = (at - server.emulator.clock.now()).total_seconds() + 1
    if seconds > 0:
        advance_clock(server, seconds)


@pytest.mark.parametrize("language", ["en", "cn"])
@pytest.mark.parametrize("outcome", PARCEL_OUTCOMES)
def test_a_parcel_lives_its_outcome(sandbox, connect, outcome, language):
    server = sandbox(customs_rate=1.0)
    carrier = connect(server, tracking_language=language)
    shipment = carrier.create_shipment(make_request(f"PKG-LIFE-{outcome}"))
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
    assert [e.status for e in info.events] == [SHOWN[step.kind] for step in plan]
    assert [e.time for e in info.events] == [step.at.replace(microsecond=0) for step in plan]
    for event in info.events:
        assert event.description_en and not CHINESE.search(event.description_en), event
        assert language == "en" or CHINESE.search(event.description), event

    advance_clock(server, 90 * 86400)  # nothing happens after the end
    assert carrier.track([number])[0].events == info.events
    parcel = sandbox_state(server)["parcels"][number]
    assert (parcel["outcome"], parcel["forced"], parcel["stage"]) == (outcome, True, plan[-1].kind)
    final = {"delivered": S.DELIVERED, "late": S.DELIVERED, "no_first_scan": S.PENDING,
             "failed_delivery": S.FAILED_ATTEMPT, "returned": S.RETURNED}
    assert status is final.get(outcome, status)
    if outcome == "lost":
        assert status in (S.IN_TRANSIT, S.CUSTOMS)
    if outcome in ("delivered", "late"):
        assert (parcel["delivered_at"] > parcel["promised_at"]) is (outcome == "late")


def test_cancel_works_until_the_acceptance_scan_and_never_after(sandbox, connect):
    server = sandbox(parcel_outcomes={})
    carrier = connect(server)
    early, scanned, never = (carrier.create_shipment(make_request(f"PKG-VOID-{n}")) for n in range(3))
    sandbox_control(server, "parcels", {"tracking_number": never.tracking_number, "outcome": "no_first_scan"})
    first_scan = server.emulator.parcels.get(scanned.tracking_number).first_scan_at

    early_scan = server.emulator.parcels.get(early.tracking_number).first_scan_at
    advance_to(server, early_scan - timedelta(minutes=2))
    assert carrier.cancel(early) is True
    assert carrier.track([early.tracking_number])[0].status is S.CANCELLED
    advance_to(server, first_scan)
    with pytest.raises(PermanentCarrierError, match="cannot be cancelled"):
        carrier.cancel(scanned)
    assert carrier.order_fees([scanned.tracking_number])  # charged once accepted
    advance_clock(server, 20 * 86400)
    assert carrier.cancel(never) is True  # never scanned: still cancellable
    assert carrier.order_fees([never.tracking_number]) == {}
