"""Item master: SKU -> weight, dimensions, customs names (English and Chinese), HS code,
declared value and battery flag, from a CSV or YAML file -- and the SKUs upserted through the
HTTP API, kept in the ledger (:class:`LayeredCatalog`: the ledger's rows over the file).

Every row is checked on load; a bad row is reported with file, line and column name, and the
whole file is refused (a half-loaded catalog would hold orders for the wrong reason). The API's
rows go through the same check (:func:`parse_item`).
"""
from __future__ import annotations

import bisect
import csv
import difflib
import logging
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

from .config import ConfigError, Problem, compose, read_text, too_deep, unprintable
from .fx import ISO_4217
from .ledger.base import unstorable_text
from .model import CatalogItem, Money

log = logging.getLogger("connector.catalog")

MAX_SKU = 100  # Amazon's seller SKUs have at most 40; room for a warehouse's own codes
COLUMNS = ("sku", "weight_g", "length_cm", "width_cm", "height_cm", "name_en", "name_cn", "hs_code",
           "declared_value", "declared_currency", "battery")
OPTIONAL_COLUMNS = ("category",)  # Amazon's product category, for the VTR report (empty: none)
_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0", ""}
MAX_DIGITS = 12  # digits before the decimal point of any number in a row
# 1.000 in grams: 1 with a decimal point, or 1000 where "." separates thousands (de, fr, es, ...)
_THOUSANDS = re.compile(r"\d{1,3}(\.\d{3})+")


class Catalog:
    def __init__(self, items: dict[str, CatalogItem], source: str = "") -> None:
        self.items = items
        self.source = source

    def get(self, sku: str) -> CatalogItem | None:
        return self.items.get(sku)

    def __len__(self) -> int:
        return len(self.items)


class ItemSource(Protocol):
    """Where the item master's own rows live (the ledger: :class:`connector.ledger.items.ItemStore`)."""

    def get_item(self, sku: str) -> CatalogItem | None: ...

    def items_page(self, after_sku: str | None, limit: int) -> list[CatalogItem]: ...

    def item_skus(self) -> list[str]: ...


Origin = Literal["api", "file"]


class LayeredCatalog:
    """The catalog the engine reads: the ledger's rows (SKUs upserted through the API) first, then
    the file. Nothing of the ledger is cached: the daemon and the API may be separate processes,
    and a lookup is one query on the primary key."""

    def __init__(self, store: ItemSource, file: Catalog) -> None:
        self.store = store
        self.file = file
        self.source = file.source
        self._file_skus = sorted(file.items)

    def get(self, sku: str) -> CatalogItem | None:
        return self.lookup(sku)[0]

    def lookup(self, sku: str) -> tuple[CatalogItem | None, Origin | None]:
        """The item and where it came from ("api": the ledger, "file"), or (None, None)."""
        item = self.store.get_item(sku)
        if item is not None:
            return item, "api"
        item = self.file.get(sku)
        return (item, "file") if item is not None else (None, None)

    def page(self, after_sku: str | None, limit: int) -> tuple[list[tuple[CatalogItem, Origin]], bool]:
        """Up to ``limit`` items after ``after_sku`` (None: from the start), sorted by SKU, the
        ledger's row winning over the file's; and whether more follow."""
        start = 0 if after_sku is None else bisect.bisect_right(self._file_skus, after_sku)
        merged: dict[str, tuple[CatalogItem, Origin]] = {
            sku: (self.file.items[sku], "file") for sku in self._file_skus[start:start + limit + 1]}
        merged.update((i.sku, (i, "api")) for i in self.store.items_page(after_sku, limit + 1))
        skus = sorted(merged)[:limit + 1]
        return [merged[s] for s in skus[:limit]], len(skus) > limit

    def __len__(self) -> int:
        return len(set(self.file.items).union(self.store.item_skus()))


def shown_sku(sku: str) -> str:
    """``sku`` as a message shows it: escaped, and said so, when it holds characters a reader cannot
    see (a zero-width space, a trailing blank), which make it look like a catalog SKU it is not."""
    if sku.isprintable() and sku == sku.strip():
        return sku
    return f"{ascii(sku)} (it holds invisible characters)"


def load_catalog(path: str | Path) -> Catalog:
    path = Path(path)
    text = read_text(path, "the catalog", encoding="utf-8-sig")
    as_yaml = path.suffix.lower() in (".yaml", ".yml")
    rows = _yaml_rows(path, text) if as_yaml else _csv_rows(path, text)
    items: dict[str, CatalogItem] = {}
    problems: list[Problem] = []
    columns: dict[str, int] = {}  # every column (key) the file uses -> its line: a CSV's header
    for line, row in rows:
        for column in row if isinstance(row, dict) else ():  # a YAML item may be anything
            columns.setdefault(str(column), line if as_yaml else 1)
        item, row_problems = _parse_row(str(path), line, row)
        problems += row_problems
        if item is None:
            continue
        if item.sku in items:
            problems.append(Problem(str(path), line, "sku", f"SKU {item.sku} appears twice"))
        items[item.sku] = item
    if problems:
        raise ConfigError(problems)
    _warn_of_misspelled_columns(path, columns)
    return Catalog(items, str(path))


