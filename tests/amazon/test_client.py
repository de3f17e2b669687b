from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import urllib3.exceptions

from connector import __version__
from connector.amazon.client import SpApiClient
from connector.amazon.errors import (
    AlreadyShippedError,
    AuthError,
    InvalidInputError,
    NotFoundError,
    SpApiError,
    ThrottledError,
    TransientError,
)
from connector.ratelimit import QuotaWaitInterrupted, RateLimiter, TokenBucket

from .conftest import CLIENT_SECRET, ENDPOINT, REFRESH_TOKEN, FakeClock, LwaStub, api_calls, raw_server

ORDER_ID = "111-2223334-4445556"
SEARCH_URL = f"{ENDPOINT}/orders/2026-01-01/orders"
GET_URL = f"{ENDPOINT}/orders/2026-01-01/orders/{ORDER_ID}"
CONFIRM_URL = f"{ENDPOINT}/orders/v0/orders/{ORDER_ID}/shipmentConfirmation"
T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=timezone.utc)


def raw_order(order_id: str = ORDER_ID) -> dict:
    return {
        "orderId": order_id,
        "createdTime": "2026-03-01T07:00:00Z",
        "lastUpdatedTime": "2026-03-01T07:30:00Z",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
        "recipient": {
            "deliveryAddress": {
                "name": "Zhang San",
                "addressLine1": "1 Secret Street",
                "city": "Springfield",
                "countryCode": "US",
            }
        },
        "orderItems": [
            {"orderItemId": "90000000000001", "quantityOrdered": 1, "product": {"sellerSku": "SKU-1"}}
        ],
    }


def confirm_kwargs(**overrides) -> dict:
    kw = dict(
        marketplace_id="ATVPDKIKX0DER",
        package_reference_id="1",
        carrier_code="Yun Express",
        tracking_number="YT2412345678901234",
        ship_date=T0,
        items=[("90000000000001", 1)],
    )
    kw.update(overrides)
    return kw


def refused() -> requests.ConnectionError:
    """What requests raises when the TCP connection is refused (request never sent)."""
    reason = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"
    )  # type: ignore[arg-type]
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/x", reason))  # type: ignore[arg-type]


def reset() -> requests.ConnectionError:
    """What requests raises when the server resets the connection after receiving the request."""
    return requests.ConnectionError(
        urllib3.exceptions.ProtocolError(
            "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")
        )
    )


