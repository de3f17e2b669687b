"""Routes: orders and packages -- list, show, steer (hold, release, retry, void), labels.

Lists are keyset pages: ``next_cursor`` (opaque) continues the listing with the same filters;
null when the page is the last. An order's buyer address (``ship_to``) is answered only to a token
with the ``pii`` scope; lists never carry it. Steering does what ``mfn-connector orders ...`` does
(connector/engine/steer.py).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from ...engine import steer
from ...engine.printing import erased_reason
from ...holds import DAEMON_ONLY_HOLD_REASONS, HoldReason, operator_may_not_hold_for
from ...ledger import OrderRecord, OrderState, Package, PackageState
from ...ledger.base import unstorable_text
from ...ledger.crypto import PiiDecryptError
from ...ledger.tokens import ApiToken
from ...model import Order
from ..auth import may_see_pii, require
from ..problems import ApiProblem, documented
from ..text import Storable

router = APIRouter()
log = logging.getLogger("connector.api")

MAX_ID = 2**63 - 1  # SQLite's integer range
DEFAULT_PAGE = 50


# -- answers --------------------------------------------------------------------------------------
class MoneyAmount(BaseModel):
    amount: str = Field(description="a decimal number as text, e.g. 9.99")
    currency: str = Field(description="ISO 4217")


class OrderLine(BaseModel):
    order_item_id: str
    sku: str
    quantity: int = Field(description="quantity still to ship")
    title: str
    asin: str
    unit_price: MoneyAmount | None
    ioss_number: str
    quantity_shipped: int
    programs: list[str] = Field([], description="Amazon's programs for the item: TRANSPARENCY needs codes")


class OrderData(BaseModel):
    """The order as Amazon (or the ERP) sent it, without the buyer's address."""

    order_id: str
    account: str
    marketplace_id: str
    site: str
    status: str = Field(description="Amazon's fulfillment status: UNSHIPPED, PARTIALLY_SHIPPED, ...")
    last_updated: datetime
    created: datetime | None
    ship_by: datetime | None
    deliver_by: datetime | None
    items: list[OrderLine]
    total: MoneyAmount | None
    buyer_cancel_requested: bool
    programs: list[str]
    shipped_package_refs: list[str]
    origin: str = Field(description="amazon (the connector's own poll) or erp (submitted through the API)")
    channel: str
    confirm: bool = Field(description="whether the connector confirms the shipment to Amazon")


class BuyerAddress(BaseModel):
    """Buyer PII: answered only to a token with the pii scope."""

    name: str
    line1: str
    line2: str
    line3: str
    city: str
    state: str
    postal_code: str
    country_code: str
    phone: str
    email: str
    company: str
    district: str


class HoldInfo(BaseModel):
    reason: str = Field(description="a hold reason (docs/hold-reasons.md)")
    message: str
    held_from: OrderState | None = Field(description="the state a release returns the order to")


class PackageLine(BaseModel):
    order_item_id: str
    quantity: int


class TrackingEventInfo(BaseModel):
    at: datetime
    status: str
    code: str
    location: str
    description: str
    description_en: str


class PackageInfo(BaseModel):
    id: int
    order_id: str
    package_ref: str = Field(description="the packageReferenceId confirmed to Amazon")
    idempotency_key: str = Field(description="the carrier's customer reference of the label")
    carrier: str
    service: str
    state: PackageState
    items: list[PackageLine]
    carrier_shipment_id: str
    tracking_number: str
    label_url: str | None = Field(description="where the label PDF is (null: no label)")
    error: str
    cost: MoneyAmount | None = Field(description="what the label costs, as quoted when it was bought")
    refund: MoneyAmount | None = Field(description="what a void gives back")
    confirm_attempts: int
    scans: int
    created_at: datetime | None
    updated_at: datetime | None
    shipped_at: datetime | None
    confirmed_at: datetime | None
    first_scan_at: datetime | None
    last_scan_at: datetime | None
    delivered_at: datetime | None
    voided_at: datetime | None


class PackageDetail(PackageInfo):
    events: list[TrackingEventInfo] = Field(description="the carrier's tracking events, oldest first")


class HistoryEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    at: datetime
    from_state: str | None = Field(alias="from")
    to_state: str = Field(alias="to")
    note: str
    package_id: int | None = Field(description="null: the order's own state moved")


class OrderDetail(BaseModel):
    order: OrderData
    state: OrderState
    hold: HoldInfo | None
    attempts: int = Field(description="consecutive transient failures of the current step")
    next_attempt_at: datetime | None
    pii_purged: bool
    address_on_file: bool
    ship_to: BuyerAddress | None = Field(description="only for a token with the pii scope")
    ship_to_unreadable: str | None = Field(description=(
        "for a token with the pii scope, when the address on file cannot be read (no configured PII key "
        "opens it): why, and what to do; ship_to is then null. The message carries no buyer data"))
    packages: list[PackageDetail]
    transparency_codes: dict[str, list[str]] = Field(description=(
        "order item id -> the Transparency codes given for it (PUT .../transparency-codes)"))
    history: list[HistoryEntry]


class OrderSummary(BaseModel):
    order_id: str
    account: str
    site: str
    state: OrderState
    ship_by: datetime | None
    hold_reason: str | None
    hold_message: str | None
    carrier: str | None = Field(description="of the newest package")
    service: str | None
    tracking_number: str | None
    updated_at: datetime | None


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None = Field(description="pass as cursor (with the same filters) for the next page")


class PackagePage(BaseModel):
    items: list[PackageInfo]
    next_cursor: str | None = Field(description="pass as cursor (with the same filters) for the next page")


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: HoldReason = Field(HoldReason.MANUAL, description=(
        f"not {', '.join(sorted(DAEMON_ONLY_HOLD_REASONS))}: those say that no call to the carrier "
        "is in flight, or that the carrier refused a void, which only the daemon knows"))
    message: Annotated[str, Storable] = Field("held by an operator", max_length=500,
                         description="for a human; never put buyer data here")

    @field_validator("reason")
    @classmethod
    def _an_operator_may_hold_for(cls, reason: HoldReason) -> HoldReason:
        refused = operator_may_not_hold_for(reason.value)
        if refused:
            raise ValueError(refused)
        return reason


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replan: StrictBool = Field(False, description=(  # it spends money: true, not "yes"
        "give the order's label claim up and plan it again under a new reference; only after checking "
        "that its carrier holds no label under the claimed reference (the hold's message names it)"))


class VoidRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cancelled_elsewhere: StrictBool = Field(False, description=(
        "for an order held void_refused whose label is not confirmed on Amazon: its label was cancelled "
        "(or the parcel stopped) outside the daemon, at the carrier or where the ERP bought it; the order "
        "ends VOIDED, no carrier is called and no refund recorded"))


_OrderItemId = Annotated[str, Storable, Field(min_length=1, max_length=100)]
_ItemCodes = Annotated[list[Annotated[str, Storable, Field(max_length=2048)]], Field(max_length=1000)]


class TransparencyCodesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codes: dict[_OrderItemId, _ItemCodes] = Field(
        min_length=1, max_length=100, description=(
            "order item id (Amazon's orderItemId) -> the Transparency codes scanned from its units, one per "
            "unit to ship; they replace any given before for that item"))


class SteerResult(BaseModel):
    order_id: str
    action: Literal["hold", "release", "retry", "void", "codes"]
    state: OrderState = Field(description="the order's state now")
    detail: str = Field(description="what was done")
    complete: bool = Field(description="false: a void is claimed and the daemon finishes it (a held "
                                       "order's: void it again)")
    package_id: int | None
    refund: MoneyAmount | None


# -- helpers ---------------------------------------------------------------------------------------
_NOT_FOUND = {404: documented("No such order")}
_NO_PACKAGE = {404: documented("No such package")}
_CONFLICT = {409: documented("The order's state does not allow this")}


def _rt(request: Request) -> Any:
    return request.app.state.rt


def _money(value: Any) -> MoneyAmount | None:
    if isinstance(value, dict) and "amount" in value and "currency" in value:
        return MoneyAmount(amount=str(value["amount"]), currency=str(value["currency"]))
    return None


