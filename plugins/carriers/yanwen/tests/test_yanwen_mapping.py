"""mapping.py: signing, request bodies, envelope classification and answer parsing (no I/O)."""
from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from mfn_carrier_yanwen import mapping
from mfn_carrier_yanwen.settings import SCHEMA
from yanwen_testkit import (
    BUYER,
    checkpoint,
    make_request,
    ok,
    refused,
    tracking_answer,
    tracking_result,
    waybill_record,
)

from connector.kit import (
    CustomsLine,
    DuplicateReferenceError,
    Money,
    Parcel,
    PermanentCarrierError,
    TrackingStatus,
    TransientCarrierError,
)
from connector.kit.sandbox import make_label_pdf

# -- signing ---------------------------------------------------------------------------------


def test_sign_matches_a_vector_computed_by_hand():
    # md5 of the plain concatenation below, computed outside Python with coreutils:
    #   printf '%s' 'sandbox-token100000{"waybillNumber":"UG000000017YP"}jsonexpress.order.label.get\
    #   1700000000000V1.0sandbox-token' | md5sum
    source_parts = ("sandbox-token", "100000", '{"waybillNumber":"UG000000017YP"}', "json",
                    "express.order.label.get", "1700000000000", "V1.0", "sandbox-token")
    assert "".join(source_parts) == ('sandbox-token100000{"waybillNumber":"UG000000017YP"}json'
                                     'express.order.label.get1700000000000V1.0sandbox-token')
    assert mapping.sign("sandbox-token", "100000", '{"waybillNumber":"UG000000017YP"}',
                        "express.order.label.get", "1700000000000") == "c9cfbfcf20dc91eb5e4682563628da5b"


def test_sign_hashes_utf8_and_is_lower_case():
    # printf '%s' 'tok燕99000015{"name":"杯子"}jsonexpress.order.create1739750400000V1.0tok燕' | md5sum
    digest = mapping.sign("tok燕", "99000015", '{"name":"杯子"}', "express.order.create", "1739750400000")
    assert digest == "ee29d99a0807285f13dbb1ed8a72a70e"


def test_signed_call_signs_the_exact_compact_body():
    query, body = mapping.signed_call("express.order.label.get", {"waybillNumber": "UG000000017YP"},
                                      user_id="100000", api_token="sandbox-token", timestamp="1700000000000")
    assert body == '{"waybillNumber":"UG000000017YP"}'
    assert query == {"user_id": "100000", "method": "express.order.label.get", "format": "json",
                     "timestamp": "1700000000000", "version": "V1.0",
                     "sign": "c9cfbfcf20dc91eb5e4682563628da5b"}
    assert "sandbox-token" not in json.dumps(query)


def test_compact_json_keeps_chinese_characters_and_no_spaces():
    assert mapping.compact_json({"a": [1, 2], "b": "手机壳"}) == '{"a":[1,2],"b":"手机壳"}'


# -- express.order.create ----------------------------------------------------------------------


def test_create_body_carries_reference_channel_parcel_and_ioss():
    body = mapping.build_create_order(make_request(ioss_number="IM2500000000"), user_id="99000015",
                                      order_source="amazon")
    assert body["orderNumber"] == "111-0000001-0000001-1" and body["channelId"] == "481"
    assert body["userId"] == "99000015" and body["orderSource"] == "amazon"
    assert body["remark"] == "111-0000001-0000001"
    assert body["receiverInfo"] == {
        "name": "Jane Q. Buyer", "phone": "+1 206 555 0142", "email": "jane.buyer@example.com",
        "country": "US", "state": "WA", "city": "Seattle", "zipCode": "98101",
        "address": "1200 Pine Street, Apt 4B"}
    assert body["senderInfo"]["company"] == "Shenzhen Demo Trading Co., Ltd."
    parcel = body["parcelInfo"]
    assert parcel == {
        "hasBattery": 0, "currency": "USD", "totalPrice": "9.00", "totalQuantity": 2, "totalWeight": 250,
        "length": 21, "width": 15, "height": 3, "ioss": "IM2500000000",
        "productList": [{"goodsNameCh": "手机壳", "goodsNameEn": "Phone case", "price": "4.50",
                         "priceExport": "4.50", "hscode": "392690", "quantity": 2, "weight": 100}]}


