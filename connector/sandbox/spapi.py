"""The SP-API emulator: LWA tokens, Orders v2026-01-01 searchOrders/getOrder, v0 confirmShipment,
and the host every other emulated SP-API mounts on.

It enforces what Amazon enforces and what users of the real API ran into: LWA refresh-token
grants, ``x-amz-access-token`` on every call, one access token per seller, per (seller,
operation) token-bucket quotas on the simulated clock (429 ``QuotaExceeded``; the bucket's rate
in ``x-amzn-RateLimit-Limit`` on 2xx/400/404 answers, as Amazon sends it), the searchOrders
time-window rules and opaque pagination tokens, ``includedData`` sections, and confirmShipment's
carrier codes per marketplace, tracking-number formats, string ``packageReferenceId`` (re-sending
one edits that package), quantities still to ship, "order already fulfilled", cancelled
orders, FBM Ship+ orders (which Amazon confirms itself) and items enrolled in Transparency (one
Transparency code per unit confirmed; see ``transparency_skus``). ``silent_drop_rate`` answers 204
and drops the write, as sellers have reported
(https://github.com/amzn/selling-partner-api-models/issues/5232); only reading the order back
reveals it. Amazon's documentation: https://developer-docs.amazon.com/sp-api/ .

Every request it accepts and every response it returns is validated against Amazon's published
models (:mod:`.schemas`); a response that does not validate is an emulator bug and lands in
``schema_violations`` of ``GET /_sandbox/state``, which also counts the requests served per
operation (``operation_calls``: total, and how many were answered 429).

Extensions. Another SP-API (one a plugin emulates) is served by this emulator, with its sellers,
tokens, quotas, orders and clock: the plugin registers ``EmulatorSpec(name, factory,
mount_on="spapi")`` and its ``factory(spapi, options)`` mounts an object with ``@route`` methods
(``spapi.mount(extension)``; see :mod:`.framework`). Name each route by its operationId
(``@route("POST", r"/widgets/v1/widgets", name="createWidget")``): ``fault_operations`` and the
quotas go by it. The extension's ``sandbox_state()`` is merged into ``GET /_sandbox/state`` --
labels it issues go under ``labels`` (``{reference: {"created": n, ...}}``) for the exactly-once
audits. What it may use of this emulator (see each method):

* :meth:`SpApiEmulator.call` -- authenticate, take a quota token, run the handler, validate its
  answer against the model: the whole life of one SP-API request;
* :meth:`~SpApiEmulator.check_request`, :meth:`~SpApiEmulator.json_body`,
  :meth:`~SpApiEmulator.invalid` / :meth:`~SpApiEmulator.error` (an :class:`ApiError` to raise);
* :meth:`~SpApiEmulator.add_models` (the API's model, for the validator) and
  :meth:`~SpApiEmulator.add_quotas` (its published quotas; configured ones win);
* orders: :meth:`~SpApiEmulator.order_for` (an order of the caller), :meth:`~SpApiEmulator.site_of`,
  :meth:`~SpApiEmulator.package_items` (quantities still to ship), :meth:`~SpApiEmulator.put_package`
  / :meth:`~SpApiEmulator.drop_package` (add or remove a package and recount the order),
  :meth:`~SpApiEmulator.lock_package` (a package confirmShipment may not edit);
* :meth:`~SpApiEmulator.substore` -- a JSON sub-store persisted with the emulator's state;
* :meth:`~SpApiEmulator.now`, ``seed``, ``lock``, :meth:`~SpApiEmulator.parse_time`,
  :meth:`~SpApiEmulator.format_time`.

Control endpoints besides the framework's (never faulted):

* ``POST /_sandbox/orders/<orderId>/cancel`` (optional body ``{"reason": "..."}``): the buyer
  cancels the order, as Amazon does it: ``fulfillmentStatus`` CANCELLED, every item's
  ``cancellation.cancellationExecution`` (cancelledBy BUYER) and no unit left to ship,
  ``lastUpdatedTime`` = now on the simulated clock (so a ``lastUpdatedAfter`` search finds it). Only
  while nothing of the order has shipped: a SHIPPED or PARTIALLY_SHIPPED order answers 409 (Amazon
  does not cancel what has shipped), an unknown order 404; cancelling twice is a no-op (200,
  ``"changed": false``).
* ``POST /_sandbox/orders/<orderId>/items/<orderItemId>/transparency`` (optional body
  ``{"enabled": false}`` to take it off): the item is enrolled in Transparency (item-level
  ``programs`` holds ``TRANSPARENCY``), whatever its SKU; a change moves ``lastUpdatedTime`` to now
  (so a poller reads the order again), marking twice is a no-op (``"changed": false``); an unknown
  order or item 404.

The daily order stream: with ``orders_per_day`` > 0, every simulated day that passes (as
``POST /_sandbox/clock`` moves the clock, or as real time does) gives each seller that many new
orders, created at the moment the day ends (:func:`.seed.daily_orders`, deterministic from the seed
and the day number; days count from the emulator's first start, kept in its state). The initial
seed (``orders_per_seller``) is unchanged.

Options (all optional): ``sellers`` (list of ``{name, refresh_token, client_id, client_secret,
marketplaces}``; marketplaces are site codes such as ``"US"`` or marketplace ids),
``orders_per_seller`` (60), ``orders_per_day`` (0), ``seed`` (7), ``quotas`` (``{operationId:
{rate, burst}}`` over the published defaults and those extensions add), ``token_ttl_seconds``
(3600), ``silent_drop_rate`` (0.0), ``search_lag_seconds`` (120: how old a change must be before a
searchOrders that sends no ``*Before`` shows it; one that is sent must always be two minutes
old), ``validate`` (True), ``unknown_carrier_codes`` (``"file_as_other"``: a carrierCode not on the
site's list is answered 204 and filed as "Other"; ``"refuse"``: 400), ``transparency_skus`` (``[]``:
seller SKUs enrolled in Transparency; every seeded or daily order item of one carries the item-level
``"programs": ["TRANSPARENCY"]`` in searchOrders and getOrder, orders of other SKUs stay exactly as
seeded; no v0 order-items answer is served, so there is no ``IsTransparency`` to set),
``transparency_required`` (True: confirmShipment refuses, 400 ``InvalidInput`` naming the
orderItemId and the counts, a line of a Transparency item whose ``transparencyCodes`` do not number
its quantity, and a fulfilment feed refuses every line of such an item, whose template cannot carry
codes; False: a Transparency item confirms without codes. Either way a code that is empty or holds
whitespace is refused, codes sent for an item outside Transparency are accepted, and the package
read back shows the codes sent as ``packageItems[].transparencyCodes``), ``fault_operations``
(the operationIds injected faults apply to, e.g. ``["confirmShipment"]``; default: every request), plus the
framework's ``faults``, ``timeout_seconds``, ``state_file`` and (for the labels extensions sell,
e.g. Buy Shipping) ``parcel_outcomes`` and ``first_scan_hours``. The carrier codes confirmShipment
accepts: ``carrier_codes`` (``{site: [code, ...]}``, what the sandbox runner passes: the daemon's
effective site rules), else the installed plugins' site rules merged with ``site_rules`` (a
configuration's ``site_rules`` section); see :func:`site_carrier_codes`.
"""
from __future__ import annotations

