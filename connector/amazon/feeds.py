"""Feeds API 2021-06-30 for shipment confirmation in bulk, and the flat-file document it carries.

The six calls, each through :meth:`SpApiClient.call` (the account's token buckets, the access
token, the retry policy, one log line per request):

* ``createFeedDocument`` (0.5/s, burst 15) -- a ``feedDocumentId`` and a pre-signed upload URL;
* the upload: an HTTP ``PUT`` of the document to that URL (not an SP-API call: no access token,
  no quota; Amazon's storage answers it);
* ``createFeed`` (0.0083/s, burst 15: one feed every two minutes once the burst is spent);
* ``getFeed`` (2/s, burst 15) -- ``processingStatus`` IN_QUEUE, IN_PROGRESS, then DONE, FATAL
  or CANCELLED, and ``resultFeedDocumentId`` when there is a processing report;
* ``getFeedDocument`` (0.0222/s, burst 10) -- a pre-signed URL to download the report
  (``compressionAlgorithm`` GZIP when it is compressed);
* ``cancelFeed`` (2/s, burst 15) -- ``DELETE`` of a feed Amazon has not started (IN_QUEUE): it
  is never processed, and getFeed shows it CANCELLED. A feed in any other state is refused (400).

Those quotas are the published defaults of the model's operation descriptions
(https://github.com/amzn/selling-partner-api-models/blob/main/models/feeds-api-model/feeds_2021-06-30.json);
they are added to the client's limiter with ``add_defaults`` (configuration wins). The table,
:data:`FEEDS_QUOTAS`, lives in :mod:`connector.ratelimit`: the configuration check reads its names.

The document is ``POST_FLAT_FILE_FULFILLMENT_DATA``: tab-separated, a header line, then one line
per order item of a package (order-id, order-item-id, quantity, ship-date, carrier-code,
carrier-name, tracking-number, ship-method). Amazon's processing report of a flat-file feed is
tab-separated text: a summary ("Number of records processed / successful"), then one line per
problem with ``original-record-number``, ``error-code``, ``error-type`` (Error or Warning) and
``error-message`` (https://sellercentral.amazon.com/gp/help/external/201576740). Record numbers
count data lines from ``first_record_number`` (1: the line after the header), a detail Amazon's
pages do not pin down for this template, hence a parameter.
"""

from __future__ import annotations

import gzip
import logging
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import requests

from ..ratelimit import FEEDS_QUOTAS
from .client import SpApiClient
from .errors import TransientError

log = logging.getLogger("connector.amazon")

FEEDS_PATH = "/feeds/2021-06-30/feeds"
FEED_PATH = "/feeds/2021-06-30/feeds/{feedId}"
DOCUMENTS_PATH = "/feeds/2021-06-30/documents"
DOCUMENT_PATH = "/feeds/2021-06-30/documents/{feedDocumentId}"

FULFILLMENT_FEED_TYPE = "POST_FLAT_FILE_FULFILLMENT_DATA"
FLAT_FILE_CONTENT_TYPE = "text/tab-separated-values; charset=UTF-8"
FLAT_FILE_COLUMNS = (
    "order-id",
    "order-item-id",
    "quantity",
    "ship-date",
    "carrier-code",
    "carrier-name",
    "tracking-number",
    "ship-method",
)

PROCESSING = ("IN_QUEUE", "IN_PROGRESS")
FINISHED = ("DONE", "FATAL", "CANCELLED")

_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_TRANSFER_ATTEMPTS = 3


# -- the document ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedRow:
    """One data line of the document: an order item of one package."""

    order_id: str
    order_item_id: str
    quantity: int
    ship_date: datetime
    carrier_code: str
    tracking_number: str
    carrier_name: str = ""
    ship_method: str = ""


def _cell(name: str, value: str) -> str:
    if "\t" in value or "\n" in value or "\r" in value:
        raise ValueError(f"feed row: {name} must not contain tabs or line breaks")
    return value


def ship_date_text(value: datetime) -> str:
    """ISO 8601 in UTC to the second (``2026-01-31T09:00:00+00:00``)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("feed row: ship-date must be timezone-aware")
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def build_flat_file(rows: Sequence[FeedRow]) -> bytes:
    """The ``POST_FLAT_FILE_FULFILLMENT_DATA`` document (UTF-8): the header, then one line per row,
    in order (line n+1 is record n). ValueError for a row Amazon could not read."""
    if not rows:
        raise ValueError("a fulfillment feed needs at least one row")
    lines = ["\t".join(FLAT_FILE_COLUMNS)]
    for row in rows:
        if not row.order_id or not row.order_item_id or not row.tracking_number or not row.carrier_code:
            raise ValueError(
                f"feed row for order {row.order_id!r}: order id, order item id, carrier code "
                "and tracking number are required"
            )
        if isinstance(row.quantity, bool) or not isinstance(row.quantity, int) or row.quantity < 1:
            raise ValueError(f"feed row for order {row.order_id}: quantity must be a positive integer")
        cells = (
            row.order_id,
            row.order_item_id,
            str(row.quantity),
            ship_date_text(row.ship_date),
            row.carrier_code,
            row.carrier_name,
            row.tracking_number,
            row.ship_method,
        )
        lines.append("\t".join(_cell(n, v) for n, v in zip(FLAT_FILE_COLUMNS, cells, strict=True)))
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class RowResult:
    """One line of the report's problem list."""

    record: int  # original-record-number
    error_code: str
    error_type: str  # "Error" or "Warning"
    message: str
    order_id: str = ""

    @property
    def is_error(self) -> bool:
        return self.error_type.strip().lower() != "warning"


