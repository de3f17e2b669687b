"""Replay Amazon's official static-sandbox pairs through the client.

The pairs (``x-amzn-api-sandbox.static`` in the vendored models) are read straight from the model
JSON. Each is served with ``responses`` behind a matcher that accepts a request only when it
carries every parameter of the pair with the pair's value (Amazon's static sandbox matches the
same way: the pair's parameters are the match keys; our client may add filters of its own, e.g.
``fulfilledBy=MERCHANT``). Then the client's handling of the canned answer is checked: 200 parses
into orders through ``order_from_api``, 400 raises InvalidInputError with Amazon's message, 204
returns None. Every request the typed API builds must also validate against the model
(``connector.sandbox.schemas.validate_request``).

Two pairs carry deliberately invalid requests (``createdAfter=TEST_CASE_400``, ``shipDate=
"02/21/2022"``) that the typed API refuses to build; those are replayed verbatim through
``SpApiClient.call`` (the same error handling), and the typed API is shown to refuse them.
One documented difference: the confirmShipment pair sends ``carrierName`` next to a listed
``carrierCode`` ("FedEx"); the client sends ``carrierName`` only with ``carrierCode == "Other"``,
so that one field is left out of the body comparison.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
import responses

import connector.sandbox
from connector.amazon.client import CONFIRM_SHIPMENT_PATH, SEARCH_ORDERS_PATH, SpApiClient
from connector.amazon.errors import InvalidInputError
from connector.amazon.mapping import order_from_api
from connector.amazon.sites import site_for_marketplace
from connector.model import Order, parse_iso
from connector.sandbox.schemas import validate_request

from .conftest import ENDPOINT, api_calls

MODELS = Path(connector.sandbox.__file__).resolve().parent / "spapi_models"


@dataclass(frozen=True)
class Pair:
    operation: str
    method: str
    path: str  # template, e.g. /orders/2026-01-01/orders/{orderId}
    status: int
    index: int
    path_params: dict[str, str]
    query: dict[str, Any]  # name -> value as in the model (list or scalar)
    body: Any  # the request body, or None
    response: Any

    @property
    def id(self) -> str:
        return f"{self.operation}-{self.status}-{self.index}"


def load_pairs(model_file: str, operation_id: str) -> list[Pair]:
    model = json.loads((MODELS / model_file).read_text(encoding="utf-8"))
    pairs: list[Pair] = []
    for path, item in model["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or op.get("operationId") != operation_id:
                continue
            specs = {p["name"]: p for p in [*item.get("parameters", []), *op.get("parameters", [])]}
            for status, declared in op["responses"].items():
                for index, entry in enumerate(declared.get("x-amzn-api-sandbox", {}).get("static", [])):
                    path_params: dict[str, str] = {}
                    query: dict[str, Any] = {}
                    body = None
                    for name, spec in entry["request"]["parameters"].items():
                        location = specs.get(name, {}).get("in", "body" if name == "body" else "query")
                        if location == "path":
                            path_params[name] = str(spec["value"])
                        elif location == "body":
                            body = spec["value"]
                        else:
                            query[name] = spec["value"]
                    pairs.append(
                        Pair(
                            operation_id,
                            method.upper(),
                            path,
                            int(status),
                            index,
                            path_params,
                            query,
                            body,
                            entry.get("response"),
                        )
                    )
    return pairs


SEARCH_PAIRS = load_pairs("orders_2026-01-01.json", "searchOrders")
GET_PAIRS = load_pairs("orders_2026-01-01.json", "getOrder")
CONFIRM_PAIRS = load_pairs("ordersV0.json", "confirmShipment")


def test_the_models_hold_the_expected_pairs() -> None:
    assert sorted(p.status for p in SEARCH_PAIRS) == [200, 200, 200, 400]
    assert sorted(p.status for p in GET_PAIRS) == [200, 200, 200, 400]
    assert sorted(p.status for p in CONFIRM_PAIRS) == [204, 400]


# -- serving a pair ----------------------------------------------------------------------------------


def expected_body(pair: Pair) -> Any:
    body = copy.deepcopy(pair.body)
    if isinstance(body, dict) and body.get("packageDetail", {}).get("carrierCode") != "Other":
        body["packageDetail"].pop("carrierName", None)  # sent only with carrierCode "Other"
    return body


def pair_matcher(
    pair: Pair, *, with_body: bool = True
) -> Callable[[requests.PreparedRequest], tuple[bool, str]]:
    path = pair.path.format(**{k: quote(v, safe="") for k, v in pair.path_params.items()})

    def match(request: requests.PreparedRequest) -> tuple[bool, str]:
        url = urlsplit(request.url)
        if request.method != pair.method or url.path != path:
            return False, f"{request.method} {url.path} is not {pair.method} {path}"
        sent = parse_qs(url.query)
        for name, value in pair.query.items():
            want = [str(v) for v in (value if isinstance(value, list) else [value])]
            got = [part for v in sent.get(name, []) for part in v.split(",")]
            if got != want:
                return False, f"query {name}: sent {got}, the pair has {want}"
        if with_body and pair.body is not None:
            got_body = json.loads(request.body) if request.body else None
            if got_body not in (pair.body, expected_body(pair)):  # verbatim replay, or the typed API's
                return False, f"body {got_body} differs from the pair's {expected_body(pair)}"
        return True, ""

    return match


def serve(rsps: responses.RequestsMock, pair: Pair, **kw: Any) -> None:
    answer: dict[str, Any] = {"status": pair.status, "headers": {"x-amzn-RequestId": f"sandbox-{pair.id}"}}
    if pair.status == 204 or pair.response in (None, {}) and pair.status != 200:
        answer["body"] = ""
    else:
        answer["json"] = pair.response
    rsps.add(
        pair.method, re.compile(re.escape(ENDPOINT) + r"/.*"), match=[pair_matcher(pair, **kw)], **answer
    )


def assert_request_validates(call: responses.Call, operation: str, path_params: dict[str, str]) -> None:
    body = json.loads(call.request.body) if call.request.body else None
    problems = validate_request(
        operation, path_params=path_params, query=parse_qs(urlsplit(call.request.url).query), body=body
    )
    assert problems == [], f"{operation} request does not validate against the model: {problems}"


def assert_orders_parse(raw_orders: list[dict[str, Any]]) -> list[Order]:
    orders = [order_from_api(raw, account="sandbox") for raw in raw_orders]
    for raw, mapped in zip(raw_orders, orders, strict=True):
        assert mapped.order_id == raw["orderId"]
        assert mapped.site == site_for_marketplace(raw["salesChannel"]["marketplaceId"])
        assert [i.order_item_id for i in mapped.items] == [i["orderItemId"] for i in raw["orderItems"]]
        assert [i.sku for i in mapped.items] == [i["product"]["sellerSku"] for i in raw["orderItems"]]
        total = raw.get("proceeds", {}).get("grandTotal")
        if total:
            assert mapped.total is not None and mapped.total.amount == Decimal(total["amount"])
            assert mapped.total.currency == total["currencyCode"]
        address = raw.get("recipient", {}).get("deliveryAddress")
        if address:
            assert mapped.ship_to is not None and mapped.ship_to.city == address["city"]
    return orders


def is_time(value: Any) -> bool:
    try:
        parse_iso(str(value))
    except ValueError:
        return False
    return True


# -- searchOrders -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", SEARCH_PAIRS, ids=lambda p: p.id)
def test_search_orders_pair(rsps, make_client: Callable[..., SpApiClient], pair: Pair) -> None:
    serve(rsps, pair)
    client = make_client()
    q = pair.query
    if not is_time(q["createdAfter"]):  # the TEST_CASE_400 trigger: not a time, replay verbatim
        with pytest.raises(InvalidInputError) as info:
            client.call("searchOrders", "GET", SEARCH_ORDERS_PATH, params=q, idempotent=True)
        assert info.value.message == pair.response["errors"][0]["message"]
        assert info.value.code == pair.response["errors"][0]["code"]
        assert info.value.request_id == f"sandbox-{pair.id}"
        assert len(api_calls(rsps)) == 1
        return
    pages = client.search_orders_pages(
        marketplace_ids=q["marketplaceIds"],
        created_after=parse_iso(q["createdAfter"]),
        included_data=q["includedData"],
        pagination_token=q.get("paginationToken"),
    )
    page = next(pages)  # only the pair's page: its nextToken (if any) has no pair of its own
    (call,) = api_calls(rsps)
    assert_request_validates(call, "searchOrders", {})
    assert pair.status == 200
    assert [o["orderId"] for o in page["orders"]] == [o["orderId"] for o in pair.response["orders"]]
    assert page.get("pagination") == pair.response.get("pagination")
    assert_orders_parse(page["orders"])


def test_search_orders_pair_through_the_order_iterator(rsps, make_client) -> None:
    """The JP pair has a nextToken; the follow-up page must repeat the pair's filters."""
    pair = next(
        p for p in SEARCH_PAIRS if p.status == 200 and (p.response.get("pagination") or {}).get("nextToken")
    )
    serve(rsps, pair)
    follow_up = Pair(
        pair.operation,
        pair.method,
        pair.path,
        200,
        99,
        {},
        {**pair.query, "paginationToken": pair.response["pagination"]["nextToken"]},
        None,
        {"orders": [], "createdBefore": "2024-12-25T03:00:00Z"},
    )
    serve(rsps, follow_up)
    search = make_client().search_orders(
        marketplace_ids=pair.query["marketplaceIds"],
        created_after=parse_iso(pair.query["createdAfter"]),
        included_data=pair.query["includedData"],
    )
    orders = assert_orders_parse(list(search))
    assert [o.order_id for o in orders] == ["250-1234567-8901234"]
    assert search.exhausted and search.pages == 2
    calls = api_calls(rsps)
    for call in calls:
        assert_request_validates(call, "searchOrders", {})