def query(call: responses.Call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


# -- requests on the wire ---------------------------------------------------------------------------


def test_headers_and_token(rsps, make_client) -> None:
    rsps.add(responses.GET, GET_URL, json={"order": raw_order()}, headers={"x-amzn-RequestId": "rid-1"})
    client = make_client()
    assert client.get_order(ORDER_ID)["orderId"] == ORDER_ID
    (call,) = api_calls(rsps)
    headers = call.request.headers
    assert headers["x-amz-access-token"] == "Atza|token-1"
    assert headers["user-agent"] == f"mfn-connector/{__version__}"
    assert headers["content-type"] == "application/json"
    assert query(call) == {"includedData": ["FULFILLMENT,PACKAGES"]}


def test_get_order_is_none_when_amazon_does_not_know_it(rsps, make_client) -> None:
    rsps.add(responses.GET, GET_URL, status=404, json={"errors": [{"code": "NotFound", "message": "no"}]})
    rsps.add(responses.GET, GET_URL, status=200, json={})
    client = make_client()
    assert client.get_order(ORDER_ID) is None
    assert client.get_order(ORDER_ID) is None
    assert len(api_calls(rsps)) == 2  # 404 is not retried


def test_order_id_is_path_quoted(rsps, make_client) -> None:
    rsps.add(responses.GET, f"{ENDPOINT}/orders/2026-01-01/orders/a%2Fb%3F", json={"order": raw_order()})
    make_client().get_order("a/b?", included_data=())
    assert urlsplit(api_calls(rsps)[0].request.url).query == ""


def test_confirm_shipment_body_and_204(rsps, make_client) -> None:
    rsps.add(responses.POST, CONFIRM_URL, status=204)
    ship = datetime(2026, 3, 1, 16, 30, 5, 123456, tzinfo=timezone(timedelta(hours=8)))
    result = make_client().confirm_shipment(
        ORDER_ID,
        **confirm_kwargs(
            ship_date=ship,
            items=[("90000000000001", 2), ("90000000000002", 1)],
            shipping_method="Standard",
            carrier_name="ignored for a listed code",
            transparency_codes={"90000000000002": ["AZ:ABC123"]},
        ),
    )
    assert result is None
    (call,) = api_calls(rsps)
    assert json.loads(call.request.body) == {
        "marketplaceId": "ATVPDKIKX0DER",
        "packageDetail": {
            "packageReferenceId": "1",
            "carrierCode": "Yun Express",
            "shippingMethod": "Standard",
            "trackingNumber": "YT2412345678901234",
            "shipDate": "2026-03-01T08:30:05.123Z",
            "orderItems": [
                {"orderItemId": "90000000000001", "quantity": 2},
                {"orderItemId": "90000000000002", "quantity": 1, "transparencyCodes": ["AZ:ABC123"]},
            ],
        },
    }


def test_confirm_shipment_other_carrier_needs_and_sends_carrier_name(rsps, make_client) -> None:
    rsps.add(responses.POST, CONFIRM_URL, status=204)
    client = make_client()
    with pytest.raises(ValueError, match="carrierName is required"):
        client.confirm_shipment(ORDER_ID, **confirm_kwargs(carrier_code="Other"))
    client.confirm_shipment(ORDER_ID, **confirm_kwargs(carrier_code="Other", carrier_name="4PX"))
    body = json.loads(api_calls(rsps)[0].request.body)
    assert body["packageDetail"]["carrierCode"] == "Other"
    assert body["packageDetail"]["carrierName"] == "4PX"


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"package_reference_id": "1a"}, "packageReferenceId must be a positive numeric string"),
        ({"package_reference_id": 1}, "packageReferenceId must be a positive numeric string"),
        ({"package_reference_id": "0"}, "packageReferenceId must be a positive numeric string"),
        (
            {"package_reference_id": "١"},
            "packageReferenceId must be a positive numeric string",
        ),  # Arabic-Indic 1
        ({"package_reference_id": ""}, "packageReferenceId"),
        ({"ship_date": datetime(2026, 3, 1, 8, 0)}, "timezone-aware"),
        ({"items": []}, "no order items"),
        ({"items": [("90000000000001", 0)]}, "positive integer"),
        ({"items": [("90000000000001", 1), ("90000000000001", 1)]}, "listed twice"),
        ({"tracking_number": " "}, "trackingNumber is empty"),
        ({"carrier_code": ""}, "carrierCode is empty"),
        ({"transparency_codes": {"other-item": ["x"]}}, "not in this package"),
    ],
)
def test_confirm_shipment_refuses_requests_amazon_would_reject(rsps, make_client, overrides, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_client().confirm_shipment(ORDER_ID, **confirm_kwargs(**overrides))
    assert api_calls(rsps) == []


def test_confirm_shipment_refuses_a_string_ship_date(rsps, make_client) -> None:
    with pytest.raises(TypeError):
        make_client().confirm_shipment(ORDER_ID, **confirm_kwargs(ship_date="02/21/2022"))


# -- searchOrders and pagination ----------------------------------------------------------------------


def test_search_orders_sends_the_filters_and_follows_pagination_with_the_same_params(
    rsps, make_client
) -> None:
    rsps.add(
        responses.GET,
        SEARCH_URL,
        json={
            "orders": [raw_order("111-0000000-0000001"), raw_order("111-0000000-0000002")],
            "pagination": {"nextToken": "tok-2"},
        },
    )
    rsps.add(
        responses.GET,
        SEARCH_URL,
        json={"orders": [raw_order("111-0000000-0000003")], "pagination": {"nextToken": "tok-3"}},
    )
    rsps.add(responses.GET, SEARCH_URL, json={"orders": [], "lastUpdatedBefore": "2026-03-01T09:58:00Z"})
    search = make_client().search_orders(
        marketplace_ids=["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"],
        last_updated_after=T0.replace(microsecond=987654),
        last_updated_before=T0 + timedelta(hours=2),
    )
    assert search.last_updated_before is None and not search.exhausted
    ids = [o["orderId"] for o in search]
    assert ids == ["111-0000000-0000001", "111-0000000-0000002", "111-0000000-0000003"]
    assert search.exhausted and search.pages == 3
    assert search.last_updated_before == datetime(2026, 3, 1, 9, 58, tzinfo=timezone.utc)
    calls = api_calls(rsps)
    first = query(calls[0])
    assert first == {
        "marketplaceIds": ["ATVPDKIKX0DER,A2EUQ1WTGCTBG2"],
        "lastUpdatedAfter": ["2026-03-01T08:00:00Z"],
        "lastUpdatedBefore": ["2026-03-01T10:00:00Z"],
        "fulfilledBy": ["MERCHANT"],
        "fulfillmentStatuses": ["UNSHIPPED,PARTIALLY_SHIPPED"],
        "includedData": ["RECIPIENT,FULFILLMENT,PROCEEDS,PACKAGES"],
        "maxResultsPerPage": ["100"],
    }
    assert query(calls[1]) == {**first, "paginationToken": ["tok-2"]}
    assert query(calls[2]) == {**first, "paginationToken": ["tok-3"]}


def test_search_orders_pages_yields_raw_pages_and_can_resume(rsps, make_client) -> None:
    rsps.add(
        responses.GET, SEARCH_URL, json={"orders": [raw_order()], "createdBefore": "2026-03-01T09:00:00Z"}
    )
    pages = list(
        make_client().search_orders_pages(
            marketplace_ids=["ATVPDKIKX0DER"], created_after=T0, pagination_token="resume-me", page_size=10
        )
    )
    assert len(pages) == 1 and pages[0]["createdBefore"] == "2026-03-01T09:00:00Z"
    q = query(api_calls(rsps)[0])
    assert q["createdAfter"] == ["2026-03-01T08:00:00Z"] and "lastUpdatedAfter" not in q
    assert q["paginationToken"] == ["resume-me"] and q["maxResultsPerPage"] == ["10"]


def test_a_repeated_pagination_token_fails_instead_of_looping(rsps, make_client) -> None:
    for _ in range(3):
        rsps.add(
            responses.GET, SEARCH_URL, json={"orders": [raw_order()], "pagination": {"nextToken": "same"}}
        )
    search = make_client().search_orders(marketplace_ids=["ATVPDKIKX0DER"], last_updated_after=T0)
    with pytest.raises(TransientError, match="already returned"):
        list(search)
    assert not search.exhausted
    assert len(api_calls(rsps)) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"last_updated_after": datetime(2026, 3, 1)}, "timezone-aware"),
        ({}, "exactly one"),
        ({"last_updated_after": T0, "created_after": T0}, "exactly one"),
        ({"last_updated_after": T0, "last_updated_before": T0 - timedelta(seconds=5)}, "earlier"),
        ({"last_updated_after": T0, "page_size": 0}, "page_size"),
        ({"last_updated_after": T0, "marketplace_ids": []}, "1 to 50"),
        ({"last_updated_after": T0, "marketplace_ids": ["A"] * 51}, "1 to 50"),
        ({"last_updated_after": T0, "statuses": ["UNSHIPPED,SHIPPED"]}, "without commas"),
    ],
)
def test_search_orders_validates_before_any_request(rsps, make_client, kwargs, match) -> None:
    kwargs = {"marketplace_ids": ["ATVPDKIKX0DER"], **kwargs}
    with pytest.raises(ValueError, match=match):
        make_client().search_orders(**kwargs)
    assert api_calls(rsps) == []