@dataclass
class ProcessingReport:
    processed: int | None = None
    successful: int | None = None
    results: list[RowResult] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # errors that name no record (the whole file's)

    def errors_by_record(self) -> dict[int, list[RowResult]]:
        out: dict[int, list[RowResult]] = {}
        for result in self.results:
            if result.is_error:
                out.setdefault(result.record, []).append(result)
        return out


_SUMMARY = {"number of records processed": "processed", "number of records successful": "successful"}


def parse_processing_report(content: bytes) -> ProcessingReport:
    """A flat-file feed's processing report (see the module docstring). Columns are found by their
    header names, so extra columns (sku, order-id...) and their order do not matter. ValueError
    when the text has neither a summary nor a problem list."""
    text = content.decode("utf-8-sig", errors="replace")
    report = ProcessingReport()
    header: list[str] | None = None
    seen_summary = False
    for raw in text.splitlines():
        if not raw.strip():
            continue
        cells = [c.strip() for c in raw.split("\t")]
        words = [c for c in cells if c]
        label = words[0].rstrip(":").lower() if words else ""
        if label in _SUMMARY and len(words) >= 2:
            try:
                setattr(report, _SUMMARY[label], int(words[-1]))
                seen_summary = True
            except ValueError:
                pass
            continue
        lowered = [c.lower() for c in cells]
        if "original-record-number" in lowered:
            header = lowered
            continue
        if header is None:
            continue
        row = dict(zip(header, cells, strict=False))
        try:
            record = int(row.get("original-record-number", ""))
        except ValueError:
            record = 0
        if record < 1:  # no record of ours: kept, it may say that none was processed
            if row.get("error-code") or row.get("error-message"):
                report.unplaced.append(f"{row.get('error-code', '')} {row.get('error-message', '')}".strip())
            continue
        report.results.append(
            RowResult(
                record=record,
                error_code=row.get("error-code", ""),
                error_type=row.get("error-type", "Error") or "Error",
                message=row.get("error-message", ""),
                order_id=row.get("order-id", ""),
            )
        )
    if not seen_summary and header is None:
        raise ValueError("not a flat-file processing report (no summary, no original-record-number column)")
    return report


# -- the calls ------------------------------------------------------------------------------------


