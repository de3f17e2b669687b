"""client.py against canned HTTP (``responses``): what goes on the wire, how failures are classified."""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from mfn_carrier_yanwen import mapping
from mfn_carrier_yanwen.client import YanwenCarrier
from responses import matchers
from yanwen_testkit import (
    BUYER,
    TOKEN,
    USER,
    carrier_for,
    checkpoint,
    make_request,
    ok,
    refused,
    settings_for,
    tracking_answer,
    tracking_result,
    waybill_record,
)

from connector.kit import (
    CarrierContext,
    DuplicateReferenceError,
    Money,
    PermanentCarrierError,
    Shipment,
    TrackingStatus,
    TransientCarrierError,
)
from connector.kit.sandbox import make_label_pdf

BASE = "https://open.yw56.com.cn"
API = BASE + "/api/order"
TRACK = "http://api.track.yw56.com.cn/api/tracking"
NOW = 1_772_416_800.123  # a fixed clock: the signed timestamp is int(NOW * 1000)
REF = "111-0000001-0000001-1"


@pytest.fixture
def carrier() -> YanwenCarrier:
    return carrier_for(settings_for(BASE, timeout_seconds=7, connect_timeout_seconds=2), clock=lambda: NOW)


def _method(name: str) -> list:
    return [matchers.query_param_matcher({"method": name}, strict_match=False)]


def _sent(call) -> tuple[dict[str, str], str]:
    query = {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}
    return query, call.request.body.decode("utf-8")


def _shipment(waybill: str = "UG123456785YP") -> Shipment:
    return Shipment(carrier="yanwen", reference=REF, carrier_shipment_id=waybill, tracking_number=waybill,
                    service="481")


# -- what goes on the wire -------------------------------------------------------------------


@responses.activate
def test_create_sends_a_signed_compact_body(carrier):
    responses.post(API, json=ok({"waybillNumber": "UG123456785YP", "orderNumber": REF,
                                 "yanwenOrderNumber": "Y1"}), match=_method("express.order.create"))
    shipment = carrier.create_shipment(make_request(ioss_number="IM2500000000"))
    assert (shipment.carrier_shipment_id, shipment.tracking_number) == ("UG123456785YP", "UG123456785YP")
    call = responses.calls[0]
    query, body = _sent(call)
    assert query == {"user_id": USER, "method": "express.order.create", "format": "json",
                     "timestamp": "1772416800123", "version": "V1.0",
                     "sign": mapping.sign(TOKEN, USER, body, "express.order.create", "1772416800123")}
    assert body == mapping.compact_json(json.loads(body)) and "手机壳" in body  # UTF-8, no \u escapes
    sent = json.loads(body)
    assert sent["orderNumber"] == REF and sent["parcelInfo"]["ioss"] == "IM2500000000"
    assert call.request.headers["Content-Type"] == "application/json;charset=utf-8"
    assert TOKEN not in call.request.url and TOKEN not in body and TOKEN not in str(call.request.headers)


@responses.activate
def test_base_url_forms_and_timeouts(monkeypatch):
    seen = {}
    session = requests.Session()
    original = session.request

    def spy(*args, **kwargs):
        seen["timeout"] = kwargs["timeout"]
        return original(*args, **kwargs)

    monkeypatch.setattr(session, "request", spy)
    carrier = carrier_for(settings_for(API + "/", timeout_seconds=7, connect_timeout_seconds=2),
                          CarrierContext(http=session))
    responses.post(API, json=ok([]), match=_method("express.order.getlist"))
    assert carrier.find_by_reference(REF) is None
    assert seen["timeout"] == (2.0, 7.0)
    assert json.loads(responses.calls[0].request.body) == {"listNumber": [REF]}


