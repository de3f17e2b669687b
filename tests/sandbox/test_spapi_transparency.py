"""Transparency items on the SP-API emulator: ``transparency_skus`` marks order items
(``programs: ["TRANSPARENCY"]``), confirmShipment wants one Transparency code per unit confirmed
(``transparency_required``), the read-back shows the codes, a fulfilment feed line cannot carry them,
and ``POST /_sandbox/orders/<orderId>/items/<orderItemId>/transparency`` marks one item."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import requests

from connector.sandbox.seed import MARKETPLACE_IDS, SEED_SKUS, mark_transparency, order_features, seed_orders
from connector.sandbox.spapi import SpApiEmulator

US = MARKETPLACE_IDS["US"]
SINCE = "2020-01-01T00:00:00Z"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
ALL_STATUSES = ["UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED"]
MY_MARKETS = [MARKETPLACE_IDS[s] for s in ("US", "CA", "UK", "DE", "FR", "JP")]
SKU = SEED_SKUS[2]  # any seeded SKU
TRACKING = "YT1234567890123456"


def skus_of(order: dict[str, Any]) -> set[str]:
    return {it["product"]["sellerSku"] for it in order["orderItems"]}


def is_transparency(item: dict[str, Any]) -> bool:
    return "TRANSPARENCY" in (item.get("programs") or ())


def codes(n: int, prefix: str = "AZ") -> list[str]:
    """``n`` codes in the 29-character AZ... form the ordersV0 model describes."""
    return [f"{prefix}{i:027d}" for i in range(1, n + 1)]


def confirm_body(order: dict[str, Any], lines: list[dict[str, Any]], ref: str = "1") -> dict[str, Any]:
    return {"marketplaceId": order["salesChannel"]["marketplaceId"],
            "packageDetail": {"packageReferenceId": ref, "carrierCode": "Yun Express",
                              "trackingNumber": TRACKING, "shipDate": "2026-01-02T03:04:05.000Z",
                              "orderItems": lines}}


def errors_of(response: requests.Response) -> tuple[str, str]:
    (error,) = response.json()["errors"]
    return error["code"], error["message"]


def read_back(spapi, order_id: str) -> dict[str, Any]:
    response = spapi.get_order(order_id, includedData=["FULFILLMENT", "PACKAGES"])
    assert response.status_code == 200, response.text
    return response.json()["order"]


def transparency_order(spapi, *, quantity_at_least: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """An unshipped US order with an unshipped Transparency item of at least that many units."""
    def fits(order: dict[str, Any]) -> bool:
        return any(is_transparency(it) and it["fulfillment"]["quantityUnfulfilled"] >= quantity_at_least
                   for it in order["orderItems"])
    order = spapi.pick(site="US", where=fits)
    item = next(it for it in order["orderItems"] if is_transparency(it)
                and it["fulfillment"]["quantityUnfulfilled"] >= quantity_at_least)
    return order, item


def mark(spapi, order_id: str, item_id: str, **body: Any) -> requests.Response:
    return requests.post(f"{spapi.url}/_sandbox/orders/{order_id}/items/{item_id}/transparency",
                         json=body or None, timeout=5)


# -- the programs flag ---------------------------------------------------------------------------


def test_marking_adds_the_program_to_listed_skus_and_changes_nothing_else():
    plain = seed_orders("s", ["US", "DE"], 60, 7, NOW)
    marked = seed_orders("s", ["US", "DE"], 60, 7, NOW)
    changed = [mark_transparency(order, [SKU]) for order in marked]
    assert any(changed) and not all(changed)
    for before, after, was_changed in zip(plain, marked, changed, strict=True):
        assert was_changed == (SKU in skus_of(before))
        for old, new in zip(before["orderItems"], after["orderItems"], strict=True):
            if new["product"]["sellerSku"] == SKU:
                assert new["programs"] == ["TRANSPARENCY"]
                new = {k: v for k, v in new.items() if k != "programs"}
            assert new == old
        assert {k: v for k, v in after.items() if k != "orderItems"} == {
            k: v for k, v in before.items() if k != "orderItems"}
    assert not any(mark_transparency(order, [SKU]) for order in marked)  # idempotent
    assert all("transparency" in order_features(o) for o, c in zip(marked, changed, strict=True) if c)


def test_listed_skus_are_served_with_the_transparency_program(start_spapi):
    plain = start_spapi()
    spapi = start_spapi(transparency_skus=[SKU])
    assert {o["orderId"] for o in spapi.orders()} == {o["orderId"] for o in plain.orders()}
    served = spapi.search_all(lastUpdatedAfter=SINCE, marketplaceIds=MY_MARKETS,
                              fulfillmentStatuses=ALL_STATUSES)
    assert len(served) == len(plain.orders())
    items = [it for o in served for it in o["orderItems"]]
    flagged = [it for it in items if is_transparency(it)]
    assert flagged and all(it["product"]["sellerSku"] == SKU for it in flagged)
    assert all(is_transparency(it) for it in items if it["product"]["sellerSku"] == SKU)
    assert all(it["programs"] == ["TRANSPARENCY"] for it in flagged)
    order = next(o for o in served if SKU in skus_of(o))
    got = spapi.get_order(order["orderId"]).json()["order"]
    assert [it.get("programs") for it in got["orderItems"]] == [
        it.get("programs") for it in order["orderItems"]]
    assert not any("programs" in it for o in plain.orders() for it in o["orderItems"])
    assert spapi.state()["schema_violations"] == []


def test_daily_orders_and_a_state_file_are_marked_too(tmp_path, start_spapi):
    state = tmp_path / "spapi.json"
    first = start_spapi(state_file=str(state), orders_per_day=20)
    first.advance(86400 + 60)
    first.server.emulator.persist()
    assert not any(is_transparency(it) for o in first.orders() for it in o["orderItems"])
    first.server.stop()
    again = start_spapi(state_file=str(state), orders_per_day=20, transparency_skus=[SKU])
    listed = [it for o in again.orders() for it in o["orderItems"] if it["product"]["sellerSku"] == SKU]
    assert len(listed) > 1 and all(is_transparency(it) for it in listed)
    again.advance(86400)
    newest = max(o["createdTime"] for o in first.orders())
    new_day = again.orders(lambda o: o["createdTime"] > newest)
    assert new_day and all(is_transparency(it) for o in new_day for it in o["orderItems"]
               if it["product"]["sellerSku"] == SKU)


def test_the_transparency_skus_option_is_checked():
    with pytest.raises(ValueError, match="transparency_skus"):
        SpApiEmulator({"orders_per_seller": 1, "transparency_skus": "PHONE-CASE-01"})


def test_a_test_marks_one_item_of_an_existing_order(spapi):
    order = spapi.pick(site="US", where=lambda o: len(o["orderItems"]) > 1)
    first, second = order["orderItems"][:2]
    spapi.advance(600)
    response = mark(spapi, order["orderId"], first["orderItemId"])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["programs"] == ["TRANSPARENCY"] and answer["changed"] is True
    got = read_back(spapi, order["orderId"])
    assert [is_transparency(it) for it in got["orderItems"]][:2] == [True, False]
    assert got["lastUpdatedTime"] > order["lastUpdatedTime"]  # a poller sees the change
    again = mark(spapi, order["orderId"], first["orderItemId"]).json()
    assert again["changed"] is False
    off = mark(spapi, order["orderId"], first["orderItemId"], enabled=False).json()
    assert off["changed"] is True and off["programs"] == []
    assert "programs" not in read_back(spapi, order["orderId"])["orderItems"][0]
    assert mark(spapi, order["orderId"], "99999999999999").status_code == 404
    assert mark(spapi, "111-0000000-0000000", second["orderItemId"]).status_code == 404
    assert mark(spapi, order["orderId"], second["orderItemId"], enabled="yes").status_code == 400


# -- confirmShipment ------------------------------------------------------------------------------


@pytest.mark.parametrize(("sent", "count"), [(None, 0), ("short", None), ("long", None)])
def test_confirm_without_the_right_number_of_codes_is_refused(start_spapi, sent, count):
    spapi = start_spapi(transparency_skus=[SKU])
    order, item = transparency_order(spapi)
    quantity = item["fulfillment"]["quantityUnfulfilled"]
    line: dict[str, Any] = {"orderItemId": item["orderItemId"], "quantity": quantity}
    if sent is not None:
        count = quantity - 1 if sent == "short" else quantity + 1
        line["transparencyCodes"] = codes(count)
    response = spapi.confirm(order["orderId"], confirm_body(order, [line]))
    assert response.status_code == 400, response.text
    code, message = errors_of(response)
    assert code == "InvalidInput"
    assert item["orderItemId"] in message and f"{quantity} unit" in message and f"{count} sent" in message
    assert spapi.state()["confirmations"] == {}
    assert read_back(spapi, order["orderId"])["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"


@pytest.mark.parametrize("bad", ["", "AZ 123", " AZ123", "AZ123\t"])
def test_blank_codes_and_codes_with_whitespace_are_refused(start_spapi, bad):
    spapi = start_spapi(transparency_skus=[SKU])
    order, item = transparency_order(spapi)
    quantity = item["fulfillment"]["quantityUnfulfilled"]
    line = {"orderItemId": item["orderItemId"], "quantity": quantity,
            "transparencyCodes": [*codes(quantity - 1), bad]}
    response = spapi.confirm(order["orderId"], confirm_body(order, [line]))
    assert response.status_code == 400, response.text
    code, message = errors_of(response)
    assert code == "InvalidInput" and item["orderItemId"] in message
    assert spapi.state()["confirmations"] == {}


def test_the_right_codes_are_accepted_and_shown_in_the_read_back(start_spapi):
    spapi = start_spapi(transparency_skus=[SKU])
    order, item = transparency_order(spapi, quantity_at_least=2)
    others = [it for it in order["orderItems"] if it is not item]
    sent = codes(2, "ZA") + [f"SN{i:08d}" for i in range(item["fulfillment"]["quantityUnfulfilled"] - 2)]
    lines = [{"orderItemId": item["orderItemId"], "quantity": 2, "transparencyCodes": sent[:2]},
             {"orderItemId": item["orderItemId"], "quantity": len(sent) - 2, "transparencyCodes": sent[2:]}]
    lines = [line for line in lines if line["quantity"]]
    lines += [{"orderItemId": it["orderItemId"], "quantity": it["fulfillment"]["quantityUnfulfilled"]}
              for it in others if not is_transparency(it) and it["fulfillment"]["quantityUnfulfilled"]]
    response = spapi.confirm(order["orderId"], confirm_body(order, lines))
    assert response.status_code == 204, response.text
    (package,) = read_back(spapi, order["orderId"])["packages"]
    shown = {pi["orderItemId"]: pi for pi in package["packageItems"]}
    assert shown[item["orderItemId"]]["transparencyCodes"] == sent
    assert all("transparencyCodes" not in pi for i, pi in shown.items() if i != item["orderItemId"])
    confirmed = spapi.state()["confirmations"][order["orderId"]]["1"]["orderItems"]
    assert next(c for c in confirmed if c["orderItemId"] == item["orderItemId"])["transparencyCodes"] == sent
    assert spapi.state()["schema_violations"] == []


def test_codes_for_an_item_outside_transparency_are_accepted(spapi):
    order = spapi.pick(site="US", where=lambda o: len(o["orderItems"]) == 1)
    (item,) = order["orderItems"]
    line = {"orderItemId": item["orderItemId"], "quantity": item["quantityOrdered"],
            "transparencyCodes": ["SN1234567"]}
    assert spapi.confirm(order["orderId"], confirm_body(order, [line])).status_code == 204
    (package,) = read_back(spapi, order["orderId"])["packages"]
    assert package["packageItems"][0]["transparencyCodes"] == ["SN1234567"]


def test_with_the_option_off_a_transparency_item_confirms_without_codes(start_spapi):
    spapi = start_spapi(transparency_skus=[SKU], transparency_required=False)
    order, item = transparency_order(spapi)
    line = {"orderItemId": item["orderItemId"], "quantity": item["fulfillment"]["quantityUnfulfilled"]}
    assert spapi.confirm(order["orderId"], confirm_body(order, [line])).status_code == 204
    (package,) = read_back(spapi, order["orderId"])["packages"]
    assert "transparencyCodes" not in package["packageItems"][0]


def test_an_item_marked_by_the_test_hook_needs_codes(spapi):
    order = spapi.pick(site="US", where=lambda o: len(o["orderItems"]) == 1)
    (item,) = order["orderItems"]
    assert mark(spapi, order["orderId"], item["orderItemId"]).status_code == 200
    line = {"orderItemId": item["orderItemId"], "quantity": item["quantityOrdered"]}
    refused = spapi.confirm(order["orderId"], confirm_body(order, [line]))
    assert refused.status_code == 400 and item["orderItemId"] in errors_of(refused)[1]
    line["transparencyCodes"] = codes(item["quantityOrdered"])
    assert spapi.confirm(order["orderId"], confirm_body(order, [line])).status_code == 204


# -- the fulfilment feed ---------------------------------------------------------------------------


FEEDS = "/feeds/2021-06-30"
COLUMNS = ("order-id", "order-item-id", "quantity", "ship-date", "carrier-code", "carrier-name",
           "tracking-number", "ship-method")


def run_feed(spapi, rows: list[tuple[str, str, int, str]]) -> str:
    """Send a POST_FLAT_FILE_FULFILLMENT_DATA feed of (order id, item id, quantity, tracking) lines,
    let it process on the simulated clock, and return the processing report."""
    content_type = "text/tab-separated-values; charset=UTF-8"
    created = requests.post(spapi.url + FEEDS + "/documents", json={"contentType": content_type},
                            headers=spapi.headers(), timeout=5)
    assert created.status_code == 201, created.text
    document = created.json()
    lines = ["\t".join(COLUMNS)] + [
        "\t".join((o, i, str(q), "2026-01-02T03:04:05Z", "Yun Express", "", t, "")) for o, i, q, t in rows]
    uploaded = requests.put(document["url"], data=("\n".join(lines) + "\n").encode(),
                            headers={"Content-Type": content_type}, timeout=5)
    assert uploaded.status_code == 200, uploaded.text
    feed = requests.post(spapi.url + FEEDS + "/feeds", headers=spapi.headers(), timeout=5, json={
        "feedType": "POST_FLAT_FILE_FULFILLMENT_DATA", "marketplaceIds": [US],
        "inputFeedDocumentId": document["feedDocumentId"]})
    assert feed.status_code == 202, feed.text
    spapi.advance(60)
    done = requests.get(f"{spapi.url}{FEEDS}/feeds/{feed.json()['feedId']}", headers=spapi.headers(),
                        timeout=5).json()
    assert done["processingStatus"] == "DONE", done
    report = requests.get(f"{spapi.url}{FEEDS}/documents/{done['resultFeedDocumentId']}",
                          headers=spapi.headers(), timeout=5).json()
    return requests.get(report["url"], timeout=5).text


def report_errors(report: str) -> list[list[str]]:
    header = "original-record-number\torder-id\terror-code\terror-type\terror-message"
    return [line.split("\t") for line in report.split(header, 1)[1].strip().splitlines()]


def test_a_feed_line_for_a_transparency_item_is_refused(start_spapi):
    spapi = start_spapi(transparency_skus=[SKU])
    order, item = transparency_order(spapi)
    plain = spapi.pick(site="US", where=lambda o: len(o["orderItems"]) == 1
                       and not is_transparency(o["orderItems"][0]))
    quantity = item["fulfillment"]["quantityUnfulfilled"]
    report = run_feed(spapi, [(order["orderId"], item["orderItemId"], quantity, "YT1111111111111111"),
                              (plain["orderId"], plain["orderItems"][0]["orderItemId"],
                               plain["orderItems"][0]["quantityOrdered"], "YT2222222222222222")])
    ((record, order_id, code, kind, message),) = report_errors(report)
    assert (record, order_id, kind) == ("1", order["orderId"], "Error")
    assert code == "10010" and item["orderItemId"] in message and "Transparency" in message
    assert "packages" not in read_back(spapi, order["orderId"])
    assert read_back(spapi, plain["orderId"])["fulfillment"]["fulfillmentStatus"] == "SHIPPED"


def test_with_the_option_off_a_feed_line_for_a_transparency_item_applies(start_spapi):
    spapi = start_spapi(transparency_skus=[SKU], transparency_required=False)
    order, item = transparency_order(spapi)
    report = run_feed(spapi, [(order["orderId"], item["orderItemId"],
                               item["fulfillment"]["quantityUnfulfilled"], "YT1111111111111111")])
    assert report_errors(report) == []
    (package,) = read_back(spapi, order["orderId"])["packages"]
    assert package["packageItems"][0]["orderItemId"] == item["orderItemId"]
