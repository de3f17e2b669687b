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
from chinapost_testkit import BUYER, make_request
from mfn_carrier_chinapost import mapping
from mfn_carrier_chinapost.s10 import is_valid_s10
from mfn_carrier_chinapost.sandbox import ChinaPostEmulator

from connector.kit import DuplicateReferenceError, PermanentCarrierError, TransientCarrierError
from connector.kit import TrackingStatus as S
from connector.kit.testing import advance_clock, sandbox_state, set_faults
from connector.kit.values import looks_like_pdf

pytestmark = pytest.mark.e2e

HOUR = 3600
AMAZON_CHINA_POST = re.compile(r"^[A-Z]{2}\d{9}CN$")  # what the SP-API emulator checks


def _advance(server, hours: float) -> None:
    advance_clock(server, hours * HOUR)


def test_label_lifecycle(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    request = make_request("PKG-LIFE-1")

    created = carrier.create_shipment(request)
    assert is_valid_s10(created.tracking_number, country="CN") and created.tracking_number.startswith("LX")
    assert AMAZON_CHINA_POST.match(created.tracking_number)
    assert created.carrier_shipment_id == created.tracking_number

    pdf = carrier.get_label(created)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = reader.pages[0].extract_text()
    assert len(reader.pages) == 1
    assert created.tracking_number in text and "EUB" in text and "PKG-LIFE-1" in text and "To US" in text
    assert "Jane" not in text and "Pine" not in text

    found = carrier.find_by_reference("PKG-LIFE-1")
    assert found == created

    again = carrier.create_shipment(request)  # e.g. a retry after a lost answer
    assert again == created
    state = sandbox_state(server)
    assert state["labels"]["PKG-LIFE-1"] == {"created": 1, "waybill": created.tracking_number,
                                            "cancelled": False, "waybills": [created.tracking_number]}
    assert state["create_attempts"]["PKG-LIFE-1"] == 2

    assert carrier.cancel(created) is True
    assert sandbox_state(server)["labels"]["PKG-LIFE-1"]["cancelled"] is True
    assert carrier.find_by_reference("PKG-LIFE-1") is None
    assert carrier.cancel(created) is True  # cancelled before: done, not refused
    with pytest.raises(PermanentCarrierError, match="面单不存在"):
        carrier.get_label(created)
    [info] = carrier.track([created.tracking_number])
    assert info.status is S.CANCELLED


def test_the_ioss_number_reaches_the_emulator_in_the_configured_field(sandbox, connect):
    server = sandbox()
    default = connect(server).create_shipment(make_request("PKG-IOSS-1", ioss_number="IM2760000001"))
    other = connect(server, ioss_field="tax_id").create_shipment(
        make_request("PKG-IOSS-2", ioss_number="IM2760000001"))
    without = connect(server).create_shipment(make_request("PKG-IOSS-3"))
    orders = server.emulator.store["orders"]
    assert orders[default.carrier_shipment_id]["ioss"] == {"s_tax_id": "IM2760000001"}
    assert orders[default.carrier_shipment_id]["prepayment_of_vat"] == "0"
    assert orders[other.carrier_shipment_id]["ioss"] == {"tax_id": "IM2760000001"}
    assert orders[without.carrier_shipment_id]["ioss"] == {}
    assert orders[without.carrier_shipment_id]["prepayment_of_vat"] is None


def test_duplicates_refused_by_the_carrier_still_give_one_label(sandbox, connect):
    server = sandbox(duplicate_mode="error")
    carrier = connect(server)
    first = carrier.create_shipment(make_request("PKG-DUP-1"))
    second = carrier.create_shipment(make_request("PKG-DUP-1"))
    assert second == first
    raw = requests.post(f"{server.url}/orderService/queryOrder", timeout=5, data=mapping.query_form(
        "PKG-DUP-1", key="sandbox-key", ec_company_id="SANDBOX-ECID")).json()
    assert [d["waybillNo"] for d in raw["data"]] == [first.carrier_shipment_id]
    state = sandbox_state(server)
    assert state["labels"]["PKG-DUP-1"]["created"] == 1 and state["create_attempts"]["PKG-DUP-1"] == 2
    assert state["duplicate_mode"] == "error"


def test_tracking_progresses_with_the_simulated_clock(sandbox, connect):
    server = sandbox(customs_rate=1.0, parcel_outcomes={})  # every parcel delivered on time
    carrier = connect(server)
    chinese = connect(server, tracking_language="cn", tracking_format="json")
    shipment = carrier.create_shipment(make_request("PKG-TRACK-1"))
    number = shipment.tracking_number
    life = server.emulator.parcels.get(number)
    at = {step.kind: step.at for step in life.plan()}

    def status_at(kind: str) -> S:
        advance_clock(server, (at[kind] - server.emulator.clock.now()).total_seconds() + 1)
        [info] = carrier.track([number])
        [info_cn] = chinese.track([number])
        assert info.status is info_cn.status  # both languages classify the same
        return info.status

    assert status_at("info_received") is S.PENDING        # electronic information only
    assert carrier.order_fees([number]) == {}             # nothing charged before acceptance
    assert status_at("accepted") is S.ACCEPTED             # the posting scan
    with pytest.raises(PermanentCarrierError, match="cannot be cancelled"):
        carrier.cancel(shipment)
    fee = carrier.order_fees([number])[number]
    assert fee.postage.currency == "CNY" and fee.postage.amount > 0 and fee.weight_g >= 250
    assert status_at("departed") is S.IN_TRANSIT           # handed over to the airline
    assert status_at("customs") is S.CUSTOMS               # held by customs
    assert status_at("out_for_delivery") is S.OUT_FOR_DELIVERY
    assert status_at("delivered") is S.DELIVERED

    [info] = carrier.track([number])
    statuses = [e.status for e in info.events]
    assert statuses[0] is S.PENDING and statuses[1] is S.ACCEPTED and statuses[-1] is S.DELIVERED
    assert S.CUSTOMS in statuses and S.UNKNOWN not in statuses
    assert [e.time for e in info.events] == sorted(e.time for e in info.events)
    assert info.events[1].time == at["accepted"].replace(microsecond=0)   # China time read back as UTC
    assert info.events[-1].time == at["delivered"].replace(microsecond=0)
    assert timedelta(days=7) <= at["delivered"] - at["info_received"] <= timedelta(days=12)  # EUB
    [info_cn] = chinese.track([number])
    assert any(re.search(r"[\u4e00-\u9fff]", e.description) for e in info_cn.events)
    assert [e.status for e in info_cn.events] == statuses


@pytest.mark.parametrize("language", ["en", "cn"])
def test_wording_varies_between_parcels_and_still_classifies(sandbox, connect, language):
    server = sandbox(customs_rate=1.0, parcel_outcomes={})
    carrier = connect(server, tracking_language=language)
    numbers = [carrier.create_shipment(make_request(f"PKG-WORD-{language}-{i}")).tracking_number
               for i in range(9)]
    _advance(server, 15 * 24)
    infos = carrier.track(numbers)
    assert {i.status for i in infos} == {S.DELIVERED}
    delivered_texts = {i.events[-1].description for i in infos}
    acceptance_texts = {i.events[1].description for i in infos}
    assert len(delivered_texts) > 1 and len(acceptance_texts) > 1
    for info in infos:
        assert S.UNKNOWN not in {e.status for e in info.events}
        assert all(e.description_en and not re.search(r"[\u4e00-\u9fff]", e.description_en)
                   for e in info.events)


def test_an_ambiguous_create_is_found_by_reference(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    set_faults(server, {"malformed": 1.0})
    with pytest.raises(TransientCarrierError, match="not valid JSON"):
        carrier.create_shipment(make_request("PKG-AMBIGUOUS-1"))
    set_faults(server, {"malformed": 0.0})
    found = carrier.find_by_reference("PKG-AMBIGUOUS-1")  # the create took effect
    assert found is not None and is_valid_s10(found.tracking_number)
    assert carrier.create_shipment(make_request("PKG-AMBIGUOUS-1")) == found
    state = sandbox_state(server)
    assert state["labels"]["PKG-AMBIGUOUS-1"]["created"] == 1
    assert state["faults_injected"]["malformed"] == 1


def test_timeout_and_server_error_faults_are_transient(sandbox, connect):
    server = sandbox()
    carrier = connect(server, timeout_seconds=0.3)
    set_faults(server, {"timeout": 1.0, "timeout_seconds": 1.0})
    with pytest.raises(TransientCarrierError, match="no answer within"):
        carrier.find_by_reference("PKG-X")
    set_faults(server, {"timeout": 0.0, "error_5xx": 1.0})
    with pytest.raises(TransientCarrierError, match="HTTP 500"):
        carrier.create_shipment(make_request("PKG-5XX-1"))
    set_faults(server, {"error_5xx": 0.0})
    assert "PKG-5XX-1" not in sandbox_state(server)["labels"]  # a 5xx fault never takes effect
    assert carrier.find_by_reference("PKG-5XX-1") is None


def test_wrong_credentials_are_permanent_everywhere(sandbox, connect):
    server = sandbox()
    good = connect(server)
    shipment = good.create_shipment(make_request("PKG-AUTH-1"))
    bad_key = connect(server, key="wrong-key")
    for call in (lambda: bad_key.create_shipment(make_request("PKG-AUTH-2")),
                 lambda: bad_key.find_by_reference("PKG-AUTH-1"),
                 lambda: bad_key.get_label(shipment),
                 lambda: bad_key.cancel(shipment),
                 lambda: bad_key.order_fees([shipment.carrier_shipment_id])):
        with pytest.raises(PermanentCarrierError, match="rejected the credentials") as caught:
            call()
        assert "wrong-key" not in str(caught.value)
        assert not isinstance(caught.value, DuplicateReferenceError)
    with pytest.raises(PermanentCarrierError, match="rejected the credentials"):
        connect(server, ec_company_id="SOMEONE-ELSE").create_shipment(make_request("PKG-AUTH-3"))
    for fmt in ("xml", "json"):
        with pytest.raises(PermanentCarrierError, match="rejected the credentials"):
            connect(server, tracking_token="nope", tracking_format=fmt).track([shipment.tracking_number])
    assert "PKG-AUTH-2" not in sandbox_state(server)["labels"]


def test_credentials_and_digest_encoding_come_from_the_carrier_settings(sandbox, connect):
    own = {"base_url": "http://x", "ec_company_id": "E42", "key": "own-key", "tracking_token": "own-token",
           "digest_encoding": "hex", "sender_no": "SN42"}
    server = sandbox(carrier_settings=own)
    carrier = connect(server, **{k: v for k, v in own.items() if k != "base_url"})
    shipment = carrier.create_shipment(make_request("PKG-OWN-1"))
    assert carrier.track([shipment.tracking_number])[0].status is S.PENDING
    assert carrier.cancel(shipment) is True  # senderNo SN42 is accepted
    with pytest.raises(PermanentCarrierError, match="rejected the credentials"):
        connect(server).create_shipment(make_request("PKG-OWN-2"))  # the defaults are not any more
    with pytest.raises(PermanentCarrierError, match="rejected the credentials"):
        connect(server, **{k: v for k, v in own.items() if k not in ("base_url", "digest_encoding")}) \
            .create_shipment(make_request("PKG-OWN-3"))  # raw digest where hex is expected


def test_missing_fields_are_named(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    with pytest.raises(PermanentCarrierError, match=r"receiver\.address is required") as caught:
        carrier.create_shipment(make_request("PKG-NOADDR", ship_to=replace(BUYER, line1="", line2="")))
    assert caught.value.code == "B02"
    with pytest.raises(PermanentCarrierError, match="exceeds the 2000 g limit of EUB"):
        carrier.create_shipment(make_request("PKG-HEAVY", weight_g=2500))
    with pytest.raises(PermanentCarrierError, match="weight must be grams > 0"):
        carrier.create_shipment(make_request("PKG-WEIGHTLESS", weight_g=0))  # never rounded up to 1 g

    order = {"logistics_order_no": "RAW-1", "sender_no": "SANDBOX-ECID", "biz_product_no": "001",
             "weight": 100, "receiver": {"name": "X", "nation": "usa"},
             "items": [{"cargo_name": "手机壳", "cargo_quantity": 1}]}
    payload = mapping.to_json(order)
    form = mapping.create_form(payload, key="sandbox-key", ec_company_id="SANDBOX-ECID", biz_product_no="001")
    answer = requests.post(f"{server.url}/pcpErp-web/a/pcp/orderService/OrderReceiveBack", data=form,
                           timeout=5).json()
    assert answer["success"] == "false"
    for field in ("receiver.nation must be a two-letter", "receiver.address", "items[0].cargo_name_en",
                  "items[0].cargo_value"):
        assert field in answer["msg"]
    state = sandbox_state(server)
    assert "RAW-1" not in state["labels"] and state["create_attempts"]["RAW-1"] == 1
    bad_type = {**form, "msg_type": "OTHER"}
    assert "B2C_TRADE" in requests.post(f"{server.url}/orderService/OrderReceiveBack", data=bad_type,
                                        timeout=5).json()["msg"]


def test_numbers_are_deterministic_valid_and_per_service(sandbox, connect, tmp_path):
    state_file = tmp_path / "chinapost.json"
    first = connect(sandbox(seed=11, state_file=str(state_file)))
    second = connect(sandbox(seed=11))
    services = ["EUB", "REGISTERED", "EMS", "EUB", "REGISTERED", "EMS"]
    made = [(first.create_shipment(make_request(f"PKG-{i}", service=s)),
             second.create_shipment(make_request(f"PKG-{i}", service=s))) for i, s in enumerate(services)]
    assert all(a.tracking_number == b.tracking_number for a, b in made)
    assert [a.tracking_number[:2] for a, _ in made] == ["LX", "RR", "EE", "LX", "RR", "EE"]
    assert [a.service for a, _ in made] == services
    assert all(is_valid_s10(a.tracking_number, country="CN") for a, _ in made)
    assert len({a.tracking_number for a, _ in made}) == 6
    assert first.find_by_reference("PKG-2").service == "EMS"

    saved = state_file.read_text(encoding="utf-8")
    for pii in (BUYER.name, BUYER.line1, BUYER.line2, BUYER.phone, BUYER.email, BUYER.postal_code, "Seattle"):
        assert pii not in saved
    restarted = ChinaPostEmulator({"seed": 11, "state_file": str(state_file)})
    assert restarted.sandbox_state()["labels"]["PKG-3"]["waybill"] == made[3][0].tracking_number
    assert json.loads(saved)["store"]["seq"] == 6


def test_a_cancelled_reference_can_be_used_again(sandbox, connect):
    server = sandbox()
    carrier = connect(server)
    first = carrier.create_shipment(make_request("PKG-REUSE"))
    assert carrier.cancel(first)
    second = carrier.create_shipment(make_request("PKG-REUSE"))
    assert second.tracking_number != first.tracking_number
    assert carrier.find_by_reference("PKG-REUSE") == second
    label = sandbox_state(server)["labels"]["PKG-REUSE"]
    assert label["created"] == 2 and label["cancelled"] is False
    assert label["waybills"] == [first.tracking_number, second.tracking_number]


def test_label_version_2_and_unknown_numbers(sandbox, connect):
    server = sandbox()
    carrier = connect(server, label_version="2.0", tracking_format="json")
    shipment = carrier.create_shipment(make_request("PKG-V2"))
    assert looks_like_pdf(carrier.get_label(shipment))
    unknown = replace(shipment, carrier_shipment_id="LX999999995CN", tracking_number="LX999999995CN")
    with pytest.raises(PermanentCarrierError, match="面单不存在"):
        carrier.get_label(unknown)
    [info] = carrier.track(["LX999999995CN"])
    assert info.status is S.UNKNOWN and info.events == ()
    with pytest.raises(PermanentCarrierError, match="does not exist"):
        carrier.cancel(unknown)
