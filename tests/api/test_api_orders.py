"""The HTTP API's orders and packages against the sandbox: lists, filters, cursors, PII, steering,
labels, scopes."""
from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import pytest

from connector.ledger import OrderState, PackageState

pytestmark = pytest.mark.e2e


def walk(a, path: str, scope: str = "read", **params) -> list[dict]:
    """Every item of a listing, page by page."""
    items: list[dict] = []
    cursor = None
    for _ in range(1000):
        r = a.get(path, scope=scope, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the listing never ended")


def ids(items: list[dict], key: str = "order_id") -> list:
    return [i[key] for i in items]


def in_creation_order(a) -> list[str]:
    rows = a.rt.ledger._conn().execute("SELECT order_id FROM orders ORDER BY created_at, order_id").fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def shipped(api):
    """An API over a ledger the daemon has worked: some orders VERIFIED with labels, some HELD."""
    a = api()
    a.run_daemon()
    records = a.rt.ledger.orders()
    assert any(r.state is OrderState.VERIFIED for r in records), [r.state for r in records]
    assert any(r.state is OrderState.HELD for r in records)
    return a


def verified(a) -> list[str]:
    return [r.order_id for r in a.rt.ledger.orders([OrderState.VERIFIED])]


def test_cursor_pages_cover_every_order_once(shipped):
    a = shipped
    everything = in_creation_order(a)
    assert len(everything) >= 10
    for size in (1, 2, 5, 500):
        got = ids(walk(a, "/v1/orders", limit=size))
        assert got == everything, size  # none missing, none twice, oldest first
    first = a.get("/v1/orders", scope="read", params={"limit": 3}).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    last = a.get("/v1/orders", scope="read", params={"limit": len(everything)}).json()
    assert last["next_cursor"] is None  # exactly one page: no empty page to fetch


def test_summaries_carry_the_newest_package(shipped):
    a = shipped
    for item in walk(a, "/v1/orders", limit=4):
        record = a.rt.ledger.get_order(item["order_id"])
        packages = a.rt.ledger.packages(item["order_id"])
        assert item["state"] == record.state.value and item["site"] == record.order.site
        assert item["account"] == record.order.account
        if packages:
            newest = packages[-1]
            assert (item["carrier"], item["service"], item["tracking_number"]) == \
                (newest.carrier, newest.service, newest.tracking_number or None)
        else:
            assert item["carrier"] is item["service"] is item["tracking_number"] is None
        if record.state is OrderState.HELD:
            assert (item["hold_reason"], item["hold_message"]) == (record.hold_reason, record.hold_message)
        else:
            assert item["hold_reason"] is None and item["hold_message"] is None
        assert (datetime.fromisoformat(item["ship_by"].replace("Z", "+00:00")) if item["ship_by"] else None) \
            == record.order.ship_by


def test_filters_select_exactly_the_matching_orders(shipped):
    a = shipped
    records = {r.order_id: r for r in a.rt.ledger.orders()}
    order = in_creation_order(a)

    def expect(pred) -> list[str]:
        return [oid for oid in order if pred(records[oid])]

    held = ids(walk(a, "/v1/orders", state="HELD", limit=1))
    assert held and held == expect(lambda r: r.state is OrderState.HELD)
    both = ids(walk(a, "/v1/orders", state=["HELD", "VERIFIED"], limit=2))
    assert both == expect(lambda r: r.state in (OrderState.HELD, OrderState.VERIFIED))
    assert ids(walk(a, "/v1/orders", site="JP", limit=2)) == expect(lambda r: r.order.site == "JP")
    assert ids(walk(a, "/v1/orders", account="demo-eu", limit=2)) == \
        expect(lambda r: r.order.account == "demo-eu")
    reason = records[held[0]].hold_reason
    assert ids(walk(a, "/v1/orders", hold_reason=reason, limit=1)) == \
        expect(lambda r: r.hold_reason == reason)
    ship_bys = sorted({r.order.ship_by for r in records.values() if r.order.ship_by})
    assert len(ship_bys) > 1
    cut = ship_bys[1]
    got = ids(walk(a, "/v1/orders", ship_by_before=cut.isoformat(), limit=2))
    assert got and got == expect(lambda r: r.order.ship_by is not None and r.order.ship_by < cut)
    end_of_time = ids(walk(a, "/v1/orders", ship_by_before="9999-12-31T23:59:59.999999", limit=50))
    assert end_of_time == expect(lambda r: r.order.ship_by is not None)  # not a 500 (rounding overflowed)
    times = sorted(r.updated_at for r in records.values())
    since = times[len(times) // 2]
    got = ids(walk(a, "/v1/orders", updated_since=since.isoformat().replace("+00:00", "Z"), limit=3))
    assert got and got == expect(lambda r: r.updated_at >= since)
    combined = ids(walk(a, "/v1/orders", state="HELD", account="demo-eu", limit=1))
    assert combined == expect(lambda r: r.state is OrderState.HELD and r.order.account == "demo-eu")
    assert walk(a, "/v1/orders", site="XX") == []


def test_bad_queries_are_problems_naming_the_parameter(shipped):
    a = shipped
    for params, field in (({"cursor": "not-a-cursor!"}, "cursor"),
                          ({"cursor": base64.urlsafe_b64encode(b'["packages",3]').decode()}, "cursor"),
                          ({"cursor": base64.urlsafe_b64encode(b'{"a": 1}').decode()}, "cursor"),
                          ({"limit": 0}, "limit"),
                          ({"state": "SHIPPED_BY_PIGEON"}, "state"),
                          ({"hold_reason": "carrier_on_fire"}, "hold_reason"),
                          ({"ship_by_before": "tomorrow"}, "ship_by_before"),
                          ({"updated_since": "0001-01-01T00:00:00+05:00"}, "updated_since")):
        r = a.get("/v1/orders", scope="read", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert any(e["field"].split(".")[0] == field for e in r.json()["errors"]), (params, r.json())
    orders_cursor = a.get("/v1/orders", scope="read", params={"limit": 1}).json()["next_cursor"]
    r = a.get("/v1/packages", scope="read", params={"cursor": orders_cursor})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"


def test_page_size_is_capped(api):
    a = api({"api": {"page_size_max": 3}})
    a.run_daemon(passes=1)
    page = a.get("/v1/orders", scope="read", params={"limit": 100}).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    assert ids(walk(a, "/v1/orders", limit=100)) == in_creation_order(a)


def _address_parts(record) -> list[str]:
    """The distinctive parts of a buyer address (two-letter codes also occur in non-PII fields)."""
    return [v for k, v in asdict(record.order.ship_to).items() if v and k not in ("country_code", "state")]


def test_buyer_address_only_with_the_pii_scope(shipped):
    a = shipped
    with_address = [oid for oid in in_creation_order(a) if a.rt.ledger.get_order(oid).order.ship_to]
    assert len(with_address) >= 5
    for oid in with_address:
        record = a.rt.ledger.get_order(oid)  # decrypted
        parts = _address_parts(record)
        assert parts
        for scope in ("read", "operate"):
            r = a.get(f"/v1/orders/{oid}", scope=scope)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["ship_to"] is None and body["address_on_file"] is True
            leaked = [p for p in parts if p in r.text]
            assert not leaked, (scope, oid, leaked)
        for scope in ("read+pii", "admin"):
            body = a.get(f"/v1/orders/{oid}", scope=scope).json()
            assert body["ship_to"] == asdict(record.order.ship_to)
    listing = a.get("/v1/orders", scope="read+pii", params={"limit": 500})
    everyone = [p for oid in with_address for p in _address_parts(a.rt.ledger.get_order(oid))]
    assert not [p for p in everyone if p in listing.text]  # lists never carry addresses, whatever the token
    packages = a.get("/v1/packages", scope="read+pii", params={"limit": 500})
    assert not [p for p in everyone if p in packages.text]
    assert a.get(f"/v1/orders/{oid}", scope="pii").status_code == 403  # pii alone does not read


def test_an_address_no_key_reads_is_named_not_a_500(shipped, caplog):
    """Sealed with a key no longer configured: the order is shown as `orders show` shows it, its
    ship_to null and ship_to_unreadable naming the key problem, never the buyer's data."""
    from cryptography.fernet import Fernet

    from connector.ledger.crypto import PiiCipher, seal_address

    a = shipped
    oid, other = verified(a)[:2]
    record = a.rt.ledger.get_order(oid)
    blob = seal_address(PiiCipher([Fernet.generate_key()]), oid, record.order.ship_to)
    with a.rt.ledger._write() as conn:
        conn.execute("UPDATE orders SET pii = ? WHERE order_id = ?", (blob, oid))
    for scope in ("read+pii", "admin"):
        r = a.get(f"/v1/orders/{oid}", scope=scope)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ship_to"] is None and body["address_on_file"] is True and body["state"] == "VERIFIED"
        assert body["ship_to_unreadable"].startswith(f"order {oid}: buyer data cannot be decrypted: no "
                                                     "configured PII key matches it"), body
        assert "pii rotate" in body["ship_to_unreadable"]
        assert [p["id"] for p in body["packages"]] == [p.id for p in a.rt.ledger.packages(oid)]
        assert not [p for p in _address_parts(record) if p in r.text or p in caplog.text]
    plain = a.get(f"/v1/orders/{oid}", scope="read").json()  # never decrypted: nothing to say
    assert plain["ship_to"] is None and plain["ship_to_unreadable"] is None and plain["address_on_file"]
    readable = a.get(f"/v1/orders/{other}", scope="read+pii").json()
    assert readable["ship_to"] and readable["ship_to_unreadable"] is None


def test_purged_address_is_gone_for_every_token(shipped):
    a = shipped
    oid = next(oid for oid in in_creation_order(a) if a.rt.ledger.get_order(oid).order.ship_to)
    assert a.get(f"/v1/orders/{oid}", scope="admin").json()["ship_to"]
    a.rt.ledger.purge_pii([oid])
    body = a.get(f"/v1/orders/{oid}", scope="admin").json()
    assert body["ship_to"] is None and body["address_on_file"] is False and body["pii_purged"] is True


def test_a_purged_orders_label_is_gone(shipped):
    """The label shows the buyer's address: once that is purged, the label is refused with 410 (also
    where its file was not deleted yet), not offered, and not printed."""
    a = shipped
    oid = verified(a)[0]
    package = a.rt.ledger.packages(oid)[-1]
    assert a.get(f"/v1/packages/{package.id}/label", scope="read+pii").status_code == 200
    a.rt.ledger.purge_pii([oid])
    assert os.path.isfile(package.label_path)  # the file sweep has not run yet
    r = a.get(f"/v1/packages/{package.id}/label", scope="read+pii")
    assert r.status_code == 410 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("#label-erased") and body["title"] == "Gone"
    assert body["detail"].startswith(f"package {package.id} of order {oid}: its buyer data was purged on ")
    assert body["errors"] == [{"field": "package_id", "message": "label erased"}]
    assert a.get(f"/v1/packages/{package.id}", scope="read").json()["label_url"] is None
    assert a.get(f"/v1/orders/{oid}", scope="read").json()["packages"][-1]["label_url"] is None
    printed = a.post("/v1/labels/print", scope="operate+pii", json={"order_ids": [oid], "reprint": True})
    assert printed.status_code == 410 and printed.json()["type"].endswith("#label-erased")
    assert printed.json()["errors"][0]["message"].startswith(f"{oid}: its buyer data was purged on ")


def test_show_order_has_state_packages_and_history(shipped):
    a = shipped
    oid = verified(a)[0]
    r = a.get(f"/v1/orders/{oid}", scope="read")
    assert r.status_code == 200
    body = r.json()
    record = a.rt.ledger.get_order(oid)
    expected_order = record.order.to_dict()
    for key in ("order_id", "account", "marketplace_id", "site", "status", "programs", "total"):
        assert body["order"][key] == expected_order[key], key
    assert [i["sku"] for i in body["order"]["items"]] == [i.sku for i in record.order.items]
    assert body["state"] == "VERIFIED" and body["hold"] is None and body["pii_purged"] is False
    packages = a.rt.ledger.packages(oid)
    assert [p["id"] for p in body["packages"]] == [p.id for p in packages]
    newest = body["packages"][-1]
    assert newest["state"] == "VERIFIED" and newest["tracking_number"] == packages[-1].tracking_number
    assert newest["label_url"] == f"/v1/packages/{packages[-1].id}/label"
    assert isinstance(newest["events"], list)
    assert [(h["from"], h["to"]) for h in body["history"]] == \
        [(h["from"], h["to"]) for h in a.rt.ledger.history(oid)]
    assert body["history"][0]["from"] is None and body["history"][0]["to"] == "NEW"

    missing = a.get("/v1/orders/999-0000000-0000000", scope="read")
    assert missing.status_code == 404 and "999-0000000-0000000" in missing.json()["detail"]
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_hold_release_retry_round_trip(shipped):
    a = shipped
    oid = verified(a)[0]
    r = a.post(f"/v1/orders/{oid}/hold", scope="operate",
               json={"reason": "manual", "message": "check the box"})
    assert r.status_code == 200, r.text
    assert r.json() == {"order_id": oid, "action": "hold", "state": "HELD", "detail": "HELD (manual)",
                        "complete": True, "package_id": None, "refund": None}
    shown = a.get(f"/v1/orders/{oid}", scope="read").json()
    assert shown["state"] == "HELD"
    assert shown["hold"] == {"reason": "manual", "message": "check the box", "held_from": "VERIFIED"}
    listed = ids(walk(a, "/v1/orders", state="HELD", hold_reason="manual"))
    assert listed == [oid]
    held_events = [e for e in a.rt.ledger.events(order_id=oid, limit=1000) if e.type == "order.held"]
    assert held_events and held_events[-1].data["reason"] == "manual"

    r = a.post(f"/v1/orders/{oid}/release", scope="operate")
    assert r.status_code == 200 and r.json()["state"] == "VERIFIED"
    assert r.json()["detail"] == "released to VERIFIED"
    assert a.rt.ledger.get_order(oid).state is OrderState.VERIFIED

    again = a.post(f"/v1/orders/{oid}/release", scope="operate")
    assert again.status_code == 409 and oid in again.json()["detail"]
    assert again.headers["content-type"].startswith("application/problem+json")

    default = a.post(f"/v1/orders/{oid}/hold", scope="admin")  # no body: manual, by an operator
    assert default.status_code == 200 and default.json()["detail"] == "HELD (manual)"
    assert a.rt.ledger.get_order(oid).hold_message == "held by an operator"
    a.post(f"/v1/orders/{oid}/release", scope="operate")

    finished = a.post(f"/v1/orders/{oid}/retry", scope="operate")  # VERIFIED: nothing left to retry
    assert finished.status_code == 409 and "no step left to retry" in finished.json()["detail"]
    held = next(r.order_id for r in a.rt.ledger.orders([OrderState.HELD]) if r.held_from is OrderState.NEW)
    refused = a.post(f"/v1/orders/{held}/retry", scope="operate")
    assert refused.status_code == 409 and "release it" in refused.json()["detail"]
    a.post(f"/v1/orders/{held}/release", scope="operate")  # NEW again, and the daemon is not running
    a.rt.ledger.defer(held, datetime.now(timezone.utc) + timedelta(hours=2), "carrier down")
    assert a.rt.ledger.get_order(held).attempts == 1
    r = a.post(f"/v1/orders/{held}/retry", scope="operate")
    assert r.status_code == 200 and r.json()["detail"] == "due now" and r.json()["state"] == "NEW"
    record = a.rt.ledger.get_order(held)
    assert record.attempts == 0 and record.next_attempt_at is None


def test_release_with_replan_gives_a_label_claim_up(shipped):
    """An order held with a label claim its carrier does not show: the operator, having checked
    the carrier, releases it with ``{"replan": true}`` and it is planned again from NEW."""
    a = shipped
    oid = next(r.order_id for r in a.rt.ledger.orders([OrderState.HELD])
               if r.held_from is OrderState.NEW and not a.rt.ledger.packages(r.order_id))
    a.rt.ledger.release(oid)
    package = a.rt.ledger.plan_package(oid, "1", f"{oid}-1", "yanwen", "YW-TEST", [])
    a.rt.ledger.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED,
                        order_state=OrderState.LABEL_CLAIMED)
    a.rt.ledger.hold(oid, "label_uncertain", "a call lost its answer")

    for body in ({"replan": True, "why": "checked"}, {"replan": "yes"}, {"replan": 1}):  # it spends money
        refused = a.post(f"/v1/orders/{oid}/release", scope="operate", json=body)
        assert refused.status_code == 422, body
    assert a.rt.ledger.get_order(oid).state is OrderState.HELD
    r = a.post(f"/v1/orders/{oid}/release", scope="operate", json={"replan": True})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "NEW"
    assert r.json()["detail"] == f"label claim {oid}-1 given up; released to NEW"
    assert a.rt.ledger.get_package(package.id).state is PackageState.FAILED
    assert a.rt.ledger.get_order(oid).state is OrderState.NEW

    daemon_only = a.post(f"/v1/orders/{oid}/hold", scope="operate", json={"reason": "label_uncertain"})
    assert daemon_only.status_code == 422 and daemon_only.json()["errors"][0]["field"] == "reason"
    a.rt.ledger.hold(oid, "label_uncertain", "as the label step would")
    nothing = a.post(f"/v1/orders/{oid}/release", scope="operate", json={"replan": True})
    assert nothing.status_code == 409 and "no label claim to give up" in nothing.json()["detail"]
    a.post(f"/v1/orders/{oid}/release", scope="operate")
    a.post(f"/v1/orders/{oid}/hold", scope="operate")  # manual: maybe mid-step, so never a replan
    manual = a.post(f"/v1/orders/{oid}/release", scope="operate", json={"replan": True})
    assert manual.status_code == 409 and "held manual" in manual.json()["detail"]
    plain = a.post(f"/v1/orders/{oid}/release", scope="operate", json={"replan": False})
    assert plain.status_code == 200 and plain.json()["detail"] == "released to NEW"


def test_steering_errors_are_problems_naming_the_order(shipped):
    a = shipped
    unknown = "999-0000000-0000000"
    for action in ("hold", "release", "retry", "void"):
        r = a.post(f"/v1/orders/{unknown}/{action}", scope="operate")
        assert r.status_code == 404, (action, r.text)
        assert unknown in r.json()["detail"]
    bad = a.post(f"/v1/orders/{verified(a)[0]}/hold", scope="operate", json={"reason": "carrier_on_fire"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"
    extra = a.post(f"/v1/orders/{verified(a)[0]}/hold", scope="operate", json={"why": "because"})
    assert extra.status_code == 422
    cancelled = [r.order_id for r in a.rt.ledger.orders([OrderState.CANCELLED])]
    if cancelled:
        r = a.post(f"/v1/orders/{cancelled[0]}/hold", scope="operate")
        assert r.status_code == 409 and cancelled[0] in r.json()["detail"]
    unlabeled = [r.order_id for r in a.rt.ledger.orders([OrderState.HELD])
                 if not a.rt.ledger.packages(r.order_id)]
    r = a.post(f"/v1/orders/{unlabeled[0]}/void", scope="operate")
    assert r.status_code == 409 and f"order {unlabeled[0]} has no label to void" in r.json()["detail"]


def test_read_token_cannot_steer(shipped):
    a = shipped
    oid = verified(a)[0]
    for action in ("hold", "release", "retry", "void"):
        r = a.post(f"/v1/orders/{oid}/{action}", scope="read")
        assert r.status_code == 403, (action, r.text)
        assert r.json()["type"].endswith("insufficient-scope")
        assert a.post(f"/v1/orders/{oid}/{action}", scope="read+pii").status_code == 403
        assert a.client.post(f"/v1/orders/{oid}/{action}").status_code == 401
    assert a.rt.ledger.get_order(oid).state is OrderState.VERIFIED
    assert a.client.get("/v1/orders").status_code == 401
    assert a.client.get(f"/v1/packages/{a.rt.ledger.packages(oid)[-1].id}/label").status_code == 401


def test_void_round_trip(shipped):
    a = shipped
    oid = verified(a)[0]
    package = a.rt.ledger.packages(oid)[-1]
    assert a.get(f"/v1/packages/{package.id}/label", scope="read+pii").status_code == 200
    assert a.get(f"/v1/packages/{package.id}/label", scope="read").status_code == 403  # a label is PII
    r = a.post(f"/v1/orders/{oid}/void", scope="operate")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["action"] == "void" and body["state"] == "VOIDED" and body["complete"] is True
    assert body["package_id"] == package.id
    assert body["detail"].startswith(f"label {package.tracking_number} voided at {package.carrier}")
    done = a.rt.ledger.get_package(package.id)
    assert done.state is PackageState.VOIDED
    if done.refund:
        assert body["refund"] == {"amount": str(done.refund["amount"]), "currency": done.refund["currency"]}
    shown = a.get(f"/v1/packages/{package.id}", scope="read").json()
    assert shown["state"] == "VOIDED" and shown["label_url"] is None and shown["voided_at"]
    gone = a.get(f"/v1/packages/{package.id}/label", scope="read+pii")
    assert gone.status_code == 404 and "VOIDED" in gone.json()["detail"]
    twice = a.post(f"/v1/orders/{oid}/void", scope="operate")  # an ERP's retry: the same answer
    assert twice.status_code == 200 and twice.json() == body, twice.text


def test_packages_list_show_and_label(shipped):
    a = shipped
    conn = a.rt.ledger._conn()
    every = [r[0] for r in conn.execute("SELECT id FROM packages ORDER BY id").fetchall()]
    assert every
    for size in (1, 2, 500):
        assert ids(walk(a, "/v1/packages", limit=size), "id") == every
    package = a.rt.ledger.get_package(every[0])
    by_order = walk(a, "/v1/packages", order_id=package.order_id)
    assert ids(by_order, "id") == [p.id for p in a.rt.ledger.packages(package.order_id)]
    by_carrier = walk(a, "/v1/packages", carrier=package.carrier, limit=1)
    assert ids(by_carrier, "id") == \
        [i for i in every if a.rt.ledger.get_package(i).carrier == package.carrier]
    states = walk(a, "/v1/packages", state=["VERIFIED", "LABELED"])
    assert ids(states, "id") == [i for i in every if a.rt.ledger.get_package(i).state.value
                                 in ("VERIFIED", "LABELED")]
    assert walk(a, "/v1/packages", state="VOIDED") == []
    later = walk(a, "/v1/packages", updated_since="2999-01-01T00:00:00Z")
    assert later == []

    shown = a.get(f"/v1/packages/{package.id}", scope="read")
    assert shown.status_code == 200
    body = shown.json()
    assert (body["order_id"], body["tracking_number"], body["carrier"], body["state"]) == \
        (package.order_id, package.tracking_number, package.carrier, package.state.value)
    assert body["items"] == [{"order_item_id": i["order_item_id"], "quantity": i["quantity"]}
                             for i in package.items]
    assert [e["status"] for e in body["events"]] == \
        [e.status for e in a.rt.ledger.tracking_events(package.id)]
    assert "label_path" not in body  # a path on the server is nobody's business

    label = a.get(body["label_url"], scope="read+pii")
    assert label.status_code == 200
    assert label.headers["content-type"] == "application/pdf"
    assert label.content.startswith(b"%PDF-")
    with open(package.label_path, "rb") as fh:
        assert label.content == fh.read()

    assert a.get("/v1/packages/999999", scope="read").status_code == 404
    assert a.get("/v1/packages/999999/label", scope="read+pii").status_code == 404
    assert a.get(f"/v1/packages/{2**70}", scope="read").status_code == 422
    assert a.get("/v1/packages/0", scope="read").status_code == 422


def test_a_package_without_a_label_file_is_a_404(shipped):
    a = shipped
    package = a.rt.ledger.get_package(a.rt.ledger.package_page(limit=1)[0].id)
    os.remove(package.label_path)
    r = a.get(f"/v1/packages/{package.id}/label", scope="read+pii")
    assert r.status_code == 404 and str(package.id) in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")


def test_the_openapi_document_declares_every_answer(api):
    a = api()
    doc = a.client.get("/openapi.json").json()
    for path in ("/v1/orders", "/v1/orders/{order_id}", "/v1/packages", "/v1/packages/{package_id}"):
        ok = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"]["$ref"].startswith("#/components/schemas/")
    label = doc["paths"]["/v1/packages/{package_id}/label"]["get"]["responses"]
    assert list(label["200"]["content"]) == ["application/pdf"] and "404" in label and "410" in label
    for action in ("hold", "release", "retry", "void"):
        responses = doc["paths"][f"/v1/orders/{{order_id}}/{action}"]["post"]["responses"]
        assert {"200", "403", "404", "409"} <= set(responses)
    detail = doc["components"]["schemas"]["OrderDetail"]
    assert set(detail["required"]) >= {"ship_to", "ship_to_unreadable", "address_on_file", "packages",
                                       "history"}
    assert json.dumps(doc["components"]["schemas"]["OrderSummary"]).count("null") >= 5


@pytest.mark.parametrize("row", ["order", "package"])
def test_an_unreadable_order_or_package_is_a_problem_saying_which_not_a_bare_500(shipped, row, caplog):
    """An order or package row whose stored JSON cannot be read (a hand edit, a restore gone wrong:
    the daemon holds that order ledger_inconsistent) answered its single view with a bare 500 ("the
    log has the details"); the lists pass it over. The view now says which row, and why, without
    any of its content."""
    a = shipped
    oid = verified(a)[0]
    package = a.rt.ledger.packages(oid)[-1]
    with a.rt.ledger._write() as conn:
        if row == "order":
            conn.execute("UPDATE orders SET data = ? WHERE order_id = ?", ('{"order_id": "' + oid, oid))
        else:
            conn.execute("UPDATE packages SET items = ? WHERE id = ?", ('[{"order_item_id": ', package.id))
    for path in (f"/v1/orders/{oid}", f"/v1/packages/{package.id}"):
        r = a.get(path, scope="read")
        if row == "order" and path.startswith("/v1/packages"):
            continue  # a package's view does not read its order's data
        body = r.json()
        assert r.status_code == 500 and body["type"].endswith("#ledger-inconsistent"), body
        assert oid in body["detail"] and "cannot be read" in body["detail"], body
        assert "ledger_inconsistent" in body["detail"] or "restore" in body["detail"], body