# -- throttling ----------------------------------------------------------------------------------------

QUOTA_EXCEEDED = {
    "errors": [
        {
            "code": "QuotaExceeded",
            "message": "You exceeded your quota for the requested resource.",
            "details": "",
        }
    ]
}


def test_429_empties_the_bucket_and_the_same_call_waits_for_the_next_token(rsps, make_client,
                                                                            clock: FakeClock) -> None:
    rsps.add(responses.GET, GET_URL, status=429, json=QUOTA_EXCEEDED)
    rsps.add(responses.GET, GET_URL, status=429, json=QUOTA_EXCEEDED)
    rsps.add(responses.GET, GET_URL, json={"order": raw_order()})
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, headroom=0)
    start = clock.now
    client = make_client(limiter=limiter, backoff_base=1.0, backoff_max=30)
    assert client.get_order(ORDER_ID)["orderId"] == ORDER_ID
    assert len(api_calls(rsps)) == 3
    # after the first 429 the bucket was emptied although 29 tokens were left: the call waited
    # for Amazon's next token (2 s at 0.5/s); a second 429 adds a back-off (1 s) to that
    assert clock.sleeps == [pytest.approx(2.0), pytest.approx(2.0 + 1.0)]
    assert clock.now - start == pytest.approx(5.0)
    assert limiter.bucket("acme-eu", "getOrder").available < 1


def test_a_throttled_call_goes_before_the_calls_waiting_behind_it(clock: FakeClock) -> None:
    """The slot is not lost: a call sent again after a 429 takes the next token, however many
    callers were already waiting for it."""
    # real time, 500 ms per token: on a loaded machine the re-send below may come tens of ms late,
    # and with a faster bucket a waiting caller took the token that refilled meanwhile
    bucket = TokenBucket(2.0, 1)
    bucket.acquire()
    order: list[str] = []
    waiting = [threading.Thread(target=lambda n=n: (bucket.acquire(), order.append(f"waiting-{n}")))
               for n in range(3)]
    for t in waiting:
        t.start()
    time.sleep(0.01)  # they wait for the next token
    bucket.penalize(0)
    bucket.acquire(front=True)
    order.append("throttled")
    for t in waiting:
        t.join(timeout=10)
    assert order[0] == "throttled" and len(order) == 4


def test_429_on_confirm_shipment_is_retried_because_it_was_not_processed(rsps, make_client) -> None:
    rsps.add(responses.POST, CONFIRM_URL, status=429, json=QUOTA_EXCEEDED)
    rsps.add(responses.POST, CONFIRM_URL, status=204)
    assert make_client().confirm_shipment(ORDER_ID, **confirm_kwargs()) is None
    assert len(api_calls(rsps)) == 2