def _utc(value: datetime | None, name: str) -> datetime | None:
    """A query datetime in UTC (a naive one is UTC); 422 naming ``name`` when out of range."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise _bad(name, "is out of range") from None


def _bad(name: str, message: str) -> ApiProblem:
    return ApiProblem(422, "Invalid request", f"check {name}", kind="invalid-request",
                      errors=[{"field": name, "message": message}])


def _limit(request: Request, limit: int) -> int:
    return max(1, min(limit, _rt(request).config.api.page_size_max))


def encode_cursor(kind: str, *position: Any) -> str:
    raw = json.dumps([kind, *position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, types: tuple[type, ...]) -> list[Any]:
    """The position in a cursor this API gave out for ``kind``; 422 naming cursor otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _bad("cursor", "is not a cursor this API gave out") from None
    if (not isinstance(value, list) or len(value) != len(types) + 1 or value[0] != kind
            or not all(type(v) is t for v, t in zip(value[1:], types, strict=True))
            or any(isinstance(v, str) and unstorable_text(v) for v in value[1:])):  # "\u0000", "\ud800"
        raise _bad("cursor", f"is not a cursor of this listing ({kind})")
    return value[1:]


def order_data(order: Order) -> OrderData:
    data = order.to_dict()
    data.update(origin=order.origin, channel=order.channel, confirm=order.confirm)
    return OrderData.model_validate(data)


def label_url(package: Package) -> str | None:
    """Where the package's label can be downloaded; None when there is none to use (not bought
    yet, voided, failed, or erased with the order's buyer data)."""
    usable = (bool(package.label_path) and package.state not in (PackageState.VOIDED, PackageState.FAILED)
              and package.label_erased_at is None)
    return f"/v1/packages/{package.id}/label" if usable else None


def package_info(package: Package, cls: type[PackageInfo] = PackageInfo, **extra: Any) -> Any:
    return cls(
        id=package.id, order_id=package.order_id, package_ref=package.package_ref,
        idempotency_key=package.idempotency_key, carrier=package.carrier, service=package.service,
        state=package.state,
        items=[PackageLine(order_item_id=str(i.get("order_item_id", "")), quantity=int(i.get("quantity", 0)))
               for i in package.items],
        carrier_shipment_id=package.carrier_shipment_id, tracking_number=package.tracking_number,
        label_url=label_url(package), error=package.error,
        cost=_money(package.plan.get("cost")), refund=_money(package.refund),
        confirm_attempts=package.confirm_attempts, scans=package.scans, created_at=package.created_at,
        updated_at=package.updated_at, shipped_at=package.shipped_at, confirmed_at=package.confirmed_at,
        first_scan_at=package.first_scan_at, last_scan_at=package.last_scan_at,
        delivered_at=package.delivered_at, voided_at=package.voided_at, **extra)


def package_detail(ledger: Any, package: Package) -> PackageDetail:
    events = [TrackingEventInfo(at=e.at, status=e.status, code=e.code, location=e.location,
                                description=e.description, description_en=e.description_en)
              for e in ledger.tracking_events(package.id)]
    return package_info(package, PackageDetail, events=events)


def _summary(record: OrderRecord, package: Package | None) -> OrderSummary:
    return OrderSummary(
        order_id=record.order_id, account=record.order.account, site=record.order.site, state=record.state,
        ship_by=record.order.ship_by, hold_reason=record.hold_reason or None,
        hold_message=(record.hold_message or None) if record.hold_reason else None,
        carrier=package.carrier if package else None, service=package.service if package else None,
        tracking_number=(package.tracking_number or None) if package else None,
        updated_at=record.updated_at)


def _steered(done: steer.Steered) -> SteerResult:
    return SteerResult(order_id=done.order_id, action=done.action, state=done.state, detail=done.done,
                       complete=done.complete, package_id=done.package_id, refund=_money(done.refund))


