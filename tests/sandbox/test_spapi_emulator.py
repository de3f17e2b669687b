"""The SP-API emulator over real loopback HTTP: auth, quotas, searchOrders, getOrder, confirmShipment,
faults and persistence."""
from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
import requests

from connector.sandbox.schemas import validate_response
from connector.sandbox.seed import MARKETPLACE_IDS, UNKNOWN_SKU
from connector.sandbox.spapi import SPAPI_EMULATOR, SpApiEmulator, site_carrier_codes

US, DE, UK = MARKETPLACE_IDS["US"], MARKETPLACE_IDS["DE"], MARKETPLACE_IDS["UK"]
SINCE = "2020-01-01T00:00:00Z"
ALL_DATA = ["BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "PACKAGES", "CANCELLATION", "TAX"]
ALL_STATUSES = ["UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED"]
MY_MARKETS = [MARKETPLACE_IDS[s] for s in ("US", "CA", "UK", "DE", "FR", "JP")]
OTHER = {"name": "other-seller", "refresh_token": "Atzr|other",
         "client_id": "amzn1.application-oa2-client.sandbox", "client_secret": "sandbox-secret",
         "marketplaces": ["US", "UK"]}
DEMO = {"name": "demo-seller", "refresh_token": "Atzr|sandbox-demo",
        "client_id": "amzn1.application-oa2-client.sandbox", "client_secret": "sandbox-secret",
        "marketplaces": ["US", "CA", "UK", "DE", "FR", "JP"]}


def confirmation(order: dict[str, Any], *, ref: str = "1", carrier: str = "Yun Express",
                 tracking: str = "YT1234567890123456", items: list[tuple[str, int]] | None = None,
                 **detail: Any) -> dict[str, Any]:
    """A valid ConfirmShipmentRequest shipping every unshipped unit of ``order`` (or ``items``)."""
    if items is None:
        items = [(it["orderItemId"], it["fulfillment"]["quantityUnfulfilled"]) for it in order["orderItems"]
                 if it["fulfillment"]["quantityUnfulfilled"] > 0]
    package = {"packageReferenceId": ref, "carrierCode": carrier, "trackingNumber": tracking,
               "shipDate": "2026-01-02T03:04:05.000Z",
               "orderItems": [{"orderItemId": i, "quantity": q} for i, q in items]}
    package.update(detail)
    return {"marketplaceId": order["salesChannel"]["marketplaceId"], "packageDetail": package}



def errors_of(response: requests.Response) -> tuple[str, str]:
    (error,) = response.json()["errors"]
    return error["code"], error["message"]


def is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(value or "")
        return True
    except ValueError:
        return False


def test_spec_registers_the_emulator():
    assert SPAPI_EMULATOR.name == "spapi" and SPAPI_EMULATOR.port_offset == 0
    assert SPAPI_EMULATOR.env_var == "MFN_SANDBOX_SPAPI"
    assert isinstance(SPAPI_EMULATOR.factory({"orders_per_seller": 1}), SpApiEmulator)


# -- LWA -----------------------------------------------------------------------------------------


def test_lwa_issues_bearer_tokens(spapi):
    response = spapi.lwa()
    assert response.status_code == 200
    body = response.json()
    assert body["access_token"].startswith("Atza|") and body["token_type"] == "bearer"
    assert body["expires_in"] == 3600 and body["refresh_token"] == "Atzr|sandbox-demo"
    assert is_uuid(response.headers["x-amzn-RequestId"])
    assert spapi.lwa().json()["access_token"] != body["access_token"]
    as_json = requests.post(spapi.url + "/auth/o2/token", timeout=5, json={
        "grant_type": "refresh_token", "refresh_token": "Atzr|sandbox-demo",
        "client_id": DEMO["client_id"], "client_secret": DEMO["client_secret"]})
    assert as_json.status_code == 200


@pytest.mark.parametrize(("overrides", "status", "error"), [
    ({"refresh_token": "Atzr|nope"}, 400, "invalid_grant"),
    ({"client_secret": "wrong"}, 401, "invalid_client"),
    ({"client_id": "amzn1.application-oa2-client.other"}, 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
    ({"refresh_token": ""}, 400, "invalid_request"),
    ({"client_secret": "sandbox-secret\u00e9"}, 401, "invalid_client"),  # not ASCII: still a refusal
    ({"client_id": "amzn1.application-oa2-client.\u00e9"}, 401, "invalid_client"),
    ({"refresh_token": "Atzr|\u00e9"}, 400, "invalid_grant"),
])
def test_lwa_errors(spapi, overrides, status, error):
    response = spapi.lwa(**overrides)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["error_description"]


# -- auth ----------------------------------------------------------------------------------------


def test_missing_and_unknown_tokens_are_denied(spapi):
    for headers in ({}, {"x-amz-access-token": "Atza|forged"}):
        response = requests.get(spapi.url + "/orders/2026-01-01/orders", headers=headers, timeout=5,
                                params={"lastUpdatedAfter": SINCE, "marketplaceIds": US})
        assert response.status_code == 403
        assert response.json() == {"errors": [{"code": "Unauthorized",
                                                "message": "Access to requested resource is denied.",
                                                "details": ""}]}
        assert "x-amzn-RateLimit-Limit" not in response.headers
        assert is_uuid(response.headers["x-amzn-RequestId"])


def test_access_tokens_expire_on_the_simulated_clock(start_spapi):
    spapi = start_spapi(token_ttl_seconds=60)
    assert spapi.lwa().json()["expires_in"] == 60
    order = spapi.pick()
    assert spapi.get_order(order["orderId"]).status_code == 200
    spapi.advance(61)
    response = spapi.get_order(order["orderId"])
    assert response.status_code == 403
    assert errors_of(response) == ("Unauthorized", "The access token you provided has expired.")
    fresh = spapi.lwa().json()["access_token"]
    assert spapi.get_order(order["orderId"], token=fresh).status_code == 200


def test_a_seller_only_sees_its_own_orders(start_spapi):
    demo = start_spapi(sellers=[DEMO, OTHER])
    other = demo.for_seller(OTHER)
    mine = demo.pick(site="US")
    assert other.get_order(mine["orderId"]).status_code == 404
    assert other.confirm(mine["orderId"], confirmation(mine)).status_code == 404
    theirs = {o["orderId"] for o in other.search_all(lastUpdatedAfter=SINCE, marketplaceIds=[US, UK])}
    assert theirs and theirs == {o["orderId"] for o in other.orders()}
    assert mine["orderId"] not in theirs
    response = other.search(lastUpdatedAfter=SINCE, marketplaceIds=[US, DE])  # DE is not other's
    assert response.status_code == 400 and DE in errors_of(response)[1]
    assert demo.state()["confirmations"] == {}


# -- quotas --------------------------------------------------------------------------------------


def test_quota_exceeded_per_seller_and_operation(start_spapi):
    demo = start_spapi(sellers=[DEMO, OTHER], quotas={"getOrder": {"rate": 0.001, "burst": 2}})
    other = demo.for_seller(OTHER)
    order = demo.pick(site="US")
    assert [demo.get_order(order["orderId"]).status_code for _ in range(2)] == [200, 200]
    throttled = demo.get_order(order["orderId"])
    assert throttled.status_code == 429
    assert throttled.json() == {"errors": [{"code": "QuotaExceeded", "message":
                                            "You exceeded your quota for the requested resource.",
                                            "details": ""}]}
    assert "x-amzn-RateLimit-Limit" not in throttled.headers
    assert is_uuid(throttled.headers["x-amzn-RequestId"])
    # another operation and another seller have their own buckets
    assert demo.search(lastUpdatedAfter=SINCE, marketplaceIds=US).status_code == 200
    assert other.get_order(other.pick()["orderId"]).status_code == 200
    demo.advance(1000)  # 0.001/s x 1000 s = one token back
    assert demo.get_order(order["orderId"]).status_code == 200
    assert demo.get_order(order["orderId"]).status_code == 429


def test_rate_limit_header_on_success_400_and_404(spapi):
    ok = spapi.get_order(spapi.pick()["orderId"])
    assert ok.headers["x-amzn-RateLimit-Limit"] == "0.5"
    bad = spapi.search(marketplaceIds=US)
    assert bad.status_code == 400 and bad.headers["x-amzn-RateLimit-Limit"] == "0.0056"
    missing = spapi.get_order("111-0000000-0000000")
    assert missing.status_code == 404 and missing.headers["x-amzn-RateLimit-Limit"] == "0.5"
    assert errors_of(missing)[0] == "NotFound"


# -- searchOrders --------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "names"), [
    ({"marketplaceIds": US}, "createdAfter"),
    ({"marketplaceIds": US, "createdAfter": SINCE, "lastUpdatedAfter": SINCE}, "lastUpdatedAfter"),
    ({"marketplaceIds": US, "createdAfter": SINCE, "lastUpdatedBefore": "2021-01-01T00:00:00Z"},
     "lastUpdatedBefore"),
    ({"marketplaceIds": US, "lastUpdatedAfter": SINCE, "createdBefore": "2021-01-01T00:00:00Z"},
     "createdBefore"),
    ({"marketplaceIds": US, "lastUpdatedAfter": SINCE, "lastUpdatedBefore": "2019-01-01T00:00:00Z"},
     "lastUpdatedBefore"),
    ({"marketplaceIds": US, "createdAfter": "TEST_CASE_400"}, "createdAfter"),
    ({"lastUpdatedAfter": SINCE}, "marketplaceIds"),
    ({"lastUpdatedAfter": SINCE, "marketplaceIds": ",".join([US] * 51)}, "marketplaceIds"),
    ({"lastUpdatedAfter": SINCE, "marketplaceIds": US, "maxResultsPerPage": "0"}, "maxResultsPerPage"),
    ({"lastUpdatedAfter": SINCE, "marketplaceIds": US, "maxResultsPerPage": "101"}, "maxResultsPerPage"),
    ({"lastUpdatedAfter": SINCE, "marketplaceIds": US, "fulfillmentStatuses": "Unshipped"},
     "fulfillmentStatuses"),
    ({"lastUpdatedAfter": SINCE, "marketplaceIds": US, "fulfilledBy": "MFN"}, "fulfilledBy"),
    ({"lastUpdatedAfter": SINCE, "marketplaceIds": US, "includedData": "ADDRESS"}, "includedData"),
    ({"lastUpdatedAfter": SINCE, "MarketplaceIds": US}, "MarketplaceIds"),
])
def test_search_rejects_invalid_queries_naming_the_parameter(spapi, params, names):
    response = spapi.search(**params)
    assert response.status_code == 400, response.text
    code, message = errors_of(response)
    assert code == "InvalidInput" and names in message