def test_create_body_without_ioss_and_with_battery():
    body = mapping.build_create_order(make_request(has_battery=True), user_id="1")
    assert "ioss" not in body["parcelInfo"] and body["parcelInfo"]["hasBattery"] == 1


def test_required_receiver_fields_stay_even_when_empty():
    body = mapping.build_create_order(make_request(ship_to=replace(BUYER, city="", line2="")), user_id="1")
    assert body["receiverInfo"]["city"] == "" and body["receiverInfo"]["address"] == "1200 Pine Street"


def test_mixed_currencies_are_refused_before_any_call():
    request = make_request()
    euro_line = CustomsLine("X", "Cable", "线", "8544", 1, Money(Decimal(1), "EUR"), 20)
    lines = request.parcel.contents + (euro_line,)
    request = replace(request, parcel=replace(request.parcel, contents=lines))
    with pytest.raises(PermanentCarrierError, match="one declared currency"):
        mapping.build_create_order(request, user_id="1")
    empty = replace(request, parcel=Parcel(100, Decimal(1), Decimal(1), Decimal(1), ()))
    with pytest.raises(PermanentCarrierError, match="at least one customs line"):
        mapping.build_create_order(empty, user_id="1")


def test_parse_create_returns_the_waybill_as_tracking_number():
    answer = ok({"waybillNumber": "UG123456785YP", "orderNumber": "111-0000001-0000001-1",
                 "referenceNumber": "", "yanwenOrderNumber": "Y0000000001"})
    shipment = mapping.parse_create_order(answer, make_request())
    assert (shipment.carrier, shipment.carrier_shipment_id, shipment.tracking_number, shipment.service) == (
        "yanwen", "UG123456785YP", "UG123456785YP", "481")


@pytest.mark.parametrize("value", [[], ["UG123456785YP"], {"no": "UG123456785YP"}, 1.5, True])
def test_a_waybill_of_the_wrong_json_type_is_malformed_not_a_wrong_number(value):
    """A waybillNumber that is a list, an object, a fraction or a boolean would become a wrong number
    as text ("[]", "True"): the answer is malformed (the label may exist), naming the field."""
    answer = ok({"waybillNumber": value, "orderNumber": "111-0000001-0000001-1"})
    with pytest.raises(TransientCarrierError, match="field 'data.waybillNumber' should be text") as caught:
        mapping.parse_create_order(answer, make_request())
    assert caught.value.code == "malformed"
    record = waybill_record()
    record["waybillNumber"] = value
    with pytest.raises(TransientCarrierError, match=r"field 'data\[0\]\.waybillNumber' should be text"):
        mapping.parse_order_records(ok([record]))


@pytest.mark.parametrize(("data", "field"), [
    (None, "'data' should be an object"),
    ({"orderNumber": "111-0000001-0000001-1"}, "data.waybillNumber"),
    ({"waybillNumber": "UG1", "orderNumber": "OTHER"}, "data.orderNumber"),
])
def test_parse_create_names_what_is_missing(data, field):
    with pytest.raises(TransientCarrierError, match=field) as caught:
        mapping.parse_create_order(ok(data), make_request())
    assert caught.value.code == "malformed"


@pytest.mark.parametrize("answer", [
    refused("121", "V121 订单号重复 / orderNumber 111-0000001-0000001-1 already exists"),
    refused("999", "订单号重复"),
    refused("V121", "order number must not repeat"),
])
def test_duplicates_are_recognised_by_code_or_words(answer):
    with pytest.raises(DuplicateReferenceError) as caught:
        mapping.parse_create_order(answer, make_request(), duplicate_codes=("121", "V121"),
                                   duplicate_keywords=("重复", "already exist", "repeat"))
    assert caught.value.code == answer["code"]


