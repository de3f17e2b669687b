"""client.py against canned HTTP (``responses``): the wire format, the token cache, batching and
how failures are classified."""

from __future__ import annotations

import base64
import json
import threading
import time
import traceback
from decimal import Decimal

import pytest
import requests
import responses
from dhl_ecommerce_testkit import BUYER, EU_BUYER, SECRET, carrier_for, load_fixture, make_request
from mfn_carrier_dhl_ecommerce.client import DhlEcommerceCarrier
from responses import matchers

from connector.kit import (
    DuplicateReferenceError,
    Money,
    PermanentCarrierError,
    Shipment,
    TrackingStatus,
    TransientCarrierError,
)
from connector.kit.sandbox import make_label_pdf

BASE = "https://dhl.example.test"
TOKEN_URL = BASE + "/rest/v1/OAuth/AccessToken"
LABEL_URL = BASE + "/rest/v2/Label"
REPRINT_URL = BASE + "/rest/v2/Label/Reprint"
DELETE_URL = BASE + "/rest/v2/Label/Delete"
TRACK_URL = BASE + "/rest/v3/Tracking"
REF = "111-0000001-0000001-1"
SID = "CNMFN" + REF


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _token(value: str = "tok-1", lifetime: int = 86400) -> dict:
    return {
        "accessTokenResponse": {
            "token": value,
            "token_type": "Bearer",
            "expires_in_seconds": lifetime,
            "responseStatus": {"code": "100000", "message": "Success"},
        }
    }


def _carrier(clock: FakeClock | None = None, **settings) -> DhlEcommerceCarrier:  # noqa: ANN003
    section = {
        "base_url": BASE,
        "client_id": "client-1",
        "password": SECRET,
        "pickup_account_id": "5111111",
        "sold_to_account_id": "5222222",
        **settings,
    }
    return carrier_for(section, clock=clock)


def _label_answer(sid: str = SID, code: str = "200", number: str = "7027000000000001") -> dict:
    pdf = base64.b64encode(make_label_pdf(["DHL eCommerce", number])).decode()
    return {
        "labelResponse": {
            "hdr": {"messageType": "LABEL"},
            "bd": {
                "labels": [
                    {
                        "shipmentID": sid,
                        "deliveryConfirmationNo": number,
                        "labelURL": None,
                        "content": pdf,
                        "responseStatus": {
                            "code": code,
                            "message": "SUCCESS",
                            "messageDetails": [
                                {
                                    "messageDetail": "Shipment label reprinted successfully"
                                    if code == "203"
                                    else "ok"
                                }
                            ],
                        },
                    }
                ],
                "responseStatus": {"code": "200", "message": "SUCCESS"},
            },
        }
    }


def _sent(call: responses.Call) -> dict:
    return json.loads(call.request.body)


# -- the wire ---------------------------------------------------------------------------------


@responses.activate
def test_create_sends_the_envelope_and_gets_a_token_first() -> None:
    responses.get(
        TOKEN_URL,
        json=_token(),
        match=[
            matchers.query_param_matcher({"clientId": "client-1", "password": SECRET, "returnFormat": "json"})
        ],
    )
    responses.post(LABEL_URL, json=_label_answer())
    shipment = _carrier().create_shipment(make_request(REF))
    assert shipment == Shipment(
        carrier="dhl_ecommerce",
        reference=REF,
        carrier_shipment_id="7027000000000001",
        tracking_number="7027000000000001",
        service="PPM",
    )
    label_call = responses.calls[1]
    assert label_call.request.headers["Content-Type"] == "application/json"
    envelope = _sent(label_call)["labelRequest"]
    hdr, bd = envelope["hdr"], envelope["bd"]
    assert (hdr["messageType"], hdr["messageVersion"], hdr["accessToken"], hdr["messageLanguage"]) == (
        "LABEL",
        "1.4",
        "tok-1",
        "en",
    )
    assert hdr["messageDateTime"].endswith("+00:00")
    assert (bd["pickupAccountId"], bd["soldToAccountId"]) == ("5111111", "5222222")
    assert bd["shipmentItems"][0]["shipmentID"] == SID
    assert bd["shipmentItems"][0]["consigneeAddress"]["name"] == BUYER.name
    assert "手机壳".encode() in label_call.request.body  # UTF-8, not \u escapes