def test_429_gives_up_after_max_attempts(rsps, make_client) -> None:
    rsps.add(
        responses.POST, CONFIRM_URL, status=429, json=QUOTA_EXCEEDED, headers={"x-amzn-RequestId": "r429"}
    )
    with pytest.raises(ThrottledError) as info:
        make_client(max_attempts=3).confirm_shipment(ORDER_ID, **confirm_kwargs())
    assert len(api_calls(rsps)) == 3
    assert info.value.status == 429 and info.value.code == "QuotaExceeded" and info.value.request_id == "r429"
    assert info.value.ambiguous is False


def test_rate_limit_header_sets_the_rate_unless_configured(rsps, make_client, clock: FakeClock) -> None:
    rsps.add(responses.GET, GET_URL, json={"order": raw_order()}, headers={"x-amzn-RateLimit-Limit": "1.5"})
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    make_client(limiter=limiter).get_order(ORDER_ID)
    bucket = limiter.bucket("acme-eu", "getOrder")
    assert bucket.rate == pytest.approx(1.5)  # Amazon raised this seller's plan: paced to it
    assert limiter.quota("acme-eu", "getOrder") == (1.5, 30)  # the burst is not in the header
    assert limiter.bucket("other", "getOrder").rate == pytest.approx(0.5)  # per account
    configured = RateLimiter(overrides={"getOrder": {"rate": 0.25}}, clock=clock, sleep=clock.sleep)
    make_client(limiter=configured).get_order(ORDER_ID)
    assert configured.bucket("acme-eu", "getOrder").rate == pytest.approx(0.25)  # configuration wins


@pytest.mark.parametrize("value", ["fast", "0", "-2", "nan", "inf"])
def test_an_unusable_rate_limit_header_changes_nothing(rsps, make_client, clock: FakeClock, value) -> None:
    rsps.add(responses.GET, GET_URL, json={"order": raw_order()}, headers={"x-amzn-RateLimit-Limit": value})
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    make_client(limiter=limiter).get_order(ORDER_ID)
    assert limiter.bucket("acme-eu", "getOrder").rate == pytest.approx(0.5)


def test_a_stop_request_ends_the_wait_for_a_token_and_sends_nothing(rsps, make_client) -> None:
    stop = threading.Event()
    limiter = RateLimiter(overrides={"getOrder": {"rate": 0.001, "burst": 1}}, stop=stop)
    client = make_client(limiter=limiter)
    rsps.add(responses.GET, GET_URL, json={"order": raw_order()})
    client.get_order(ORDER_ID)  # the only token
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(QuotaWaitInterrupted):
        client.get_order(ORDER_ID)  # the next token is 1000 s away
    assert time.monotonic() - started < 2
    assert len(api_calls(rsps)) == 1
    assert not isinstance(QuotaWaitInterrupted(), SpApiError)  # never counted as a failed call


def test_a_stop_request_ends_a_retry_back_off(rsps, make_client, monkeypatch) -> None:
    # The back-off is jittered down from 60 s: pinned to its longest, a draw under the stop's
    # 0.2 s (1 in 300) cannot send the retry before the stop request comes.
    monkeypatch.setattr("tenacity.wait.random.uniform", lambda low, high: high)
    stop = threading.Event()
    rsps.add(responses.GET, GET_URL, status=503, json={"errors": [{"code": "Busy", "message": "later"}]})
    client = make_client(limiter=RateLimiter(stop=stop), backoff_base=60, backoff_max=60)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(QuotaWaitInterrupted):
        client.get_order(ORDER_ID)
    assert time.monotonic() - started < 2
    assert len(api_calls(rsps)) == 1


def test_buckets_are_per_account(rsps, make_client, clock: FakeClock) -> None:
    rsps.add(responses.GET, GET_URL, status=429, json=QUOTA_EXCEEDED)
    rsps.add(responses.GET, GET_URL, json={"order": raw_order()})
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    make_client(account="a", limiter=limiter).get_order(ORDER_ID)
    assert limiter.bucket("a", "getOrder").available < 1
    assert limiter.bucket("b", "getOrder").available == 30
    assert limiter.bucket("a", "searchOrders").available == 20


# -- transient failures: reads retry, confirmShipment is ambiguous ---------------------------------------

TRANSIENT_ANSWERS: dict[str, Callable[[], dict]] = {
    "500": lambda: {"status": 500, "json": {"errors": [{"code": "InternalFailure", "message": "boom"}]}},
    "503": lambda: {"status": 503, "body": "<html>Service Unavailable</html>"},
    "read-timeout": lambda: {"body": requests.ReadTimeout("read timed out")},
    "reset": lambda: {"body": reset()},
    "malformed-json": lambda: {"status": 200, "body": '{"order": {"orderId": "111-'},
    "incomplete-body": lambda: {"body": requests.exceptions.ChunkedEncodingError("incomplete read")},
}


@pytest.mark.parametrize("kind", sorted(TRANSIENT_ANSWERS))
def test_get_order_retries_transient_failures(rsps, make_client, kind: str) -> None:
    rsps.add(responses.GET, GET_URL, **TRANSIENT_ANSWERS[kind]())
    rsps.add(responses.GET, GET_URL, json={"order": raw_order()})
    assert make_client().get_order(ORDER_ID)["orderId"] == ORDER_ID
    assert len(api_calls(rsps)) == 2


