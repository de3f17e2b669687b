"""ACME Post API client: I/O only, through the kit's Transport; mapping in mapping.py.

No retries here (the engine retries, after looking the reference up). The transport classifies
every failure: timeouts, resets, 5xx, 429 and unreadable answers are transient (the call may have
taken effect), 401/403 and other 4xx answers permanent.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from connector.kit import Carrier, Transport
from connector.kit.carrier import TransientCarrierError
from connector.kit.ratecard import tracking_levels
from connector.kit.values import looks_like_pdf

from . import mapping
from .settings import SERVICES, AcmePostSettings

if TYPE_CHECKING:
    from connector.kit import CarrierContext, Quote, Shipment, ShipmentRequest, TrackingInfo


class AcmePostCarrier(Carrier):
    """One configured ACME Post account (``carriers.acmepost``)."""

    code = mapping.CARRIER

    def __init__(self, settings: AcmePostSettings, context: CarrierContext) -> None:
        self.settings = settings
        self.http = Transport.for_settings(settings, carrier=self.code, name="ACME Post",
                                           session=context.http, error_detail=mapping.error_message)
        self._headers = {"Authorization": f"Bearer {settings.api_key}"}

    def quote(self, request: ShipmentRequest) -> list[Quote]:
        data = self._call("rates", "POST", "/v1/rates", reference=request.reference,
                          json=mapping.rate_request(request))
        return mapping.parse_rates(data, tracking_levels(SERVICES))

    def create_shipment(self, request: ShipmentRequest) -> Shipment:
        """ACME Post is idempotent by customer_reference: a repeat returns the existing shipment."""
        data = self._call("create", "POST", "/v1/shipments", reference=request.reference,
                          json=mapping.shipment_request(request), hint="")  # a 4xx says what to fix
        return mapping.parse_shipment(data)

    def find_by_reference(self, reference: str) -> Shipment | None:
        return mapping.parse_lookup(self._call("lookup", "GET", "/v1/shipments", reference=reference,
                                               params={"customer_reference": reference}))

    def get_label(self, shipment: Shipment) -> bytes:
        url = self._url(f"/v1/shipments/{shipment.carrier_shipment_id}/label")
        response = self.http.send("label", "GET", url, reference=shipment.reference, headers=self._headers)
        if response.status_code >= 400:  # send() returns 4xx answers other than 401/403/408/425/429
            self.http.refuse(response, "label")
        pdf = response.content
        if not looks_like_pdf(pdf):  # e.g. cut off mid-download: the label exists, fetch it again
            raise TransientCarrierError(f"ACME Post label: not a complete PDF ({len(pdf)} bytes)",
                                        code="malformed", carrier=self.code)
        return pdf

    def cancel(self, shipment: Shipment) -> bool:
        data = self._call("cancel", "POST", f"/v1/shipments/{shipment.carrier_shipment_id}/cancel",
                          reference=shipment.reference, hint="")
        return mapping.parse_shipment(data).status == "cancelled"

    def track(self, tracking_numbers: Iterable[str]) -> list[TrackingInfo]:
        return [mapping.parse_tracking(self._call("track", "GET", f"/v1/tracking/{number}"))
                for number in dict.fromkeys(tracking_numbers)]

    def _url(self, path: str) -> str:
        return self.settings.api_root + path

    def _call(self, op: str, method: str, path: str, **request: Any) -> Any:
        """One JSON call: the decoded answer, or a classified CarrierError."""
        return self.http.send_json(op, method, self._url(path), headers=self._headers, **request)