@responses.activate
def test_an_identical_resend_is_byte_identical_in_bd_and_203_is_the_same_label() -> None:
    responses.get(TOKEN_URL, json=_token())
    responses.post(LABEL_URL, json=_label_answer(code="200"))
    responses.post(LABEL_URL, json=_label_answer(code="203"))
    carrier = _carrier()
    first = carrier.create_shipment(make_request(REF))
    again = carrier.create_shipment(make_request(REF))
    assert first == again
    bodies = [_sent(c)["labelRequest"]["bd"] for c in responses.calls if c.request.url == LABEL_URL]
    assert json.dumps(bodies[0]) == json.dumps(bodies[1])


@responses.activate
def test_a_variance_is_a_duplicate_reference() -> None:
    responses.get(TOKEN_URL, json=_token())
    answer = load_fixture("label_invalid_shipment_exists_response")
    answer["labelResponse"]["bd"]["labels"][0]["shipmentID"] = SID
    responses.post(LABEL_URL, json=answer)
    with pytest.raises(DuplicateReferenceError, match="Variances found"):
        _carrier().create_shipment(make_request(REF))


@responses.activate
def test_a_validation_refusal_is_permanent_and_names_the_field() -> None:
    responses.get(TOKEN_URL, json=_token())
    answer = load_fixture("label_invalid_response")
    answer["labelResponse"]["bd"]["labels"][0]["shipmentID"] = SID
    responses.post(LABEL_URL, json=answer)
    with pytest.raises(
        PermanentCarrierError, match=r"field Remarks \(/labelRequest/bd/shipmentItems\[0\]/remarks\)"
    ):
        _carrier().create_shipment(make_request(REF))


@responses.activate
def test_a_reference_shipment_id_cannot_hold_is_refused_before_any_call() -> None:
    with pytest.raises(PermanentCarrierError, match="not allowed") as err:
        _carrier().create_shipment(make_request("PKG 1/2"))
    assert err.value.code == "reference" and len(responses.calls) == 0


@responses.activate
def test_find_get_label_cancel() -> None:
    responses.get(TOKEN_URL, json=_token())
    reprint = load_fixture("reprint_label_response")
    reprint["labelReprintResponse"]["bd"]["shipmentItems"][0]["shipmentID"] = SID
    responses.post(
        REPRINT_URL,
        json=reprint,
        match=[
            matchers.json_params_matcher(
                {
                    "labelReprintRequest": {
                        "bd": {
                            "pickupAccountId": "5111111",
                            "soldToAccountId": "5222222",
                            "shipmentItems": [{"shipmentID": SID}],
                        }
                    }
                },
                strict_match=False,
            )
        ],
    )
    carrier = _carrier()
    found = carrier.find_by_reference(REF)
    assert found is not None and (found.reference, found.tracking_number) == (REF, "7027018415475994")
    assert carrier.get_label(found).startswith(b"%PDF-")
    responses.post(
        DELETE_URL,
        json={
            "deleteShipmentResp": {
                "hdr": {},
                "bd": {
                    "responseStatus": {
                        "code": "200",
                        "message": "SUCCESS",
                        "messageDetails": [{"messageDetail": "deleted"}],
                    }
                },
            }
        },
    )
    assert carrier.cancel(found) is True
    delete = _sent(responses.calls[-1])["deleteShipmentReq"]
    assert delete["hdr"]["messageType"] == "DELETESHIPMENT" and delete["bd"]["shipmentItems"] == [
        {"shipmentID": SID}
    ]
    assert len([c for c in responses.calls if c.request.url.startswith(TOKEN_URL)]) == 1  # cached


@responses.activate
def test_find_by_reference_of_an_unknown_reference_is_none_and_get_label_permanent() -> None:
    responses.get(TOKEN_URL, json=_token())
    status = {
        "code": "202",
        "message": "Message validation failed.",
        "messageDetails": [{"messageDetail": f"Shipment ID {SID} not found."}],
    }
    responses.post(
        REPRINT_URL,
        json={
            "labelReprintResponse": {
                "bd": {
                    "shipmentItems": [{"shipmentID": SID, "responseStatus": status}],
                    "responseStatus": status,
                }
            }
        },
    )
    carrier = _carrier()
    assert carrier.find_by_reference(REF) is None
    with pytest.raises(PermanentCarrierError, match="no live label"):
        carrier.get_label(Shipment("dhl_ecommerce", REF, "7027000000000001", "7027000000000001"))