def test_duplicate_detection_follows_the_settings():
    answer = refused("4711", "orderNumber is in use")
    with pytest.raises(PermanentCarrierError) as caught:
        mapping.parse_create_order(answer, make_request(), duplicate_codes=("121",), duplicate_keywords=())
    assert not isinstance(caught.value, DuplicateReferenceError)
    with pytest.raises(DuplicateReferenceError):
        mapping.parse_create_order(answer, make_request(), duplicate_codes=("4711",), duplicate_keywords=())


# -- the envelope ------------------------------------------------------------------------------


def test_code_may_be_a_number_or_a_string():
    assert mapping.expect_ok({"success": True, "code": 0, "message": "", "data": [1]}, "op") == [1]
    assert mapping.expect_ok({"code": "0", "data": None}, "op") is None  # success may be missing


@pytest.mark.parametrize(("answer", "problem"), [
    ([], "not a JSON object"),
    ({"success": True, "message": "ok"}, "field 'code' is missing"),
    ({"success": True, "code": None}, "field 'code' is missing"),
    ({"success": True, "code": {"x": 1}}, "should be a string or number"),
    ({"success": "yes", "code": "0"}, "field 'success' should be a boolean"),
    ({"success": False, "code": "0", "message": ""}, "inconsistent envelope"),
])
def test_malformed_envelopes_are_transient_and_named(answer, problem):
    with pytest.raises(TransientCarrierError, match=problem):
        mapping.expect_ok(answer, "express.order.create")


def test_business_refusal_is_permanent_with_message_and_code():
    with pytest.raises(PermanentCarrierError, match="receiverInfo.city is required") as caught:
        mapping.expect_ok(refused("1101", "receiverInfo.city is required"), "express.order.create")
    assert caught.value.code == "1101" and not isinstance(caught.value, DuplicateReferenceError)


def test_system_error_is_transient():
    with pytest.raises(TransientCarrierError, match="system error.*may have taken effect") as caught:
        mapping.expect_ok(refused("-1", "系统异常"), "express.order.create")
    assert caught.value.code == "-1"



@pytest.mark.parametrize("message", ["系统繁忙，请稍后再试", "System busy, please try again later"])
def test_a_refusal_in_yanwens_own_trouble_words_is_transient_whatever_its_code(message):
    """A positive code that says Yanwen is busy says nothing about the order, which may have been
    created: a refusal would give the reference up (the order is planned again under a new one, a
    second label), and a cancel refused so held the order void_refused with its label live."""
    answer = refused("1", message)
    with pytest.raises(TransientCarrierError, match="may have taken effect"):
        mapping.parse_create_order(answer, make_request())
    with pytest.raises(TransientCarrierError):
        mapping.parse_cancel(answer, "UG1", already_cancelled=("运单已取消",))

@pytest.mark.parametrize("message", ["sign error", "签名错误", "invalid token", "user_id 不存在"])
def test_signature_and_credential_refusals_are_a_credentials_error(message):
    with pytest.raises(PermanentCarrierError, match="rejected the credentials or the signature") as caught:
        mapping.expect_ok(refused("1001", message), "express.order.create")
    assert caught.value.code == "auth"


def test_assign_is_not_mistaken_for_sign():
    with pytest.raises(PermanentCarrierError, match="cannot assign") as caught:
        mapping.expect_ok(refused("2100", "cannot assign a waybill number"), "express.order.create")
    assert caught.value.code == "2100"


# -- labels, cancel, lookups, channels -------------------------------------------------------------


def test_label_is_decoded_from_base64():
    pdf = make_label_pdf(["Yanwen", "UG123456785YP"])
    answer = ok({"waybillNumber": "UG123456785YP", "isSuccess": True, "errorMsg": "",
                 "base64String": base64.b64encode(pdf).decode()})
    assert mapping.parse_label(answer, "UG123456785YP") == pdf