import base64
import binascii
import copy
import functools
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..amazon.sites import BUILTIN, Site, SiteTable
from . import schemas
from .framework import Emulator, EmulatorSpec, Request, Response, route, same_secret
from .seed import TRANSPARENCY_PROGRAM, daily_orders, mark_transparency, seed_orders

log = logging.getLogger(__name__)

DEFAULT_SELLER: dict[str, Any] = {
    "name": "demo-seller",
    "refresh_token": "Atzr|sandbox-demo",
    "client_id": "amzn1.application-oa2-client.sandbox",
    "client_secret": "sandbox-secret",
    "marketplaces": ["US", "CA", "UK", "DE", "FR", "JP"],
}
# The published default usage plans of the operations served here (each operation's description in
# the Orders models); extensions add theirs with add_quotas.
DEFAULT_QUOTAS: dict[str, dict[str, float]] = {
    "searchOrders": {"rate": 0.0056, "burst": 20},
    "getOrder": {"rate": 0.5, "burst": 30},
    "confirmShipment": {"rate": 2.0, "burst": 10},
}
MAX_ACCESS_TOKENS = 2000  # LWA access tokens remembered (the oldest half is dropped beyond it)
# Pagination tokens expire after 24 hours (Amazon's Orders API migration guide,
# https://developer-docs.amazon.com/sp-api/docs/orders-api-migration-guide).
PAGINATION_TOKEN_TTL = timedelta(hours=24)
MIN_BEFORE_AGE = timedelta(minutes=2)  # *Before must be at least two minutes before now

# -- carrier codes and tracking formats (data, per marketplace) ---------------------------------
#
# Amazon's "acceptable CarrierCode values" differ per marketplace and the exact list is not
# published in the models (Seller Central holds it; confirmShipment refuses a value that is not on
# it, see https://developer-docs.amazon.com/sp-api/changelog/carriercode-value-required-in-shipment-confirmations-for-br-mx-ca-sg-au-in-jp-marketplaces).
# The emulator has no list of its own: it takes the ``carrier_codes`` of the site rules the
# daemon uses (the mfn-marketplace-amazon plugin's table, plugins' patches, the configuration's
# ``site_rules``), plus "Other" with a carrierName; a test gives it Amazon's "true" list with its
# own ``carrier_codes`` option. Codes are exact and case-sensitive. A code not on the list is, by
# ``unknown_carrier_codes``: "file_as_other" (the default) answered 204 and filed as "Other", as a
# seller saw `PUROLATOR` for `Purolator` counted (their tracking then is not valid tracking,
# https://github.com/amzn/selling-partner-api-docs/issues/2530; what the read-back's ``carrier``
# shows then is not documented: the emulator shows "Other"); "refuse": answered 400.

OTHER_CARRIER_CODE = "Other"
UNKNOWN_CARRIER_CODES = ("file_as_other", "refuse")

# -- Transparency (Amazon's anti-counterfeit serial codes) --------------------------------------
#
# An item enrolled in Transparency carries the item-level program TRANSPARENCY (Orders
# v2026-01-01; v0 says ``IsTransparency``) and is confirmed with one Transparency code per unit
# shipped: "the number of Transparency codes or serial numbers you upload must match the number
# of Transparency-enabled items in your order"
# (https://sellercentral.amazon.com/seller-forums/discussions/t/b565845a-f509-4d4f-913d-9fc6f141e250).
# The codes' forms (ordersV0's IsTransparency): 29 characters starting AZ or ZA, a 38-character
# SGTIN, a 7-20 character serial number (often SN...), or the URL a QR code gives -- none holds
# whitespace. Whether confirmShipment refuses a Transparency item without codes is not documented
# precisely, so the refusal is the ``transparency_required`` option.


def is_transparency_item(item: Mapping[str, Any]) -> bool:
    """Whether an order item (v2026-01-01 ``OrderItem``) is enrolled in Transparency."""
    return TRANSPARENCY_PROGRAM in (item.get("programs") or ())


def _transparency_codes(order: dict[str, Any], lines: list[Any], *, required: bool) -> dict[str, list[str]]:
    """Order item id -> the Transparency codes confirmShipment's ``orderItems`` lines send (items
    that sent none left out). Refuses a code that is empty or holds whitespace, and, when
    ``required``, a line of a Transparency item whose codes do not number its quantity. Runs
    after :func:`_package_items`, which has refused unknown items and bad quantities."""
    items = {it["orderItemId"]: it for it in order.get("orderItems", [])}
    found: dict[str, list[str]] = {}
    for line in lines:
        item_id, quantity = line.get("orderItemId"), line.get("quantity")
        codes = line.get("transparencyCodes")
        if codes is not None and (not isinstance(codes, list) or not all(
                isinstance(c, str) and c and not any(ch.isspace() for ch in c) for c in codes)):
            raise _invalid(f"transparencyCodes for orderItemId {item_id} must be a list of non-empty codes "
                           "without whitespace.")
        sent = len(codes or [])
        if required and is_transparency_item(items[item_id]) and sent != quantity:
            raise _invalid(f"orderItemId {item_id} is enrolled in Transparency: its {quantity} unit(s) "
                           f"confirmed need {quantity} Transparency code(s), {sent} sent.")
        if codes:
            found.setdefault(item_id, []).extend(codes)
    return found


