"""The SP-API emulator: LWA tokens, Orders v2026-01-01 searchOrders/getOrder, v0 confirmShipment,
and Shipping API v2 (Amazon Buy Shipping) getRates/purchaseShipment/getShipmentDocuments/
getTracking/cancelShipment.

It enforces what Amazon enforces and what users of the real API ran into (spapi.md §1-3, §6, §7;
field-notes.md §1): LWA refresh-token grants, ``x-amz-access-token`` on every call, one access
token per seller, per (seller, operation) token-bucket quotas on the simulated clock (429
``QuotaExceeded``), the searchOrders time-window rules and opaque pagination tokens,
``includedData`` sections, and confirmShipment's carrier codes per marketplace, tracking-number
formats, string ``packageReferenceId`` (re-sending one edits that package), quantities still to
ship, "order already fulfilled" and cancelled orders. ``silent_drop_rate`` answers 204 and drops
the write, as field-notes §1.7 reports; only reading the order back reveals it.

Buy Shipping (data in :mod:`.buy_shipping`): ``channelType: AMAZON`` orders of the caller on a
Buy Shipping site, ``x-amzn-shipping-business-id`` checked against the order's site (missing =
``AmazonShipping_UK``), four China carriers offered differently per site (plus ``ineligibleRates``),
one package per shipment with ``itemIdentifier`` = orderItemId, requestTokens valid 10 simulated
minutes and single-use (then ``TOKEN_EXPIRED``), ``x-amzn-IdempotencyKey`` (same key -> the
original shipment, no second label), plain-base64 PDF labels, tracking that follows the simulated
clock, cancellation (refund, package removed) until the carrier's pickup 24 hours after purchase.
A purchase adds the package to the order like confirmShipment does (``packageReferenceId`` = the
shipment id, or an unrelated number with ``buy_shipping_package_ids: opaque``) and is never
listed under ``confirmations``; ``GET /_sandbox/state`` reports it under ``buy_shipping`` and, for
the exactly-once audits, under ``labels`` (``{idempotencyKey: {"created": n, ...}}``).

Every request it accepts and every response it returns is validated against Amazon's published
models (:mod:`.schemas`); a response that does not validate is an emulator bug and lands in
``schema_violations`` of ``GET /_sandbox/state``.

Options (all optional): ``sellers`` (list of ``{name, refresh_token, client_id, client_secret,
marketplaces}``; marketplaces are site codes such as ``"US"`` or marketplace ids),
``orders_per_seller`` (60), ``seed`` (7), ``quotas`` (``{operationId: {rate, burst}}`` over the
published defaults), ``token_ttl_seconds`` (3600), ``silent_drop_rate`` (0.0), ``validate``
(True), ``buy_shipping_package_ids`` (``shipment_id`` | ``opaque``), ``fault_operations`` (the
operationIds injected faults apply to, e.g. ``["purchaseShipment"]``; default: every request),
plus the framework's ``faults``, ``timeout_seconds`` and ``state_file``.
"""
from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from . import buy_shipping as bs
from .framework import Emulator, EmulatorSpec, Request, Response, route
from .pdf import make_label_pdf
from .schemas import validate_request, validate_response
from .seed import MARKETPLACE_IDS, seed_orders

log = logging.getLogger(__name__)

DEFAULT_SELLER: dict[str, Any] = {
    "name": "demo-seller",
    "refresh_token": "Atzr|sandbox-demo",
    "client_id": "amzn1.application-oa2-client.sandbox",
    "client_secret": "sandbox-secret",
    "marketplaces": ["US", "CA", "UK", "DE", "FR", "JP"],
}
# Published default usage plans (spapi.md §2-3).
DEFAULT_QUOTAS: dict[str, dict[str, float]] = {
    "searchOrders": {"rate": 0.0056, "burst": 20},
    "getOrder": {"rate": 0.5, "burst": 30},
    "confirmShipment": {"rate": 2.0, "burst": 10},
    # Shipping API v2 (spapi.md §6): every operation 80 rps, burst 100
    "getRates": {"rate": 80.0, "burst": 100},
    "purchaseShipment": {"rate": 80.0, "burst": 100},
    "getShipmentDocuments": {"rate": 80.0, "burst": 100},
    "getTracking": {"rate": 80.0, "burst": 100},
    "cancelShipment": {"rate": 80.0, "burst": 100},
}
MAX_ACCESS_TOKENS = 2000  # LWA access tokens remembered (the oldest half is dropped beyond it)
PAGINATION_TOKEN_TTL = timedelta(hours=24)  # spapi.md §3: tokens expire after 24 h
MIN_BEFORE_AGE = timedelta(minutes=2)  # *Before must be at least two minutes before now

# -- carrier codes and tracking formats (data, per marketplace) ---------------------------------
#
# Amazon's "acceptable CarrierCode values" differ per marketplace and the exact list is not
# published in the models (spapi.md §14). This table is the emulator's stand-in: the China
# cross-border carriers everywhere, local carriers per site, and Yanwen spelled "YANWEN" on the
# EU-region sites but "Yanwen" elsewhere (field-notes.md §4: the case conflict is real), so a
# client has to map carrier codes per site instead of assuming one spelling.

_COMMON_CARRIERS = ("China Post", "Yun Express", "DHL eCommerce", "DHL", "UPS", "FedEx", "USPS",
                    "4PX", "SFC", "EUB", "Hongkong Post", "Other")
_LOCAL_CARRIERS: dict[str, tuple[str, ...]] = {
    "US": ("OnTrac", "Amazon Shipping", "DHL Global Mail"),
    "CA": ("Canada Post", "Purolator"),
    "MX": ("Estafeta", "Correos de Mexico"),
    "BR": ("Correios",),
    "UK": ("Royal Mail", "Parcelforce", "Evri", "DPD", "Amazon Shipping"),
    "DE": ("Deutsche Post", "DHL Global Mail", "DPD", "Hermes", "GLS"),
    "FR": ("La Poste", "Colissimo", "Chronopost", "DPD", "GLS"),
    "IT": ("Poste Italiane", "BRT", "GLS", "SDA"),
    "ES": ("Correos", "SEUR", "GLS", "MRW"),
    "NL": ("PostNL", "DPD", "GLS"),
    "PL": ("Poczta Polska", "InPost", "DPD"),
    "SE": ("PostNord",),
    "JP": ("Japan Post", "Yamato Transport", "Sagawa Express"),
    "AU": ("Australia Post",),
    "IN": ("India Post",),
}
_EU_REGION_SITES = frozenset({"UK", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR", "AE",
                              "SA", "EG", "IN", "ZA"})

ACCEPTED_CARRIER_CODES: dict[str, frozenset[str]] = {
    site: frozenset(_COMMON_CARRIERS + _LOCAL_CARRIERS.get(site, ())
                    + (("YANWEN",) if site in _EU_REGION_SITES else ("Yanwen",)))
    for site in MARKETPLACE_IDS
}
"""Site code -> the carrierCode values confirmShipment accepts there (exact, case-sensitive)."""

TRACKING_FORMATS: dict[str, str] = {
    "Yun Express": r"^YT\d{16}$",
    "China Post": r"^[A-Z]{2}\d{9}CN$",  # UPU S10, posted in China
    "Yanwen": r"^(UG|LX|YW|VR)?[A-Z0-9]{10,20}$",
    "YANWEN": r"^(UG|LX|YW|VR)?[A-Z0-9]{10,20}$",
    "DHL eCommerce": r"^[A-Z0-9]{10,39}$",
}
"""carrierCode -> the tracking-number pattern Amazon checks; other carriers use the lenient one."""
LENIENT_TRACKING_FORMAT = r"^[A-Za-z0-9][A-Za-z0-9-]{3,49}$"

_ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
_SITE_BY_MARKETPLACE = {mid: site for site, mid in MARKETPLACE_IDS.items()}
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
                  r"([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$")