@pytest.mark.parametrize(("data", "problem"), [
    ({"isSuccess": True}, "base64String' is missing"),
    ({"isSuccess": True, "base64String": "!!not base64!!"}, "not valid base64"),
    ({"isSuccess": True, "base64String": base64.b64encode(b"<html>expired</html>").decode()},
     "not a complete PDF"),
    ({"isSuccess": True, "base64String": base64.b64encode(make_label_pdf(["a", "b"])[:200]).decode()},
     "not a complete PDF"),
])
def test_bad_labels_are_transient(data, problem):
    with pytest.raises(TransientCarrierError, match=problem):
        mapping.parse_label(ok(data), "UG1")


def test_label_refusal_is_permanent():
    answer = ok({"waybillNumber": "UG1", "isSuccess": False, "errorMsg": "运单已取消", "base64String": ""})
    with pytest.raises(PermanentCarrierError, match="运单已取消"):
        mapping.parse_label(answer, "UG1")


def test_cancel_outcomes():
    assert mapping.build_cancel_request("UG1", "why") == {"waybillNumber": "UG1", "note": "why"}
    assert mapping.build_cancel_request("UG1") == {"waybillNumber": "UG1"}
    assert mapping.parse_cancel(ok(None), "UG1") is True
    words = SCHEMA["properties"]["already_cancelled_keywords"]["default"]
    assert mapping.parse_cancel(refused("2004", "运单已取消 / already cancelled"), "UG1",
                                already_cancelled=words) is True
    with pytest.raises(PermanentCarrierError, match="already cancelled"):  # words configured away
        mapping.parse_cancel(refused("2004", "运单已取消 / already cancelled"), "UG1")
    # the words count only in a refusal of the waybill itself: not in a credentials failure, not in
    # Yanwen's own trouble (a negative code), not about something else that was cancelled
    with pytest.raises(PermanentCarrierError, match="credentials"):
        mapping.parse_cancel(refused("1001", "sign error, 运单已取消?"), "UG1", already_cancelled=words)
    with pytest.raises(TransientCarrierError):
        mapping.parse_cancel(refused("-1", "系统繁忙 运单已取消"), "UG1", already_cancelled=words)
    with pytest.raises(PermanentCarrierError, match="揽收预约已取消"):
        mapping.parse_cancel(refused("2003", "揽收预约已取消，运单已揽收"), "UG1", already_cancelled=words)
    with pytest.raises(PermanentCarrierError, match="refused to cancel UG1: 运单已揽收") as caught:
        mapping.parse_cancel(refused("2003", "运单已揽收，不能取消"), "UG1")
    assert caught.value.code == "2003"
    with pytest.raises(TransientCarrierError):
        mapping.parse_cancel(refused("-2", "busy"), "UG1")
    with pytest.raises(PermanentCarrierError, match="credentials"):
        mapping.parse_cancel(refused("1001", "sign error"), "UG1")


def test_lookup_finds_the_live_waybill_of_the_reference():
    ref = "111-0000001-0000001-1"
    answer = ok([waybill_record("UG000000014YP", ref, status=5),
                 waybill_record("UG000000028YP", ref, status=3),
                 waybill_record("UG000000031YP", "OTHER-REF", status=0)])
    records = mapping.parse_order_records(answer)
    shipment, live = mapping.shipment_for_reference(records, ref, cancelled_statuses=(5,))
    assert live == 1 and shipment.carrier_shipment_id == "UG000000028YP"
    assert shipment.tracking_number == "UG000000028YP" and shipment.service == "481"
    assert mapping.shipment_for_reference(records, "NONE")[0] is None
    only_cancelled = mapping.parse_order_records(ok([waybill_record("UG1", ref, status=5)]))
    assert mapping.shipment_for_reference(only_cancelled, ref, cancelled_statuses=(5,)) == (None, 0)
    # with a different reading of the status codes, the same record is live
    assert mapping.shipment_for_reference(only_cancelled, ref, cancelled_statuses=(99,))[1] == 1