def _warn_of_misspelled_columns(path: Path, columns: dict[str, int]) -> None:
    """Columns of the file's own (an ERP's notes) are ignored, but one that is nearly a catalog
    column is most likely that column misspelled, and its values would be lost without a word."""
    known = (*COLUMNS, *OPTIONAL_COLUMNS)
    for column, line in columns.items():
        if column in known:
            continue
        near = difflib.get_close_matches(column.strip().lower(), known, n=1, cutoff=0.8)
        if near:
            log.warning("%s:%d: column %r is not a catalog column and is ignored; did you mean %r?",
                        path, line, column, near[0])


def ambiguous_grams(raw: str) -> str:
    """Why a weight in grams written ``raw`` is not taken ("" when it is): a point before groups of
    three digits reads one way in one locale and 1000 times heavier in another; guessing would buy
    labels for the wrong weight."""
    raw = raw.strip()
    if not _THOUSANDS.fullmatch(raw):
        return ""
    return (f"{raw} is ambiguous (a decimal point, or '.' between thousands?): write whole grams without "
            f"separators, e.g. {raw.replace('.', '')}")


def parse_item(row: dict[str, Any]) -> tuple[CatalogItem | None, list[tuple[str, str]]]:
    """One item given as the catalog's columns (the API's rows): the item, or a (column, message)
    for each problem -- the file's own check, so a row the file would refuse is refused here too."""
    item, problems = _parse_row("", 0, row)
    return item, [(p.path, p.message) for p in problems]


class _Unreadable(str):
    """A CSV row that cannot be taken as an item; the text says why."""


# Where a CSV line ends: str.splitlines() also breaks at U+2028, NEL, form feed..., which a value may hold
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _csv_rows(path: Path, text: str) -> Iterable[tuple[int, dict[str, Any] | _Unreadable]]:
    lines = csv_lines(text)
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in header]
    # a blank header cell (a spreadsheet's empty column) names nothing: ignored like a column of one's own
    twice = sorted({c for c in header if c.strip() and header.count(c) > 1})
    problems = [Problem(str(path), 1, c, "appears twice in the header") for c in twice]
    if missing:
        problems.insert(0, Problem(str(path), 1, "", "missing column(s): " + ", ".join(missing)))
    if problems:
        raise ConfigError(problems)
    yield from csv_item_rows(reader, lines)


def csv_lines(text: str) -> list[str]:
    """``text`` cut into lines where CSV ends them (CR, LF, CRLF), for :func:`csv_item_rows`."""
    lines = _LINE_BREAK.split(text)
    if lines and not lines[-1]:  # the last line's own line break starts no line
        lines.pop()
    return lines


def csv_item_rows(reader: csv.DictReader, lines: list[str]) -> Iterable[tuple[int, dict[str, Any] | str]]:
    """Each row of ``reader`` (over ``lines``, its header read) with its line: the row, or -- a
    :class:`str` -- why it cannot be taken as an item (the catalog file's and the API's CSV alike)."""
    header = reader.fieldnames or []
    last = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a value past the module's size limit, say: the rest is not read
            first = last + 1
            while first < len(lines) and not lines[first - 1]:
                first += 1
            yield first, _Unreadable(_csv_error(exc))
            return
        first, last = last + 1, reader.line_num
        while first < last and not lines[first - 1]:  # an empty line the reader skipped: no row
            first += 1
        if last > first:  # a value never spans lines: a quote opened here was not closed
            yield first, _Unreadable(f"a quote opened on this line is still open at line {last} "
                                     "(a quote inside a value is written twice: \"\")")
        elif None in row:  # more values than the header has columns
            yield last, _Unreadable(f"{len(header) + len(row[None])} values for {len(header)} columns "
                                    "(a value with a comma in it goes in double quotes)")
        else:
            yield last, row


def _csv_error(exc: csv.Error) -> str:
    if "field limit" in str(exc):  # a quote left open made the rest of the file one value
        return (f"a quote opened on this line is never closed: the rest of the file was read as one value "
                f"of more than {csv.field_size_limit()} characters (a quote inside a value is written "
                "twice: \"\")")
    return f"cannot be read as CSV from this line on ({exc})"


