"""Routes: batch printing and handovers (the warehouse's day; docs/printing-and-handover.md).

``POST /v1/labels/print`` answers the merged PDF itself (pick list first, labels sorted by carrier
and service, every page 100 x 150 mm) and marks its labels printed; ``GET /v1/labels`` lists labels
with their flag (UNPRINTED, PRINTED, HANDED_OVER). ``POST /v1/handovers`` closes the day's
handovers, one per carrier and pickup (finishing first any an interrupted run left open), and
``GET /v1/handovers/{id}/list.pdf`` / ``list.csv`` answer the handover list. What ``mfn-connector
labels ...`` and ``handover ...`` do (connector/engine/printing.py, handover.py).
"""
from __future__ import annotations

import base64
import binascii
import json
from datetime import date, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from ...engine import handover as handover_engine
from ...engine import printing
from ...ledger import PackageState
from ...ledger.tokens import ApiToken
from ...ledger.warehouse import Handover, LabelMarks, package_warehouse, package_weight_g
from ..auth import require
from ..problems import ApiProblem, documented
from ..text import Storable

router = APIRouter()

MAX_ID = 2**63 - 1
DEFAULT_PAGE = 50
MAX_ORDERS = 500
EARLIEST, LATEST = date(2000, 1, 1), date(9000, 1, 1)

Flag = Literal["UNPRINTED", "PRINTED", "HANDED_OVER"]


_PDF = {"schema": {"type": "string", "format": "binary"}}
_CSV = {"schema": {"type": "string"}}


# -- answers and requests -----------------------------------------------------------------------------
class PrintRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_ids: list[Annotated[str, Field(min_length=1, max_length=100), Storable]] | None = Field(
        None, max_length=MAX_ORDERS,
        description="only these orders' labels; null or absent: every label bought, not scanned yet and "
                    "never printed")
    reprint: bool = Field(False, description="with order_ids: print labels printed before again (logged)")
    packing_slips: bool = Field(False, description="a packing slip page after each label")


class LabelInfo(BaseModel):
    package_id: int
    order_id: str
    package_ref: str
    carrier: str
    service: str
    state: PackageState = Field(description="the package's state: confirmation and tracking go on "
                                            "independently of the label's flag")
    tracking_number: str
    label: Flag = Field(description="where the label is in the warehouse")
    printed_at: datetime | None = Field(description="first print")
    last_printed_at: datetime | None
    print_count: int = Field(description="2 and more: reprinted")
    handover_id: int | None = Field(description="the handover that claimed the parcel")
    handed_over_at: datetime | None = Field(description="set: HANDED_OVER")
    warehouse: str = Field(description="the pickup the parcel leaves from")


class LabelPage(BaseModel):
    items: list[LabelInfo]
    next_cursor: str | None = Field(description="pass as cursor (with the same filters) for the next page")


class PrintBatchInfo(BaseModel):
    id: int
    created_at: datetime
    labels: int
    reprints: int
    pages: int
    packing_slips: bool
    package_ids: list[int]


class HandoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier: str | None = Field(None, min_length=1, max_length=64,
                                description="only this carrier (default: every carrier with printed parcels)")
    pickup_date: date | None = Field(None, description="parcels printed up to the end of this day (UTC) go; "
                                                       "default today")


class HandoverInfo(BaseModel):
    id: int
    carrier: str
    warehouse: str = Field(description="the pickup")
    pickup_date: date
    created_at: datetime = Field(description="when it was claimed")
    closed_at: datetime | None = Field(description="null: claimed, not finished (the next close finishes it)")
    manifest_state: Literal["pending", "closed", "none", "refused"] = Field(
        description="the carrier's handover call: closed, none (it has no such call), refused, pending")
    manifest_ref: str = Field(description="the carrier's reference for its manifest / close-out, if any")
    manifest_note: str
    packages: int
    weight_g: int
    list_pdf_url: str | None
    list_csv_url: str | None


class HandoverParcel(BaseModel):
    package_id: int
    order_id: str
    package_ref: str
    service: str
    tracking_number: str
    weight_g: int
    state: PackageState
    handed_over_at: datetime | None


class HandoverDetail(HandoverInfo):
    parcels: list[HandoverParcel]


class HandoverResult(HandoverInfo):
    resumed: bool = Field(description="an earlier, interrupted run had claimed it; this run finished it")
    error: str = Field(description="not empty: the carrier failed transiently, the handover stays open")


class HandoverRun(BaseModel):
    handovers: list[HandoverResult] = Field(description="one per carrier and pickup; empty: nothing waited")
    complete: bool = Field(description="false: some handover is still open (run it again)")


