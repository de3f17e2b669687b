"""mapping.py: request bodies, and the captured YunExpress answers parsed into model objects."""
from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from mfn_carrier_yunexpress import mapping
from mfn_carrier_yunexpress.settings import SCHEMA, SERVICES
from yunexpress_testkit import BUYER, load_fixture, make_request

from connector.kit import (
    DuplicateReferenceError,
    Money,
    PermanentCarrierError,
    TrackingStatus,
    TransientCarrierError,
)

# -- request building ------------------------------------------------------------------------


def test_authorization_header_joins_code_and_secret_with_an_ampersand():
    header = mapping.authorization_header("C12345", "abc=")
    assert header == "Basic " + base64.b64encode(b"C12345&abc=").decode()


def test_create_order_body_is_an_array_with_one_order():
    body = mapping.build_create_order(make_request("PKG-1", ioss_number="IM2760000001"))
    assert isinstance(body, list) and len(body) == 1
    order = body[0]
    assert order["CustomerOrderNumber"] == "PKG-1"
    assert order["ShippingMethodCode"] == "AYPZXR"
    assert order["TransactionNumber"] == "111-0000001-0000001"
    assert order["PackageCount"] == 1
    assert order["Weight"] == 0.25
    assert (order["Length"], order["Width"], order["Height"]) == (21, 15, 3)  # whole cm, rounded up
    assert order["ApplicationType"] == 4
    assert order["IossCode"] == "IM2760000001"
    assert order["Receiver"] == {
        "CountryCode": "US", "FirstName": "Jane Q. Buyer", "Street": "1200 Pine Street", "City": "Seattle",
        "StreetAddress1": "Apt 4B", "State": "WA", "Zip": "98101", "Phone": "+1 206 555 0142",
        "Email": "jane.buyer@example.com",
    }
    assert "LastName" not in order["Receiver"]
    assert order["Sender"]["CountryCode"] == "CN"
    assert order["Sender"]["Street"] == "8 Keji South Road Nanshan"
    assert order["Sender"]["Company"] == "Shenzhen Demo Trading Co., Ltd."
    assert order["Parcels"] == [{
        "EName": "Phone case", "CName": "手机壳", "HSCode": "392690", "Quantity": 2, "UnitPrice": 4.5,
        "UnitWeight": 0.1, "CurrencyCode": "USD", "SKU": "CASE-BLK",
    }]


def test_create_order_leaves_out_ioss_when_there_is_none_but_keeps_required_receiver_fields():
    request = make_request(ship_to=replace(BUYER, city="", line2="", phone=""))
    order = mapping.build_create_order(request)[0]
    assert "IossCode" not in order
    assert order["Receiver"]["City"] == ""  # sent empty: the carrier names the missing field
    assert "StreetAddress1" not in order["Receiver"] and "Phone" not in order["Receiver"]


@pytest.mark.parametrize(("grams", "kg"), [(1, 0.001), (250, 0.25), (1234, 1.234), (20000, 20.0)])
def test_weights_are_kilograms_with_three_decimals(grams, kg):
    assert mapping.kilograms(grams) == kg


def test_price_trial_parameters():
    params = mapping.build_price_trial_params(make_request(has_battery=True), origin="YT-SZ")
    assert params == {"CountryCode": "US", "Weight": "0.250", "Length": "21", "Width": "15", "Height": "3",
                      "PackageType": "1", "Origin": "YT-SZ"}
    other = mapping.build_price_trial_params(make_request(), package_type_param="packageType")
    assert other["packageType"] == "0" and "Origin" not in other


def test_label_and_delete_bodies():
    assert mapping.build_label_request(["YT1"]) == ["YT1"]
    assert mapping.build_label_request(["YT1"], "object") == {"OrderNumbers": ["YT1"]}
    assert mapping.build_delete_request("YT2222222222222222") == {"OrderType": 1,
                                                                 "OrderNumber": "YT2222222222222222"}


# -- CreateOrder -----------------------------------------------------------------------------


def test_captured_create_order_with_late_tracking_number():
    shipment = mapping.parse_create_order(load_fixture("create_order"), make_request("2022021008567562"))
    assert shipment.carrier == "yunexpress"
    assert shipment.reference == "2022021008567562"
    assert shipment.carrier_shipment_id == "YT2222222222222222"
    assert shipment.tracking_number is None  # TrackType "2": assigned later
    assert shipment.service == "AYPZXR" and shipment.status == "created"