def test_tracking_url_follows_the_base_url():
    assert carrier_for(settings_for(BASE)).settings.tracking_url == TRACK
    fat = carrier_for(settings_for("https://open-fat.yw56.com.cn/api/order"))
    assert fat.settings.tracking_url == TRACK
    sandbox = carrier_for(settings_for("http://127.0.0.1:8703"))
    assert sandbox.settings.api_url == "http://127.0.0.1:8703/api/order"
    assert sandbox.settings.tracking_url == "http://127.0.0.1:8703/api/tracking"
    own = carrier_for(settings_for(BASE, tracking_base_url="http://trackapi.yanwentech.com/"))
    assert own.settings.tracking_url == "http://trackapi.yanwentech.com/api/tracking"


@responses.activate
def test_timestamp_unit_can_be_microseconds():
    carrier = carrier_for(settings_for(BASE, timestamp_unit="us"), clock=lambda: NOW)
    responses.post(API, json=ok([]))
    carrier.channels()
    query, body = _sent(responses.calls[0])
    assert query["timestamp"] == str(int(NOW * 1_000_000)) and len(query["timestamp"]) == 16
    assert query["sign"] == mapping.sign(TOKEN, USER, body, "express.channel.getlist", query["timestamp"])


@responses.activate
def test_label_cancel_and_channels(carrier):
    pdf = make_label_pdf(["Yanwen", "UG123456785YP"])
    responses.post(API, json=ok({"waybillNumber": "UG123456785YP", "isSuccess": True,
                                 "base64String": base64.b64encode(pdf).decode()}),
                   match=_method("express.order.label.get"))
    responses.post(API, json=ok(None), match=_method("express.order.cancel"))
    responses.post(API, json=ok([{"id": "481", "nameCh": "燕文专线追踪-普货", "nameEn": "Special Line"}]),
                   match=_method("express.channel.getlist"))
    assert carrier.get_label(_shipment()) == pdf
    assert carrier.cancel(_shipment()) is True
    assert [c.id for c in carrier.channels()] == ["481"]
    bodies = [json.loads(c.request.body) for c in responses.calls]
    assert bodies == [{"waybillNumber": "UG123456785YP"},
                      {"waybillNumber": "UG123456785YP", "note": "Cancelled by the seller"}, {}]


@responses.activate
def test_get_order_by_waybill(carrier):
    responses.post(API, json=ok(waybill_record("UG123456785YP", status=3)),
                   match=_method("express.order.get"))
    record = carrier.get_order("UG123456785YP")
    assert record.order_number == REF and record.status == 3
    responses.replace(responses.POST, API, json=refused("2002", "运单不存在"))
    assert carrier.get_order("UG0") is None


# -- duplicates and reconciliation ------------------------------------------------------------


@responses.activate
def test_duplicate_create_returns_the_existing_waybill(carrier):
    responses.post(API, json=refused("121", f"V121 订单号重复 / orderNumber {REF} already exists"),
                   match=_method("express.order.create"))
    responses.post(API, json=ok([waybill_record("UG000000014YP", REF, status=5),
                                 waybill_record("UG000000028YP", REF, status=0)]),
                   match=_method("express.order.getlist"))
    shipment = carrier.create_shipment(make_request())
    assert shipment.carrier_shipment_id == "UG000000028YP"  # the cancelled one does not count
    methods = [_sent(c)[0]["method"] for c in responses.calls]
    assert methods == ["express.order.create", "express.order.getlist"]


@responses.activate
def test_duplicate_that_cannot_be_found_is_transient(carrier):
    responses.post(API, json=refused("121", "订单号重复"), match=_method("express.order.create"))
    responses.post(API, json=ok([]), match=_method("express.order.getlist"))
    with pytest.raises(TransientCarrierError, match="duplicate") as caught:
        carrier.create_shipment(make_request())
    assert isinstance(caught.value.__cause__, DuplicateReferenceError)


