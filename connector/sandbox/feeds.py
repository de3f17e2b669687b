"""The Feeds API 2021-06-30 on the SP-API emulator: shipment confirmation in bulk.

Part of :class:`~connector.sandbox.spapi.SpApiEmulator` (its routes call :class:`Feeds`; its
sellers, access tokens, quotas, clock, faults and persisted state), it serves
``createFeedDocument``, ``createFeed``,
``getFeed``, ``getFeeds``, ``cancelFeed`` and ``getFeedDocument`` with the published quotas, every
request and answer checked against Amazon's model (``spapi_models/feeds_2021-06-30.json``), and
the document storage the pre-signed URLs point at (``PUT`` the input document, ``GET`` a report;
a signed URL expires after five minutes of the simulated clock, as Amazon's do, and a ``PUT`` must
carry the ``Content-Type`` the document was created with, which the URL signs).

Processing. A feed is IN_QUEUE for ``in_queue_seconds``, then IN_PROGRESS for
``processing_seconds`` (simulated clock), then DONE with a processing report; it is advanced when
it is next looked at (getFeed, getFeeds, ``GET /_sandbox/state``). Only
``POST_FLAT_FILE_FULFILLMENT_DATA`` is processed: each data line is checked and applied as
confirmShipment would apply it -- lines of one order with the same tracking number make one
package (a line sent again edits that package: the same item and quantity do not ship twice),
and a line is refused, with a line in the report, for an unknown order or order item, a
quantity above what is left to ship, a carrier code the marketplace does not accept ("Other"
needs a carrier-name), a tracking number in the wrong format, a cancelled order, a missing or
unreadable field, an order outside the feed's marketplaces, or (with the SP-API emulator's
``transparency_required``, the default) an item enrolled in Transparency: it must be confirmed
with one Transparency code per unit, and this template has no column for them.

Options (``feeds`` in the SP-API emulator's options): ``in_queue_seconds`` (2),
``processing_seconds`` (10), ``reject_orders`` (``{orderId: {"code", "message"}}``: every line of
these orders is refused with that error -- how a test injects rejections), ``reject_rate`` (0.0,
a seeded share of lines refused with code ``99999``), ``fatal_feeds`` (0: that many of the next
feeds end FATAL without a report and without applying anything), ``gzip_reports`` (False).

Error codes are the emulator's own (Amazon's numeric codes are not published per template); the
daemon relies on none of them (see docs/feeds.md).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import random
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..amazon.feeds import FEEDS_QUOTAS, FULFILLMENT_FEED_TYPE
from .framework import Request, Response, same_secret

MODEL = Path(__file__).with_name("spapi_models") / "feeds_2021-06-30.json"
URL_TTL = timedelta(minutes=5)
STORAGE_PATH = "/feeds-storage/"

ERR_MISSING = "10001"
ERR_ORDER = "10002"
ERR_ITEM = "10003"
ERR_QUANTITY = "10004"
ERR_CARRIER = "10005"
ERR_TRACKING = "10006"
ERR_STATUS = "10007"
ERR_MARKETPLACE = "10008"
ERR_PACKAGE_LOCKED = "10009"
# A line for an item enrolled in Transparency: the template has no column for its codes. The code
# is the emulator's own choice, like the others (Amazon publishes none for this case).
ERR_TRANSPARENCY = "10010"
ERR_INJECTED = "99999"

_FIRST_PACKAGE_REF = 900_000_000  # Amazon numbers a feed's packages itself; never one of the client's


# -- the documents, as Amazon reads and writes them (the emulator's own code, not the client's) --


def read_flat_file(content: bytes) -> list[dict[str, str]]:
    """A flat-file feed's data lines as {column: value}: tab-separated, the first line naming the
    columns (in any order, any case), UTF-8 with or without a byte-order mark."""
    lines = [line for line in content.decode("utf-8-sig").splitlines() if line.strip()]
    if not lines:
        return []
    header = [h.strip().lower() for h in lines[0].split("\t")]
    return [dict(zip(header, (c.strip() for c in line.split("\t")), strict=False)) for line in lines[1:]]


@dataclass(frozen=True)
class Problem:
    """A line of the processing report's problem list: the document's record (its data line)."""

    record: int
    order_id: str
    error_code: str
    message: str


def processing_report(processed: int, problems: list[Problem]) -> bytes:
    """The processing report of a flat-file feed: a summary, then one line per refused record."""
    lines = [
        "Feed Processing Summary:",
        f"\tNumber of records processed\t\t{processed}",
        f"\tNumber of records successful\t\t{processed - len({p.record for p in problems})}",
        "",
        "original-record-number\torder-id\terror-code\terror-type\terror-message",
    ]
    lines += [f"{p.record}\t{p.order_id}\t{p.error_code}\tError\t{p.message}" for p in problems]
    return ("\n".join(lines) + "\n").encode("utf-8")


class Feeds:
    """The Feeds API of an SP-API emulator, whose routes (``spapi.py``) call the methods here."""

    def __init__(self, spapi: Any, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        self.spapi = spapi
        self.in_queue = timedelta(seconds=float(options.get("in_queue_seconds", 2)))
        self.processing = timedelta(seconds=float(options.get("processing_seconds", 10)))
        self.reject_orders: dict[str, dict[str, str]] = {
            str(k): {
                "code": str((v or {}).get("code") or ERR_INJECTED),
                "message": str((v or {}).get("message") or "Rejected by the sandbox."),
            }
            for k, v in (options.get("reject_orders") or {}).items()
        }
        self.reject_rate = float(options.get("reject_rate", 0.0))
        self.gzip_reports = bool(options.get("gzip_reports", False))
        self._rng = random.Random(f"feeds-reject:{spapi.seed}")
        self._key = hashlib.sha256(f"feeds-url:{spapi.seed}".encode()).digest()
        spapi.add_models(MODEL)
        spapi.add_quotas({op: {"rate": rate, "burst": burst} for op, (rate, burst) in FEEDS_QUOTAS.items()})
        self.store = spapi.substore(
            "feeds",
            lambda: {
                "documents": {},
                "feeds": {},
                "seq": 0,
                "applied": {},
                "fatal_left": int(options.get("fatal_feeds", 0)),
            },
        )

    # -- state for tests and audits -----------------------------------------------------------

    def sandbox_state(self) -> dict[str, Any]:
        self.advance_all()
        feeds = {
            fid: {k: v for k, v in feed.items() if k != "report"} for fid, feed in self.store["feeds"].items()
        }
        # order id -> tracking number -> {"created": packages made, "applied": lines applied, "feeds": [...]}
        return {
            "feeds": feeds,
            "feed_shipments": {
                oid: {t: dict(v) for t, v in by.items()} for oid, by in self.store["applied"].items()
            },
        }

    # -- the documents -----------------------------------------------------------------------

    def create_feed_document(self, request: Request) -> Response:
        return self.spapi.call("createFeedDocument", request, self._create_feed_document)

    def _create_feed_document(self, request: Request, seller: Any) -> tuple[int, Any]:
        body = self.spapi.json_body(request)
        self.spapi.check_request("createFeedDocument", body=body)
        doc_id = self._new_id("doc")
        self.store["documents"][doc_id] = {
            "seller": seller.name,
            "contentType": str(body["contentType"]),
            "kind": "input",
            "content": None,
            "created": self.spapi.format_time(self.spapi.now()),
        }
        return 201, {"feedDocumentId": doc_id, "url": self._signed_url(request, doc_id)}

    def get_feed_document(self, request: Request) -> Response:
        return self.spapi.call("getFeedDocument", request, self._get_feed_document)

    def _get_feed_document(self, request: Request, seller: Any) -> tuple[int, Any]:
        doc_id = request.params["feedDocumentId"]
        self.spapi.check_request(
            "getFeedDocument", path_params={"feedDocumentId": doc_id}, query=request.query
        )
        document = self.store["documents"].get(doc_id)
        if document is None or document["seller"] != seller.name:
            raise self.spapi.error(404, "NotFound", f"Feed document {doc_id} was not found.")
        answer = {"feedDocumentId": doc_id, "url": self._signed_url(request, doc_id)}
        if document.get("gzip"):
            answer["compressionAlgorithm"] = "GZIP"
        return 200, answer

    def upload(self, request: Request) -> Response:
        with self.spapi.lock:
            document, refused = self._storage_document(request)
            if refused is not None:
                return refused
            if document["kind"] != "input":
                return _storage_error(403, "AccessDenied", "This document cannot be written.")
            if document.get("feedId"):
                return _storage_error(403, "AccessDenied", "The document belongs to a feed already.")
            if request.headers.get("content-type", "") != document["contentType"]:
                # the URL signs the contentType given to createFeedDocument; storage checks it
                return _storage_error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                                      "does not match the signature you provided.")
            document["content"] = base64.b64encode(request.body).decode("ascii")
            document["uploaded"] = self.spapi.format_time(self.spapi.now())
        return Response(200, b"", {"ETag": hashlib.md5(request.body).hexdigest()})  # noqa: S324 - an ETag

    def download(self, request: Request) -> Response:
        with self.spapi.lock:
            document, refused = self._storage_document(request)
            if refused is not None:
                return refused
            if document.get("content") is None:
                return _storage_error(404, "NoSuchKey", "The document has no content.")
            data = base64.b64decode(document["content"])
        return Response(
            200, data, {"Content-Type": document.get("contentType") or "application/octet-stream"}
        )

    def _storage_document(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        doc_id = request.params["docId"]
        expires, signature = request.arg("expires", ""), request.arg("signature", "")
        document = self.store["documents"].get(doc_id)
        if document is None or not same_secret(self._sign(doc_id, expires or ""), signature or ""):
            return {}, _storage_error(403, "SignatureDoesNotMatch", "The request signature is not valid.")
        if not (expires or "").isdigit() or self.spapi.now().timestamp() > int(expires or 0):
            return {}, _storage_error(403, "AccessDenied", "Request has expired.")
        return document, None

    # -- the feeds ---------------------------------------------------------------------------

    def create_feed(self, request: Request) -> Response:
        return self.spapi.call("createFeed", request, self._create_feed)

    def _create_feed(self, request: Request, seller: Any) -> tuple[int, Any]:
        body = self.spapi.json_body(request)
        self.spapi.check_request("createFeed", body=body)
        doc_id = str(body["inputFeedDocumentId"])
        document = self.store["documents"].get(doc_id)
        if document is None or document["seller"] != seller.name or document["kind"] != "input":
            raise self.spapi.invalid(f"inputFeedDocumentId {doc_id} is not a feed document of this seller.")
        if document.get("content") is None:
            raise self.spapi.invalid(f"Feed document {doc_id} has no content: upload it before createFeed.")
        if document.get("feedId"):
            raise self.spapi.invalid(
                f"Feed document {doc_id} was submitted already (feed {document['feedId']})."
            )
        foreign = [m for m in body["marketplaceIds"] if m not in seller.marketplace_ids]
        if foreign:
            raise self.spapi.invalid(
                f"marketplaceIds: {', '.join(foreign)} is not a marketplace of this seller."
            )
        feed_id = str(50_000_000_000 + self._next())
        document["feedId"] = feed_id
        fatal = self.store.get("fatal_left", 0) > 0
        if fatal:
            self.store["fatal_left"] -= 1
        self.store["feeds"][feed_id] = {
            "seller": seller.name,
            "feedType": str(body["feedType"]),
            "marketplaceIds": list(body["marketplaceIds"]),
            "createdTime": self.spapi.format_time(self.spapi.now()),
            "processingStatus": "IN_QUEUE",
            "inputFeedDocumentId": doc_id,
            "fatal": fatal,
        }
        return 202, {"feedId": feed_id}

    def get_feed(self, request: Request) -> Response:
        return self.spapi.call("getFeed", request, self._get_feed)

    def _get_feed(self, request: Request, seller: Any) -> tuple[int, Any]:
        feed_id = request.params["feedId"]
        self.spapi.check_request("getFeed", path_params={"feedId": feed_id}, query=request.query)
        feed = self._feed_of(feed_id, seller)
        self._advance(feed_id, feed)
        return 200, _public(feed_id, feed)

    def get_feeds(self, request: Request) -> Response:
        return self.spapi.call("getFeeds", request, self._get_feeds)

    def _get_feeds(self, request: Request, seller: Any) -> tuple[int, Any]:
        query = request.query
        self.spapi.check_request("getFeeds", query=query)
        token = self.spapi.arg(request, "nextToken")
        cursor: list[str] | None = None
        if token:  # "include this token as the only parameter"
            if set(query) != {"nextToken"}:
                raise self.spapi.invalid("nextToken must be the only parameter of a getFeeds request.")
            page = self._read_page_token(token, seller.name)
            types, statuses, marketplaces = page["types"], set(page["statuses"]), set(page["marketplaces"])
            size, cursor = int(page["size"]), page["after"]
        else:
            types = _values(query, "feedTypes")
            if not types:
                raise self.spapi.invalid("Either feedTypes or nextToken is required.")
            statuses = set(_values(query, "processingStatuses"))
            marketplaces = set(_values(query, "marketplaceIds"))
            try:
                size = int(self.spapi.arg(request, "pageSize") or 10)
            except ValueError:
                raise self.spapi.invalid("pageSize must be an integer between 1 and 100.") from None
        self.advance_all()
        found = []
        # newest first; a page goes on after the last feed of the one before (createdTime, feedId)
        for feed_id, feed in sorted(
            self.store["feeds"].items(), key=lambda kv: (kv[1]["createdTime"], kv[0]), reverse=True
        ):
            if feed["seller"] != seller.name or (types and feed["feedType"] not in types):
                continue
            if cursor is not None and [feed["createdTime"], feed_id] >= cursor:
                continue
            if statuses and feed["processingStatus"] not in statuses:
                continue
            if marketplaces and not marketplaces & set(feed["marketplaceIds"]):
                continue
            found.append(_public(feed_id, feed))
        answer: dict[str, Any] = {"feeds": found[:size]}
        if len(found) > size:
            last = found[size - 1]
            answer["nextToken"] = self._page_token({
                "seller": seller.name, "types": types, "statuses": sorted(statuses),
                "marketplaces": sorted(marketplaces), "size": size,
                "after": [last["createdTime"], last["feedId"]]})
        return 200, answer

    def _page_token(self, page: dict[str, Any]) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(page, sort_keys=True).encode()).decode()
        return payload + "." + self._sign("getFeeds", payload)

    def _read_page_token(self, token: str, seller: str) -> dict[str, Any]:
        payload, _, signature = token.partition(".")
        try:
            if not same_secret(self._sign("getFeeds", payload), signature):
                raise ValueError("bad signature")
            page = json.loads(base64.urlsafe_b64decode(payload))
        except ValueError:  # (binascii.Error and JSONDecodeError are ValueErrors)
            raise self.spapi.invalid("nextToken is invalid.") from None
        if page.get("seller") != seller:
            raise self.spapi.invalid("nextToken is invalid.")
        return page

    def cancel_feed(self, request: Request) -> Response:
        return self.spapi.call("cancelFeed", request, self._cancel_feed)

    def _cancel_feed(self, request: Request, seller: Any) -> tuple[int, Any]:
        feed_id = request.params["feedId"]
        self.spapi.check_request("cancelFeed", path_params={"feedId": feed_id}, query=request.query)
        feed = self._feed_of(feed_id, seller)
        self._advance(feed_id, feed)
        if feed["processingStatus"] != "IN_QUEUE":
            raise self.spapi.invalid(
                f"Feed {feed_id} is {feed['processingStatus']}; only a feed IN_QUEUE can be cancelled."
            )
        feed["processingStatus"] = "CANCELLED"
        feed["processingEndTime"] = self.spapi.format_time(self.spapi.now())
        return 200, None

    def _feed_of(self, feed_id: str, seller: Any) -> dict[str, Any]:
        feed = self.store["feeds"].get(feed_id)
        if feed is None or feed["seller"] != seller.name:
            raise self.spapi.error(404, "NotFound", f"Feed {feed_id} was not found.")
        return feed

    # -- processing --------------------------------------------------------------------------

    def advance_all(self) -> None:
        """Process every feed whose time has come on the simulated clock. Amazon processes a feed
        whoever looks: the orders' reads and confirmShipment call this first, so they see (and
        collide with) what a feed applied, as Amazon's would, not only a getFeed."""
        with self.spapi.lock:
            for feed_id, feed in self.store["feeds"].items():
                self._advance(feed_id, feed)

    def _advance(self, feed_id: str, feed: dict[str, Any]) -> None:
        """Move the feed along the simulated clock; process it when its time has come."""
        if feed["processingStatus"] not in ("IN_QUEUE", "IN_PROGRESS"):
            return
        now = self.spapi.now()
        created = self.spapi.parse_time(feed["createdTime"])
        if now >= created + self.in_queue and feed["processingStatus"] == "IN_QUEUE":
            feed["processingStatus"] = "IN_PROGRESS"
            feed["processingStartTime"] = self.spapi.format_time(created + self.in_queue)
        if now < created + self.in_queue + self.processing:
            return
        feed["processingEndTime"] = self.spapi.format_time(created + self.in_queue + self.processing)
        if feed.get("fatal"):
            feed["processingStatus"] = "FATAL"
            return
        document = self.store["documents"][feed["inputFeedDocumentId"]]
        content = base64.b64decode(document["content"])
        if feed["feedType"] == FULFILLMENT_FEED_TYPE:
            report = self._apply_fulfillment(feed_id, feed, content)
        else:  # the emulator only knows shipment confirmations; say so instead of pretending
            report = processing_report(
                0, [Problem(0, "", ERR_MISSING, f"The sandbox does not process {feed['feedType']}.")]
            )
        result_id = self._new_id("report")
        stored = gzip.compress(report) if self.gzip_reports else report
        self.store["documents"][result_id] = {
            "seller": feed["seller"],
            "contentType": "text/tab-separated-values; charset=UTF-8",
            "kind": "result",
            "content": base64.b64encode(stored).decode("ascii"),
            "gzip": self.gzip_reports,
            "created": feed["processingEndTime"],
        }
        feed["resultFeedDocumentId"] = result_id
        feed["processingStatus"] = "DONE"

    def _apply_fulfillment(self, feed_id: str, feed: dict[str, Any], content: bytes) -> bytes:
        rows = read_flat_file(content)
        results: list[Problem] = []
        seller = self.spapi.sellers[feed["seller"]]
        for number, row in enumerate(rows, start=1):
            problem = self._apply_row(feed_id, feed, seller, row)
            if problem is not None:
                code, message = problem
                results.append(Problem(number, row.get("order-id", ""), code, message))
        feed["records"] = len(rows)
        feed["rejected"] = len(results)
        return processing_report(len(rows), results)

    def _apply_row(
        self, feed_id: str, feed: dict[str, Any], seller: Any, row: dict[str, str]
    ) -> tuple[str, str] | None:
        """Apply one line as confirmShipment would; (error code, message) when it is refused."""
        from .spapi import (
            LENIENT_TRACKING_FORMAT,
            OTHER_CARRIER_CODE,
            TRACKING_FORMATS,
            ApiError,
            is_transparency_item,
        )

        order_id, item_id = row.get("order-id", ""), row.get("order-item-id", "")
        tracking, carrier = row.get("tracking-number", ""), row.get("carrier-code", "")
        missing = [
            c
            for c in ("order-id", "order-item-id", "quantity", "ship-date", "carrier-code", "tracking-number")
            if not row.get(c)
        ]
        if missing:
            return ERR_MISSING, f"Required field(s) missing: {', '.join(missing)}."
        record = self.spapi.store["orders"].get(order_id)
        if record is None or record["seller"] != seller.name:
            return ERR_ORDER, f"The order id {order_id} was not found."
        if order_id in self.reject_orders:
            injected = self.reject_orders[order_id]
            return injected["code"], injected["message"]
        if self.reject_rate and self._rng.random() < self.reject_rate:
            return ERR_INJECTED, "The record could not be processed (sandbox rejection)."
        order = record["order"]
        marketplace = order["salesChannel"].get("marketplaceId")
        if marketplace not in feed["marketplaceIds"]:
            return ERR_MARKETPLACE, f"Order {order_id} does not belong to the feed's marketplaces."
        status = order.get("fulfillment", {}).get("fulfillmentStatus")
        if order.get("fulfillment", {}).get("fulfilledBy") == "AMAZON" or status in (
            "CANCELLED",
            "PENDING",
            "PENDING_AVAILABILITY",
            "UNFULFILLABLE",
        ):
            return ERR_STATUS, f"Order {order_id} is {status} and cannot be confirmed."
        try:
            quantity = int(row["quantity"])
        except ValueError:
            return ERR_MISSING, f"quantity {row['quantity']!r} is not a whole number."
        ship_date = self.spapi.parse_time(row["ship-date"])
        if ship_date is None:
            return ERR_MISSING, f"ship-date {row['ship-date']!r} is not a date."
        site = self.spapi.site_of(order)
        carrier_name = row.get("carrier-name", "")
        filed_as = self.spapi.filed_carrier(site, carrier)
        if filed_as is None:
            return ERR_CARRIER, f"carrier-code '{carrier}' is not accepted for marketplace {marketplace}."
        if carrier == OTHER_CARRIER_CODE and not carrier_name:
            return ERR_CARRIER, "carrier-name is required when carrier-code is 'Other'."
        if not re.match(TRACKING_FORMATS.get(carrier, LENIENT_TRACKING_FORMAT), tracking):
            return (
                ERR_TRACKING,
                f"The tracking number {tracking} is not valid for carrier {carrier_name or carrier}.",
            )
        packages = order.get("packages", [])
        existing = next((p for p in packages if p.get("trackingNumber") == tracking), None)
        if existing is not None and self.spapi.package_lock(order_id, existing["packageReferenceId"]):
            return ERR_PACKAGE_LOCKED, f"The shipment {tracking} of order {order_id} cannot be edited."
        try:
            wanted = self.spapi.package_items(
                order, [(item_id, quantity)], field="order-item-id", existing=existing, empty="no item"
            )
        except ApiError as exc:
            message = exc.body["errors"][0]["message"]
            return (ERR_ITEM if "is invalid" in message else ERR_QUANTITY), message
        item = next(it for it in order["orderItems"] if it["orderItemId"] == item_id)
        if self.spapi.transparency_required and is_transparency_item(item):
            return (
                ERR_TRANSPARENCY,
                f"Order item {item_id} of order {order_id} is enrolled in Transparency: its {quantity} "
                f"unit(s) need {quantity} Transparency code(s), which this feed cannot carry.",
            )
        kept = {pi["orderItemId"]: pi for pi in (existing or {}).get("packageItems", [])}
        for changed in wanted:  # the line sent again sets the item's quantity (its codes go with it)
            kept[changed] = {"orderItemId": changed, "quantity": wanted[changed]}
        now = feed["processingEndTime"]  # applied when the feed was processed, whenever it is looked at
        package: dict[str, Any] = {
            "packageReferenceId": existing["packageReferenceId"]
            if existing
            else str(_FIRST_PACKAGE_REF + self._next()),
            "createdTime": existing.get("createdTime", now) if existing else now,
            "packageStatus": {"status": "SHIPPED"},
            "carrier": carrier_name if carrier == OTHER_CARRIER_CODE else filed_as,
            "shipTime": self.spapi.format_time(ship_date),
            "trackingNumber": tracking,
            "packageItems": [dict(pi) for pi in kept.values()],  # other items keep their codes
        }
        if row.get("ship-method"):
            package["shippingService"] = row["ship-method"]
        self.spapi.put_package(order, package, existing, now=now)
        audit = (
            self.store["applied"]
            .setdefault(order_id, {})
            .setdefault(tracking, {"created": 0, "applied": 0, "feeds": []})
        )
        audit["created"] += existing is None
        audit["applied"] += 1
        if feed_id not in audit["feeds"]:
            audit["feeds"].append(feed_id)
        return None

    # -- plumbing ------------------------------------------------------------------------------

    def _next(self) -> int:
        self.store["seq"] += 1
        return int(self.store["seq"])

    def _new_id(self, kind: str) -> str:
        digest = hashlib.sha256(f"{kind}:{self.spapi.seed}:{self._next()}".encode()).hexdigest()
        return f"amzn1.tortuga.4.na.{digest[:32]}"

    def _sign(self, doc_id: str, expires: str) -> str:
        return hmac.new(self._key, f"{doc_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    def _signed_url(self, request: Request, doc_id: str) -> str:
        expires = str(int((self.spapi.now() + URL_TTL).timestamp()))
        host = request.headers.get("host") or "127.0.0.1"
        return (
            f"http://{host}{STORAGE_PATH}{doc_id}?expires={expires}&signature={self._sign(doc_id, expires)}"
        )


def _public(feed_id: str, feed: dict[str, Any]) -> dict[str, Any]:
    """The model's ``Feed`` of a stored feed."""
    out = {
        "feedId": feed_id,
        "feedType": feed["feedType"],
        "marketplaceIds": list(feed["marketplaceIds"]),
        "createdTime": feed["createdTime"],
        "processingStatus": feed["processingStatus"],
    }
    for key in ("processingStartTime", "processingEndTime", "resultFeedDocumentId"):
        if feed.get(key):
            out[key] = feed[key]
    return out


def _values(query: dict[str, list[str]], name: str) -> list[str]:
    out: list[str] = []
    for raw in query.get(name, []):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return out


def _storage_error(status: int, code: str, message: str) -> Response:
    """What the document storage answers (S3's XML error shape)."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>")
    return Response(status, body.encode("utf-8"), {"Content-Type": "application/xml"})
