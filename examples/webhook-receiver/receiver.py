"""A minimal receiver for mfn-connector's signed webhooks, with the standard library only.

It verifies each message's Standard Webhooks signature (rejecting a bad or stale one with 401),
ignores a webhook-id it has already seen (the daemon delivers at least once), prints one line per
event and answers 204. A real ERP would store the event and its webhook-id in one transaction
before answering 2xx; this one keeps the ids in memory, so it forgets them when it stops.

    python examples/webhook-receiver/receiver.py --port 8787 --secret whsec_...

The secret can also come from the environment variable WEBHOOK_SECRET. See
docs/erp-integration.md for the events and the delivery guarantees.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

TOLERANCE_SECONDS = 5 * 60  # a message signed longer ago (or later) than this is refused
MAX_BODY = 1 << 20


class InvalidSignature(Exception):
    """The message is not signed with the secret, or the signature is stale."""


def verify(secret: str, headers: Mapping[str, str], body: bytes,
           tolerance: int = TOLERANCE_SECONDS) -> dict[str, Any]:
    """The payload, if the request is signed with ``secret`` and recent; InvalidSignature otherwise."""
    headers = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        raise InvalidSignature("missing or malformed webhook headers") from None
    if abs(int(time.time()) - timestamp) > tolerance:  # in integers: any number of digits compares
        raise InvalidSignature("webhook-timestamp is too old or too new")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac)
    for candidate in signatures:  # "v1,<sig>", maybe several (during a secret rotation)
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return json.loads(body)
    raise InvalidSignature("no matching signature")


def describe(payload: Mapping[str, Any]) -> str:
    """One line for an event: id, type, order (or alert subject), state and what is worth seeing."""
    data = payload.get("data", {})
    who = data.get("order_id") or data.get("subject") or "-"
    extra = " ".join(f"{k}={data[k]}" for k in ("package_ref", "carrier", "tracking_number", "reason", "kind")
                     if data.get(k))
    return " ".join(str(p) for p in (data.get("event_id", "?"), payload.get("timestamp", "?"),
                                     payload.get("type", "?"), who, data.get("state", ""), extra) if p)


class Receiver(ThreadingHTTPServer):
    """The HTTP server; ``events`` holds every payload accepted once, ``seen`` their webhook-ids."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], secret: str, out: TextIO | None = None) -> None:
        super().__init__(address, Handler)
        self.secret = secret
        self.out = out or sys.stdout
        self.events: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        try:
            length = int(self.headers.get("content-length", ""))
        except ValueError:
            return self._answer(411)
        if not 0 <= length <= MAX_BODY:
            return self._answer(413)
        body = self.rfile.read(length)
        try:
            payload = verify(self.server.secret, dict(self.headers.items()), body)
        except InvalidSignature as exc:
            print(f"rejected: {exc}", file=sys.stderr)
            return self._answer(401)
        except ValueError:  # signed but not JSON
            return self._answer(400)
        webhook_id = self.headers["webhook-id"]
        with self.server.lock:
            if webhook_id in self.server.seen:  # a retry or a replay: already handled
                return self._answer(204)
            # Handle the event here; answer 2xx only once it is safely stored, else the daemon retries.
            self.server.seen.add(webhook_id)
            self.server.events.append(payload)
            print(describe(payload), file=self.server.out, flush=True)
        return self._answer(204)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass  # one line per event is printed by do_POST


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Receive mfn-connector webhooks and print them.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET"),
                        help="the endpoint's whsec_ secret (default: $WEBHOOK_SECRET)")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("give --secret or set WEBHOOK_SECRET")
    try:
        if not base64.b64decode(args.secret.removeprefix("whsec_"), validate=True):
            raise ValueError
    except (ValueError, binascii.Error):
        parser.error("the secret must be whsec_ followed by base64")
    server = Receiver((args.host, args.port), args.secret)
    print(f"listening on http://{args.host}:{server.server_address[1]}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