@pytest.mark.parametrize("kind", ["500", "read-timeout", "malformed-json"])
def test_search_orders_retries_transient_failures_mid_pagination(rsps, make_client, kind: str) -> None:
    rsps.add(
        responses.GET,
        SEARCH_URL,
        json={"orders": [raw_order("111-0000000-0000001")], "pagination": {"nextToken": "tok-2"}},
    )
    rsps.add(responses.GET, SEARCH_URL, **TRANSIENT_ANSWERS[kind]())
    rsps.add(responses.GET, SEARCH_URL, json={"orders": [raw_order("111-0000000-0000002")]})
    orders = list(make_client().search_orders(marketplace_ids=["ATVPDKIKX0DER"], last_updated_after=T0))
    assert [o["orderId"] for o in orders] == ["111-0000000-0000001", "111-0000000-0000002"]
    calls = api_calls(rsps)
    assert len(calls) == 3
    assert query(calls[1]) == query(calls[2])  # the retry repeats the same page request


def test_reads_give_up_after_max_attempts(rsps, make_client) -> None:
    rsps.add(
        responses.GET, GET_URL, status=503, json={"errors": [{"code": "ServiceUnavailable", "message": "x"}]}
    )
    with pytest.raises(TransientError) as info:
        make_client(max_attempts=4).get_order(ORDER_ID)
    assert info.value.ambiguous is False and info.value.status == 503
    assert len(api_calls(rsps)) == 4


@pytest.mark.parametrize("kind", sorted(TRANSIENT_ANSWERS))
def test_confirm_shipment_is_not_retried_when_the_outcome_is_unknown(rsps, make_client, kind: str) -> None:
    rsps.add(responses.POST, CONFIRM_URL, **TRANSIENT_ANSWERS[kind]())
    rsps.add(responses.POST, CONFIRM_URL, status=204)
    with pytest.raises(TransientError) as info:
        make_client().confirm_shipment(ORDER_ID, **confirm_kwargs())
    assert info.value.ambiguous is True
    assert info.value.operation == "confirmShipment"
    assert len(api_calls(rsps)) == 1


@pytest.mark.parametrize(
    "failure",
    [refused, lambda: requests.ConnectTimeout("connect timed out")],
    ids=["connection-refused", "connect-timeout"],
)
def test_confirm_shipment_is_retried_when_the_request_never_left(rsps, make_client, failure) -> None:
    rsps.add(responses.POST, CONFIRM_URL, body=failure())
    rsps.add(responses.POST, CONFIRM_URL, status=204)
    assert make_client().confirm_shipment(ORDER_ID, **confirm_kwargs()) is None
    assert len(api_calls(rsps)) == 2


def test_connection_refused_every_time_is_transient_but_not_ambiguous(rsps, make_client) -> None:
    rsps.add(responses.POST, CONFIRM_URL, body=refused())
    with pytest.raises(TransientError) as info:
        make_client(max_attempts=3).confirm_shipment(ORDER_ID, **confirm_kwargs())
    assert info.value.ambiguous is False
    assert len(api_calls(rsps)) == 3


# -- 4xx --------------------------------------------------------------------------------------------


def test_400_is_invalid_input_with_amazons_message(rsps, make_client) -> None:
    rsps.add(
        responses.POST,
        CONFIRM_URL,
        status=400,
        headers={"x-amzn-RequestId": "rid-400"},
        json={
            "errors": [
                {
                    "code": "InvalidInput",
                    "message": "The tracking ID YT1 does not match the expected format for the carrier",
                    "details": "",
                }
            ]
        },
    )
    with pytest.raises(InvalidInputError) as info:
        make_client().confirm_shipment(ORDER_ID, **confirm_kwargs())
    error = info.value
    assert not isinstance(error, AlreadyShippedError)
    assert error.message == "The tracking ID YT1 does not match the expected format for the carrier"
    assert (error.status, error.code, error.request_id, error.operation) == (
        400,
        "InvalidInput",
        "rid-400",
        "confirmShipment",
    )
    assert "rid-400" in str(error) and "does not match" in str(error)
    assert len(api_calls(rsps)) == 1


@pytest.mark.parametrize(
    "error",
    [
        {"code": "PackageToUpdateNotFound", "message": "Package to update not found"},
        {"code": "InvalidInput", "message": "The order has already been shipped."},
        {"code": "InvalidInput", "message": "Order already fulfilled"},
        {
            "code": "Invalid Input",
            "message": "Invalid Input",
            "details": "Order 111-2223334-4445556 is already shipped",
        },
        {"code": "ORDER_ALREADY_SHIPPED", "message": "Cannot confirm"},
        {"code": "InvalidInput", "message": "This order has already been fully shipped"},
        {"code": "InvalidInput", "message": "package_to_update_not_found"},
    ],
)
def test_already_shipped_variants(rsps, make_client, error: dict) -> None:
    rsps.add(responses.POST, CONFIRM_URL, status=400, json={"errors": [error]})
    with pytest.raises(AlreadyShippedError) as info:
        make_client().confirm_shipment(ORDER_ID, **confirm_kwargs())
    assert isinstance(info.value, InvalidInputError)