class HandoverPage(BaseModel):
    items: list[HandoverInfo]
    next_cursor: str | None = Field(description="pass as cursor (with the same filters) for the next page")


# -- helpers -------------------------------------------------------------------------------------------
def _rt(request: Request) -> Any:
    return request.app.state.rt


def _bad(name: str, message: str) -> ApiProblem:
    return ApiProblem(422, "Invalid request", f"check {name}", kind="invalid-request",
                      errors=[{"field": name, "message": message}])


def _cursor(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, position]).encode()).decode().rstrip("=")


def _position(cursor: str, kind: str) -> int:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise _bad("cursor", "is not a cursor this API gave out") from None
    if (not isinstance(value, list) or len(value) != 2 or value[0] != kind or type(value[1]) is not int
            or not 0 <= value[1] <= MAX_ID):
        raise _bad("cursor", f"is not a cursor of this listing ({kind})")
    return value[1]


def _limit(request: Request, limit: int) -> int:
    return max(1, min(limit, _rt(request).config.api.page_size_max))


def _label(package: Any, marks: LabelMarks, default_warehouse: str) -> LabelInfo:
    return LabelInfo(package_id=package.id, order_id=package.order_id, package_ref=package.package_ref,
                     carrier=package.carrier, service=package.service, state=package.state,
                     tracking_number=package.tracking_number, label=marks.flag, printed_at=marks.printed_at,
                     last_printed_at=marks.last_printed_at, print_count=marks.print_count,
                     handover_id=marks.handover_id, handed_over_at=marks.handed_over_at,
                     warehouse=package_warehouse(package, default_warehouse))


def _handover(h: Handover, cls: type[HandoverInfo] = HandoverInfo, **extra: Any) -> Any:
    return cls(id=h.id, carrier=h.carrier, warehouse=h.warehouse,
               pickup_date=date.fromisoformat(h.pickup_date),
               created_at=h.created_at, closed_at=h.closed_at, manifest_state=h.manifest_state,
               manifest_ref=h.manifest_ref, manifest_note=h.manifest_note, packages=h.packages,
               weight_g=h.weight_g, list_pdf_url=f"/v1/handovers/{h.id}/list.pdf" if h.closed else None,
               list_csv_url=f"/v1/handovers/{h.id}/list.csv" if h.closed else None, **extra)


def _get_handover(request: Request, handover_id: int) -> Handover:
    found = _rt(request).ledger.get_handover(handover_id)
    if found is None:
        raise ApiProblem(404, "Not found", f"no handover {handover_id}",
                         errors=[{"field": "handover_id", "message": "unknown"}])
    return found


HandoverId = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, description="page size; at most api.page_size_max, a larger one is "
                                              "lowered to it")]
Cursor = Annotated[str | None, Query(max_length=1000, description="next_cursor of the previous page")]


# -- labels --------------------------------------------------------------------------------------------
@router.post("/labels/print", response_class=Response, tags=["labels"],
             responses={200: {"content": {"application/pdf": _PDF},
                              "description": "The merged PDF: pick list, then the labels by carrier "
                                             "and service (headers X-Print-Batch, X-Labels, X-Reprints, "
                                             "X-Pages)"},
                        404: documented("An order in order_ids is not in the ledger"),
                        410: documented("Every order in order_ids had its buyer data purged (data "
                                        "protection): its labels were erased with it"),
                        409: documented("Nothing to print: every label asked for is printed already "
                                        "(reprint: true prints it again), has no file, or there is none; "
                                        "or another batch printed them, or a label was voided, "
                                        "meanwhile"),
                        503: documented("The batch's file cannot be written on the server (a full or "
                                        "read-only disk); nothing was marked printed")},
             summary="Print a batch of labels into one PDF and mark them printed")