# -- the token --------------------------------------------------------------------------------


@responses.activate
def test_the_token_is_refreshed_early_on_the_clients_clock() -> None:
    responses.get(TOKEN_URL, json=_token("tok-1", lifetime=3600))
    responses.get(TOKEN_URL, json=_token("tok-2", lifetime=3600))
    clock = FakeClock()
    carrier = _carrier(clock, token_refresh_margin_seconds=600)
    assert carrier.access_token() == "tok-1"
    clock.now += 2999  # 601 s left: still fresh
    assert carrier.access_token() == "tok-1"
    clock.now += 2  # 599 s left: inside the margin
    assert carrier.access_token() == "tok-2"
    assert len(responses.calls) == 2


@responses.activate
def test_the_margin_is_at_most_half_a_short_lifetime() -> None:
    responses.get(TOKEN_URL, json=_token("tok-1", lifetime=60))
    responses.get(TOKEN_URL, json=_token("tok-2", lifetime=60))
    clock = FakeClock()
    carrier = _carrier(clock)  # default margin 1800 s > 60 s
    assert carrier.access_token() == "tok-1"
    clock.now += 29
    assert carrier.access_token() == "tok-1"
    clock.now += 2
    assert carrier.access_token() == "tok-2"


@responses.activate
def test_invalid_access_token_refreshes_once_and_resends_the_same_bd() -> None:
    responses.get(TOKEN_URL, json=_token("tok-old"))
    responses.get(TOKEN_URL, json=_token("tok-new"))
    responses.post(LABEL_URL, json=load_fixture("label_invalid_access_token_response"))
    responses.post(LABEL_URL, json=_label_answer())
    shipment = _carrier().create_shipment(make_request(REF))
    assert shipment.tracking_number == "7027000000000001"
    sent = [_sent(c)["labelRequest"] for c in responses.calls if c.request.url == LABEL_URL]
    assert [s["hdr"]["accessToken"] for s in sent] == ["tok-old", "tok-new"]
    assert json.dumps(sent[0]["bd"]) == json.dumps(sent[1]["bd"])


@responses.activate
def test_a_token_refused_twice_is_transient() -> None:
    responses.get(TOKEN_URL, json=_token("tok-1"))
    responses.get(TOKEN_URL, json=_token("tok-2"))
    responses.post(
        TRACK_URL,
        json={"trackItemResponse": load_fixture("label_invalid_access_token_response")["labelResponse"]},
    )
    with pytest.raises(TransientCarrierError, match="refused again right after a refresh"):
        _carrier().track(["7027000000000001"])
    assert len([c for c in responses.calls if c.request.url == TRACK_URL]) == 2