@pytest.mark.parametrize("answer", [ok(None), ok([]), refused("2002", "运单不存在 / does not exist")])
def test_lookup_without_records_is_empty(answer):
    assert mapping.parse_order_records(answer) == []


@pytest.mark.parametrize("answer", [
    refused("1004", "method not exist"), refused("1101", "用户不存在"),
    refused("1004", "method express.order.getlist does not exist (接口不存在)"),
])
def test_a_refused_lookup_is_never_no_records(answer):
    """A refusal with "not exist" about something else than the order: the lookup did not look.
    Read as "no records", it would make the engine buy a second label after a lost create answer."""
    with pytest.raises(PermanentCarrierError, match="refused"):
        mapping.parse_order_records(answer)


def test_lookup_accepts_a_single_object_and_names_bad_fields():
    assert mapping.parse_order_records(ok(waybill_record("UG9")))[0].waybill == "UG9"
    with pytest.raises(TransientCarrierError, match=r"data\[0\].waybillNumber"):
        mapping.parse_order_records(ok([{"orderNumber": "x"}]))
    with pytest.raises(TransientCarrierError, match=r"data\[0\].status"):
        mapping.parse_order_records(ok([{**waybill_record(), "status": "shipped"}]))
    with pytest.raises(PermanentCarrierError, match="listNumber"):
        mapping.parse_order_records(refused("1005", "listNumber takes at most 50 numbers"))
    assert mapping.build_lookup_request(["R1"]) == {"listNumber": ["R1"]}


def test_channels():
    answer = ok([{"id": "481", "nameCh": "燕文专线追踪-普货", "nameEn": "Yanwen  Special Line"}])
    expected = mapping.Channel("481", "Yanwen Special Line", "燕文专线追踪-普货")
    assert mapping.parse_channels(answer) == [expected]
    with pytest.raises(TransientCarrierError, match=r"data\[0\].id"):
        mapping.parse_channels(ok([{"nameEn": "x"}]))


# -- calc.list ---------------------------------------------------------------------------------


def test_calc_request_and_quotes():
    body = mapping.build_calc_request(make_request(), city_id="440300")
    assert body == {"countryId": "US", "grams": 250, "length": 21, "width": 15, "height": 3,
                    "postcode": "98101", "cityId": "440300"}
    answer = ok([{"channelId": "481", "totalPrice": "39.50", "currency": "CNY", "deliveryDays": "8-12"},
                 {"productId": "464", "totalFee": 30, "currency": "RMB", "aging": "12-18天"},
                 {"channelId": "999", "totalPrice": "1"}])
    quotes = mapping.parse_calc(answer, services=("481", "464"), tracking_levels={"481": "fully_tracked"})
    assert [(q.service, q.price, q.transit_days, q.tracking_level) for q in quotes] == [
        ("481", Money(Decimal("39.50"), "CNY"), 12, "fully_tracked"),
        ("464", Money(Decimal("30"), "CNY"), 18, "")]
    assert mapping.parse_calc(ok({"list": [{"channelId": "481", "totalPrice": 1}]}))[0].service == "481"
    assert mapping.parse_calc(ok(None)) == []


def test_calc_quotes_carry_the_breakdown_when_the_answer_has_one():
    answer = ok([{"channelId": "481", "totalPrice": "42.50", "registrationFee": "18.00", "chargeWeight": 280,
                  "currency": "CNY"},
                 {"channelId": "464", "totalPrice": "30.00", "currency": "CNY"}])
    quotes = {q.service: q for q in mapping.parse_calc(answer)}
    assert quotes["481"].handling_fee == Money(Decimal("18.00"), "CNY")  # weight charge 24.50
    assert quotes["481"].chargeable_weight_g == 280
    # no breakdown in the item: none, not a guess
    assert quotes["464"].handling_fee is None and quotes["464"].chargeable_weight_g is None


