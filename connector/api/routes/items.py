"""Routes: the item master -- read it, upsert one SKU, upsert many (JSON or CSV) with per-row errors.

The API's rows live in the ledger and win over the catalog file (:class:`LayeredCatalog`); every
row, whichever way it comes, goes through the catalog file's own check (:func:`parse_item`), so a
SKU the file would refuse is refused here too, with the same column names and messages. After an
upsert, orders held ``unknown_sku`` whose SKUs are all known now are released (unless
``api.auto_release_unknown_sku`` is off).
"""
from __future__ import annotations

import csv
import json
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ...catalog import (
    COLUMNS,
    MAX_DIGITS,
    OPTIONAL_COLUMNS,
    ambiguous_grams,
    csv_item_rows,
    csv_lines,
    parse_item,
)
from ...engine.items import release_known_skus
from ...ledger.tokens import ApiToken
from ...model import CatalogItem
from ..auth import require
from ..problems import ApiProblem, documented

router = APIRouter(tags=["items"])

_MAX = 10 ** MAX_DIGITS
_TEXT = {"pattern": r"\S"}  # documented; catalog.parse_item decides (a blank name is refused)
_POSITIVE = {"exclusiveMinimum": 0, "exclusiveMaximum": _MAX}
# A decimal as text, greater than 0 and less than _MAX. Only documented: parse_item decides, and it also
# takes what Python's Decimal reads (1E3, 1_000), which the pattern leaves out.
_POSITIVE_TEXT = r"^\s*\+?0*(?:[1-9][0-9]{0,11}(?:\.[0-9]*)?|\.[0-9]*[1-9][0-9]*)\s*$"


def _positive_decimal(schema: dict[str, Any]) -> None:
    """Document a decimal field (a JSON number, or exact text) as greater than 0."""
    for branch in schema.get("anyOf", ()):
        if branch.get("type") == "number":
            branch.update(_POSITIVE)
        elif branch.get("type") == "string":
            branch["pattern"] = _POSITIVE_TEXT


# -- models ----------------------------------------------------------------------------------------

class _ItemFields(BaseModel):
    """An item's fields, as the catalog file's columns. Only the types are checked here: the values
    are checked by the catalog's own row check, which names the field (422 / a row error)."""

    model_config = ConfigDict(extra="forbid")

    weight_g: int = Field(description="weight in grams, a whole number greater than 0",
                          json_schema_extra=_POSITIVE)
    length_cm: Decimal = Field(description="centimetres, greater than 0", json_schema_extra=_positive_decimal)
    width_cm: Decimal = Field(description="centimetres, greater than 0", json_schema_extra=_positive_decimal)
    height_cm: Decimal = Field(description="centimetres, greater than 0", json_schema_extra=_positive_decimal)
    name_en: str = Field(description="customs description in English", json_schema_extra=_TEXT)
    name_cn: str = Field(description="customs description in Chinese", json_schema_extra=_TEXT)
    hs_code: str = Field(description="HS code, 6 to 10 digits (a string: it may start with 0)",
                         json_schema_extra={"pattern": r"^\s*[0-9]{6,10}\s*$"})
    declared_value: Decimal = Field(description="customs value of one unit, greater than 0",
                                    json_schema_extra=_positive_decimal)
    declared_currency: str = Field(description="ISO 4217 code of declared_value, e.g. USD",
                                   json_schema_extra={"pattern": r"^\s*[A-Za-z]{3}\s*$"})
    battery: bool = Field(False, description="contains a lithium battery")
    category: str = Field("", description="Amazon's product category, for the VTR report (empty: none)")

    @field_validator("weight_g", mode="before")
    @classmethod
    def _whole_grams(cls, value: object) -> object:
        if isinstance(value, bool):  # JSON true is not 1 gram
            raise ValueError("must be a whole number of grams, not true/false")
        if isinstance(value, str) and ambiguous_grams(value):  # "1.000" would be taken as 1
            raise ValueError(ambiguous_grams(value))
        return value

    def row(self, sku: str) -> dict[str, str]:
        """The catalog file's columns, as text (what catalog.parse_item reads)."""
        fields = {name: _text(getattr(self, name)) for name in (*COLUMNS, *OPTIONAL_COLUMNS)
                  if name not in ("sku", "battery")}
        return {"sku": sku, **fields, "battery": "yes" if self.battery else "no"}


class CatalogItemIn(_ItemFields):
    """One item to upsert (``PUT /v1/items/{sku}``)."""

    sku: str | None = Field(None, description="optional; when given it must equal the SKU in the path")


class CatalogItemRow(_ItemFields):
    """One row of ``POST /v1/items/bulk`` (JSON)."""

    sku: str = Field(description="the seller SKU", json_schema_extra=_TEXT)


