"""client.py against canned HTTP (``responses``): what goes on the wire, how failures are classified."""
from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import requests
import responses
from chinapost_testkit import KEY, TOKEN, carrier_for, make_request, settings_for
from mfn_carrier_chinapost import mapping
from mfn_carrier_chinapost.client import ChinaPostCarrier

from connector.kit import (
    DuplicateReferenceError,
    Money,
    PermanentCarrierError,
    SettingsError,
    Shipment,
    TrackingStatus,
    TransientCarrierError,
)
from connector.kit.sandbox import make_label_pdf

BASE = "https://pcp.example.test/pcpErp-web/a/pcp"
TRACK = "http://eub.example.test/partner/api/public/p"
WAYBILL = "LX000000014CN"
PDF = make_label_pdf(["China Post ePacket", WAYBILL])


@pytest.fixture
def carrier() -> ChinaPostCarrier:
    settings = settings_for(BASE, tracking_base_url=TRACK, timeout_seconds=7, connect_timeout_seconds=2)
    return carrier_for(settings)


def _form(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body if isinstance(call.request.body, str)
                                         else call.request.body.decode("utf-8")).items()}


def _shipment(reference: str = "PKG-1", waybill: str = WAYBILL) -> Shipment:
    return Shipment(carrier="chinapost", reference=reference, carrier_shipment_id=waybill,
                    tracking_number=waybill, service="EUB")


# -- what goes on the wire -------------------------------------------------------------------


@responses.activate
def test_create_posts_a_signed_form(carrier, monkeypatch):
    seen = {}
    original = carrier.http.session.request

    def spy(*args, **kwargs):
        seen.update(timeout=kwargs["timeout"], verify=kwargs["verify"])
        return original(*args, **kwargs)

    monkeypatch.setattr(carrier.http.session, "request", spy)
    responses.post(f"{BASE}/orderService/OrderReceiveBack",
                   json={"success": "true", "waybillNo": WAYBILL, "reason": "", "msg": "成功"})
    shipment = carrier.create_shipment(make_request("PKG-1", ioss_number="IM2760000001"))
    assert (shipment.carrier, shipment.reference, shipment.carrier_shipment_id, shipment.tracking_number,
            shipment.service) == ("chinapost", "PKG-1", WAYBILL, WAYBILL, "EUB")
    sent = responses.calls[0].request
    assert sent.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    form = _form(responses.calls[0])
    assert set(form) == {"logistics_interface", "data_digest", "msg_type", "ecCompanyId", "data_type",
                         "biz_product_no"}
    assert (form["msg_type"], form["ecCompanyId"], form["data_type"], form["biz_product_no"]) == (
        "B2C_TRADE", "90000002449155", "JSON", "001")
    assert form["data_digest"] == mapping.digest(form["logistics_interface"], KEY)
    order = json.loads(form["logistics_interface"])
    assert order["logistics_order_no"] == "PKG-1" and order["sender_no"] == "90000002449155"
    assert order["s_tax_id"] == "IM2760000001" and order["items"][0]["cargo_name"] == "手机壳"
    assert KEY not in str(sent.body)
    assert seen == {"timeout": (2.0, 7.0), "verify": True}


@responses.activate
def test_service_codes_map_to_configured_product_numbers():
    carrier = carrier_for(settings_for(BASE, biz_product_codes={"EMS": "019"}, sender_no="SN1",
                                       digest_encoding="hex"))
    responses.post(f"{BASE}/orderService/OrderReceiveBack",
                   json={"success": "true", "waybillNo": "EE100000003CN"})
    carrier.create_shipment(make_request("PKG-2", service="EMS"))
    form = _form(responses.calls[0])
    assert form["biz_product_no"] == "019" and json.loads(form["logistics_interface"])["sender_no"] == "SN1"
    assert form["data_digest"] == mapping.digest(form["logistics_interface"], KEY, "hex")


def test_unknown_service_is_refused_without_a_call(carrier):
    with pytest.raises(PermanentCarrierError, match="no service 'AYPZXR'"):
        carrier.create_shipment(make_request(service="AYPZXR"))


