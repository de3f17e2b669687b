"""The client against the emulator over loopback HTTP, and the emulator's own rules."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from datetime import timedelta

import pypdf
import pytest
import requests
from dhl_ecommerce_testkit import AMAZON_TRACKING_FORMAT, BUYER, EU_BUYER, load_fixture, make_request
from mfn_carrier_dhl_ecommerce import mapping
from mfn_carrier_dhl_ecommerce.sandbox import DhlEcommerceEmulator
from mfn_carrier_dhl_ecommerce.settings import TRACKING_NUMBER_PATTERN

from connector.kit import (
    CarrierContext,
    CredentialsRefusedError,
    DuplicateReferenceError,
    PermanentCarrierError,
    TrackingStatus,
    TransientCarrierError,
)
from connector.kit.testing import advance_clock, sandbox_control, sandbox_state, set_faults

pytestmark = pytest.mark.e2e

HOUR = 3600


def _advance(server, hours: float) -> None:  # noqa: ANN001
    advance_clock(server, hours * HOUR)


def _token(server, client_id: str = "sandbox-client", password: str = "sandbox-password") -> str:  # noqa: ANN001
    answer = requests.get(
        f"{server.url}/rest/v1/OAuth/AccessToken",
        params={"clientId": client_id, "password": password, "returnFormat": "json"},
        timeout=5,
    ).json()
    return answer["accessTokenResponse"]["token"]


def _post(server, path: str, root: str, bd: dict, token: str) -> dict:  # noqa: ANN001
    body = {root: {"hdr": {"messageType": "X", "accessToken": token, "messageVersion": "1.4"}, "bd": bd}}
    response = requests.post(f"{server.url}{path}", json=body, timeout=5)
    assert response.status_code == 200  # business errors too
    return response.json()


def test_lifecycle_create_label_find_resend_cancel(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox()
    carrier = connect(server)
    reference = "111-0000001-0000001-1"
    request = make_request(reference)

    created = carrier.create_shipment(request)
    number = created.tracking_number
    assert number and re.fullmatch(TRACKING_NUMBER_PATTERN, number)
    assert re.fullmatch(AMAZON_TRACKING_FORMAT, number)  # what Amazon accepts (the SP-API emulator's check)

    pdf = carrier.get_label(created)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = reader.pages[0].extract_text()
    assert len(reader.pages) == 1
    assert number in text and "CNMFN" + reference in text and "PPM" in text
    assert BUYER.name not in text and BUYER.line1 not in text

    found = carrier.find_by_reference(reference)
    assert found is not None and (found.reference, found.tracking_number) == (reference, number)
    again = carrier.create_shipment(request)  # e.g. a retry after a lost answer: DHL answers 203
    assert again == created
    state = sandbox_state(server)
    assert state["labels"][reference] == {
        "created": 1,
        "waybill": number,
        "tracking_number": number,
        "cancelled": False,
        "product": "PPM",
    }
    assert state["create_attempts"][reference] == 2

    assert carrier.cancel(created) is True
    assert sandbox_state(server)["labels"][reference]["cancelled"] is True
    assert carrier.find_by_reference(reference) is None
    [info] = carrier.track([number])
    assert info.status is TrackingStatus.CANCELLED and info.events[-1].code == "SBX-CAN"
    assert carrier.cancel(created) is True  # deleted before ("not found (already deleted)"): done
    assert carrier.find_by_reference("111-0000001-0000009-1") is None


def _advance_to(server, at) -> None:  # noqa: ANN001
    advance_clock(server, max(0.0, (at - server.emulator.clock.now()).total_seconds() + 1))


@pytest.mark.parametrize(("field", "recorded"), [
    ("remarks", {"remarks": "IM2760000001"}),
    ("iossNumber", {"iossNumber": "IM2760000001"}),
    ("shipmentContents.iossNumber", {"shipmentContents.iossNumber": "IM2760000001"}),
])
def test_the_ioss_number_reaches_the_emulator_where_ioss_field_says(sandbox, connect, field,  # noqa: ANN001
                                                                    recorded) -> None:  # noqa: ANN001
    server = sandbox()
    carrier = connect(server, ioss_field=field)
    with_ioss = carrier.create_shipment(make_request("111-0000009-0000001-1", ship_to=EU_BUYER,
                                                     ioss_number="IM2760000001"))
    without = carrier.create_shipment(make_request("111-0000009-0000002-1", ship_to=EU_BUYER))
    records = {r["number"]: r for r in server.emulator.store["labels"].values()}
    assert records[with_ioss.tracking_number]["ioss"] == recorded
    assert records[without.tracking_number]["ioss"] == {}


def test_tracking_progresses_with_the_simulated_clock(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox(parcel_outcomes={})  # every parcel delivered on time
    carrier = connect(server)
    shipment = carrier.create_shipment(make_request("111-0000002-0000001-1"))
    number = shipment.tracking_number
    at = {step.kind: step.at for step in server.emulator.parcels.get(number).plan()}

    def status_at(kind: str) -> TrackingStatus:
        _advance_to(server, at[kind])
        [info] = carrier.track([number])
        return info.status

    assert status_at("info_received") is TrackingStatus.PENDING  # 71005, then 77123
    assert status_at("accepted") is TrackingStatus.ACCEPTED  # 77206 picked up
    with pytest.raises(PermanentCarrierError, match="already picked up"):
        carrier.cancel(shipment)
    assert status_at("origin_facility") is TrackingStatus.IN_TRANSIT  # 77013 arrival at facility
    assert status_at("customs") is TrackingStatus.CUSTOMS  # held for customs (free code)
    assert status_at("out_for_delivery") is TrackingStatus.OUT_FOR_DELIVERY  # 77090
    assert status_at("delivered") is TrackingStatus.DELIVERED  # 77093
    [info] = carrier.track(["CNMFN111-0000002-0000001-1"])  # the shipmentID works too
    assert [e.code for e in info.events] == [
        "71005",
        "77123",
        "77206",
        "77013",
        "77015",
        "77027",
        "77169",
        "SBX-EXP",
        "SBX-IMP",
        "SBX-CUH",
        "SBX-CUS",
        "77178",
        "77184",
        "77090",
        "77093",
    ]
    assert [e.time for e in info.events] == sorted(e.time for e in info.events)
    assert info.events[2].time == at["accepted"].replace(microsecond=0)  # local time of the origin
    assert info.events[-1].time == at["delivered"].replace(microsecond=0)  # GMT at the destination


def test_a_failed_pickup_then_the_retry(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox(pickup_failure_rate=1.0, parcel_outcomes={})
    carrier = connect(server)
    first = carrier.create_shipment(make_request("111-0000003-0000001-1"))
    second = carrier.create_shipment(make_request("111-0000003-0000002-1"))
    pickups = [server.emulator.parcels.get(s.tracking_number).first_scan_at for s in (first, second)]
    _advance_to(server, max(pickups) - timedelta(hours=24))  # both failed attempts, no pickup yet
    [info, _] = carrier.track([first.tracking_number, second.tracking_number])
    assert info.status is TrackingStatus.PENDING  # 77429: still with the shipper
    assert info.events[-1].code == "77429"
    assert info.events[-1].description == "Shipment picked up failed (Insufficient pickup address)"
    assert carrier.cancel(first) is True  # not picked up yet: deletable
    _advance_to(server, pickups[1])
    [info] = carrier.track([second.tracking_number])
    assert info.status is TrackingStatus.ACCEPTED and [e.code for e in info.events][-2:] == ["77429", "77206"]
    assert (info.events[-1].time - info.events[-2].time).total_seconds() == 24 * HOUR  # the retry a day later


def test_expired_and_forcibly_expired_tokens_are_refreshed(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox(token_ttl_seconds=3600)
    session = requests.Session()
    fetched: list[str] = []
    original = session.request

    def spy(method, url, **kwargs):  # noqa: ANN001, ANN003, ANN202
        if "AccessToken" in url:
            fetched.append(url)
        return original(method, url, **kwargs)

    session.request = spy  # type: ignore[method-assign]
    carrier = connect(server, CarrierContext(http=session))
    carrier.create_shipment(make_request("111-0000004-0000001-1"))
    carrier.find_by_reference("111-0000004-0000001-1")
    assert len(fetched) == 1  # cached
    _advance(server, 2)  # expired for DHL, not on the client's own clock
    shipment = carrier.create_shipment(make_request("111-0000004-0000002-1"))
    assert len(fetched) == 2 and shipment.tracking_number
    assert sandbox_control(server, "expire_tokens", {}) == {"expired_tokens": 1}
    assert carrier.find_by_reference("111-0000004-0000002-1") == replace(shipment, service="")
    assert len(fetched) == 3
    assert sandbox_state(server)["labels"]["111-0000004-0000002-1"]["created"] == 1


def test_credentials(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox()
    with pytest.raises(PermanentCarrierError, match="refused the credentials") as err:
        connect(server, password="wrong-password").create_shipment(make_request())
    assert "wrong-password" not in str(err.value) and "code 100010" in str(err.value)
    assert isinstance(err.value, CredentialsRefusedError)  # no label request was sent: nothing exists
    own = {
        "base_url": "http://x",
        "client_id": "own-client",
        "password": "own-pass",
        "pickup_account_id": "5100001",
        "sold_to_account_id": "5100002",
        "shipment_id_prefix": "ABC",
    }
    server = sandbox(carrier_settings=own)
    carrier = connect(server, **{k: v for k, v in own.items() if k != "base_url"})
    carrier.create_shipment(make_request("111-0000005-0000001-1"))
    assert list(sandbox_state(server)["labels"]) == ["111-0000005-0000001-1"]  # the prefix "ABC" stripped
    with pytest.raises(PermanentCarrierError, match="Pickup Account ID.*not authorised"):
        connect(server, **{**own, "base_url": server.url, "pickup_account_id": "5999999"}).find_by_reference(
            "x-1"
        )


def test_same_shipment_id_other_data_then_reconcile(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox()
    carrier = connect(server)
    request = make_request("111-0000006-0000001-1")
    original = carrier.create_shipment(request)
    changed = replace(request, ship_to=replace(BUYER, line1="99 Other Street"), service="PLT")
    with pytest.raises(DuplicateReferenceError) as err:
        carrier.create_shipment(changed)
    assert str(err.value).endswith("Variances found for fields -> Consignee Address 1;  Product Code")
    found = carrier.find_by_reference(request.reference)  # what the engine does next
    assert found is not None and found.tracking_number == original.tracking_number
    assert sandbox_state(server)["labels"][request.reference]["created"] == 1


def test_validation_failures_name_the_field_and_pointer(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox()
    carrier = connect(server)
    with pytest.raises(
        PermanentCarrierError, match=r"field Consignee City \(/labelRequest/bd/shipmentItems\[0\]"
    ):
        carrier.create_shipment(make_request("111-0000007-0000001-1", ship_to=replace(EU_BUYER, city="")))
    with pytest.raises(PermanentCarrierError, match="field Product Code"):
        carrier.create_shipment(make_request("111-0000007-0000002-1", service="XXX"))

    token = _token(server)
    carrier_bd = mapping.label_bd(
        make_request("111-0000007-0000003-1"),
        pickup_account_id="5999999",
        sold_to_account_id="5999999",
        prefix="CNMFN",
        handover_method=2,
        ioss_field="remarks",
    )
    good = json.loads(json.dumps(carrier_bd))
    good["shipmentItems"][0]["remarks"] = 42
    answer = _post(server, "/rest/v2/Label", "labelRequest", good, token)["labelResponse"]["bd"]
    [label] = answer["labels"]
    assert label["responseStatus"]["code"] == "202" and answer["responseStatus"]["code"] == "202"
    assert label["responseStatus"]["messageDetails"][0]["messageDetail"] == (
        "Input validation failed: Remarks [/labelRequest/bd/shipmentItems[0]/remarks]. "
        "Data type mismatch; string value expected (e.g. abc)."
    )
    no_account = {k: v for k, v in carrier_bd.items() if k != "pickupAccountId"}
    answer = _post(server, "/rest/v2/Label", "labelRequest", no_account, token)["labelResponse"]["bd"]
    assert "Pickup Account ID [/labelRequest/bd/pickupAccountId]" in json.dumps(answer["responseStatus"])
    bad_line = json.loads(json.dumps(carrier_bd))
    bad_line["shipmentItems"][0]["shipmentContents"][0]["hsCode"] = "39"
    answer = _post(server, "/rest/v2/Label", "labelRequest", bad_line, token)["labelResponse"]["bd"]
    assert "HS Code [/labelRequest/bd/shipmentItems[0]/shipmentContents[0]/hsCode]" in json.dumps(answer)
    assert sandbox_state(server)["labels"] == {}
    answer = _post(server, "/rest/v2/Label", "labelRequest", carrier_bd, "not-a-token")["labelResponse"]["bd"]
    assert answer["responseStatus"]["messageDetails"][0]["messageDetail"].startswith("Invalid access token")


def test_references_the_shipment_id_cannot_hold(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox()
    with pytest.raises(PermanentCarrierError, match="not allowed"):
        connect(server).create_shipment(make_request("PKG 1"))
    assert sandbox_state(server)["requests"] == 0


def test_ambiguous_failures_are_transient_and_reconcile_to_one_label(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox()
    carrier = connect(server)
    carrier.access_token()
    request = make_request("111-0000008-0000001-1")
    set_faults(server, {"malformed": 1.0})
    with pytest.raises(TransientCarrierError, match="not valid JSON"):
        carrier.create_shipment(request)
    set_faults(server, {"error_5xx": 1.0})
    with pytest.raises(TransientCarrierError, match="HTTP 500"):
        carrier.create_shipment(make_request("111-0000008-0000002-1"))
    set_faults(server, {})
    found = carrier.find_by_reference(request.reference)  # the malformed create took effect
    assert found is not None
    assert carrier.create_shipment(request).tracking_number == found.tracking_number  # 203
    state = sandbox_state(server)
    assert state["labels"][request.reference]["created"] == 1
    assert "111-0000008-0000002-1" not in state["labels"]  # a 5xx fault never takes effect


def test_rate_limit_mode_answers_429(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox(rate_limit_per_second=3)
    carrier = connect(server)
    carrier.access_token()  # 1 request
    statuses = [
        requests.get(f"{server.url}/rest/v1/OAuth/AccessToken", timeout=5).status_code for _ in range(4)
    ]
    assert statuses[:2] == [200, 200] and statuses[-1] == 429
    with pytest.raises(TransientCarrierError, match="HTTP 429") as err:
        carrier.track(["7000000000000000"])
    assert err.value.code == "http_429"
    assert sandbox_control(server, "rate_limit", {"per_second": None}) == {"rate_limit_per_second": None}
    assert carrier.track(["7000000000000000"])[0].status is TrackingStatus.UNKNOWN


def test_tracking_answer_counts_and_limits(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox()
    carrier = connect(server)
    shipment = carrier.create_shipment(make_request("111-0000009-0000001-1"))
    _advance(server, 1)
    token = _token(server)
    bd = {
        "pickupAccountId": "5999999",
        "soldToAccountId": "5999999",
        "ePODRequired": "N",
        "trackingReferenceNumber": [shipment.tracking_number, "7000000000000000"],
    }
    answer = _post(server, "/rest/v3/Tracking", "trackItemRequest", bd, token)["trackItemResponse"]["bd"]
    assert answer["responseStatus"]["messageDetails"][0]["messageDetail"] == (
        "2 tracking reference(s) tracked, 1 tracking reference(s) found."
    )
    [item] = answer["shipmentItems"]
    assert (
        item["trackingID"] == shipment.tracking_number and item["events"][0]["status"] == "77123"
    )  # newest first
    too_many = {**bd, "trackingReferenceNumber": [f"70{i:014d}" for i in range(101)]}
    answer = _post(server, "/rest/v3/Tracking", "trackItemRequest", too_many, token)["trackItemResponse"][
        "bd"
    ]
    assert answer["responseStatus"]["code"] == "202"


def test_numbers_are_deterministic_and_the_state_holds_no_buyer_pii(sandbox, connect, tmp_path) -> None:  # noqa: ANN001
    state_file = tmp_path / "dhl.json"
    first = connect(sandbox(seed=11, state_file=str(state_file)))
    second = connect(sandbox(seed=11))
    made = [
        (
            first.create_shipment(make_request(f"111-0000010-000000{i}-1")),
            second.create_shipment(make_request(f"111-0000010-000000{i}-1")),
        )
        for i in range(4)
    ]
    assert all(a.tracking_number == b.tracking_number for a, b in made)
    assert len({a.tracking_number for a, _ in made}) == 4
    saved = state_file.read_text(encoding="utf-8")
    for pii in (BUYER.name, BUYER.line1, BUYER.line2, BUYER.phone, BUYER.email, BUYER.postal_code, "Seattle"):
        assert pii not in saved
    restarted = DhlEcommerceEmulator({"seed": 11, "state_file": str(state_file)})
    assert (
        restarted.sandbox_state()["labels"]["111-0000010-0000003-1"]["waybill"] == made[3][0].tracking_number
    )


def test_a_deleted_reference_can_be_used_again(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox()
    carrier = connect(server)
    first = carrier.create_shipment(make_request("111-0000011-0000001-1"))
    assert carrier.cancel(first)
    second = carrier.create_shipment(make_request("111-0000011-0000001-1"))
    assert second.tracking_number != first.tracking_number
    label = sandbox_state(server)["labels"]["111-0000011-0000001-1"]
    assert label["created"] == 2 and label["cancelled"] is False


def test_reprint_answers_in_the_captured_shape(sandbox, connect) -> None:  # noqa: ANN001
    # Label/Reprint answers carry messageDetails as a plain string (captured), unlike Label's list.
    server = sandbox()
    carrier = connect(server)
    created = carrier.create_shipment(make_request("111-0000011-0000001-1"))
    sid = "CNMFN111-0000011-0000001-1"
    token = _token(server)
    accounts = {"pickupAccountId": "5999999", "soldToAccountId": "5999999"}
    answer = _post(server, "/rest/v2/Label/Reprint", "labelReprintRequest",
                   {**accounts, "shipmentItems": [{"shipmentID": sid}]}, token)["labelReprintResponse"]["bd"]
    captured = load_fixture("reprint_label_response")["labelReprintResponse"]["bd"]
    assert sorted(answer["shipmentItems"][0]) == sorted(captured["shipmentItems"][0])
    assert answer["shipmentItems"][0]["responseStatus"] == captured["shipmentItems"][0]["responseStatus"]
    assert answer["responseStatus"] == captured["responseStatus"]
    assert carrier.get_label(created).startswith(b"%PDF")  # the plugin reads that shape


def test_reprint_refuses_an_item_with_more_than_its_shipment_id(sandbox, connect) -> None:  # noqa: ANN001
    server = sandbox()
    connect(server).create_shipment(make_request("111-0000011-0000002-1"))
    item = {"shipmentID": "CNMFN111-0000011-0000002-1", "consigneeAddress": {"country": "US"}}
    bd = {"pickupAccountId": "5999999", "soldToAccountId": "5999999", "shipmentItems": [item]}
    answer = _post(server, "/rest/v2/Label/Reprint", "labelReprintRequest", bd, _token(server))
    captured = load_fixture("reprint_label_invalid_response")
    assert answer["labelReprintResponse"]["bd"] == captured["labelReprintResponse"]["bd"]


def test_an_invalid_item_answers_in_the_captured_shape(sandbox) -> None:  # noqa: ANN001
    # A refused item names its number deliveryConfirmationNumber and has no labelURL (captured).
    server = sandbox()
    bd = mapping.label_bd(make_request("111-0000011-0000003-1"), pickup_account_id="5999999",
                          sold_to_account_id="5999999", prefix="CNMFN", handover_method=2,
                          ioss_field="remarks")
    bd["shipmentItems"][0]["remarks"] = 42
    answer = _post(server, "/rest/v2/Label", "labelRequest", bd, _token(server))["labelResponse"]["bd"]
    captured = load_fixture("label_invalid_response")["labelResponse"]["bd"]
    [label], [expected] = answer["labels"], captured["labels"]
    assert {**label, "shipmentID": expected["shipmentID"]} == expected
    assert answer["responseStatus"] == captured["responseStatus"]