@pytest.mark.parametrize(
    "message",
    [
        "The order was cancelled",
        "Invalid carrier code",
        "Ship date in future",
        "Package reference id must be numeric",
    ],
)
def test_other_400s_are_not_already_shipped(rsps, make_client, message: str) -> None:
    rsps.add(
        responses.POST,
        CONFIRM_URL,
        status=400,
        json={"errors": [{"code": "InvalidInput", "message": message}]},
    )
    with pytest.raises(InvalidInputError) as info:
        make_client().confirm_shipment(ORDER_ID, **confirm_kwargs())
    assert type(info.value) is InvalidInputError


def test_404_on_confirm_is_not_found(rsps, make_client) -> None:
    rsps.add(
        responses.POST,
        CONFIRM_URL,
        status=404,
        json={"errors": [{"code": "NotFound", "message": "no order"}]},
    )
    with pytest.raises(NotFoundError):
        make_client().confirm_shipment(ORDER_ID, **confirm_kwargs())


def test_other_4xx_is_a_plain_sp_api_error_and_not_retried(rsps, make_client) -> None:
    rsps.add(
        responses.POST, CONFIRM_URL, status=415, json={"errors": [{"code": "Unsupported", "message": "x"}]}
    )
    with pytest.raises(SpApiError) as info:
        make_client().confirm_shipment(ORDER_ID, **confirm_kwargs())
    assert type(info.value) is SpApiError and info.value.status == 415
    assert len(api_calls(rsps)) == 1


# -- auth: one refresh-and-retry ---------------------------------------------------------------------

EXPIRED_403 = {
    "errors": [
        {
            "code": "Unauthorized",
            "message": "Access to requested resource is denied.",
            "details": "The access token you provided has expired.",
        }
    ]
}
DENIED_403 = {
    "errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.", "details": ""}]
}


@pytest.mark.parametrize(
    "status, body",
    [(401, {"errors": [{"code": "Unauthorized", "message": "x"}]}), (403, EXPIRED_403)],
    ids=["401", "403-expired"],
)
def test_expired_token_is_refreshed_and_the_call_retried_once(rsps, make_client, lwa: LwaStub, status, body):
    rsps.add(responses.POST, CONFIRM_URL, status=status, json=body)
    rsps.add(responses.POST, CONFIRM_URL, status=204)
    assert make_client().confirm_shipment(ORDER_ID, **confirm_kwargs()) is None
    calls = api_calls(rsps)
    assert [c.request.headers["x-amz-access-token"] for c in calls] == ["Atza|token-1", "Atza|token-2"]
    assert len(lwa.issued) == 2


def test_a_second_401_is_an_auth_error_not_a_loop(rsps, make_client, lwa: LwaStub) -> None:
    rsps.add(responses.GET, GET_URL, status=401, json={"errors": [{"code": "Unauthorized", "message": "no"}]})
    with pytest.raises(AuthError) as info:
        make_client(max_attempts=5).get_order(ORDER_ID)
    assert info.value.status == 401
    assert len(api_calls(rsps)) == 2
    assert len(lwa.issued) == 2


def test_403_without_expiry_is_an_auth_error_at_once(rsps, make_client, lwa: LwaStub) -> None:
    rsps.add(responses.GET, GET_URL, status=403, json=DENIED_403)
    with pytest.raises(AuthError, match="denied"):
        make_client().get_order(ORDER_ID)
    assert len(api_calls(rsps)) == 1
    assert len(lwa.issued) == 1


def test_refresh_after_429_still_counts_as_the_single_auth_retry(rsps, make_client, lwa: LwaStub) -> None:
    rsps.add(responses.GET, GET_URL, status=401, json={})
    rsps.add(responses.GET, GET_URL, status=429, json=QUOTA_EXCEEDED)
    rsps.add(responses.GET, GET_URL, status=401, json={})
    rsps.add(responses.GET, GET_URL, json={"order": raw_order()})
    with pytest.raises(AuthError):
        make_client().get_order(ORDER_ID)
    assert len(api_calls(rsps)) == 3


def test_lwa_failure_is_not_multiplied_by_client_retries(rsps, make_client) -> None:
    rsps.replace(responses.POST, "https://api.amazon.com/auth/o2/token", status=503, body="down")
    with pytest.raises(TransientError) as info:
        make_client().get_order(ORDER_ID)
    assert info.value.operation == "lwaToken"
    assert len([c for c in rsps.calls if "auth/o2/token" in c.request.url]) == 3  # the provider's attempts
    assert api_calls(rsps) == []



