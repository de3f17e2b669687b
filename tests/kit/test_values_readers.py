"""connector.kit.values: the readers, time helpers, setting schemas and the duplicate outcome that
several carrier mappings and clients share."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jsonschema
import pytest

from connector.kit.carrier import (
    CREDENTIALS_REFUSED,
    DuplicateReferenceError,
    PermanentCarrierError,
    TransientCarrierError,
)
from connector.kit.values import (
    currency,
    existing_shipment,
    in_utc,
    iso_time,
    issued_number,
    keywords_setting,
    mentions,
    objects,
    tracking_or_error,
    transit_days,
    url_with_path,
    utc_offset_setting,
)
from connector.model import Shipment, TrackingInfo, TrackingStatus

UTC = timezone.utc


def test_objects_reads_a_list_of_objects_and_names_the_bad_field():
    assert objects(None, "Items") == []
    assert objects([{"a": 1}, {}], "Items") == [{"a": 1}, {}]
    with pytest.raises(ValueError, match=r"^field 'Items' should be a list, got dict$"):
        objects({"a": 1}, "Items")
    with pytest.raises(ValueError, match=r"^field 'Item\.Details\[1\]' is not an object$"):
        objects([{}, "x"], "Item.Details")


def test_issued_number_reads_text_or_a_json_integer_and_names_a_wrong_type():
    assert issued_number(" LK123456789CN ", "waybillNo") == "LK123456789CN"
    assert issued_number(7027018415475994, "deliveryConfirmationNo") == "7027018415475994"
    assert issued_number(None, "waybillNo") == "" and issued_number("", "waybillNo") == ""
    for value, kind in (([], "list"), ({"no": "LK1"}, "dict"), (1.5, "float"), (2.2e17, "float"),
                        (True, "bool")):
        with pytest.raises(ValueError, match=rf"^field 'data\.waybillNumber' should be text, got {kind}$"):
            issued_number(value, "data.waybillNumber")


def test_mentions_ignores_case_on_both_sides():
    assert mentions("Order number ALREADY exists", ["already exist"])
    assert mentions("订单号重复", ["重复"]) and mentions("duplicate", ["DUPLICATE"])
    assert not mentions("", ["x"]) and not mentions("anything", [])


@pytest.mark.parametrize("value, default, expected", [
    ("usd", "", "USD"), (" RMB ", "", "CNY"), ("元", "", "CNY"), ("yuan", "", "CNY"), (None, "CNY", "CNY"),
    ("", "eur", "EUR"), ("US$", "", None), ("DOLLARS", "", None), (None, "", None),
])
def test_currency(value, default, expected):
    assert currency(value, default) == expected


@pytest.mark.parametrize("value, expected", [(7, 7), ("7-12", 12), ("7~12 工作日", 12), ("", None),
                                             (None, None), ("soon", None)])
def test_transit_days_is_the_largest_number(value, expected):
    assert transit_days(value) == expected


@pytest.mark.parametrize("url", ["http://h", "http://h/", "http://h/api", "http://h/API/", "http://h/api//"])
def test_url_with_path_accepts_the_path_or_not(url):
    assert url_with_path(url, "/api").lower() == "http://h/api"
    assert url_with_path("http://h/x", "/api/order") == "http://h/x/api/order"


@pytest.mark.parametrize("text, expected", [
    ("2024-03-05T10:20:30", datetime(2024, 3, 5, 10, 20, 30)),
    ("2024-03-05 10:20:30", datetime(2024, 3, 5, 10, 20, 30)),
    ("2024-03-05T10:20:30.1234567", datetime(2024, 3, 5, 10, 20, 30, 123456)),
    ("2024-03-05T10:20:30.5", datetime(2024, 3, 5, 10, 20, 30, 500000)),
    ("2024-03-05T10:20:30Z", datetime(2024, 3, 5, 10, 20, 30, tzinfo=UTC)),
    ("2024-03-05T10:20:30z", datetime(2024, 3, 5, 10, 20, 30, tzinfo=UTC)),
    (" 2024-03-05T10:20:30+05:30 ", datetime(2024, 3, 5, 10, 20, 30, tzinfo=timezone(timedelta(hours=5.5)))),
])
def test_iso_time(text, expected):
    assert iso_time(text) == expected and (iso_time(text).tzinfo is None) == (expected.tzinfo is None)


@pytest.mark.parametrize("value", ["", None, "yesterday", "2024-13-01T00:00:00", "2024-03-05T10:20:30+25:00"])
def test_iso_time_refuses_what_is_not_a_date(value):
    with pytest.raises(ValueError):
        iso_time(value)


def test_in_utc_takes_a_naive_time_as_local_at_the_offset():
    assert in_utc(datetime(2024, 3, 5, 8, 0), 8) == datetime(2024, 3, 5, 0, 0, tzinfo=UTC)
    assert in_utc(datetime(2024, 3, 5, 8, 0), -5.5) == datetime(2024, 3, 5, 13, 30, tzinfo=UTC)
    aware = datetime(2024, 3, 5, 8, 0, tzinfo=timezone(timedelta(hours=1)))
    assert in_utc(aware, 8) == datetime(2024, 3, 5, 7, 0, tzinfo=UTC)  # its own zone wins


@pytest.mark.parametrize(("moment", "offset"), [
    (datetime(1, 1, 1), 8),  # .NET's "no date" east of UTC: year 0 in UTC
    (datetime(9999, 12, 31, 23, 0), -5),  # year 10000 in UTC
    (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), 0),
])
def test_in_utc_refuses_a_time_with_no_utc_time_as_a_malformed_date(moment, offset):
    with pytest.raises(ValueError, match="out of range"):  # never OverflowError: mappings catch ValueError
        in_utc(moment, offset)


def test_tracking_or_error_keeps_a_malformed_parcel_to_itself():
    good = TrackingInfo("N1", TrackingStatus.PENDING)
    assert tracking_or_error("N1", lambda info: info, good) is good

    def bad(field):
        raise ValueError(f"field {field!r} is not a date")

    info = tracking_or_error("N2", bad, "ProcessDate")
    assert (info.tracking_number, info.status, info.events) == ("N2", TrackingStatus.UNKNOWN, ())
    assert info.error == "ValueError: field 'ProcessDate' is not a date"

    def transient():
        raise TransientCarrierError("ACME track: field 'time' is not a date", code="malformed")

    assert "'time'" in tracking_or_error("N3", transient).error


@pytest.mark.parametrize("error", [
    PermanentCarrierError("ACME refused the tracking query"),
    TransientCarrierError("ACME: authentication failed", code=CREDENTIALS_REFUSED),
])
def test_tracking_or_error_leaves_refusals_and_credentials_to_the_batch(error):
    def refused():
        raise error

    with pytest.raises(type(error)):
        tracking_or_error("N1", refused)


def test_setting_schemas():
    offset = utc_offset_setting("zone of answer times")
    assert offset == {"type": "number", "minimum": -12, "maximum": 14, "default": 8,
                      "description": "zone of answer times"}
    assert utc_offset_setting("x", default=0)["default"] == 0
    words = keywords_setting(("重复", "exist"), "duplicate words")
    assert words["default"] == ["重复", "exist"] and words["description"] == "duplicate words"
    validator = jsonschema.Draft202012Validator(words)
    assert not list(validator.iter_errors(["a"])) and list(validator.iter_errors([""]))
    assert list(jsonschema.Draft202012Validator(offset).iter_errors(15))


def test_existing_shipment_is_what_the_lookup_found():
    found = Shipment(carrier="acme", reference="R1", carrier_shipment_id="W1", tracking_number="T1")
    refusal = DuplicateReferenceError("R1 taken", code="1001", carrier="acme")
    assert existing_shipment(found, refusal, name="ACME", reference="R1", lookup="x") is found


def test_a_duplicate_the_lookup_cannot_find_is_transient():
    refusal = DuplicateReferenceError("R1 taken", code="1001", carrier="acme")
    with pytest.raises(TransientCarrierError) as caught:
        existing_shipment(None, refusal, name="ACME", reference="R1", lookup="GetOrder finds no such order")
    error = caught.value
    assert str(error) == "ACME refused R1 as a duplicate but GetOrder finds no such order"
    assert (error.code, error.carrier, error.__cause__) == ("1001", "acme", refusal)