@responses.activate
def test_a_duplicate_whose_lookup_is_refused_stays_a_duplicate(carrier):
    """Yanwen holds the reference, so a label exists. A refused getlist escaping as a plain refusal
    made the engine give the claim up and hold the order carrier_rejected: released, it was planned
    under a new reference and bought a second label. As a duplicate the claim is kept."""
    responses.post(API, json=refused("121", "订单号重复"), match=_method("express.order.create"))
    responses.post(API, json=refused("1002", "method not exist"), match=_method("express.order.getlist"))
    with pytest.raises(DuplicateReferenceError, match="订单号重复"):
        carrier.create_shipment(make_request())


@responses.activate
def test_duplicate_codes_come_from_the_settings():
    carrier = carrier_for(settings_for(BASE, duplicate_codes=["4711"], duplicate_keywords=["in use"]))
    responses.post(API, json=refused("121", "V121 订单号重复"), match=_method("express.order.create"))
    with pytest.raises(PermanentCarrierError, match="V121") as caught:
        carrier.create_shipment(make_request())
    assert not isinstance(caught.value, DuplicateReferenceError)


@responses.activate
def test_find_by_reference_ignores_other_references_and_uses_cancelled_statuses():
    carrier = carrier_for(settings_for(BASE, cancelled_statuses=[5, 6]))
    responses.post(API, json=ok([waybill_record("UG1", REF, status=6), waybill_record("UG2", "OTHER")]))
    assert carrier.find_by_reference(REF) is None


@pytest.mark.parametrize("message", ["method not exist", "用户不存在"])
@responses.activate
def test_a_refused_lookup_raises_instead_of_answering_none(carrier, message):
    """The engine buys again when find_by_reference answers None: only an answer about the order
    may say so, never a refusal of the lookup itself."""
    responses.post(API, json=refused("1004", message), match=_method("express.order.getlist"))
    with pytest.raises(PermanentCarrierError, match="refused"):
        carrier.find_by_reference(REF)


def test_empty_lookup_says_whether_an_empty_lookup_may_be_bought_again(carrier):
    assert carrier.trusts_empty_lookup is True  # default "buy"
    assert carrier_for(settings_for(BASE, empty_lookup="hold")).trusts_empty_lookup is False


@responses.activate
def test_two_live_waybills_are_logged(carrier, caplog):
    responses.post(API, json=ok([waybill_record("UG1", REF), waybill_record("UG2", REF)]))
    with caplog.at_level(logging.WARNING, logger="mfn_carrier_yanwen.client"):
        assert carrier.find_by_reference(REF).carrier_shipment_id == "UG1"
    assert "2 live waybills" in caplog.text


# -- quotes ------------------------------------------------------------------------------------


def test_rate_card_quotes_by_default(carrier):
    quotes = {q.service: q for q in carrier.quote(make_request(service=""))}
    assert set(quotes) == {"481", "482", "464", "466"}
    assert quotes["481"].price == Money("45.50", "CNY")  # US row: 21.00 + 98.00 * 0.25
    assert quotes["481"].tracking_level == "fully_tracked" and quotes["466"].tracking_level == "untracked"
    assert quotes["464"].transit_days == 18
    assert [q.service for q in carrier.quote(make_request(service="464"))] == ["464"]
    assert carrier.quote(make_request(service="481", weight_g=2500)) == []  # over the row's maximum
    assert [q.service for q in carrier.quote(make_request(service="", has_battery=True))] == ["482"]


def test_rate_card_quotes_carry_the_handling_fee_and_the_chargeable_weight(carrier):
    [quote] = carrier.quote(make_request(service="481"))
    # US row: 21.00 + 98.00 * 0.25 = 45.50, of which the row's base 21.00 is the per-parcel fee
    assert quote.handling_fee == Money("21.00", "CNY") and quote.chargeable_weight_g == 250
    assert quote.price.amount - quote.handling_fee.amount == Money("24.50", "CNY").amount


