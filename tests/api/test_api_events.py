"""The HTTP API's event outbox and webhook endpoints against the sandbox."""
from __future__ import annotations

import base64

import pytest

pytestmark = pytest.mark.e2e

SECRET = "whsec_" + base64.b64encode(bytes(range(24))).decode()
WEBHOOKS = {"webhooks": {"endpoints": [{"name": "erp", "url": "http://127.0.0.1:9/", "secret": SECRET,
                                        "events": ["order.*", "package.*"]}]}}


def test_events_page_by_next_after(api):
    a = api()
    a.run_daemon()
    everything = a.rt.ledger.events(limit=100_000)
    assert len(everything) > 10
    seen: list[dict] = []
    after = 0
    pages = 0
    while True:
        r = a.get("/v1/events", scope="read", params={"after": after, "limit": 4})
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        if not body["items"]:
            assert body["next_after"] is None
            break
        assert len(body["items"]) <= 4
        seen += body["items"]
        after = body["next_after"]
        assert body["items"][-1]["data"]["event_id"] == f"evt_{after}"
    assert pages == -(-len(everything) // 4) + 1  # the last one empty: caught up
    assert seen == [e.payload() for e in everything]  # the webhook payloads, each once, oldest first

    # caught up: polling with the last id answers nothing until something happens
    quiet = a.get("/v1/events", scope="read", params={"after": after}).json()
    assert quiet == {"items": [], "next_after": None}
    oid = a.rt.ledger.orders()[0].order_id
    a.post(f"/v1/orders/{oid}/hold", scope="operate", json={"reason": "manual", "message": "look"})
    fresh = a.get("/v1/events", scope="read", params={"after": after}).json()
    assert [i["type"] for i in fresh["items"]] == ["order.held"]
    assert fresh["items"][0]["data"]["order_id"] == oid and fresh["items"][0]["data"]["reason"] == "manual"
    assert fresh["next_after"] == after + 1


def test_events_of_one_order(api):
    a = api()
    a.run_daemon()
    oid = a.rt.ledger.orders()[0].order_id
    body = a.get("/v1/events", scope="read", params={"order_id": oid, "limit": 500}).json()
    assert body["items"] and all(i["data"]["order_id"] == oid for i in body["items"])
    assert body["items"] == [e.payload() for e in a.rt.ledger.events(order_id=oid, limit=500)]
    assert a.get("/v1/events", scope="read", params={"order_id": "999-0000000-0000000"}).json() == \
        {"items": [], "next_after": None}


def test_event_queries_are_checked(api):
    a = api({"api": {"page_size_max": 2}})
    a.run_daemon(passes=1)
    assert len(a.get("/v1/events", scope="read", params={"limit": 50}).json()["items"]) == 2  # capped
    for params, field in (({"after": -1}, "after"), ({"limit": 0}, "limit"), ({"after": "x"}, "after"),
                          ({"after": 2**70}, "after")):
        r = a.get("/v1/events", scope="read", params=params)
        assert r.status_code == 422, params
        assert r.json()["errors"][0]["field"] == field
    assert a.client.get("/v1/events").status_code == 401


def test_webhook_endpoints_are_listed_for_admins_without_their_secret(api):
    a = api(WEBHOOKS)
    a.run_daemon()  # delivery to the discard port fails: every delivery stays pending
    r = a.get("/v1/webhooks", scope="admin")
    assert r.status_code == 200, r.text
    counts = a.rt.ledger.webhook_counts("erp")
    assert counts.get("pending", 0) > 0
    assert r.json() == [{"endpoint": "erp", "url": "http://127.0.0.1:9/", "events": ["order.*", "package.*"],
                         "pending": counts.get("pending", 0), "delivered": counts.get("delivered", 0),
                         "dead": counts.get("dead", 0)}]
    assert SECRET not in r.text and SECRET.removeprefix("whsec_") not in r.text
    for scope in ("read", "operate", "read+pii"):
        assert a.get("/v1/webhooks", scope=scope).status_code == 403, scope
    no_endpoints = api()
    assert no_endpoints.get("/v1/webhooks", scope="admin").json() == []


def test_replay_queues_delivered_and_dead_events_again(api):
    a = api(WEBHOOKS)
    a.run_daemon()
    ledger = a.rt.ledger
    queued = [r[0] for r in ledger._conn().execute(
        "SELECT event_id FROM webhook_deliveries WHERE endpoint = 'erp' ORDER BY event_id").fetchall()]
    assert len(queued) >= 6
    delivered, dead = queued[: len(queued) // 2], queued[len(queued) // 2:]
    for event_id in delivered:
        ledger.webhook_result("erp", event_id, status="200", delivered=True, next_attempt_at=None)
    for event_id in dead:
        ledger.webhook_result("erp", event_id, status="connection refused", delivered=False,
                              next_attempt_at=None)
    status = a.get("/v1/webhooks", scope="admin").json()[0]
    assert (status["pending"], status["delivered"], status["dead"]) == (0, len(delivered), len(dead))

    r = a.post("/v1/webhooks/erp/replay", scope="admin", json={"dead_only": True})
    assert r.status_code == 200, r.text
    assert r.json() == {"queued": len(dead)}
    assert ledger.webhook_counts("erp") == {"pending": len(dead), "delivered": len(delivered)}

    start = delivered[1]
    r = a.post("/v1/webhooks/erp/replay", scope="admin", json={"from_event": start})
    assert r.json() == {"queued": len([e for e in delivered if e >= start])}
    everything = a.post("/v1/webhooks/erp/replay", scope="admin")  # no body: every delivered and dead one
    assert everything.status_code == 200 and everything.json() == {"queued": 1}  # only the first is left

    unknown = a.post("/v1/webhooks/crm/replay", scope="admin", json={})
    assert unknown.status_code == 404 and "crm" in unknown.json()["detail"]
    assert unknown.headers["content-type"].startswith("application/problem+json")
    bad = a.post("/v1/webhooks/erp/replay", scope="admin", json={"from_event": -1})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "from_event"
    assert a.post("/v1/webhooks/erp/replay", scope="operate", json={}).status_code == 403
    assert a.post("/v1/webhooks/erp/replay", scope="read", json={}).status_code == 403