def test_calc_without_permission_says_what_to_do():
    with pytest.raises(PermanentCarrierError, match="quote_source: rate_card"):
        mapping.parse_calc(refused("3001", "无权限访问该接口 / no permission for calc.list"))
    with pytest.raises(TransientCarrierError, match=r"data\[0\].totalPrice"):
        mapping.parse_calc(ok([{"channelId": "481", "totalPrice": "free"}]))


# -- tracking ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status"), [
    ("PU10", TrackingStatus.ACCEPTED),
    ("OR10", TrackingStatus.IN_TRANSIT),
    ("LH10", TrackingStatus.IN_TRANSIT),
    ("LM10", TrackingStatus.IN_TRANSIT),
    ("LM25", TrackingStatus.OUT_FOR_DELIVERY),
    ("LM30", TrackingStatus.OUT_FOR_DELIVERY),   # ready for pickup: the last step before the buyer
    ("lm40", TrackingStatus.DELIVERED),
    ("LM50", TrackingStatus.FAILED_ATTEMPT),
    ("LM90", TrackingStatus.RETURNED),
    ("SC20", TrackingStatus.PENDING),
    ("NOTFOUND", TrackingStatus.UNKNOWN),
])
def test_checkpoint_codes(code, status):
    assert mapping.checkpoint_status(code, "Parcel moved") is status


def test_customs_is_spotted_in_the_message_of_a_transit_code():
    assert mapping.checkpoint_status("IM10", "Import customs clearance completed") is TrackingStatus.CUSTOMS
    assert mapping.checkpoint_status("EX10", "出口报关完成") is TrackingStatus.CUSTOMS
    assert mapping.checkpoint_status("LM40", "Delivered after customs") is TrackingStatus.DELIVERED


@pytest.mark.parametrize(("zone", "hours"), [("+8", 8), ("-5", -5), ("+05:30", 5.5), ("+0530", 5.5),
                                             ("5.5", 5.5), ("UTC+8", 8), ("0", 0), ("GMT-3", -3)])
def test_time_zones(zone, hours):
    assert mapping.parse_zone(zone) == hours


def test_checkpoint_times_become_utc():
    assert mapping.parse_checkpoint_time("2026-03-02T10:00:00", "+8") == datetime(2026, 3, 2, 2, 0,
                                                                                  tzinfo=timezone.utc)
    assert mapping.parse_checkpoint_time("2026-03-02 10:00:00", "-5") == datetime(2026, 3, 2, 15, 0,
                                                                                  tzinfo=timezone.utc)
    assert mapping.parse_checkpoint_time("2026-03-02T10:00:00", "", 8) == datetime(2026, 3, 2, 2, 0,
                                                                                   tzinfo=timezone.utc)
    assert mapping.parse_checkpoint_time("2026-03-02T10:00:00.1234Z", "+8") == datetime(
        2026, 3, 2, 10, 0, 0, 123400, tzinfo=timezone.utc)
    for stamp, zone in (("yesterday", "+8"), ("2026-03-02T10:00:00", "+99"), ("", "+8")):
        with pytest.raises(ValueError):
            mapping.parse_checkpoint_time(stamp, zone)


def test_parse_tracking_sorts_events_and_takes_the_latest_status():
    number = "UG123456785YP"
    points = [  # newest first, destination events in the destination's zone
        checkpoint("2026-03-09T10:00:00", "LM40", "Delivered", "-5", "US"),
        checkpoint("2026-03-09T07:30:00", "LM25", "Out for delivery", "-5", "US"),
        checkpoint("2026-03-02T10:00:00", "PU10", "Received by Yanwen Shenzhen", "+8"),
    ]
    infos = mapping.parse_tracking(tracking_answer([tracking_result(number, points)]), [number])
    info = infos[number]
    assert info.status is TrackingStatus.DELIVERED
    assert [e.code for e in info.events] == ["PU10", "LM25", "LM40"]
    assert info.events[0].time == datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
    assert info.events[-1].time == datetime(2026, 3, 9, 15, 0, tzinfo=timezone.utc)
    assert info.events[0].location == "Shenzhen" and info.events[-1].description == "Delivered"


