"""YunExpress OMS API client: HTTP only; every request body and answer goes through mapping.py.

No retries here (the engine retries with back-off). Failures are classified for the engine:
network errors, timeouts, 5xx, 429 and unreadable answers are transient; 401/403 and JSON auth
failures are a permanent credentials error whose message never carries the secret.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urljoin

import requests

from connector.carriers import Carrier, DuplicateReferenceError, PermanentCarrierError, TransientCarrierError
from connector.model import Quote, Shipment, ShipmentRequest, TrackingInfo

from . import mapping
from .settings import SERVICES, YunExpressSettings, resolve_settings

log = logging.getLogger(__name__)


class YunExpressCarrier(Carrier):
    """One configured YunExpress account (``carriers.yunexpress`` in the YAML)."""

    code = "yunexpress"

    def __init__(self, settings: dict[str, Any] | YunExpressSettings,
                 http: requests.Session | None = None) -> None:
        self.settings = settings if isinstance(settings, YunExpressSettings) else resolve_settings(settings)
        self.http = http if http is not None else requests.Session()
        self._authorization = mapping.authorization_header(self.settings.customer_code,
                                                           self.settings.api_secret)
        self._tracking_levels = {s.code: s.tracking_level for s in SERVICES}
        self._pace_lock = threading.Lock()
        self._next_slot = 0.0

    def __repr__(self) -> str:
        return f"YunExpressCarrier({self.settings!r})"

    # -- operations ------------------------------------------------------------------------

    def quote(self, request: ShipmentRequest) -> list[Quote]:
        """``Freight/GetPriceTrial``: the requested service, or every configured one when unset."""
        params = mapping.build_price_trial_params(
            request, package_type_param=self.settings.price_trial_package_type_param,
            origin=self.settings.price_trial_origin)
        data = self._call("GET", "Freight/GetPriceTrial", op="GetPriceTrial", params=params)
        services = (request.service,) if request.service else self.settings.services
        return mapping.parse_price_trial(data, services=services, tracking_levels=self._tracking_levels,
                                         default_currency=self.settings.quote_currency)

    def create_shipment(self, request: ShipmentRequest) -> Shipment:
        """``WayBill/CreateOrder`` with this one order; CustomerOrderNumber = ``request.reference``.

        A duplicate reference means an earlier attempt went through: the existing order is looked
        up and returned instead of a second label being bought.
        """
        body = mapping.build_create_order(request, application_type=self.settings.application_type)
        data = self._call("POST", "WayBill/CreateOrder", op="CreateOrder", body=body,
                          reference=request.reference)
        try:
            return mapping.parse_create_order(
                data, request, duplicate_codes=self.settings.duplicate_codes,
                duplicate_keywords=self.settings.duplicate_keywords,
                use_waybill_as_tracking=self.settings.use_waybill_as_tracking)
        except DuplicateReferenceError as duplicate:
            log.info("yunexpress CreateOrder: reference %s already exists; looking it up", request.reference)
            existing = self.find_by_reference(request.reference)
            if existing is None:
                raise TransientCarrierError(
                    f"YunExpress refused {request.reference} as a duplicate but GetOrder finds no such order",
                    code=duplicate.code, carrier=self.code) from duplicate
            return existing

    def find_by_reference(self, reference: str) -> Shipment | None:
        """``WayBill/GetOrder``; when the order has no tracking number yet, one
        ``Waybill/GetTrackingNumber`` call fills it in (still ``None`` while it is generating)."""
        data = self._call("GET", "WayBill/GetOrder", op="GetOrder", params={"OrderNumber": reference},
                          reference=reference)
        lookup = mapping.parse_get_order(data, reference)
        if lookup is None:
            return None
        tracking = lookup.waybill if self.settings.use_waybill_as_tracking else lookup.tracking_number
        if tracking is None:
            data = self._call("GET", "Waybill/GetTrackingNumber", op="GetTrackingNumber",
                              params={"CustomerOrderNumber": reference}, reference=reference)
            tracking = mapping.parse_tracking_number(data, reference,
                                                     use_waybill_as_tracking=self.settings.use_waybill_as_tracking)
        return mapping.shipment_from_lookup(lookup, reference, tracking)

    def get_label(self, shipment: Shipment) -> bytes:
        """``Label/Print`` for the waybill, then download the PDF it points at."""
        number = shipment.carrier_shipment_id or shipment.reference
        body = mapping.build_label_request([number], self.settings.label_request_format)
        data = self._call("POST", "Label/Print", op="Label/Print", body=body, reference=shipment.reference)
        url = urljoin(self.settings.api_root + "/", mapping.parse_label_print(data))
        return self._download_label(url, shipment.reference)

    def cancel(self, shipment: Shipment) -> bool:
        """``WayBill/Delete`` by waybill number; only possible before the first scan."""
        body = mapping.build_delete_request(shipment.carrier_shipment_id)
        data = self._call("POST", "WayBill/Delete", op="WayBill/Delete", body=body,
                          reference=shipment.reference)
        return mapping.parse_delete(data, success_statuses=self.settings.delete_success_statuses)

    def track(self, tracking_numbers: Iterable[str]) -> list[TrackingInfo]:
        """``Tracking/GetTrackInfo`` once per number (the endpoint takes one)."""
        infos = []
        for number in dict.fromkeys(n for n in tracking_numbers if n):
            data = self._call("GET", "Tracking/GetTrackInfo", op="GetTrackInfo",
                              params={"OrderNumber": number})
            infos.append(mapping.parse_track_info(data, number,
                                                  utc_offset_hours=self.settings.tracking_utc_offset_hours))
        return infos

    def shipping_methods(self, country_code: str = "") -> list[mapping.ShippingMethod]:
        """``Common/GetShippingMethods`` (for setup and diagnostics; not a carrier operation)."""
        params = {"CountryCode": country_code} if country_code else None
        data = self._call("GET", "Common/GetShippingMethods", op="GetShippingMethods", params=params)
        return mapping.parse_shipping_methods(data)

    # -- HTTP ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": self._authorization,
            "Accept": "application/json",
            "Content-Type": "application/json;charset=UTF-8",
            "Accept-Language": self.settings.language,
        }

    def _pace(self) -> None:
        """Client-side pacing when ``max_requests_per_second`` is set (no limit is documented)."""
        rate = self.settings.max_requests_per_second
        if not rate:
            return
        with self._pace_lock:
            now = time.monotonic()
            wait = self._next_slot - now
            self._next_slot = max(now, self._next_slot) + 1.0 / rate
        if wait > 0:
            time.sleep(wait)

    def _call(self, method: str, path: str, *, op: str, params: dict[str, str] | None = None,
              body: Any = None, reference: str = "") -> Any:
        """One API call; returns the decoded JSON or raises a classified CarrierError."""
        url = f"{self.settings.api_root}/{path}"
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        self._pace()
        started = time.monotonic()
        try:
            response = self.http.request(method, url, params=params, data=data, headers=self._headers(),
                                         timeout=self.settings.timeouts)
        except requests.Timeout as exc:
            self._log(op, reference, started, f"timeout ({type(exc).__name__})")
            raise TransientCarrierError(
                f"YunExpress {op}: no answer within {self.settings.timeout_seconds:g}s "
                f"({type(exc).__name__}); the call may have taken effect",
                code="timeout", carrier=self.code) from exc
        except requests.RequestException as exc:
            self._log(op, reference, started, f"network error ({type(exc).__name__})")
            raise TransientCarrierError(
                f"YunExpress {op}: {type(exc).__name__} talking to {self.settings.api_root}; "
                f"the call may have taken effect", code="network", carrier=self.code) from exc
        status = response.status_code
        decoded, json_error = _decode(response.content)
        request_id = decoded.get("RequestId", "") if isinstance(decoded, dict) else ""
        self._log(op, reference, started, f"HTTP {status}", request_id)
        if status in (401, 403):
            raise mapping.credentials_error(f"HTTP {status} on {op}")
        if status in (408, 425, 429) or status >= 500:
            raise TransientCarrierError(f"YunExpress {op}: HTTP {status}", code=f"http_{status}",
                                        carrier=self.code)
        if status >= 400:
            detail = ""
            if isinstance(decoded, dict):
                detail = str(decoded.get("Message") or decoded.get("message") or "")
            raise PermanentCarrierError(f"YunExpress {op}: HTTP {status}{': ' + detail if detail else ''} "
                                        f"(check base_url)", code=f"http_{status}", carrier=self.code)
        if json_error is not None:
            text = response.content[:300].decode("utf-8", "replace").strip()
            if not text.startswith(("{", "[")) and mapping.is_auth_failure_text(text):
                raise mapping.credentials_error(f"non-JSON answer to {op}")
            raise TransientCarrierError(
                f"YunExpress {op}: answer is not valid JSON (HTTP {status}, {len(response.content)} bytes; "
                f"{json_error}); the call may have taken effect", code="malformed", carrier=self.code)
        return decoded

    def _download_label(self, url: str, reference: str) -> bytes:
        """GET the label file. No Authorization header: the URL is on the carrier's file host."""
        started = time.monotonic()
        try:
            response = self.http.get(url, timeout=self.settings.timeouts,
                                     headers={"Accept": "application/pdf"})
        except requests.RequestException as exc:
            self._log("label download", reference, started, f"network error ({type(exc).__name__})")
            raise TransientCarrierError(f"YunExpress label download failed: {type(exc).__name__}",
                                        code="network", carrier=self.code) from exc
        self._log("label download", reference, started, f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise TransientCarrierError(f"YunExpress label download: HTTP {response.status_code}",
                                        code=f"http_{response.status_code}", carrier=self.code)
        if not mapping.looks_like_pdf(response.content):
            raise TransientCarrierError(
                f"YunExpress label download: not a complete PDF ({len(response.content)} bytes, "
                f"starts with {response.content[:8]!r})", code="malformed", carrier=self.code)
        return response.content

    @staticmethod
    def _log(op: str, reference: str, started: float, outcome: str, request_id: str = "") -> None:
        # Operation, our reference, the carrier's RequestId, duration, outcome: never bodies (PII).
        log.info("yunexpress %s ref=%s request_id=%s %.0fms %s", op, reference or "-", request_id or "-",
                 (time.monotonic() - started) * 1000, outcome)


def _decode(content: bytes) -> tuple[Any, str | None]:
    """The JSON body and ``None``, or ``None`` and what is wrong with it (without echoing it)."""
    try:
        return json.loads(content.decode("utf-8-sig")), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 at byte {exc.start}"
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at char {exc.pos}"