def test_before_must_be_two_minutes_in_the_past(spapi):
    now = time.time()
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))
    older = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 180))
    response = spapi.search(lastUpdatedAfter=SINCE, lastUpdatedBefore=recent, marketplaceIds=US)
    assert response.status_code == 400 and "two minutes" in errors_of(response)[1]
    response = spapi.search(lastUpdatedAfter=SINCE, lastUpdatedBefore=older, marketplaceIds=US)
    assert response.status_code == 200 and response.json()["lastUpdatedBefore"] == older


def test_filters_sorting_and_window(spapi):
    merchant = spapi.search_all(lastUpdatedAfter=SINCE, marketplaceIds=MY_MARKETS, fulfilledBy="MERCHANT",
                                fulfillmentStatuses=["UNSHIPPED", "PARTIALLY_SHIPPED"],
                                includedData=["FULFILLMENT"])
    expected = spapi.orders(lambda o: o["fulfillment"]["fulfilledBy"] == "MERCHANT"
                            and o["fulfillment"]["fulfillmentStatus"] in ("UNSHIPPED", "PARTIALLY_SHIPPED"))
    assert sorted(o["orderId"] for o in merchant) == sorted(o["orderId"] for o in expected)
    assert [o["lastUpdatedTime"] for o in merchant] == sorted(o["lastUpdatedTime"] for o in merchant)
    every = spapi.search_all(lastUpdatedAfter=SINCE, marketplaceIds=MY_MARKETS)
    assert len(every) == 60  # AMAZON-fulfilled, shipped and cancelled too when not filtered
    us_only = spapi.search_all(lastUpdatedAfter=SINCE, marketplaceIds=US)
    assert us_only and {o["salesChannel"]["marketplaceId"] for o in us_only} == {US}
    middle = sorted(o["lastUpdatedTime"] for o in every)[30]
    later = spapi.search_all(lastUpdatedAfter=middle, marketplaceIds=MY_MARKETS)
    assert len(later) == 30 and all(o["lastUpdatedTime"] >= middle for o in later)
    by_created = spapi.search(createdAfter=middle, marketplaceIds=MY_MARKETS)
    assert "createdBefore" in by_created.json()
    assert all(o["createdTime"] >= middle for o in by_created.json()["orders"])


