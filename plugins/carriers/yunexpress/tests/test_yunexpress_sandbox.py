"""The client against the emulator over loopback HTTP, and the emulator's own rules."""
from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pypdf
import pytest
import requests
from mfn_carrier_yunexpress.sandbox import YunExpressEmulator
from yunexpress_testkit import BUYER, control, make_request

from connector.kit import (
    DuplicateReferenceError,
    Money,
    PermanentCarrierError,
    TrackingStatus,
    TransientCarrierError,
)

pytestmark = pytest.mark.e2e

YT = re.compile(r"^YT\d{16}$")
HOUR = 3600


def _auth(code: str = "C88888", secret: str = "sandbox-secret") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{code}&{secret}".encode()).decode()}


def test_label_lifecycle_with_a_late_tracking_number(sandbox, connect):
    server = sandbox(track_type2_rate=1.0, tracking_polls=2)
    carrier = connect(server)
    request = make_request("PKG-LATE-1")

    created = carrier.create_shipment(request)
    assert YT.match(created.carrier_shipment_id) and created.tracking_number is None

    pending = carrier.find_by_reference("PKG-LATE-1")  # GetOrder + GetTrackingNumber: 2 polls
    assert pending.carrier_shipment_id == created.carrier_shipment_id and pending.tracking_number is None
    found = carrier.find_by_reference("PKG-LATE-1")
    assert YT.match(found.tracking_number) and found.tracking_number != found.carrier_shipment_id
    assert found.service == "AYPZXR"

    pdf = carrier.get_label(found)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = reader.pages[0].extract_text()
    assert len(reader.pages) == 1
    assert found.tracking_number in text and "AYPZXR" in text and "PKG-LATE-1" in text
    assert "Jane" not in text and "Pine" not in text

    again = carrier.create_shipment(request)  # e.g. a retry after a lost answer
    assert (again.carrier_shipment_id, again.tracking_number) == (found.carrier_shipment_id,
                                                                   found.tracking_number)
    state = control(server, "state")
    assert state["labels"]["PKG-LATE-1"]["created"] == 1
    assert state["labels"]["PKG-LATE-1"]["tracking_number"] == found.tracking_number
    assert state["create_attempts"]["PKG-LATE-1"] == 2

    assert carrier.cancel(found) is True
    assert control(server, "state")["labels"]["PKG-LATE-1"]["cancelled"] is True
    assert carrier.find_by_reference("PKG-LATE-1") is None
    [info] = carrier.track([found.carrier_shipment_id])
    assert info.status is TrackingStatus.CANCELLED
    # deleted before: "does not exist", and the tracking's PackageState 5 says it was deleted
    assert carrier.cancel(found) is True
    # a number YunExpress does not know (yet): the same words, and no tracking: refused
    with pytest.raises(PermanentCarrierError, match="does not exist"):
        carrier.cancel(replace(found, carrier_shipment_id="YT0000000000000001"))


def test_tracking_progresses_with_the_simulated_clock(sandbox, connect):
    server = sandbox(track_type2_rate=0.0, parcel_outcomes={})  # every parcel delivered on time
    carrier = connect(server)
    shipment = carrier.create_shipment(make_request("PKG-TRACK-1"))
    assert YT.match(shipment.tracking_number)
    parcel = control(server, "state")["parcels"][shipment.tracking_number]
    created = datetime.fromisoformat(parcel["created_at"])
    first_scan = datetime.fromisoformat(parcel["first_scan_at"])
    delivered = datetime.fromisoformat(parcel["delivered_at"])
    assert timedelta(hours=4) <= first_scan - created <= timedelta(hours=24)
    assert timedelta(days=7) <= delivered - created <= timedelta(days=12)  # AYPZXR: 7-12 days

    def status_at(at: datetime) -> TrackingStatus:
        control(server, "clock", {"advance_seconds": (at - server.emulator.clock.now()).total_seconds() + 1})
        [info] = carrier.track([shipment.tracking_number])
        return info.status

    assert status_at(created) is TrackingStatus.PENDING
    assert status_at(first_scan) is TrackingStatus.ACCEPTED   # received at the warehouse: first scan
    with pytest.raises(PermanentCarrierError, match="cannot delete"):
        carrier.cancel(shipment)
    assert status_at(delivered) is TrackingStatus.DELIVERED
    [info] = carrier.track([shipment.carrier_shipment_id])  # the waybill number works too
    statuses = [e.status for e in info.events]
    assert statuses[0] is TrackingStatus.PENDING and statuses[-1] is TrackingStatus.DELIVERED
    assert TrackingStatus.ACCEPTED in statuses and TrackingStatus.CUSTOMS in statuses
    assert [e.time for e in info.events] == sorted(e.time for e in info.events)
    assert info.events[1].time == first_scan.replace(microsecond=0)
    assert info.events[-1].time == delivered.replace(microsecond=0)


