"""YunExpress OMS API client: HTTP only; every request body and answer goes through mapping.py.

No retries here (the engine retries with back-off). The kit's transport classifies failures:
network errors, timeouts, 5xx, 429 and unreadable answers are transient; 401/403 and answers that
say authentication failed are a permanent credentials error whose message never carries the secret.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from connector.kit import Carrier, Transport
from connector.kit.carrier import DuplicateReferenceError, PermanentCarrierError, TransientCarrierError
from connector.kit.ratecard import tracking_levels
from connector.kit.values import existing_shipment, looks_like_pdf, tracking_or_error

from . import mapping
from .settings import SERVICES, YunExpressSettings

if TYPE_CHECKING:
    from connector.kit import CarrierContext, Quote, Shipment, ShipmentRequest, TrackingInfo

log = logging.getLogger(__name__)


class YunExpressCarrier(Carrier):
    """One configured YunExpress account (``carriers.yunexpress`` in the YAML)."""

    code = "yunexpress"

    def __init__(self, settings: YunExpressSettings, context: CarrierContext) -> None:
        self.settings = settings
        self.tracking_number_pattern = settings.tracking_pattern  # follows tracking_number_source
        self.http = Transport.for_settings(
            settings, carrier=self.code, name="YunExpress", session=context.http, logger=log,
            credentials_error=mapping.credentials_error, is_auth_failure=mapping.is_auth_failure_text,
            error_detail=_message, request_id=_request_id)
        self._headers = {
            "Authorization": mapping.authorization_header(settings.customer_code, settings.api_secret),
            "Accept": "application/json",
            "Content-Type": "application/json;charset=UTF-8",
            "Accept-Language": settings.language,
        }
        self._tracking_levels = tracking_levels(SERVICES)

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
            try:
                found = self.find_by_reference(request.reference)
            except PermanentCarrierError:  # a label exists: never a plain refusal, which gives the claim up
                raise duplicate from None
            return existing_shipment(found, duplicate, name="YunExpress",
                                     reference=request.reference, lookup="GetOrder finds no such order")

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
        """``WayBill/Delete`` by waybill number; only possible before the first scan.

        YunExpress answers "does not exist" both for an order deleted before (in its portal, or by
        this call before a crash) and for one it does not know yet; the order's tracking state
        tells them apart (PackageState 5: deleted). Anything else stays a refusal."""
        body = mapping.build_delete_request(shipment.carrier_shipment_id)
        data = self._call("POST", "WayBill/Delete", op="WayBill/Delete", body=body,
                          reference=shipment.reference)
        try:
            return mapping.parse_delete(data, success_statuses=self.settings.delete_success_statuses,
                                        already_deleted=self.settings.already_cancelled_keywords)
        except PermanentCarrierError as exc:
            if exc.code != mapping.NOT_FOUND_CODE or not shipment.carrier_shipment_id:
                raise
            waybill = shipment.carrier_shipment_id
            state = mapping.package_state(self._track_info(waybill, reference=shipment.reference), waybill)
            if state != mapping.CANCELLED_PACKAGE_STATE:
                raise
            return True

    def track(self, tracking_numbers: Iterable[str]) -> list[TrackingInfo]:
        """``Tracking/GetTrackInfo`` once per number (the endpoint takes one). A malformed answer
        about one number fails that number alone (``TrackingInfo.error``)."""
        infos = []
        offset = self.settings.tracking_utc_offset_hours
        for number in dict.fromkeys(n for n in tracking_numbers if n):
            infos.append(tracking_or_error(number, mapping.parse_track_info, self._track_info(number), number,
                                           utc_offset_hours=offset))
        return infos

    def _track_info(self, number: str, *, reference: str = "") -> Any:
        """The raw ``Tracking/GetTrackInfo`` answer for one waybill or tracking number."""
        return self._call("GET", "Tracking/GetTrackInfo", op="GetTrackInfo", params={"OrderNumber": number},
                          reference=reference)

    def shipping_methods(self, country_code: str = "") -> list[mapping.ShippingMethod]:
        """``Common/GetShippingMethods`` (for setup and diagnostics; not a carrier operation)."""
        params = {"CountryCode": country_code} if country_code else None
        data = self._call("GET", "Common/GetShippingMethods", op="GetShippingMethods", params=params)
        return mapping.parse_shipping_methods(data)

    # -- HTTP ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, op: str, params: dict[str, str] | None = None,
              body: Any = None, reference: str = "") -> Any:
        """One API call; returns the decoded JSON or raises a classified CarrierError."""
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        return self.http.send_json(op, method, f"{self.settings.api_root}/{path}", reference=reference,
                                   params=params, data=data, headers=self._headers)

    def _download_label(self, url: str, reference: str) -> bytes:
        """GET the label file. No Authorization header: the URL is on the carrier's file host, so
        a 401/403 there is a link it no longer serves (expired), never the account's credentials:
        transient, the next try prints the label again for a fresh link."""
        response = self.http.send("label download", "GET", url, reference=reference,
                                  headers={"Accept": "application/pdf"},
                                  credentials_error=self._link_refused)
        if response.status_code != 200:
            raise TransientCarrierError(f"YunExpress label download: HTTP {response.status_code}",
                                        code=f"http_{response.status_code}", carrier=self.code)
        if not looks_like_pdf(response.content):
            raise TransientCarrierError(
                f"YunExpress label download: not a complete PDF ({len(response.content)} bytes, "
                f"starts with {response.content[:8]!r})", code="malformed", carrier=self.code)
        return response.content

    def _link_refused(self, detail: str) -> TransientCarrierError:
        return TransientCarrierError(f"YunExpress label download: the file host refused the label's link "
                                     f"({detail}); no credentials are sent there", code="label_link",
                                     carrier=self.code)


def _message(decoded: Any) -> str:
    return str(decoded.get("Message") or decoded.get("message") or "") if isinstance(decoded, dict) else ""


def _request_id(response: Any, decoded: Any) -> str:
    return str(decoded.get("RequestId") or "") if isinstance(decoded, dict) else ""