def _steer_problem(exc: steer.SteerError) -> ApiProblem:
    if isinstance(exc, steer.OrderNotFound):
        return ApiProblem(404, "Not found", str(exc), errors=[{"field": "order_id", "message": "unknown"}])
    if isinstance(exc, steer.BadInput):
        return _bad("codes", str(exc))
    return ApiProblem(409, "Conflict", str(exc), kind="conflict",
                      errors=[{"field": "order_id", "message": "its state does not allow this"}])


# -- orders ----------------------------------------------------------------------------------------
OrderId = Annotated[str, Path(min_length=1, max_length=100, description="Amazon's order id, e.g. "
                                                                        "111-0000001-0000001")]
Limit = Annotated[int, Query(ge=1, description="page size; at most api.page_size_max (500 unless "
                                              "configured), a larger one is lowered to it")]
Cursor = Annotated[str | None, Query(max_length=1000, description="next_cursor of the previous page")]


@router.get("/orders", response_model=OrderPage, tags=["orders"], summary="List orders (no buyer data)")
def list_orders(
    request: Request,
    state: Annotated[list[OrderState] | None, Query(description="only these states (repeatable)")] = None,
    site: Annotated[str | None, Query(max_length=10)] = None,
    account: Annotated[str | None, Query(max_length=100)] = None,
    hold_reason: HoldReason | None = None,
    ship_by_before: Annotated[datetime | None, Query(description="ship-by strictly before this")] = None,
    updated_since: Annotated[datetime | None, Query(description="updated at or after this")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    _token: ApiToken = Depends(require("read")),
) -> OrderPage:
    """Orders oldest first (by when they entered the ledger), filtered; every filter given must hold."""
    ledger = _rt(request).ledger
    after = tuple(decode_cursor(cursor, "orders", (str, str))) if cursor else None
    size = _limit(request, limit)
    rows = ledger.order_page(states=state, site=site, account=account,
                             hold_reason=hold_reason.value if hold_reason else None,
                             ship_by_before=_utc(ship_by_before, "ship_by_before"),
                             updated_since=_utc(updated_since, "updated_since"), after=after, limit=size + 1)
    more, rows = len(rows) > size, rows[:size]
    latest = ledger.latest_packages([r.order_id for r, _ in rows])
    next_cursor = encode_cursor("orders", rows[-1][1], rows[-1][0].order_id) if more and rows else None
    return OrderPage(items=[_summary(r, latest.get(r.order_id)) for r, _ in rows], next_cursor=next_cursor)


@router.get("/orders/{order_id}", response_model=OrderDetail, responses=_NOT_FOUND, tags=["orders"],
            summary="One order: state, hold, packages with tracking, history")
def show_order(request: Request, order_id: OrderId,
               token: ApiToken = Depends(require("read"))) -> OrderDetail:
    """Everything the ledger knows about one order. ``ship_to`` (the buyer's address) is answered
    only to a token with the pii scope; ``address_on_file`` says whether one is stored. An address no
    configured key reads leaves ``ship_to`` null and ``ship_to_unreadable`` saying so: the order is
    shown all the same, as ``mfn-connector orders show`` shows it (it never decrypts)."""
    ledger = _rt(request).ledger
    pii = may_see_pii(token)
    unreadable = None
    try:
        found = ledger.order_detail(order_id, with_pii=pii)
    except PiiDecryptError as exc:  # names the order and the key problem, never the buyer data
        unreadable = (f"{exc}; put the PII key it was sealed with back (after the newest) and run "
                      "'mfn-connector pii rotate' before removing a key")
        log.warning("GET /v1/orders/%s: %s", order_id, unreadable)
        found = ledger.order_detail(order_id, with_pii=False)
    if found is None:
        raise ApiProblem(404, "Not found", f"no order {order_id} in the ledger",
                         errors=[{"field": "order_id", "message": "unknown"}])
    record, on_file = found
    address = record.order.ship_to if pii else None
    return OrderDetail(
        order=order_data(record.order), state=record.state,
        hold=HoldInfo(reason=record.hold_reason, message=record.hold_message, held_from=record.held_from)
        if record.hold_reason else None,
        attempts=record.attempts, next_attempt_at=record.next_attempt_at, pii_purged=record.pii_purged,
        address_on_file=on_file, ship_to=BuyerAddress(**asdict(address)) if address is not None else None,
        ship_to_unreadable=unreadable,
        packages=[package_detail(ledger, p) for p in ledger.packages(order_id)],
        transparency_codes={item: list(codes) for item, codes in ledger.transparency_codes(order_id).items()},
        history=[HistoryEntry(at=h["at"], from_state=h["from"], to_state=h["to"], note=h["note"] or "",
                              package_id=h.get("package_id")) for h in ledger.history(order_id)])


def _steer(change: Callable[[], steer.Steered]) -> SteerResult:
    """Apply one operator change (connector/engine/steer.py) and answer it, or its problem."""
    try:
        return _steered(change())
    except steer.SteerError as exc:
        raise _steer_problem(exc) from None


@router.post("/orders/{order_id}/hold", response_model=SteerResult, responses={**_NOT_FOUND, **_CONFLICT},
             tags=["orders"], summary="Hold an order: the daemon leaves it alone until it is released")
def hold_order(request: Request, order_id: OrderId, body: Annotated[HoldRequest | None, Body()] = None,
               _token: ApiToken = Depends(require("operate"))) -> SteerResult:
    body = body or HoldRequest()
    reason, message = body.reason.value, body.message
    return _steer(lambda: steer.hold_order(_rt(request).ledger, order_id, reason, message))


@router.post("/orders/{order_id}/release", response_model=SteerResult, responses={**_NOT_FOUND, **_CONFLICT},
             tags=["orders"], summary="Release a held order to the state it was held from")
def release_order(request: Request, order_id: OrderId, body: Annotated[ReleaseRequest | None, Body()] = None,
                  _token: ApiToken = Depends(require("operate"))) -> SteerResult:
    """With ``{"replan": true}``, the order's label claim is given up (409 when it has none)."""
    if body is not None and body.replan:
        return _steer(lambda: steer.replan_order(_rt(request), order_id))
    return _steer(lambda: steer.release_order(_rt(request).ledger, order_id))


@router.put("/orders/{order_id}/transparency-codes", response_model=SteerResult,
            responses={**_NOT_FOUND, **_CONFLICT}, tags=["orders"],
            summary="Give the Transparency codes scanned from an order's units")
def give_transparency_codes(request: Request, order_id: OrderId, body: TransparencyCodesRequest,
                            _token: ApiToken = Depends(require("operate"))) -> SteerResult:
    """One code per unit to ship of each order item given; an order held
    ``transparency_codes_needed`` is released once every Transparency item of it has its codes.
    422 names the item whose codes cannot be used; 409 once its package's confirmation was sent."""
    return _steer(lambda: steer.give_transparency_codes(_rt(request).ledger, order_id, body.codes))


@router.post("/orders/{order_id}/retry", response_model=SteerResult, responses={**_NOT_FOUND, **_CONFLICT},
             tags=["orders"], summary="Make a deferred order due now")
def retry_order(request: Request, order_id: OrderId,
                _token: ApiToken = Depends(require("operate"))) -> SteerResult:
    return _steer(lambda: steer.retry_order(_rt(request).ledger, order_id))


@router.post("/orders/{order_id}/void", response_model=SteerResult, tags=["orders"],
             responses={**_NOT_FOUND, **_CONFLICT,
                        202: {"model": SteerResult,
                              "description": "The void is claimed but not finished (a transient carrier "
                                             "error); the daemon finishes it, or, for a held order, "
                                             "the next void request"}},
             summary="Cancel the order's label at the carrier (before its first scan)")
def void_order(request: Request, response: Response, order_id: OrderId,
               body: Annotated[VoidRequest | None, Body()] = None,
               _token: ApiToken = Depends(require("operate"))) -> SteerResult:
    """Voids the newest label and records the refund; a held order's too, which ends the order and
    its hold. Asked again (a retry), a voided label answers 200 as its void did. 409 when there is
    no label, the carrier has scanned it, or the carrier refused (the order is then HELD
    ``void_refused``). With ``{"cancelled_elsewhere": true}``, an order held ``void_refused`` whose
    label is not confirmed on Amazon ends VOIDED without a carrier call (409 for any other order; a
    label voided already answers 200)."""
    elsewhere = body is not None and body.cancelled_elsewhere
    change = steer.record_cancelled_elsewhere if elsewhere else steer.void_order
    done = _steer(lambda: change(_rt(request), order_id))
    if not done.complete:
        response.status_code = 202
    return done


# -- packages --------------------------------------------------------------------------------------
PackageId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/packages", response_model=PackagePage, tags=["packages"], summary="List packages")
def list_packages(
    request: Request,
    state: Annotated[list[PackageState] | None, Query(description="only these states (repeatable)")] = None,
    carrier: Annotated[str | None, Query(max_length=64)] = None,
    order_id: Annotated[str | None, Query(max_length=100)] = None,
    updated_since: Annotated[datetime | None, Query(description="updated at or after this")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    _token: ApiToken = Depends(require("read")),
) -> PackagePage:
    """Packages oldest first (by id), filtered; every filter given must hold."""
    ledger = _rt(request).ledger
    after_id = decode_cursor(cursor, "packages", (int,))[0] if cursor else None
    if after_id is not None and not 0 <= after_id <= MAX_ID:
        raise _bad("cursor", "is not a cursor this API gave out")
    size = _limit(request, limit)
    rows = ledger.package_page(states=state, carrier=carrier, order_id=order_id,
                               updated_since=_utc(updated_since, "updated_since"), after_id=after_id,
                               limit=size + 1)
    more, rows = len(rows) > size, rows[:size]
    return PackagePage(items=[package_info(p) for p in rows],
                       next_cursor=encode_cursor("packages", rows[-1].id) if more and rows else None)


def _package(request: Request, package_id: int) -> Package:
    package = _rt(request).ledger.get_package(package_id)
    if package is None:
        raise ApiProblem(404, "Not found", f"no package {package_id}",
                         errors=[{"field": "package_id", "message": "unknown"}])
    return package


@router.get("/packages/{package_id}", response_model=PackageDetail, responses=_NO_PACKAGE, tags=["packages"],
            summary="One package with its tracking events")
def show_package(request: Request, package_id: PackageId,
                 _token: ApiToken = Depends(require("read"))) -> PackageDetail:
    return package_detail(_rt(request).ledger, _package(request, package_id))


_PDF = {"schema": {"type": "string", "format": "binary"}}


@router.get("/packages/{package_id}/label", response_class=Response, tags=["packages"],
            responses={200: {"content": {"application/pdf": _PDF}, "description": "The label PDF"},
                       404: documented("No such package, or it has no label (none bought yet, "
                                              "voided or failed)"),
                       410: documented("The order's buyer data was purged (data protection): its "
                                       "label was erased with it")},
            summary="The label PDF of a package")
def package_label(request: Request, package_id: PackageId,
                  _token: ApiToken = Depends(require("read", "pii"))) -> Response:
    """A carrier's label shows the buyer's name and address: it needs the ``pii`` scope too."""
    package = _package(request, package_id)
    if package.label_erased_at is not None:
        raise ApiProblem(410, "Gone", f"package {package_id} of order {package.order_id}: "
                         f"{erased_reason(package.label_erased_at)}", kind="label-erased",
                         errors=[{"field": "package_id", "message": "label erased"}])
    if package.state in (PackageState.VOIDED, PackageState.FAILED):
        raise ApiProblem(404, "Not found", f"package {package_id} of order {package.order_id} is "
                         f"{package.state.value}: its label must not be used",
                         errors=[{"field": "package_id", "message": "no label"}])
    path = FilePath(package.label_path) if package.label_path else None
    if path is None or not path.is_file():
        raise ApiProblem(404, "Not found", f"package {package_id} of order {package.order_id} has no label "
                         f"{'file' if path else 'yet'}",
                         errors=[{"field": "package_id", "message": "no label"}])
    return FileResponse(path, media_type="application/pdf",
                        filename=f"{package.order_id}-{package.package_ref}.pdf")
