"""The client against the emulator over loopback HTTP, and the emulator's own rules."""
from __future__ import annotations

import hashlib
import io
import json
import re
import time
from dataclasses import replace

import pypdf
import pytest
import requests
from mfn_carrier_yanwen import mapping
from mfn_carrier_yanwen.sandbox import YanwenEmulator, s10_check_digit
from mfn_carrier_yanwen.settings import TRACKING_NUMBER_PATTERN
from yanwen_testkit import BUYER, make_request

from connector.kit import (
    DuplicateReferenceError,
    Money,
    PermanentCarrierError,
    TrackingStatus,
    TransientCarrierError,
)
from connector.kit.testing import advance_clock, sandbox_state, set_faults

pytestmark = pytest.mark.e2e

UG = re.compile(r"^UG\d{9}YP$")
HOUR = 3600
REF = "111-0000001-0000001-1"


def _gateway(server, method: str, data, *, user_id: str = "100000", token: str = "sandbox-token",
             timestamp: str | None = None, body: str | None = None) -> dict:
    """A raw signed call, for what the client never sends."""
    timestamp = timestamp or str(int(time.time() * 1000))
    query, compact = mapping.signed_call(method, data, user_id=user_id, api_token=token, timestamp=timestamp)
    answer = requests.post(f"{server.url}/api/order", params=query,
                           data=(body if body is not None else compact).encode("utf-8"), timeout=5)
    return answer.json()