@responses.activate
def test_find_by_reference_uses_the_order_query(carrier):
    responses.post(f"{BASE}/orderService/queryOrder", json={"return_success": "true", "data": [
        {"logistics_order_no": "PKG-1", "waybillNo": WAYBILL, "biz_product_no": "001", "status": "created"}]})
    found = carrier.find_by_reference("PKG-1")
    assert (found.carrier_shipment_id, found.tracking_number, found.service) == (WAYBILL, WAYBILL, "EUB")
    form = _form(responses.calls[0])
    assert form == {"logistics_order_no": "PKG-1", "ecCompanyId": "90000002449155",
                    "dataDigest": mapping.digest("PKG-1", KEY)}


@responses.activate
def test_order_query_path_is_a_setting():
    carrier = carrier_for(settings_for(BASE, order_query_path="orderService/getOrderByLogisticsNo"))
    responses.post(f"{BASE}/orderService/getOrderByLogisticsNo",
                   json={"return_success": "false", "return_msg": "订单不存在"})
    assert carrier.find_by_reference("PKG-9") is None


@pytest.mark.parametrize("message", ["接口不存在", "服务不存在", "ecCompanyId不存在"])
@responses.activate
def test_a_refused_order_query_raises_instead_of_answering_none(carrier, message):
    """The engine buys again when find_by_reference answers None: only an answer about the order
    may say so, never a refusal of the query itself."""
    responses.post(f"{BASE}/orderService/queryOrder", json={"return_success": "false", "data": None,
                                                            "return_reason": "S01", "return_msg": message})
    with pytest.raises(PermanentCarrierError, match="refused|credentials"):
        carrier.find_by_reference("PKG-1")


def test_empty_lookup_says_whether_an_empty_query_may_be_bought_again(carrier):
    assert carrier.trusts_empty_lookup is True  # default "buy"
    assert carrier_for(settings_for(BASE, empty_lookup="hold")).trusts_empty_lookup is False
    with pytest.raises((SettingsError, ValueError), match="empty_lookup"):
        carrier_for(settings_for(BASE, empty_lookup="maybe"))


@responses.activate
def test_cancel_posts_waybill_sender_and_digest(carrier):
    responses.post(f"{BASE}/orderService/cancelOrder", json={"flag": True, "message": "撤单成功"})
    assert carrier.cancel(_shipment()) is True
    assert _form(responses.calls[0]) == {"waybillNo": WAYBILL, "senderNo": "90000002449155",
                                         "digest": mapping.digest(WAYBILL, KEY)}


@responses.activate
def test_cancel_refusal_carries_the_carriers_message(carrier):
    responses.post(f"{BASE}/orderService/cancelOrder",
                   json={"flag": False, "message": "邮件已收寄，不能撤单"})
    with pytest.raises(PermanentCarrierError, match="邮件已收寄，不能撤单"):
        carrier.cancel(_shipment())


@responses.activate
def test_fee_lookup(carrier):
    responses.post(f"{BASE}/orderFeeService/getOrderFee", json={"return_success": "true", "data": [
        {"waybillNo": WAYBILL, "weight": 260, "postage_total": 44.96, "postage_currency": "CNY"}]})
    fees = carrier.order_fees([WAYBILL, WAYBILL])
    assert fees[WAYBILL].postage == Money(Decimal("44.96"), "CNY")
    assert _form(responses.calls[0])["waybillNos"] == WAYBILL
    assert carrier.order_fees([]) == {} and len(responses.calls) == 1


# -- duplicates --------------------------------------------------------------------------------


@responses.activate
def test_a_refused_duplicate_returns_the_existing_shipment(carrier):
    responses.post(f"{BASE}/orderService/OrderReceiveBack",
                   json={"success": "false", "reason": "B03", "msg": "物流订单号重复 / already exists"})
    responses.post(f"{BASE}/orderService/queryOrder", json={"return_success": "true", "data": [
        {"logistics_order_no": "PKG-1", "waybillNo": WAYBILL, "biz_product_no": "001", "status": "created"}]})
    shipment = carrier.create_shipment(make_request("PKG-1"))
    assert shipment.carrier_shipment_id == WAYBILL
    assert [c.request.url.rsplit("/", 1)[1] for c in responses.calls] == ["OrderReceiveBack", "queryOrder"]


@responses.activate
def test_a_duplicate_that_cannot_be_found_is_transient(carrier):
    responses.post(f"{BASE}/orderService/OrderReceiveBack", json={"success": "false", "msg": "订单号重复"})
    responses.post(f"{BASE}/orderService/queryOrder", json={"return_success": "true", "data": []})
    with pytest.raises(TransientCarrierError, match="duplicate") as caught:
        carrier.create_shipment(make_request("PKG-1"))
    assert isinstance(caught.value.__cause__, DuplicateReferenceError)


