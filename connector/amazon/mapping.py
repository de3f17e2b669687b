"""Pure mapping between SP-API payloads and the connector's model. No I/O, no logging.

* :func:`order_from_api` - an Orders API v2026-01-01 ``Order`` object -> :class:`connector.model.Order`.
  Lenient where Amazon is optional or adds enum values; a missing field the connector cannot do
  without raises ``ValueError("order <id>: <field path> is missing")`` so the order can be
  HELD with that reason.
* :func:`package_from_api` - the ``packages[]`` entry of an order with a given packageReferenceId.
* :func:`confirm_shipment_body` - the v0 ``ConfirmShipmentRequest`` body
  (docs/amazon-sp-api.md#confirmshipment-v0).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from ..model import Address, FulfillmentStatus, Money, Order, OrderItem, iso
from .sites import BUILTIN, SiteTable

# v2026-01-01 FulfillmentStatus -> ours. Values not listed (UNFULFILLABLE, future ones) -> OTHER.
_STATUS = {
    "UNSHIPPED": FulfillmentStatus.UNSHIPPED,
    "PARTIALLY_SHIPPED": FulfillmentStatus.PARTIALLY_SHIPPED,
    "SHIPPED": FulfillmentStatus.SHIPPED,
    "CANCELLED": FulfillmentStatus.CANCELLED,
    "CANCELED": FulfillmentStatus.CANCELLED,
    "PENDING": FulfillmentStatus.PENDING,
    "PENDING_AVAILABILITY": FulfillmentStatus.PENDING,
}

# CustomerAddress field -> Address field
_ADDRESS_FIELDS = (
    ("name", "name"), ("addressLine1", "line1"), ("addressLine2", "line2"), ("addressLine3", "line3"),
    ("city", "city"), ("stateOrRegion", "state"), ("postalCode", "postal_code"),
    ("countryCode", "country_code"), ("phone", "phone"), ("companyName", "company"),
    ("districtOrCounty", "district"),
)


_API_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?"
                       r"(?:([Zz])|([+-]\d{2}):?(\d{2})?)?")


class TimeOutOfRange(ValueError):
    """A well-formed date-time no order can have (a placeholder such as 0001-01-01 or 9999-12-31):
    the daemon's date arithmetic (retention, ship-by windows) would overflow on it."""


_EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
MAX_QUANTITY = 100_000  # units of one order line: more is garbled, not an order to ship
MAX_AMOUNT = Decimal(10) ** 12  # no order or item is worth this much: a larger amount is garbled