def print_batch(request: Request, body: Annotated[PrintRequest | None, Body()] = None,
                _token: ApiToken = Depends(require("operate", "pii"))) -> Response:
    """Every label not printed yet (no body, or no order_ids), or the labels of ``order_ids``; a
    label printed before only with ``reprint``. The file is also kept under the state directory.
    Labels show buyers' names and addresses: the ``pii`` scope is needed too."""
    body = body or PrintRequest()
    if body.reprint and not body.order_ids:
        raise _bad("reprint", "needs order_ids: say which labels to print again")
    try:
        result = printing.print_labels(_rt(request), order_ids=body.order_ids, reprint=body.reprint,
                                       packing_slips=body.packing_slips)
    except printing.UnknownOrder as exc:
        errors = [{"field": "order_ids", "message": f"unknown: {o}"} for o in exc.order_ids]
        raise ApiProblem(404, "Not found", str(exc), errors=errors) from None
    except printing.LabelsErased as exc:
        raise ApiProblem(410, "Gone", str(exc), kind="label-erased",
                         errors=[{"field": "order_ids", "message": f"{what}: {why}"}
                                 for what, why in exc.skipped[:50]]) from None
    except printing.NothingToPrint as exc:
        raise ApiProblem(409, "Conflict", str(exc), kind="nothing-to-print",
                         errors=[{"field": "order_ids", "message": f"{what}: {why}"}
                                 for what, why in exc.skipped[:50]]) from None
    except printing.BatchNotWritten as exc:
        raise ApiProblem(503, "Service unavailable", str(exc), kind="print-file-not-written") from None
    return Response(result.path.read_bytes(), media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{result.path.name}"',
        "X-Print-Batch": str(result.batch.id), "X-Labels": str(len(result.labels)),
        "X-Reprints": str(result.reprints), "X-Pages": str(result.pages)})


@router.get("/labels", response_model=LabelPage, tags=["labels"],
            summary="Labels with their flag: UNPRINTED, PRINTED, HANDED_OVER")
def list_labels(
    request: Request,
    label: Annotated[Flag | None, Query(description="only labels with this flag")] = None,
    carrier: Annotated[str | None, Query(max_length=64)] = None,
    order_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    _token: ApiToken = Depends(require("read")),
) -> LabelPage:
    """Packages whose label is bought and not voided, oldest first (by package id)."""
    after = _position(cursor, "labels") if cursor else None
    size = _limit(request, limit)
    rows = _rt(request).ledger.label_page(order_id=order_id, carrier=carrier, flag=label, after_id=after,
                                          limit=size + 1)
    more, rows = len(rows) > size, rows[:size]
    default = _rt(request).config.default_warehouse.name
    return LabelPage(items=[_label(p, m, default) for p, m in rows],
                     next_cursor=_cursor("labels", rows[-1][0].id) if more and rows else None)


@router.get("/labels/batches", response_model=list[PrintBatchInfo], tags=["labels"],
            summary="The print batches, newest first")
def list_print_batches(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                       _token: ApiToken = Depends(require("read"))) -> list[PrintBatchInfo]:
    return [PrintBatchInfo(id=b.id, created_at=b.created_at, labels=b.labels, reprints=b.reprints,
                           pages=b.pages, packing_slips=b.packing_slips, package_ids=list(b.package_ids))
            for b in _rt(request).ledger.print_batches(limit=limit)]


BatchId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/labels/batches/{batch_id}.pdf", response_class=Response, tags=["labels"],
            responses={200: {"content": {"application/pdf": _PDF},
                             "description": "The batch's PDF as it was printed (headers X-Print-Batch, "
                                            "X-Labels, X-Reprints, X-Pages)"},
                       404: documented("No such print batch"),
                       410: documented("The batch's file is gone: it held a label erased with its order's "
                                       "buyer data (data protection), or it was deleted from the server")},
            summary="A print batch's PDF again (a client that lost the answer to POST /v1/labels/print)")
def print_batch_pdf(request: Request, batch_id: BatchId,
                    _token: ApiToken = Depends(require("read", "pii"))) -> Response:
    """The PDF ``POST /v1/labels/print`` answered, fetched again: nothing is marked or counted as a
    reprint. Labels show buyers' names and addresses: the ``pii`` scope is needed too."""
    ledger = _rt(request).ledger
    batch = ledger.get_print_batch(batch_id)
    if batch is None:
        raise ApiProblem(404, "Not found", f"no print batch {batch_id}",
                         errors=[{"field": "batch_id", "message": "unknown"}])
    path = FilePath(batch.path)
    if ledger.print_batches_with_erased_labels([batch.id]):
        raise ApiProblem(410, "Gone", f"print batch {batch_id} held a label erased with its order's buyer "
                         "data: the batch is gone with it", kind="label-erased")
    if not path.is_file():
        raise ApiProblem(410, "Gone", f"print batch {batch_id}'s file is no longer on the server; print the "
                         "labels again (order_ids, reprint: true)", kind="print-file-gone")
    return FileResponse(path, media_type="application/pdf", filename=path.name, headers={
        "X-Print-Batch": str(batch.id), "X-Labels": str(batch.labels), "X-Reprints": str(batch.reprints),
        "X-Pages": str(batch.pages)})