_ORDER_BASE = ("orderId", "orderAliases", "createdTime", "lastUpdatedTime", "programs",
               "associatedOrders", "salesChannel")
_ORDER_SECTIONS = {"BUYER": "buyer", "RECIPIENT": "recipient", "PROCEEDS": "proceeds",
                   "FULFILLMENT": "fulfillment", "PACKAGES": "packages", "TAX": "tax",
                   "PAYMENT": "payment", "FULFILLMENT_ORDERS": "fulfillmentOrders"}
_ITEM_BASE = ("orderItemId", "quantityOrdered", "measurement", "associatedOrderItems", "programs",
              "product")
_ITEM_SECTIONS = {"PROCEEDS": "proceeds", "FULFILLMENT": "fulfillment", "CANCELLATION": "cancellation",
                  "EXPENSE": "expense", "PROMOTION": "promotion", "TAX": "tax"}
_TOKEN_KEYS = frozenset({"seller", "filters", "after", "before", "issued"})
_FILTER_PARAMS = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore",
                  "fulfillmentStatuses", "marketplaceIds", "fulfilledBy")


def parse_iso8601(value: str) -> datetime | None:
    """A timezone-aware datetime for an ISO 8601 date or date-time (UTC when no offset), or None."""
    match = _ISO.match(value.strip()) if isinstance(value, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        dt = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                      int(second or 0), int((fraction or "0")[:6].ljust(6, "0")), tzinfo=timezone.utc)
    except ValueError:
        return None
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        dt -= sign * offset
    return dt


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _errors(code: str, message: str, details: str | None = None) -> dict[str, Any]:
    error = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"errors": [error]}


def _unauthorized(message: str = "Access to requested resource is denied.") -> tuple[int, dict]:
    return 403, _errors("Unauthorized", message, "")