@responses.activate
def test_a_duplicate_whose_lookup_is_refused_stays_a_duplicate(carrier):
    """China Post holds the reference, so a label exists. A refused lookup ("接口不存在": the
    UNVERIFIED query path is wrong) escaping as a plain refusal made the engine give the claim up
    and hold the order carrier_rejected: released, it was planned under a new reference and bought
    a second label. As a duplicate the engine keeps the claim and holds it label_uncertain."""
    responses.post(f"{BASE}/orderService/OrderReceiveBack", json={"success": "false", "msg": "订单号重复"})
    responses.post(f"{BASE}/orderService/queryOrder",
                   json={"return_success": "false", "return_msg": "接口不存在", "return_reason": "S01"})
    with pytest.raises(DuplicateReferenceError, match="PKG-1"):
        carrier.create_shipment(make_request("PKG-1"))


@responses.activate
def test_duplicate_words_are_a_setting():
    carrier = carrier_for(settings_for(BASE, duplicate_keywords=["doppelt"]))
    responses.post(f"{BASE}/orderService/OrderReceiveBack", json={"success": "false", "msg": "订单号重复"})
    with pytest.raises(PermanentCarrierError) as caught:
        carrier.create_shipment(make_request("PKG-1"))
    assert not isinstance(caught.value, DuplicateReferenceError)


# -- labels ------------------------------------------------------------------------------------


@responses.activate
def test_label_version_1_is_pdf_bytes(carrier):
    responses.post(f"{BASE}/surface/download", body=PDF, content_type="application/pdf")
    assert carrier.get_label(_shipment()) == PDF
    assert _form(responses.calls[0]) == {"ecCompanyId": "90000002449155", "barCode": WAYBILL,
                                         "version": "1.0", "dataDigest": mapping.digest(WAYBILL, KEY)}


@responses.activate
def test_label_version_2_is_hex_in_json():
    carrier = carrier_for(settings_for(BASE, label_version="2.0"))
    responses.post(f"{BASE}/surface/download", json={"success": True, "data": PDF.hex(), "digest": "d"})
    assert carrier.get_label(_shipment()) == PDF
    assert _form(responses.calls[0])["version"] == "2.0"


@pytest.mark.parametrize(("answer", "error", "match"), [
    ({"status": 400, "json": {"success": False, "err_code": "L01", "msg": "面单不存在"}},
     PermanentCarrierError, "面单不存在"),
    ({"status": 400, "json": {"success": False, "err_code": "S02", "msg": "dataDigest verification failed"}},
     PermanentCarrierError, "rejected the credentials"),
    ({"status": 200, "body": PDF[:60]}, TransientCarrierError, "truncated"),
    ({"status": 200, "body": b"<html>gateway</html>"}, TransientCarrierError, "not valid JSON"),
    ({"status": 502, "body": b""}, TransientCarrierError, "HTTP 502"),
    ({"status": 404, "body": b"<html>Not Found</html>"}, PermanentCarrierError, "HTTP 404.*base_url"),
])
@responses.activate
def test_label_failures(carrier, answer, error, match):
    responses.post(f"{BASE}/surface/download", **answer)
    with pytest.raises(error, match=match):
        carrier.get_label(_shipment())


# -- tracking ----------------------------------------------------------------------------------

TRACE_XML = ("<response><trace><acceptTime>2026-03-01 08:00:00</acceptTime>"
             "<acceptAddress>深圳</acceptAddress><remark>收寄</remark></trace></response>")


@responses.activate
def test_track_sends_the_legacy_headers(carrier):
    responses.get(f"{TRACK}/track/query/en/{WAYBILL}", body=TRACE_XML.encode(),
                  content_type="application/xml")
    [info] = carrier.track([WAYBILL, " lx000000014cn ", WAYBILL])
    assert info.status is TrackingStatus.ACCEPTED and len(responses.calls) == 1
    headers = responses.calls[0].request.headers
    assert headers["authenticate"] == TOKEN and headers["version"] == "international_eub_us_1.1"
    assert headers["Accept"] == "application/xml"