@pytest.mark.parametrize(("track_type", "number", "expected"), [
    ("1", "YT1111111111111111", "YT1111111111111111"),
    ("2", "YT1111111111111111", None),
    ("3", None, "YT2222222222222222"),  # no tracking number needed: the waybill is what is tracked
    (None, "LX123456789CN", "LX123456789CN"),
])
def test_create_order_track_types(track_type, number, expected):
    data = load_fixture("create_order")
    data["Item"][0].update(TrackType=track_type, TrackingNumber=number)
    shipment = mapping.parse_create_order(data, make_request("2022021008567562"))
    assert shipment.tracking_number == expected


def test_create_order_can_use_the_waybill_as_tracking_number():
    shipment = mapping.parse_create_order(load_fixture("create_order"), make_request("2022021008567562"),
                                          use_waybill_as_tracking=True)
    assert shipment.tracking_number == "YT2222222222222222"


def test_create_order_undocumented_track_type_is_transient_and_named():
    data = load_fixture("create_order")
    data["Item"][0]["TrackType"] = "9"
    with pytest.raises(TransientCarrierError, match="TrackType"):
        mapping.parse_create_order(data, make_request("2022021008567562"))


def test_create_order_refusal_carries_the_remark():
    data = load_fixture("create_order")
    remark = "收件人城市不能为空 Receiver.City is required"
    data["Item"][0].update(Success=0, Remark=remark, WayBillNumber=None)
    with pytest.raises(PermanentCarrierError, match="Receiver.City is required") as caught:
        mapping.parse_create_order(data, make_request("2022021008567562"))
    assert not isinstance(caught.value, DuplicateReferenceError)


@pytest.mark.parametrize(("code", "message", "remark"), [
    ("9999", "系统异常，请稍后重试", None),  # the whole call refused in the words of its own trouble
    ("0000", "提交成功!", "System busy, please try again later"),  # the order's entry says so
])
def test_create_order_refused_for_yunexpress_own_trouble_is_transient(code, message, remark):
    # Not an answer about the order, which may have been created: a permanent refusal would give
    # the reference up (the order is planned again under a new one) and could buy a second label.
    data = load_fixture("create_order")
    data.update(Code=code, Message=message)
    data["Item"][0].update(Success=0, Remark=remark, WayBillNumber=None)
    with pytest.raises(TransientCarrierError, match="may have taken effect"):
        mapping.parse_create_order(data, make_request("2022021008567562"))


@pytest.mark.parametrize("remark", ["客户订单号重复", "CustomerOrderNumber already exists",
                                    "repeat order number"])
def test_duplicate_remark_is_a_duplicate(remark):
    data = load_fixture("create_order")
    data["Item"][0].update(Success=0, Remark=remark)
    with pytest.raises(DuplicateReferenceError):
        mapping.parse_create_order(data, make_request("2022021008567562"))


def test_code_1001_is_a_duplicate_with_the_code():
    data = load_fixture("create_order")
    data.update(Code="1001", Message="订单号重复")
    data["Item"][0].update(Success=0, Remark="")
    with pytest.raises(DuplicateReferenceError) as caught:
        mapping.parse_create_order(data, make_request("2022021008567562"))
    assert caught.value.code == "1001"


def test_does_not_exist_is_not_a_duplicate():
    data = load_fixture("create_order")
    data["Item"][0].update(Success=0, Remark="ShippingMethodCode XYZ does not exist")
    with pytest.raises(PermanentCarrierError) as caught:
        mapping.parse_create_order(data, make_request("2022021008567562"))
    assert not isinstance(caught.value, DuplicateReferenceError)


