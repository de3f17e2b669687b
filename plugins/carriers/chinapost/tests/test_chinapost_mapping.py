"""mapping.py: the digest, request building and answer parsing (pure, no HTTP)."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from chinapost_testkit import BUYER, make_request
from mfn_carrier_chinapost import mapping
from mfn_carrier_chinapost.settings import SCHEMA

from connector.kit import (
    DuplicateReferenceError,
    Money,
    PermanentCarrierError,
    TrackingStatus,
    TransientCarrierError,
)
from connector.kit.sandbox import make_label_pdf

NOW = datetime(2026, 3, 1, 2, 30, 0, tzinfo=timezone.utc)
DUP_WORDS = ("重复", "已存在", "duplicate", "already exist")

# -- the digest ------------------------------------------------------------------------------


def test_digest_is_base64_of_the_raw_md5_of_payload_plus_key():
    # Values checked with: printf '%s' '<payload><key>' | openssl md5 -binary | base64
    assert mapping.digest('{"logistics_order_no":"PKG-1"}', "sandbox-key") == "3pIRth05UOc2VkU/GADjTg=="
    assert mapping.digest("中文", "k") == "k+boHQhozZnYmTd9Exuxhw=="  # UTF-8 bytes are signed


def test_digest_hex_variant_encodes_the_hex_text():
    value = mapping.digest('{"logistics_order_no":"PKG-1"}', "sandbox-key", "hex")
    assert value == "ZGU5MjExYjYxZDM5NTBlNzM2NTY0NTNmMTgwMGUzNGU="
    assert len(value) == 44 and len(mapping.digest("x", "k")) == 24


def test_signed_json_is_compact_and_keeps_chinese():
    text = mapping.to_json({"a": "手机壳", "b": [1, 2]})
    assert text == '{"a":"手机壳","b":[1,2]}'


# -- create ----------------------------------------------------------------------------------


def _order(**kwargs):
    request = kwargs.pop("request", None) or make_request("PKG-1", **kwargs)
    return mapping.build_order(request, biz_product_no="001", sender_no="90000002449155", now=NOW,
                               mail_type="ERPX", wh_code="51800000")


def test_order_payload_carries_the_reference_and_the_documented_fields():
    order = _order()
    assert order["logistics_order_no"] == "PKG-1"
    assert order["created_time"] == "2026-03-01 10:30:00"  # China time
    assert (order["sender_no"], order["mailType"], order["wh_code"], order["biz_product_no"]) == (
        "90000002449155", "ERPX", "51800000", "001")
    assert order["weight"] == 250 and (order["length"], order["width"], order["height"]) == (21, 15, 3)
    assert order["contents_total_weight"] == 200 and order["contents_total_value"] == 9.0
    assert order["declare_curr_code"] == "USD" and order["battery_flag"] == "0"
    assert order["undelivery_option"] == 2 and order["mail_sign"] == "2"
    assert order["receiver"] == {
        "name": "Jane Q. Buyer", "company": "", "post_code": "98101", "phone": "+1 206 555 0142",
        "mobile": "+1 206 555 0142", "email": "jane.buyer@example.com", "nation": "US", "province": "WA",
        "city": "Seattle", "county": "", "address": "1200 Pine Street Apt 4B", "linker": "Jane Q. Buyer"}
    assert order["sender"]["nation"] == "CN" and order["sender"]["county"] == "Nanshan"
    assert order["items"] == [{
        "cargo_no": "CASE-BLK", "cargo_name": "手机壳", "cargo_name_en": "Phone case",
        "cargo_type_name": "手机壳", "cargo_type_name_en": "Phone case", "cargo_origin_name": "CN",
        "cargo_link": "", "cargo_quantity": 2, "cargo_value": 4.5, "cost": 4.5, "cargo_currency": "USD",
        "carogo_weight": 100, "cargo_description": "Phone case", "cargo_serial": "392690", "unit": "个"}]
    assert "s_tax_id" not in order and "prepayment_of_vat" not in order


def test_battery_and_ioss():
    order = _order(has_battery=True, ioss_number="IM2760000001")
    assert order["battery_flag"] == "1"
    assert order["s_tax_id"] == "IM2760000001" and order["prepayment_of_vat"] == "0"
    request = make_request(ioss_number="IM2760000001")
    other = mapping.build_order(request, biz_product_no="001", sender_no="S", now=NOW, ioss_field="tax_id")
    assert other["tax_id"] == "IM2760000001" and "s_tax_id" not in other
    none = mapping.build_order(request, biz_product_no="001", sender_no="S", now=NOW, ioss_field="none")
    assert "tax_id" not in none and "s_tax_id" not in none


def test_a_declaration_in_another_currency_is_refused_not_converted():
    with pytest.raises(PermanentCarrierError, match="CASE-BLK is in EUR.*USD"):
        _order(currency="EUR")


def test_create_form_signs_exactly_the_payload_sent():
    payload = mapping.to_json(_order())
    form = mapping.create_form(payload, key="k", ec_company_id="E1", biz_product_no="001")
    assert form == {"logistics_interface": payload, "data_digest": mapping.digest(payload, "k"),
                    "msg_type": "B2C_TRADE", "ecCompanyId": "E1", "data_type": "JSON",
                    "biz_product_no": "001"}


@pytest.mark.parametrize("answer", [
    {"success": "true", "waybillNo": "LX000000014CN", "reason": "", "msg": "成功"},
    {"success": True, "waybillNo": "LX000000014CN"},
    {"responseItems": {"response": [{"success": "true", "waybillNo": "LX000000014CN"}]}},  # XML-mode shape
])
def test_create_success(answer):
    assert mapping.parse_create(answer, "PKG-1") == "LX000000014CN"


@pytest.mark.parametrize(("answer", "field"), [
    ({"success": "true", "waybillNo": ""}, "waybillNo"),
    ({"success": "maybe", "waybillNo": "LX000000014CN"}, "success"),
    ({"waybillNo": "LX000000014CN"}, "success"),
    (["not", "an", "object"], "not a JSON object"),
])
def test_create_answers_that_do_not_say_what_happened_are_transient(answer, field):
    with pytest.raises(TransientCarrierError, match=field):
        mapping.parse_create(answer, "PKG-1")


def test_create_refusal_is_permanent_with_the_carriers_message_and_reason():
    answer = {"success": "false", "waybillNo": "", "reason": "B02", "msg": "receiver.address不能为空"}
    with pytest.raises(PermanentCarrierError, match="receiver.address不能为空") as caught:
        mapping.parse_create(answer, "PKG-1", duplicate_keywords=DUP_WORDS)
    assert caught.value.code == "B02" and not isinstance(caught.value, DuplicateReferenceError)


@pytest.mark.parametrize("msg", ["系统繁忙，请稍后再试", "System error, please try again later"])
def test_create_refused_for_china_posts_own_trouble_is_transient(msg):
    # Not an answer about the order, which may have been created: a permanent refusal would give
    # the reference up (the order is planned again under a new one) and could buy a second label.
    with pytest.raises(TransientCarrierError, match="may have taken effect"):
        mapping.parse_create({"success": "false", "reason": "S01", "msg": msg}, "PKG-1",
                             duplicate_keywords=DUP_WORDS)


@pytest.mark.parametrize("answer", [
    {"success": "false", "reason": "B03", "msg": "物流订单号重复"},
    {"success": "false", "reason": "B03", "msg": "logistics_order_no PKG-1 already exists"},
    {"success": "false", "reason": "E777", "msg": "失败"},  # by configured code
])
def test_duplicates(answer):
    with pytest.raises(DuplicateReferenceError, match="PKG-1"):
        mapping.parse_create(answer, "PKG-1", duplicate_keywords=DUP_WORDS, duplicate_codes=("E777",))


@pytest.mark.parametrize("msg", ["数据签名验证失败 / data_digest verification failed", "ecCompanyId不存在"])
def test_create_with_wrong_credentials_is_a_credentials_error(msg):
    with pytest.raises(PermanentCarrierError, match="rejected the credentials") as caught:
        mapping.parse_create({"success": "false", "reason": "S02", "msg": msg}, "PKG-1",
                             duplicate_keywords=DUP_WORDS)
    assert caught.value.code == "auth"


WRONG_TYPES = [[], ["LX000000014CN"], {"no": "LX000000014CN"}, 1.5, True]


@pytest.mark.parametrize("value", WRONG_TYPES)
def test_a_waybill_of_the_wrong_json_type_is_malformed_not_a_wrong_number(value):
    """A waybillNo that is a list, an object, a fraction or a boolean would become a wrong number as
    text ("[]", "True"): the answer is malformed (the label may exist), naming the field."""
    with pytest.raises(TransientCarrierError, match="field 'waybillNo' should be text") as caught:
        mapping.parse_create({"success": "true", "waybillNo": value}, "PKG-1")
    assert caught.value.code == "malformed"
    for key in ("waybillNo", "waybill_no"):
        answer = {"return_success": "true", "data": [{"logistics_order_no": "PKG-1", key: value}]}
        with pytest.raises(TransientCarrierError, match=rf"field 'data\[0\]\.{key}' should be text"):
            mapping.parse_query(answer, "PKG-1")


# -- lookup by reference -------------------------------------------------------------------------


def test_query_finds_the_live_order():
    answer = {"return_success": "true", "data": [
        {"logistics_order_no": "PKG-1", "waybillNo": "LX000000014CN", "biz_product_no": "001",
         "status": "cancelled"},
        {"logistics_order_no": "PKG-1", "waybillNo": "RR000000005CN", "biz_product_no": "002",
         "status": "accepted"}]}
    records = mapping.parse_query(answer, "PKG-1")
    assert [r.cancelled for r in records] == [True, False]
    shipment = mapping.live_shipment(records, "PKG-1", {"001": "EUB", "002": "REGISTERED"})
    assert (shipment.carrier_shipment_id, shipment.tracking_number, shipment.service) == (
        "RR000000005CN", "RR000000005CN", "REGISTERED")
    assert mapping.live_shipment(records[:1], "PKG-1", {}) is None


@pytest.mark.parametrize("answer", [
    {"return_success": "true", "data": []},
    {"return_success": "true", "data": None},
    {"return_success": "false", "return_msg": "订单不存在 / no order under this logistics_order_no"},
])
def test_query_without_an_order(answer):
    assert mapping.parse_query(answer, "PKG-1") == []


@pytest.mark.parametrize(("answer", "error", "match"), [
    ({"return_success": "true", "data": [{"logistics_order_no": "OTHER", "waybillNo": "LX000000014CN"}]},
     TransientCarrierError, "not the reference"),
    ({"return_success": "true", "data": [{"logistics_order_no": "PKG-1"}]},
     TransientCarrierError, "waybillNo"),
    ({"data": []}, TransientCarrierError, "return_success"),
    ({"return_success": "true", "data": "x"}, TransientCarrierError, "'data' should be a list"),
    ({"return_success": "false", "return_msg": "数据签名验证失败"}, PermanentCarrierError, "credentials"),
    ({"return_success": "false", "return_msg": "系统维护", "return_reason": "X1"},
     PermanentCarrierError, "系统维护"),
])
def test_query_problems(answer, error, match):
    with pytest.raises(error, match=match):
        mapping.parse_query(answer, "PKG-1")



@pytest.mark.parametrize("message", ["系统繁忙，请稍后再试", "System error, please try again later"])
def test_a_lookup_or_label_refused_for_china_posts_own_trouble_is_asked_again(message):
    """Busy or broken, China Post said nothing about the order: read as a refusal, the order was
    held for a person (label_uncertain after a lost answer, label_unavailable for its label)."""
    refused = {"return_success": "false", "return_msg": message, "return_reason": "S9"}
    with pytest.raises(TransientCarrierError, match="order query"):
        mapping.parse_query(refused, "PKG-1")
    with pytest.raises(TransientCarrierError, match="surface/download"):
        raise mapping.label_refusal({"msg": message, "err_code": "S9"}, "LX000000014CN")

@pytest.mark.parametrize(("message", "match"), [
    ("接口不存在", "order query for PKG-1 refused: 接口不存在"),  # no such interface (a wrong path)
    ("服务不存在 / service does not exist", "refused: 服务不存在"),
    ("ecCompanyId不存在", "rejected the credentials"),
])
def test_a_refused_query_is_never_no_order(message, match):
    """A refusal with "不存在" about something else than the order: the query did not look. Read
    as "no order", it would make the engine buy a second label after a create that lost its answer."""
    with pytest.raises(PermanentCarrierError, match=match):
        mapping.parse_query({"return_success": "false", "return_msg": message, "return_reason": "S01"},
                            "PKG-1")


# -- cancel, fees, label --------------------------------------------------------------------------


def test_cancel_form_and_answers():
    form = mapping.cancel_form("LX000000014CN", sender_no="S1", key="k")
    assert form == {"waybillNo": "LX000000014CN", "senderNo": "S1",
                    "digest": mapping.digest("LX000000014CN", "k")}
    assert mapping.parse_cancel({"flag": True, "message": "撤单成功"}, "LX000000014CN") is True
    assert mapping.parse_cancel({"flag": "true"}, "LX000000014CN") is True
    with pytest.raises(PermanentCarrierError, match="邮件已收寄，不能撤单") as caught:
        mapping.parse_cancel({"flag": False, "message": "邮件已收寄，不能撤单"}, "LX000000014CN")
    assert caught.value.code == "cancel_refused"
    with pytest.raises(PermanentCarrierError, match="credentials"):
        mapping.parse_cancel({"flag": False, "message": "签名验证失败"}, "LX000000014CN")
    with pytest.raises(TransientCarrierError, match="'flag' is missing"):
        mapping.parse_cancel({"message": "ok"}, "LX000000014CN")


def test_a_waybill_cancelled_before_is_cancelled_not_refused():
    """A second cancel (after a crash, or after a person cancelled it in the portal) is done."""
    answer = {"flag": False, "message": "邮件已撤单 / already cancelled"}
    words = SCHEMA["properties"]["already_cancelled_keywords"]["default"]
    assert mapping.parse_cancel(answer, "LX000000014CN", already_cancelled=words) is True
    with pytest.raises(PermanentCarrierError, match="already cancelled"):  # words configured away
        mapping.parse_cancel(answer, "LX000000014CN")
    # the words count only in a refusal of the waybill itself, never in a credentials failure
    with pytest.raises(PermanentCarrierError, match="credentials"):
        mapping.parse_cancel({"flag": False, "message": "签名验证失败，邮件已撤单?"}, "LX000000014CN",
                             already_cancelled=words)
    with pytest.raises(TransientCarrierError, match="系统异常"):  # China Post's own trouble
        mapping.parse_cancel({"flag": False, "message": "系统异常，请稍后重试(已撤单?)"}, "LX000000014CN",
                             already_cancelled=words)
    with pytest.raises(PermanentCarrierError, match="revoked"):  # 已撤销 also means "revoked"
        mapping.parse_cancel({"flag": False, "message": "接口已撤销 / interface revoked"}, "LX000000014CN",
                             already_cancelled=words)



@pytest.mark.parametrize("message", ["系统繁忙，请稍后再试", "System error, please try again later"])
def test_a_cancel_refused_for_china_posts_own_trouble_is_asked_again(message):
    """Busy or broken, China Post said nothing about the waybill: read as a refusal, the order was
    held void_refused ("the parcel may be on its way") and the label, still live, stayed paid for."""
    with pytest.raises(TransientCarrierError, match="cancelOrder") as caught:
        mapping.parse_cancel({"flag": False, "message": message}, "LX000000014CN")
    assert "LX000000014CN" in str(caught.value)

def test_fee_lookup():
    form = mapping.fee_form(["A", "B"], key="k", ec_company_id="E1")
    assert form == {"waybillNos": "A,B", "dataDigest": mapping.digest("A,B", "k"), "ecCompanyId": "E1"}
    fees = mapping.parse_fees({"return_success": "true", "data": [
        {"waybillNo": "LX000000014CN", "weight": 262, "postage_total": "45.15", "postage_currency": "RMB"}]})
    assert fees["LX000000014CN"].postage == Money("45.15", "CNY") and fees["LX000000014CN"].weight_g == 262
    not_yet = {"return_success": "false", "return_msg": "邮件未收寄 / not yet accepted"}
    assert mapping.parse_fees(not_yet) == {}
    with pytest.raises(TransientCarrierError, match="postage_total"):
        mapping.parse_fees({"return_success": "true", "data": [{"waybillNo": "X", "postage_total": "abc"}]})
    with pytest.raises(PermanentCarrierError, match="busy"):
        mapping.parse_fees({"return_success": "false", "return_msg": "busy", "return_reason": "Z"})


def test_label_form_and_version_2_answers():
    form = mapping.label_form(["LX000000014CN"], key="k", ec_company_id="E1", version="2.0")
    assert form == {"ecCompanyId": "E1", "dataDigest": mapping.digest("LX000000014CN", "k"),
                    "barCode": "LX000000014CN", "version": "2.0"}
    pdf = make_label_pdf(["China Post", "LX000000014CN"])
    assert mapping.parse_label_v2({"success": True, "data": pdf.hex(), "digest": "x"}, "LX") == pdf
    with pytest.raises(TransientCarrierError, match="neither hex nor base64"):
        mapping.parse_label_v2({"success": True, "data": "zz-not-hex"}, "LX")
    with pytest.raises(TransientCarrierError, match="not a complete PDF"):
        mapping.parse_label_v2({"success": True, "data": pdf[:40].hex()}, "LX")
    with pytest.raises(PermanentCarrierError, match="面单不存在") as caught:
        mapping.parse_label_v2({"success": False, "err_code": "L01", "msg": "面单不存在"}, "LX")
    assert caught.value.code == "L01"
    assert "credentials" in str(mapping.label_refusal({"success": False, "msg": "dataDigest error"}, "LX"))


# -- tracking -------------------------------------------------------------------------------------

XML = """<?xml version="1.0" encoding="UTF-8"?>
<response>
  <trace><acceptTime>2026-03-02 09:00:00</acceptTime><acceptAddress>深圳</acceptAddress>
         <remark>深圳国际小包揽收部已收寄</remark></trace>
  <trace><acceptTime>2026-03-01 08:00:00</acceptTime><acceptAddress>深圳</acceptAddress>
         <remark>收到电子信息</remark></trace>
  <trace><acceptTime>2026-03-03 20:15:00</acceptTime><acceptAddress>SHENZHEN</acceptAddress>
         <remark>Departure from outward office of exchange</remark></trace>
