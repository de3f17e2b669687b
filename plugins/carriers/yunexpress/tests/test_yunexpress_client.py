"""client.py against canned HTTP (``responses``): what goes on the wire, how failures are classified."""
from __future__ import annotations

import base64
import json
import time

import pytest
import requests
import responses
from mfn_carrier_yunexpress.client import YunExpressCarrier
from responses import matchers
from yunexpress_testkit import SECRET, carrier_for, load_fixture, make_request, settings_for

from connector.kit import (
    CarrierContext,
    DuplicateReferenceError,
    PermanentCarrierError,
    Shipment,
    TrackingStatus,
    TransientCarrierError,
)

BASE = "http://oms.example.test"
API = BASE + "/api"
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
AUTH = "Basic " + base64.b64encode(f"C12345&{SECRET}".encode()).decode()


@pytest.fixture
def carrier() -> YunExpressCarrier:
    settings = settings_for(BASE, timeout_seconds=7, connect_timeout_seconds=2)
    return carrier_for(settings)


def _shipment(reference: str = "PKG-1", waybill: str = "YT2222222222222222") -> Shipment:
    return Shipment(carrier="yunexpress", reference=reference, carrier_shipment_id=waybill, service="AYPZXR")


def _created(reference: str, track_type: str = "1", tracking: str | None = "YT0000000000000001") -> dict:
    data = load_fixture("create_order")
    data["Item"][0].update(CustomerOrderNumber=reference, TrackType=track_type, TrackingNumber=tracking)
    return data


# -- what goes on the wire -------------------------------------------------------------------


@responses.activate
def test_create_sends_one_order_with_the_documented_headers(carrier):
    responses.post(f"{API}/WayBill/CreateOrder", json=_created("PKG-1"))
    shipment = carrier.create_shipment(make_request("PKG-1"))
    assert shipment.carrier_shipment_id == "YT2222222222222222"
    assert shipment.tracking_number == "YT0000000000000001"
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == AUTH
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert sent.headers["Accept-Language"] == "en-us"
    body = json.loads(sent.body)
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["CustomerOrderNumber"] == "PKG-1" and body[0]["Receiver"]["FirstName"] == "Jane Q. Buyer"
    assert "手机壳" in sent.body.decode("utf-8")  # UTF-8 JSON, not \u escapes


@responses.activate
def test_base_url_may_end_in_api_and_timeouts_come_from_settings(monkeypatch):
    seen = {}
    session = requests.Session()
    original = session.request

    def spy(*args, **kwargs):
        seen["timeout"] = kwargs["timeout"]
        return original(*args, **kwargs)

    monkeypatch.setattr(session, "request", spy)
    settings = settings_for(BASE + "/api/", timeout_seconds=7, connect_timeout_seconds=2)
    carrier = carrier_for(settings, CarrierContext(http=session))
    responses.get(f"{API}/WayBill/GetOrder", json={"Code": "0000", "Message": "ok", "Item": None},
                  match=[matchers.query_param_matcher({"OrderNumber": "PKG-9"})])
    assert carrier.find_by_reference("PKG-9") is None
    assert seen["timeout"] == (2.0, 7.0)
    assert len(responses.calls) == 1  # no GetTrackingNumber for an order that does not exist


@responses.activate
def test_quote_asks_for_the_parcel_and_keeps_the_requested_service(carrier):
    trial = load_fixture("get_price_trial")
    trial["Items"] = [{"Code": "AYPZXR", "TotalFee": 41.5, "DeliveryDays": "7-12", "Currency": "CNY"},
                      {"Code": "AYPZXU", "TotalFee": 30.0, "DeliveryDays": "10-20", "Currency": "CNY"}]
    responses.get(f"{API}/Freight/GetPriceTrial", json=trial, match=[matchers.query_param_matcher(
        {"CountryCode": "US", "Weight": "0.250", "Length": "21", "Width": "15", "Height": "3",
         "PackageType": "0"})])
    quotes = carrier.quote(make_request(service="AYPZXR"))
    assert [(q.service, str(q.price), q.tracking_level) for q in quotes] == [
        ("AYPZXR", "41.5 CNY", "fully_tracked")]
    assert [q.service for q in carrier.quote(make_request(service=""))] == ["AYPZXR", "AYPZXU"]