def test_json_auth_failure_is_a_credentials_error_not_a_duplicate():
    data = {"Code": "1001", "Message": "Unauthorized: invalid CustomerCode or ApiSecret", "Item": None}
    with pytest.raises(PermanentCarrierError, match="rejected the credentials") as caught:
        mapping.parse_create_order(data, make_request())
    assert not isinstance(caught.value, DuplicateReferenceError)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.pop("Code"), "Code"),
    (lambda d: d.update(Item={"not": "a list"}), "Item"),
    (lambda d: d.update(Item=[]), "Item"),
    (lambda d: d["Item"][0].update(WayBillNumber=""), "WayBillNumber"),
    (lambda d: d["Item"][0].update(Success="maybe"), "Success"),
    # neither 1 (created) nor 0 (refused): the outcome is unknown, never a refusal
    (lambda d: d["Item"][0].update(Success=2, WayBillNumber=None), r"Success.*not 0/1"),
    (lambda d: d["Item"][0].update(Success=-1, WayBillNumber=None), r"Success.*not 0/1"),
    (lambda d: d["Item"][0].update(CustomerOrderNumber="SOMEONE-ELSE"), "Item"),
])
def test_malformed_create_answers_are_transient_and_name_the_field(mutate, field):
    data = load_fixture("create_order")
    mutate(data)
    with pytest.raises(TransientCarrierError, match=field):
        mapping.parse_create_order(data, make_request("2022021008567562"))


@pytest.mark.parametrize("data", [None, [], "0000", 42])
def test_non_object_answers_are_transient(data):
    with pytest.raises(TransientCarrierError, match="not a JSON object"):
        mapping.parse_create_order(data, make_request())


# -- GetTrackingNumber and GetOrder ----------------------------------------------------------


def test_captured_tracking_number_still_generating():
    data = load_fixture("get_tracking_number")
    assert mapping.parse_tracking_number(data, "qvvrxxxxx-xxx-xxxxxxx-xxxxxxx") is None
    assert mapping.parse_tracking_number(data, "qvvrxxxxx-xxx-xxxxxxx-xxxxxxx",
                                         use_waybill_as_tracking=True) == "YT2222222222222222"


def test_tracking_number_statuses():
    data = load_fixture("get_tracking_number")
    entry = data["Items"][1]
    ref = entry["CustomerOrderNumber"]
    entry.update(Status=1, TrackingNumber="YT9999999999999999")
    assert mapping.parse_tracking_number(data, ref) == "YT9999999999999999"
    entry.update(Status=3, TrackingNumber=None)
    assert mapping.parse_tracking_number(data, ref) == "YT2222222222222222"
    entry.update(Status=4, Remark="no capacity")
    with pytest.raises(PermanentCarrierError, match="no capacity"):
        mapping.parse_tracking_number(data, ref)
    entry.update(Status=1, TrackingNumber=None)
    with pytest.raises(TransientCarrierError, match="TrackingNumber"):
        mapping.parse_tracking_number(data, ref)
    with pytest.raises(TransientCarrierError, match="no entry"):
        mapping.parse_tracking_number(data, "UNKNOWN-REF")


def test_captured_get_order():
    lookup = mapping.parse_get_order(load_fixture("get_order"), "2222222222222222")
    assert lookup == mapping.OrderLookup(waybill="YT2222222222222222", order_number="2222222222222222",
                                         service="BKPHR", tracking_number="D1234567", status=6)
    shipment = mapping.shipment_from_lookup(lookup, "2222222222222222", lookup.tracking_number)
    assert (shipment.carrier_shipment_id, shipment.tracking_number, shipment.service) == (
        "YT2222222222222222", "D1234567", "BKPHR")


def test_get_order_not_found_and_mismatch():
    assert mapping.parse_get_order({"Code": "0000", "Message": "ok", "Item": None}, "R1") is None
    assert mapping.parse_get_order({"Code": "1011", "Message": "订单不存在"}, "R1") is None
    for refusal in ("接口不存在", "customer does not exist", "不存在"):  # the lookup did not look
        with pytest.raises(PermanentCarrierError, match=refusal):
            mapping.parse_get_order({"Code": "1011", "Message": refusal}, "R1")
    with pytest.raises(TransientCarrierError, match="busy"):  # YunExpress's own trouble: ask again
        mapping.parse_get_order({"Code": "5000", "Message": "system busy"}, "R1")
    with pytest.raises(TransientCarrierError, match="OrderNumber"):
        mapping.parse_get_order(load_fixture("get_order"), "ANOTHER-REF")
    two = load_fixture("get_order")
    two["Item"] = [two["Item"], {**two["Item"], "OrderNumber": "3333333333333333"}]
    assert mapping.parse_get_order(two, "3333333333333333").order_number == "3333333333333333"
    with pytest.raises(TransientCarrierError, match="none under"):
        mapping.parse_get_order(two, "ANOTHER-REF")  # never "no such order" on a list of others
    data = load_fixture("get_order")
    data["Item"]["WayBillNumber"] = None
    with pytest.raises(TransientCarrierError, match="WayBillNumber"):
        mapping.parse_get_order(data, "2222222222222222")