class FeedsClient:
    """The Feeds API of one seller account, on that account's :class:`SpApiClient`."""

    def __init__(self, client: SpApiClient) -> None:
        self.client = client
        client.limiter.add_defaults(FEEDS_QUOTAS)

    @property
    def account(self) -> str:
        return self.client.account

    def available(self, operation: str) -> float:
        """Tokens the account's bucket for ``operation`` holds now (no waiting)."""
        return self.client.limiter.bucket(self.client.account, operation).available

    def create_feed_document(self, content_type: str = FLAT_FILE_CONTENT_TYPE) -> dict[str, str]:
        """``{"feedDocumentId", "url"}``. Not idempotent: an unknown outcome just leaves an unused
        document on Amazon's side (harmless; it expires)."""
        body = self.client.call(
            "createFeedDocument", "POST", DOCUMENTS_PATH, json={"contentType": content_type}
        )
        if not isinstance(body, dict) or not body.get("feedDocumentId") or not body.get("url"):
            raise TransientError(
                "createFeedDocument answered without feedDocumentId and url",
                status=200,
                operation="createFeedDocument",
            )
        return {"feedDocumentId": str(body["feedDocumentId"]), "url": str(body["url"])}

    def upload(self, url: str, content: bytes, content_type: str = FLAT_FILE_CONTENT_TYPE) -> None:
        """PUT the document to the pre-signed URL. The same bytes again overwrite the same object,
        so a lost answer is retried (a few times, then TransientError)."""
        self._transfer("uploadFeedDocument", "PUT", url, data=content, headers={"Content-Type": content_type})

    def create_feed(
        self,
        feed_document_id: str,
        marketplace_ids: Sequence[str],
        feed_type: str = FULFILLMENT_FEED_TYPE,
        feed_options: Mapping[str, str] | None = None,
    ) -> str:
        """The new ``feedId``. A write: an unknown outcome raises TransientError(ambiguous=True)."""
        ids = list(dict.fromkeys(marketplace_ids))
        if not 1 <= len(ids) <= 25:
            raise ValueError(f"createFeed takes 1 to 25 marketplace ids, got {len(ids)}")
        spec: dict[str, Any] = {
            "feedType": feed_type,
            "marketplaceIds": ids,
            "inputFeedDocumentId": feed_document_id,
        }
        if feed_options:
            spec["feedOptions"] = dict(feed_options)
        body = self.client.call("createFeed", "POST", FEEDS_PATH, json=spec)
        if not isinstance(body, dict) or not body.get("feedId"):
            raise TransientError(
                "createFeed answered without a feedId", status=202, operation="createFeed", ambiguous=True
            )
        return str(body["feedId"])

    def get_feed(self, feed_id: str) -> dict[str, Any]:
        """The ``Feed`` (``processingStatus``, ``resultFeedDocumentId``...)."""
        body = self.client.call(
            "getFeed", "GET", FEED_PATH.format(feedId=quote(feed_id, safe="")), idempotent=True
        )
        if not body.get("processingStatus"):
            raise TransientError(
                "getFeed answered without a processingStatus", status=200, operation="getFeed"
            )
        return body

    def cancel_feed(self, feed_id: str) -> None:
        """Cancel a feed still IN_QUEUE (Amazon answers 200 without a body). InvalidInputError
        when Amazon refuses (the feed is no longer IN_QUEUE), NotFoundError for a feed it does not
        know. A write: an unknown outcome raises TransientError(ambiguous=True), since cancelling
        the feed again would be refused whether or not the first cancel took."""
        self.client.call("cancelFeed", "DELETE", FEED_PATH.format(feedId=quote(feed_id, safe="")))

    def get_feed_document(self, feed_document_id: str) -> dict[str, Any]:
        """``{"feedDocumentId", "url", "compressionAlgorithm"?}`` of a (result) document."""
        body = self.client.call(
            "getFeedDocument",
            "GET",
            DOCUMENT_PATH.format(feedDocumentId=quote(feed_document_id, safe="")),
            idempotent=True,
        )
        if not body.get("url"):
            raise TransientError(
                "getFeedDocument answered without a url", status=200, operation="getFeedDocument"
            )
        return body

    def download(self, document: Mapping[str, Any]) -> bytes:
        """The document's bytes, decompressed when ``compressionAlgorithm`` is GZIP."""
        content = self._transfer("downloadFeedDocument", "GET", str(document["url"]))
        if str(document.get("compressionAlgorithm") or "").upper() == "GZIP":
            try:
                content = gzip.decompress(content)
            except (OSError, EOFError, zlib.error) as exc:  # a bad header, cut short, not deflate data
                raise TransientError(
                    f"the report is not valid gzip: {exc}", operation="downloadFeedDocument"
                ) from exc
        return content

    def _transfer(
        self,
        what: str,
        method: str,
        url: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """One request to a pre-signed storage URL, retried on network errors and 5xx; any other
        failure of requests is a TransientError at once. Never logs the URL (its query is a
        credential), nor chains the error that may quote it."""
        last: Exception | None = None
        for attempt in range(1, _TRANSFER_ATTEMPTS + 1):
            started = time.monotonic()
            try:
                resp = self.client.session.request(
                    method,
                    url,
                    data=data,
                    headers=dict(headers or {}),
                    timeout=self.client.timeout,
                    allow_redirects=False,
                )
            except _NETWORK_ERRORS as exc:
                last = TransientError(f"no answer: {type(exc).__name__}", operation=what)
                status = type(exc).__name__
            except requests.RequestException as exc:  # an answer it cannot decode, a URL it refuses
                self._log(what, type(exc).__name__, started, attempt)
                raise TransientError(f"no readable answer: {type(exc).__name__}", operation=what) from None
            else:
                status = str(resp.status_code)
                if 200 <= resp.status_code < 300:
                    self._log(what, status, started, attempt)
                    return resp.content
                last = TransientError(
                    f"HTTP {resp.status_code} from the document storage",
                    status=resp.status_code,
                    operation=what,
                )
                if resp.status_code < 500:
                    self._log(what, status, started, attempt)
                    raise last  # an expired or refused URL: asking again will not help
            self._log(what, status, started, attempt)
            if attempt < _TRANSFER_ATTEMPTS:
                self.client.limiter.pause(min(2.0 ** (attempt - 1), 5.0), f"a retry of {what}")
        assert last is not None
        raise last

    def _log(self, what: str, status: str, started: float, attempt: int) -> None:
        log.info(
            "spapi account=%s operation=%s status=%s duration_ms=%d attempt=%d",
            self.client.account,
            what,
            status,
            int((time.monotonic() - started) * 1000),
            attempt,
        )


__all__ = [
    "FEEDS_QUOTAS",
    "FINISHED",
    "FLAT_FILE_COLUMNS",
    "FLAT_FILE_CONTENT_TYPE",
    "FULFILLMENT_FEED_TYPE",
    "FeedRow",
    "FeedsClient",
    "PROCESSING",
    "ProcessingReport",
    "RowResult",
    "build_flat_file",
    "parse_processing_report",
]