def _yaml_rows(path: Path, text: str) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        node = compose(str(path), text, "the catalog")
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError([Problem(str(path), line, "", f"YAML syntax error: {exc.problem}")]) from None
    except yaml.reader.ReaderError as exc:  # valid UTF-8, but a character YAML does not take
        raise unprintable(str(path), text, exc, "the catalog") from None
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError([Problem(str(path), 1, "", "the catalog must be a list of items")])
    for item in node.value:
        try:
            row = yaml.safe_load(yaml.serialize(item)) or {}
        except RecursionError:  # composed, but written out and read again a level deeper each time
            raise ConfigError([Problem(str(path), item.start_mark.line + 1, "",
                                       too_deep("the catalog"))]) from None
        except (yaml.YAMLError, ValueError, TypeError, AttributeError):  # e.g. a tag like !vault
            raise ConfigError([Problem(str(path), item.start_mark.line + 1, "",
                                       "a value in this item cannot be read (only YAML's standard "
                                       "types are supported: write it without its tag)")]) from None
        if isinstance(row, dict) and isinstance(item, yaml.MappingNode):
            row.update(_as_written(item))
        yield item.start_mark.line + 1, row


# Columns that are text whatever they look like: an SKU or HS code of digits is not a number
# (unquoted, YAML reads 0012345 as octal 5349 and 12_345 as 12345)
_TEXT_COLUMNS = frozenset({"sku", "name_en", "name_cn", "hs_code", "declared_currency", "category"})
# ... and the weight, judged as a CSV's is: YAML reads 1.000 as the number 1.0 (see ambiguous_grams)
_AS_WRITTEN = _TEXT_COLUMNS | {"weight_g"}


def _as_written(item: yaml.MappingNode) -> dict[str, str]:
    """The text columns' and the weight's unquoted values exactly as the file writes them."""
    return {key.value: value.value for key, value in item.value
            if isinstance(key, yaml.ScalarNode) and key.value in _AS_WRITTEN
            and isinstance(value, yaml.ScalarNode) and value.style is None
            and value.tag != "tag:yaml.org,2002:null"}


def _parse_row(file: str, line: int, row: Any) -> tuple[CatalogItem | None, list[Problem]]:
    if isinstance(row, _Unreadable):
        return None, [Problem(file, line, "", str(row))]
    if not isinstance(row, dict):  # a YAML item that is a number, a string, a list...
        return None, [Problem(file, line, "", "an item must be a mapping of the catalog's columns "
                                              "(sku: ..., weight_g: ...)")]
    problems: list[Problem] = []

    def bad(column: str, message: str) -> None:
        problems.append(Problem(file, line, column, message))

    def text(column: str, required: bool = True) -> str:
        value = str(row.get(column) or "").strip()
        if required and not value:
            bad(column, "is required")
        elif unstorable_text(value):  # JSON's "\ud83d" alone (a character cut in two), or a NUL
            bad(column, f"is {unstorable_text(value)}, which the ledger cannot store")
        return value

    def number(column: str, *, integer: bool = False) -> Decimal:
        raw = text(column)
        if integer and ambiguous_grams(raw):
            bad(column, ambiguous_grams(raw))
            return Decimal(0)
        try:
            value = Decimal(raw)
        except InvalidOperation:
            if raw:
                bad(column, "must be a number")
            return Decimal(0)
        if not value.is_finite():
            bad(column, "must be a number")
            return Decimal(0)
        if value <= 0:
            bad(column, "must be greater than 0")
        elif value.adjusted() >= MAX_DIGITS:  # 1E+999999999 would take minutes to turn into an int
            bad(column, f"must be less than 1E+{MAX_DIGITS}")
        if integer and value != value.to_integral_value():
            bad(column, "must be a whole number")
        return value

    sku = text("sku")
    if len(sku) > MAX_SKU or not sku.isprintable():
        bad("sku", f"must be printable text of at most {MAX_SKU} characters")
    weight = number("weight_g", integer=True)
    dims = [number(c) for c in ("length_cm", "width_cm", "height_cm")]
    name_en, name_cn = text("name_en"), text("name_cn")
    hs_code = text("hs_code")
    if hs_code and not (hs_code.isascii() and hs_code.isdigit() and 6 <= len(hs_code) <= 10):
        bad("hs_code", "must be 6 to 10 digits")
    value = number("declared_value")
    currency = text("declared_currency").upper()
    if currency and not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        bad("declared_currency", "must be a 3-letter ISO 4217 code")
    elif currency and currency not in ISO_4217:  # ZZZ would go on a customs declaration
        bad("declared_currency", "is not an ISO 4217 currency code (e.g. USD, EUR, CNY)")
    battery_raw = str(row.get("battery") or "").strip().lower()  # a short CSV row: None
    if battery_raw not in _TRUE | _FALSE:
        bad("battery", "must be yes or no")
    if problems:
        return None, problems
    return CatalogItem(sku=sku, weight_g=int(weight), length_cm=dims[0], width_cm=dims[1],
                       height_cm=dims[2], name_en=name_en, name_cn=name_cn, hs_code=hs_code,
                       declared_value=Money(value, currency), has_battery=battery_raw in _TRUE,
                       category=text("category", required=False)), []