def test_pagination_walks_every_order_once(spapi):
    params = {"lastUpdatedAfter": SINCE, "marketplaceIds": MY_MARKETS, "maxResultsPerPage": "7"}
    first = spapi.search(**params).json()
    assert len(first["orders"]) == 7 and first["pagination"]["nextToken"]
    walked = spapi.search_all(**params)
    ids = [o["orderId"] for o in walked]
    assert len(ids) == 60 == len(set(ids))
    assert ids == [o["orderId"] for o in spapi.search_all(lastUpdatedAfter=SINCE, marketplaceIds=MY_MARKETS)]
    # the page size may change between pages; the filters may not
    second = spapi.search(paginationToken=first["pagination"]["nextToken"],
                          **dict(params, maxResultsPerPage="100")).json()
    assert [o["orderId"] for o in second["orders"]] == ids[7:]
    assert "pagination" not in second and second["lastUpdatedBefore"] == first["lastUpdatedBefore"]


def test_pagination_tokens_are_bound_to_the_query_and_the_seller(start_spapi):
    spapi = start_spapi(sellers=[DEMO, OTHER])
    other = spapi.for_seller(OTHER)
    params = {"lastUpdatedAfter": SINCE, "marketplaceIds": [US, UK], "maxResultsPerPage": "5"}
    token = spapi.search(**params).json()["pagination"]["nextToken"]
    misuse = [
        spapi.search(paginationToken=token, **dict(params, marketplaceIds=[US])),
        spapi.search(paginationToken=token, **dict(params, fulfilledBy="MERCHANT")),
        spapi.search(paginationToken=token, marketplaceIds=[US, UK], maxResultsPerPage="5"),
        spapi.search(paginationToken=token[:-3] + "AAA", **params),
        spapi.search(paginationToken="bm90LWEtdG9rZW4", **params),
        spapi.search(paginationToken=token.split(".")[0] + ".\u00e9t\u00e9", **params),  # not ASCII: no 500
        other.search(paginationToken=token, **params),
    ]
    for response in misuse:
        assert response.status_code == 400, response.text
        assert errors_of(response)[0] == "InvalidInput"
    assert "paginationToken" in errors_of(misuse[0])[1]
    assert spapi.search(paginationToken=token, **params).status_code == 200
    spapi.advance(25 * 3600)
    fresh = spapi.lwa().json()["access_token"]  # the access token expired as well
    expired = spapi.search(token=fresh, paginationToken=token, **params)
    assert expired.status_code == 400 and "expired" in errors_of(expired)[1]


def test_pagination_does_not_skip_orders_that_change_between_pages(spapi):
    params = {"lastUpdatedAfter": SINCE, "marketplaceIds": MY_MARKETS, "maxResultsPerPage": "10",
              "fulfillmentStatuses": ["UNSHIPPED"], "fulfilledBy": "MERCHANT",
              "includedData": ["FULFILLMENT"]}
    expected = [o["orderId"] for o in spapi.search_all(**params)]
    first = spapi.search(**params).json()
    for order in first["orders"][:3]:  # shipping orders already seen moves them out of the window
        assert spapi.confirm(order["orderId"], confirmation(spapi.pick(where=lambda o, i=order["orderId"]:
                                                                       o["orderId"] == i))).status_code == 204
    seen = [o["orderId"] for o in first["orders"]]
    token = first["pagination"]["nextToken"]
    while token:
        page = spapi.search(paginationToken=token, **params).json()
        seen += [o["orderId"] for o in page["orders"]]
        token = page.get("pagination", {}).get("nextToken")
    assert seen == expected


def test_included_data_selects_sections(spapi):
    partial = spapi.pick(status="PARTIALLY_SHIPPED")
    bare = spapi.get_order(partial["orderId"]).json()["order"]
    assert set(bare) == {"orderId", "createdTime", "lastUpdatedTime", "salesChannel", "orderItems"}
    assert all(set(it) == {"orderItemId", "quantityOrdered", "product"} for it in bare["orderItems"])
    for data, key in [("RECIPIENT", "recipient"), ("BUYER", "buyer"), ("PROCEEDS", "proceeds"),
                      ("FULFILLMENT", "fulfillment"), ("PACKAGES", "packages")]:
        order = spapi.get_order(partial["orderId"], includedData=data).json()["order"]
        assert set(order) - set(bare) == {key}, data
    full = spapi.get_order(partial["orderId"], includedData=["PROCEEDS", "FULFILLMENT"]).json()["order"]
    assert all({"proceeds", "fulfillment"} <= set(it) for it in full["orderItems"])
    asked = spapi.pick(where=lambda o: any("cancellation" in it for it in o["orderItems"]))
    without = spapi.get_order(asked["orderId"], includedData=["FULFILLMENT"]).json()["order"]
    assert not any("cancellation" in it for it in without["orderItems"])
    with_cancel = spapi.get_order(asked["orderId"], includedData=["CANCELLATION"]).json()["order"]
    assert any(it.get("cancellation", {}).get("cancellationRequest", {}).get("requester") == "BUYER"
               for it in with_cancel["orderItems"])
    eu = spapi.pick(site="DE", where=lambda o: "shipping" in o["orderItems"][0]["fulfillment"])
    shown = spapi.get_order(eu["orderId"], includedData="FULFILLMENT").json()["order"]
    assert shown["orderItems"][0]["fulfillment"]["shipping"]["internationalShipping"]["iossNumber"]


