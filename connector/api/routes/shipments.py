"""Routes: shipments an ERP submits (provider mode) and labels it bought elsewhere (confirm-only).

``POST /v1/shipments`` with the ERP's idempotency key buys at most one label per key, however often
it is sent (a repeat answers with the first request's shipment); ``POST /v1/confirmations`` has the
connector confirm, verify and track a label the ERP bought. See connector/engine/submit.py.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ...catalog import MAX_SKU
from ...engine import submit
from ...fx import ISO_4217
from ...ledger.tokens import ApiToken
from ..auth import require
from ..problems import ApiProblem, documented
from ..text import Storable
from .orders import label_url

router = APIRouter(tags=["shipments"])


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank (spaces only)")
    return value


# For text that must say something: spaces alone pass min_length=1 but name nobody and nowhere.
NotBlank = AfterValidator(_not_blank)


def _readable_back(value: str) -> str:
    # The key is read back at /v1/shipments/<key>, and every HTTP client drops a '.' or '..' path
    # segment from a URL ('/v1/shipments/..' is '/v1/'): such a key could never be read back.
    if value in (".", ".."):
        raise PydanticCustomError("dot_segment", "must not be '.' or '..': a URL drops such a path segment, "
                                                 "so it could not be read back")
    return value


Key = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$",
                           description="the ERP's own idempotency key: one request forever; "
                                       "not '.' or '..', which a URL to read it back would drop"),
                AfterValidator(_readable_back)]
Text = Annotated[str, Field(max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _currency(value: str) -> str:
    # Three letters that name no currency could never be converted: the order would be recorded,
    # then held asking for an exchange rate that does not exist, under a key that cannot be fixed.
    if value.upper() not in ISO_4217:
        raise PydanticCustomError("currency", "is not an ISO 4217 currency code (e.g. USD, EUR)")
    return value


class MoneyIn(_Strict):
    amount: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]
    currency: Annotated[str, Field(pattern=r"^[A-Za-z]{3}$"), AfterValidator(_currency)]


class AddressIn(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200), NotBlank]
    line1: Annotated[str, Field(min_length=1, max_length=200), NotBlank]
    line2: Text = ""
    line3: Text = ""
    city: Annotated[str, Field(min_length=1, max_length=100), NotBlank]
    state: Text = ""
    postal_code: Annotated[str, Field(max_length=20)] = ""
    country_code: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    phone: Annotated[str, Field(max_length=40)] = ""
    email: Text = ""
    company: Text = ""
    district: Text = ""


class ItemIn(_Strict):
    sku: Annotated[str, Field(min_length=1, max_length=MAX_SKU), Storable]
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    order_item_id: Annotated[str, Field(max_length=100, description=(
        "Amazon's order item id; required for an Amazon order with confirm: true (422 naming "
        "items.N.order_item_id otherwise, before anything is bought)"))] = ""
    title: Text = ""
    unit_price: MoneyIn | None = None


class ShipmentIn(_Strict):
    idempotency_key: Key
    # A letter first and no '-': the ledger keeps another channel's order as '<channel>-<order_id>',
    # which then names one order only and never looks like an Amazon order id.
    channel: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,30}$",
                                  description="amazon, or the other channel's name (shopify, ebay, ...)")]
    order_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$")]
    site: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="the Amazon site whose rules apply")]
    account: Annotated[str, Field(max_length=64)] = ""
    ship_to: AddressIn
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=100)]
    total: MoneyIn | None = None
    ship_by: datetime | None = None
    confirm: bool = Field(False, description="confirm to Amazon once labeled (Amazon orders only)")


class ConfirmItemIn(_Strict):
    order_item_id: Annotated[str, Field(min_length=1, max_length=100), NotBlank]
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    sku: Annotated[str, Field(max_length=MAX_SKU)] = ""


class ConfirmationIn(_Strict):
    idempotency_key: Key
    order_id: Annotated[str, Field(pattern=r"^[0-9]{3}-[0-9]{7}-[0-9]{7}$")]  # not \d: Arabic-Indic digits...
    site: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    account: Annotated[str, Field(min_length=1, max_length=64)]
    carrier: Annotated[str, Field(min_length=1, max_length=64, description="a configured carrier's code")]
    service: Annotated[str, Field(max_length=64)] = ""
    tracking_number: Annotated[str, Field(min_length=4, max_length=64), Storable]
    items: Annotated[list[ConfirmItemIn], Field(min_length=1, max_length=100)]


class HoldOut(BaseModel):
    reason: str
    message: str


class PackageOut(BaseModel):
    id: int
    carrier: str
    service: str
    state: str
    tracking_number: str
    label_url: str | None


class SubmissionOut(BaseModel):
    idempotency_key: str
    kind: Literal["shipment", "confirmation"]
    order_id: str
    channel: str
    confirm: bool
    state: str
    hold: HoldOut | None
    package: PackageOut | None


def _out(sub: Any, p: submit.Progress) -> SubmissionOut:
    order, pkg = p.record.order, p.package
    return SubmissionOut(
        idempotency_key=sub.idempotency_key, kind=sub.kind, order_id=order.order_id, channel=order.channel,
        confirm=order.confirm, state=p.record.state.value,
        hold=HoldOut(reason=p.record.hold_reason, message=p.record.hold_message) if p.record.hold_reason
        else None,
        package=PackageOut(id=pkg.id, carrier=pkg.carrier, service=pkg.service, state=pkg.state.value,
                           tracking_number=pkg.tracking_number,
                           label_url=label_url(pkg))
        if pkg else None)


def _problem(exc: submit.SubmitError) -> ApiProblem:
    title = "Conflict" if exc.status == 409 else "Invalid request"
    kind = "conflict" if exc.status == 409 else "invalid-request"
    return ApiProblem(exc.status, title, exc.message, kind=kind,
                      errors=[{"field": exc.field, "message": exc.message}])


def _answer(request: Request, response: Response, kind: str, body: BaseModel, build: Any) -> SubmissionOut:
    rt = request.app.state.rt
    try:
        sub = submit.record_submission(rt, body.idempotency_key, kind, body.model_dump(mode="json"), build)
    except submit.SubmitError as exc:
        raise _problem(exc) from None
    p = submit.advance(rt, sub.order_id, rt.config.api.shipment_wait_seconds)
    response.status_code = 202 if p.working else 201 if sub.created else 200
    response.headers["Location"] = f"/v1/{kind}s/{sub.idempotency_key}"
    return _out(sub, p)


_SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A repeat of an earlier request with this key: its shipment as it is now"},
    202: {"model": SubmissionOut,
          "description": "Accepted; the label is still on its way (the daemon carries on)"},
    409: {"description": "The key was used for another request, or the order belongs to the connector"},
}


@router.post("/shipments", status_code=201, response_model=SubmissionOut, responses=_SUBMIT_RESPONSES,
             summary="Buy a label for an ERP's order (exactly once per idempotency key)")
def create_shipment(body: ShipmentIn, request: Request, response: Response,
                    _token: ApiToken = Depends(require("operate"))) -> SubmissionOut:
    return _answer(request, response, "shipment", body, submit.shipment_order)


@router.post("/confirmations", status_code=201, response_model=SubmissionOut, responses=_SUBMIT_RESPONSES,
             summary="Confirm, verify and track a label the ERP bought elsewhere")
def create_confirmation(body: ConfirmationIn, request: Request, response: Response,
                        _token: ApiToken = Depends(require("operate"))) -> SubmissionOut:
    return _answer(request, response, "confirmation", body, submit.confirmation_order)


def _show(request: Request, kind: str, key: str) -> SubmissionOut:
    rt = request.app.state.rt
    sub = rt.ledger.submission(key)
    if sub is None or sub.kind != kind:
        raise ApiProblem(404, "Not found", f"no {kind} with idempotency key {key!r}",
                         errors=[{"field": "idempotency_key", "message": "unknown"}])
    return _out(sub, submit.progress(rt, sub.order_id))


@router.get("/shipments/{idempotency_key}", response_model=SubmissionOut, summary="A submitted shipment, now",
            responses={404: documented("No shipment was submitted with this key")})
def show_shipment(request: Request, idempotency_key: Annotated[str, Path(max_length=100)],
                  _token: ApiToken = Depends(require("read"))) -> SubmissionOut:
    return _show(request, "shipment", idempotency_key)


@router.get("/confirmations/{idempotency_key}", response_model=SubmissionOut,
            summary="A submitted confirmation, now",
            responses={404: documented("No confirmation was submitted with this key")})
def show_confirmation(request: Request, idempotency_key: Annotated[str, Path(max_length=100)],
                      _token: ApiToken = Depends(require("read"))) -> SubmissionOut:
    return _show(request, "confirmation", idempotency_key)