@pytest.mark.parametrize("message", ["系统繁忙，请稍后再试", "System error, please try again later"])
def test_lookup_number_and_label_calls_refused_for_yunexpress_own_trouble_are_asked_again(message):
    """Busy or broken, YunExpress said nothing about the order: read as a refusal, the order was held
    for a person (label_uncertain after a lost answer; label_unavailable while its late tracking
    number or its label was fetched) instead of being asked again."""
    busy = {"Code": "5000", "Message": message}
    for parse in (lambda: mapping.parse_get_order(busy, "R1"),
                  lambda: mapping.parse_tracking_number(busy, "R1"),
                  lambda: mapping.parse_label_print(busy)):
        with pytest.raises(TransientCarrierError, match="Code 5000"):
            parse()

@pytest.mark.parametrize("item", [[None], ["YT2222222222222222"]])
def test_get_order_listing_something_that_is_no_order_is_malformed_not_none(item):
    """A list with one entry says there is an order: an entry that is no object is a malformed
    answer, never "no such order" (on ``None`` the engine buys a second label)."""
    data = load_fixture("get_order")
    data["Item"] = item
    with pytest.raises(TransientCarrierError, match="field 'Item"):
        mapping.parse_get_order(data, "2222222222222222")


@pytest.mark.parametrize("value", [["YT2222222222222222"], {"Number": "YT2222222222222222"}, 2.2e17, True])
@pytest.mark.parametrize("key", ["WayBillNumber", "TrackingNumber"])
def test_a_number_of_the_wrong_json_type_is_malformed_not_a_wrong_number(key, value):
    """A waybill or tracking number that is a list, an object, a fraction or a boolean would become
    a wrong number as text ("['YT…']", "2.2e+17"): the answer is malformed, naming the field."""
    reference = "2022021008567562"
    created = load_fixture("create_order")
    created["Item"][0].update(TrackType="1", **{key: value})
    order = load_fixture("get_order")
    order["Item"][key] = value
    numbers = load_fixture("get_tracking_number")
    numbers["Items"][0].update({"CustomerOrderNumber": reference, "Status": 1, "TrackingNumber": "D1234567",
                                key: value})
    for parse, field in ((lambda: mapping.parse_create_order(created, make_request(reference)), "Item[]"),
                         (lambda: mapping.parse_get_order(order, "2222222222222222"), "Item"),
                         (lambda: mapping.parse_tracking_number(numbers, reference), "Items[]")):
        with pytest.raises(TransientCarrierError, match=re.escape(f"field '{field}.{key}'")):
            parse()


def test_numbers_given_as_json_integers_are_read_as_text():
    data = load_fixture("create_order")
    data["Item"][0].update(TrackType="1", TrackingNumber=9400111899223344556677)
    shipment = mapping.parse_create_order(data, make_request("2022021008567562"))
    assert shipment.tracking_number == "9400111899223344556677"


# -- Label/Print and WayBill/Delete ----------------------------------------------------------


def test_captured_label_print():
    url = mapping.parse_label_print(load_fixture("label_print"))
    assert url == "http://f0.yunexpress.com:81/PDF/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.pdf"


def test_label_without_print_template_is_permanent():
    data = load_fixture("label_print")
    data["Item"][0]["OrderInfos"][0].update(Code=200, Error="")
    with pytest.raises(PermanentCarrierError, match="no print template") as caught:
        mapping.parse_label_print(data)
    assert caught.value.code == "200"


def test_label_without_url_is_transient():
    data = load_fixture("label_print")
    data["Item"][0]["Url"] = ""
    with pytest.raises(TransientCarrierError, match=r"Item\[0\]\.Url"):
        mapping.parse_label_print(data)