</response>"""


def test_xml_tracking_is_parsed_sorted_and_classified():
    info = mapping.parse_tracking(XML.encode("utf-8"), "LX000000014CN")
    assert info.status is TrackingStatus.IN_TRANSIT
    assert [e.status for e in info.events] == [TrackingStatus.PENDING, TrackingStatus.ACCEPTED,
                                               TrackingStatus.IN_TRANSIT]
    assert info.events[0].time == datetime(2026, 3, 1, 0, 0, tzinfo=timezone.utc)  # 08:00 in China
    assert info.events[1].location == "深圳" and info.events[1].description == "深圳国际小包揽收部已收寄"


def test_json_tracking_and_zone_setting():
    body = json.dumps({"trace": [{"acceptTime": "2026-03-05 10:00:00", "acceptAddress": "US",
                                  "remark": "Delivered"}]}).encode()
    info = mapping.parse_tracking(body, "LX000000014CN", utc_offset_hours=0)
    assert info.status is TrackingStatus.DELIVERED
    assert info.events[0].time == datetime(2026, 3, 5, 10, 0, tzinfo=timezone.utc)
    single = json.dumps({"traces": {"acceptTime": "1772589600000", "remark": "Posting"}}).encode()
    when = mapping.parse_tracking(single, "X").events[0].time
    assert when == datetime(2026, 3, 4, 2, 0, tzinfo=timezone.utc)  # epoch milliseconds


@pytest.mark.parametrize("encoding", ["GBK", "GB18030", "gb2312"])
def test_xml_tracking_in_a_declared_chinese_encoding_is_read(encoding):
    # expat reads no multi-byte encoding but UTF-8/16: such an answer used to raise a bare ValueError
    body = XML.replace('encoding="UTF-8"', f'encoding="{encoding}"').encode(encoding)
    info = mapping.parse_tracking(body, "LX000000014CN")
    assert info.status is TrackingStatus.IN_TRANSIT
    assert info.events[1].description == "深圳国际小包揽收部已收寄"


def test_xml_tracking_not_in_its_declared_encoding_is_a_named_malformed_answer():
    body = XML.replace('encoding="UTF-8"', 'encoding="GBK"').encode("utf-8")[:-40] + b"\x81"
    with pytest.raises(TransientCarrierError, match="not valid GBK"):
        mapping.parse_tracking(body, "LX000000014CN")


@pytest.mark.parametrize("body", [
    b"\xef\xbb\xbf" + XML.encode("utf-8"),
    b"\xef\xbb\xbf" + json.dumps({"trace": [{"acceptTime": "2026-03-03 20:15:00",
                                             "remark": "Departure from outward office"}]}).encode(),
])
def test_tracking_after_a_utf8_byte_order_mark_is_read(body):
    assert mapping.parse_tracking(body, "LX000000014CN").status is TrackingStatus.IN_TRANSIT


@pytest.mark.parametrize("body", [
    b"<!DOCTYPE html><html><head><title>EMS</title></head><body><p>Welcome</p></body></html>",
    b'<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Login</h1></body></html>',
])
def test_an_html_page_is_a_malformed_answer_not_an_unknown_number(body):
    with pytest.raises(TransientCarrierError, match="HTML page"):
        mapping.parse_tracking(body, "LX000000014CN")


@pytest.mark.parametrize("body", [
    b"<response><code>B404</code><description>\xe6\x9c\xaa\xe6\x9f\xa5\xe8\xaf\xa2\xe5\x88\xb0 no information"
    b"</description></response>",
    b'{"code": "B404", "description": "no information found for this mail number"}',
    b"<response></response>",
])
def test_unknown_numbers_have_no_events(body):
    info = mapping.parse_tracking(body, "LX000000014CN")
    assert info.status is TrackingStatus.UNKNOWN and info.events == ()


@pytest.mark.parametrize(("body", "error", "match"), [
    (b"<response><code>S04</code><description>authenticate invalid</description></response>",
     PermanentCarrierError, "credentials"),
    (b'{"code": "S09", "description": "system busy"}', TransientCarrierError, "system busy"),
    (b"<response><trace>", TransientCarrierError, "not valid XML"),
    (b'{"trace": [{"acceptTime": "2026-03-01 08:00:00"', TransientCarrierError, "not valid JSON"),
    (b"Service Unavailable", TransientCarrierError, "neither XML nor JSON"),
])
def test_tracking_problems(body, error, match):
    with pytest.raises(error, match=match):
        mapping.parse_tracking(body, "LX000000014CN")


@pytest.mark.parametrize("stamp", ["yesterday", "0001-01-01 00:00:00"])  # the second: before year 1 in UTC
def test_a_bad_trace_time_fails_the_number_named_with_the_field(stamp):
    body = f"<response><trace><acceptTime>{stamp}</acceptTime><remark>x</remark></trace></response>"
    info = mapping.parse_tracking(body.encode(), "LX000000014CN")
    assert info.status is TrackingStatus.UNKNOWN and info.events == ()
    assert "trace[0].acceptTime" in info.error and stamp in info.error


def test_missing_receiver_fields_are_sent_empty_for_the_carrier_to_name():
    order = _order(request=make_request(ship_to=replace(BUYER, line1="", line2="", city="")))
    assert order["receiver"]["address"] == "" and order["receiver"]["city"] == ""
