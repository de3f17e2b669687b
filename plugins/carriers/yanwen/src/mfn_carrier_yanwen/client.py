"""Yanwen client: HTTP only; every request body and answer goes through mapping.py.

No retries here (the engine retries with back-off). The kit's transport classifies what happens
on the wire: network errors, timeouts, 5xx, 429 and unreadable answers are transient; HTTP 401/403
and answers that say the signature or the credentials were refused are a permanent credentials
error that never carries the token. mapping.py classifies the envelope (system errors,
``code < 0``, are transient; business refusals permanent).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from connector.kit import Carrier, Transport
from connector.kit.carrier import DuplicateReferenceError, PermanentCarrierError
from connector.kit.ratecard import tracking_levels
from connector.kit.values import chunks, existing_shipment

from . import mapping
from .settings import BATTERY_SERVICES, SERVICES, YanwenSettings

if TYPE_CHECKING:
    from connector.kit import CarrierContext, Quote, Shipment, ShipmentRequest, TrackingInfo

log = logging.getLogger(__name__)

_KNOWN_SERVICES = frozenset(s.code for s in SERVICES)
_API_HEADERS = {"Content-Type": "application/json;charset=utf-8", "Accept": "application/json"}


class YanwenCarrier(Carrier):
    """One configured Yanwen account (``carriers.yanwen`` in the YAML)."""

    code = "yanwen"

    def __init__(self, settings: YanwenSettings, context: CarrierContext, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.trusts_empty_lookup = settings.empty_lookup == "buy"
        self.quote_calls_carrier = settings.quote_source == "api"  # else the rate card: asks no one
        self.track_batch_size = settings.track_batch_size  # the engine asks no more at once
        self.http = Transport.for_settings(
            settings, carrier=self.code, name="Yanwen", session=context.http, logger=log,
            credentials_error=mapping.credentials_error, is_auth_failure=mapping.is_auth_failure_text,
            error_detail=mapping.error_detail)
        self._clock = clock  # seconds since the epoch; the signed timestamp comes from it
        self._tracking_levels = tracking_levels(SERVICES)

    def __repr__(self) -> str:
        return f"YanwenCarrier({self.settings!r})"

    # -- operations ------------------------------------------------------------------------

    def quote(self, request: ShipmentRequest) -> list[Quote]:
        """``calc.list`` (``quote_source: api``) or the rate card; battery parcels are not quoted on
        the general-goods (普货) lines."""
        if self.settings.quote_source == "api":
            body = mapping.build_calc_request(request, city_id=self.settings.calc_city_id)
            answer = self._call(mapping.CALC_LIST, body)
            services = (request.service,) if request.service else self.settings.services
            quotes = mapping.parse_calc(answer, services=services, tracking_levels=self._tracking_levels)
        else:
            quotes = self.settings.card.quote(self.code, request, services=self.settings.services,
                                              tracking_levels=self._tracking_levels)
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
            try:
                found = self.find_by_reference(request.reference)
            except PermanentCarrierError:  # a label exists: never a plain refusal, which gives the claim up
                raise duplicate from None
            return existing_shipment(found, duplicate, name="Yanwen",
                                     reference=request.reference,
                                     lookup="express.order.getlist finds no live waybill under it")

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
        return mapping.parse_cancel(answer, waybill,
                                    already_cancelled=self.settings.already_cancelled_keywords)

    def track(self, tracking_numbers: Iterable[str]) -> list[TrackingInfo]:
        """The tracking API, ``track_batch_size`` (at most 30) numbers per call, in input order.

        Its credential is a plain ``Authorization`` header (``customer_number``, else ``user_id``),
        so a refusal names that setting rather than the signature's."""
        numbers = list(dict.fromkeys(n.strip() for n in tracking_numbers if n and n.strip()))
        headers = {"Authorization": self.settings.tracking_authorization, "Accept": "application/json"}
        infos: dict[str, TrackingInfo] = {}
        for batch in chunks(numbers, self.settings.track_batch_size):
            answer = self.http.send_json("tracking", "GET", self.settings.tracking_url,
                                         params=mapping.tracking_query(batch), headers=headers,
                                         credentials_error=mapping.tracking_credentials_error,
                                         hint="check tracking_base_url, or base_url when it is unset")
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
        """One signed open-API call; returns the decoded JSON or raises a classified CarrierError.

        The query string carries the ``sign``: the transport never echoes a URL's query."""
        query, body = mapping.signed_call(method, data, user_id=self.settings.user_id,
                                          api_token=self.settings.api_token, timestamp=self._timestamp())
        return self.http.send_json(method, "POST", self.settings.api_url, reference=reference, params=query,
                                   data=body.encode("utf-8"), headers=_API_HEADERS)