def test_captured_delete_succeeds():
    assert mapping.parse_delete(load_fixture("delete")) is True
    data = load_fixture("delete")
    data["Item"].update(Status="Success", Remark="")
    assert mapping.parse_delete(data) is True


def test_delete_refusal_and_undocumented_status():
    data = load_fixture("delete")
    data["Item"].update(Status="Failure", Remark="包裹已收货，不能删除")
    with pytest.raises(PermanentCarrierError, match="不能删除"):
        mapping.parse_delete(data)
    data["Item"].update(Status="7777", Remark="")
    with pytest.raises(TransientCarrierError, match="Status"):
        mapping.parse_delete(data)



@pytest.mark.parametrize(("code", "message", "status", "remark"), [
    ("9999", "系统繁忙，请稍后再试", None, None),  # the whole call refused in the words of its trouble
    ("0000", "提交成功!", "Failure", "系统异常，请稍后重试"),  # the waybill's entry says so
    ("0000", "提交成功!", "Failure", "System busy, please try again later"),
])
def test_a_delete_refused_for_yunexpress_own_trouble_is_asked_again(code, message, status, remark):
    """Busy or broken, YunExpress said nothing about the waybill: read as a refusal, the order was
    held void_refused ("the parcel may be on its way") and the label, still live, stayed paid for."""
    data = load_fixture("delete")
    data.update(Code=code, Message=message)
    if status:
        data["Item"].update(Status=status, Remark=remark)
    else:
        data["Item"] = None
    words = SCHEMA["properties"]["already_cancelled_keywords"]["default"]
    with pytest.raises(TransientCarrierError, match="WayBill/Delete"):
        mapping.parse_delete(data, already_deleted=words)

def test_a_waybill_deleted_before_is_deleted_not_refused():
    """A second delete (after a crash, or after a person deleted it in the portal) is done."""
    data = load_fixture("delete")
    data["Item"].update(Status="Failure", Remark="订单已删除 / order already deleted")
    words = SCHEMA["properties"]["already_cancelled_keywords"]["default"]
    assert mapping.parse_delete(data, already_deleted=words) is True
    with pytest.raises(PermanentCarrierError, match="already deleted"):  # words configured away
        mapping.parse_delete(data)
    # "does not exist" is also the answer for a number YunExpress does not know (yet): a refusal
    data["Item"].update(Status="Failure", Remark="订单不存在 / order does not exist")
    with pytest.raises(PermanentCarrierError, match="does not exist") as caught:
        mapping.parse_delete(data, already_deleted=words)
    assert caught.value.code == mapping.NOT_FOUND_CODE  # the client then asks the order's tracking state


def test_package_state_only_for_the_waybill_asked_about():
    """The delete's "does not exist" is read as "deleted" only on PackageState 5 of that waybill."""
    data = load_fixture("get_track_info")
    number = data["Item"]["WaybillNumber"]
    assert mapping.package_state(data, number) == 1
    assert mapping.package_state(data, number.lower() + " ") == 1
    assert mapping.package_state(data, "YT9999999999999999") is None  # an answer about another waybill
    data["Item"].pop("PackageState")
    assert mapping.package_state(data, number) is None
    assert mapping.package_state({"Code": "1011", "Message": "no tracking", "Item": None}, number) is None


# -- Tracking --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["get_track_info", "get_track_all_info"])
def test_captured_track_info(name):
    info = mapping.parse_track_info(load_fixture(name), "YT2222222222222222")
    assert info.tracking_number == "YT2222222222222222"
    assert info.status is TrackingStatus.PENDING  # PackageState 1: submitted
    assert len(info.events) == 1
    event = info.events[0]
    assert event.time == datetime(2021, 12, 28, 15, 38, 38, tzinfo=timezone.utc)  # 23:38:38 at UTC+8
    assert event.description == "xxxxxxx xxxxxxx xxxxxxx"
    assert event.code == "10"
    assert event.status is TrackingStatus.UNKNOWN  # words no rule knows: no scan (the engine counts scans)


