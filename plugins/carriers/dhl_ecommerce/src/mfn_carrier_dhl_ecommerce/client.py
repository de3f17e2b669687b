"""DHL eCommerce Asia client: HTTP only; bodies and answers go through mapping.py.

No retries here (the engine retries with back-off), except one: a business 202 "Invalid access
token" means the request was refused at the header, so the token is refreshed and the request
re-sent once. The kit's transport classifies everything else: timeouts, network errors, 5xx/429
and unreadable answers are transient; 401/403 are a credentials error; other 4xx are permanent.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from connector.kit import Carrier, TrackingInfo, TrackingStatus, Transport, monotonic
from connector.kit.carrier import PermanentCarrierError, TransientCarrierError
from connector.kit.ratecard import tracking_levels
from connector.kit.values import chunks

from . import mapping
from .settings import BATTERY_SERVICES, SERVICES, DhlEcommerceSettings

if TYPE_CHECKING:
    from connector.kit import CarrierContext, Quote, Shipment, ShipmentRequest

log = logging.getLogger(__name__)

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class DhlEcommerceCarrier(Carrier):
    """One configured DHL eCommerce Asia account (``carriers.dhl_ecommerce`` in the YAML)."""

    code = "dhl_ecommerce"
    quote_calls_carrier = False  # a rate card: the Asia API has no rate endpoint

    def __init__(self, settings: DhlEcommerceSettings, context: CarrierContext, *,
                 clock: Callable[[], float] = monotonic) -> None:
        self.settings = settings
        self.track_batch_size = settings.tracking_batch_size  # the engine asks no more at once
        # Pacing (max_requests_per_second, UNVERIFIED limit: off unless configured) is the transport's.
        self.http = Transport.for_settings(
            settings, carrier=self.code, name="DHL eCommerce", session=context.http, logger=log,
            credentials_error=mapping.credentials_error, error_detail=mapping.error_detail,
            hint="check base_url and credentials")
        self._clock = clock  # the token cache's clock (tests move it)
        self._token_lock = threading.Lock()
        self._token: str = ""
        self._token_refresh_at = 0.0
        self._levels = tracking_levels(SERVICES)

    def __repr__(self) -> str:
        return f"DhlEcommerceCarrier({self.settings!r})"

    @property
    def _accounts(self) -> dict[str, str]:
        return {"pickup_account_id": self.settings.pickup_account_id,
                "sold_to_account_id": self.settings.sold_to_account_id}

    def _sid(self, reference: str) -> str:
        try:
            return mapping.shipment_id(self.settings.shipment_id_prefix, reference)
        except ValueError as exc:
            raise PermanentCarrierError(f"DHL eCommerce: {exc}", code="reference",
                                        carrier=self.code) from None

    # -- operations ------------------------------------------------------------------------

    def quote(self, request: ShipmentRequest) -> list[Quote]:
        """From the rate card (no rate API); battery parcels only on battery-capable products."""
        quotes = self.settings.card.quote(self.code, request, services=self.settings.services,
                                          tracking_levels=self._levels)
        if request.parcel.has_battery:
            quotes = [q for q in quotes if q.service in BATTERY_SERVICES]
        return quotes

    def create_shipment(self, request: ShipmentRequest) -> Shipment:
        """``POST /rest/v2/Label``; shipmentID = prefix + reference. Re-sending the identical
        request returns the same label (item code 203); a different one under the same
        shipmentID raises DuplicateReferenceError."""
        sid = self._sid(request.reference)
        bd = mapping.label_bd(  # raises ValueError only for the reference, checked by _sid above
            request,
            prefix=self.settings.shipment_id_prefix,
            handover_method=self.settings.handover_method,
            ioss_field=self.settings.ioss_field,
            incoterm=self.settings.incoterm,
            battery_content_indicator=self.settings.battery_content_indicator,
            **self._accounts,
        )
        answer = self._post("label", mapping.LABEL_PATH, "labelRequest", "LABEL", "1.4", bd, "labelResponse",
                            reference=request.reference)
        return mapping.parse_label(answer, request, sid)

    def find_by_reference(self, reference: str) -> Shipment | None:
        item = self._reprint(reference)
        return None if item is None else mapping.shipment_from_reprint(item, reference)

    def get_label(self, shipment: Shipment) -> bytes:
        sid = self._sid(shipment.reference)
        item = self._reprint(shipment.reference)
        if item is None:
            raise PermanentCarrierError(f"DHL eCommerce has no live label under {sid}", code="not_found",
                                        carrier=self.code)
        return mapping.pdf_from_reprint(item, sid)

    def cancel(self, shipment: Shipment) -> bool:
        sid = self._sid(shipment.reference)
        bd = mapping.delete_bd(sid, **self._accounts)
        answer = self._post("delete", mapping.DELETE_PATH, "deleteShipmentReq", "DELETESHIPMENT", "1.0", bd,
                            "deleteShipmentResp", reference=shipment.reference)
        return mapping.parse_delete(answer, sid, already_deleted=self.settings.already_cancelled_keywords)

    def track(self, tracking_numbers: Iterable[str]) -> list[TrackingInfo]:
        """``POST /rest/v3/Tracking``, ``tracking_batch_size`` (<= 100) numbers per call, results
        in input order (numbers DHL does not know yet come back as ``unknown`` without events)."""
        numbers = list(dict.fromkeys(n.strip() for n in tracking_numbers if n and n.strip()))
        infos: dict[str, TrackingInfo] = {}
        for batch in chunks(numbers, self.settings.tracking_batch_size):
            bd = mapping.track_bd(batch, **self._accounts)
            answer = self._post("track", mapping.TRACK_PATH, "trackItemRequest", "TRACKITEM", "1.0", bd,
                                "trackItemResponse")
            infos.update(mapping.parse_tracking(answer, batch,
                                                offset_hours=self.settings.tracking_utc_offset_hours))
        return [infos.get(n) or TrackingInfo(n, TrackingStatus.UNKNOWN) for n in numbers]

    # -- token -----------------------------------------------------------------------------

    def access_token(self, *, force: bool = False, stale: str = "") -> str:
        """The cached token, fetched when missing, near expiry, or ``force``d. Thread-safe; with
        ``stale`` only a token equal to it is replaced (another thread may have refreshed)."""
        with self._token_lock:
            now = self._clock()
            fresh = self._token and now < self._token_refresh_at
            if fresh and not (force and (not stale or stale == self._token)):
                return self._token
            # The password travels in the query string: the transport never logs or echoes a URL's query.
            answer = self.http.send_json("token", "GET", self.settings.root + mapping.TOKEN_PATH,
                                         params=mapping.token_params(self.settings.client_id,
                                                                     self.settings.password))
            token, lifetime = mapping.parse_token(answer)
            self._token = token
            margin = min(self.settings.token_refresh_margin_seconds, lifetime / 2)
            self._token_refresh_at = now + lifetime - margin
            return token

    # -- HTTP ------------------------------------------------------------------------------

    def _reprint(self, reference: str) -> dict[str, Any] | None:
        sid = self._sid(reference)
        bd = mapping.reprint_bd(sid, **self._accounts)
        answer = self._post("reprint", mapping.REPRINT_PATH, "labelReprintRequest", "LABELREPRINT", "1.0", bd,
                            "labelReprintResponse", reference=reference)
        return mapping.parse_reprint(answer, sid)

    def _post(self, op: str, path: str, root: str, message_type: str, version: str, bd: dict[str, Any],
              answer_root: str, *, reference: str = "") -> Any:
        """One enveloped call; on "Invalid access token" the token is refreshed and ``bd`` re-sent once."""
        token = self.access_token()
        for attempt in (1, 2):
            hdr = mapping.hdr(message_type, token, version, datetime.now(timezone.utc))
            body = json.dumps({root: {"hdr": hdr, "bd": bd}}, ensure_ascii=False).encode("utf-8")
            answer = self.http.send_json(
                op, "POST", self.settings.root + path, reference=reference, data=body, headers=_JSON_HEADERS
            )
            if not mapping.is_invalid_token(answer, answer_root):
                return answer
            log.info("dhl_ecommerce %s: access token refused (attempt %d); refreshing", op, attempt)
            if attempt == 1:
                token = self.access_token(force=True, stale=token)
        raise TransientCarrierError(f"DHL eCommerce {op}: access token refused again right after a refresh",
                                    code="token", carrier=self.code)