@functools.lru_cache(maxsize=1)
def registered_site_rules() -> tuple[Any, ...]:
    """Every SiteRules and SiteRulesPatch the installed plugins register, as the daemon loads them."""
    from ..plugins import load_plugins

    return tuple(load_plugins().site_rules())


def site_carrier_codes(site_rules: Mapping[str, Any] | None = None, *, sites: SiteTable = BUILTIN,
                       registered: Iterable[Any] | None = None) -> dict[str, frozenset[str]]:
    """Site code -> the carrierCode values Amazon accepts there, from the site rules: the
    ``registered`` ones (default: the installed plugins') merged with a ``site_rules``
    configuration section, exactly as the daemon merges them (sites outside ``sites`` are skipped).
    A site without rules accepts no code but "Other"."""
    from ..rules import SiteRules, SiteRulesPatch, merge_rules

    found = [r for r in (registered_site_rules() if registered is None else registered) if r.site in sites]
    merged = merge_rules([r for r in found if isinstance(r, SiteRules)],
                         [p for p in found if isinstance(p, SiteRulesPatch)], site_rules, sites=sites)
    return {site: frozenset(rules.carrier_codes) for site, rules in merged.items()}


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
_PII_STATUSES = frozenset({"UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"})
_ADDRESS_PII = ("name", "addressLine1", "addressLine2", "addressLine3", "postalCode", "phone",
                "extendedFields")
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


class ApiError(Exception):
    """Raised by a handler to end the request with an SP-API error answer
    (``{"errors": [{"code", "message", "details"?}]}`` with ``status``)."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = _errors(code, message, details)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "InvalidInput", message)


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
class Seller:
    """A seller account the emulator knows (what a handler of :meth:`SpApiEmulator.call` gets)."""

    name: str
    refresh_token: str
    client_id: str
    client_secret: str
    sites: tuple[str, ...]
    marketplace_ids: frozenset[str]


def _site_code(value: str, sites: SiteTable) -> str:
    key = str(value).strip()
    if key in sites:
        return sites[key].code
    try:
        return sites.for_marketplace(key).code
    except ValueError:
        raise ValueError(f"unknown Amazon site or marketplace id {value!r}") from None


def _site_table(raw: Any) -> SiteTable:
    """The ``sites`` option (the daemon's site table: Amazon's plus those its configuration adds)."""
    if not raw:
        return BUILTIN
    return SiteTable(Site(s["code"], s["marketplace_id"], s["region"], s["currency"], s["country"])
                     for s in raw)


def _parse_sellers(raw: Any, sites: SiteTable) -> dict[str, Seller]:
    entries = raw if raw else [DEFAULT_SELLER]
    sellers: dict[str, Seller] = {}
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
        codes = tuple(dict.fromkeys(_site_code(m, sites) for m in entry.get("marketplaces")
                                    or DEFAULT_SELLER["marketplaces"]))
        sellers[entry["name"]] = Seller(entry["name"], entry["refresh_token"], entry["client_id"],
                                        entry["client_secret"], codes,
                                        frozenset(sites[c].marketplace_id for c in codes))
    return sellers


def _project(order: dict[str, Any], included: set[str]) -> dict[str, Any]:
    """The order as Amazon returns it for ``includedData``: items always, sections on request,
    the buyer's personal data only where Amazon shows it (:func:`_withhold_pii`)."""
    out = {k: copy.deepcopy(order[k]) for k in _ORDER_BASE if k in order}
    for data, key in _ORDER_SECTIONS.items():
        if data in included and order.get(key):
            out[key] = copy.deepcopy(order[key])
    _withhold_pii(out, order.get("fulfillment") or {})
    items = []
    for item in order.get("orderItems", []):
        projected = {k: copy.deepcopy(item[k]) for k in _ITEM_BASE if k in item}
        for data, key in _ITEM_SECTIONS.items():
            if data in included and key in item:
                projected[key] = copy.deepcopy(item[key])
        items.append(projected)
    out["orderItems"] = items
    return out


def _withhold_pii(out: dict[str, Any], fulfillment: dict[str, Any]) -> None:
    """Drop what Amazon does not show of the buyer: name, email and the address's personal fields
    unless the order is UNSHIPPED, PARTIALLY_SHIPPED or SHIPPED; the email of an order Amazon
    fulfils (https://developer-docs.amazon.com/sp-api/docs/access-orders-pii)."""
    shown = fulfillment.get("fulfillmentStatus") in _PII_STATUSES
    buyer = out.get("buyer")
    if buyer is not None:
        if not shown:
            buyer.pop("buyerName", None)
        if not shown or fulfillment.get("fulfilledBy") != "MERCHANT":
            buyer.pop("buyerEmail", None)
        if not buyer:
            del out["buyer"]
    address = (out.get("recipient") or {}).get("deliveryAddress")
    if address is not None and not shown:
        for key in _ADDRESS_PII:
            address.pop(key, None)


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


