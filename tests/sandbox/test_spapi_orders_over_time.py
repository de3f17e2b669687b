"""The SP-API emulator as simulated time passes: a buyer cancels an order (control endpoint), and
the daily order stream of ``orders_per_day``."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import requests

from connector.sandbox.seed import MARKETPLACE_IDS, daily_orders, order_features
from connector.sandbox.spapi import SpApiEmulator

SINCE = "2020-01-01T00:00:00Z"
MY_MARKETS = [MARKETPLACE_IDS[s] for s in ("US", "CA", "UK", "DE", "FR", "JP")]
OTHER = {"name": "other-seller", "refresh_token": "Atzr|other",
         "client_id": "amzn1.application-oa2-client.sandbox", "client_secret": "sandbox-secret",
         "marketplaces": ["US", "UK"]}
DEMO = {"name": "demo-seller", "refresh_token": "Atzr|sandbox-demo",
        "client_id": "amzn1.application-oa2-client.sandbox", "client_secret": "sandbox-secret",
        "marketplaces": ["US", "CA", "UK", "DE", "FR", "JP"]}
DAY = 86400


def buyer_cancel(spapi: Any, order_id: str, **body: Any) -> requests.Response:
    return requests.post(f"{spapi.url}/_sandbox/orders/{order_id}/cancel", json=body or None, timeout=5)


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- a buyer cancels -------------------------------------------------------------------------------


def test_a_buyer_cancels_an_unshipped_order(spapi):
    order = spapi.pick(where=lambda o: len(o["orderItems"]) > 1)
    spapi.advance(3600)
    before = spapi.server.emulator.clock.now()
    spapi.set_faults({"error_5xx": 1.0})  # control endpoints are never faulted
    response = buyer_cancel(spapi, order["orderId"], reason="No longer needed")
    spapi.set_faults({"error_5xx": 0.0})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["fulfillmentStatus"] == "CANCELLED" and answer["changed"] is True
    assert iso(answer["lastUpdatedTime"]) >= before.replace(microsecond=0)

    got = spapi.get_order(order["orderId"], includedData=["FULFILLMENT", "CANCELLATION"])
    assert got.status_code == 200
    live = got.json()["order"]
    assert live["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert live["lastUpdatedTime"] == answer["lastUpdatedTime"]
    for item in live["orderItems"]:
        assert item["cancellation"] == {"cancellationExecution": {"cancelledBy": "BUYER",
                                                                  "cancelReason": "No longer needed"}}
        fulfillment = item["fulfillment"]
        assert (fulfillment["quantityUnfulfilled"], fulfillment["quantityFulfilled"]) == (0, 0)

    # a client polling by lastUpdatedAfter sees the change once it is two minutes old
    spapi.advance(180)
    since = (before - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    changed = spapi.search_all(lastUpdatedAfter=since, marketplaceIds=MY_MARKETS)
    assert [o["orderId"] for o in changed] == [order["orderId"]]

    # confirmShipment is refused now, and cancelling again changes nothing
    line = {"orderItemId": order["orderItems"][0]["orderItemId"], "quantity": 1}
    confirm = spapi.confirm(order["orderId"], {
        "marketplaceId": order["salesChannel"]["marketplaceId"],
        "packageDetail": {"packageReferenceId": "1", "carrierCode": "Yun Express",
                          "trackingNumber": "YT1234567890123456", "shipDate": "2026-01-02T03:04:05Z",
                          "orderItems": [line]}})
    assert confirm.status_code == 400 and "cancelled" in confirm.text
    again = buyer_cancel(spapi, order["orderId"])
    assert again.status_code == 200 and again.json()["changed"] is False
    state = spapi.state()
    assert state["orders"][order["orderId"]] == "CANCELLED" and state["schema_violations"] == []


def test_shipped_and_unknown_orders_are_not_cancelled(spapi):
    for status in ("SHIPPED", "PARTIALLY_SHIPPED"):
        order = spapi.pick(status=status)
        response = buyer_cancel(spapi, order["orderId"])
        assert response.status_code == 409 and "shipped" in response.json()["message"]
        assert spapi.state()["orders"][order["orderId"]] == status
    assert buyer_cancel(spapi, "111-0000000-0000000").status_code == 404


def test_an_order_confirmed_just_now_can_no_longer_be_cancelled(spapi):
    order = spapi.pick(where=lambda o: len(o["orderItems"]) == 1)
    item = order["orderItems"][0]
    response = spapi.confirm(order["orderId"], {
        "marketplaceId": order["salesChannel"]["marketplaceId"],
        "packageDetail": {"packageReferenceId": "1", "carrierCode": "Yun Express",
                          "trackingNumber": "YT1234567890123456", "shipDate": "2026-01-02T03:04:05Z",
                          "orderItems": [{"orderItemId": item["orderItemId"],
                                          "quantity": item["fulfillment"]["quantityUnfulfilled"]}]}})
    assert response.status_code == 204
    assert buyer_cancel(spapi, order["orderId"]).status_code == 409


def test_a_cancellation_survives_a_restart(start_spapi, tmp_path):
    state_file = str(tmp_path / "spapi.json")
    spapi = start_spapi(state_file=state_file)
    order = spapi.pick()
    assert buyer_cancel(spapi, order["orderId"]).status_code == 200
    restarted = SpApiEmulator({"state_file": state_file})
    kept = restarted.store["orders"][order["orderId"]]["order"]
    assert kept["fulfillment"]["fulfillmentStatus"] == "CANCELLED"


# -- the daily order stream ------------------------------------------------------------------------


def test_no_daily_orders_by_default(spapi):
    count = len(spapi.orders())
    spapi.advance(5 * DAY)
    assert len(spapi.orders()) == count
    assert spapi.state()["order_stream"]["orders_per_day"] == 0


def test_each_simulated_day_brings_new_orders_to_each_seller(start_spapi):
    spapi = start_spapi(sellers=[DEMO, OTHER], orders_per_day=4, orders_per_seller=10)
    other = spapi.for_seller(OTHER)
    epoch = iso(spapi.state()["order_stream"]["since"])
    seeded = {o["orderId"] for o in spapi.orders()}
    assert len(seeded) == 10 and len(other.orders()) == 10

    spapi.advance(DAY / 2)
    assert len(spapi.orders()) == 10  # the first day has not ended
    spapi.advance(3 * DAY)  # 3.5 days: three days ended
    mine = [o for o in spapi.orders() if o["orderId"] not in seeded]
    assert len(mine) == 12 and len(other.orders()) == 22
    assert spapi.state()["order_stream"]["days"] == 3
    assert all(iso(o["createdTime"]) < epoch for o in spapi.orders() if o["orderId"] in seeded)
    days = sorted({iso(o["createdTime"]) for o in mine})
    assert days == [(epoch + timedelta(days=d)).replace(microsecond=0) for d in (1, 2, 3)]
    for order in mine:
        assert order["lastUpdatedTime"] == order["createdTime"]
        assert order["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
        assert not order.get("packages")
        assert order["fulfillment"]["shipByWindow"]["earliestDateTime"] == order["createdTime"]
        assert {"partial", "shipped", "cancelled"}.isdisjoint(order_features(order))

    # the new orders are served like the seed: found by createdAfter, valid against the model
    spapi.advance(180)
    found = spapi.search_all(createdAfter=(epoch + timedelta(hours=23)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                             marketplaceIds=MY_MARKETS)
    assert sorted(o["orderId"] for o in found) == sorted(o["orderId"] for o in mine)
    for order in mine[:3]:
        assert spapi.get_order(order["orderId"], includedData=["RECIPIENT", "PROCEEDS"]).status_code == 200
    assert spapi.state()["schema_violations"] == []


def test_the_stream_is_deterministic_and_survives_a_restart(start_spapi, tmp_path):
    state_file = str(tmp_path / "spapi.json")
    first = start_spapi(orders_per_day=3, orders_per_seller=5, state_file=state_file)
    first.advance(2 * DAY + 60)
    ids = sorted(o["orderId"] for o in first.orders())
    assert len(ids) == 11
    first.server.stop()
    restarted = start_spapi(orders_per_day=3, orders_per_seller=5, state_file=state_file)
    assert sorted(o["orderId"] for o in restarted.orders()) == ids  # no day added twice
    restarted.advance(DAY)
    assert len(restarted.orders()) == 14

    at = datetime.fromisoformat("2026-03-02T00:00:00+00:00")
    one = daily_orders("demo-seller", ["US", "UK"], 5, 7, 4, at)
    assert one == daily_orders("demo-seller", ["US", "UK"], 5, 7, 4, at)
    next_day = daily_orders("demo-seller", ["US", "UK"], 5, 7, 5, at)
    assert {o["orderId"] for o in one}.isdisjoint(o["orderId"] for o in next_day)
    assert {o["salesChannel"]["marketplaceId"] for o in one} == {MARKETPLACE_IDS["US"], MARKETPLACE_IDS["UK"]}
    assert daily_orders("demo-seller", ["US"], 0, 7, 4, at) == []