def test_malformed_answer_is_transient_and_the_order_can_be_found(sandbox, connect):
    server = sandbox(track_type2_rate=0.0)
    carrier = connect(server)
    control(server, "faults", {"malformed": 1.0})
    with pytest.raises(TransientCarrierError, match="not valid JSON"):
        carrier.create_shipment(make_request("PKG-AMBIGUOUS-1"))
    control(server, "faults", {"malformed": 0.0})
    found = carrier.find_by_reference("PKG-AMBIGUOUS-1")  # the create took effect
    assert found is not None and YT.match(found.tracking_number)
    assert carrier.create_shipment(make_request("PKG-AMBIGUOUS-1")).carrier_shipment_id == \
        found.carrier_shipment_id
    state = control(server, "state")
    assert state["labels"]["PKG-AMBIGUOUS-1"]["created"] == 1
    assert state["faults_injected"]["malformed"] == 1


def test_timeout_and_server_error_faults_are_transient(sandbox, connect):
    server = sandbox()
    carrier = connect(server, timeout_seconds=0.3)
    control(server, "faults", {"timeout": 1.0, "timeout_seconds": 1.0})
    with pytest.raises(TransientCarrierError, match="no answer within"):
        carrier.quote(make_request())
    control(server, "faults", {"timeout": 0.0, "error_5xx": 1.0})
    with pytest.raises(TransientCarrierError, match="HTTP 500"):
        carrier.create_shipment(make_request("PKG-5XX-1"))
    assert "PKG-5XX-1" not in control(server, "state")["labels"]  # a 5xx fault never takes effect


@pytest.mark.parametrize("mode", ["text", "json"])
def test_wrong_credentials_are_a_permanent_error(sandbox, connect, mode):
    server = sandbox(auth_failure=mode)
    carrier = connect(server, api_secret="wrong-secret")
    with pytest.raises(PermanentCarrierError, match="rejected the credentials") as caught:
        carrier.create_shipment(make_request())
    assert not isinstance(caught.value, DuplicateReferenceError)
    assert "wrong-secret" not in str(caught.value)
    answer = requests.get(f"{server.url}/api/WayBill/GetOrder?OrderNumber=X", headers=_auth(secret="nope"),
                          timeout=5)
    if mode == "text":
        assert answer.status_code == 401 and not answer.text.startswith("{")
    else:
        assert answer.status_code == 200 and answer.json()["Code"] == "1001"


@pytest.mark.parametrize("token", ["é", "Qzg4ODg4JnNhbmRib3gtc2VjcmV0ü", "!!!!", "//4meA=="])
def test_a_mangled_basic_token_is_refused_not_a_crash(sandbox, token):
    """Not base64, not ASCII (a header's bytes arrive as Latin-1 text), not UTF-8 inside: the
    credentials are refused (401) like any wrong ones, never an emulator error (a 5xx is transient:
    the client would retry instead of reporting the credentials)."""
    server = sandbox()
    answer = requests.get(f"{server.url}/api/WayBill/GetOrder?OrderNumber=X",
                          headers={"Authorization": f"Basic {token}".encode("latin-1")}, timeout=5)
    assert answer.status_code == 401


def test_credentials_come_from_the_carrier_settings(sandbox, connect):
    server = sandbox(carrier_settings={"base_url": "http://x", "customer_code": "C42", "api_secret": "own"})
    assert connect(server, customer_code="C42", api_secret="own").find_by_reference("NONE") is None
    with pytest.raises(PermanentCarrierError):  # the default pair is not accepted any more
        connect(server).find_by_reference("NONE")


