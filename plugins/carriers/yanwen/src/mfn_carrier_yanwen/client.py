"""Yanwen client: HTTP only; every request body and answer goes through mapping.py.

No retries here (the engine retries with back-off). Failures are classified for the engine:
network errors, timeouts, 5xx, 429, system errors (``code < 0``) and unreadable answers are
transient; signature/credential refusals are permanent and never carry the token.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import requests

from connector.carriers import Carrier, DuplicateReferenceError, PermanentCarrierError, TransientCarrierError
from connector.model import Quote, Shipment, ShipmentRequest, TrackingInfo
from connector.ratecard import RateCard
from connector.ratelimit import TokenBucket

from . import mapping
from .settings import BATTERY_SERVICES, SERVICES, YanwenSettings, resolve_settings

log = logging.getLogger(__name__)

_KNOWN_SERVICES = frozenset(s.code for s in SERVICES)


class YanwenCarrier(Carrier):
    """One configured Yanwen account (``carriers.yanwen`` in the YAML)."""

    code = "yanwen"

    def __init__(self, settings: dict[str, Any] | YanwenSettings, http: requests.Session | None = None,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings if isinstance(settings, YanwenSettings) else resolve_settings(settings)
        self.http = http if http is not None else requests.Session()
        self._clock = clock  # seconds since the epoch; the signed timestamp comes from it
        self._tracking_levels = {s.code: s.tracking_level for s in SERVICES}
        try:
            self.rate_card = RateCard.from_rows([dict(row) for row in self.settings.rate_card])
        except ValueError as exc:
            raise ValueError(f"carriers.yanwen.rate_card: {exc}") from None
        rate = self.settings.max_requests_per_second  # no limit is documented: off by default
        self._bucket = TokenBucket(rate, 1) if rate else None

    def __repr__(self) -> str:
        return f"YanwenCarrier({self.settings!r})"

    # -- operations ------------------------------------------------------------------------

    def quote(self, request: ShipmentRequest) -> list[Quote]:
        """``calc.list`` (``quote_source: api``) or the rate card; battery parcels are not quoted on
        the general-goods (普货) lines."""
        services = (request.service,) if request.service else self.settings.services
        if self.settings.quote_source == "api":
            body = mapping.build_calc_request(request, city_id=self.settings.calc_city_id)
            answer = self._call(mapping.CALC_LIST, body)
            quotes = mapping.parse_calc(answer, services=services, tracking_levels=self._tracking_levels)
        else:
            quotes = [replace(q, tracking_level=self._tracking_levels.get(q.service, ""))
                      for service in services
                      for q in self.rate_card.quote(self.code, replace(request, service=service))]
        if request.parcel.has_battery:
            quotes = [q for q in quotes if q.service not in _KNOWN_SERVICES or q.service in BATTERY_SERVICES]
        return quotes

    def create_shipment(self, request: ShipmentRequest) -> Shipment:
        """``express.order.create`` with ``orderNumber`` = ``request.reference``.

        A duplicate reference means an earlier attempt went through: the existing waybill is
        looked up (``express.order.getlist``) and returned instead of a second label being bought.
        """
        body = mapping.build_create_order(request, user_id=self.settings.user_id,
                                          order_source=self.settings.order_source)
        answer = self._call(mapping.ORDER_CREATE, body, reference=request.reference)
        try:
            return mapping.parse_create_order(answer, request, duplicate_codes=self.settings.duplicate_codes,
                                              duplicate_keywords=self.settings.duplicate_keywords)
        except DuplicateReferenceError as duplicate:
            log.info("yanwen create: reference %s already exists; looking it up", request.reference)
            existing = self.find_by_reference(request.reference)
            if existing is None:
                raise TransientCarrierError(
                    f"Yanwen refused {request.reference} as a duplicate but express.order.getlist finds "
                    "no live waybill under it", code=duplicate.code, carrier=self.code) from duplicate
            return existing

    def find_by_reference(self, reference: str) -> Shipment | None:
        """``express.order.getlist {listNumber: [reference]}``: the live waybill whose orderNumber
        is ``reference``; cancelled ones (``cancelled_statuses``) do not count."""
        answer = self._call(mapping.ORDER_LIST, mapping.build_lookup_request([reference]),
                            reference=reference)
        records = mapping.parse_order_records(answer, mapping.ORDER_LIST)
        shipment, live = mapping.shipment_for_reference(records, reference,
                                                        cancelled_statuses=self.settings.cancelled_statuses)
        if live > 1:
            log.warning("yanwen: %d live waybills carry reference %s; using %s", live, reference,
                        shipment.carrier_shipment_id if shipment else "-")
        return shipment

    def get_label(self, shipment: Shipment) -> bytes:
        """``express.order.label.get``: the PDF arrives base64-encoded in the answer."""
        waybill = shipment.carrier_shipment_id
        answer = self._call(mapping.ORDER_LABEL, mapping.build_label_request(waybill),
                            reference=shipment.reference)
        return mapping.parse_label(answer, waybill)

    def cancel(self, shipment: Shipment) -> bool:
        """``express.order.cancel`` by waybill number; only possible before Yanwen's first scan."""
        waybill = shipment.carrier_shipment_id
        body = mapping.build_cancel_request(waybill, self.settings.cancel_note)
        answer = self._call(mapping.ORDER_CANCEL, body, reference=shipment.reference)
        return mapping.parse_cancel(answer, waybill)

    def track(self, tracking_numbers: Iterable[str]) -> list[TrackingInfo]:
        """The tracking API, ``track_batch_size`` (at most 30) numbers per call, in input order."""
        numbers = list(dict.fromkeys(n.strip() for n in tracking_numbers if n and n.strip()))
        infos: dict[str, TrackingInfo] = {}
        for batch in mapping.chunks(numbers, self.settings.track_batch_size):
            answer = self._send("tracking", "GET", self.settings.tracking_url,
                                params=mapping.tracking_query(batch),
                                headers={"Authorization": self.settings.tracking_authorization,
                                         "Accept": "application/json"},
                                auth_error=mapping.tracking_credentials_error)
            infos.update(mapping.parse_tracking(answer, batch,
                                                default_offset_hours=self.settings.tracking_utc_offset_hours))
        return [infos[n] for n in numbers]

    # -- diagnostics (not carrier operations) -----------------------------------------------

    def channels(self) -> list[mapping.Channel]:
        """``express.channel.getlist``: the channels (services) this account may use."""
        return mapping.parse_channels(self._call(mapping.CHANNEL_LIST, {}))

    def get_order(self, waybill: str) -> mapping.OrderRecord | None:
        """``express.order.get`` for one waybill number (``None`` when Yanwen has none)."""
        answer = self._call(mapping.ORDER_GET, {"waybillNumber": waybill})
        records = mapping.parse_order_records(answer, mapping.ORDER_GET)
        return records[0] if records else None

    # -- HTTP ------------------------------------------------------------------------------

    def _timestamp(self) -> str:
        scale = 1_000_000 if self.settings.timestamp_unit == "us" else 1000
        return str(int(self._clock() * scale))

    def _call(self, method: str, data: Any, *, reference: str = "") -> Any:
        """One signed open-API call; returns the decoded JSON or raises a classified CarrierError."""
        query, body = mapping.signed_call(method, data, user_id=self.settings.user_id,
                                          api_token=self.settings.api_token, timestamp=self._timestamp())
        return self._send(method, "POST", self.settings.api_url, params=query, data=body.encode("utf-8"),
                          headers={"Content-Type": "application/json;charset=utf-8",
                                   "Accept": "application/json"},
                          reference=reference, auth_error=mapping.credentials_error)

    def _send(self, op: str, method: str, url: str, *, params: dict[str, str], headers: dict[str, str],
              auth_error: Callable[[str], PermanentCarrierError], data: bytes | None = None,
              reference: str = "") -> Any:
        if self._bucket is not None:
            self._bucket.acquire()
        started = time.monotonic()
        try:
            response = self.http.request(method, url, params=params, data=data, headers=headers,
                                         timeout=self.settings.timeouts)
        except requests.Timeout as exc:
            self._log(op, reference, started, f"timeout ({type(exc).__name__})")
            raise TransientCarrierError(
                f"Yanwen {op}: no answer within {self.settings.timeout_seconds:g}s ({type(exc).__name__}); "
                "the call may have taken effect", code="timeout", carrier=self.code) from exc
        except requests.RequestException as exc:  # the message may hold the signed URL: not echoed
            self._log(op, reference, started, f"network error ({type(exc).__name__})")
            raise TransientCarrierError(
                f"Yanwen {op}: {type(exc).__name__} talking to {url}; the call may have taken effect",
                code="network", carrier=self.code) from exc
        status = response.status_code
        decoded, json_error = _decode(response.content)
        self._log(op, reference, started, f"HTTP {status}")
        if status in (401, 403):
            raise auth_error(f"HTTP {status} on {op}")
        if status in (408, 425, 429) or status >= 500:
            raise TransientCarrierError(f"Yanwen {op}: HTTP {status}", code=f"http_{status}",
                                        carrier=self.code)
        if status >= 400:
            detail = _text(decoded.get("message")) if isinstance(decoded, dict) else ""
            raise PermanentCarrierError(f"Yanwen {op}: HTTP {status}{': ' + detail if detail else ''} "
                                        f"(check base_url / tracking_base_url)", code=f"http_{status}",
                                        carrier=self.code)
        if json_error is not None:
            text = response.content[:300].decode("utf-8", "replace").strip()
            if text and not text.startswith(("{", "[")) and mapping.is_auth_failure_text(text):
                raise auth_error(f"non-JSON answer to {op}")
            raise TransientCarrierError(
                f"Yanwen {op}: answer is not valid JSON (HTTP {status}, {len(response.content)} bytes; "
                f"{json_error}); the call may have taken effect", code="malformed", carrier=self.code)
        return decoded

    @staticmethod
    def _log(op: str, reference: str, started: float, outcome: str) -> None:
        # Operation, our reference, duration, outcome: never bodies (PII), the sign or the token.
        log.info("yanwen %s ref=%s %.0fms %s", op, reference or "-", (time.monotonic() - started) * 1000,
                 outcome)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _decode(content: bytes) -> tuple[Any, str | None]:
    """The JSON body and ``None``, or ``None`` and what is wrong with it (without echoing it)."""
    try:
        return json.loads(content.decode("utf-8-sig")), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 at byte {exc.start}"
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at char {exc.pos}"