def test_label_lifecycle(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    request = make_request(REF, ioss_number="IM2500000000")

    created = carrier.create_shipment(request)
    assert UG.match(created.carrier_shipment_id) and created.tracking_number == created.carrier_shipment_id
    assert re.fullmatch(TRACKING_NUMBER_PATTERN, created.tracking_number)
    serial = created.tracking_number[2:10]
    assert created.tracking_number[10] == str(s10_check_digit(serial))

    pdf = carrier.get_label(created)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = reader.pages[0].extract_text()
    assert len(reader.pages) == 1
    assert created.tracking_number in text and REF in text and "481" in text and "IM2500000000" in text
    assert "Jane" not in text and "Pine" not in text

    found = carrier.find_by_reference(REF)
    assert (found.carrier_shipment_id, found.tracking_number, found.service) == (
        created.carrier_shipment_id, created.tracking_number, "481")
    assert carrier.find_by_reference("999-0000000-0000000-1") is None

    again = carrier.create_shipment(request)  # e.g. a retry after a lost answer
    assert again.carrier_shipment_id == created.carrier_shipment_id
    state = sandbox_state(server)
    assert state["labels"][REF] == {"created": 1, "waybill": created.carrier_shipment_id,
                                    "tracking_number": created.tracking_number, "cancelled": False,
                                    "waybills": [created.carrier_shipment_id]}
    assert state["create_attempts"][REF] == 2

    record = carrier.get_order(created.carrier_shipment_id)
    assert record.order_number == REF and record.status == 0

    assert carrier.cancel(found) is True
    assert sandbox_state(server)["labels"][REF]["cancelled"] is True
    assert carrier.find_by_reference(REF) is None
    assert carrier.get_order(created.carrier_shipment_id).status == 5
    assert carrier.cancel(found) is True  # already cancelled: nothing left to do
    with pytest.raises(PermanentCarrierError, match="cancelled"):
        carrier.get_label(found)
    [info] = carrier.track([created.tracking_number])
    assert info.status is TrackingStatus.UNKNOWN  # never scanned

    reused = carrier.create_shipment(request)  # a cancelled orderNumber may be used again
    assert reused.carrier_shipment_id != created.carrier_shipment_id
    label = sandbox_state(server)["labels"][REF]
    assert label["created"] == 2 and label["cancelled"] is False


def _advance_to(server, at) -> None:
    advance_clock(server, max(0.0, (at - server.emulator.clock.now()).total_seconds() + 1))


def test_tracking_progresses_with_the_simulated_clock(sandbox, connect):
    server = sandbox(parcel_outcomes={})  # every parcel delivered on time
    carrier = connect(server)
    shipment = carrier.create_shipment(make_request(REF))
    at = {step.kind: step.at for step in server.emulator.parcels.get(shipment.tracking_number).plan()}

    def status_at(kind: str) -> TrackingStatus:
        _advance_to(server, at[kind])
        [info] = carrier.track([shipment.tracking_number])
        return info.status

    assert status_at("info_received") is TrackingStatus.PENDING     # SC10: created, not scanned
    assert status_at("accepted") is TrackingStatus.ACCEPTED         # PU10
    with pytest.raises(PermanentCarrierError, match="cannot be cancelled"):
        carrier.cancel(shipment)
    assert status_at("origin_facility") is TrackingStatus.IN_TRANSIT  # OR10: left the sorting centre
    assert status_at("customs_cleared") is TrackingStatus.CUSTOMS   # IM10: import customs cleared
    assert status_at("out_for_delivery") is TrackingStatus.OUT_FOR_DELIVERY  # LM25
    assert status_at("delivered") is TrackingStatus.DELIVERED       # LM40
    [info] = carrier.track([shipment.tracking_number])
    codes = [e.code for e in info.events]
    assert codes[:2] == ["SC10", "PU10"] and codes[-2:] == ["LM25", "LM40"]
    assert [e.time for e in info.events] == sorted(e.time for e in info.events)
    assert info.events[-1].time - info.events[1].time == \
        (at["delivered"].replace(microsecond=0) - at["accepted"].replace(microsecond=0))  # zones applied
    assert carrier.get_order(shipment.carrier_shipment_id).status == 4

    raw = requests.get(f"{server.url}/api/tracking", params={"nums": shipment.tracking_number},
                       headers={"Authorization": "100000"}, timeout=5).json()
    zones = {p["tracking_status"]: p["time_zone"] for p in raw["result"][0]["checkpoints"]}
    assert zones["PU10"] == "+8" and zones["LM40"] == "-5"  # destination events in local US time
    last_mile = raw["result"][0]["exchange_number"]
    assert last_mile and carrier.track([last_mile])[0].status is TrackingStatus.DELIVERED


S = TrackingStatus


@pytest.mark.parametrize(("options", "codes", "middle", "final"), [
    ({"failed_attempt_rate": 1.0}, ["LM25", "LM50", "LM25", "LM40"], S.OUT_FOR_DELIVERY, S.DELIVERED),
    ({"parcel_outcomes": {"returned": 1.0}}, ["LM25", "LM50", "LM85", "LM90"], S.RETURNING, S.RETURNED),
    ({"pickup_rate": 1.0}, ["LM20", "LM30", "LM40"], S.OUT_FOR_DELIVERY, S.DELIVERED),
])
def test_delivery_branches(sandbox, connect, options, codes, middle, final):
    server = sandbox(**{"parcel_outcomes": {}, **options})
    carrier = connect(server)
    shipment = carrier.create_shipment(make_request(REF))
    plan = server.emulator.parcels.get(shipment.tracking_number).plan()
    _advance_to(server, plan[-2].at)  # out for delivery (again; pickup: ready for it); returned: returning
    assert carrier.track([shipment.tracking_number])[0].status is middle
    advance_clock(server, 60 * 86400)
    [info] = carrier.track([shipment.tracking_number])
    assert info.status is final
    assert [e.code for e in info.events][-len(codes):] == codes


def test_untracked_and_economy_lines_stop_being_tracked(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    untracked = carrier.create_shipment(make_request("R-UNTRACKED", service="466"))
    economy = carrier.create_shipment(make_request("R-ECONOMY", service="464"))
    assert untracked.tracking_number.startswith("YW")
    assert re.fullmatch(TRACKING_NUMBER_PATTERN, untracked.tracking_number)
    advance_clock(server, 300 * HOUR)
    tracked = carrier.track([untracked.tracking_number, economy.tracking_number])
    infos = {i.tracking_number: i for i in tracked}
    assert infos[untracked.tracking_number].events[-1].code == "LH10"
    assert infos[economy.tracking_number].events[-1].code == "LM10"
    assert infos[economy.tracking_number].status is TrackingStatus.IN_TRANSIT


def test_more_than_thirty_numbers_are_refused_but_the_client_batches(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    made = [carrier.create_shipment(make_request(f"R-{i}")).tracking_number for i in range(3)]
    numbers = made + [f"UG{i:09d}YP" for i in range(40)]
    too_many = requests.get(f"{server.url}/api/tracking", params={"nums": ",".join(numbers[:31])},
                            headers={"Authorization": "100000"}, timeout=5).json()
    assert too_many["code"] != 0 and "30" in too_many["message"]
    before = sandbox_state(server)["requests"]
    infos = carrier.track(numbers)
    assert sandbox_state(server)["requests"] - before == 2
    assert [i.tracking_number for i in infos] == numbers
    assert [i.status for i in infos[:3]] == [TrackingStatus.PENDING] * 3
    assert {i.status for i in infos[3:]} == {TrackingStatus.UNKNOWN}
    assert all(i.events == () for i in infos[3:])


def test_tracking_needs_the_authorization_header(sandbox, connect):
    server = sandbox(carrier_settings={"base_url": "http://x", "user_id": "100000",
                                       "api_token": "sandbox-token", "customer_number": "C-42"})
    assert connect(server, customer_number="C-42").track(["UG1"])[0].status is TrackingStatus.UNKNOWN
    assert connect(server).track(["UG1"])[0].status is TrackingStatus.UNKNOWN  # the user id works too
    with pytest.raises(PermanentCarrierError, match="customer_number"):
        connect(server, customer_number="C-WRONG").track(["UG1"])
    assert requests.get(f"{server.url}/api/tracking?nums=UG1", timeout=5).status_code == 401


def test_wrong_token_is_a_sign_error(sandbox, connect):
    server = sandbox()
    carrier = connect(server, api_token="wrong-token")
    with pytest.raises(PermanentCarrierError, match="rejected the credentials") as caught:
        carrier.create_shipment(make_request(REF))
    assert not isinstance(caught.value, DuplicateReferenceError) and "wrong-token" not in str(caught.value)
    assert REF not in sandbox_state(server)["labels"]
    answer = _gateway(server, "express.channel.getlist", {}, token="nope")
    assert answer == {"success": False, "code": "1001", "message": "sign error", "data": None}
    assert int(answer["code"]) > 0


def test_the_signature_covers_the_exact_body(sandbox):
    server = sandbox()
    good = _gateway(server, "express.channel.getlist", {})
    assert good["success"] is True and {c["id"] for c in good["data"]} == {"481", "482", "464", "466"}
    spaced = _gateway(server, "express.channel.getlist", {}, body="{ }")  # signed "{}", sent "{ }"
    assert spaced["message"] == "sign error"
    an_hour_ago = str(int(time.time() * 1000) - 3_600_000)
    stale = _gateway(server, "express.channel.getlist", {}, timestamp=an_hour_ago)
    assert stale["success"] is False and "timestamp" in stale["message"]
    unknown = _gateway(server, "express.order.teleport", {})
    assert unknown["success"] is False and "does not exist" in unknown["message"]
    missing = requests.post(f"{server.url}/api/order", params={"user_id": "100000"}, data=b"{}", timeout=5)
    assert "missing parameter" in missing.json()["message"]
    # signed by hand: md5(token + user_id + body + format + method + timestamp + version + token)
    ts = str(int(time.time() * 1000))
    source = f"sandbox-token100000{{}}jsonexpress.channel.getlist{ts}V1.0sandbox-token"
    query = {"user_id": "100000", "method": "express.channel.getlist", "format": "json", "timestamp": ts,
             "version": "V1.0", "sign": hashlib.md5(source.encode()).hexdigest()}
    assert requests.post(f"{server.url}/api/order", params=query, data=b"{}", timeout=5).json()["code"] == "0"


def test_credentials_come_from_the_carrier_settings(sandbox, connect):
    server = sandbox(carrier_settings={"base_url": "http://x", "user_id": "42", "api_token": "own-token"})
    assert connect(server, user_id="42", api_token="own-token").find_by_reference("NONE") is None
    with pytest.raises(PermanentCarrierError, match="credentials"):  # the default pair is not accepted now
        connect(server).find_by_reference("NONE")


def test_missing_fields_are_named(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    with pytest.raises(PermanentCarrierError, match=r"receiverInfo\.city is required") as caught:
        carrier.create_shipment(make_request("R-NOCITY", ship_to=replace(BUYER, city="")))
    assert caught.value.code == "1101" and not isinstance(caught.value, DuplicateReferenceError)
    with pytest.raises(PermanentCarrierError, match="channelId 999 does not exist"):
        carrier.create_shipment(make_request("R-BADCHANNEL", service="999"))
    with pytest.raises(PermanentCarrierError, match="does not accept batteries"):
        carrier.create_shipment(make_request("R-BATTERY", has_battery=True))
    assert carrier.create_shipment(make_request("R-BATTERY-OK", service="482", has_battery=True))
    with pytest.raises(PermanentCarrierError, match="not a valid US ZIP"):
        carrier.create_shipment(make_request("R-ZIP", ship_to=replace(BUYER, postal_code="WA")))
    with pytest.raises(PermanentCarrierError, match="exceeds the channel maximum"):
        carrier.create_shipment(make_request("R-HEAVY", weight_g=2500))

    raw = {"orderNumber": "RAW-1", "channelId": "481", "receiverInfo": {"country": "US"},
           "parcelInfo": {"hasBattery": 0, "productList": [{}]}}
    answer = _gateway(server, "express.order.create", raw)
    assert answer["success"] is False and int(answer["code"]) > 0
    for field in ("orderSource", "receiverInfo.name", "receiverInfo.address", "parcelInfo.currency",
                  "parcelInfo.totalQuantity", "parcelInfo.totalWeight", "productList[0].goodsNameEn",
                  "productList[0].price"):
        assert field in answer["message"], field
    state = sandbox_state(server)
    assert "RAW-1" not in state["labels"] and state["create_attempts"]["RAW-1"] == 1


def test_duplicate_refusal_is_configurable(sandbox, connect):
    refusing = sandbox()
    first = connect(refusing).create_shipment(make_request(REF))
    raw = _gateway(refusing, "express.order.create", mapping.build_create_order(make_request(REF),
                                                                                 user_id="100000"))
    assert raw["success"] is False and raw["code"] == "121" and "V121" in raw["message"]
    assert first.carrier_shipment_id in raw["message"]

    returning = sandbox(duplicate_mode="return_existing")
    carrier = connect(returning)
    one = carrier.create_shipment(make_request(REF))
    assert carrier.create_shipment(make_request(REF)).carrier_shipment_id == one.carrier_shipment_id
    assert sandbox_state(returning)["labels"][REF]["created"] == 1

    own_code = sandbox(duplicate_code="4711")
    strict = connect(own_code, duplicate_codes=["4711"], duplicate_keywords=["nothing-matches"])
    made = strict.create_shipment(make_request(REF))
    assert strict.create_shipment(make_request(REF)).carrier_shipment_id == made.carrier_shipment_id

    blind = connect(own_code, duplicate_codes=["1"], duplicate_keywords=["nothing-matches"])
    with pytest.raises(PermanentCarrierError, match="V121") as caught:  # not recognised: held, not re-bought
        blind.create_shipment(make_request(REF))
    assert not isinstance(caught.value, DuplicateReferenceError)
    assert sandbox_state(own_code)["labels"][REF]["created"] == 1


def test_create_new_mode_shows_why_the_engine_looks_up_first(sandbox, connect):
    server = sandbox(duplicate_mode="create_new")
    carrier = connect(server)
    first = carrier.create_shipment(make_request(REF))
    assert carrier.find_by_reference(REF).carrier_shipment_id == first.carrier_shipment_id
    second = carrier.create_shipment(make_request(REF))
    assert second.carrier_shipment_id != first.carrier_shipment_id
    assert sandbox_state(server)["labels"][REF]["created"] == 2


def test_malformed_answer_is_transient_and_the_waybill_can_be_found(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    set_faults(server, {"malformed": 1.0})
    with pytest.raises(TransientCarrierError, match="not valid JSON"):
        carrier.create_shipment(make_request("R-AMBIGUOUS"))
    set_faults(server, {"malformed": 0.0})
    found = carrier.find_by_reference("R-AMBIGUOUS")  # the create took effect
    assert found is not None and UG.match(found.tracking_number)
    again = carrier.create_shipment(make_request("R-AMBIGUOUS"))
    assert again.carrier_shipment_id == found.carrier_shipment_id
    state = sandbox_state(server)
    assert state["labels"]["R-AMBIGUOUS"]["created"] == 1 and state["faults_injected"]["malformed"] == 1


def test_timeout_server_error_and_system_error(sandbox, connect):
    server = sandbox()
    carrier = connect(server, timeout_seconds=0.3)
    set_faults(server, {"timeout": 1.0, "timeout_seconds": 1.0})
    with pytest.raises(TransientCarrierError, match="no answer within"):
        carrier.track(["UG1"])
    set_faults(server, {"timeout": 0.0, "error_5xx": 1.0})
    with pytest.raises(TransientCarrierError, match="HTTP 500"):
        carrier.create_shipment(make_request("R-5XX"))
    set_faults(server, {"error_5xx": 0.0})
    assert "R-5XX" not in sandbox_state(server)["labels"]  # a 5xx fault never takes effect

    busy = sandbox(system_error_rate=1.0)
    with pytest.raises(TransientCarrierError, match="system error"):
        connect(busy).create_shipment(make_request("R-BUSY"))
    assert "R-BUSY" not in sandbox_state(busy)["labels"]


def test_the_ioss_number_reaches_the_emulator_in_parcel_info_ioss(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    with_ioss = carrier.create_shipment(make_request("R-IOSS-1", ioss_number="IM2500000000"))
    without = carrier.create_shipment(make_request("R-IOSS-2"))
    waybills = server.emulator.store["waybills"]
    assert waybills[with_ioss.carrier_shipment_id]["ioss"] == "IM2500000000"
    assert waybills[without.carrier_shipment_id]["ioss"] == ""


def test_quotes_from_calc_list_and_the_permission_switch(sandbox, connect):
    server = sandbox()
    carrier = connect(server, quote_source="api")
    [quote] = carrier.quote(make_request(service="481"))
    assert quote.carrier == "yanwen" and quote.price.currency == "CNY" and quote.price.amount > 0
    assert quote.transit_days == 12 and quote.tracking_level == "fully_tracked"
    heavier = carrier.quote(make_request(service="481", weight_g=1500))[0]
    assert heavier.price.amount > quote.price.amount
    assert [q.service for q in carrier.quote(make_request(service=""))] == ["481", "482", "464", "466"]
    assert carrier.quote(make_request(ship_to=replace(BUYER, country_code="KP"))) == []
    assert [q.service for q in carrier.quote(make_request(service="", has_battery=True))] == ["482"]
    # the emulator's breakdown: 481's base 18.00 per parcel; the weight priced, at least 50 g
    assert quote.handling_fee == Money("18.00", "CNY") and quote.chargeable_weight_g == 250
    assert carrier.quote(make_request(service="481", weight_g=30))[0].chargeable_weight_g == 50

    locked = sandbox(calc_permission=False)
    with pytest.raises(PermanentCarrierError, match="quote_source: rate_card"):
        connect(locked, quote_source="api").quote(make_request())
    card = connect(locked).quote(make_request())  # the rate card needs no permission (and no call)
    assert [q.service for q in card] == ["481"]
    assert sandbox_state(locked)["requests"] == 1


def test_lookup_limits_and_channels(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    assert [c.id for c in carrier.channels()] == ["481", "482", "464", "466"]
    too_many = _gateway(server, "express.order.getlist", {"listNumber": [f"R{i}" for i in range(51)]})
    assert too_many["success"] is False and "50" in too_many["message"]
    made = carrier.create_shipment(make_request(REF))
    by_waybill = _gateway(server, "express.order.getlist", {"listNumber": [made.carrier_shipment_id]})
    assert [r["orderNumber"] for r in by_waybill["data"]] == [REF]
    assert _gateway(server, "express.order.get", {"waybillNumber": "UG0"})["code"] == "2002"


def test_numbers_are_deterministic_and_the_state_holds_no_buyer_pii(sandbox, connect, tmp_path):
    state_file = tmp_path / "yanwen.json"
    first = connect(sandbox(seed=11, state_file=str(state_file)))
    second = connect(sandbox(seed=11))
    made = [(first.create_shipment(make_request(f"R-{i}")), second.create_shipment(make_request(f"R-{i}")))
            for i in range(4)]
    assert all(a.carrier_shipment_id == b.carrier_shipment_id for a, b in made)
    assert len({a.carrier_shipment_id for a, _ in made}) == 4

    saved = state_file.read_text(encoding="utf-8")
    for pii in (BUYER.name, BUYER.line1, BUYER.line2, BUYER.phone, BUYER.email, BUYER.postal_code, "Seattle"):
        assert pii not in saved
    restarted = YanwenEmulator({"seed": 11, "state_file": str(state_file)})
    assert restarted.sandbox_state()["labels"]["R-2"]["waybill"] == made[2][0].carrier_shipment_id
    assert json.loads(saved)["store"]["seq"] == 4