class Watch:
    """A :class:`~connector.amazon.client.LoginWatch` recording what it hears."""

    def __init__(self, fail: bool = False) -> None:
        self.heard: list[tuple] = []
        self.fail = fail

    def refused(self, account, error):
        self.heard.append(("refused", account, error.code))
        if self.fail:
            raise RuntimeError("the ledger is away")

    def accepted(self, account):
        self.heard.append(("accepted", account))
        if self.fail:
            raise RuntimeError("the ledger is away")


@pytest.mark.parametrize("status, error", [(400, "invalid_grant"), (401, "invalid_client")])
def test_the_login_watch_hears_a_refused_login_and_the_next_call_that_works(rsps, make_client, status,
                                                                             error, daemon_clock) -> None:
    """The daemon's amazon_credentials_refused alert hangs on this: every caller's call reports a
    login LWA refused, and a call that works after it (engine/logins.py)."""
    rsps.replace(responses.POST, "https://api.amazon.com/auth/o2/token", status=status,
                 json={"error": error, "error_description": "The refresh token is revoked"})
    client = make_client(account="acme-eu")
    client.login_watch = watch = Watch()
    for _ in range(2):  # the second: the remembered refusal, LWA not asked again
        with pytest.raises(AuthError):
            client.get_order(ORDER_ID)
    assert watch.heard == [("refused", "acme-eu", error)] * 2
    rsps.replace(responses.POST, "https://api.amazon.com/auth/o2/token",
                 json={"access_token": "Atza|fixed", "expires_in": 3600})
    rsps.add(responses.GET, GET_URL, json={"order": raw_order()})
    daemon_clock.advance(3600)  # the refusal's back-off is over (the token provider's clock)
    assert client.get_order(ORDER_ID) is not None
    assert watch.heard[2:] == [("accepted", "acme-eu")]


def test_the_login_watch_hears_no_refusal_of_the_call_itself_nor_a_transient_login(rsps, make_client,
                                                                                    lwa) -> None:
    rsps.add(responses.GET, GET_URL, status=403, json=DENIED_403)  # the login worked; a role is missing
    client = make_client()
    client.login_watch = watch = Watch()
    with pytest.raises(AuthError):
        client.get_order(ORDER_ID)
    rsps.replace(responses.POST, "https://api.amazon.com/auth/o2/token", status=503, body="down")
    client.tokens.invalidate()
    with pytest.raises(TransientError):
        client.get_order(ORDER_ID)
    assert watch.heard == []


def test_a_login_watch_that_fails_never_fails_the_call(rsps, make_client, lwa, caplog) -> None:
    rsps.add(responses.POST, CONFIRM_URL, status=204)
    client = make_client()
    client.login_watch = Watch(fail=True)
    assert client.confirm_shipment(ORDER_ID, **confirm_kwargs()) is None  # landed: not reported failed
    assert "the login watch failed" in caplog.text


# -- logging ---------------------------------------------------------------------------------------