@pytest.mark.parametrize("state", [0, 1])
def test_no_event_is_a_scan_while_the_package_state_says_not_scanned(state):
    """PackageState 0 (unknown) or 1 (submitted): YunExpress has no scan of the parcel, so no event
    may count as one, whatever its words (a counted scan stops the void of a cancelled order's label)."""
    data = load_fixture("get_track_info")
    data["Item"].update(PackageState=state, OrderTrackingDetails=[
        {"ProcessDate": "2024-03-01T10:00:00", "ProcessContent": "Shipment information received"},
        {"ProcessDate": "2024-03-01T11:00:00", "ProcessContent": "Parcel received at YunExpress warehouse"},
        {"ProcessDate": "2024-03-01T12:00:00", "ProcessContent": "Departed from origin country (CN)"},
    ])
    info = mapping.parse_track_info(data, "N")
    assert [e.status for e in info.events] == [TrackingStatus.PENDING, TrackingStatus.UNKNOWN,
                                               TrackingStatus.UNKNOWN]
    assert info.events[1].description == "Parcel received at YunExpress warehouse"  # the words are kept
    data["Item"]["PackageState"] = 4  # received: the same events are scans
    assert [e.status for e in mapping.parse_track_info(data, "N").events] == [
        TrackingStatus.PENDING, TrackingStatus.ACCEPTED, TrackingStatus.IN_TRANSIT]


@pytest.mark.parametrize(("state", "status"), [
    (0, TrackingStatus.UNKNOWN), (1, TrackingStatus.PENDING), (2, TrackingStatus.IN_TRANSIT),
    (3, TrackingStatus.DELIVERED), (4, TrackingStatus.ACCEPTED), (5, TrackingStatus.CANCELLED),
    (6, TrackingStatus.FAILED_ATTEMPT), (7, TrackingStatus.RETURNED),
])
def test_package_states(state, status):
    data = load_fixture("get_track_info")
    data["Item"].update(PackageState=state, OrderTrackingDetails=[])
    assert mapping.parse_track_info(data, "N").status is status


def test_events_are_sorted_and_refine_an_in_transit_state():
    data = load_fixture("get_track_info")
    data["Item"].update(PackageState=2, OrderTrackingDetails=[
        {"ProcessDate": "2024-03-05T09:00:00", "ProcessContent": "Out for delivery", "ProcessCity": "Seattle",
         "ProcessCountry": "US"},
        {"ProcessDate": "2024-03-01 10:00:00", "ProcessContent": "Parcel received at YunExpress warehouse"},
        {"ProcessDate": "2024-03-04T08:30:00.1234567", "ProcessContent": "清关完成 Customs cleared"},
    ])
    info = mapping.parse_track_info(data, "N", utc_offset_hours=0)
    assert [e.status for e in info.events] == [TrackingStatus.ACCEPTED, TrackingStatus.CUSTOMS,
                                               TrackingStatus.OUT_FOR_DELIVERY]
    assert info.events[0].time == datetime(2024, 3, 1, 10, tzinfo=timezone.utc)
    assert info.events[-1].location == "Seattle, US"
    assert info.status is TrackingStatus.OUT_FOR_DELIVERY


def test_unknown_number_and_unknown_state():
    assert mapping.parse_track_info({"Code": "1011", "Message": "no track", "Item": None}, "N").status \
        is TrackingStatus.UNKNOWN
    data = load_fixture("get_track_info")
    data["Item"]["PackageState"] = 42  # schema drift: keep the events, status from the last event
    info = mapping.parse_track_info(data, "N")
    assert len(info.events) == 1 and info.status is TrackingStatus.UNKNOWN  # its words say nothing
    data["Item"]["OrderTrackingDetails"][0]["ProcessContent"] = "Departed from origin country (CN)"
    assert mapping.parse_track_info(data, "N").status is TrackingStatus.IN_TRANSIT