def test_parse_tracking_unknown_pending_and_missing_numbers():
    answer = tracking_answer([tracking_result("A1", [], status="NOTFOUND"), tracking_result("B2", []),
                              tracking_result("C3", [], status="LM25")])
    infos = mapping.parse_tracking(answer, ["A1", "B2", "C3", "D4"])
    assert infos["A1"].status is TrackingStatus.UNKNOWN and infos["A1"].events == ()
    assert infos["B2"].status is TrackingStatus.PENDING
    assert infos["C3"].status is TrackingStatus.OUT_FOR_DELIVERY
    assert infos["D4"].status is TrackingStatus.UNKNOWN  # not in the answer at all


def test_parse_tracking_matches_the_last_mile_number():
    entry = {**tracking_result("UG1", [checkpoint("2026-03-02T10:00:00", "PU10", "in")]),
             "tracking_number": "", "exchange_number": "9400100000000000000000"}
    infos = mapping.parse_tracking(tracking_answer([entry]), ["9400100000000000000000"])
    assert infos["9400100000000000000000"].status is TrackingStatus.ACCEPTED


@pytest.mark.parametrize(("answer", "error", "text"), [
    ("nope", TransientCarrierError, "not a JSON object"),
    ({"message": "x"}, TransientCarrierError, "field 'code' is missing"),
    ({"code": "zero"}, TransientCarrierError, "not a number"),
    ({"code": 0, "result": {}}, TransientCarrierError, "'result' should be a list"),
    ({"code": 1005, "message": "at most 30 numbers per request"}, PermanentCarrierError, "at most 30"),
    ({"code": 401, "message": "Unauthorized"}, PermanentCarrierError, "customer_number"),
])
def test_parse_tracking_errors(answer, error, text):
    with pytest.raises(error, match=text):
        mapping.parse_tracking(answer, ["A"])


@pytest.mark.parametrize("stamp", ["bad", "0001-01-01T00:00:00"])  # the second: before year 1 in UTC
def test_parse_tracking_fails_a_malformed_entry_alone(stamp):
    answer = tracking_answer([tracking_result("A", [checkpoint(stamp, "PU10", "in")]),
                              tracking_result("B", [checkpoint("2026-03-02T10:00:00", "PU10", "in")])])
    infos = mapping.parse_tracking(answer, ["A", "B"])
    assert r"result[0].checkpoints[0].time_stamp" in infos["A"].error and not infos["A"].events
    assert infos["B"].error == "" and infos["B"].status is TrackingStatus.ACCEPTED




@pytest.mark.parametrize("code", ["", "XX99", "ZZ"])
def test_a_checkpoint_whose_code_is_empty_or_unknown_is_no_scan(code):
    """docs/tracking.md: an event the plugin cannot classify is stored as unknown, never guessed in
    transit (a counted scan stops the void of a label: a guess would leave it paid, never refunded)."""
    assert mapping.checkpoint_status(code, "Parcel moved") is TrackingStatus.UNKNOWN
    # its words may still say what it is
    assert mapping.checkpoint_status(code, "Import customs clearance completed") is TrackingStatus.CUSTOMS


def test_an_unknown_checkpoint_is_kept_as_an_event_and_counts_no_scan():
    answer = {"code": 0, "message": "success", "result": [{
        "tracking_number": "UG000000001YW", "tracking_status": "", "checkpoints": [
            {"time_stamp": "2024-05-01T10:00:00", "time_zone": "+8", "tracking_status": "",
             "message": "Parcel moved", "location": "Shenzhen"}]}]}
    info = mapping.parse_tracking(answer, ["UG000000001YW"])["UG000000001YW"]
    assert [e.status for e in info.events] == [TrackingStatus.UNKNOWN]
    assert info.status is TrackingStatus.UNKNOWN