def test_every_request_is_logged_with_request_id_and_no_secrets_or_pii(rsps, make_client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.add(
        responses.GET,
        GET_URL,
        status=500,
        json={"errors": [{"code": "InternalFailure", "message": "x"}]},
        headers={"x-amzn-RequestId": "req-aaa"},
    )
    rsps.add(responses.GET, GET_URL, json={"order": raw_order()}, headers={"x-amzn-RequestId": "req-bbb"})
    rsps.add(responses.POST, CONFIRM_URL, status=204, headers={"x-amzn-RequestId": "req-ccc"})
    client = make_client()
    client.get_order(ORDER_ID)
    client.confirm_shipment(ORDER_ID, **confirm_kwargs())
    lines = [
        r
        for r in caplog.records
        if r.name == "connector.amazon" and r.levelno == logging.INFO and "spapi account=" in r.getMessage()
    ]
    assert [(r.spapi_operation, r.http_status, r.request_id, r.attempt) for r in lines] == [
        ("getOrder", "500", "req-aaa", 1),
        ("getOrder", "200", "req-bbb", 2),
        ("confirmShipment", "204", "req-ccc", 1),
    ]
    assert all(isinstance(r.duration_ms, int) for r in lines)
    assert "request_id=req-bbb" in lines[1].getMessage() and "attempt=2" in lines[1].getMessage()
    text = caplog.text
    for forbidden in [
        "Atza|token-1",
        REFRESH_TOKEN,
        CLIENT_SECRET,
        "Zhang San",
        "Secret Street",
        "YT2412345678901234",
        "packageDetail",
    ]:
        assert forbidden not in text


def test_network_failures_are_logged_too(rsps, make_client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="connector.amazon")
    rsps.add(responses.POST, CONFIRM_URL, body=requests.ReadTimeout("slow"))
    with pytest.raises(TransientError):
        make_client().confirm_shipment(ORDER_ID, **confirm_kwargs())
    (line,) = [r for r in caplog.records if "spapi account=" in r.getMessage()]
    assert line.http_status == "read-timeout" and line.spapi_operation == "confirmShipment"


# -- over real sockets: is "never sent" told apart from "sent, no answer"? ----------------------------


class StaticTokens:
    def token(self) -> str:
        return "Atza|static"

    def invalidate(self, token: str | None = None) -> None:
        pass


@pytest.fixture
def resetting_server() -> Iterator[tuple[str, list[int]]]:
    """Reads each request, then resets the connection (the request took effect, no answer)."""
    def reset(conn: socket.socket, _n: int) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with raw_server(reset) as served:
        yield served


def real_client(endpoint: str, clock: FakeClock, **kw) -> SpApiClient:
    return SpApiClient(
        account="acme",
        endpoint=endpoint,
        tokens=StaticTokens(),  # type: ignore[arg-type]
        limiter=RateLimiter(clock=clock, sleep=clock.sleep),
        timeout=(1, 2),
        backoff_base=0.001,
        backoff_max=0.002,
        **kw,
    )


def test_real_connection_refused_is_retried_and_not_ambiguous(clock: FakeClock) -> None:
    # Bound, never listening: connections are refused, and no other test can take the port meanwhile.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(TransientError) as info:
            real_client(f"http://127.0.0.1:{port}", clock, max_attempts=2).confirm_shipment(
                ORDER_ID, **confirm_kwargs()
            )
    assert info.value.ambiguous is False


def test_real_connection_reset_on_confirm_is_ambiguous_and_sent_once(
    resetting_server, clock: FakeClock
) -> None:
    url, hits = resetting_server
    with pytest.raises(TransientError) as info:
        real_client(url, clock).confirm_shipment(ORDER_ID, **confirm_kwargs())
    assert info.value.ambiguous is True
    assert len(hits) == 1


def test_real_connection_reset_on_a_read_is_retried(resetting_server, clock: FakeClock) -> None:
    url, hits = resetting_server
    with pytest.raises(TransientError) as info:
        real_client(url, clock, max_attempts=3).get_order(ORDER_ID)
    assert info.value.ambiguous is False
    assert len(hits) == 3


# -- the public call: any SP-API operation, with the same policy ----------------------------------

WIDGETS_URL = f"{ENDPOINT}/widgets/v1/widgets"


def widget_client(make_client: Callable[..., SpApiClient], clock: FakeClock) -> SpApiClient:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    limiter.add_defaults({"listWidgets": (5.0, 10), "createWidget": (1.0, 5)})
    return make_client(limiter=limiter)


def test_call_needs_a_quota_for_the_operation(rsps, make_client) -> None:
    with pytest.raises(KeyError, match="listWidgets"):
        make_client().call("listWidgets", "GET", "/widgets/v1/widgets", idempotent=True)
    assert api_calls(rsps) == []


def test_an_idempotent_call_is_retried_and_sends_its_headers(rsps, make_client, clock: FakeClock) -> None:
    rsps.add(responses.GET, WIDGETS_URL, status=503, json={"errors": [{"code": "Busy", "message": "later"}]})
    rsps.add(responses.GET, WIDGETS_URL, json={"widgets": []})
    client = widget_client(make_client, clock)
    body = client.call("listWidgets", "GET", "/widgets/v1/widgets", params={"size": "L"},
                       headers={"x-widget-business": "W1", "x-amz-access-token": "forged"}, idempotent=True)
    assert body == {"widgets": []}
    first, second = api_calls(rsps)
    assert parse_qs(urlsplit(second.request.url).query) == {"size": ["L"]}
    assert second.request.headers["x-widget-business"] == "W1"
    assert second.request.headers["x-amz-access-token"] != "forged"  # never replaces the token
    assert client.limiter.bucket("acme-eu", "listWidgets").rate == pytest.approx(5.0)


def test_a_call_that_is_not_idempotent_is_ambiguous_and_sent_once(rsps, make_client, clock) -> None:
    rsps.add(responses.POST, WIDGETS_URL, status=500, json={"errors": [{"code": "Boom", "message": "boom"}]})
    with pytest.raises(TransientError) as info:
        widget_client(make_client, clock).call("createWidget", "POST", "/widgets/v1/widgets", json={"n": 1})
    assert info.value.ambiguous is True and info.value.operation == "createWidget"
    assert len(api_calls(rsps)) == 1
    assert json.loads(api_calls(rsps)[0].request.body) == {"n": 1}


def test_an_empty_answer_is_fine_for_a_write_not_for_an_idempotent_call(rsps, make_client, clock) -> None:
    rsps.add(responses.POST, WIDGETS_URL, status=204)
    rsps.add(responses.GET, WIDGETS_URL, status=200, body=b"")
    client = widget_client(make_client, clock)
    assert client.call("createWidget", "POST", "/widgets/v1/widgets", json={}) is None
    with pytest.raises(TransientError) as info:
        client.call("listWidgets", "GET", "/widgets/v1/widgets", idempotent=True)
    assert info.value.ambiguous is False