@responses.activate
def test_cancel_deletes_by_waybill(carrier):
    responses.post(f"{API}/WayBill/Delete", json=load_fixture("delete"), match=[
        matchers.json_params_matcher({"OrderType": 1, "OrderNumber": "YT2222222222222222"})])
    assert carrier.cancel(_shipment()) is True


@pytest.mark.parametrize(("state", "waybill", "cancelled"), [
    (5, "YT2222222222222222", True),    # deleted before (the portal, or this call before a kill)
    (1, "YT2222222222222222", False),   # submitted: live, the delete's back end does not know it yet
    (4, "YT2222222222222222", False),   # received: live
    (5, "YT9999999999999999", False),   # an answer about another waybill proves nothing
])
@responses.activate
def test_does_not_exist_is_cancelled_only_on_package_state_5_of_that_waybill(carrier, state, waybill,
                                                                             cancelled):
    gone = load_fixture("delete")
    gone["Item"].update(Status="Failure", Remark="订单不存在 / order does not exist")
    responses.post(f"{API}/WayBill/Delete", json=gone)
    tracked = load_fixture("get_track_info")
    tracked["Item"].update(PackageState=state, WaybillNumber=waybill)
    responses.get(f"{API}/Tracking/GetTrackInfo", json=tracked,
                  match=[matchers.query_param_matcher({"OrderNumber": "YT2222222222222222"})])
    if cancelled:
        assert carrier.cancel(_shipment()) is True
    else:
        with pytest.raises(PermanentCarrierError, match="does not exist"):
            carrier.cancel(_shipment())


@responses.activate
def test_track_asks_once_per_number(carrier):
    for number in ("YT1", "YT2"):
        responses.get(f"{API}/Tracking/GetTrackInfo", json=load_fixture("get_track_info"),
                      match=[matchers.query_param_matcher({"OrderNumber": number})])
    infos = carrier.track(["YT1", "YT2", "YT1"])
    assert [(i.tracking_number, i.status) for i in infos] == [("YT1", TrackingStatus.PENDING),
                                                              ("YT2", TrackingStatus.PENDING)]
    assert len(responses.calls) == 2


@responses.activate
def test_track_keeps_a_garbled_answer_to_its_own_number(carrier):
    garbled = load_fixture("get_track_info")
    garbled["Item"]["OrderTrackingDetails"][0]["ProcessDate"] = "0001-01-01T00:00:00"  # .NET's "no date"
    for number, answer in (("YT1", load_fixture("get_track_info")), ("YT2", garbled),
                           ("YT3", load_fixture("get_track_info"))):
        responses.get(f"{API}/Tracking/GetTrackInfo", json=answer,
                      match=[matchers.query_param_matcher({"OrderNumber": number})])
    good1, bad, good3 = carrier.track(["YT1", "YT2", "YT3"])
    assert (good1.error, good3.error) == ("", "") and good1.events and good3.events
    assert (bad.tracking_number, bad.status, bad.events) == ("YT2", TrackingStatus.UNKNOWN, ())
    assert "Item.OrderTrackingDetails[0].ProcessDate" in bad.error and "0001-01-01" in bad.error
    assert len(responses.calls) == 3


# -- duplicates and late tracking numbers ----------------------------------------------------


@responses.activate
def test_duplicate_create_returns_the_existing_shipment(carrier):
    duplicate = load_fixture("create_order")
    duplicate.update(Code="1001", Message="订单号重复")
    duplicate["Item"][0].update(CustomerOrderNumber="2222222222222222", Success=0, Remark="客户订单号重复",
                                WayBillNumber=None)
    responses.post(f"{API}/WayBill/CreateOrder", json=duplicate)
    responses.get(f"{API}/WayBill/GetOrder", json=load_fixture("get_order"),
                  match=[matchers.query_param_matcher({"OrderNumber": "2222222222222222"})])
    shipment = carrier.create_shipment(make_request("2222222222222222"))
    assert (shipment.carrier_shipment_id, shipment.tracking_number) == ("YT2222222222222222", "D1234567")
    assert [c.request.method for c in responses.calls] == ["POST", "GET"]