# -- handovers -----------------------------------------------------------------------------------------
@router.post("/handovers", response_model=HandoverRun, tags=["handovers"],
             summary="Close the day's handovers: one per carrier and pickup, with PDF and CSV lists")
def close_handovers(request: Request, body: Annotated[HandoverRequest | None, Body()] = None,
                    _token: ApiToken = Depends(require("operate"))) -> HandoverRun:
    """Finishes any handover an interrupted run left open, then claims the printed parcels not
    handed over yet per carrier and pickup, closes them at the carrier where its API has a handover
    call, and writes the lists."""
    body = body or HandoverRequest()
    rt = _rt(request)
    if body.carrier is not None and body.carrier not in rt.carriers and body.carrier not in rt.carrier_specs:
        raise _bad("carrier", "is not a known carrier")
    if body.pickup_date is not None and not EARLIEST <= body.pickup_date <= LATEST:
        raise _bad("pickup_date", f"must be between {EARLIEST} and {LATEST}")
    results = handover_engine.close_handovers(rt, carrier=body.carrier, pickup_date=body.pickup_date)
    return HandoverRun(handovers=[_handover(r.handover, HandoverResult, resumed=r.resumed, error=r.error)
                                  for r in results],
                       complete=all(r.closed for r in results))


@router.get("/handovers", response_model=HandoverPage, tags=["handovers"], summary="Handovers, newest first")
def list_handovers(request: Request, carrier: Annotated[str | None, Query(max_length=64)] = None,
                   limit: Limit = DEFAULT_PAGE, cursor: Cursor = None,
                   _token: ApiToken = Depends(require("read"))) -> HandoverPage:
    before = _position(cursor, "handovers") if cursor else None
    size = _limit(request, limit)
    rows = _rt(request).ledger.handovers(carrier=carrier, limit=size + 1, before_id=before)
    more, rows = len(rows) > size, rows[:size]
    return HandoverPage(items=[_handover(h) for h in rows],
                        next_cursor=_cursor("handovers", rows[-1].id) if more and rows else None)


@router.get("/handovers/{handover_id}", response_model=HandoverDetail, tags=["handovers"],
            responses={404: documented("No such handover")}, summary="One handover with its parcels")
def show_handover(request: Request, handover_id: HandoverId,
                  _token: ApiToken = Depends(require("read"))) -> HandoverDetail:
    handover = _get_handover(request, handover_id)
    ledger = _rt(request).ledger
    packages = ledger.handover_packages(handover.id)
    marks = ledger.label_marks(p.id for p in packages)
    parcels = [HandoverParcel(package_id=p.id, order_id=p.order_id, package_ref=p.package_ref,
                              service=p.service, tracking_number=p.tracking_number,
                              weight_g=package_weight_g(p), state=p.state,
                              handed_over_at=marks[p.id].handed_over_at if p.id in marks else None)
               for p in packages]
    return _handover(handover, HandoverDetail, parcels=parcels)


def _list_file(request: Request, handover_id: int, which: str) -> FilePath:
    handover = _get_handover(request, handover_id)
    text = handover.pdf_path if which == "pdf" else handover.csv_path
    path = FilePath(text) if text else None
    if path is None or not path.is_file():
        raise ApiProblem(404, "Not found", f"handover {handover_id} has no list {'file' if path else 'yet'} "
                         "(it is closed with its list; POST /v1/handovers finishes an open one)",
                         errors=[{"field": "handover_id", "message": "no list"}])
    return path


@router.get("/handovers/{handover_id}/list.pdf", response_class=Response, tags=["handovers"],
            responses={200: {"content": {"application/pdf": _PDF},
                             "description": "The handover list to sign"},
                       404: documented("No such handover, or it is not closed yet")},
            summary="The handover list as PDF")
def handover_list_pdf(request: Request, handover_id: HandoverId,
                      _token: ApiToken = Depends(require("read"))) -> Response:
    path = _list_file(request, handover_id, "pdf")
    return FileResponse(path, media_type="application/pdf", filename=path.name)


@router.get("/handovers/{handover_id}/list.csv", response_class=Response, tags=["handovers"],
            responses={200: {"content": {"text/csv": _CSV},
                             "description": "The handover list: one line per parcel (tracking number, "
                                            "weight, ...)"},
                       404: documented("No such handover, or it is not closed yet")},
            summary="The handover list as CSV")
def handover_list_csv(request: Request, handover_id: HandoverId,
                      _token: ApiToken = Depends(require("read"))) -> Response:
    path = _list_file(request, handover_id, "csv")
    return FileResponse(path, media_type="text/csv", filename=path.name)