ADDRESS_PII = {"name", "addressLine1", "addressLine2", "addressLine3", "postalCode", "phone",
               "extendedFields"}


def test_buyer_pii_only_for_orders_amazon_shows_it_for(spapi):
    # Amazon gives the buyer's name and email and the address's personal fields only for orders
    # that are UNSHIPPED, PARTIALLY_SHIPPED or SHIPPED, and the email only for merchant-fulfilled ones
    # (https://developer-docs.amazon.com/sp-api/docs/access-orders-pii).
    pii = ["BUYER", "RECIPIENT"]
    open_order = spapi.get_order(spapi.pick()["orderId"], includedData=pii).json()["order"]
    assert {"buyerName", "buyerEmail"} <= set(open_order["buyer"])
    assert {"name", "addressLine1", "postalCode"} <= set(open_order["recipient"]["deliveryAddress"])
    cancelled = spapi.get_order(spapi.pick(status="CANCELLED")["orderId"], includedData=pii).json()["order"]
    assert not {"buyerName", "buyerEmail"} & set(cancelled.get("buyer", {}))
    address = cancelled["recipient"]["deliveryAddress"]
    assert not ADDRESS_PII & set(address) and address["countryCode"] and address["city"]
    afn = spapi.get_order(spapi.pick(by="AMAZON")["orderId"], includedData=pii).json()["order"]
    assert "buyerEmail" not in afn.get("buyer", {}) and "buyerName" in afn["buyer"]
    now_cancelled = spapi.pick(where=lambda o: o["orderId"] != open_order["orderId"])
    assert requests.post(f"{spapi.url}/_sandbox/orders/{now_cancelled['orderId']}/cancel",
                         timeout=5).status_code == 200
    spapi.advance(180)  # a search shows changes two minutes old
    listed = {o["orderId"]: o for o in spapi.search_all(lastUpdatedAfter=SINCE, marketplaceIds=MY_MARKETS,
                                                         includedData=pii)}
    seen = listed[now_cancelled["orderId"]]
    assert not ADDRESS_PII & set(seen["recipient"]["deliveryAddress"])
    assert "buyerName" not in seen.get("buyer", {})
    assert "name" in listed[open_order["orderId"]]["recipient"]["deliveryAddress"]
    assert spapi.state()["schema_violations"] == []


def test_every_seed_order_validates_through_the_api(spapi):
    response = spapi.search(lastUpdatedAfter=SINCE, marketplaceIds=MY_MARKETS, includedData=ALL_DATA)
    body = response.json()
    assert validate_response("searchOrders", 200, body) == []
    assert len(body["orders"]) == 60
    assert {o["fulfillment"]["fulfillmentStatus"] for o in body["orders"]} == set(ALL_STATUSES)
    assert any(UNKNOWN_SKU == it["product"]["sellerSku"] for o in body["orders"] for it in o["orderItems"])
    assert spapi.state()["schema_violations"] == []


def test_response_violations_are_recorded(spapi):
    order = spapi.pick()
    live = spapi.server.emulator.store["orders"][order["orderId"]]["order"]
    live["orderItems"][0]["quantityOrdered"] = "2"  # corrupt the store: the emulator must notice
    response = spapi.get_order(order["orderId"])
    assert response.status_code == 200
    (violation,) = spapi.state()["schema_violations"]
    assert violation["operation"] == "getOrder" and violation["status"] == 200
    assert "order.orderItems[0].quantityOrdered" in violation["problems"][0]


# -- getOrder ------------------------------------------------------------------------------------


def test_get_order_errors(spapi):
    missing = spapi.get_order("111-0000000-0000000")
    assert errors_of(missing) == ("NotFound", "Order 111-0000000-0000000 was not found.")
    bad = spapi.get_order("TEST_CASE_400")
    assert bad.status_code == 400 and errors_of(bad)[0] == "InvalidInput"
    wrong = spapi.get_order(spapi.pick()["orderId"], includedData="EVERYTHING")
    assert wrong.status_code == 400 and "includedData" in errors_of(wrong)[1]


# -- confirmShipment -----------------------------------------------------------------------------


def read_back(spapi, order_id: str) -> dict:
    response = spapi.get_order(order_id, includedData=["FULFILLMENT", "PACKAGES"])
    assert response.status_code == 200
    return response.json()["order"]