def test_missing_fields_are_named(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    with pytest.raises(PermanentCarrierError, match=r"Receiver\.City is required") as caught:
        carrier.create_shipment(make_request("PKG-NOCITY", ship_to=replace(BUYER, city="")))
    assert not isinstance(caught.value, DuplicateReferenceError)
    with pytest.raises(PermanentCarrierError, match="ZZZ does not exist") as caught:
        carrier.create_shipment(make_request("PKG-BADSVC", service="ZZZ"))
    assert not isinstance(caught.value, DuplicateReferenceError)

    order = {"CustomerOrderNumber": "RAW-1", "ShippingMethodCode": "AYPZXR", "PackageCount": 0,
             "Receiver": {"CountryCode": "US"},
             "Parcels": [{"Quantity": 1, "UnitPrice": 1, "UnitWeight": 0.1}]}
    answer = requests.post(f"{server.url}/api/WayBill/CreateOrder", json=[order], headers=_auth(), timeout=5)
    [item] = answer.json()["Item"]
    assert item["Success"] == 0 and item["WayBillNumber"] is None
    for field in ("PackageCount", "Weight", "Receiver.FirstName", "Receiver.Street", "Receiver.City",
                  "Parcels[0].EName", "Parcels[0].CurrencyCode"):
        assert field in item["Remark"]
    state = control(server, "state")
    assert "RAW-1" not in state["labels"] and state["create_attempts"]["RAW-1"] == 1


def test_quotes_and_shipping_methods(sandbox, connect):
    carrier = connect(sandbox())
    [quote] = carrier.quote(make_request(service="AYPZXR"))
    assert quote.carrier == "yunexpress" and quote.price.currency == "CNY" and quote.price.amount > 0
    assert quote.transit_days == 12 and quote.tracking_level == "fully_tracked"
    assert quote.handling_fee == Money(Decimal("19.0"), "CNY")  # the emulator's AYPZXR RegistrationFee
    assert quote.chargeable_weight_g is None  # the price trial names none
    heavier = carrier.quote(make_request(service="AYPZXR", weight_g=2000))[0]
    assert heavier.price.amount > quote.price.amount
    assert [q.service for q in carrier.quote(make_request(service=""))] == ["AYPZXR", "AYUZXR", "AYPZXU"]
    assert carrier.quote(make_request(ship_to=replace(BUYER, country_code="KP"))) == []  # Items: null
    battery = {q.service for q in carrier.quote(make_request(service="", has_battery=True))}
    assert "AYUZXR" not in battery  # a general-goods (普货) line takes no batteries
    codes = {m.code for m in carrier.shipping_methods("US")}
    assert {"AYPZXR", "AYUZXR", "AYPZXU", "THPHR", "ZXR"} <= codes
    assert carrier.shipping_methods("KP") == []


def test_the_ioss_number_reaches_the_emulator_in_iosscode(sandbox, connect):
    server = sandbox(track_type2_rate=0.0)
    carrier = connect(server)
    with_ioss = carrier.create_shipment(make_request("PKG-IOSS-1", ioss_number="IM2760000001"))
    without = carrier.create_shipment(make_request("PKG-IOSS-2"))
    orders = server.emulator.store["orders"]
    assert orders[with_ioss.carrier_shipment_id]["ioss"] == "IM2760000001"
    assert orders[without.carrier_shipment_id]["ioss"] is None


def test_unknown_numbers(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    [info] = carrier.track(["YT0000000000000000"])
    assert info.status is TrackingStatus.UNKNOWN and info.events == ()
    answer = requests.get(f"{server.url}/api/Tracking/GetTrackInfo?OrderNumber=YT0000000000000000",
                          headers=_auth(), timeout=5).json()
    assert answer["Code"] != "0000" and answer["Message"]
    label = requests.post(f"{server.url}/api/Label/Print", json=["YT0000000000000000"], headers=_auth(),
                          timeout=5).json()
    assert label["Item"][0]["OrderInfos"][0]["Code"] == 200
    assert requests.get(f"{server.url}/PDF/YT0000000000000000.pdf", timeout=5).status_code == 404


def test_numbers_are_deterministic_and_the_state_holds_no_buyer_pii(sandbox, connect, tmp_path):
    state_file = tmp_path / "yunexpress.json"
    first = connect(sandbox(seed=11, state_file=str(state_file), track_type2_rate=0.5))
    second = connect(sandbox(seed=11, track_type2_rate=0.5))
    made = [(first.create_shipment(make_request(f"PKG-{i}")),
             second.create_shipment(make_request(f"PKG-{i}"))) for i in range(6)]
    assert all((a.carrier_shipment_id, a.tracking_number) == (b.carrier_shipment_id, b.tracking_number)
               for a, b in made)
    assert len({a.carrier_shipment_id for a, _ in made}) == 6
    assert {a.tracking_number is None for a, _ in made} == {True, False}  # both TrackType paths occur

    saved = state_file.read_text(encoding="utf-8")
    for pii in (BUYER.name, BUYER.line1, BUYER.line2, BUYER.phone, BUYER.email, BUYER.postal_code, "Seattle"):
        assert pii not in saved
    restarted = YunExpressEmulator({"seed": 11, "state_file": str(state_file)})
    assert restarted.sandbox_state()["labels"]["PKG-3"]["waybill"] == made[3][0].carrier_shipment_id
    assert json.loads(saved)["store"]["seq"] == 6


def test_a_deleted_reference_can_be_used_again(sandbox, connect):
    server = sandbox(track_type2_rate=0.0)
    carrier = connect(server)
    first = carrier.create_shipment(make_request("PKG-REUSE"))
    assert carrier.cancel(first)
    second = carrier.create_shipment(make_request("PKG-REUSE"))
    assert second.carrier_shipment_id != first.carrier_shipment_id
    label = control(server, "state")["labels"]["PKG-REUSE"]
    assert label["created"] == 2 and label["cancelled"] is False
    assert label["waybills"] == [first.carrier_shipment_id, second.carrier_shipment_id]