@responses.activate
def test_duplicate_that_cannot_be_found_is_transient(carrier):
    duplicate = {"Code": "1001", "Message": "订单号重复", "Item": None}
    responses.post(f"{API}/WayBill/CreateOrder", json=duplicate)
    responses.get(f"{API}/WayBill/GetOrder", json={"Code": "0000", "Message": "ok", "Item": None})
    with pytest.raises(TransientCarrierError, match="duplicate") as caught:
        carrier.create_shipment(make_request("PKG-2"))
    assert isinstance(caught.value.__cause__, DuplicateReferenceError)


@responses.activate
def test_a_duplicate_whose_lookup_is_refused_stays_a_duplicate(carrier):
    """YunExpress holds the reference, so a label exists. A refused GetOrder escaping as a plain
    refusal made the engine give the claim up and hold the order carrier_rejected: released, it was
    planned under a new reference and bought a second label. As a duplicate the claim is kept."""
    responses.post(f"{API}/WayBill/CreateOrder", json={"Code": "1001", "Message": "订单号重复", "Item": None})
    responses.get(f"{API}/WayBill/GetOrder", json={"Code": "1011", "Message": "接口不存在"})
    with pytest.raises(DuplicateReferenceError, match="PKG-2"):
        carrier.create_shipment(make_request("PKG-2"))


@responses.activate
def test_find_by_reference_polls_the_tracking_number_once(carrier):
    order = load_fixture("get_order")
    order["Item"].update(OrderNumber="udwrxxxxx-xxx-xxxxxxx-xxxxxxx", TrackingNumber=None,
                         WayBillNumber="YT1111111111111111")
    responses.get(f"{API}/WayBill/GetOrder", json=order)
    numbers = load_fixture("get_tracking_number")
    responses.get(f"{API}/Waybill/GetTrackingNumber", json=numbers, match=[
        matchers.query_param_matcher({"CustomerOrderNumber": "udwrxxxxx-xxx-xxxxxxx-xxxxxxx"})])
    shipment = carrier.find_by_reference("udwrxxxxx-xxx-xxxxxxx-xxxxxxx")
    assert shipment.carrier_shipment_id == "YT1111111111111111" and shipment.tracking_number is None

    numbers["Items"][0].update(Status=1, TrackingNumber="YT5555555555555555")
    responses.replace(responses.GET, f"{API}/Waybill/GetTrackingNumber", json=numbers)
    assert carrier.find_by_reference("udwrxxxxx-xxx-xxxxxxx-xxxxxxx").tracking_number == "YT5555555555555555"
    assert len(responses.calls) == 4


# -- labels ----------------------------------------------------------------------------------


@responses.activate
def test_label_is_printed_then_downloaded_without_credentials(carrier):
    label = load_fixture("label_print")
    url = label["Item"][0]["Url"]
    responses.post(f"{API}/Label/Print", json=label,
                   match=[matchers.json_params_matcher(["YT2222222222222222"])])
    responses.get(url, body=PDF, content_type="application/pdf")
    assert carrier.get_label(_shipment()) == PDF
    download = responses.calls[1].request
    assert "Authorization" not in download.headers


@responses.activate
def test_label_request_format_object():
    carrier = carrier_for(settings_for(BASE, label_request_format="object"))
    label = load_fixture("label_print")
    responses.post(f"{API}/Label/Print", json=label,
                   match=[matchers.json_params_matcher({"OrderNumbers": ["YT2222222222222222"]})])
    responses.get(label["Item"][0]["Url"], body=PDF)
    assert carrier.get_label(_shipment()) == PDF


@pytest.mark.parametrize(("status", "body"), [(200, b"<html>expired</html>"), (200, PDF[:20]), (404, b""),
                                             # the file host refusing an expired link: no credentials
                                             # go there, so it is never "check customer_code"
                                             (403, b"<Error><Code>AccessDenied</Code></Error>"),
                                             (401, b"")])
@responses.activate
def test_a_label_that_is_not_a_whole_pdf_is_transient(carrier, status, body):
    label = load_fixture("label_print")
    responses.post(f"{API}/Label/Print", json=label)
    responses.get(label["Item"][0]["Url"], body=body, status=status)
    with pytest.raises(TransientCarrierError, match="label download"):
        carrier.get_label(_shipment())


