"""Orders an ERP submits: a shipment to buy here (provider mode) or a label it bought elsewhere to
confirm here (confirm-only). No web framework: the HTTP API validates the shape, this module the
meaning (accounts, owners, SKUs, carriers, tracking formats), then records and drives the order.

Who confirms an Amazon order is decided per account (``accounts[].orders_owner``): an account the
connector owns is polled and confirmed by the daemon, so an ERP may not submit its orders; an
account the ERP owns is never polled, and its orders are confirmed only when the ERP asks
(``confirm: true``, or confirm-only). So the two never both confirm one order.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ..ledger import OrderRecord, OrderState, Package
from ..ledger.submissions import ExternalLabel, Submission, SubmissionConflict, same_request
from ..model import Address, FulfillmentStatus, Money, Order, OrderItem, parse_iso, utcnow
from .loop import drive
from .runtime import Runtime

AMAZON_ORDER_ID = re.compile(r"[0-9]{3}-[0-9]{7}-[0-9]{7}")  # not \d: it takes any script's digits
_BEFORE_LABEL = frozenset({OrderState.NEW, OrderState.PLANNED, OrderState.LABEL_CLAIMED})


class SubmitError(Exception):
    """The request cannot be accepted: ``status`` 422 (a field is wrong) or 409 (a conflict)."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def digest(body: dict[str, Any]) -> str:
    """A fingerprint of a request, to tell a repeat from a key reused for another request."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _account(rt: Runtime, body: dict[str, Any], channel: str) -> str:
    name, site = body.get("account"), body["site"]
    if name:
        account = rt.config.account(name)
        if account is None:
            raise SubmitError(422, "account", f"no account {name!r} in the configuration (known: "
                              f"{', '.join(a.name for a in rt.config.accounts)})")
    elif channel == "amazon":
        raise SubmitError(422, "account", "an Amazon order needs the seller account it belongs to")
    else:
        account = next((a for a in rt.config.accounts if site in a.marketplaces), rt.config.accounts[0])
    if channel == "amazon":
        if site not in account.marketplaces:
            raise SubmitError(422, "site", f"account {account.name} sells on "
                              f"{', '.join(account.marketplaces)}, not {site}")
        if account.orders_owner != "erp":
            raise SubmitError(409, "account", f"account {account.name}'s Amazon orders are shipped and "
                              "confirmed by the connector itself; set accounts[].orders_owner: erp to submit "
                              "them from the ERP")
    return account.name


def _site(rt: Runtime, site: str) -> str:
    if site not in rt.sites or site not in rt.site_rules:
        raise SubmitError(422, "site", f"unknown site {site!r} (known: {', '.join(sorted(rt.site_rules))})")
    return site


def _order_id(channel: str, order_id: str) -> str:
    if channel == "amazon":
        if not AMAZON_ORDER_ID.fullmatch(order_id):
            raise SubmitError(422, "order_id", f"{order_id!r} is not an Amazon order id "
                              "(123-1234567-1234567)")
        return order_id
    return f"{channel}-{order_id}"


def _ship_by(text: str | None, now: datetime) -> datetime | None:
    """The request's ship-by (ISO 8601 text; without a zone, UTC), within a year of now."""
    if not text:
        return None
    at = parse_iso(text)
    if abs(at - now) > timedelta(days=366):
        raise SubmitError(422, "ship_by", f"{text} is not within a year of now")
    return at


def _money(data: dict[str, Any] | None) -> Money | None:
    return Money(Decimal(str(data["amount"])), data["currency"].upper()) if data else None


def shipment_order(rt: Runtime, body: dict[str, Any]) -> Order:
    """The ledger order for a provider-mode shipment (SubmitError naming the field)."""
    channel = body["channel"]
    site = _site(rt, body["site"])
    account = _account(rt, body, channel)
    if body.get("confirm") and channel != "amazon":
        raise SubmitError(422, "confirm", f"only an Amazon order can be confirmed to Amazon, not a "
                          f"{channel} order")
    confirms = bool(body.get("confirm")) and channel == "amazon"
    items: list[OrderItem] = []
    for i, item in enumerate(body["items"]):
        if rt.catalog.get(item["sku"]) is None:
            raise SubmitError(422, f"items.{i}.sku", f"SKU {item['sku']} is not in the item master; add it "
                              "(PUT /v1/items/{sku}) and send the shipment again")
        if confirms and not (item.get("order_item_id") or "").strip():
            # Amazon's confirmation names each item by its id: without one, the label would be bought
            # and the confirmation then refused.
            raise SubmitError(422, f"items.{i}.order_item_id", f"item {i} (SKU {item['sku']}) has no "
                              "order_item_id: an Amazon order confirmed here needs Amazon's order item id "
                              "for every item")
        item_id = item.get("order_item_id") or str(i + 1)
        _own_item_id(items, i, item_id, "(an item sent without one is numbered by its place, from 1)")
        items.append(OrderItem(order_item_id=item_id, sku=item["sku"],
                               quantity=item["quantity"], title=item.get("title") or "",
                               unit_price=_money(item.get("unit_price"))))
    now = utcnow()
    return Order(order_id=_order_id(channel, body["order_id"]), account=account,
                 marketplace_id=rt.sites[site].marketplace_id, site=site, status=FulfillmentStatus.UNSHIPPED,
                 last_updated=now, created=now, items=tuple(items), total=_money(body.get("total")),
                 ship_to=Address.from_dict(body["ship_to"]), ship_by=_ship_by(body.get("ship_by"), now),
                 origin="erp", channel=channel, confirm=bool(body.get("confirm")))