class _ApiError(Exception):
    """Ends a handler early with an SP-API error answer."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = _errors(code, message, details)


def _invalid(message: str) -> _ApiError:
    return _ApiError(400, "InvalidInput", message)


def _values(query: dict[str, list[str]], name: str) -> list[str]:
    """All values of an array query parameter, repeated and/or comma separated."""
    out: list[str] = []
    for raw in query.get(name, []):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return out


def _arg(query: dict[str, list[str]], name: str) -> str | None:
    for raw in query.get(name, []):
        if raw.strip():
            return raw.strip()
    return None


@dataclass(frozen=True)
class _Seller:
    name: str
    refresh_token: str
    client_id: str
    client_secret: str
    sites: tuple[str, ...]

    @property
    def marketplace_ids(self) -> frozenset[str]:
        return frozenset(MARKETPLACE_IDS[s] for s in self.sites)


def _site_code(value: str) -> str:
    key = str(value).strip()
    if key.upper() == "GB":
        return "UK"
    if key.upper() in MARKETPLACE_IDS:
        return key.upper()
    if key in _SITE_BY_MARKETPLACE:
        return _SITE_BY_MARKETPLACE[key]
    raise ValueError(f"unknown Amazon site or marketplace id {value!r}")


def _parse_sellers(raw: Any) -> dict[str, _Seller]:
    entries = raw if raw else [DEFAULT_SELLER]
    sellers: dict[str, _Seller] = {}
    tokens: set[str] = set()
    for i, entry in enumerate(entries):
        missing = [k for k in ("name", "refresh_token", "client_id", "client_secret") if not entry.get(k)]
        if missing:
            raise ValueError(f"sellers[{i}]: missing {', '.join(missing)}")
        if entry["name"] in sellers:
            raise ValueError(f"sellers[{i}]: duplicate seller name {entry['name']!r}")
        if entry["refresh_token"] in tokens:
            raise ValueError(f"sellers[{i}]: refresh_token is shared with another seller")
        tokens.add(entry["refresh_token"])
        sites = tuple(dict.fromkeys(_site_code(m) for m in entry.get("marketplaces")
                                    or DEFAULT_SELLER["marketplaces"]))
        sellers[entry["name"]] = _Seller(entry["name"], entry["refresh_token"], entry["client_id"],
                                         entry["client_secret"], sites)
    return sellers


def _project(order: dict[str, Any], included: set[str]) -> dict[str, Any]:
    """The order as Amazon returns it for ``includedData``: items always, sections on request."""
    out = {k: copy.deepcopy(order[k]) for k in _ORDER_BASE if k in order}
    for data, key in _ORDER_SECTIONS.items():
        if data in included and order.get(key):
            out[key] = copy.deepcopy(order[key])
    items = []
    for item in order.get("orderItems", []):
        projected = {k: copy.deepcopy(item[k]) for k in _ITEM_BASE if k in item}
        for data, key in _ITEM_SECTIONS.items():
            if data in included and key in item:
                projected[key] = copy.deepcopy(item[key])
        items.append(projected)
    out["orderItems"] = items
    return out


_OPERATION_OF_HANDLER = {
    "lwa_token": "lwaToken", "search_orders": "searchOrders", "get_order": "getOrder",
    "confirm_shipment": "confirmShipment", "get_rates": "getRates", "purchase_shipment": "purchaseShipment",
    "get_shipment_documents": "getShipmentDocuments", "get_tracking": "getTracking",
    "cancel_shipment": "cancelShipment",
}


def _empty_buy_shipping() -> dict[str, Any]:
    return {"counter": 0, "token_counter": 0, "tokens": {}, "shipments": {}, "keys": {}, "tracking": {},
            "rate_requests": 0}


def _package_items(order: dict[str, Any], lines: list[tuple[Any, Any]], *, field: str,
                   existing: dict[str, Any] | None, empty: str) -> dict[str, int]:
    """Order item id -> quantity for a new (or edited ``existing``) package of ``order``.

    ``lines`` are (order item id, quantity) as the client sent them (``field`` names the id in
    messages). Refuses unknown items, quantities below one and more units than are still to ship.
    """
    order_id = order["orderId"]
    items = {it["orderItemId"]: it for it in order.get("orderItems", [])}
    wanted: dict[str, int] = {}
    for item_id, quantity in lines:
        if item_id not in items:
            raise _invalid(f"{field} {item_id} is invalid for order {order_id}.")
        if not isinstance(quantity, int) or quantity < 1:
            raise _invalid(f"quantity for {field} {item_id} must be at least 1.")
        wanted[item_id] = wanted.get(item_id, 0) + quantity
    if not wanted:
        raise _invalid(empty)
    packages = order.get("packages", [])
    in_this_package = {pi["orderItemId"]: int(pi["quantity"])
                       for pi in (existing or {}).get("packageItems", [])}
    for item_id, quantity in wanted.items():
        shipped = sum(int(pi["quantity"]) for p in packages for pi in p.get("packageItems", [])
                      if pi["orderItemId"] == item_id)
        available = int(items[item_id]["quantityOrdered"]) - shipped + in_this_package.get(item_id, 0)
        if quantity > available:
            raise _invalid(f"quantity {quantity} for {field} {item_id} exceeds the quantity still "
                           f"to ship ({available}).")
    return wanted


class SpApiEmulator(Emulator):
    """Amazon SP-API on loopback: LWA, searchOrders, getOrder, confirmShipment."""

    name = "spapi"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        self.sellers = _parse_sellers(options.get("sellers"))
        self.quotas: dict[str, dict[str, float]] = {k: dict(v) for k, v in DEFAULT_QUOTAS.items()}
        for op, quota in (options.get("quotas") or {}).items():
            self.quotas.setdefault(op, {}).update({k: float(v) for k, v in quota.items()})
        self.token_ttl = float(options.get("token_ttl_seconds", 3600))
        self.silent_drop_rate = float(options.get("silent_drop_rate", 0.0))
        self.validate = bool(options.get("validate", True))
        self.orders_per_seller = int(options.get("orders_per_seller", 60))
        targets = options.get("fault_operations")
        self.fault_operations: frozenset[str] | None = None if targets is None else frozenset(targets)
        """Operations the injected faults apply to (None: every request, the framework's default)."""
        self.package_ids = str(options.get("buy_shipping_package_ids", "shipment_id"))
        if self.package_ids not in ("shipment_id", "opaque"):
            raise ValueError("buy_shipping_package_ids must be 'shipment_id' or 'opaque'")
        seed = options.get("seed")
        self.seed = 7 if seed is None else int(seed)
        self.schema_violations: list[dict[str, Any]] = []
        self.silent_drops = 0
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._drop_rng = random.Random(f"spapi-silent-drop:{self.seed}")
        self._error_rng = random.Random(f"spapi-5xx:{self.seed}")
        self._token_key = hashlib.sha256(f"spapi-emulator-pagination:{self.seed}".encode()).digest()
        super().__init__(options)
        self._seed_missing_sellers()  # a state file from before a seller was configured

    # -- framework hooks ---------------------------------------------------------------------

    def initial_store(self) -> dict[str, Any]:
        store: dict[str, Any] = {"orders": {}, "tokens": {}, "confirmations": {},
                                 "buy_shipping": _empty_buy_shipping()}
        for seller in self.sellers.values():
            self._seed_seller(store, seller)
        return store

    def _seed_seller(self, store: dict[str, Any], seller: _Seller) -> None:
        orders = store["orders"]
        for order in seed_orders(seller.name, list(seller.sites), self.orders_per_seller, self.seed,
                                 self.clock.now()):
            if order["orderId"] in orders:  # astronomically unlikely; never silently merge
                raise RuntimeError(f"seed order id collision: {order['orderId']}")
            orders[order["orderId"]] = {"seller": seller.name, "order": order}

    def _seed_missing_sellers(self) -> None:
        for key in ("orders", "tokens", "confirmations"):
            self.store.setdefault(key, {})
        self.store.setdefault("buy_shipping", _empty_buy_shipping())
        present = {record["seller"] for record in self.store["orders"].values()}
        for seller in self.sellers.values():
            if seller.name not in present:
                self._seed_seller(self.store, seller)

    def sandbox_state(self) -> dict[str, Any]:
        return {
            "confirmations": copy.deepcopy(self.store["confirmations"]),
            "orders": {oid: rec["order"].get("fulfillment", {}).get("fulfillmentStatus")
                       for oid, rec in self.store["orders"].items()},
            # what a client needs to know which orders it should have picked up (MERCHANT and
            # UNSHIPPED / PARTIALLY_SHIPPED, per seller and marketplace)
            "order_details": {oid: {"seller": rec["seller"],
                                    "marketplaceId": rec["order"]["salesChannel"].get("marketplaceId"),
                                    "fulfillmentStatus": rec["order"].get("fulfillment", {})
                                    .get("fulfillmentStatus"),
                                    "fulfilledBy": rec["order"].get("fulfillment", {}).get("fulfilledBy")}
                              for oid, rec in self.store["orders"].items()},
            "schema_violations": copy.deepcopy(self.schema_violations),
            "silent_drops": self.silent_drops,
            **self._buy_shipping_state(),
            "sellers": {s.name: list(s.sites) for s in self.sellers.values()},
        }

    def handle(self, request: Request) -> Response:
        if (self.fault_operations is not None and not request.path.startswith("/_sandbox/")
                and self.operation_of(request) not in self.fault_operations):
            with self.lock:  # an operation the faults do not target: served as the framework would
                self.request_count += 1
            response = self.dispatch(request)
            if self.state_file and request.method != "GET":
                self.persist()
        else:
            response = super().handle(request)
        if not request.path.startswith("/_sandbox/"):
            response.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
        return response

    def operation_of(self, request: Request) -> str | None:
        """The SP-API operation (``getRates``, ``lwaToken``...) a request is routed to, or None."""
        for method, pattern, attr in self._route_table:
            if method == request.method and pattern.match(request.path):
                return _OPERATION_OF_HANDLER.get(attr)
        return None

    def server_error(self) -> Response:
        if self._error_rng.random() < 0.5:
            return Response.json(_errors("InternalFailure", "We encountered an internal error. "
                                         "Please try again.", ""), 500)
        return Response.json(_errors("ServiceUnavailable", "Service temporarily unavailable. "
                                     "Please try again.", ""), 503)

    def not_found(self, request: Request) -> Response:
        return Response.json(_errors("NotFound", f"Resource {request.path} is not found."), 404)

    # -- plumbing ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock.now()

    def _authenticate(self, request: Request) -> tuple[_Seller | None, tuple[int, dict] | None]:
        token = request.headers.get("x-amz-access-token", "").strip()
        record = self.store["tokens"].get(token) if token else None
        if record is None or record["seller"] not in self.sellers:
            return None, _unauthorized()
        if self._now().timestamp() >= record["expires_at"]:
            return None, _unauthorized("The access token you provided has expired.")
        return self.sellers[record["seller"]], None

    def _take(self, seller: str, operation: str) -> bool:
        quota = self.quotas[operation]
        rate, burst = float(quota["rate"]), float(quota["burst"])
        now = self._now().timestamp()
        tokens, last = self._buckets.get((seller, operation), (burst, now))
        tokens = min(burst, tokens + max(0.0, now - last) * rate)
        if tokens < 1.0:
            self._buckets[(seller, operation)] = (tokens, now)
            return False
        self._buckets[(seller, operation)] = (tokens - 1.0, now)
        return True

    def _sp_call(self, operation: str, request: Request,
                 handler: Callable[[Request, _Seller], tuple[int, Any]]) -> Response:
        with self.lock:
            seller, denied = self._authenticate(request)
            if denied is not None:
                status, body = denied
            elif not self._take(seller.name, operation):
                status, body = 429, _errors("QuotaExceeded",
                                            "You exceeded your quota for the requested resource.", "")
            else:
                try:
                    status, body = handler(request, seller)
                except _ApiError as exc:
                    status, body = exc.status, exc.body
                except (KeyError, TypeError, AttributeError, ValueError) as exc:
                    if self.validate:  # the model accepted the request: this is an emulator bug
                        raise
                    status, body = 400, _errors("InvalidInput", f"Malformed request ({type(exc).__name__}).")
            return self._respond(operation, status, body)

    def _respond(self, operation: str, status: int, body: Any) -> Response:
        headers: dict[str, str] = {}
        if 200 <= status < 300 or status in (400, 404):
            headers["x-amzn-RateLimit-Limit"] = str(float(self.quotas[operation]["rate"]))
        if self.validate:
            problems = validate_response(operation, status, body)
            if problems:
                self.schema_violations.append({"operation": operation, "status": status,
                                               "problems": problems})
                log.error("spapi emulator answered %s %s that violates the model: %s",
                          operation, status, "; ".join(problems))
        if body is None:
            return Response(status, b"", headers)
        return Response.json(body, status, headers)

    def _check(self, operation: str, *, path_params: dict[str, str] | None = None,
               query: dict[str, list[str]] | None = None, body: Any = None) -> None:
        if not self.validate:
            return
        problems = validate_request(operation, path_params=path_params, query=query, body=body)
        if problems:
            raise _invalid("; ".join(problems))

    def _order_for(self, order_id: str, seller: _Seller) -> dict[str, Any]:
        record = self.store["orders"].get(order_id)
        if record is None or record["seller"] != seller.name:  # another seller's order: not yours
            raise _ApiError(404, "NotFound", f"Order {order_id} was not found.")
        return record["order"]

    # -- LWA -----------------------------------------------------------------------------------

    @route("POST", r"/auth/o2/token")
    def lwa_token(self, request: Request) -> Response:
        def oauth_error(status: int, error: str, description: str) -> Response:
            return Response.json({"error": error, "error_description": description}, status,
                                 {"Cache-Control": "no-store"})

        try:
            if "json" in request.headers.get("content-type", ""):
                form = request.json()
            else:
                form = request.form()
        except (ValueError, UnicodeDecodeError):
            return oauth_error(400, "invalid_request", "The request body could not be parsed")
        if not isinstance(form, dict):
            return oauth_error(400, "invalid_request", "The request body could not be parsed")
        grant_type = str(form.get("grant_type") or "")
        client_id = str(form.get("client_id") or "")
        client_secret = str(form.get("client_secret") or "")
        refresh_token = str(form.get("refresh_token") or "")
        if not grant_type:
            return oauth_error(400, "invalid_request",
                               "The request is missing a required parameter : grant_type")
        with self.lock:
            if not any(hmac.compare_digest(s.client_id, client_id)
                       and hmac.compare_digest(s.client_secret, client_secret)
                       for s in self.sellers.values()):
                return oauth_error(401, "invalid_client", "Client authentication failed")
            if grant_type != "refresh_token":
                return oauth_error(400, "unsupported_grant_type", "The authorization grant type is not "
                                   "supported by the authorization server")
            if not refresh_token:
                return oauth_error(400, "invalid_request",
                                   "The request is missing a required parameter : refresh_token")
            seller = next((s for s in self.sellers.values()
                           if hmac.compare_digest(s.refresh_token, refresh_token)), None)
            if seller is None or seller.client_id != client_id:
                return oauth_error(400, "invalid_grant",
                                   "The request has an invalid grant parameter : refresh_token")
            now = self._now().timestamp()
            tokens = self.store["tokens"]
            # Bound the table by count, not by age: a token that expired long ago (the simulated
            # clock can jump days) must still be answered "expired", so the client refreshes.
            if len(tokens) >= MAX_ACCESS_TOKENS:
                for stale in sorted(tokens, key=lambda t: tokens[t]["expires_at"])[: len(tokens) // 2]:
                    del tokens[stale]
            access_token = "Atza|" + secrets.token_urlsafe(48)
            tokens[access_token] = {"seller": seller.name, "expires_at": now + self.token_ttl}
        return Response.json({"access_token": access_token, "refresh_token": seller.refresh_token,
                              "token_type": "bearer", "expires_in": int(self.token_ttl)},
                             200, {"Cache-Control": "no-store"})

    # -- Orders v2026-01-01 ----------------------------------------------------------------------

    @route("GET", r"/orders/2026-01-01/orders")
    def search_orders(self, request: Request) -> Response:
        return self._sp_call("searchOrders", request, self._search_orders)

    @route("GET", r"/orders/2026-01-01/orders/(?P<orderId>[^/]+)")
    def get_order(self, request: Request) -> Response:
        return self._sp_call("getOrder", request, self._get_order)

    def _search_orders(self, request: Request, seller: _Seller) -> tuple[int, Any]:
        query = request.query
        self._check("searchOrders", query=query)
        created_after, updated_after = _arg(query, "createdAfter"), _arg(query, "lastUpdatedAfter")
        if bool(created_after) == bool(updated_after):
            raise _invalid("Exactly one of createdAfter and lastUpdatedAfter must be provided.")
        if created_after and _arg(query, "lastUpdatedBefore"):
            raise _invalid("lastUpdatedBefore cannot be combined with createdAfter.")
        if updated_after and _arg(query, "createdBefore"):
            raise _invalid("createdBefore cannot be combined with lastUpdatedAfter.")
        after_name = "createdAfter" if created_after else "lastUpdatedAfter"
        before_name = "createdBefore" if created_after else "lastUpdatedBefore"
        axis = "createdTime" if created_after else "lastUpdatedTime"
        after = parse_iso8601(created_after or updated_after or "")
        if after is None:
            raise _invalid(f"{after_name} must be an ISO 8601 date-time.")
        now = self._now()
        before_raw = _arg(query, before_name)
        if before_raw:
            before = parse_iso8601(before_raw)
            if before is None:
                raise _invalid(f"{before_name} must be an ISO 8601 date-time.")
            if before < after:
                raise _invalid(f"{before_name} must be equal to or after {after_name}.")
            if before > now - MIN_BEFORE_AGE:
                raise _invalid(f"{before_name} must be at least two minutes before the time of the request.")
        else:
            before = now - MIN_BEFORE_AGE

        marketplaces = _values(query, "marketplaceIds")
        if not marketplaces:
            raise _invalid("marketplaceIds is required.")
        if len(marketplaces) > 50:
            raise _invalid("marketplaceIds: at most 50 values are allowed.")
        foreign = [m for m in marketplaces if m not in seller.marketplace_ids]
        if foreign:
            raise _invalid(f"marketplaceIds: {', '.join(foreign)} is not a marketplace of this seller.")
        page_size_raw = _arg(query, "maxResultsPerPage")
        try:
            page_size = int(page_size_raw) if page_size_raw else 100
        except ValueError:
            raise _invalid("maxResultsPerPage must be an integer between 1 and 100.") from None
        if not 1 <= page_size <= 100:
            raise _invalid("maxResultsPerPage must be between 1 and 100.")
        statuses = set(_values(query, "fulfillmentStatuses"))
        fulfilled_by = set(_values(query, "fulfilledBy"))
        included = set(_values(query, "includedData"))
        canonical = {name: sorted(set(_values(query, name))) for name in _FILTER_PARAMS}
        filters = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:24]

        cursor: tuple[float, str] | None = None
        token = _arg(query, "paginationToken")
        if token:
            data = self._decode_page_token(token)
            if data.get("seller") != seller.name or data.get("filters") != filters:
                raise _invalid("paginationToken was issued for different query parameters; send it with "
                               "the same filters as the request that returned it.")
            if now.timestamp() > data["issued"] + PAGINATION_TOKEN_TTL.total_seconds():
                raise _invalid("paginationToken has expired.")
            cursor = (float(data["after"][0]), str(data["after"][1]))
            before = datetime.fromtimestamp(data["before"], timezone.utc)

        matched: list[tuple[tuple[float, str], dict[str, Any]]] = []
        for record in self.store["orders"].values():
            order = record["order"]
            if record["seller"] != seller.name:
                continue
            if order["salesChannel"].get("marketplaceId") not in marketplaces:
                continue
            fulfillment = order.get("fulfillment", {})
            if statuses and fulfillment.get("fulfillmentStatus") not in statuses:
                continue
            if fulfilled_by and fulfillment.get("fulfilledBy") not in fulfilled_by:
                continue
            when = parse_iso8601(order[axis])
            if when is None or when < after or when > before:
                continue
            updated = parse_iso8601(order["lastUpdatedTime"])
            key = (updated.timestamp() if updated else 0.0, order["orderId"])
            if cursor is not None and key <= cursor:
                continue
            matched.append((key, order))
        matched.sort(key=lambda pair: pair[0])
        page = matched[:page_size]
        body: dict[str, Any] = {"orders": [_project(order, included) for _, order in page]}
        if len(matched) > page_size:
            body["pagination"] = {"nextToken": self._encode_page_token({
                "seller": seller.name, "filters": filters, "after": list(page[-1][0]),
                "before": before.timestamp(), "issued": now.timestamp()})}
        body[before_name] = _iso(before)
        return 200, body

    def _encode_page_token(self, data: dict[str, Any]) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(data, sort_keys=True, separators=(",", ":"))
                                           .encode()).decode().rstrip("=")
        mac = hmac.new(self._token_key, payload.encode(), hashlib.sha256).digest()[:12]
        return payload + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _decode_page_token(self, token: str) -> dict[str, Any]:
        try:
            payload, mac = token.split(".", 1)
            expected = hmac.new(self._token_key, payload.encode(), hashlib.sha256).digest()[:12]
            if not hmac.compare_digest(base64.urlsafe_b64encode(expected).decode().rstrip("="), mac):
                raise ValueError("bad signature")
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            if not isinstance(data, dict) or not _TOKEN_KEYS <= set(data):
                raise ValueError("bad payload")
            return data
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _invalid("paginationToken is invalid.") from None

    def _get_order(self, request: Request, seller: _Seller) -> tuple[int, Any]:
        order_id = request.params["orderId"]
        self._check("getOrder", path_params={"orderId": order_id}, query=request.query)
        if not _ORDER_ID.match(order_id):
            raise _invalid(f"orderId {order_id} is not a valid order id (3-7-7 format expected).")
        order = self._order_for(order_id, seller)
        return 200, {"order": _project(order, set(_values(request.query, "includedData")))}

    # -- Orders v0 confirmShipment -----------------------------------------------------------------

    @route("POST", r"/orders/v0/orders/(?P<orderId>[^/]+)/shipmentConfirmation")
    def confirm_shipment(self, request: Request) -> Response:
        return self._sp_call("confirmShipment", request, self._confirm_shipment)

    def _confirm_shipment(self, request: Request, seller: _Seller) -> tuple[int, Any]:
        order_id = request.params["orderId"]
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise _invalid("The request body is not valid JSON.") from None
        detail = body.get("packageDetail") if isinstance(body, dict) else None
        ship_date_raw = detail.get("shipDate") if isinstance(detail, dict) else None
        if isinstance(ship_date_raw, str) and parse_iso8601(ship_date_raw) is None:
            # the model's own sandbox pair: a non-ISO shipDate -> this exact answer
            raise _ApiError(400, "Invalid Input", "Invalid Input")
        self._check("confirmShipment", path_params={"orderId": order_id}, query=request.query, body=body)
        if not isinstance(body, dict) or not isinstance(detail, dict):
            raise _invalid("The request body must be a ConfirmShipmentRequest object.")
        if not _ORDER_ID.match(order_id):
            raise _invalid(f"orderId {order_id} is not a valid order id (3-7-7 format expected).")
        order = self._order_for(order_id, seller)
        marketplace = order["salesChannel"].get("marketplaceId")
        if body.get("marketplaceId") != marketplace:
            raise _invalid(f"marketplaceId {body.get('marketplaceId')} does not match the marketplace "
                           f"of order {order_id}.")
        fulfillment = order.get("fulfillment", {})
        if fulfillment.get("fulfilledBy") == "AMAZON":
            raise _invalid(f"Order {order_id} is fulfilled by Amazon and cannot be confirmed by the seller.")
        status = fulfillment.get("fulfillmentStatus")
        if status == "CANCELLED":
            raise _invalid(f"Order {order_id} is cancelled; it cannot be confirmed.")
        if status in ("PENDING", "PENDING_AVAILABILITY", "UNFULFILLABLE"):
            raise _invalid(f"Order {order_id} is {status} and cannot be confirmed yet.")

        ref_raw = detail.get("packageReferenceId")
        if not isinstance(ref_raw, str) or not re.fullmatch(r"[0-9]+", ref_raw) or int(ref_raw) <= 0:
            raise _invalid("packageDetail.packageReferenceId must be a positive numeric value "
                           "sent as a string.")
        ref = str(int(ref_raw))
        site = _SITE_BY_MARKETPLACE.get(marketplace, "")
        carrier = str(detail.get("carrierCode", ""))
        if carrier not in ACCEPTED_CARRIER_CODES.get(site, frozenset()):
            raise _invalid(f"carrierCode '{carrier}' is not an accepted carrier code for marketplace "
                           f"{marketplace} ({site}); use a listed value, or 'Other' with carrierName.")
        carrier_name = str(detail.get("carrierName") or "").strip()
        if carrier == "Other" and not carrier_name:
            raise _invalid("packageDetail.carrierName is required when carrierCode is 'Other'.")
        tracking = str(detail.get("trackingNumber", ""))
        if not re.match(TRACKING_FORMATS.get(carrier, LENIENT_TRACKING_FORMAT), tracking):
            raise _invalid(f"The tracking ID {tracking} does not match the expected format for the "
                           f"carrier {carrier_name if carrier == 'Other' else carrier}.")
        ship_date = parse_iso8601(str(detail.get("shipDate", "")))
        if ship_date is None:
            raise _ApiError(400, "Invalid Input", "Invalid Input")

        packages: list[dict[str, Any]] = order.get("packages", [])
        existing = next((p for p in packages if p.get("packageReferenceId") == ref), None)
        if existing is None and status == "SHIPPED":
            raise _ApiError(400, "PackageToUpdateNotFound",
                            f"order already fulfilled: order {order_id} has no package {ref} to update.")
        if existing is not None and self._buy_shipping_package(order_id, ref) is not None:
            raise _invalid(f"Package {ref} of order {order_id} was created by a label purchased through "
                           "Amazon Buy Shipping; it is confirmed already and cannot be edited.")
        wanted = _package_items(order, [(line.get("orderItemId"), line.get("quantity", 0))
                                        for line in detail.get("orderItems", [])],
                                field="orderItemId", existing=existing,
                                empty="packageDetail.orderItems must list at least one order item.")

        if self.silent_drop_rate and self._drop_rng.random() < self.silent_drop_rate:
            self.silent_drops += 1
            log.info("spapi emulator silently dropped a confirmShipment for package %s", ref)
            return 204, None

        now = _iso(self._now())
        package: dict[str, Any] = {
            "packageReferenceId": ref,
            "createdTime": existing.get("createdTime", now) if existing else now,
            "packageStatus": {"status": "SHIPPED"},
            "carrier": carrier_name if carrier == "Other" else carrier,
            "shipTime": _iso(ship_date),
            "trackingNumber": tracking,
            "packageItems": [{"orderItemId": i, "quantity": q} for i, q in wanted.items()],
        }
        if detail.get("shippingMethod"):
            package["shippingService"] = str(detail["shippingMethod"])
        self._put_package(order, package, existing, now)

        confirmations = self.store["confirmations"].setdefault(order_id, {})
        previous = confirmations.get(ref, {})
        confirmations[ref] = {
            "accepted": int(previous.get("accepted", 0)) + 1,
            "carrierCode": carrier,
            "carrierName": carrier_name,
            "shippingMethod": str(detail.get("shippingMethod") or ""),
            "trackingNumber": tracking,
            "shipDate": str(detail["shipDate"]),
            "marketplaceId": marketplace,
            "orderItems": [{"orderItemId": i, "quantity": q} for i, q in wanted.items()],
            "firstAcceptedAt": previous.get("firstAcceptedAt", now),
            "lastAcceptedAt": now,
        }
        return 204, None

    # -- Shipping API v2 (Amazon Buy Shipping) ---------------------------------------------------
    #
    # getRates -> purchaseShipment (x-amzn-IdempotencyKey) -> getShipmentDocuments / getTracking /
    # cancelShipment, for Amazon orders (channelType AMAZON) of Buy Shipping sites. A purchase
    # ships the order's items like confirmShipment does (shared _package_items / _put_package), and
    # is never listed under "confirmations": no confirmShipment is sent for it.

    @route("POST", r"/shipping/v2/shipments/rates")
    def get_rates(self, request: Request) -> Response:
        return self._sp_call("getRates", request, self._get_rates)

    @route("POST", r"/shipping/v2/shipments")
    def purchase_shipment(self, request: Request) -> Response:
        return self._sp_call("purchaseShipment", request, self._purchase_shipment)

    @route("GET", r"/shipping/v2/shipments/(?P<shipmentId>[^/]+)/documents")
    def get_shipment_documents(self, request: Request) -> Response:
        return self._sp_call("getShipmentDocuments", request, self._get_shipment_documents)

    @route("GET", r"/shipping/v2/tracking")
    def get_tracking(self, request: Request) -> Response:
        return self._sp_call("getTracking", request, self._get_tracking)

    @route("PUT", r"/shipping/v2/shipments/(?P<shipmentId>[^/]+)/cancel")
    def cancel_shipment(self, request: Request) -> Response:
        return self._sp_call("cancelShipment", request, self._cancel_shipment)

    @staticmethod
    def _json_body(request: Request) -> Any:
        try:
            return request.json()
        except (ValueError, UnicodeDecodeError):
            raise _invalid("The request body is not valid JSON.") from None

    @staticmethod
    def _business_id(request: Request) -> str:
        """The x-amzn-shipping-business-id of the request (Amazon's default when absent)."""
        value = request.headers.get("x-amzn-shipping-business-id", "").strip()
        if not value:
            return bs.DEFAULT_BUSINESS_ID
        if value not in bs.BUSINESS_ID_VALUES:
            raise _invalid(f"x-amzn-shipping-business-id {value} is not one of "
                           f"{', '.join(sorted(bs.BUSINESS_ID_VALUES))}.")
        return value

    @staticmethod
    def _buy_shipping_site(order: dict[str, Any], business_id: str) -> str:
        """The order's site when Buy Shipping can ship it under ``business_id``; else 400."""
        order_id = order["orderId"]
        marketplace = order["salesChannel"].get("marketplaceId")
        site = _SITE_BY_MARKETPLACE.get(marketplace, "")
        if site not in bs.BUY_SHIPPING_SITES:
            raise _invalid(f"Amazon Buy Shipping is not available for order {order_id}: marketplace "
                           f"{marketplace} ({site or 'unknown'}) is not a Buy Shipping marketplace.")
        if business_id not in bs.ACCEPTED_BUSINESS_IDS[site]:
            raise _invalid(f"x-amzn-shipping-business-id {business_id} cannot ship orders of marketplace "
                           f"{marketplace} ({site}); use "
                           f"{' or '.join(sorted(bs.ACCEPTED_BUSINESS_IDS[site]))}.")
        fulfillment = order.get("fulfillment", {})
        if fulfillment.get("fulfilledBy") != "MERCHANT":
            raise _invalid(f"Order {order_id} is fulfilled by Amazon; Buy Shipping is for merchant-"
                           "fulfilled orders.")
        status = fulfillment.get("fulfillmentStatus")
        if status == "CANCELLED":
            raise _invalid(f"Order {order_id} is cancelled; no label can be bought for it.")
        if status not in ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"):
            raise _invalid(f"Order {order_id} is {status} and cannot be shipped yet.")
        return site

    def _get_rates(self, request: Request, seller: _Seller) -> tuple[int, Any]:
        body = self._json_body(request)
        self._check("getRates", body=body)
        if not isinstance(body, dict):
            raise _invalid("The request body must be a GetRatesRequest object.")
        business_id = self._business_id(request)
        channel = body["channelDetails"]
        if channel.get("channelType") != "AMAZON":
            raise _invalid("The sandbox sells Buy Shipping for Amazon orders only: "
                           "channelDetails.channelType must be AMAZON.")
        order_id = (channel.get("amazonOrderDetails") or {}).get("orderId")
        if not order_id:
            raise _invalid("channelDetails.amazonOrderDetails.orderId is required when channelType is "
                           "AMAZON.")
        if not _ORDER_ID.match(str(order_id)):
            raise _invalid(f"orderId {order_id} is not a valid order id (3-7-7 format expected).")
        order = self._order_for(order_id, seller)
        site = self._buy_shipping_site(order, business_id)
        if len(body["packages"]) != 1:
            raise _invalid("Each shipment is limited to a single package: send exactly one in packages.")
        package = body["packages"][0]
        reference = str(package["packageClientReferenceId"]).strip()
        if not reference:
            raise _invalid("packages[0].packageClientReferenceId must not be empty.")
        for i, item in enumerate(package["items"]):
            if not item.get("itemIdentifier"):
                raise _invalid(f"packages[0].items[{i}].itemIdentifier must be the order item id "
                               "(orderItemId) of an item of the Amazon order.")
            if "itemValue" not in item:
                raise _invalid(f"packages[0].items[{i}].itemValue is required to generate a label.")
        wanted = _package_items(order, [(it["itemIdentifier"], it["quantity"]) for it in package["items"]],
                                field="itemIdentifier", existing=None,
                                empty="packages[0].items must list at least one order item.")
        weight_g = bs.grams(package["weight"])
        dims = package["dimensions"]
        if weight_g <= 0 or min(float(dims["length"]), float(dims["width"]), float(dims["height"])) <= 0:
            raise _invalid("packages[0].weight and dimensions must be greater than zero.")
        now = self._now()
        ship_date = now
        if body.get("shipDate"):
            ship_date = parse_iso8601(body["shipDate"])
            if ship_date is None:
                raise _invalid("shipDate must be an ISO 8601 date-time.")
        destination = (order.get("recipient", {}).get("deliveryAddress", {}).get("countryCode")
                       or ("GB" if site == "UK" else site))

        store = self.store["buy_shipping"]
        store["token_counter"] += 1
        store["rate_requests"] += 1
        token = hashlib.sha256(f"{self.seed}:rates:{store['token_counter']}:{seller.name}".encode()) \
            .hexdigest()[:29].upper()
        card = bs.SITE_CARDS[site]
        rates, ineligible, offered = [], [], {}
        for service in bs.SERVICES.values():
            carrier = bs.carrier_name(service.carrier_id, site)
            reasons = []
            if service.service_id not in card.services:
                reasons.append({"code": "NO_COVERAGE", "message": f"{service.name} does not serve "
                                f"{site} orders."})
            elif weight_g > service.max_weight_g:
                reasons.append({"code": "WEIGHT_RESTRICTIONS", "message": f"{service.name} takes parcels "
                                f"up to {service.max_weight_g} g."})
            if reasons:
                ineligible.append({"serviceId": service.service_id, "serviceName": service.name,
                                   "carrierName": carrier, "carrierId": service.carrier_id,
                                   "ineligibilityReasons": reasons})
                continue
            rate_id = hashlib.sha256(f"{token}:{service.service_id}".encode()).hexdigest()[:29].upper()
            charge = bs.price(service, site, weight_g)
            earliest = ship_date + timedelta(days=max(1, service.transit_days - 3))
            promise = {
                "deliveryWindow": {"start": _iso(earliest),
                                   "end": _iso(ship_date + timedelta(days=service.transit_days))},
                "pickupWindow": {"start": _iso(ship_date), "end": _iso(ship_date + timedelta(days=1))},
            }
            rates.append({
                "rateId": rate_id,
                "carrierId": service.carrier_id,
                "carrierName": carrier,
                "serviceId": service.service_id,
                "serviceName": service.name,
                "billedWeight": {"value": round(weight_g, 3), "unit": "GRAM"},
                "totalCharge": {"value": bs.money_number(charge), "unit": card.currency},
                "promise": promise,
                "supportedDocumentSpecifications": [
                    {"format": "PDF", "size": {"width": w, "length": length, "unit": unit},
                     "printOptions": [{"supportedDPIs": [203, 300], "supportedPageLayouts": ["DEFAULT"],
                                       "supportedFileJoiningOptions": [False],
                                       "supportedDocumentDetails": [{"name": "LABEL", "isMandatory": True}]}]}
                    for w, length, unit in card.label_sizes],
                "requiresAdditionalInputs": False,
                "rateItemList": [{"rateItemID": "BASE_RATE", "rateItemType": "MANDATORY",
                                  "rateItemCharge": {"value": bs.money_number(charge),
                                                     "unit": card.currency}}],
                "paymentType": "PAY_THROUGH_AMAZON",
            })
            offered[rate_id] = {"serviceId": service.service_id, "carrierId": service.carrier_id,
                                "carrierName": carrier, "serviceName": service.name,
                                "totalCharge": {"value": bs.money_number(charge), "unit": card.currency},
                                "transitDays": service.transit_days, "promise": promise}
        tokens = store["tokens"]
        for stale in [t for t, r in tokens.items() if r["createdAt"] < now.timestamp() - 86400]:
            del tokens[stale]
        tokens[token] = {"seller": seller.name, "orderId": order_id, "site": site, "businessId": business_id,
                         "createdAt": now.timestamp(), "shipDate": ship_date.timestamp(),
                         "packageClientReferenceId": reference, "destination": destination,
                         "items": [{"orderItemId": i, "quantity": q} for i, q in wanted.items()],
                         "rates": offered, "usedBy": None}
        return 200, {"payload": {"requestToken": token, "rates": rates, "ineligibleRates": ineligible}}

    def _purchase_shipment(self, request: Request, seller: _Seller) -> tuple[int, Any]:
        body = self._json_body(request)
        self._check("purchaseShipment", body=body)
        if not isinstance(body, dict):
            raise _invalid("The request body must be a PurchaseShipmentRequest object.")
        business_id = self._business_id(request)
        store = self.store["buy_shipping"]
        key = request.headers.get("x-amzn-idempotencykey", "").strip()
        keys = store["keys"].setdefault(seller.name, {})
        record = keys.get(key) if key else None
        if record is not None:
            record["requests"] += 1
            shipment = store["shipments"][record["shipmentId"]]
            if shipment["cancelledAt"] is None:
                # "recognize subsequent retries of the same request": the original shipment, no new label
                return 200, {"payload": self._purchase_result(shipment)}

        token = str(body["requestToken"])
        offer = store["tokens"].get(token)
        if offer is None or offer["seller"] != seller.name:
            raise _invalid("requestToken is invalid or unknown; get rates first.")
        if self._now().timestamp() - offer["createdAt"] > bs.TOKEN_TTL.total_seconds():
            raise _ApiError(400, "TOKEN_EXPIRED", "The requestToken has expired: a shipment must be "
                            "purchased within 10 minutes of getRates. Get rates for the shipment again.")
        if offer["usedBy"] is not None:
            raise _invalid("requestToken has already been used for a purchase; get rates again.")
        rate = offer["rates"].get(str(body["rateId"]))
        if rate is None:
            raise _invalid(f"rateId {body['rateId']} is not a rate of this requestToken.")
        order = self._order_for(offer["orderId"], seller)
        site = self._buy_shipping_site(order, business_id)
        spec = body["requestedDocumentSpecification"]
        card = bs.SITE_CARDS[site]
        size = spec["size"]
        if spec["format"] != "PDF" or not any(
                size.get("unit") == unit and abs(float(size["width"]) - w) < 1e-6
                and abs(float(size["length"]) - length) < 1e-6 for w, length, unit in card.label_sizes):
            supported = ", ".join(f"PDF {w:g}x{length:g} {unit}" for w, length, unit in card.label_sizes)
            raise _invalid(f"requestedDocumentSpecification {spec['format']} {size.get('width')}x"
                           f"{size.get('length')} {size.get('unit')} is not supported by this rate "
                           f"(supported: {supported}).")
        if set(spec["requestedDocumentTypes"]) != {"LABEL"}:
            raise _invalid("requestedDocumentSpecification.requestedDocumentTypes: this rate supports "
                           "LABEL only.")
        if spec.get("dpi") is not None and spec["dpi"] not in (203, 300):
            raise _invalid("requestedDocumentSpecification.dpi must be one of 203, 300.")
        # the items may have shipped since the rate (another label, a confirmShipment)
        _package_items(order, [(i["orderItemId"], i["quantity"]) for i in offer["items"]],
                       field="itemIdentifier", existing=None, empty="no items")

        store["counter"] += 1
        number = store["counter"]
        prefix = int(hashlib.sha256(f"spapi-shipments:{self.seed}".encode()).hexdigest()[:8], 16) % 10**5
        shipment_id = f"8{prefix:05d}{number:08d}"
        rng = random.Random(f"spapi-buy-shipping:{self.seed}:{number}")
        tracking = bs.tracking_number(rate["carrierId"], rng)
        while tracking in store["tracking"]:
            tracking = bs.tracking_number(rate["carrierId"], rng)
        if self.package_ids == "shipment_id":
            package_ref = shipment_id
        else:  # an Amazon-assigned number unrelated to the shipment id
            digest = int(hashlib.sha256(shipment_id.encode()).hexdigest()[:12], 16)
            package_ref = str(10**9 + digest % (9 * 10**9))
        now = self._now()
        stamp = _iso(now)
        package = {
            "packageReferenceId": package_ref,
            "createdTime": stamp,
            "packageStatus": {"status": "SHIPPED"},
            "carrier": rate["carrierName"],
            "shipTime": _iso(datetime.fromtimestamp(offer["shipDate"], timezone.utc)),
            "shippingService": rate["serviceName"],
            "trackingNumber": tracking,
            "packageItems": [dict(i) for i in offer["items"]],
        }
        self._put_package(order, package, None, stamp)
        offer["usedBy"] = shipment_id
        shipment = {
            "seller": seller.name, "orderId": offer["orderId"], "site": site, "businessId": business_id,
            "idempotencyKey": key, "packageClientReferenceId": offer["packageClientReferenceId"],
            "packageReferenceId": package_ref, "trackingId": tracking, "carrierId": rate["carrierId"],
            "carrierName": rate["carrierName"], "serviceId": rate["serviceId"],
            "serviceName": rate["serviceName"], "totalCharge": dict(rate["totalCharge"]),
            "transitDays": rate["transitDays"], "promise": copy.deepcopy(rate["promise"]),
            "destination": offer["destination"], "purchasedAt": now.timestamp(), "cancelledAt": None,
            "refunded": False, "shipmentId": shipment_id,
        }
        store["shipments"][shipment_id] = shipment
        store["tracking"][tracking] = shipment_id
        if key:
            entry = keys.setdefault(key, {"purchased": 0, "requests": 0, "shipmentIds": []})
            entry["purchased"] += 1
            entry["requests"] += 1
            entry["shipmentIds"].append(shipment_id)
            entry["shipmentId"] = shipment_id
        return 200, {"payload": self._purchase_result(shipment)}

    @staticmethod
    def _label(shipment: dict[str, Any]) -> dict[str, Any]:
        """The LABEL document, regenerated identically on every request (no buyer PII on it)."""
        pdf = make_label_pdf([
            shipment["carrierName"], shipment["trackingId"], shipment["serviceName"],
            f"Amazon Buy Shipping - order {shipment['orderId']}",
            f"Destination: {shipment['destination']}", f"Ref: {shipment['packageClientReferenceId']}",
        ])
        return {"type": "LABEL", "format": "PDF", "contents": base64.b64encode(pdf).decode("ascii")}

    def _purchase_result(self, shipment: dict[str, Any]) -> dict[str, Any]:
        return {"shipmentId": shipment["shipmentId"],
                "packageDocumentDetails": [{"packageClientReferenceId": shipment["packageClientReferenceId"],
                                            "packageDocuments": [self._label(shipment)],
                                            "trackingId": shipment["trackingId"]}],
                "promise": copy.deepcopy(shipment["promise"])}

    def _shipment_for(self, shipment_id: str, seller: _Seller) -> dict[str, Any]:
        shipment = self.store["buy_shipping"]["shipments"].get(shipment_id)
        if shipment is None or shipment["seller"] != seller.name:
            raise _ApiError(404, "NotFound", f"Shipment {shipment_id} was not found.")
        return shipment

    def _get_shipment_documents(self, request: Request, seller: _Seller) -> tuple[int, Any]:
        shipment_id = request.params["shipmentId"]
        self._check("getShipmentDocuments", path_params={"shipmentId": shipment_id}, query=request.query)
        self._business_id(request)
        shipment = self._shipment_for(shipment_id, seller)
        reference = _arg(request.query, "packageClientReferenceId") or ""
        if reference != shipment["packageClientReferenceId"]:
            raise _invalid(f"packageClientReferenceId {reference} is not a package of shipment "
                           f"{shipment_id}.")
        if shipment["cancelledAt"] is not None:
            raise _invalid(f"Shipment {shipment_id} is cancelled; its documents are no longer available.")
        fmt = _arg(request.query, "format")
        if fmt is not None and fmt != "PDF":
            raise _invalid(f"format {fmt} is not supported for shipment {shipment_id} (supported: PDF).")
        dpi = _arg(request.query, "dpi")
        if dpi is not None and dpi not in ("203", "300"):
            raise _invalid("dpi must be one of 203, 300.")
        return 200, {"payload": {"shipmentId": shipment_id, "packageDocumentDetail": {
            "packageClientReferenceId": shipment["packageClientReferenceId"],
            "packageDocuments": [self._label(shipment)], "trackingId": shipment["trackingId"]}}}

    def _get_tracking(self, request: Request, seller: _Seller) -> tuple[int, Any]:
        self._check("getTracking", query=request.query)
        self._business_id(request)
        tracking = _arg(request.query, "trackingId") or ""
        carrier_id = _arg(request.query, "carrierId") or ""
        shipment_id = self.store["buy_shipping"]["tracking"].get(tracking)
        shipment = self.store["buy_shipping"]["shipments"].get(shipment_id or "")
        if shipment is None or shipment["seller"] != seller.name:
            raise _ApiError(404, "NotFound", f"No shipment purchased through the Shipping API has tracking "
                            f"id {tracking}.")
        if carrier_id != shipment["carrierId"]:
            raise _invalid(f"carrierId {carrier_id} does not match tracking id {tracking}.")
        purchased = datetime.fromtimestamp(shipment["purchasedAt"], timezone.utc)
        cancelled = shipment["cancelledAt"]
        events, status = bs.tracking_events(
            purchased=purchased, now=self._now(), transit_days=shipment["transitDays"], site=shipment["site"],
            destination=shipment["destination"],
            cancelled_at=datetime.fromtimestamp(cancelled, timezone.utc) if cancelled is not None else None)
        promised = purchased + timedelta(days=shipment["transitDays"])
        return 200, {"payload": {"trackingId": tracking, "alternateLegTrackingId": "",
                                 "eventHistory": events, "promisedDeliveryDate": _iso(promised),
                                 "summary": {"status": status}}}

    def _cancel_shipment(self, request: Request, seller: _Seller) -> tuple[int, Any]:
        shipment_id = request.params["shipmentId"]
        self._check("cancelShipment", path_params={"shipmentId": shipment_id}, query=request.query)
        self._business_id(request)
        shipment = self._shipment_for(shipment_id, seller)
        if shipment["cancelledAt"] is not None:  # cancelling twice is a no-op (a safe retry)
            return 200, {"payload": {}}
        now = self._now()
        if now.timestamp() - shipment["purchasedAt"] >= bs.PICKUP_AFTER.total_seconds():
            raise _invalid(f"Shipment {shipment_id} has been picked up by the carrier and can no longer "
                           "be cancelled.")
        shipment["cancelledAt"] = now.timestamp()
        shipment["refunded"] = True
        order = self._order_for(shipment["orderId"], seller)
        self._drop_package(order, shipment["packageReferenceId"], _iso(now))
        return 200, {"payload": {}}

    def _buy_shipping_package(self, order_id: str, package_reference_id: str) -> dict[str, Any] | None:
        """The live Buy Shipping shipment behind an order package, if it is one."""
        for shipment in self.store["buy_shipping"]["shipments"].values():
            if (shipment["orderId"] == order_id and shipment["packageReferenceId"] == package_reference_id
                    and shipment["cancelledAt"] is None):
                return shipment
        return None

    def _buy_shipping_state(self) -> dict[str, Any]:
        """``buy_shipping`` and ``labels`` per idempotency key (purchases without a key are
        listed under ``shipment:<id>``), for the exactly-once audits."""
        store = self.store["buy_shipping"]
        buy: dict[str, Any] = {}
        labels: dict[str, Any] = {}
        keyed: set[str] = set()
        for seller, keys in store["keys"].items():
            for key, entry in keys.items():
                shipment = store["shipments"][entry["shipmentId"]]
                keyed.update(entry["shipmentIds"])
                name = key if key not in buy else f"{seller}/{key}"
                buy[name] = {"purchased": entry["purchased"], "requests": entry["requests"],
                             "shipmentId": shipment["shipmentId"], "trackingId": shipment["trackingId"],
                             "orderId": shipment["orderId"], "cancelled": shipment["cancelledAt"] is not None,
                             "seller": seller, "carrierName": shipment["carrierName"],
                             "serviceId": shipment["serviceId"], "totalCharge": dict(shipment["totalCharge"]),
                             "packageReferenceId": shipment["packageReferenceId"],
                             "shipmentIds": list(entry["shipmentIds"])}
        for shipment_id, shipment in store["shipments"].items():
            if shipment_id not in keyed:
                buy[f"shipment:{shipment_id}"] = {
                    "purchased": 1, "requests": 1, "shipmentId": shipment_id,
                    "trackingId": shipment["trackingId"], "orderId": shipment["orderId"],
                    "cancelled": shipment["cancelledAt"] is not None, "seller": shipment["seller"],
                    "carrierName": shipment["carrierName"], "serviceId": shipment["serviceId"],
                    "totalCharge": dict(shipment["totalCharge"]),
                    "packageReferenceId": shipment["packageReferenceId"], "shipmentIds": [shipment_id]}
        for name, entry in buy.items():
            labels[name] = {"created": entry["purchased"], "tracking_number": entry["trackingId"],
                            "shipment_id": entry["shipmentId"], "waybill": entry["shipmentId"],
                            "cancelled": entry["cancelled"], "order_id": entry["orderId"],
                            "waybills": list(entry["shipmentIds"])}
        return {"buy_shipping": buy, "labels": labels, "buy_shipping_rate_requests": store["rate_requests"]}

    def _put_package(self, order: dict[str, Any], package: dict[str, Any], existing: dict[str, Any] | None,
                     now: str) -> None:
        """Add ``package`` to the order (or replace ``existing``), then recount the items and the
        order's status: what every package-creating call (confirmShipment, purchaseShipment) does."""
        packages: list[dict[str, Any]] = order.get("packages", [])
        if existing is not None:
            packages[packages.index(existing)] = package
        else:
            packages.append(package)
        order["packages"] = packages
        self._recount(order)
        order["lastUpdatedTime"] = now

    def _drop_package(self, order: dict[str, Any], package_reference_id: str, now: str) -> None:
        """Remove a package (a cancelled Buy Shipping label) and recount."""
        order["packages"] = [p for p in order.get("packages", [])
                             if p.get("packageReferenceId") != package_reference_id]
        if not order["packages"]:
            del order["packages"]
        self._recount(order)
        order["lastUpdatedTime"] = now

    @staticmethod
    def _recount(order: dict[str, Any]) -> None:
        """Item quantities and the order's status, from its packages."""
        shipped: dict[str, int] = {}
        for package in order.get("packages", []):
            for pi in package.get("packageItems", []):
                shipped[pi["orderItemId"]] = shipped.get(pi["orderItemId"], 0) + int(pi["quantity"])
        any_shipped, all_shipped = False, True
        for item in order.get("orderItems", []):
            done = min(shipped.get(item["orderItemId"], 0), int(item["quantityOrdered"]))
            fulfillment = item.setdefault("fulfillment", {})
            fulfillment["quantityFulfilled"] = done
            fulfillment["quantityUnfulfilled"] = int(item["quantityOrdered"]) - done
            any_shipped |= done > 0
            all_shipped &= done == int(item["quantityOrdered"])
        status = "SHIPPED" if all_shipped else ("PARTIALLY_SHIPPED" if any_shipped else "UNSHIPPED")
        order.setdefault("fulfillment", {})["fulfillmentStatus"] = status


SPAPI_EMULATOR = EmulatorSpec(name="spapi", factory=SpApiEmulator, port_offset=0, env_var="MFN_SANDBOX_SPAPI")