@pytest.mark.parametrize("message", ["系统繁忙，请稍后再试", "System busy, please try again later"])
def test_tracking_answered_in_the_words_of_yunexpress_trouble_is_asked_again(message):
    """Not "unknown number": a non-0000 Code in the words of YunExpress's own trouble says nothing of
    the parcel. Taken for unknown, the parcel counted as polled (no failure, no retry_minutes) and
    was judged LOST or stalled on an answer that said nothing; it is a failure of that parcel."""
    with pytest.raises(TransientCarrierError, match="asked again"):
        mapping.parse_track_info({"Code": "1001", "Message": message, "Item": None}, "N")


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda item: item.update(PackageState="delivered"), "PackageState"),
    (lambda item: item.update(OrderTrackingDetails="none"), "OrderTrackingDetails"),
    (lambda item: item["OrderTrackingDetails"][0].update(ProcessDate="yesterday"), "ProcessDate"),
    # .NET's "no date": at UTC+8 it is before year 1 in UTC (OverflowError, once)
    (lambda item: item["OrderTrackingDetails"][0].update(ProcessDate="0001-01-01T00:00:00"),
     r"OrderTrackingDetails\[0\]\.ProcessDate.*0001-01-01"),
])
def test_malformed_tracking_is_transient_and_named(mutate, field):
    data = load_fixture("get_track_info")
    mutate(data["Item"])
    with pytest.raises(TransientCarrierError, match=field):
        mapping.parse_track_info(data, "N")


@pytest.mark.parametrize(("content", "status"), [
    ("Shipment information received", TrackingStatus.PENDING),
    ("Received by YunExpress Shenzhen warehouse", TrackingStatus.ACCEPTED),
    ("Departed from origin country (CN)", TrackingStatus.IN_TRANSIT),
    ("Arrived at destination country", TrackingStatus.IN_TRANSIT),
    ("Delivered to airline", TrackingStatus.IN_TRANSIT),
    ("Customs clearance completed", TrackingStatus.CUSTOMS),
    ("海关查验 Held by customs", TrackingStatus.CUSTOMS),
    ("Handed over to last mile carrier USPS", TrackingStatus.IN_TRANSIT),
    ("USPS: out for delivery", TrackingStatus.OUT_FOR_DELIVERY),
    ("派送中", TrackingStatus.OUT_FOR_DELIVERY),
    ("Delivered, signed for by recipient", TrackingStatus.DELIVERED),
    ("已签收", TrackingStatus.DELIVERED),
    ("Unsuccessful delivery attempt", TrackingStatus.FAILED_ATTEMPT),
    # "delivered" and "签收" inside a failure: never a delivery
    ("Undelivered - addressee moved", TrackingStatus.FAILED_ATTEMPT),
    ("Not delivered, addressee absent", TrackingStatus.FAILED_ATTEMPT),
    ("The item could not be delivered", TrackingStatus.FAILED_ATTEMPT),
    ("收件人未签收", TrackingStatus.FAILED_ATTEMPT),
    ("无人签收", TrackingStatus.FAILED_ATTEMPT),
    ("Returned to sender", TrackingStatus.RETURNED),
    # a failure that ends in a return is the return (as China Post reads it)
    ("Undelivered, returned to sender", TrackingStatus.RETURNED),
    ("Item not delivered - returned to shipper", TrackingStatus.RETURNED),
    ("邮件未投递，已退回寄件人", TrackingStatus.RETURNED),
    ("未签收，已退回", TrackingStatus.RETURNED),
    ("Order cancelled (deleted by the shipper)", TrackingStatus.CANCELLED),
    ("Sorted at YunExpress Shenzhen processing center", TrackingStatus.IN_TRANSIT),
    ("深圳处理中心已分拣 Processed at the sorting center", TrackingStatus.IN_TRANSIT),
    ("Transferred to Royal Mail for final delivery", TrackingStatus.IN_TRANSIT),
    ("已离开中国", TrackingStatus.IN_TRANSIT),
    ("xxxxxxx xxxxxxx xxxxxxx", TrackingStatus.UNKNOWN),  # the captured answer's words
    ("", TrackingStatus.UNKNOWN),
    ("Label printed", TrackingStatus.UNKNOWN),
])
def test_event_keywords(content, status):
    assert mapping.classify_event(content) is status


def test_a_failed_delivery_worded_undelivered_is_not_a_delivery():
    # PackageState 6 (delivery failed) and the last-mile words for it: the parcel is not delivered
    # (DELIVERED is final for the engine: tracking would stop and no failed-delivery alert be raised).
    data = load_fixture("get_track_info")
    data["Item"]["PackageState"] = 6
    data["Item"]["OrderTrackingDetails"] = [
        {"ProcessContent": "Arrived at destination country", "ProcessDate": "2022-01-02T10:00:00"},
        {"ProcessContent": "USPS: out for delivery", "ProcessDate": "2022-01-05T08:00:00"},
        {"ProcessContent": "USPS: Undelivered - no access to delivery location",
         "ProcessDate": "2022-01-05T18:00:00"},
    ]
    info = mapping.parse_track_info(data, "YT2222222222222222")
    assert info.events[-1].status is TrackingStatus.FAILED_ATTEMPT
    assert info.status is TrackingStatus.FAILED_ATTEMPT