@responses.activate
def test_track_json_chinese_and_the_base_url_default():
    carrier = carrier_for(settings_for(BASE, tracking_format="json", tracking_language="cn"))
    responses.get(f"{BASE}/track/query/cn/{WAYBILL}", json={"trace": [
        {"acceptTime": "2026-03-01 08:00:00", "acceptAddress": "美国", "remark": "投递并签收"}]})
    [info] = carrier.track([WAYBILL])
    assert info.status is TrackingStatus.DELIVERED
    assert responses.calls[0].request.headers["Accept"] == "application/json"


@responses.activate
def test_track_keeps_a_garbled_date_to_its_own_number():
    carrier = carrier_for(settings_for(BASE, tracking_format="json", tracking_language="cn"))
    responses.get(f"{BASE}/track/query/cn/{WAYBILL}", json={"trace": [  # a time before year 1 in UTC
        {"acceptTime": "0001-01-01 00:00:00", "acceptAddress": "深圳", "remark": "收寄"}]})
    [info] = carrier.track([WAYBILL])
    assert info.status is TrackingStatus.UNKNOWN and info.events == ()
    assert "trace[0].acceptTime" in info.error and "0001-01-01" in info.error


def test_numbers_that_are_not_s10_are_not_asked_for(carrier):
    [info] = carrier.track(["LX000000015CN"])  # wrong check digit: cannot be China Post's
    assert info.status is TrackingStatus.UNKNOWN and info.events == ()


def test_tracking_needs_the_token():
    carrier = carrier_for({k: v for k, v in settings_for(BASE).items() if k != "tracking_token"})
    with pytest.raises(PermanentCarrierError, match="tracking_token") as raised:
        carrier.track([WAYBILL])
    assert raised.value.credentials_refused  # no parcel tracked: the engine raises the credentials alert


@responses.activate
def test_tracking_404_points_at_the_tracking_url(carrier):
    responses.get(f"{TRACK}/track/query/en/{WAYBILL}", status=404)
    with pytest.raises(PermanentCarrierError, match="tracking_base_url"):
        carrier.track([WAYBILL])


# -- failure classification --------------------------------------------------------------------


@pytest.mark.parametrize("exc", [requests.ReadTimeout("read timed out"), requests.ConnectTimeout("slow"),
                                 requests.ConnectionError("reset by peer"),
                                 requests.exceptions.ChunkedEncodingError("broken")])
@responses.activate
def test_network_failures_are_transient(carrier, exc):
    responses.post(f"{BASE}/orderService/OrderReceiveBack", body=exc)
    with pytest.raises(TransientCarrierError, match="may have taken effect"):
        carrier.create_shipment(make_request())


@responses.activate
def test_a_timeout_says_how_long_it_waited(carrier):
    responses.post(f"{BASE}/orderService/queryOrder", body=requests.ReadTimeout("x"))
    with pytest.raises(TransientCarrierError, match="no answer within 7s") as caught:
        carrier.find_by_reference("PKG-1")
    assert caught.value.code == "timeout"


@responses.activate
def test_malformed_json_is_transient_names_the_problem_and_does_not_echo_the_body(carrier):
    responses.post(f"{BASE}/orderService/OrderReceiveBack",
                   body='{"success": "true", "waybillNo": "LX00000<<garbled Jane Q. Buyer')
    with pytest.raises(TransientCarrierError, match="not valid JSON") as caught:
        carrier.create_shipment(make_request())
    assert "Jane" not in str(caught.value) and caught.value.code == "malformed"


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
@responses.activate
def test_server_errors_and_throttling_are_transient(carrier, status):
    responses.post(f"{BASE}/orderService/OrderReceiveBack", status=status, body="busy")
    with pytest.raises(TransientCarrierError, match=f"HTTP {status}"):
        carrier.create_shipment(make_request())


@responses.activate
def test_a_wrong_path_is_permanent(carrier):
    responses.post(f"{BASE}/orderService/OrderReceiveBack", status=404, body="Not Found")
    with pytest.raises(PermanentCarrierError, match="HTTP 404.*base_url"):
        carrier.create_shipment(make_request())