# -- failure classification ------------------------------------------------------------------


@pytest.mark.parametrize("exc", [requests.ReadTimeout("read timed out"), requests.ConnectTimeout("slow"),
                                 requests.ConnectionError("reset by peer"),
                                 requests.exceptions.ChunkedEncodingError("broken")])
@responses.activate
def test_network_failures_are_transient(carrier, exc):
    responses.post(f"{API}/WayBill/CreateOrder", body=exc)
    with pytest.raises(TransientCarrierError, match="may have taken effect"):
        carrier.create_shipment(make_request())


@responses.activate
def test_malformed_json_is_transient_and_says_so_without_echoing_the_body(carrier):
    garbled = '{"Item": {"Receiver": {"FirstName": "Jane Q. Buyer", <<garbled'
    responses.get(f"{API}/WayBill/GetOrder", body=garbled)
    with pytest.raises(TransientCarrierError, match="not valid JSON") as caught:
        carrier.find_by_reference("PKG-1")
    assert "Jane" not in str(caught.value) and caught.value.code == "malformed"


@responses.activate
def test_empty_body_is_transient(carrier):
    responses.get(f"{API}/Tracking/GetTrackInfo", body="")
    with pytest.raises(TransientCarrierError, match="not valid JSON"):
        carrier.track(["YT1"])


@pytest.mark.parametrize("status", [500, 502, 503, 429])
@responses.activate
def test_server_errors_and_throttling_are_transient(carrier, status):
    responses.post(f"{API}/WayBill/CreateOrder", status=status, body="busy")
    with pytest.raises(TransientCarrierError, match=f"HTTP {status}"):
        carrier.create_shipment(make_request())


@responses.activate
def test_unknown_route_is_permanent(carrier):
    responses.post(f"{API}/WayBill/CreateOrder", status=404,
                   json={"Message": "No HTTP resource was found that matches the request URI"})
    with pytest.raises(PermanentCarrierError, match="HTTP 404.*base_url"):
        carrier.create_shipment(make_request())


@pytest.mark.parametrize("answer", [
    {"status": 401, "body": "401 Unauthorized"},
    {"status": 403, "body": ""},
    {"status": 200, "body": "Unauthorized: invalid token"},
    {"status": 200, "json": {"Code": "1001", "Message": "Unauthorized: invalid CustomerCode or ApiSecret"}},
])
@responses.activate
def test_auth_failures_are_permanent_and_never_show_the_secret(carrier, answer):
    responses.post(f"{API}/WayBill/CreateOrder", **answer)
    with pytest.raises(PermanentCarrierError, match="YunExpress rejected the credentials") as caught:
        carrier.create_shipment(make_request())
    assert not isinstance(caught.value, DuplicateReferenceError)
    token = AUTH.split()[1]
    for text in (str(caught.value), repr(carrier), repr(carrier.settings)):
        assert SECRET not in text and token not in text


@responses.activate
def test_business_refusal_is_permanent_with_the_carriers_code(carrier):
    responses.post(f"{API}/WayBill/Delete", json={"Code": "2001", "Message": "运单不存在", "Item": None})
    with pytest.raises(PermanentCarrierError, match="运单不存在") as caught:
        carrier.cancel(_shipment())
    assert caught.value.code == "2001"


# -- settings --------------------------------------------------------------------------------


def test_settings_are_checked_by_name():
    with pytest.raises(ValueError, match="api_secret"):
        carrier_for({"base_url": BASE, "customer_code": "C1"})
    with pytest.raises(ValueError, match="api_secrte"):
        carrier_for(settings_for(BASE, api_secrte="typo"))


@responses.activate
def test_optional_pacing_spaces_the_calls():
    carrier = carrier_for(settings_for(BASE, max_requests_per_second=20))
    responses.get(f"{API}/Tracking/GetTrackInfo", json=load_fixture("get_track_info"))
    started = time.monotonic()
    carrier.track(["A", "B", "C", "D"])
    assert time.monotonic() - started >= 0.14  # 4 calls at 20/s: 3 gaps of 50 ms