# -- getOrder ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", GET_PAIRS, ids=lambda p: p.id)
def test_get_order_pair(rsps, make_client: Callable[..., SpApiClient], pair: Pair) -> None:
    serve(rsps, pair)
    order_id = pair.path_params["orderId"]
    included = pair.query.get("includedData", ())
    client = make_client()
    if pair.status == 400:
        with pytest.raises(InvalidInputError) as info:
            client.get_order(order_id, included_data=included)
        assert info.value.message == pair.response["errors"][0]["message"]
        assert info.value.operation == "getOrder"
    else:
        raw = client.get_order(order_id, included_data=included)
        assert raw == pair.response["order"]
        (order,) = assert_orders_parse([raw])
        assert order.order_id == order_id
    (call,) = api_calls(rsps)
    assert_request_validates(call, "getOrder", {"orderId": order_id})


# -- confirmShipment -----------------------------------------------------------------------------------


def confirm_kwargs(pair: Pair) -> dict[str, Any]:
    detail = pair.body["packageDetail"]
    return dict(
        marketplace_id=pair.body["marketplaceId"],
        package_reference_id=detail["packageReferenceId"],
        carrier_code=detail["carrierCode"],
        carrier_name=detail.get("carrierName"),
        shipping_method=detail.get("shippingMethod"),
        tracking_number=detail["trackingNumber"],
        ship_date=detail["shipDate"],
        items=[(i["orderItemId"], i["quantity"]) for i in detail["orderItems"]],
        ship_from_supply_source_id=detail.get("shipFromSupplySourceId"),
        transparency_codes={
            i["orderItemId"]: i["transparencyCodes"]
            for i in detail["orderItems"]
            if i.get("transparencyCodes")
        },
    )