def _with_codes(quantities: dict[str, int], codes: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """Package items ``[{"orderItemId", "quantity", "transparencyCodes"?}]``: the codes only where sent."""
    items = []
    for item_id, quantity in quantities.items():
        item: dict[str, Any] = {"orderItemId": item_id, "quantity": quantity}
        if codes.get(item_id):
            item["transparencyCodes"] = list(codes[item_id])
        items.append(item)
    return items


class SpApiEmulator(Emulator):
    """Amazon SP-API on loopback: LWA, searchOrders, getOrder, confirmShipment, and the host of
    extensions (see the module docstring)."""

    name = "spapi"

    DEFAULT_SELLER = DEFAULT_SELLER
    """The seller served when the ``sellers`` option is not given."""
    ORDER_ID = _ORDER_ID
    """The pattern of an Amazon order id (3-7-7 digits)."""
    TRACKING_FORMATS = TRACKING_FORMATS
    """confirmShipment's carrierCode -> tracking-number pattern (a label an extension sells for a
    carrier should carry a number this accepts)."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        self.sites = _site_table(options.get("sites"))
        self.sellers = _parse_sellers(options.get("sellers"), self.sites)
        codes = options.get("carrier_codes")
        self.carrier_codes: dict[str, frozenset[str]] = (
            {str(site): frozenset(map(str, listed)) for site, listed in codes.items()} if codes is not None
            else site_carrier_codes(options.get("site_rules"), sites=self.sites))
        """Site code -> the carrierCode values confirmShipment accepts (besides "Other")."""
        self.configured_quotas: dict[str, dict[str, float]] = {
            op: {k: float(v) for k, v in quota.items()}
            for op, quota in (options.get("quotas") or {}).items()}
        self.quotas: dict[str, dict[str, float]] = {k: dict(v) for k, v in DEFAULT_QUOTAS.items()}
        for op, quota in self.configured_quotas.items():
            self.quotas.setdefault(op, {}).update(quota)
        self.token_ttl = float(options.get("token_ttl_seconds", 3600))
        self.silent_drop_rate = float(options.get("silent_drop_rate", 0.0))
        self.search_lag = timedelta(seconds=float(options.get("search_lag_seconds", 120)))
        self.unknown_carrier_codes = str(options.get("unknown_carrier_codes", "file_as_other"))
        if self.unknown_carrier_codes not in UNKNOWN_CARRIER_CODES:
            raise ValueError(f"unknown_carrier_codes must be one of {', '.join(UNKNOWN_CARRIER_CODES)}, "
                             f"not {self.unknown_carrier_codes!r}")
        self.validate = bool(options.get("validate", True))
        skus = options.get("transparency_skus") or []
        if not isinstance(skus, (list, tuple)) or not all(isinstance(s, str) for s in skus):
            raise ValueError(f"transparency_skus must be a list of seller SKUs, not {skus!r}")
        self.transparency_skus: frozenset[str] = frozenset(skus)
        """Seller SKUs enrolled in Transparency: their order items carry the program TRANSPARENCY."""
        self.transparency_required = bool(options.get("transparency_required", True))
        """Whether a Transparency item needs one code per unit confirmed (confirmShipment, feeds)."""
        self.orders_per_seller = int(options.get("orders_per_seller", 60))
        self.orders_per_day = int(options.get("orders_per_day", 0))
        if self.orders_per_day < 0:
            raise ValueError(f"orders_per_day must be >= 0, got {self.orders_per_day}")
        targets = options.get("fault_operations")
        self.fault_operations: frozenset[str] | None = None if targets is None else frozenset(targets)
        """Operations the injected faults apply to (None: every request, the framework's default)."""
        seed = options.get("seed")
        self.seed = 7 if seed is None else int(seed)
        self.schema_violations: list[dict[str, Any]] = []
        self.silent_drops = 0
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self.operation_calls: dict[str, dict[str, int]] = {}
        """operationId -> {"total": requests served, "throttled": of them answered 429}."""
        self._drop_rng = random.Random(f"spapi-silent-drop:{self.seed}")
        self._error_rng = random.Random(f"spapi-5xx:{self.seed}")
        self._token_key = hashlib.sha256(f"spapi-emulator-pagination:{self.seed}".encode()).digest()
        super().__init__(options)
        self._seed_missing_sellers()  # a state file from before a seller was configured
        from .feeds import Feeds  # the Feeds API (bulk shipment confirmation), options["feeds"]

        self.feeds = Feeds(self, options.get("feeds"))

    # -- framework hooks ---------------------------------------------------------------------

    def initial_store(self) -> dict[str, Any]:
        store: dict[str, Any] = {"orders": {}, "tokens": {}, "confirmations": {}, "locked_packages": {},
                                 "extensions": {}, "epoch": self.clock.now().isoformat(), "order_days": 0}
        for seller in self.sellers.values():
            self._seed_seller(store, seller)
        return store

    def _seed_seller(self, store: dict[str, Any], seller: Seller) -> None:
        orders = store["orders"]
        for order in seed_orders(seller.name, list(seller.sites), self.orders_per_seller, self.seed,
                                 self.clock.now(), sites=self.sites):
            if order["orderId"] in orders:  # astronomically unlikely; never silently merge
                raise RuntimeError(f"seed order id collision: {order['orderId']}")
            mark_transparency(order, self.transparency_skus)
            orders[order["orderId"]] = {"seller": seller.name, "order": order}

    def _seed_missing_sellers(self) -> None:
        for key in ("orders", "tokens", "confirmations", "locked_packages", "extensions"):
            self.store.setdefault(key, {})
        self.store.setdefault("epoch", self.clock.now().isoformat())  # a state file of an earlier version
        self.store.setdefault("order_days", 0)
        for record in self.store["orders"].values():  # a state file saved under other transparency_skus
            mark_transparency(record["order"], self.transparency_skus)
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
            "operation_calls": copy.deepcopy(self.operation_calls),  # SP-API requests by operationId
            "labels": {},  # none issued here; extensions that sell labels add theirs
            "sellers": {s.name: list(s.sites) for s in self.sellers.values()},
            **self.feeds.sandbox_state(),  # "feeds" and "feed_shipments"
            "order_stream": {"orders_per_day": self.orders_per_day, "days": self.store["order_days"],
                             "since": self.store["epoch"]},
        }

    # -- simulated time: the daily order stream --------------------------------------------------

    def clock_moved(self) -> None:
        self._daily_orders()

    def _daily_orders(self) -> int:
        """Add the orders of every simulated day that has ended since the last call (see the
        module docstring); how many were added. Under :attr:`lock`."""
        if self.orders_per_day <= 0:
            return 0
        epoch = datetime.fromisoformat(self.store["epoch"])
        days = int((self.now() - epoch).total_seconds() // 86400)
        orders, added = self.store["orders"], 0
        for day in range(int(self.store["order_days"]) + 1, days + 1):
            at = epoch + timedelta(days=day)
            for seller in self.sellers.values():
                new = daily_orders(seller.name, list(seller.sites), self.orders_per_day, self.seed, day, at,
                                   sites=self.sites)
                for order in new:
                    if order["orderId"] in orders:  # astronomically unlikely; never merge two orders
                        log.warning("spapi emulator: daily order id %s exists already; skipped",
                                    order["orderId"])
                        continue
                    mark_transparency(order, self.transparency_skus)
                    orders[order["orderId"]] = {"seller": seller.name, "order": order}
                    added += 1
            self.store["order_days"] = day
        return added

    # -- control: a buyer cancels an order -------------------------------------------------------

    _CANCEL_PATH = re.compile(r"/_sandbox/orders/(?P<orderId>[^/]+)/cancel")
    _TRANSPARENCY_PATH = re.compile(r"/_sandbox/orders/(?P<orderId>[^/]+)/items/(?P<orderItemId>[^/]+)"
                                    r"/transparency")

    def _control(self, request: Request) -> Response:
        response: Response | None = None
        if request.method == "POST":
            if match := self._CANCEL_PATH.fullmatch(request.path):
                response = self._buyer_cancel(match["orderId"], request)
            elif match := self._TRANSPARENCY_PATH.fullmatch(request.path):
                response = self._mark_transparency(match["orderId"], match["orderItemId"], request)
        if response is None:
            return super()._control(request)
        if self.state_file and response.status == 200:
            self.persist()
        return response

    def _buyer_cancel(self, order_id: str, request: Request) -> Response:
        body = request.json_or(None)
        reason = str(body.get("reason") or "") if isinstance(body, dict) else ""
        with self.lock:
            self._daily_orders()
            self.feeds.advance_all()  # a feed processed before this cancel shipped the order first
            record = self.store["orders"].get(order_id)
            if record is None:
                return Response.json({"message": f"no order {order_id}"}, 404)
            order = record["order"]
            fulfillment = order.setdefault("fulfillment", {})
            status = fulfillment.get("fulfillmentStatus")
            answer = {"orderId": order_id, "fulfillmentStatus": "CANCELLED"}
            if status == "CANCELLED":
                return Response.json({**answer, "lastUpdatedTime": order["lastUpdatedTime"],
                                      "changed": False})
            if status in ("SHIPPED", "PARTIALLY_SHIPPED"):
                return Response.json({"message": f"order {order_id} is {status}: Amazon does not cancel an "
                                                 "order that has shipped", "fulfillmentStatus": status}, 409)
            for item in order.get("orderItems", []):
                item["cancellation"] = {"cancellationExecution": {
                    "cancelledBy": "BUYER", "cancelReason": reason or "Buyer cancelled the order"}}
                item.setdefault("fulfillment", {})["quantityUnfulfilled"] = 0
            fulfillment["fulfillmentStatus"] = "CANCELLED"
            order["lastUpdatedTime"] = _iso(self.now())
            return Response.json({**answer, "lastUpdatedTime": order["lastUpdatedTime"], "changed": True})

    def _mark_transparency(self, order_id: str, item_id: str, request: Request) -> Response:
        """``POST /_sandbox/orders/<orderId>/items/<orderItemId>/transparency`` (optional body
        ``{"enabled": false}`` to take it off): the item is (no longer) enrolled in Transparency.
        A change moves ``lastUpdatedTime`` to now, so a poller reads the order again."""
        body = request.json_or(None)
        enabled = body.get("enabled", True) if isinstance(body, dict) else True
        if not isinstance(enabled, bool):
            return Response.json({"message": "send {\"enabled\": true} or {\"enabled\": false}"}, 400)
        with self.lock:
            self._daily_orders()
            self.feeds.advance_all()  # a feed processed before this change applied under the old programs
            record = self.store["orders"].get(order_id)
            if record is None:
                return Response.json({"message": f"no order {order_id}"}, 404)
            order = record["order"]
            item = next((it for it in order.get("orderItems", []) if it["orderItemId"] == item_id), None)
            if item is None:
                return Response.json({"message": f"order {order_id} has no item {item_id}"}, 404)
            programs = [p for p in item.get("programs") or () if p != TRANSPARENCY_PROGRAM]
            if enabled:
                programs.append(TRANSPARENCY_PROGRAM)
            changed = programs != (item.get("programs") or [])
            if changed:
                if programs:
                    item["programs"] = programs
                else:
                    item.pop("programs", None)
                order["lastUpdatedTime"] = _iso(self.now())
            return Response.json({"orderId": order_id, "orderItemId": item_id, "programs": programs,
                                  "lastUpdatedTime": order["lastUpdatedTime"], "changed": changed})

    def handle(self, request: Request) -> Response:
        if self.orders_per_day > 0 and not request.path.startswith("/_sandbox/"):
            with self.lock:  # real time passes too: the days it ends bring their orders
                self._daily_orders()
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
        """The SP-API operation (``getOrder``, ``lwaToken``...) a request is routed to, or None:
        the route's name, for extensions' routes too."""
        return self.route_name(request)

    def server_error(self) -> Response:
        if self._error_rng.random() < 0.5:
            return Response.json(_errors("InternalFailure", "We encountered an internal error. "
                                         "Please try again.", ""), 500)
        return Response.json(_errors("ServiceUnavailable", "Service temporarily unavailable. "
                                     "Please try again.", ""), 503)

    def not_found(self, request: Request) -> Response:
        return Response.json(_errors("NotFound", f"Resource {request.path} is not found."), 404)

    # -- the extension API: one request ------------------------------------------------------

    def call(self, operation: str, request: Request,
             handler: Callable[[Request, Seller], tuple[int, Any]]) -> Response:
        """Serve one SP-API request as ``operation`` (its operationId): check the access token
        (403 otherwise), take a token from the (seller, operation) quota (429 ``QuotaExceeded``
        when empty), run ``handler(request, seller) -> (status, body)`` -- an :class:`ApiError`
        it raises becomes the error answer -- and validate the answer against the model (a
        violation is recorded in ``schema_violations``). Runs under :attr:`lock`; ``body`` None
        answers without a body."""
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
                except ApiError as exc:
                    status, body = exc.status, exc.body
                except (KeyError, TypeError, AttributeError, ValueError) as exc:
                    if self.validate:  # the model accepted the request: this is an emulator bug
                        raise
                    status, body = 400, _errors("InvalidInput", f"Malformed request ({type(exc).__name__}).")
            counts = self.operation_calls.setdefault(operation, {"total": 0, "throttled": 0})
            counts["total"] += 1
            counts["throttled"] += status == 429
            return self._respond(operation, status, body)

    def check_request(self, operation: str, *, path_params: dict[str, str] | None = None,
                      query: dict[str, list[str]] | None = None, body: Any = None) -> None:
        """Raise a 400 :class:`ApiError` listing what in the request the operation's model refuses
        (nothing when ``validate`` is off)."""
        if not self.validate:
            return
        problems = schemas.validate_request(operation, path_params=path_params, query=query, body=body)
        if problems:
            raise _invalid("; ".join(problems))

    @staticmethod
    def json_body(request: Request) -> Any:
        """The decoded JSON body; a 400 :class:`ApiError` when it is not JSON."""
        try:
            return request.json()
        except (ValueError, UnicodeDecodeError):
            raise _invalid("The request body is not valid JSON.") from None

    @staticmethod
    def error(status: int, code: str, message: str, details: str | None = None) -> ApiError:
        """An :class:`ApiError` to raise from a handler."""
        return ApiError(status, code, message, details)

    @staticmethod
    def invalid(message: str) -> ApiError:
        """The 400 ``InvalidInput`` :class:`ApiError` with ``message``."""
        return _invalid(message)

    @staticmethod
    def arg(request: Request, name: str) -> str | None:
        """The first non-empty value of query parameter ``name`` (stripped), or None."""
        return _arg(request.query, name)

    def now(self) -> datetime:
        """The simulated clock (``POST /_sandbox/clock`` moves it)."""
        return self.clock.now()

    @staticmethod
    def parse_time(value: str) -> datetime | None:
        """An aware datetime for an ISO 8601 date or date-time (UTC when no offset), or None."""
        return parse_iso8601(value)

    @staticmethod
    def format_time(dt: datetime) -> str:
        """``2026-01-02T03:04:05Z``: how the emulator writes times."""
        return _iso(dt)

    # -- the extension API: set-up -----------------------------------------------------------

    @staticmethod
    def add_models(*paths: str | Path) -> list[str]:
        """Load Amazon's models (Swagger files) of the operations an extension serves, for
        :meth:`check_request`, the answers' validation and :meth:`request_problems`."""
        return [schemas.register_model(path) for path in paths]

    @staticmethod
    def request_problems(operation: str, *, path_params: dict[str, str] | None = None,
                         query: dict[str, list[str]] | None = None, body: Any = None) -> list[str]:
        """What the model of ``operation`` refuses in a request (empty: valid)."""
        return schemas.validate_request(operation, path_params=path_params, query=query, body=body)

    @staticmethod
    def response_problems(operation: str, status: int, body: Any) -> list[str]:
        """What the model of ``operation`` refuses in an answer (empty: valid)."""
        return schemas.validate_response(operation, status, body)

    def add_quotas(self, quotas: Mapping[str, Mapping[str, float]]) -> None:
        """The published quotas ``{operationId: {"rate": r, "burst": b}}`` of an extension's
        operations. What the ``quotas`` option configures for an operation wins."""
        with self.lock:
            for operation, quota in quotas.items():
                self.quotas[operation] = {**{k: float(v) for k, v in quota.items()},
                                          **self.quotas.get(operation, {})}

    def substore(self, name: str, initial: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The extension's own part of the store, created with ``initial()`` the first time:
        plain JSON data, persisted (``state_file``) with the rest and changed under :attr:`lock`."""
        with self.lock:
            stores = self.store.setdefault("extensions", {})
            if name not in stores:
                stores[name] = initial()
            return stores[name]

    # -- the extension API: orders and packages ----------------------------------------------

    def order_for(self, order_id: str, seller: Seller) -> dict[str, Any]:
        """The live order ``order_id`` of ``seller`` (change it only through the methods below);
        a 404 :class:`ApiError` when it does not exist or belongs to another seller. A feed whose
        processing time has come is applied first: whatever reads or changes the order (getOrder,
        confirmShipment, a plugin's API) sees what the feed did, as on Amazon, which processes a
        feed whoever looks."""
        self.feeds.advance_all()
        record = self.store["orders"].get(order_id)
        if record is None or record["seller"] != seller.name:  # another seller's order: not yours
            raise ApiError(404, "NotFound", f"Order {order_id} was not found.")
        return record["order"]

    def filed_carrier(self, site: str | None, carrier: str) -> str | None:
        """The carrier a confirmation under ``carrier`` is filed as on ``site`` (an unlisted code:
        "Other", by ``unknown_carrier_codes``), or None when it is refused."""
        if not site:
            return None
        if carrier == OTHER_CARRIER_CODE or carrier in self.carrier_codes.get(site, ()):
            return carrier
        return OTHER_CARRIER_CODE if carrier and self.unknown_carrier_codes == "file_as_other" else None

    def site_of(self, order: Mapping[str, Any]) -> str:
        """The site code (``"US"``) of an order's marketplace; ``""`` when unknown."""
        try:
            return self.sites.for_marketplace(order["salesChannel"].get("marketplaceId")).code
        except ValueError:
            return ""

    @staticmethod
    def package_items(order: dict[str, Any], lines: Iterable[tuple[Any, Any]], *, field: str,
                      existing: dict[str, Any] | None = None, empty: str) -> dict[str, int]:
        """Order item id -> quantity for a new (or edited ``existing``) package of ``order``.

        ``lines`` are (order item id, quantity) as the client sent them (``field`` names the id in
        messages). A 400 :class:`ApiError` for unknown items, quantities below one, more units
        than are still to ship, and no line at all (``empty`` is that message).
        """
        return _package_items(order, list(lines), field=field, existing=existing, empty=empty)

    def put_package(self, order: dict[str, Any], package: dict[str, Any],
                    existing: dict[str, Any] | None = None, *, now: str | None = None) -> None:
        """Add ``package`` (an order ``Package``) to the order, or replace ``existing``, then
        recount the items' quantities and the order's status (what confirmShipment does)."""
        packages: list[dict[str, Any]] = order.get("packages", [])
        if existing is not None:
            packages[packages.index(existing)] = package
        else:
            packages.append(package)
        order["packages"] = packages
        self._recount(order)
        order["lastUpdatedTime"] = now or _iso(self.now())

    def drop_package(self, order: dict[str, Any], package_reference_id: str, *,
                     now: str | None = None) -> None:
        """Remove a package from the order (and its lock), then recount."""
        order["packages"] = [p for p in order.get("packages", [])
                             if p.get("packageReferenceId") != package_reference_id]
        if not order["packages"]:
            del order["packages"]
        locks = self.store["locked_packages"].get(order["orderId"], {})
        locks.pop(package_reference_id, None)
        if not locks:
            self.store["locked_packages"].pop(order["orderId"], None)
        self._recount(order)
        order["lastUpdatedTime"] = now or _iso(self.now())

    def lock_package(self, order_id: str, package_reference_id: str, reason: str) -> None:
        """confirmShipment may not edit this package; its refusal says the package ``reason``
        (e.g. "was created by ..."). :meth:`drop_package` lifts the lock."""
        self.store["locked_packages"].setdefault(order_id, {})[package_reference_id] = reason

    def package_lock(self, order_id: str, package_reference_id: str) -> str | None:
        """Why confirmShipment may not edit the package, or None."""
        return self.store["locked_packages"].get(order_id, {}).get(package_reference_id)

    # -- plumbing ------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> tuple[Seller | None, tuple[int, dict] | None]:
        token = request.headers.get("x-amz-access-token", "").strip()
        record = self.store["tokens"].get(token) if token else None
        if record is None or record["seller"] not in self.sellers:
            return None, _unauthorized()
        if self.now().timestamp() >= record["expires_at"]:
            return None, _unauthorized("The access token you provided has expired.")
        return self.sellers[record["seller"]], None

    def _quota(self, operation: str) -> dict[str, float]:
        quota = self.quotas.get(operation, {})
        if "rate" not in quota or "burst" not in quota:
            raise KeyError(f"no quota (rate and burst) for SP-API operation {operation!r}; an extension "
                           "declares its operations' quotas with add_quotas")
        return quota

    def _take(self, seller: str, operation: str) -> bool:
        quota = self._quota(operation)
        rate, burst = float(quota["rate"]), float(quota["burst"])
        now = self.now().timestamp()
        tokens, last = self._buckets.get((seller, operation), (burst, now))
        tokens = min(burst, tokens + max(0.0, now - last) * rate)
        if tokens < 1.0:
            self._buckets[(seller, operation)] = (tokens, now)
            return False
        self._buckets[(seller, operation)] = (tokens - 1.0, now)
        return True

    def _respond(self, operation: str, status: int, body: Any) -> Response:
        headers: dict[str, str] = {}
        if 200 <= status < 300 or status in (400, 404):
            headers["x-amzn-RateLimit-Limit"] = str(float(self._quota(operation)["rate"]))
        if self.validate:
            problems = schemas.validate_response(operation, status, body)
            if problems:
                self.schema_violations.append({"operation": operation, "status": status,
                                               "problems": problems})
                log.error("spapi emulator answered %s %s that violates the model: %s",
                          operation, status, "; ".join(problems))
        if body is None:
            return Response(status, b"", headers)
        return Response.json(body, status, headers)

    # -- LWA -----------------------------------------------------------------------------------

    @route("POST", r"/auth/o2/token", name="lwaToken")
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
            if not any(same_secret(s.client_id, client_id) and same_secret(s.client_secret, client_secret)
                       for s in self.sellers.values()):
                return oauth_error(401, "invalid_client", "Client authentication failed")
            if grant_type != "refresh_token":
                return oauth_error(400, "unsupported_grant_type", "The authorization grant type is not "
                                   "supported by the authorization server")
            if not refresh_token:
                return oauth_error(400, "invalid_request",
                                   "The request is missing a required parameter : refresh_token")
            seller = next((s for s in self.sellers.values() if same_secret(s.refresh_token, refresh_token)),
                          None)
            if seller is None or seller.client_id != client_id:
                return oauth_error(400, "invalid_grant",
                                   "The request has an invalid grant parameter : refresh_token")
            now = self.now().timestamp()
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

    @route("GET", r"/orders/2026-01-01/orders", name="searchOrders")
    def search_orders(self, request: Request) -> Response:
        return self.call("searchOrders", request, self._search_orders)

    @route("GET", r"/orders/2026-01-01/orders/(?P<orderId>[^/]+)", name="getOrder")
    def get_order(self, request: Request) -> Response:
        return self.call("getOrder", request, self._get_order)

    def _search_orders(self, request: Request, seller: Seller) -> tuple[int, Any]:
        self.feeds.advance_all()  # a feed processed meanwhile applies first
        query = request.query
        self.check_request("searchOrders", query=query)
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
        now = self.now()
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
            before = now - self.search_lag

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
            if not same_secret(base64.urlsafe_b64encode(expected).decode().rstrip("="), mac):
                raise ValueError("bad signature")
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            if not isinstance(data, dict) or not _TOKEN_KEYS <= set(data):
                raise ValueError("bad payload")
            return data
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _invalid("paginationToken is invalid.") from None

    def _get_order(self, request: Request, seller: Seller) -> tuple[int, Any]:
        order_id = request.params["orderId"]
        self.check_request("getOrder", path_params={"orderId": order_id}, query=request.query)
        if not _ORDER_ID.match(order_id):
            raise _invalid(f"orderId {order_id} is not a valid order id (3-7-7 format expected).")
        order = self.order_for(order_id, seller)
        return 200, {"order": _project(order, set(_values(request.query, "includedData")))}

    # -- Orders v0 confirmShipment -----------------------------------------------------------------

    @route("POST", r"/orders/v0/orders/(?P<orderId>[^/]+)/shipmentConfirmation",
           name="confirmShipment")
    def confirm_shipment(self, request: Request) -> Response:
        return self.call("confirmShipment", request, self._confirm_shipment)

    def _confirm_shipment(self, request: Request, seller: Seller) -> tuple[int, Any]:
        order_id = request.params["orderId"]
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise _invalid("The request body is not valid JSON.") from None
        detail = body.get("packageDetail") if isinstance(body, dict) else None
        ship_date_raw = detail.get("shipDate") if isinstance(detail, dict) else None
        if isinstance(ship_date_raw, str) and parse_iso8601(ship_date_raw) is None:
            # the model's own sandbox pair: a non-ISO shipDate -> this exact answer
            raise ApiError(400, "Invalid Input", "Invalid Input")
        self.check_request("confirmShipment", path_params={"orderId": order_id}, query=request.query,
                           body=body)
        if not isinstance(body, dict) or not isinstance(detail, dict):
            raise _invalid("The request body must be a ConfirmShipmentRequest object.")
        if not _ORDER_ID.match(order_id):
            raise _invalid(f"orderId {order_id} is not a valid order id (3-7-7 format expected).")
        order = self.order_for(order_id, seller)
        marketplace = order["salesChannel"].get("marketplaceId")
        if body.get("marketplaceId") != marketplace:
            raise _invalid(f"marketplaceId {body.get('marketplaceId')} does not match the marketplace "
                           f"of order {order_id}.")
        fulfillment = order.get("fulfillment", {})
        if fulfillment.get("fulfilledBy") == "AMAZON":
            raise _invalid(f"Order {order_id} is fulfilled by Amazon and cannot be confirmed by the seller.")
        if "FBM_SHIP_PLUS" in (order.get("programs") or ()):  # Amazon confirms Ship+ orders itself
            raise _invalid(f"Order {order_id} is an FBM Ship+ order; confirmShipment is not supported "
                           "for it.")
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
        site = self.site_of(order)
        carrier = str(detail.get("carrierCode", ""))
        filed_as = self.filed_carrier(site, carrier)
        if filed_as is None:
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
            raise ApiError(400, "Invalid Input", "Invalid Input")

        packages: list[dict[str, Any]] = order.get("packages", [])
        existing = next((p for p in packages if p.get("packageReferenceId") == ref), None)
        if existing is None and status == "SHIPPED":
            raise ApiError(400, "PackageToUpdateNotFound",
                           f"order already fulfilled: order {order_id} has no package {ref} to update.")
        lock = self.package_lock(order_id, ref) if existing is not None else None
        if lock:
            raise _invalid(f"Package {ref} of order {order_id} {lock}; it is confirmed already and cannot "
                           "be edited.")
        wanted = _package_items(order, [(line.get("orderItemId"), line.get("quantity", 0))
                                        for line in detail.get("orderItems", [])],
                                field="orderItemId", existing=existing,
                                empty="packageDetail.orderItems must list at least one order item.")
        codes = _transparency_codes(order, detail.get("orderItems", []), required=self.transparency_required)

        if self.silent_drop_rate and self._drop_rng.random() < self.silent_drop_rate:
            self.silent_drops += 1
            log.info("spapi emulator silently dropped a confirmShipment for package %s", ref)
            return 204, None

        now = _iso(self.now())
        package: dict[str, Any] = {
            "packageReferenceId": ref,
            "createdTime": existing.get("createdTime", now) if existing else now,
            "packageStatus": {"status": "SHIPPED"},
            "carrier": carrier_name if carrier == "Other" else filed_as,
            "shipTime": _iso(ship_date),
            "trackingNumber": tracking,
            "packageItems": _with_codes(wanted, codes),
        }
        if detail.get("shippingMethod"):
            package["shippingService"] = str(detail["shippingMethod"])
        self.put_package(order, package, existing, now=now)

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
            "orderItems": _with_codes(wanted, codes),
            "firstAcceptedAt": previous.get("firstAcceptedAt", now),
            "lastAcceptedAt": now,
        }
        return 204, None

    # -- Feeds 2021-06-30 (the logic is in feeds.py) ---------------------------------------------

    @route("POST", r"/feeds/2021-06-30/documents", name="createFeedDocument")
    def create_feed_document(self, request: Request) -> Response:
        return self.feeds.create_feed_document(request)

    @route("GET", r"/feeds/2021-06-30/documents/(?P<feedDocumentId>[^/]+)", name="getFeedDocument")
    def get_feed_document(self, request: Request) -> Response:
        return self.feeds.get_feed_document(request)

    @route("POST", r"/feeds/2021-06-30/feeds", name="createFeed")
    def create_feed(self, request: Request) -> Response:
        return self.feeds.create_feed(request)

    @route("GET", r"/feeds/2021-06-30/feeds", name="getFeeds")
    def get_feeds(self, request: Request) -> Response:
        return self.feeds.get_feeds(request)

    @route("GET", r"/feeds/2021-06-30/feeds/(?P<feedId>[^/]+)", name="getFeed")
    def get_feed(self, request: Request) -> Response:
        return self.feeds.get_feed(request)

    @route("DELETE", r"/feeds/2021-06-30/feeds/(?P<feedId>[^/]+)", name="cancelFeed")
    def cancel_feed(self, request: Request) -> Response:
        return self.feeds.cancel_feed(request)

    @route("PUT", r"/feeds-storage/(?P<docId>[^/]+)", name="uploadFeedDocument")
    def upload_feed_document(self, request: Request) -> Response:  # a pre-signed URL: no access token
        return self.feeds.upload(request)

    @route("GET", r"/feeds-storage/(?P<docId>[^/]+)", name="downloadFeedDocument")
    def download_feed_document(self, request: Request) -> Response:
        return self.feeds.download(request)

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
