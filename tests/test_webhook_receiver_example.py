"""examples/webhook-receiver/receiver.py: verifies what connector.webhooks signs, refuses a bad or
stale signature, deduplicates on webhook-id, and agrees with the standardwebhooks package."""
from __future__ import annotations

import http.client
import importlib.util
import io
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from connector.events import Event
from connector.webhooks import sign

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def load_receiver():
    spec = importlib.util.spec_from_file_location("webhook_receiver_example",
                                                  ROOT / "examples" / "webhook-receiver" / "receiver.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


receiver_module = load_receiver()


def event(event_id: int = 7) -> Event:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    return Event(event_id, "order.held", "111-0000001-0000001", at,
                 {"order_id": "111-0000001-0000001", "state": "HELD", "previous_state": "PLANNED",
                  "reason": "unknown_sku", "message": "SKU X is not in the catalog"})


def signed(evt: Event, *, secret: str = SECRET, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    body = evt.body()
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {"content-type": "application/json", "webhook-id": evt.webhook_id,
               "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(secret, evt.webhook_id, timestamp, body)}
    return headers, body


@pytest.fixture
def server():
    out = io.StringIO()
    srv = receiver_module.Receiver(("127.0.0.1", 0), SECRET, out=out)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def post(srv, headers: dict[str, str], body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=5)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_signed_event_is_accepted_once(server) -> None:
    headers, body = signed(event())
    assert post(server, headers, body) == 204
    assert [e["data"]["event_id"] for e in server.events] == ["evt_7"]
    assert server.events[0]["data"]["reason"] == "unknown_sku"
    assert server.out.getvalue().splitlines() == [
        "evt_7 2026-03-01T12:00:00Z order.held 111-0000001-0000001 HELD reason=unknown_sku"]
    headers, body = signed(event())  # the same event again (a retry or a replay): a new timestamp
    assert post(server, headers, body) == 204
    assert len(server.events) == 1 and len(server.out.getvalue().splitlines()) == 1
    headers, body = signed(event(8))
    assert post(server, headers, body) == 204
    assert [e["data"]["event_id"] for e in server.events] == ["evt_7", "evt_8"]


def test_a_tampered_or_wrongly_signed_message_is_refused(server) -> None:
    headers, body = signed(event())
    assert post(server, headers, body.replace(b"unknown_sku", b"address_incomplete")) == 401
    assert post(server, {**headers, "webhook-id": "evt_9"}, body) == 401
    assert post(server, *signed(event(), secret=OTHER_SECRET)) == 401
    assert post(server, {**headers, "webhook-signature": "v1,AAAA"}, body) == 401
    assert post(server, {k: v for k, v in headers.items() if k != "webhook-signature"}, body) == 401
    assert server.events == []


def test_a_stale_or_future_timestamp_is_refused(server) -> None:
    assert post(server, *signed(event(), timestamp=int(time.time()) - 600)) == 401
    assert post(server, *signed(event(), timestamp=int(time.time()) + 600)) == 401
    assert server.events == []
    assert post(server, *signed(event(), timestamp=int(time.time()) - 60)) == 204  # within 5 minutes


def test_verify_agrees_with_the_standardwebhooks_package() -> None:
    headers, body = signed(event())
    ours = receiver_module.verify(SECRET, headers, body)
    assert ours == Webhook(SECRET).verify(body, headers) == event().payload()
    tampered = body.replace(b"HELD", b"NEW!")
    with pytest.raises(receiver_module.InvalidSignature):
        receiver_module.verify(SECRET, headers, tampered)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, headers)
    # several signatures in one header (as during a secret rotation): one match is enough
    rotated = {**headers, "webhook-signature": f"v1,AAAA {headers['webhook-signature']}"}
    assert receiver_module.verify(SECRET, rotated, body) == Webhook(SECRET).verify(body, rotated)


def test_a_timestamp_too_large_for_a_float_is_refused_not_a_crash(server) -> None:
    """Anyone may post: a webhook-timestamp of 400 digits made `time.time() - timestamp` raise an
    OverflowError, which verify() did not catch, in the docs' snippet as in the receiver."""
    headers, body = signed(event())
    huge = {**headers, "webhook-timestamp": "9" * 400}
    with pytest.raises(receiver_module.InvalidSignature):
        receiver_module.verify(SECRET, huge, body)
    assert post(server, huge, body) == 401
    assert server.events == []
