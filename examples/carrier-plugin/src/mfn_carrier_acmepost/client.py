"""ACME Post API client: HTTP only, mapping in mapping.py, no retries (the engine retries)."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import requests

from connector import (
    Carrier,
    PermanentCarrierError,
    Quote,
    Shipment,
    ShipmentRequest,
    TrackingInfo,
    TransientCarrierError,
)

from . import mapping
from .settings import SERVICES

log = logging.getLogger(__name__)


class AcmePostCarrier(Carrier):
    """One configured ACME Post account (``carriers.acmepost``); settings arrive validated."""

    code = mapping.CARRIER

    def __init__(self, settings: dict[str, Any], http: requests.Session | None = None) -> None:
        self.base_url = settings["base_url"].rstrip("/")
        self.timeout = (float(settings.get("connect_timeout_seconds", 5)),
                        float(settings.get("timeout_seconds", 30)))
        self.http = http or requests.Session()
        self.http.headers["Authorization"] = f"Bearer {settings['api_key']}"

    def quote(self, request: ShipmentRequest) -> list[Quote]:
        data = self._call("POST", "/v1/rates", json=mapping.rate_request(request))
        return mapping.parse_rates(data, {s.code: s.tracking_level for s in SERVICES})

    def create_shipment(self, request: ShipmentRequest) -> Shipment:
        """ACME Post is idempotent by customer_reference: a repeat returns the existing shipment."""
        return mapping.parse_shipment(self._call("POST", "/v1/shipments",
                                                 json=mapping.shipment_request(request)))

    def find_by_reference(self, reference: str) -> Shipment | None:
        return mapping.parse_lookup(self._call("GET", "/v1/shipments",
                                               params={"customer_reference": reference}))

    def get_label(self, shipment: Shipment) -> bytes:
        pdf = self._call("GET", f"/v1/shipments/{shipment.carrier_shipment_id}/label", raw=True)
        if not mapping.is_complete_pdf(pdf):
            raise TransientCarrierError("ACME Post label is not a complete PDF", code="malformed",
                                        carrier=self.code)
        return pdf

    def cancel(self, shipment: Shipment) -> bool:
        data = self._call("POST", f"/v1/shipments/{shipment.carrier_shipment_id}/cancel")
        return mapping.parse_shipment(data).status == "cancelled"

    def track(self, tracking_numbers: Iterable[str]) -> list[TrackingInfo]:
        return [mapping.parse_tracking(self._call("GET", f"/v1/tracking/{number}"))
                for number in dict.fromkeys(tracking_numbers)]

    def _call(self, method: str, path: str, *, raw: bool = False, **kwargs: Any) -> Any:
        """One request; the decoded JSON (or the bytes), or a classified CarrierError."""
        started = time.monotonic()
        try:
            response = self.http.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:  # timeout, reset, refused: the call may have landed
            raise TransientCarrierError(f"ACME Post {method} {path}: {type(exc).__name__}",
                                        code="network", carrier=self.code) from exc
        finally:  # what, how long, how it ended: never bodies (they hold buyer PII)
            log.info("acmepost %s %s %.0fms", method, path, (time.monotonic() - started) * 1000)
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientCarrierError(f"ACME Post {method} {path}: HTTP {response.status_code}",
                                        code=f"http_{response.status_code}", carrier=self.code)
        try:
            data = response.content if raw and response.ok else response.json()
        except ValueError as exc:
            raise TransientCarrierError(f"ACME Post {method} {path}: unreadable answer", code="malformed",
                                        carrier=self.code) from exc
        if not response.ok:
            message = data.get("message", "") if isinstance(data, dict) else ""
            raise PermanentCarrierError(f"ACME Post {method} {path}: HTTP {response.status_code} {message}",
                                        code=f"http_{response.status_code}", carrier=self.code)
        return data
