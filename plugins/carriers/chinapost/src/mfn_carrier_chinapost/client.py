"""China Post / EMS client: HTTP only; every request and answer goes through mapping.py.

pcpErp small-packet API (form POSTs signed with ``base64(MD5(payload + key))``) for create,
label, cancel, fees and the reference lookup; the legacy EUB API for tracking by mail number.
No retries here (the engine retries with back-off). The kit's transport classifies failures:
network errors, timeouts, 5xx, 429 and unreadable answers are transient; refusals are permanent
with the carrier's message; credentials errors never carry the key or the token.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from connector.kit import Carrier, TrackingInfo, TrackingStatus, Transport
from connector.kit.carrier import (
    CREDENTIALS_REFUSED,
    DuplicateReferenceError,
    PermanentCarrierError,
    TransientCarrierError,
)
from connector.kit.ratecard import tracking_levels
from connector.kit.values import existing_shipment, looks_like_pdf, text

from . import mapping
from .s10 import is_valid_s10
from .settings import SERVICES, ChinaPostSettings

if TYPE_CHECKING:
    from connector.kit import CarrierContext, Quote, Shipment, ShipmentRequest

log = logging.getLogger(__name__)

CREATE_PATH = "orderService/OrderReceiveBack"
LABEL_PATH = "surface/download"
CANCEL_PATH = "orderService/cancelOrder"
FEE_PATH = "orderFeeService/getOrderFee"
TRACK_PATH = "track/query/{language}/{number}"
FORM = "application/x-www-form-urlencoded; charset=UTF-8"


class ChinaPostCarrier(Carrier):
    """One configured China Post account (``carriers.chinapost`` in the YAML)."""

    code = "chinapost"
    quote_calls_carrier = False  # a rate card: China Post has no rate API

    def __init__(self, settings: ChinaPostSettings, context: CarrierContext) -> None:
        self.settings = settings
        self.trusts_empty_lookup = settings.empty_lookup == "buy"
        self.http = Transport.for_settings(
            settings, carrier=self.code, name="China Post", session=context.http, logger=log,
            credentials_error=mapping.credentials_error, is_auth_failure=mapping.is_auth_failure,
            error_detail=_message)
        self._tracking_levels = tracking_levels(SERVICES)
        self._services_by_product = {v: k for k, v in settings.biz_product_codes.items()}

    def __repr__(self) -> str:
        return f"ChinaPostCarrier({self.settings!r})"

    # -- operations ------------------------------------------------------------------------

    def quote(self, request: ShipmentRequest) -> list[Quote]:
        """From the rate card (China Post has no rate API): the requested service, or every
        configured one when the request names none."""
        return self.settings.card.quote(self.code, request, services=self.settings.services,
                                        tracking_levels=self._tracking_levels)

    def create_shipment(self, request: ShipmentRequest) -> Shipment:
        """``OrderReceiveBack`` with ``logistics_order_no`` = ``request.reference``.

        A repeated reference either comes back with the same waybill (then that is the answer) or
        is refused as a duplicate (then the existing order is looked up and returned): both ways
        there is never a second label.
        """
        product = self.settings.biz_product_codes.get(request.service)
        if not product:
            raise PermanentCarrierError(
                f"China Post has no service {request.service!r} (known: "
                f"{', '.join(sorted(self.settings.biz_product_codes))})", code="service", carrier=self.code)
        order = mapping.build_order(
            request, biz_product_no=product, sender_no=self.settings.effective_sender_no,
            now=datetime.now(timezone.utc), mail_type=self.settings.mail_type, wh_code=self.settings.wh_code,
            declare_currency=self.settings.declare_currency, ioss_field=self.settings.ioss_field,
            undelivery_option=self.settings.undelivery_option)
        form = mapping.create_form(mapping.to_json(order), key=self.settings.key,
                                   ec_company_id=self.settings.ec_company_id, biz_product_no=product,
                                   encoding=self.settings.digest_encoding)
        data = self._post_json(CREATE_PATH, form, op="OrderReceiveBack", reference=request.reference)
        try:
            waybill = mapping.parse_create(data, request.reference,
                                           duplicate_keywords=self.settings.duplicate_keywords,
                                           duplicate_codes=self.settings.duplicate_codes)
        except DuplicateReferenceError as duplicate:
            log.info("chinapost OrderReceiveBack: reference %s already exists; looking it up",
                     request.reference)
            try:
                found = self.find_by_reference(request.reference)
            except PermanentCarrierError:  # a label exists: never a plain refusal, which gives the claim up
                raise duplicate from None
            return existing_shipment(found, duplicate, name="China Post",
                                     reference=request.reference,
                                     lookup="the order query finds no live order under it")
        self._check_number(waybill, request.reference)
        return mapping.shipment(request.reference, waybill, request.service)

    def find_by_reference(self, reference: str) -> Shipment | None:
        """The live order under ``logistics_order_no`` = ``reference`` (UNVERIFIED endpoint,
        ``order_query_path``); cancelled orders do not count."""
        form = mapping.query_form(reference, key=self.settings.key, ec_company_id=self.settings.ec_company_id,
                                  encoding=self.settings.digest_encoding)
        data = self._post_json(self.settings.order_query_path, form, op="order query", reference=reference)
        shipment = mapping.live_shipment(mapping.parse_query(data, reference), reference,
                                         self._services_by_product)
        if shipment is not None:
            self._check_number(shipment.carrier_shipment_id, reference)
        return shipment

    def get_label(self, shipment: Shipment) -> bytes:
        """``surface/download`` for the waybill: PDF bytes (version 1.0) or hex in JSON (2.0)."""
        barcode = shipment.carrier_shipment_id or shipment.tracking_number or ""
        form = mapping.label_form([barcode], key=self.settings.key, ec_company_id=self.settings.ec_company_id,
                                  version=self.settings.label_version, encoding=self.settings.digest_encoding)
        op = "surface/download"
        response = self.http.send(op, "POST", f"{self.settings.api_root}/{LABEL_PATH}",
                                  reference=shipment.reference, data=form, headers={"Content-Type": FORM})
        content = response.content
        if content.startswith(b"%PDF-"):
            if not looks_like_pdf(content):
                raise TransientCarrierError(f"China Post {op}: the PDF is truncated ({len(content)} bytes)",
                                            code="malformed", carrier=self.code)
            return content
        client_error = 400 <= response.status_code < 500
        try:
            data = self.http.decode(response, op)
        except TransientCarrierError:
            if not client_error:
                raise
            data = None
        if data is None and client_error:  # e.g. a 404 page: not China Post answering
            self.http.refuse(response, op)
        if self.settings.label_version == "2.0":
            return mapping.parse_label_v2(data, barcode)
        raise mapping.label_refusal(data, barcode)

    def cancel(self, shipment: Shipment) -> bool:
        """``cancelOrder`` by waybill; refused once China Post has scanned the item."""
        form = mapping.cancel_form(shipment.carrier_shipment_id, sender_no=self.settings.effective_sender_no,
                                   key=self.settings.key, encoding=self.settings.digest_encoding)
        data = self._post_json(CANCEL_PATH, form, op="cancelOrder", reference=shipment.reference)
        return mapping.parse_cancel(data, shipment.carrier_shipment_id,
                                    already_cancelled=self.settings.already_cancelled_keywords)

    def track(self, tracking_numbers: Iterable[str]) -> list[TrackingInfo]:
        """``GET track/query/{cn|en}/{mailnum}`` once per number. A number that is not a valid S10
        identifier cannot be China Post's: UNKNOWN without asking."""
        if not self.settings.tracking_token:  # as a refused one: no parcel tracked, an alert says so
            raise PermanentCarrierError("China Post tracking needs carriers.chinapost.tracking_token "
                                        "(the authenticate header)", code=CREDENTIALS_REFUSED,
                                        carrier=self.code)
        infos = []
        for number in dict.fromkeys(n.strip().upper() for n in tracking_numbers if n and n.strip()):
            if not is_valid_s10(number):
                log.info("chinapost track: %s is not a valid S10 number; not asked", number)
                infos.append(TrackingInfo(tracking_number=number, status=TrackingStatus.UNKNOWN))
                continue
            infos.append(self._track_one(number))
        return infos

    def order_fees(self, waybills: Iterable[str]) -> dict[str, mapping.OrderFee]:
        """``getOrderFee``: what China Post charged, for the waybills it has accepted (a cost
        check after the fact; not a quote). Waybills not scanned yet are absent."""
        numbers = list(dict.fromkeys(w for w in waybills if w))
        if not numbers:
            return {}
        form = mapping.fee_form(numbers, key=self.settings.key, ec_company_id=self.settings.ec_company_id,
                                encoding=self.settings.digest_encoding)
        return mapping.parse_fees(self._post_json(FEE_PATH, form, op="getOrderFee"))

    # -- HTTP ------------------------------------------------------------------------------

    def _track_one(self, number: str) -> TrackingInfo:
        op = "track/query"
        path = TRACK_PATH.format(language=self.settings.tracking_language, number=number)
        accept = "application/json" if self.settings.tracking_format == "json" else "application/xml"
        headers = {"authenticate": self.settings.tracking_token or "",
                   "version": self.settings.tracking_version_header, "Accept": accept}
        response = self.http.send(op, "GET", f"{self.settings.tracking_root}/{path}", reference=number,
                                  headers=headers)
        if response.status_code >= 400:
            self.http.refuse(response, op, hint="check tracking_base_url")
        return mapping.parse_tracking(response.content, number,
                                      utc_offset_hours=self.settings.tracking_utc_offset_hours)

    def _post_json(self, path: str, form: dict[str, str], *, op: str, reference: str = "") -> Any:
        return self.http.send_json(op, "POST", f"{self.settings.api_root}/{path}", reference=reference,
                                   data=form, headers={"Content-Type": FORM, "Accept": "application/json"})

    def _check_number(self, waybill: str, reference: str) -> None:
        if not is_valid_s10(waybill, country="CN"):
            # The label exists: never drop it. The engine's tracking-number pattern check holds the
            # order if Amazon would refuse the number.
            log.warning("chinapost: waybill %s for %s is not a valid S10 number (check digit or format)",
                        waybill, reference)


def _message(decoded: Any) -> str:
    """China Post's own words in an error answer (the field differs per interface)."""
    if not isinstance(decoded, dict):
        return ""
    return next((text(decoded[k]) for k in ("msg", "message", "return_msg", "description")
                 if text(decoded.get(k))), "")