def test_own_rate_card():
    rows = [{"service": "481", "countries": "DE,FR", "max_weight_g": 500, "base": "10", "per_kg": "50",
             "currency": "CNY", "transit_days": 9}]
    carrier = carrier_for(settings_for(BASE, rate_card=rows, services=["481"]))
    de = make_request(service="", ship_to=replace(BUYER, country_code="DE"))
    assert [(q.service, q.price) for q in carrier.quote(de)] == [("481", Money("22.50", "CNY"))]
    assert carrier.quote(make_request(service="")) == []  # US is not on this card
    with pytest.raises(ValueError, match="rate_card"):
        carrier_for(settings_for(BASE, rate_card=[{**rows[0], "base": "cheap"}]))


@responses.activate
def test_api_quotes_use_calc_list():
    carrier = carrier_for(settings_for(BASE, quote_source="api", calc_city_id="440300"))
    responses.post(API, json=ok([{"channelId": "481", "totalPrice": "39.50", "currency": "CNY",
                                  "deliveryDays": "8-12"},
                                 {"channelId": "464", "totalPrice": "30.00", "currency": "CNY"}]),
                   match=_method("calc.list"))
    quotes = carrier.quote(make_request(service="481"))
    assert [(q.service, q.price, q.transit_days, q.tracking_level) for q in quotes] == [
        ("481", Money("39.50", "CNY"), 12, "fully_tracked")]
    assert json.loads(responses.calls[0].request.body)["cityId"] == "440300"
    assert carrier.quote(make_request(service="", has_battery=True)) == []  # only general-goods lines priced


@responses.activate
def test_api_quotes_without_permission_are_permanent():
    carrier = carrier_for(settings_for(BASE, quote_source="api"))
    responses.post(API, json=refused("3001", "无权限访问该接口 / no permission"))
    with pytest.raises(PermanentCarrierError, match="quote_source: rate_card"):
        carrier.quote(make_request())


# -- tracking ------------------------------------------------------------------------------------


@responses.activate
def test_track_batches_thirty_numbers_per_call_and_keeps_the_order(carrier):
    numbers = [f"UG{i:09d}YP" for i in range(65)]

    def answer(request):
        asked = parse_qs(urlsplit(request.url).query)["nums"][0].split(",")
        results = [tracking_result(n, [checkpoint("2026-03-02T10:00:00", "PU10", "Received")]) for n in asked]
        return 200, {}, json.dumps(tracking_answer(results[::-1]))

    responses.add_callback(responses.GET, TRACK, callback=answer)
    infos = carrier.track(numbers + numbers[:3])  # repeats are asked once
    assert [i.tracking_number for i in infos] == numbers
    assert all(i.status is TrackingStatus.ACCEPTED for i in infos)
    batches = [parse_qs(urlsplit(c.request.url).query)["nums"][0].split(",") for c in responses.calls]
    assert [len(b) for b in batches] == [30, 30, 5] and sum(batches, []) == numbers
    assert {c.request.headers["Authorization"] for c in responses.calls} == {USER}
    assert carrier.track([]) == [] and len(responses.calls) == 3


@responses.activate
def test_track_uses_customer_number_and_batch_size():
    carrier = carrier_for(settings_for(BASE, customer_number="C-777", track_batch_size=10))
    responses.get(TRACK, json=tracking_answer([]))
    infos = carrier.track([f"N{i}" for i in range(12)])
    assert all(i.status is TrackingStatus.UNKNOWN for i in infos)
    assert [c.request.headers["Authorization"] for c in responses.calls] == ["C-777", "C-777"]


@pytest.mark.parametrize("answer", [{"status": 401, "json": {"code": 401, "message": "Unauthorized"}},
                                    {"status": 200, "json": {"code": 1, "message": "Authorization 无效"}}])
@responses.activate
def test_tracking_auth_failures_are_permanent(carrier, answer):
    responses.get(TRACK, **answer)
    with pytest.raises(PermanentCarrierError, match="customer_number"):
        carrier.track(["UG1"])


# -- failure classification ------------------------------------------------------------------