@pytest.mark.parametrize("pair", CONFIRM_PAIRS, ids=lambda p: p.id)
def test_confirm_shipment_pair(rsps, make_client: Callable[..., SpApiClient], pair: Pair) -> None:
    serve(rsps, pair)
    order_id = pair.path_params["orderId"]
    client = make_client()
    kwargs = confirm_kwargs(pair)
    if not is_time(kwargs["ship_date"]):  # the 400 trigger "02/21/2022": the typed API refuses it ...
        with pytest.raises((TypeError, ValueError)):
            client.confirm_shipment(order_id, **kwargs)
        assert api_calls(rsps) == []
        # ... so replay the pair's request verbatim to check the handling of Amazon's answer
        with pytest.raises(InvalidInputError) as info:
            client.call(
                "confirmShipment", "POST", CONFIRM_SHIPMENT_PATH.format(orderId=order_id), json=pair.body
            )
        assert info.value.message == pair.response["errors"][0]["message"]
        assert info.value.code == "Invalid Input"
        assert len(api_calls(rsps)) == 1
        return
    kwargs["ship_date"] = parse_iso(kwargs["ship_date"])
    assert client.confirm_shipment(order_id, **kwargs) is None
    assert pair.status == 204
    (call,) = api_calls(rsps)
    assert_request_validates(call, "confirmShipment", {"orderId": order_id})


def test_confirm_shipment_400_pair_message_reaches_the_typed_api(rsps, make_client) -> None:
    """Amazon's 400 answer to a request the typed API did build (matched on the order id only)."""
    pair = next(p for p in CONFIRM_PAIRS if p.status == 400)
    serve(rsps, pair, with_body=False)
    kwargs = confirm_kwargs(pair)
    kwargs["ship_date"] = parse_iso("2022-02-21T00:00:00Z")
    with pytest.raises(InvalidInputError) as info:
        make_client().confirm_shipment(pair.path_params["orderId"], **kwargs)
    assert info.value.message == "Invalid Input" and info.value.status == 400


# -- everything else the typed API sends validates too ----------------------------------------------


def test_other_requests_the_client_builds_validate(rsps, make_client) -> None:
    rsps.add(
        responses.GET,
        re.compile(re.escape(ENDPOINT) + r"/orders/2026-01-01/orders(\?.*)?$"),
        json={"orders": []},
    )
    rsps.add(
        responses.GET,
        re.compile(re.escape(ENDPOINT) + r"/orders/2026-01-01/orders/.+"),
        json={"order": GET_PAIRS[0].response["order"]},
    )
    rsps.add(responses.POST, re.compile(re.escape(ENDPOINT) + r"/orders/v0/.+"), status=204)
    client = make_client()
    after = parse_iso("2026-03-01T00:00:00Z")
    list(
        client.search_orders(
            marketplace_ids=["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"],
            last_updated_after=after,
            last_updated_before=parse_iso("2026-03-01T06:00:00Z"),
        )
    )
    client.get_order("113-1234567-7654321")
    client.confirm_shipment(
        "113-1234567-7654321",
        marketplace_id="A1PA6795UKMFR9",
        package_reference_id="2",
        carrier_code="Other",
        carrier_name="4PX",
        tracking_number="LX123456789CN",
        ship_date=after,
        items=[("12345678901234", 1)],
    )
    search, get, confirm = api_calls(rsps)
    assert_request_validates(search, "searchOrders", {})
    assert_request_validates(get, "getOrder", {"orderId": "113-1234567-7654321"})
    assert_request_validates(confirm, "confirmShipment", {"orderId": "113-1234567-7654321"})