def confirmation_order(rt: Runtime, body: dict[str, Any]) -> tuple[Order, ExternalLabel]:
    """The ledger order and label for confirm-only (SubmitError naming the field)."""
    site = _site(rt, body["site"])
    account = _account(rt, body, "amazon")
    code = body["carrier"]
    spec = rt.carrier_specs.get(code) if code in rt.carriers else None
    if spec is None:
        raise SubmitError(422, "carrier", f"unknown carrier {code!r} (configured: "
                          f"{', '.join(sorted(rt.carriers))})")
    if spec.confirms_shipment:
        raise SubmitError(422, "carrier", f"{spec.label} labels confirm themselves on Amazon; "
                          "nothing to confirm")
    rules = rt.site_rules.get(site)
    carrier_code = rt.amazon_carrier_code(code, site)
    if carrier_code is None:
        raise SubmitError(422, "carrier", f"Amazon does not accept {spec.label} on {site}")
    if rules is not None and carrier_code not in rules.carrier_codes:  # as for the daemon's own labels
        raise SubmitError(422, "carrier", f"carrier code {carrier_code!r} is not in Amazon's list for {site} "
                          "(tracking from a carrier Amazon does not integrate counts as invalid); add it "
                          f"under site_rules.{site}.carrier_codes if Seller Central lists it")
    number = body["tracking_number"].strip()
    carrier = rt.carriers[code]
    if not spec.accepts_tracking_number(number, carrier):
        raise SubmitError(422, "tracking_number", f"{number!r} is not a {spec.label} tracking number "
                          f"(Amazon checks the format: {spec.pattern_for(carrier)})")
    service = body.get("service") or (spec.services[0].code if spec.services else code)
    if body.get("service") and spec.service(service) is None:
        raise SubmitError(422, "service", f"{spec.label} has no service {service!r} (known: "
                          f"{', '.join(s.code for s in spec.services)})")
    now = utcnow()
    items: list[OrderItem] = []
    for i, item in enumerate(body["items"]):
        _own_item_id(items, i, item["order_item_id"])
        items.append(OrderItem(order_item_id=item["order_item_id"], sku=item.get("sku") or "",
                               quantity=item["quantity"]))
    order = Order(order_id=_order_id("amazon", body["order_id"]), account=account,
                  marketplace_id=rt.sites[site].marketplace_id, site=site, status=FulfillmentStatus.UNSHIPPED,
                  last_updated=now, created=now, items=tuple(items), origin="erp", channel="amazon",
                  confirm=True)
    label = ExternalLabel(carrier=code, service=service, tracking_number=number,
                          items=[{"order_item_id": i.order_item_id, "quantity": i.quantity} for i in items])
    return order, label


def _own_item_id(items: list[OrderItem], i: int, item_id: str, numbering: str = "") -> None:
    """SubmitError unless item ``i``'s id is none of ``items``' (those before it). The package
    names its items by this id: a parcel built from it would carry one item's quantity for both
    (its weight and customs lines wrong on the label bought), a confirmation name one line twice."""
    twin = next((n for n, known in enumerate(items) if known.order_item_id == item_id), None)
    if twin is not None:
        raise SubmitError(422, f"items.{i}.order_item_id", f"item {i} has the order_item_id {item_id!r} of "
                          f"item {twin}{' ' + numbering if numbering else ''}; each item needs its own")


def record_submission(rt: Runtime, key: str, kind: str, body: dict[str, Any],
                      build: Any) -> Submission:
    """Record (or find again) the submission under ``key``; ``build`` makes its order only when new."""
    fingerprint = digest(body)
    known = rt.ledger.submission(key)
    if known is not None:
        if not same_request(known.request_digest, fingerprint) or known.kind != kind:
            raise SubmitError(409, "idempotency_key", f"idempotency key {key!r} was used for another request "
                              f"(order {known.order_id}); a key names one request forever")
        return known
    built = build(rt, body)
    order, label = built if isinstance(built, tuple) else (built, None)
    try:
        return rt.ledger.submit(key, kind, fingerprint, order, label)
    except SubmissionConflict as exc:
        raise SubmitError(409, exc.field, str(exc)) from None


@dataclass
class Progress:
    record: OrderRecord
    package: Package | None

    @property
    def working(self) -> bool:
        """Still on its way to a label (a carrier was slow: the daemon carries on)."""
        return self.record.state in _BEFORE_LABEL


def advance(rt: Runtime, order_id: str, wait_seconds: float) -> Progress:
    """Drive the order to its label (never to Amazon: the daemon's loop confirms at its own pace),
    for at most ``wait_seconds``, and no longer than a stop request (the step in flight finishes,
    the daemon carries on after its restart); return where it is."""
    deadline = time.monotonic() + wait_seconds

    def done(record: OrderRecord | None) -> bool:
        return (rt.stopping.is_set() or record is None or record.state not in _BEFORE_LABEL
                or time.monotonic() > deadline)

    def enough() -> bool:
        return rt.stopping.is_set() or done(rt.ledger.get_order(order_id, with_pii=False))

    while not enough():
        drive(rt, order_id, enough, wait=max(0.0, deadline - time.monotonic()))
        record = rt.ledger.get_order(order_id, with_pii=False)
        if done(record):
            break
        if record.next_attempt_at is not None:  # deferred: wait for the retry, within the budget
            pause = (record.next_attempt_at - utcnow()).total_seconds()
            rt.stopping.wait(max(0.05, min(pause, deadline - time.monotonic())))
    return progress(rt, order_id)


def progress(rt: Runtime, order_id: str) -> Progress:
    """Where the order is (read without its address: no answer carries it)."""
    record = rt.ledger.get_order(order_id, with_pii=False)
    assert record is not None
    packages = rt.ledger.packages(order_id)
    return Progress(record, packages[-1] if packages else None)