@responses.activate
def test_concurrent_callers_share_one_token_request() -> None:
    responses.get(TOKEN_URL, json=_token())
    carrier = _carrier()
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def worker() -> None:
        barrier.wait()
        tokens.append(carrier.access_token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tokens == ["tok-1"] * 8 and len(responses.calls) == 1


@responses.activate
def test_bad_credentials_are_permanent_and_the_password_is_never_shown() -> None:
    responses.get(
        TOKEN_URL,
        json={
            "accessTokenResponse": {
                "token": None,
                "responseStatus": {"code": "100010", "message": "Invalid client credentials"},
            }
        },
    )
    with pytest.raises(PermanentCarrierError, match="refused the credentials") as err:
        _carrier().create_shipment(make_request(REF))
    assert not isinstance(err.value, TransientCarrierError)
    assert SECRET not in "".join(traceback.format_exception(err.value))
    assert SECRET not in repr(_carrier())


@responses.activate
def test_a_network_error_on_the_token_never_leaks_the_password() -> None:
    responses.get(TOKEN_URL, body=requests.ConnectionError(f"boom for {TOKEN_URL}?password={SECRET}"))
    with pytest.raises(TransientCarrierError, match="ConnectionError") as err:
        _carrier().access_token()
    assert SECRET not in "".join(traceback.format_exception(err.value))


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_http_401_and_403_are_the_credentials_error(status: int) -> None:
    responses.get(TOKEN_URL, status=status, body="Unauthorized")
    with pytest.raises(PermanentCarrierError, match="DHL eCommerce refused the credentials") as err:
        _carrier().create_shipment(make_request(REF))
    assert err.value.code == "auth" and not isinstance(err.value, TransientCarrierError)
    assert SECRET not in "".join(traceback.format_exception(err.value))


# -- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, TransientCarrierError),
        (503, TransientCarrierError),
        (429, TransientCarrierError),
        (404, PermanentCarrierError),
    ],
)
@responses.activate
def test_http_status_classification(status: int, kind: type) -> None:
    responses.get(TOKEN_URL, json=_token())
    responses.post(LABEL_URL, json={"message": "x"}, status=status)
    with pytest.raises(kind, match=f"HTTP {status}") as err:
        _carrier().create_shipment(make_request(REF))
    assert err.value.code == f"http_{status}"
    if kind is PermanentCarrierError:
        assert not isinstance(err.value, TransientCarrierError)
        assert "(check base_url and credentials)" in str(err.value)


@responses.activate
def test_a_client_error_in_dhls_envelope_carries_dhls_message() -> None:
    responses.get(TOKEN_URL, json=_token())
    status = {"code": "400", "message": "FAILED", "messageDetails": [{"messageDetail": "Bad request body"}]}
    responses.post(LABEL_URL, status=400, json={"labelResponse": {"bd": {"responseStatus": status}}})
    with pytest.raises(PermanentCarrierError, match=r"label: HTTP 400: Bad request body \(check base_url"):
        _carrier().create_shipment(make_request(REF))


@responses.activate
def test_a_truncated_answer_is_transient_and_says_so() -> None:
    responses.get(TOKEN_URL, json=_token())
    responses.post(LABEL_URL, body=json.dumps(_label_answer())[:200])
    with pytest.raises(TransientCarrierError, match="not valid JSON") as err:
        _carrier().create_shipment(make_request(REF))
    assert err.value.code == "malformed" and "may have taken effect" in str(err.value)


@responses.activate
def test_a_timeout_is_transient() -> None:
    responses.get(TOKEN_URL, json=_token())
    responses.post(LABEL_URL, body=requests.ReadTimeout("slow"))
    with pytest.raises(TransientCarrierError, match="no answer within 30s") as err:
        _carrier().create_shipment(make_request(REF))
    assert err.value.code == "timeout"


@responses.activate
def test_max_requests_per_second_spaces_the_calls() -> None:
    responses.get(TOKEN_URL, json=_token())
    responses.add_callback(responses.POST, TRACK_URL, callback=_tracking_callback([]))
    carrier = _carrier(max_requests_per_second=20, tracking_batch_size=1)
    started = time.monotonic()
    carrier.track(["7000000000000001", "7000000000000002", "7000000000000003"])
    assert len(responses.calls) == 4 and time.monotonic() - started >= 3 * 0.05 * 0.9  # no burst


# -- tracking ---------------------------------------------------------------------------------


def _tracking_callback(batches: list[int]):  # noqa: ANN202
    def answer(request):  # noqa: ANN001, ANN202
        refs = json.loads(request.body)["trackItemRequest"]["bd"]["trackingReferenceNumber"]
        batches.append(len(refs))
        items = [
            {
                "trackingID": r,
                "shipmentID": "CNMFN" + r,
                "events": [
                    {
                        "status": "77206",
                        "description": "Shipment picked up",
                        "dateTime": "2024-01-02 10:00:00",
                    },
                    {"status": "71005", "description": "Data Submitted", "dateTime": "2024-01-01 10:00:00"},
                ],
            }
            for r in refs
            if not r.endswith("9")
        ]
        bd = {
            "shipmentItems": items,
            "responseStatus": {
                "code": "200",
                "message": "SUCCESS",
                "messageDetails": [
                    {"messageDetail": f"{len(refs)} tracking reference(s) tracked, {len(items)} found."}
                ],
            },
        }
        return 200, {}, json.dumps({"trackItemResponse": {"hdr": {}, "bd": bd}})

    return answer


