"""Captured DHL eCommerce answers parsed through mapping.py."""

from __future__ import annotations

from decimal import Decimal

import pytest
from conftest import load_fixture
from mfn_carrier_dhl_ecommerce import mapping

from connector.carriers import DuplicateReferenceError, PermanentCarrierError, TransientCarrierError
from connector.model import Address, CustomsLine, Money, Parcel, ShipmentRequest, TrackingStatus

SID = "ORD-10002TEST"


def _request(reference: str = "10002TEST", ioss: str = "") -> ShipmentRequest:
    line = CustomsLine(
        sku="SKU-1",
        name_en="Phone case",
        name_cn="手机壳",
        hs_code="392690",
        quantity=2,
        unit_value=Money(Decimal("4.50"), "USD"),
        unit_weight_g=120,
    )
    parcel = Parcel(
        weight_g=240,
        length_cm=Decimal("20"),
        width_cm=Decimal("15"),
        height_cm=Decimal("4"),
        contents=(line,),
    )
    return ShipmentRequest(
        reference=reference,
        order_id="111-0000000-0000000",
        site="DE",
        service="PPM",
        ship_from=Address(name="Sender Sample", line1="1 Road", city="Shenzhen", country_code="CN"),
        ship_to=Address(name="Sam Sample", line1="2 Street", city="Berlin", country_code="DE"),
        parcel=parcel,
        ioss_number=ioss,
    )


def test_label_response_203_is_the_same_label() -> None:
    shipment = mapping.parse_label(load_fixture("label_response.json"), _request(), SID)
    assert shipment.tracking_number == shipment.carrier_shipment_id == "7027018415475994"
    assert shipment.reference == "10002TEST"


def test_label_invalid_names_the_field() -> None:
    with pytest.raises(PermanentCarrierError) as err:
        mapping.parse_label(load_fixture("label_invalid_response.json"), _request(), "03832-00")
    assert not isinstance(err.value, DuplicateReferenceError)
    assert "Remarks" in str(err.value) and "/labelRequest/bd/shipmentItems[0]/remarks" in str(err.value)


def test_label_shipment_exists_is_a_duplicate() -> None:
    with pytest.raises(DuplicateReferenceError, match="Variances"):
        mapping.parse_label(load_fixture("label_invalid_shipment_exists_response.json"), _request(), SID)


def test_invalid_access_token_is_recognised() -> None:
    assert mapping.is_invalid_token(load_fixture("label_invalid_access_token_response.json"), "labelResponse")
    assert not mapping.is_invalid_token(load_fixture("label_response.json"), "labelResponse")


def test_reprint_gives_the_pdf() -> None:
    item = mapping.parse_reprint(load_fixture("reprint_label_response.json"), SID)
    assert item is not None
    assert mapping.shipment_from_reprint(item, "10002TEST").carrier_shipment_id == "7027018415475994"
    assert mapping.pdf_from_reprint(item, SID).startswith(b"%PDF")


def test_reprint_validation_error_is_permanent() -> None:
    with pytest.raises(PermanentCarrierError, match="Consignee Address"):
        mapping.parse_reprint(load_fixture("reprint_label_invalid_response.json"), SID)


@pytest.mark.parametrize(
    "answer",
    [
        None,
        [],
        {"labelResponse": {}},
        {"labelResponse": {"bd": {"labels": [{"shipmentID": SID, "responseStatus": {"code": "200"}}]}}},
        {"labelResponse": {"bd": {"labels": [{"shipmentID": SID}]}}},
    ],
)
def test_malformed_label_answers_are_transient(answer: object) -> None:
    with pytest.raises(TransientCarrierError):
        mapping.parse_label(answer, _request(), SID)


def test_tracking_fixture_oldest_first_and_statuses() -> None:
    infos = mapping.parse_tracking(load_fixture("trackitem_response.json"), ["7027010899621494"])
    info = infos["7027010899621494"]
    assert [e.code for e in info.events] == ["71005", "77123"]
    assert info.status is TrackingStatus.PENDING
    assert all(e.time.tzinfo is not None for e in info.events)


@pytest.mark.parametrize("name", ["trackitem_full_response.json", "trackitem_multiple_response.json"])
def test_tracking_fixtures_parse(name: str) -> None:
    answer = load_fixture(name)
    numbers = [i["trackingID"] for i in answer["trackItemResponse"]["bd"]["shipmentItems"]]
    infos = mapping.parse_tracking(answer, numbers)
    assert set(infos) == set(numbers)
    for info in infos.values():
        times = [e.time for e in info.events]
        assert times == sorted(times)


def test_status_codes() -> None:
    expect = {
        "71005": "pending",
        "77123": "pending",
        "77206": "accepted",
        "77429": "failed_attempt",
        "77013": "in_transit",
        "77184": "in_transit",
        "77090": "out_for_delivery",
        "77093": "delivered",
    }
    assert {k: mapping.STATUS_BY_CODE[k].value for k in expect} == expect


def test_label_bd_is_deterministic_and_carries_ioss() -> None:
    kwargs = {
        "pickup_account_id": "1",
        "sold_to_account_id": "2",
        "prefix": "CNMFN",
        "handover_method": 2,
        "ioss_field": "remarks",
    }
    first = mapping.label_bd(_request("111-0000000-0000000-1", ioss="IM2760000001"), **kwargs)
    assert first == mapping.label_bd(_request("111-0000000-0000000-1", ioss="IM2760000001"), **kwargs)
    item = first["shipmentItems"][0]
    assert item["shipmentID"] == "CNMFN111-0000000-0000000-1"
    assert item["remarks"] == "IM2760000001" and item["incoterm"] == "DDP"
    assert item["shipmentContents"][0]["contentIndicator"] == "00"
    assert mapping.shipment_id("CN", "a b/c#1") == "CNabc1"
