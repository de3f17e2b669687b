"""The client against its emulator: tokens, idempotency, refusals, tracking batches."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest
import responses
from mfn_carrier_dhl_ecommerce.client import DhlEcommerceCarrier
from test_dhl_ecommerce_mapping import _request

from connector.carriers import DuplicateReferenceError, PermanentCarrierError, TransientCarrierError
from connector.model import Address
from connector.sandbox.framework import EmulatorServer

Sandbox = Callable[..., EmulatorServer]
Connect = Callable[..., DhlEcommerceCarrier]


def _labels(server: EmulatorServer) -> dict:
    return server.emulator.sandbox_state()["labels"]


def test_token_is_cached(sandbox: Sandbox, connect: Connect) -> None:
    server = sandbox()
    carrier = connect(server)
    first = carrier.create_shipment(_request("111-1111111-1111111-1"))
    carrier.find_by_reference("111-1111111-1111111-1")
    assert len(server.emulator.store["tokens"]) == 1
    assert first.tracking_number


def test_expired_token_is_refreshed_and_resent(sandbox: Sandbox, connect: Connect) -> None:
    server = sandbox(token_ttl_seconds=3600)
    carrier = connect(server)
    carrier.access_token()
    server.emulator.clock.advance(7200)  # expired for DHL, not for the client's own clock
    shipment = carrier.create_shipment(_request("111-1111111-1111112-1"))
    assert _labels(server)["111-1111111-1111112-1"]["waybill"] == shipment.carrier_shipment_id


def test_bad_credentials_are_permanent(sandbox: Sandbox, connect: Connect) -> None:
    carrier = connect(sandbox(), password="wrong")
    with pytest.raises(PermanentCarrierError, match="credentials"):
        carrier.create_shipment(_request("111-1111111-1111113-1"))


def test_identical_resend_gets_203_same_label(sandbox: Sandbox, connect: Connect) -> None:
    server = sandbox()
    carrier = connect(server)
    request = _request("111-1111111-1111114-1")
    assert carrier.create_shipment(request) == carrier.create_shipment(request)
    assert _labels(server)["111-1111111-1111114-1"]["created"] == 1


def test_changed_resend_is_a_duplicate(sandbox: Sandbox, connect: Connect) -> None:
    carrier = connect(sandbox())
    request = _request("111-1111111-1111115-1")
    carrier.create_shipment(request)
    changed = replace(request, ship_to=replace(request.ship_to, line1="99 Other Street"))
    with pytest.raises(DuplicateReferenceError, match="consigneeAddress"):
        carrier.create_shipment(changed)


def test_validation_refusal_names_the_field(sandbox: Sandbox, connect: Connect) -> None:
    carrier = connect(sandbox())
    request = _request("111-1111111-1111116-1")
    request = replace(request, ship_to=Address(name="Sam Sample", line1="2 Street", country_code="DE"))
    with pytest.raises(PermanentCarrierError, match="Consignee City") as err:
        carrier.create_shipment(request)
    assert not isinstance(err.value, DuplicateReferenceError)


def test_cancel_refused_after_pickup(sandbox: Sandbox, connect: Connect) -> None:
    server = sandbox()
    carrier = connect(server)
    shipment = carrier.create_shipment(_request("111-1111111-1111117-1"))
    server.emulator.clock.advance(25 * 3600)
    with pytest.raises(PermanentCarrierError, match="picked up"):
        carrier.cancel(shipment)


def test_tracking_progresses_oldest_first(sandbox: Sandbox, connect: Connect) -> None:
    server = sandbox()
    carrier = connect(server)
    number = carrier.create_shipment(_request("111-1111111-1111118-1")).tracking_number
    server.emulator.clock.advance(7 * 86400)
    [info] = carrier.track([number])
    assert info.status.value == "delivered"
    assert [e.code for e in info.events][0] == "71005" and info.events[-1].code == "77093"
    assert [e.time for e in info.events] == sorted(e.time for e in info.events)


@responses.activate
def test_tracking_batches_of_100_and_malformed_is_transient() -> None:
    base = "https://dhl.example.invalid"
    responses.get(
        base + "/rest/v1/OAuth/AccessToken",
        json={
            "accessTokenResponse": {
                "token": "t",
                "expires_in_seconds": 86400,
                "responseStatus": {"code": "100000"},
            }
        },
    )
    batches: list[int] = []

    def answer(request):  # noqa: ANN001, ANN202
        refs = json.loads(request.body)["trackItemRequest"]["bd"]["trackingReferenceNumber"]
        batches.append(len(refs))
        items = [
            {
                "trackingID": r,
                "shipmentID": r,
                "events": [
                    {"status": "77206", "description": "Picked up", "dateTime": "2024-01-02 10:00:00"},
                    {"status": "71005", "description": "Data", "dateTime": "2024-01-01 10:00:00"},
                ],
            }
            for r in refs
        ]
        return (
            200,
            {},
            json.dumps(
                {"trackItemResponse": {"bd": {"shipmentItems": items, "responseStatus": {"code": "200"}}}}
            ),
        )

    responses.add_callback(responses.POST, base + "/rest/v3/Tracking", callback=answer)
    carrier = DhlEcommerceCarrier({"base_url": base})
    numbers = [f"70{i:014d}" for i in range(250)]
    infos = carrier.track(numbers)
    assert batches == [100, 100, 50]
    assert [i.tracking_number for i in infos] == numbers
    assert [e.code for e in infos[0].events] == ["71005", "77206"] and infos[0].status.value == "accepted"
    responses.replace(responses.POST, base + "/rest/v3/Tracking", body='{"trackItemResponse": {"bd"')
    with pytest.raises(TransientCarrierError, match="not valid JSON"):
        carrier.track(["7000000000000001"])