@pytest.mark.parametrize("answer", [
    {"status": 401, "body": "Unauthorized"},
    {"status": 403, "body": ""},
    {"status": 200, "body": "数据签名验证失败"},
    {"status": 200, "json": {"success": "false", "reason": "S02", "msg": "data_digest verification failed"}},
])
@responses.activate
def test_credential_failures_are_permanent_and_never_show_the_secrets(carrier, answer):
    responses.post(f"{BASE}/orderService/OrderReceiveBack", **answer)
    with pytest.raises(PermanentCarrierError, match="rejected the credentials") as caught:
        carrier.create_shipment(make_request())
    assert not isinstance(caught.value, DuplicateReferenceError)
    for text in (str(caught.value), repr(carrier), repr(carrier.settings)):
        assert KEY not in text and TOKEN not in text


# -- quotes from the rate card --------------------------------------------------------------------


def test_quotes_come_from_the_packaged_example_card(carrier):
    quotes = carrier.quote(make_request(service=""))
    assert [(q.service, q.tracking_level, q.price.currency) for q in quotes] == [
        ("EUB", "tracked", "CNY"), ("REGISTERED", "tracked", "CNY"), ("EMS", "fully_tracked", "CNY")]
    eub = quotes[0]
    assert eub.price == Money(Decimal("44.00"), "CNY") and eub.transit_days == 12  # 20 + 96 * 0.25
    assert [q.service for q in carrier.quote(make_request(service="EMS"))] == ["EMS"]
    assert carrier.quote(make_request(service="NOPE")) == []
    heavy = carrier.quote(make_request(service="", weight_g=5000))  # over the 2 kg small-packet limit
    assert [q.service for q in heavy] == ["EMS"]


def test_card_quotes_carry_the_handling_fee_and_the_chargeable_weight(carrier):
    quotes = {q.service: q for q in carrier.quote(make_request(service=""))}
    # EUB to US: 20.00 + 96.00 * 0.25 = 44.00; the row's base 20.00 is the per-parcel fee
    assert quotes["EUB"].handling_fee == Money(Decimal("20.00"), "CNY")
    assert quotes["EUB"].price.amount - quotes["EUB"].handling_fee.amount == Decimal("24.00")
    assert {q.chargeable_weight_g for q in quotes.values()} == {250}  # the actual weight
    rows = [{"service": "EUB", "countries": "US", "max_weight_g": 2000, "base": "0", "per_kg": "100",
             "currency": "USD"}]
    card_only = carrier_for(settings_for(BASE, rate_card=rows, services=["EUB"]))
    [no_base] = card_only.quote(make_request(service=""))
    assert no_base.handling_fee == Money(Decimal("0.00"), "USD")  # a card without a per-parcel fee


def test_an_inline_rate_card_and_the_offered_services_are_settings():
    rows = [{"service": "EUB", "countries": "US", "max_weight_g": 2000, "base": "10", "per_kg": "100",
             "currency": "USD", "transit_days": 9},
            {"service": "EMS", "countries": "*", "max_weight_g": 30000, "base": 30, "per_kg": 20,
             "currency": "USD"}]
    carrier = carrier_for(settings_for(BASE, rate_card=rows, services=["EUB"]))
    [quote] = carrier.quote(make_request(service=""))
    assert (quote.service, str(quote.price), quote.transit_days) == ("EUB", "35.00 USD", 9)
    assert carrier.quote(make_request(service="REGISTERED")) == []  # not on this card


@pytest.mark.parametrize(("rows", "match"), [
    ([{"service": "EUB"}], r"carriers\.chinapost\.rate_card\[0\]: missing required field 'countries'"),
    ([{"service": "EUB", "countries": "US", "max_weight_g": 2000, "base": "cheap", "per_kg": 1,
       "currency": "CNY"}], "rate_card: rate card row 1"),
], ids=["refused-by-the-schema", "prices-that-do-not-parse"])
def test_a_bad_rate_card_is_a_configuration_error(rows, match):
    with pytest.raises(SettingsError, match=match):
        carrier_for(settings_for(BASE, rate_card=rows))


# -- settings ---------------------------------------------------------------------------------


def test_settings_are_checked_by_name():
    with pytest.raises(SettingsError, match="key"):
        carrier_for({"base_url": BASE, "ec_company_id": "E"})
    with pytest.raises(SettingsError, match="ec_compnay_id"):
        carrier_for(settings_for(BASE, ec_compnay_id="typo"))
    with pytest.raises(SettingsError, match=r"services\[1\]: must be one of EUB, REGISTERED, EMS"):
        carrier_for(settings_for(BASE, services=["EUB", "SAL"]))