def parse_api_time(value: str) -> datetime:
    """An ISO 8601 date-time as Amazon writes it, as an aware datetime (UTC when no offset).

    Accepts any number of fraction digits and ``+0000``-style offsets, which
    ``datetime.fromisoformat`` of Python 3.10 refuses. ValueError if it is not a date-time.
    """
    match = _API_TIME.fullmatch(value.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 date-time: {value[:40]!r}")
    day, clock, fraction, zulu, offset_h, offset_m = match.groups()
    if len(clock) == 5:
        clock += ":00"
    text = f"{day}T{clock}"
    if fraction:
        text += "." + fraction[:6].ljust(6, "0")
    if offset_h and not zulu:
        text += f"{offset_h}:{offset_m or '00'}"
    parsed = datetime.fromisoformat(text)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    try:  # 9999-12-31T23:59:59-05:00 parses, and overflows when the ledger stores it in UTC
        in_utc = parsed.astimezone(timezone.utc)
    except OverflowError:
        in_utc = None
    if in_utc is None or not _EARLIEST <= in_utc < _LATEST:
        raise TimeOutOfRange(f"is out of range (years {_EARLIEST.year}-{_LATEST.year - 1}): {value[:40]!r}")
    return parsed



class _Fields:
    """Reads fields of one order, raising ValueErrors that name the order and the field path."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id

    def error(self, path: str, problem: str = "is missing") -> ValueError:
        return ValueError(f"order {self.order_id}: {path} {problem}")

    def text(self, obj: Any, key: str, path: str) -> str:
        value = obj.get(key) if isinstance(obj, Mapping) else None
        if value is None or (isinstance(value, str) and not value.strip()):
            raise self.error(path)
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise self.error(path, f"must be a string, got {type(value).__name__}")
        return str(value).strip()

    def integer(self, obj: Any, key: str, path: str, *, required: bool) -> int | None:
        value = obj.get(key) if isinstance(obj, Mapping) else None
        if value is None:
            if required:
                raise self.error(path)
            return None
        if isinstance(value, bool):
            raise self.error(path, f"must be an integer, got {value!r}")
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and value.strip().isdecimal():  # (isdigit takes "²", int() does not)
            number = int(value)
        else:
            raise self.error(path, f"must be an integer, got {value!r}")
        if number < 0:
            raise self.error(path, f"must not be negative, got {number}")
        if number > MAX_QUANTITY:
            raise self.error(path, f"is out of range (at most {MAX_QUANTITY:,}), got {str(value)[:40]}")
        return number

    def time(self, obj: Any, key: str, path: str, *, required: bool) -> datetime | None:
        value = obj.get(key) if isinstance(obj, Mapping) else None
        if value is None or value == "":
            if required:
                raise self.error(path)
            return None
        if not isinstance(value, str):
            raise self.error(path, f"must be an ISO 8601 time, got {type(value).__name__}")
        try:
            return parse_api_time(value)
        except TimeOutOfRange as exc:
            raise self.error(path, str(exc)) from None
        except ValueError:
            raise self.error(path, f"is not an ISO 8601 time: {value[:40]!r}") from None

    def money(self, obj: Any, path: str) -> Money | None:
        """A Money object; None when absent or incomplete (lenient), ValueError when garbled."""
        if not isinstance(obj, Mapping):
            return None
        amount, currency = obj.get("amount"), obj.get("currencyCode")
        if amount is None or amount == "" or not currency:
            return None
        if isinstance(amount, float) or isinstance(amount, bool):
            raise self.error(f"{path}.amount", f"must be a decimal string, got {amount!r}")
        try:
            value = Decimal(str(amount).strip())
        except InvalidOperation:
            raise self.error(f"{path}.amount", f"is not a decimal number: {str(amount)[:40]!r}") from None
        if not value.is_finite():
            raise self.error(f"{path}.amount", f"is not a decimal number: {str(amount)[:40]!r}")
        if value < 0 or value >= MAX_AMOUNT:  # a price or a total: never negative, never this large
            raise self.error(f"{path}.amount", f"is out of range (0 to {MAX_AMOUNT:,}): {str(amount)[:40]!r}")
        try:
            return Money(value, str(currency).strip().upper())
        except ValueError:
            raise self.error(f"{path}.currencyCode",
                             f"is not an ISO 4217 code: {str(currency)[:10]!r}") from None


def _dig(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]... or None as soon as a level is missing or not an object."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _plain(value: Any) -> str:
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value).strip()


def _address(delivery: Any, buyer: Any) -> Address | None:
    if not isinstance(delivery, Mapping):
        return None
    values = {ours: _plain(delivery.get(theirs)) for theirs, ours in _ADDRESS_FIELDS}
    if not any(values.values()):
        return None
    email = _plain(buyer.get("buyerEmail")) if isinstance(buyer, Mapping) else ""
    return Address(email=email, **values)


def _item(raw: Any, index: int, f: _Fields) -> OrderItem:
    path = f"orderItems[{index}]"
    if not isinstance(raw, Mapping):
        raise f.error(path, "is not an object")
    item_id = f.text(raw, "orderItemId", f"{path}.orderItemId")
    ordered = f.integer(raw, "quantityOrdered", f"{path}.quantityOrdered", required=True)
    assert ordered is not None
    product = raw.get("product")
    sku = f.text(product, "sellerSku", f"{path}.product.sellerSku")
    fulfillment = raw.get("fulfillment")
    fulfilled = f.integer(fulfillment, "quantityFulfilled", f"{path}.fulfillment.quantityFulfilled",
                          required=False)
    unfulfilled = f.integer(fulfillment, "quantityUnfulfilled", f"{path}.fulfillment.quantityUnfulfilled",
                            required=False)
    if unfulfilled is not None and unfulfilled > ordered:  # a label for more than was bought
        raise f.error(f"{path}.fulfillment.quantityUnfulfilled",
                      f"is {unfulfilled}, more than quantityOrdered ({ordered})")
    if fulfilled is not None and fulfilled > ordered:
        raise f.error(f"{path}.fulfillment.quantityFulfilled",
                      f"is {fulfilled}, more than quantityOrdered ({ordered})")
    to_ship = unfulfilled if unfulfilled is not None else max(0, ordered - (fulfilled or 0))
    if fulfilled is not None:
        shipped = fulfilled
    elif unfulfilled is not None:
        shipped = max(0, ordered - unfulfilled)
    else:
        shipped = 0
    return OrderItem(
        order_item_id=item_id,
        sku=sku,
        quantity=to_ship,
        title=_plain(_dig(product, "title")),
        asin=_plain(_dig(product, "asin")),
        unit_price=f.money(_dig(product, "price", "unitPrice"), f"{path}.product.price.unitPrice"),
        ioss_number=_plain(_dig(fulfillment, "shipping", "internationalShipping", "iossNumber")),
        quantity_shipped=shipped,
        programs=_programs(raw.get("programs")),
    )


def _programs(raw: Any) -> tuple[str, ...]:
    """An order's or an item's ``programs`` (a list of names; anything else: none)."""
    return tuple(_plain(p) for p in raw if _plain(p)) if isinstance(raw, list) else ()


def _buyer_requested_cancel(items: Sequence[Any]) -> bool:
    for raw in items:
        requester = _dig(raw, "cancellation", "cancellationRequest", "requester")
        if isinstance(requester, str) and requester.strip().upper() == "BUYER":
            return True
    return False


def order_from_api(raw: dict[str, Any], *, account: str, sites: SiteTable = BUILTIN) -> Order:
    """Map one Orders API v2026-01-01 ``Order`` to :class:`~connector.model.Order`.

    Needed (ValueError when missing or garbled): ``orderId``, ``lastUpdatedTime``,
    ``salesChannel.marketplaceId`` (a known marketplace), a non-empty ``orderItems`` and per item
    ``orderItemId``, ``quantityOrdered`` and ``product.sellerSku``. Everything else is optional:
    no ``fulfillment`` -> status OTHER and the full ordered quantity to ship; no ``recipient`` ->
    ``ship_to`` None; unknown status values -> OTHER.
    """
    if not isinstance(raw, Mapping):
        raise ValueError(f"order <unknown>: expected an order object, got {type(raw).__name__}")
    order_id = raw.get("orderId")
    f = _Fields(str(order_id).strip() if isinstance(order_id, (str, int)) and str(order_id).strip()
                else "<unknown>")
    order_id = f.text(raw, "orderId", "orderId")
    if "/" in order_id or "\\" in order_id or order_id.startswith("."):
        # the label is stored as <labels_dir>/<order id>-<package>.pdf: it must stay in that folder
        raise f.error("orderId", f"{order_id!r} is not an order id (a path separator or a dot name)")

    marketplace = f.text(raw.get("salesChannel"), "marketplaceId", "salesChannel.marketplaceId")
    try:
        site = sites.for_marketplace(marketplace).code
    except ValueError:
        raise f.error("salesChannel.marketplaceId", f"{marketplace!r} is not a known marketplace") from None

    raw_items = raw.get("orderItems")
    if raw_items is None:
        raise f.error("orderItems")
    if not isinstance(raw_items, list):
        raise f.error("orderItems", "is not a list")
    if not raw_items:
        raise f.error("orderItems", "is empty")
    items = tuple(_item(item, i, f) for i, item in enumerate(raw_items))

    fulfillment = raw.get("fulfillment")
    status_value = _dig(fulfillment, "fulfillmentStatus")
    status = _STATUS.get(status_value.strip().upper(), FulfillmentStatus.OTHER) \
        if isinstance(status_value, str) else FulfillmentStatus.OTHER

    last_updated = f.time(raw, "lastUpdatedTime", "lastUpdatedTime", required=True)
    assert last_updated is not None
    packages = raw.get("packages")
    refs = tuple(_plain(p.get("packageReferenceId")) for p in packages
                 if isinstance(p, Mapping) and _plain(p.get("packageReferenceId"))) \
        if isinstance(packages, list) else ()
    return Order(
        order_id=order_id,
        account=account,
        marketplace_id=marketplace,
        site=site,
        status=status,
        last_updated=last_updated,
        created=f.time(raw, "createdTime", "createdTime", required=False),
        ship_by=f.time(_dig(fulfillment, "shipByWindow"), "latestDateTime",
                       "fulfillment.shipByWindow.latestDateTime", required=False),
        deliver_by=f.time(_dig(fulfillment, "deliverByWindow"), "latestDateTime",
                          "fulfillment.deliverByWindow.latestDateTime", required=False),
        items=items,
        total=f.money(_dig(raw, "proceeds", "grandTotal"), "proceeds.grandTotal"),
        ship_to=_address(_dig(raw, "recipient", "deliveryAddress"), raw.get("buyer")),
        buyer_cancel_requested=_buyer_requested_cancel(raw_items),
        programs=_programs(raw.get("programs")),
        shipped_package_refs=refs,
    )


def package_from_api(raw_order: dict[str, Any], package_reference_id: str) -> dict[str, Any] | None:
    """The ``packages[]`` entry of a raw v2026 order whose packageReferenceId matches, else None.

    For verification after confirmShipment: the caller compares ``trackingNumber`` and
    ``carrier`` of the entry with what it sent. Needs ``includedData`` with PACKAGES.
    """
    wanted = str(package_reference_id).strip()
    packages = raw_order.get("packages") if isinstance(raw_order, Mapping) else None
    if not isinstance(packages, list):
        return None
    for package in packages:
        if isinstance(package, dict) and _plain(package.get("packageReferenceId")) == wanted:
            return package
    return None


def ship_date_iso(ship_date: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC; a naive datetime is refused (whose local time?)."""
    if not isinstance(ship_date, datetime):
        raise TypeError(f"ship_date must be a datetime, got {type(ship_date).__name__}")
    if ship_date.tzinfo is None or ship_date.utcoffset() is None:
        raise ValueError("ship_date must be timezone-aware (UTC), got a naive datetime")
    return iso(ship_date)


def confirm_shipment_body(order_id: str, *, marketplace_id: str, package_reference_id: str, carrier_code: str,
                          tracking_number: str, ship_date: datetime, items: Sequence[tuple[str, int]],
                          carrier_name: str | None = None, shipping_method: str | None = None,
                          ship_from_supply_source_id: str | None = None,
                          transparency_codes: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """The v0 ``ConfirmShipmentRequest`` for one package, validated (ValueError/TypeError).

    * ``packageReferenceId``: a positive integer written as a STRING (Amazon rejects numbers).
    * ``carrierName``: sent only with ``carrierCode == "Other"`` (any case), where it is required;
      for a listed carrier code it is dropped (the code alone identifies the carrier).
    * ``shipDate``: ISO 8601 UTC with milliseconds. ``orderItems``: one entry per order item,
      positive quantities, no duplicates; ``transparency_codes`` maps orderItemId -> codes.
    """
    where = f"confirmShipment for order {order_id}"
    if not isinstance(package_reference_id, str) or not package_reference_id.isdigit() \
            or not package_reference_id.isascii() or int(package_reference_id) == 0:
        raise ValueError(f"{where}: packageReferenceId must be a positive numeric string, "
                         f"got {package_reference_id!r}")
    for name, value in (("marketplaceId", marketplace_id), ("carrierCode", carrier_code),
                        ("trackingNumber", tracking_number)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: {name} is empty")
    package: dict[str, Any] = {"packageReferenceId": package_reference_id, "carrierCode": carrier_code}
    if carrier_code.strip().lower() == "other":
        if not carrier_name or not carrier_name.strip():
            raise ValueError(f"{where}: carrierName is required when carrierCode is 'Other'")
        package["carrierName"] = carrier_name
    if shipping_method:
        package["shippingMethod"] = shipping_method
    package["trackingNumber"] = tracking_number
    package["shipDate"] = ship_date_iso(ship_date)
    if ship_from_supply_source_id:
        package["shipFromSupplySourceId"] = ship_from_supply_source_id
    codes = dict(transparency_codes or {})
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in items:
        try:
            item_id, quantity = entry
        except (TypeError, ValueError):
            raise ValueError(f"{where}: items must be (orderItemId, quantity) pairs, got {entry!r}") from None
        if not isinstance(item_id, str) or not item_id.strip():
            raise ValueError(f"{where}: an orderItemId is empty")
        if item_id in seen:
            raise ValueError(f"{where}: orderItemId {item_id} is listed twice")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValueError(f"{where}: quantity of orderItemId {item_id} must be a positive integer, "
                             f"got {quantity!r}")
        seen.add(item_id)
        line: dict[str, Any] = {"orderItemId": item_id, "quantity": quantity}
        if codes.get(item_id):
            line["transparencyCodes"] = [str(c) for c in codes[item_id]]
        lines.append(line)
    if not lines:
        raise ValueError(f"{where}: no order items to confirm")
    unknown = set(codes) - seen
    if unknown:
        raise ValueError(f"{where}: transparency codes for order item(s) not in this package: "
                         f"{', '.join(sorted(unknown))}")
    package["orderItems"] = lines
    return {"marketplaceId": marketplace_id, "packageDetail": package}