@pytest.mark.parametrize("exc", [requests.ReadTimeout("read timed out"), requests.ConnectTimeout("slow"),
                                 requests.ConnectionError(f"{API}?sign=abc reset by peer"),
                                 requests.exceptions.ChunkedEncodingError("broken")])
@responses.activate
def test_network_failures_are_transient(carrier, exc):
    responses.post(API, body=exc)
    with pytest.raises(TransientCarrierError, match="may have taken effect") as caught:
        carrier.create_shipment(make_request())
    assert "sign=" not in str(caught.value)


@responses.activate
def test_timeout_names_the_configured_timeout(carrier):
    responses.get(TRACK, body=requests.ReadTimeout("x"))
    with pytest.raises(TransientCarrierError, match="no answer within 7s") as caught:
        carrier.track(["UG1"])
    assert caught.value.code == "timeout"


@pytest.mark.parametrize("body", ['{"success": true, "code": "0", "data": {"waybillNumber": "UG1", <<garbled',
                                  "", "\xff\xfe"])
@responses.activate
def test_malformed_answers_are_transient_and_not_echoed(carrier, body):
    responses.post(API, body=body.encode("latin-1") if body == "\xff\xfe" else body)
    with pytest.raises(TransientCarrierError, match="not valid JSON") as caught:
        carrier.create_shipment(make_request())
    assert caught.value.code == "malformed" and "garbled" not in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
@responses.activate
def test_server_errors_and_throttling_are_transient(carrier, status):
    responses.post(API, status=status, body="busy")
    with pytest.raises(TransientCarrierError, match=f"HTTP {status}"):
        carrier.create_shipment(make_request())


@responses.activate
def test_unknown_route_is_permanent(carrier):
    responses.post(API, status=404, body="<html>404</html>")
    with pytest.raises(PermanentCarrierError, match="HTTP 404.*base_url"):
        carrier.create_shipment(make_request())


@pytest.mark.parametrize("answer", [
    {"status": 401, "body": ""},
    {"status": 200, "body": "sign error"},
    {"status": 200, "json": refused("1001", "sign error")},
])
@responses.activate
def test_signature_failures_are_permanent_and_never_show_the_token(carrier, answer, caplog):
    responses.post(API, **answer)
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentCarrierError,
                                                       match="rejected the credentials") as caught:
        carrier.create_shipment(make_request())
    assert not isinstance(caught.value, DuplicateReferenceError)
    for text in (str(caught.value), repr(carrier), repr(carrier.settings), caplog.text):
        assert TOKEN not in text
    assert "Jane" not in caplog.text and "Pine" not in caplog.text  # no PII in the logs


@responses.activate
def test_business_refusal_is_permanent_with_the_carriers_message(carrier):
    responses.post(API, json=refused("1101", "receiverInfo.city is required (receiverInfo.city 不能为空)"))
    with pytest.raises(PermanentCarrierError, match="receiverInfo.city is required") as caught:
        carrier.create_shipment(make_request())
    assert caught.value.code == "1101" and caught.value.carrier == "yanwen"


@responses.activate
def test_system_error_code_is_transient(carrier):
    responses.post(API, json=refused("-1", "系统异常"))
    with pytest.raises(TransientCarrierError, match="system error"):
        carrier.create_shipment(make_request())


# -- settings ------------------------------------------------------------------------------------


def test_settings_are_checked_by_name():
    with pytest.raises(ValueError, match="api_token"):
        carrier_for({"base_url": BASE, "user_id": "1"})
    with pytest.raises(ValueError, match="api_tokn"):
        carrier_for(settings_for(BASE, api_tokn="typo"))
    with pytest.raises(ValueError, match="quote_source"):
        carrier_for(settings_for(BASE, quote_source="guess"))
    with pytest.raises(ValueError, match="track_batch_size"):
        carrier_for(settings_for(BASE, track_batch_size=31))