def test_confirm_ships_the_order_and_records_it(spapi):
    order = spapi.pick(site="US", where=lambda o: len(o["orderItems"]) == 1)
    before = order["lastUpdatedTime"]
    response = spapi.confirm(order["orderId"], confirmation(order, shippingMethod="Standard"))
    assert response.status_code == 204 and response.content == b""
    assert response.headers["x-amzn-RateLimit-Limit"] == "2.0"
    shown = read_back(spapi, order["orderId"])
    assert shown["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    (package,) = shown["packages"]
    assert package["packageReferenceId"] == "1" and package["carrier"] == "Yun Express"
    assert package["trackingNumber"] == "YT1234567890123456" and package["shippingService"] == "Standard"
    assert package["packageStatus"] == {"status": "SHIPPED"} and package["shipTime"] == "2026-01-02T03:04:05Z"
    item = shown["orderItems"][0]
    assert item["fulfillment"]["quantityUnfulfilled"] == 0
    assert item["fulfillment"]["quantityFulfilled"] == item["quantityOrdered"]
    assert shown["lastUpdatedTime"] > before
    state = spapi.state()
    entry = state["confirmations"][order["orderId"]]["1"]
    assert (entry["accepted"], entry["carrierCode"], entry["trackingNumber"]) == (1, "Yun Express",
                                                                                  "YT1234567890123456")
    assert state["orders"][order["orderId"]] == "SHIPPED" and state["schema_violations"] == []
    assert state["order_details"][order["orderId"]] == {
        "seller": "demo-seller", "marketplaceId": US, "fulfillmentStatus": "SHIPPED",
        "fulfilledBy": "MERCHANT"}
    assert sum(d["fulfilledBy"] == "AMAZON" for d in state["order_details"].values()) == 2


def test_confirmed_orders_surface_again_after_the_two_minute_window(spapi):
    order = spapi.pick(site="US")
    assert spapi.confirm(order["orderId"], confirmation(order)).status_code == 204
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    params = {"lastUpdatedAfter": recent, "marketplaceIds": US}
    assert order["orderId"] not in [o["orderId"] for o in spapi.search_all(**params)]
    spapi.advance(180)
    assert order["orderId"] in [o["orderId"] for o in spapi.search_all(**params)]


@pytest.mark.parametrize(("change", "fragment"), [
    ({"packageReferenceId": 1}, "invalid type"),
    ({"packageReferenceId": "0"}, "positive numeric"),
    ({"packageReferenceId": "A1"}, "positive numeric"),
    ({"packageReferenceId": "-3"}, "positive numeric"),
    ({"carrierCode": "Other"}, "carrierName"),
    ({"carrierCode": "Yun Express", "trackingNumber": "YT123"}, "does not match the expected format"),
    ({"carrierCode": "China Post", "trackingNumber": "LA123456789US"}, "does not match the expected format"),
    ({"carrierCode": "China Post", "trackingNumber": "la123456789cn"}, "does not match the expected format"),
    ({"carrierCode": "Yanwen", "trackingNumber": "UG-123"}, "does not match the expected format"),
    ({"carrierCode": "DHL eCommerce", "trackingNumber": "GM12345"}, "does not match the expected format"),
    ({"trackingNumber": None}, "trackingNumber"),
    ({"carrierCode": None}, "carrierCode"),
    ({"orderItems": []}, "orderItems"),
    ({"orderItems": [{"orderItemId": "99999999999999", "quantity": 1}]},
     "orderItemId 99999999999999 is invalid"),
    ({"orderItems": [{"orderItemId": "ITEM", "quantity": 0}]}, "at least 1"),
    ({"orderItems": [{"orderItemId": "ITEM", "quantity": 99}]}, "exceeds the quantity still to ship"),
    ({"orderItems": [{"orderItemId": "ITEM", "quantity": "1"}]}, "invalid type"),
])
def test_confirm_rules(spapi, change, fragment):
    order = spapi.pick(site="US", where=lambda o: len(o["orderItems"]) == 1)
    body = confirmation(order)
    detail = body["packageDetail"]
    for key, value in change.items():
        if value is None:
            detail.pop(key)
        elif key == "orderItems":
            detail[key] = [dict(line, orderItemId=order["orderItems"][0]["orderItemId"])
                           if line["orderItemId"] == "ITEM" else line for line in value]
        else:
            detail[key] = value
    response = spapi.confirm(order["orderId"], body)
    assert response.status_code == 400, response.text
    code, message = errors_of(response)
    assert code == "InvalidInput" and fragment in message
    assert spapi.state()["confirmations"] == {}
    assert read_back(spapi, order["orderId"])["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"


def test_tracking_message_names_the_tracking_id(spapi):
    order = spapi.pick(site="US")
    response = spapi.confirm(order["orderId"], confirmation(order, tracking="YT99"))
    assert errors_of(response)[1] == ("The tracking ID YT99 does not match the expected format for the "
                                      "carrier Yun Express.")


def test_non_iso_ship_date_gets_the_models_answer(spapi):
    order = spapi.pick(site="US")
    response = spapi.confirm(order["orderId"], confirmation(order, shipDate="02/21/2022"))
    assert response.status_code == 400
    assert response.json() == {"errors": [{"code": "Invalid Input", "message": "Invalid Input"}]}


def test_marketplace_must_be_the_orders(spapi):
    order = spapi.pick(site="US")
    response = spapi.confirm(order["orderId"], dict(confirmation(order), marketplaceId=DE))
    assert response.status_code == 400 and "marketplaceId" in errors_of(response)[1]


def test_malformed_json_and_order_ids(spapi):
    order = spapi.pick(site="US")
    raw = requests.post(f"{spapi.url}/orders/v0/orders/{order['orderId']}/shipmentConfirmation",
                        data=b"{not json", headers=spapi.headers(), timeout=5)
    assert raw.status_code == 400 and errors_of(raw)[0] == "InvalidInput"
    assert spapi.confirm("1116302783", confirmation(order)).status_code == 400
    assert spapi.confirm("111-0000000-0000000", confirmation(order)).status_code == 404


def test_carrier_codes_differ_per_site(start_spapi):
    spapi = start_spapi(unknown_carrier_codes="refuse")
    table = site_carrier_codes()  # the site rules' carrier_codes: one table for daemon and emulator
    assert "Yanwen" in table["US"] and "YANWEN" not in table["US"]
    assert "YANWEN" in table["DE"] and "Yanwen" not in table["DE"]
    us, de = spapi.pick(site="US"), spapi.pick(site="DE")
    tn = "UG123456789CN"
    assert spapi.confirm(us["orderId"], confirmation(us, carrier="Yanwen", tracking=tn)).status_code == 204
    rejected = spapi.confirm(de["orderId"], confirmation(de, carrier="Yanwen", tracking=tn))
    assert rejected.status_code == 400 and "Yanwen" in errors_of(rejected)[1]
    assert spapi.confirm(de["orderId"], confirmation(de, carrier="YANWEN", tracking=tn)).status_code == 204
    uk = spapi.pick(site="UK")
    assert spapi.confirm(uk["orderId"], confirmation(uk, carrier="China Post",
                                                     tracking="LA123456789CN")).status_code == 204


@pytest.mark.parametrize(("carrier", "tracking"), [
    ("DHL eCommerce", "GM2951173225174494"), ("USPS", "9400111899223197428490"), ("FedEx", "112345678"),
])
def test_other_carriers_with_valid_tracking(spapi, carrier, tracking):
    order = spapi.pick(site="US")
    response = spapi.confirm(order["orderId"], confirmation(order, carrier=carrier, tracking=tracking))
    assert response.status_code == 204


def test_other_needs_a_carrier_name_and_shows_it(spapi):
    order = spapi.pick(site="US")
    body = confirmation(order, carrier="Other", carrierName="Acme Logistics", tracking="ACME-0001")
    assert spapi.confirm(order["orderId"], body).status_code == 204
    assert read_back(spapi, order["orderId"])["packages"][0]["carrier"] == "Acme Logistics"


def test_cancelled_and_amazon_fulfilled_orders_are_rejected(spapi):
    cancelled = spapi.pick(status="CANCELLED")
    items = [(it["orderItemId"], 1) for it in cancelled["orderItems"]]
    response = spapi.confirm(cancelled["orderId"], confirmation(cancelled, items=items))
    assert response.status_code == 400 and "cancelled" in errors_of(response)[1]
    afn = spapi.pick(by="AMAZON")
    response = spapi.confirm(afn["orderId"], confirmation(afn))
    assert response.status_code == 400 and "fulfilled by Amazon" in errors_of(response)[1]
    assert spapi.state()["confirmations"] == {}


def test_shipped_order_rejects_new_packages_but_accepts_edits(spapi):
    shipped = spapi.pick(status="SHIPPED")
    items = [(pi["orderItemId"], pi["quantity"]) for pi in shipped["packages"][0]["packageItems"]]
    response = spapi.confirm(shipped["orderId"], confirmation(shipped, ref="2", items=items))
    assert response.status_code == 400
    code, message = errors_of(response)
    assert code == "PackageToUpdateNotFound" and "order already fulfilled" in message
    edit = confirmation(shipped, ref="1", items=items, carrier="China Post", tracking="RB123456789CN")
    assert spapi.confirm(shipped["orderId"], edit).status_code == 204
    (package,) = read_back(spapi, shipped["orderId"])["packages"]
    assert (package["carrier"], package["trackingNumber"]) == ("China Post", "RB123456789CN")
    assert spapi.state()["confirmations"][shipped["orderId"]]["1"]["accepted"] == 1


def test_partial_order_multi_package_and_resend_edits(spapi):
    partial = spapi.pick(status="PARTIALLY_SHIPPED")
    first, *rest = partial["orderItems"]
    # the already-shipped line cannot be shipped again in a new package
    again = spapi.confirm(partial["orderId"],
                          confirmation(partial, ref="2", items=[(first["orderItemId"], 1)]))
    assert again.status_code == 400 and "exceeds" in errors_of(again)[1]
    # ship the rest one line per package
    for n, item in enumerate(rest, start=2):
        body = confirmation(partial, ref=str(n), items=[(item["orderItemId"], item["quantityOrdered"])])
        assert spapi.confirm(partial["orderId"], body).status_code == 204
        status = read_back(spapi, partial["orderId"])["fulfillment"]["fulfillmentStatus"]
        assert status == ("SHIPPED" if n == len(rest) + 1 else "PARTIALLY_SHIPPED")
    shown = read_back(spapi, partial["orderId"])
    assert [p["packageReferenceId"] for p in shown["packages"]] == [str(n) for n in range(1, len(rest) + 2)]
    assert all(it["fulfillment"]["quantityUnfulfilled"] == 0 for it in shown["orderItems"])
    # re-sending package 2 edits it and counts; a brand-new package is refused
    last = rest[0]
    edit = confirmation(partial, ref="2", items=[(last["orderItemId"], last["quantityOrdered"])],
                        tracking="YT0000000000000002")
    assert spapi.confirm(partial["orderId"], edit).status_code == 204
    assert spapi.confirm(partial["orderId"], edit).status_code == 204
    entry = spapi.state()["confirmations"][partial["orderId"]]["2"]
    assert entry["accepted"] == 3 and entry["trackingNumber"] == "YT0000000000000002"
    packages = {p["packageReferenceId"]: p for p in read_back(spapi, partial["orderId"])["packages"]}
    assert packages["2"]["trackingNumber"] == "YT0000000000000002" and len(packages) == len(rest) + 1
    new = confirmation(partial, ref="9", items=[(last["orderItemId"], 1)])
    assert errors_of(spapi.confirm(partial["orderId"], new))[0] == "PackageToUpdateNotFound"


def test_editing_a_package_down_reopens_the_order(spapi):
    order = spapi.pick(site="US", where=lambda o: any(it["quantityOrdered"] > 1 for it in o["orderItems"]))
    item = next(it for it in order["orderItems"] if it["quantityOrdered"] > 1)
    assert spapi.confirm(order["orderId"], confirmation(order)).status_code == 204
    smaller = confirmation(order, items=[(item["orderItemId"], 1)])
    assert spapi.confirm(order["orderId"], smaller).status_code == 204
    shown = read_back(spapi, order["orderId"])
    assert shown["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    line = next(it for it in shown["orderItems"] if it["orderItemId"] == item["orderItemId"])
    assert line["fulfillment"]["quantityUnfulfilled"] == item["quantityOrdered"] - 1


def test_package_reference_ids_are_numbers_in_strings(spapi):
    order = spapi.pick(site="US", where=lambda o: any(it["quantityOrdered"] > 1 for it in o["orderItems"]))
    item = next(it for it in order["orderItems"] if it["quantityOrdered"] > 1)
    for ref in ("01", "1"):
        body = confirmation(order, ref=ref, items=[(item["orderItemId"], 1)])
        assert spapi.confirm(order["orderId"], body).status_code == 204
    assert spapi.state()["confirmations"][order["orderId"]].keys() == {"1"}
    assert spapi.state()["confirmations"][order["orderId"]]["1"]["accepted"] == 2


def test_silent_drop_answers_204_and_changes_nothing(start_spapi):
    spapi = start_spapi(silent_drop_rate=1.0)
    order = spapi.pick(site="US")
    response = spapi.confirm(order["orderId"], confirmation(order))
    assert response.status_code == 204
    state = spapi.state()
    assert state["confirmations"] == {} and state["silent_drops"] == 1
    assert state["orders"][order["orderId"]] == "UNSHIPPED"
    assert "packages" not in read_back(spapi, order["orderId"])
    # invalid requests are still refused: only accepted writes are dropped
    assert spapi.confirm(order["orderId"], confirmation(order, tracking="nope")).status_code == 400


# -- faults --------------------------------------------------------------------------------------


def test_reset_fault_drops_the_connection_after_the_write(start_spapi):
    spapi = start_spapi()
    order = spapi.pick(site="US")
    token = spapi.token
    spapi.set_faults({"reset": 1.0})
    with pytest.raises(requests.ConnectionError):
        spapi.confirm(order["orderId"], confirmation(order), token=token)
    state = spapi.state()
    assert state["faults_injected"]["reset"] == 1
    assert state["confirmations"][order["orderId"]]["1"]["accepted"] == 1
    with pytest.raises(requests.ConnectionError):
        spapi.lwa()


def test_timeout_fault_answers_late_but_the_write_happened(start_spapi):
    spapi = start_spapi(timeout_seconds=0.3)
    order = spapi.pick(site="US")
    token = spapi.token
    spapi.set_faults({"timeout": 1.0})
    with pytest.raises(requests.ReadTimeout):
        spapi.confirm(order["orderId"], confirmation(order), token=token, timeout=0.1)
    spapi.set_faults(0)
    assert spapi.state()["confirmations"][order["orderId"]]["1"]["accepted"] == 1
    assert read_back(spapi, order["orderId"])["fulfillment"]["fulfillmentStatus"] == "SHIPPED"


def test_5xx_fault_answers_an_error_list_before_the_write(start_spapi):
    spapi = start_spapi()
    order = spapi.pick(site="US")
    token = spapi.token
    spapi.set_faults({"error_5xx": 1.0})
    statuses = set()
    for _ in range(6):
        response = spapi.confirm(order["orderId"], confirmation(order), token=token)
        statuses.add(response.status_code)
        assert response.json()["errors"][0]["code"] in ("InternalFailure", "ServiceUnavailable")
        assert validate_response("confirmShipment", response.status_code, response.json()) == []
        assert is_uuid(response.headers["x-amzn-RequestId"])
    assert statuses <= {500, 503} and statuses
    spapi.set_faults(0)
    assert spapi.state()["confirmations"] == {}


def test_malformed_fault_garbles_the_body(start_spapi):
    spapi = start_spapi()
    order = spapi.pick(site="US")
    token = spapi.token
    spapi.set_faults({"malformed": 1.0})
    response = spapi.get_order(order["orderId"], token=token)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


# -- persistence ---------------------------------------------------------------------------------


def test_state_file_round_trip(tmp_path, start_spapi):
    state_file = str(tmp_path / "spapi.json")
    first = start_spapi(state_file=state_file)
    order = first.pick(site="US")
    body = confirmation(order)
    token = first.token
    assert first.confirm(order["orderId"], body).status_code == 204
    first.advance(600)
    first.lwa()  # a POST: persists the clock offset too
    first.server.stop()

    second = start_spapi(state_file=state_file)
    assert second.get_order(order["orderId"], token=token).status_code == 200  # tokens survive
    state = second.state()
    assert state["confirmations"][order["orderId"]]["1"]["accepted"] == 1
    assert state["orders"][order["orderId"]] == "SHIPPED"
    assert second.server.emulator.clock.offset.total_seconds() == pytest.approx(600)
    assert second.confirm(order["orderId"], body, token=token).status_code == 204
    assert second.state()["confirmations"][order["orderId"]]["1"]["accepted"] == 2
    saved = json.loads(open(state_file, encoding="utf-8").read())
    assert saved["store"]["confirmations"][order["orderId"]]["1"]["accepted"] == 2


def test_a_seller_added_after_the_state_file_gets_seeded(tmp_path, start_spapi):
    state_file = str(tmp_path / "spapi.json")
    first = start_spapi(state_file=state_file)
    first.lwa()
    before = {o["orderId"] for o in first.orders()}
    first.server.stop()
    second = start_spapi(state_file=state_file, sellers=[DEMO, OTHER])
    assert {o["orderId"] for o in second.orders()} == before  # the saved orders, not a new seed
    other = second.for_seller(OTHER)
    assert len(other.search_all(lastUpdatedAfter=SINCE, marketplaceIds=[US, UK])) == 60


def test_validation_off_still_refuses_malformed_bodies(start_spapi):
    spapi = start_spapi(validate=False)
    order = spapi.pick(site="US")
    body = confirmation(order)
    body["packageDetail"]["orderItems"] = ["not-an-object"]
    response = spapi.confirm(order["orderId"], body)
    assert response.status_code == 400 and errors_of(response)[0] == "InvalidInput"
    live = spapi.server.emulator.store["orders"][order["orderId"]]["order"]
    live["orderItems"][0]["quantityOrdered"] = "1"
    assert spapi.get_order(order["orderId"]).status_code == 200
    assert spapi.state()["schema_violations"] == []  # responses are not checked either


def test_unknown_routes_answer_in_sp_api_shape(spapi):
    response = requests.get(spapi.url + "/orders/v0/orders", headers=spapi.headers(), timeout=5)
    assert response.status_code == 404 and errors_of(response)[0] == "NotFound"
    assert is_uuid(response.headers["x-amzn-RequestId"])


def test_pagination_token_is_opaque(spapi):
    token = spapi.search(lastUpdatedAfter=SINCE, marketplaceIds=MY_MARKETS,
                         maxResultsPerPage="3").json()["pagination"]["nextToken"]
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()
    assert US not in payload and "demo-seller" in payload  # filters are hashed, not spelled out


# -- the carrier codes come from the site table (the daemon's site rules) ------------------------

IN_SELLER = {**DEMO, "name": "in-seller", "refresh_token": "Atzr|in",
             "marketplaces": ["IN", "US", "DE", "JP"]}


@pytest.mark.parametrize(("site", "listed", "unlisted"), [
    ("US", "USPS", "Royal Mail"),          # NA: the US list has the last-mile carriers
    ("DE", "DHL eCommerce", "Deutsche Post"),  # EU: only the table's codes, no local carriers
    ("JP", "Yanwen", "Japan Post"),        # FE
    ("DE", "YANWEN", "Yanwen"),            # exact, case-sensitive
])
def test_confirm_accepts_exactly_the_codes_the_site_table_lists(start_spapi, site, listed, unlisted):
    assert listed in site_carrier_codes()[site] and unlisted not in site_carrier_codes()[site]
    spapi = start_spapi(IN_SELLER, sellers=[IN_SELLER], unknown_carrier_codes="refuse")
    order = spapi.pick(site=site, where=lambda o: len(o["orderItems"]) == 1)
    tn = "UG123456789CN"
    refused = spapi.confirm(order["orderId"], confirmation(order, carrier=unlisted, tracking=tn))
    assert refused.status_code == 400 and f"carrierCode '{unlisted}'" in errors_of(refused)[1]
    accepted = spapi.confirm(order["orderId"], confirmation(order, carrier=listed, tracking=tn))
    assert accepted.status_code == 204, accepted.text
    assert spapi.confirm(order["orderId"], confirmation(order, carrier="Other", carrierName="Acme",
                                                        tracking=tn)).status_code == 204  # edits package 1


def test_in_takes_amazon_ins_spelling_of_yanwen(start_spapi):
    spapi = start_spapi(IN_SELLER, sellers=[IN_SELLER], unknown_carrier_codes="refuse")
    order = spapi.pick(site="IN", where=lambda o: len(o["orderItems"]) == 1)
    tn = "UG123456789CN"
    refused = spapi.confirm(order["orderId"], confirmation(order, carrier="YANWEN", tracking=tn))
    assert refused.status_code == 400 and "carrierCode 'YANWEN'" in errors_of(refused)[1]
    accepted = spapi.confirm(order["orderId"], confirmation(order, carrier="Yanwen", tracking=tn))
    assert accepted.status_code == 204, accepted.text


@pytest.mark.parametrize("code", ["YunExpress", "YANWEN", "yun express"])
def test_a_code_not_on_the_sites_list_is_filed_as_other(start_spapi, code):
    """As a seller saw `PUROLATOR` for `Purolator` counted: 204, and the package is filed as
    "Other" (its tracking is not valid tracking); the daemon's read-back must notice."""
    spapi = start_spapi()
    order = spapi.pick(site="US", where=lambda o: len(o["orderItems"]) == 1)
    body = confirmation(order)
    body["packageDetail"].update(carrierCode=code, trackingNumber="UG123456789CN")
    assert spapi.confirm(order["orderId"], body).status_code == 204
    (package,) = spapi.get_order(order["orderId"], includedData="PACKAGES").json()["order"]["packages"]
    assert package["carrier"] == "Other" and package["trackingNumber"] == "UG123456789CN"


@pytest.mark.parametrize("code", ["YunExpress", "YANWEN"])
def test_a_code_not_on_the_sites_list_is_refused_when_the_site_refuses(start_spapi, code):
    spapi = start_spapi(unknown_carrier_codes="refuse")
    order = spapi.pick(site="US", where=lambda o: len(o["orderItems"]) == 1)
    body = confirmation(order)
    body["packageDetail"].update(carrierCode=code, trackingNumber="UG123456789CN")
    response = spapi.confirm(order["orderId"], body)
    assert response.status_code == 400 and f"carrierCode '{code}'" in errors_of(response)[1]
    assert not spapi.get_order(order["orderId"], includedData="PACKAGES").json()["order"].get("packages")


def test_the_unknown_carrier_codes_option_is_checked(start_spapi):
    with pytest.raises(ValueError, match="unknown_carrier_codes must be one of file_as_other, refuse"):
        start_spapi(unknown_carrier_codes="ignore")


def test_a_site_rules_override_in_mapping_form_changes_what_confirm_accepts(start_spapi):
    override = {"DE": {"carrier_codes": {
        "WanbExpress": {"methods": [], "source": "my Seller Central list"}, "YANWEN": None}}}
    spapi = start_spapi(site_rules=override, unknown_carrier_codes="refuse")
    order = spapi.pick(site="DE", where=lambda o: len(o["orderItems"]) == 1)
    refused = spapi.confirm(order["orderId"], confirmation(order, carrier="YANWEN", tracking="UG123456789CN"))
    assert refused.status_code == 400 and "carrierCode 'YANWEN'" in errors_of(refused)[1]
    accepted = spapi.confirm(order["orderId"],
                             confirmation(order, carrier="WanbExpress", tracking="WB12345678"))
    assert accepted.status_code == 204, accepted.text


def test_the_carrier_codes_option_replaces_the_table(start_spapi):
    spapi = start_spapi(carrier_codes={"US": ["Acme Post"]}, unknown_carrier_codes="refuse")
    order = spapi.pick(site="US", where=lambda o: len(o["orderItems"]) == 1)
    refused = spapi.confirm(order["orderId"], confirmation(order))  # Yun Express: not in the given table
    assert refused.status_code == 400 and "carrierCode 'Yun Express'" in errors_of(refused)[1]
    assert spapi.confirm(order["orderId"], confirmation(order, carrier="Acme Post",
                                                        tracking="AP1234567")).status_code == 204


def test_a_configured_override_reaches_the_daemons_rules_and_the_sandbox_emulator(world):
    """One table: the sandbox runner hands the SP-API emulator the daemon's merged site rules."""
    override = {"site_rules": {"DE": {"carrier_codes": {
        "YANWEN": {"methods": ["Direct Line Tracked Packet"], "source": "my Seller Central list"},
        "WanbExpress": [], "4PX": None}}}}
    w = world(override)
    rt = w.runtime()
    try:
        de = rt.site_rules["DE"]
    finally:
        rt.close()
    assert de.carrier_codes["YANWEN"] == ("Direct Line Tracked Packet",) and "4PX" not in de.carrier_codes
    assert de.carrier_code_notes["WanbExpress"].source == "configuration"
    emulator = w.sandbox.servers["spapi"].emulator
    assert emulator.carrier_codes["DE"] == frozenset(de.carrier_codes)
    assert emulator.carrier_codes["FR"] == frozenset(rt.site_rules["FR"].carrier_codes)


def test_the_emulators_request_log_leaves_the_query_out(spapi, caplog):
    """A query can carry credentials (DHL eCommerce's token request sends its password in it): the
    emulators' DEBUG request log names the path alone."""
    import logging

    import requests

    with caplog.at_level(logging.DEBUG, logger="connector.sandbox"):
        requests.get(f"{spapi.url}/orders/v0/orders?clientId=c&password=pw-s3cret", timeout=10)
    said = [r.getMessage() for r in caplog.records]
    lines = [m for m in said if '"GET /orders/v0/orders?... HTTP/1.1"' in m]
    assert lines, said
    assert not any("pw-s3cret" in m for m in said)