class CatalogItemOut(BaseModel):
    """An item of the item master; numbers other than the weight are exact decimal text."""

    sku: str
    weight_g: int
    length_cm: str
    width_cm: str
    height_cm: str
    name_en: str
    name_cn: str
    hs_code: str
    declared_value: str
    declared_currency: str
    battery: bool
    category: str
    source: Literal["api", "file"] = Field(description="api: upserted through this API (stored in the "
                                                       "ledger); file: from the catalog file")

    @classmethod
    def of(cls, item: CatalogItem, source: Literal["api", "file"]) -> CatalogItemOut:
        return cls(sku=item.sku, weight_g=item.weight_g, length_cm=str(item.length_cm),
                   width_cm=str(item.width_cm), height_cm=str(item.height_cm), name_en=item.name_en,
                   name_cn=item.name_cn, hs_code=item.hs_code, declared_value=str(item.declared_value.amount),
                   declared_currency=item.declared_value.currency, battery=item.has_battery,
                   category=item.category, source=source)


class CatalogItemPage(BaseModel):
    items: list[CatalogItemOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: the last page")


class CatalogItemUpserted(BaseModel):
    item: CatalogItemOut
    released: list[str] = Field(description="orders held unknown_sku released by this upsert")


class BulkRowError(BaseModel):
    row: int = Field(description="JSON: the item's 1-based index; CSV: the line number")
    sku: str | None = Field(description="the row's SKU as sent (null: none)")
    field: str = Field(description="the column or field; 'row' when the row as a whole is wrong")
    message: str


class BulkUpsertResult(BaseModel):
    upserted: int = Field(description="rows stored (every row without an error)")
    errors: list[BulkRowError] = Field(description="the rows not stored, and why (one entry per problem)")
    released: list[str] = Field(description="orders held unknown_sku released by this upsert")


# -- routes ----------------------------------------------------------------------------------------

@router.get("/items", response_model=CatalogItemPage,
            summary="The item master, by SKU (the API's rows and the file)")
def list_items(request: Request, _token: ApiToken = Depends(require("read")),
               cursor: str | None = Query(None, description="next_cursor of the previous page"),
               limit: int = Query(100, ge=1, description="items per page (capped by api.page_size_max)"),
               ) -> CatalogItemPage:
    rt = request.app.state.rt
    limit = min(limit, rt.config.api.page_size_max)
    page, more = rt.catalog.page(cursor or None, limit)
    items = [CatalogItemOut.of(item, source) for item, source in page]
    return CatalogItemPage(items=items, next_cursor=items[-1].sku if more and items else None)


@router.get("/items/{sku:path}", response_model=CatalogItemOut, summary="One item, and where it comes from",
            responses={404: documented("No item has this SKU")})
def get_item(request: Request, sku: str, _token: ApiToken = Depends(require("read"))) -> CatalogItemOut:
    item, source = request.app.state.rt.catalog.lookup(sku)
    if item is None or source is None:
        raise ApiProblem(404, "Not found", f"SKU {sku!r} is neither in the item master nor in the "
                         "catalog file", kind="unknown-sku")
    return CatalogItemOut.of(item, source)


@router.put("/items/{sku:path}", response_model=CatalogItemUpserted, summary="Create or replace one item",
            responses={422: documented("A field is missing or wrong (errors names it)")})
def put_item(request: Request, body: CatalogItemIn,
             sku: str = Path(description="the seller SKU", pattern=r"^\S(.*\S)?$"),
             _token: ApiToken = Depends(require("operate"))) -> CatalogItemUpserted:
    rt = request.app.state.rt
    if sku != sku.strip():  # the row check would strip it: the item stored would not be the path's
        raise ApiProblem(422, "Invalid request", f"SKU {sku!r} has leading or trailing space",
                         kind="invalid-request", errors=[{"field": "sku", "message": "no leading or trailing "
                                                          "space"}])
    if body.sku is not None and body.sku != sku:
        raise ApiProblem(422, "Invalid request", f"the body's sku {body.sku!r} is not the path's {sku!r}",
                         kind="invalid-request", errors=[{"field": "sku", "message": "must equal the SKU "
                                                          "in the path"}])
    item, problems = parse_item(body.row(sku))
    if item is None:
        raise ApiProblem(422, "Invalid request", "check " + ", ".join(dict.fromkeys(f for f, _ in problems)),
                         kind="invalid-request", errors=[{"field": f, "message": m} for f, m in problems])
    rt.ledger.put_items([item])
    return CatalogItemUpserted(item=CatalogItemOut.of(item, "api"), released=_release(rt))


_ROW_SCHEMA = CatalogItemRow.model_json_schema()
_BULK_BODY = {
    "required": True,
    "description": "JSON: a list of items, or {\"items\": [...]}. CSV: the catalog file's columns with a "
                   "header row (" + ",".join((*COLUMNS, *OPTIONAL_COLUMNS)) + "; category may be left out).",
    "content": {
        "application/json": {"schema": {"anyOf": [
            {"type": "array", "items": _ROW_SCHEMA},
            {"type": "object", "properties": {"items": {"type": "array", "items": _ROW_SCHEMA}},
             "required": ["items"], "additionalProperties": False},
        ]}},
        "text/csv": {"schema": {"type": "string"},
                     "example": ",".join(COLUMNS) + "\nPHONE-CASE-01,60,18,10,2,Silicone phone case,"
                                "硅胶手机壳,392690,2.50,USD,no\n"},
    },
}


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post("/items/bulk", response_model=BulkUpsertResult,
             summary="Upsert many items; bad rows are reported",
             openapi_extra={"requestBody": _BULK_BODY},
             responses={415: documented("The body is neither application/json nor text/csv"),
                        422: documented("The body cannot be read (JSON syntax, CSV header); "
                                          "detail names the line")})
def bulk_items(request: Request, _token: ApiToken = Depends(require("operate")),
               raw: bytes = Depends(_raw_body)) -> BulkUpsertResult:
    rt = request.app.state.rt
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        rows = _json_rows(raw)
    elif media_type == "text/csv":
        rows = _csv_rows(raw)
    else:
        raise ApiProblem(415, "Unsupported media type", f"send application/json or text/csv, not "
                         f"{media_type or 'no Content-Type'}", kind="unsupported-media-type")
    items: dict[str, CatalogItem] = {}
    first_row: dict[str, int] = {}
    errors: list[BulkRowError] = []
    for number, sku, row, problems in rows:
        item = None
        if not problems:
            assert row is not None
            item, problems = parse_item(row)
        if item is not None and item.sku in items:
            problems = [("sku", f"SKU {item.sku} appears twice (first on row {first_row[item.sku]}); "
                                "this row was not applied")]
            item = None
        if item is None:
            errors += [BulkRowError(row=number, sku=sku, field=f, message=m) for f, m in problems]
            continue
        items[item.sku], first_row[item.sku] = item, number
    upserted = rt.ledger.put_items(list(items.values()))
    return BulkUpsertResult(upserted=upserted, errors=errors, released=_release(rt) if upserted else [])


# -- helpers ---------------------------------------------------------------------------------------

# A row: (its number, its SKU as sent, the catalog columns as text -- or None -- and its problems).
_Row = tuple[int, str | None, dict[str, Any] | None, list[tuple[str, str]]]


def _unreadable(detail: str, field: str, message: str) -> ApiProblem:
    return ApiProblem(422, "Unreadable body", detail, kind="unreadable-body",
                      errors=[{"field": field, "message": message}])


def _json_rows(raw: bytes) -> list[_Row]:
    try:
        data = json.loads(raw, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise _unreadable(f"line {exc.lineno}, column {exc.colno}: {exc.msg}", "body",
                          f"not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, an integer too long, nested too deep
        reason = "nested too deep" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise _unreadable(f"not readable JSON: {reason}", "body", f"not readable JSON: {reason}") from None
    if isinstance(data, dict) and set(data) == {"items"}:
        data = data["items"]
    if not isinstance(data, list):
        raise _unreadable("send a list of items, or {\"items\": [...]}", "body",
                          "must be a list of items, or an object with only items")
    out: list[_Row] = []
    for number, entry in enumerate(data, start=1):
        raw_sku = entry.get("sku") if isinstance(entry, dict) else None
        # As sent, but half a surrogate pair ("\ud83d") as that escape: the answer's JSON cannot carry it
        sku = (raw_sku.strip().encode("utf-8", "backslashreplace").decode("utf-8") or None
               if isinstance(raw_sku, str) else None)
        if not isinstance(entry, dict):
            out.append((number, None, None, [("row", "must be an object with the item's fields")]))
            continue
        try:
            model = CatalogItemRow.model_validate(entry)
        except ValidationError as exc:
            out.append((number, sku, None, [(".".join(str(p) for p in e["loc"]) or "row", e["msg"])
                                            for e in exc.errors(include_url=False)]))
            continue
        out.append((number, sku, model.row(model.sku), []))
    return out


def _csv_rows(raw: bytes) -> list[_Row]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise _unreadable(f"line {line}: not UTF-8", "body", f"line {line}: not UTF-8") from None
    lines = csv_lines(text)
    reader = csv.DictReader(lines)
    out: list[_Row] = []
    try:
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise _unreadable("line 1: missing column(s): " + ", ".join(missing), "body",
                              "line 1: the header row lacks " + ", ".join(missing))
        for line, row in csv_item_rows(reader, lines):
            if isinstance(row, str):  # a quote left open, an unquoted comma: its values would shift
                out.append((line, None, None, [("row", row)]))
                continue
            sku = str(row.get("sku") or "").strip() or None
            out.append((line, sku, row, []))
    except csv.Error as exc:
        where = f"line {reader.line_num}: {exc}"
        raise _unreadable(where, "body", where) from None
    return out


def _text(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX:
        return str(_MAX if value > 0 else -_MAX)  # refused by parse_item; str() of a huge int may raise
    return str(value)


def _release(rt: Any) -> list[str]:
    return release_known_skus(rt) if rt.config.api.auto_release_unknown_sku else []