# -- GetPriceTrial and GetShippingMethods ----------------------------------------------------


def test_captured_price_trial_without_items_means_no_quote():
    assert mapping.parse_price_trial(load_fixture("get_price_trial")) == []


def test_price_trial_items_become_quotes_for_offered_services():
    data = load_fixture("get_price_trial")
    data["Items"] = [
        {"Code": "AYPZXR", "EName": "Amazon Yuntu Global Tracked Line  DDP", "ShippingFee": 22.0,
         "RegistrationFee": 19.0, "TotalFee": 42.1, "DeliveryDays": "7-12", "Currency": "RMB"},
        {"Code": "BKZXR", "TotalFee": 60, "DeliveryDays": "5-10", "Currency": "CNY"},
        {"Code": "AYPZXU", "TotalFee": "30.50", "DeliveryDays": "", "Currency": None},
    ]
    levels = {s.code: s.tracking_level for s in SERVICES}
    quotes = mapping.parse_price_trial(data, services=("AYPZXR", "AYPZXU"), tracking_levels=levels,
                                       default_currency="CNY")
    assert [(q.service, q.price, q.transit_days, q.tracking_level) for q in quotes] == [
        ("AYPZXR", Money(Decimal("42.1"), "CNY"), 12, "fully_tracked"),
        ("AYPZXU", Money(Decimal("30.50"), "CNY"), None, "untracked"),
    ]
    assert all(q.carrier == "yunexpress" for q in quotes)


def test_price_trial_quotes_carry_the_registration_fee_as_handling_fee():
    data = load_fixture("get_price_trial")
    data["Items"] = [  # the price trial's shape: ShippingFee + RegistrationFee + FuelFee = TotalFee
        {"Code": "AYPZXR", "ShippingFee": 22.0, "RegistrationFee": 19.0, "FuelFee": 1.1, "SundryFee": 0.0,
         "TariffPrepayFee": 0.0, "InsuredFee": 0.0, "TotalFee": 42.1, "DeliveryDays": "7-12",
         "Currency": "CNY"},
        {"Code": "AYPZXU", "ShippingFee": 17.5, "RegistrationFee": 0.0, "FuelFee": 0.88, "TotalFee": 18.38,
         "Currency": "CNY"},
        {"Code": "BKZXR", "TotalFee": 60, "Currency": "CNY"},  # no breakdown
        {"Code": "ZXR", "RegistrationFee": 20, "TotalFee": 50, "Currency": "CNY", "ChargeWeight": 0.2505},
    ]
    quotes = {q.service: q for q in mapping.parse_price_trial(data)}
    assert quotes["AYPZXR"].handling_fee == Money(Decimal("19.0"), "CNY")  # weight charge 42.1 - 19 = 23.1
    assert quotes["AYPZXU"].handling_fee == Money(Decimal("0"), "CNY")  # untracked: no registration fee
    assert quotes["BKZXR"].handling_fee is None
    # the price trial names no chargeable weight: none, unless an item carries ChargeWeight (kg)
    assert quotes["AYPZXR"].chargeable_weight_g is None and quotes["BKZXR"].chargeable_weight_g is None
    assert quotes["ZXR"].chargeable_weight_g == 251  # 250.5 g, half up


def test_price_trial_bad_fee_is_transient():
    data = load_fixture("get_price_trial")
    data["Items"] = [{"Code": "AYPZXR", "TotalFee": "n/a"}]
    with pytest.raises(TransientCarrierError, match=r"Items\[0\]\.TotalFee"):
        mapping.parse_price_trial(data)


def test_captured_shipping_methods_match_the_registered_services():
    methods = {m.code: m for m in mapping.parse_shipping_methods(load_fixture("get_shipping_methods"))}
    assert len(methods) > 100
    for service in SERVICES:
        assert methods[service.code].name_en == service.name
        assert methods[service.code].has_tracking_number