@responses.activate
def test_tracking_in_batches_of_at_most_100_in_input_order() -> None:
    responses.get(TOKEN_URL, json=_token())
    batches: list[int] = []
    responses.add_callback(responses.POST, TRACK_URL, callback=_tracking_callback(batches))
    numbers = [f"70{i:014d}" for i in range(250)]
    infos = _carrier().track(numbers + numbers[:3])  # duplicates asked once
    assert batches == [100, 100, 50]
    assert [i.tracking_number for i in infos] == numbers
    assert [e.code for e in infos[0].events] == ["71005", "77206"] and infos[
        0
    ].status is TrackingStatus.ACCEPTED
    unknown = infos[9]  # the canned DHL answer does not know numbers ending in 9
    assert unknown.status is TrackingStatus.UNKNOWN and unknown.events == ()
    sent = _sent(responses.calls[1])["trackItemRequest"]
    assert (sent["hdr"]["messageType"], sent["hdr"]["messageVersion"]) == ("TRACKITEM", "1.0")
    assert sent["bd"]["ePODRequired"] == "N"


@responses.activate
def test_tracking_batch_size_is_a_setting() -> None:
    responses.get(TOKEN_URL, json=_token())
    batches: list[int] = []
    responses.add_callback(responses.POST, TRACK_URL, callback=_tracking_callback(batches))
    _carrier(tracking_batch_size=40).track([f"70{i:014d}" for i in range(90)])
    assert batches == [40, 40, 10]


# -- quotes (rate card) -----------------------------------------------------------------------


def test_quotes_come_from_the_example_rate_card_without_any_call() -> None:
    carrier = _carrier()
    [quote] = carrier.quote(make_request(service="PPM"))
    assert (quote.carrier, quote.service, quote.tracking_level) == ("dhl_ecommerce", "PPM", "fully_tracked")
    assert quote.price.currency == "CNY" and quote.price.amount == Decimal("48.25")  # 22 + 105 * 0.25
    assert quote.transit_days == 10
    assert [q.service for q in carrier.quote(make_request(service=""))] == ["PPM", "PKD", "PLT"]
    assert [q.service for q in carrier.quote(make_request(service="", has_battery=True))] == ["PPM", "PLT"]
    assert carrier.quote(make_request(service="PPM", weight_g=2500)) == []  # over the packet limit
    assert carrier.quote(make_request(service="PKG")) == []  # no row for it on the card
    assert [q.price.amount for q in carrier.quote(make_request(service="PPM", ship_to=EU_BUYER))] == [
        Decimal("43.75")
    ]  # the "*" row: 20 + 95 * 0.25


def test_card_quotes_carry_the_handling_fee_and_the_chargeable_weight() -> None:
    [quote] = _carrier().quote(make_request(service="PPM"))
    # PPM to US: 22.00 + 105.00 * 0.25 = 48.25; the row's base 22.00 is the per-parcel fee
    assert quote.handling_fee == Money(Decimal("22.00"), "CNY")
    assert quote.price.amount - quote.handling_fee.amount == Decimal("26.25")
    assert quote.chargeable_weight_g == 250  # the actual weight: the card has no volumetric divisor


def test_a_configured_rate_card_replaces_the_example() -> None:
    card = [
        {
            "service": "PKG",
            "countries": "US",
            "max_weight_g": 2000,
            "base": "5",
            "per_kg": "50",
            "currency": "USD",
            "transit_days": 20,
        }
    ]
    carrier = _carrier(rate_card=card)
    assert carrier.quote(make_request(service="")) == []  # the default services are not on this card
    assert [
        q.service for q in _carrier(rate_card=card, services=["PKG"]).quote(make_request(service=""))
    ] == ["PKG"]
    [pkg] = carrier.quote(make_request(service="PKG"))
    assert (str(pkg.price), pkg.tracking_level) == ("17.50 USD", "untracked")  # 5 + 50 * 0.25
    with pytest.raises(ValueError, match="rate_card"):
        _carrier(rate_card=[{"service": "PPM"}])
