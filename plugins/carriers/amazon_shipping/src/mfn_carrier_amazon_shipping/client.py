"""Amazon Buy Shipping carrier: Shipping API v2 through the seller accounts' SP-API clients.

The engine builds it as ``AmazonShippingCarrier(settings, context)``; ``context.amazon`` maps each
configured seller account to its SP-API client. No retries here: the SP-API client paces,
refreshes tokens and retries the calls that buy nothing; the engine retries the rest. Every SP-API
failure becomes a classified carrier error: transient (timeouts, 5xx, 429, an unreadable answer
-- the purchase may have happened) or permanent (Amazon refused: the message is Amazon's).

Reconciliation (``find_by_reference``) never buys. It reads the order named by the reference and
proves a package ours with ``getShipmentDocuments(packageReferenceId, reference)``; see the README.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connector.kit import Carrier, TrackingInfo
from connector.kit.amazon import (
    AuthError,
    InvalidInputError,
    NotFoundError,
    SpApiError,
    TransientError,
    site_for_marketplace,
)
from connector.kit.carrier import PermanentCarrierError, TransientCarrierError
from connector.kit.ratecard import tracking_levels
from connector.kit.values import tracking_or_error

from . import CODE, api, mapping
from .settings import SERVICES, AmazonShippingSettings

if TYPE_CHECKING:
    from connector.kit import CarrierContext, Quote, Shipment, ShipmentRequest
    from connector.kit.amazon import SpApiClient

log = logging.getLogger(__name__)

ORDER_DATA = ("FULFILLMENT", "PACKAGES")  # items (always), quantities still to ship, packages


@dataclass
class _Known:
    """What this process learnt about a shipment it bought or found (a cache, never required)."""

    account: str
    site: str
    shipment_id: str
    tracking_number: str | None
    carrier_id: str
    label: bytes | None = None


class AmazonShippingCarrier(Carrier):
    """Amazon Buy Shipping for the configured seller accounts (``carriers.amazon_shipping``)."""

    code = CODE

    def __init__(self, settings: AmazonShippingSettings, context: CarrierContext) -> None:
        self.settings = settings
        if not context.amazon:
            raise ValueError(
                "amazon_shipping needs the SP-API clients of the seller accounts (context.amazon); "
                "configure at least one account"
            )
        self.amazon: dict[str, SpApiClient] = dict(context.amazon)
        for client in self.amazon.values():
            api.add_quotas(client)  # the Shipping API's published quotas; configured ones win
        self._levels = tracking_levels(SERVICES)
        self._names = {s.code: s.name for s in SERVICES}
        self._patterns = {cid: re.compile(p) for cid, p in self.settings.tracking_patterns.items()}
        self._lock = threading.Lock()
        self._known: OrderedDict[str, _Known] = OrderedDict()  # reference -> what we know
        self._by_tracking: dict[str, str] = {}  # tracking number -> reference

    def __repr__(self) -> str:
        return f"AmazonShippingCarrier(accounts={sorted(self.amazon)!r})"

    # -- operations ------------------------------------------------------------------------

    def quote(self, request: ShipmentRequest) -> list[Quote]:
        """getRates for the package: a quote per allowed service offered (cheapest first)."""
        client, site = self._client_and_site(request)
        order = self._order(client, request.order_id)
        payload = self._rates(client, site, request, order)
        services = self.settings.services
        if request.service and request.service != "cheapest" and self.settings.rate_choice == "service":
            services = (request.service,)
        try:
            return mapping.quotes_from_rates(payload, services=services, tracking_levels=self._levels,
                                             handling_items=self.settings.handling_rate_items)
        except mapping.MalformedAnswer as exc:
            raise _malformed(exc) from None

    def create_shipment(self, request: ShipmentRequest) -> Shipment:
        """Buy the label: getRates -> pick the rate -> purchaseShipment (idempotency key =
        ``request.reference``); on TOKEN_EXPIRED rate once more and purchase under the same key.

        Reads the order first: its items give the orderItemIds Amazon wants, and a package already
        proven ours (an earlier attempt whose answer was lost) is returned instead of buying.
        """
        try:
            order_id, _ = mapping.parse_reference(request.reference)
        except mapping.MappingError as exc:
            raise PermanentCarrierError(str(exc), code="reference", carrier=CODE) from None
        if order_id != request.order_id:
            raise PermanentCarrierError(
                f"reference {request.reference} does not name order {request.order_id}",
                code="reference",
                carrier=CODE,
            )
        client, site = self._client_and_site(request)
        order = self._order(client, order_id)
        found = self._find_on_order(client, order, request.reference, site, fallback=False)
        if found is not None:
            log.info(
                "amazon_shipping ref=%s already bought (shipment %s); not buying again",
                request.reference,
                found.carrier_shipment_id,
            )
            return found
        for attempt in (1, 2):
            payload = self._rates(client, site, request, order)
            rate = self._select(payload, request)
            token, rate_id = str(payload.get("requestToken") or ""), str(rate["rateId"])
            if not token:  # the model requires it: a garbled answer, nothing bought yet
                raise _malformed(mapping.MalformedAnswer("getRates answered without a requestToken"))
            try:
                result = self._sp(
                    "purchaseShipment",
                    request.reference,
                    lambda t=token, r=rate_id: api.purchase_shipment(
                        client,
                        request_token=t,
                        rate_id=r,
                        idempotency_key=request.reference,
                        label_format=self.settings.label_format,
                        label_size=self.settings.label_size,
                        dpi=self.settings.label_dpi,
                        business_id=self._business_id(site),
                    ),
                    token_expired_ok=attempt == 1,
                )
            except _TokenExpired:
                log.info("amazon_shipping ref=%s: requestToken expired; rating again", request.reference)
                continue
            try:
                shipment, label = mapping.shipment_from_purchase(
                    result, request.reference, str(rate["serviceId"])
                )
            except mapping.MappingError as exc:  # bought, but the answer is unusable: look it up later
                raise _malformed(exc) from None
            self._remember(
                request.reference,
                _Known(
                    client.account,
                    site,
                    shipment.carrier_shipment_id,
                    shipment.tracking_number,
                    str(rate.get("carrierId") or ""),
                    label,
                ),
            )
            return shipment
        raise AssertionError("unreachable")  # pragma: no cover - the second attempt returns or raises

    def find_by_reference(self, reference: str) -> Shipment | None:
        """The shipment bought under ``reference``, or None. Never buys.

        Reads the order the reference names (``{orderId}-{n}``) on each configured account until
        one has it, then proves one of its packages ours (see :meth:`_find_on_order`).
        """
        try:
            order_id, _ = mapping.parse_reference(reference)
        except mapping.MappingError as exc:
            # Not one of ours: refuse instead of answering "none" (which would let the engine buy).
            raise PermanentCarrierError(str(exc), code="reference", carrier=CODE) from None
        for client in self._clients_for(reference):
            order = self._sp("getOrder", reference, lambda c=client: c.get_order(order_id, ORDER_DATA))
            if order is None:
                continue
            site = self._site_of(order)
            return self._find_on_order(
                client, order, reference, site, fallback=self.settings.reconcile_by_tracking
            )
        return None

    def get_label(self, shipment: Shipment) -> bytes:
        """The label PDF: from memory right after the purchase, else ``getShipmentDocuments``
        (stateless: works in a new process, it only needs the shipment id and our reference)."""
        known = self._known_for(shipment.reference)
        if (
            known is not None
            and known.label is not None
            and known.shipment_id == shipment.carrier_shipment_id
        ):
            return known.label
        if not shipment.carrier_shipment_id:
            raise PermanentCarrierError(
                f"the Buy Shipping label of {shipment.reference} (tracking {shipment.tracking_number}) was "
                "found on the Amazon order, but Amazon does not say which shipment it is; reprint it in "
                "Seller Central (Manage Orders > Reprint label)",
                code="label_unavailable",
                carrier=CODE,
            )
        client, site = self._locate(shipment.reference)
        payload = self._sp(
            "getShipmentDocuments",
            shipment.reference,
            lambda: api.get_shipment_documents(
                client,
                shipment.carrier_shipment_id,
                shipment.reference,
                label_format=self.settings.label_format,
                dpi=self.settings.label_dpi,
                business_id=self._business_id(site),
            ),
        )
        try:
            label, _ = mapping.label_from_documents(payload)
        except mapping.MappingError as exc:
            raise _malformed(exc) from None
        return label

    def cancel(self, shipment: Shipment) -> bool:
        """cancelShipment (refunded; only before the carrier's pickup)."""
        if not shipment.carrier_shipment_id:
            raise PermanentCarrierError(
                f"no shipment id for {shipment.reference}: cancel the label in Seller Central",
                code="cancel_unavailable",
                carrier=CODE,
            )
        client, site = self._locate(shipment.reference)
        self._sp(
            "cancelShipment",
            shipment.reference,
            lambda: api.cancel_shipment(
                client, shipment.carrier_shipment_id, business_id=self._business_id(site)
            ),
        )
        with self._lock:
            self._known.pop(shipment.reference, None)
        return True

    def track(self, tracking_numbers: Iterable[str]) -> list[TrackingInfo]:
        """getTracking per number. The carrierId and account come from this process's memory, or
        from the number's format (``tracking_patterns``) and each account in turn."""
        infos = []
        for number in dict.fromkeys(n for n in tracking_numbers if n):
            infos.append(self._track_one(number))
        return infos

    # -- reconciliation --------------------------------------------------------------------

    def _find_on_order(
        self, client: SpApiClient, order: Mapping[str, Any], reference: str, site: str, *, fallback: bool
    ) -> Shipment | None:
        """The package of ``order`` bought under ``reference``, or None.

        1. Proof: for each package, ``getShipmentDocuments(shipmentId=packageReferenceId,
           packageClientReferenceId=reference)``. Amazon answers only for a shipment of this seller
           that has a package with our reference, so a 200 proves it ours (and yields the shipment
           id, tracking id and label). This needs Amazon to use the Buy Shipping shipment id as the
           order package's packageReferenceId (UNVERIFIED; the sandbox does).
        2. Fallback (``fallback``; only when no probe reached a real shipment, i.e. every probe was
           404 and the proof cannot work on this account): the order's packages whose carrier is a
           Buy Shipping carrier and whose tracking number ``getTracking`` knows. Exactly one ->
           ours, without a shipment id; more than one -> TransientCarrierError (needs a person).
        """
        packages = [p for p in order.get("packages") or [] if isinstance(p, dict)]
        reachable = False
        for package in packages:
            package_id = str(package.get("packageReferenceId") or "")
            if not package_id:
                continue
            try:
                payload = api.get_shipment_documents(
                    client,
                    package_id,
                    reference,
                    label_format=self.settings.label_format,
                    business_id=self._business_id(site),
                )
            except NotFoundError:
                continue  # not a Shipping API shipment id (e.g. a package confirmed by the seller)
            except InvalidInputError:
                reachable = True  # a shipment, but not with our reference
                continue
            except SpApiError as exc:
                raise self._carrier_error("getShipmentDocuments", reference, exc) from exc
            try:
                label, tracking = mapping.label_from_documents(payload)
            except mapping.MappingError:
                label, tracking = None, None
            shipment_id = str(payload.get("shipmentId") or package_id)
            tracking = tracking or package.get("trackingNumber") or None
            service = mapping.service_id_for(str(package.get("shippingService") or ""), self._names)
            carrier_id = self.settings.carrier_ids.get(str(package.get("carrier") or ""), "")
            self._remember(reference, _Known(client.account, site, shipment_id, tracking, carrier_id, label))
            log.info("amazon_shipping ref=%s found on order (shipment %s)", reference, shipment_id)
            return mapping.shipment(reference, shipment_id, tracking, service)
        if not fallback or reachable:
            return None
        matches = []
        for package in packages:
            carrier_id = self.settings.carrier_ids.get(str(package.get("carrier") or ""))
            number = str(package.get("trackingNumber") or "")
            if not carrier_id or not number:
                continue
            try:
                api.get_tracking(client, number, carrier_id, business_id=self._business_id(site))
            except (NotFoundError, InvalidInputError):
                continue  # not bought through the Shipping API (e.g. confirmed by the seller)
            except SpApiError as exc:
                raise self._carrier_error("getTracking", reference, exc) from exc
            matches.append((package, carrier_id))
        if not matches:
            return None
        if len(matches) > 1:
            numbers = ", ".join(str(p.get("trackingNumber")) for p, _ in matches)
            raise TransientCarrierError(
                f"order {order.get('orderId')} has {len(matches)} Buy Shipping packages ({numbers}) and none "
                f"can be proven to be {reference}; reconcile by hand",
                code="ambiguous",
                carrier=CODE,
            )
        package, carrier_id = matches[0]
        number = str(package["trackingNumber"])
        log.info("amazon_shipping ref=%s matched by tracking %s (no shipment id)", reference, number)
        self._remember(reference, _Known(client.account, site, "", number, carrier_id))
        service = mapping.service_id_for(str(package.get("shippingService") or ""), self._names)
        return mapping.shipment(reference, "", number, service)

    # -- helpers ---------------------------------------------------------------------------

    def _client_and_site(self, request: ShipmentRequest) -> tuple[SpApiClient, str]:
        # Whether Buy Shipping may ship the order is the site rules' decision (the engine asks
        # them before routing here); the plugin only needs the Shipping API's business for it.
        site = request.site.strip().upper()
        site = "UK" if site == "GB" else site
        if site not in self.settings.business_ids:
            raise PermanentCarrierError(
                f"Amazon Buy Shipping is not offered on {site}: no x-amzn-shipping-business-id is known "
                f"for it (known: {', '.join(sorted(self.settings.business_ids))})",
                code="site",
                carrier=CODE,
            )
        if request.account:
            client = self.amazon.get(request.account)
            if client is None:
                raise PermanentCarrierError(
                    f"seller account {request.account!r} has no SP-API client "
                    f"(configured: {', '.join(sorted(self.amazon))})",
                    code="account",
                    carrier=CODE,
                )
            return client, site
        if len(self.amazon) == 1:
            return next(iter(self.amazon.values())), site
        raise PermanentCarrierError(
            f"order {request.order_id}: the request names no seller account and "
            f"{len(self.amazon)} are configured",
            code="account",
            carrier=CODE,
        )

    def _business_id(self, site: str) -> str:
        try:
            return api.business_id_for_site(site, self.settings.business_ids)
        except ValueError as exc:
            raise PermanentCarrierError(str(exc), code="business_id", carrier=CODE) from None

    def _order(self, client: SpApiClient, order_id: str) -> dict[str, Any]:
        order = self._sp("getOrder", order_id, lambda: client.get_order(order_id, ORDER_DATA))
        if order is None:
            raise PermanentCarrierError(
                f"order {order_id} is not an order of seller account {client.account}",
                code="order",
                carrier=CODE,
            )
        return order

    def _rates(
        self, client: SpApiClient, site: str, request: ShipmentRequest, order: Mapping[str, Any]
    ) -> dict[str, Any]:
        try:
            lines = mapping.order_item_lines(order, request)
            package = mapping.package_body(request, lines)
            ship_from = mapping.address_body(request.ship_from)
        except mapping.NoLongerToShip as exc:  # keep the claim; the engine looks it up, then holds
            raise TransientCarrierError(str(exc), code="no_longer_to_ship", carrier=CODE) from None
        except mapping.MalformedAnswer as exc:  # the order read is garbled: read it again later
            raise _malformed(exc) from None
        except mapping.MappingError as exc:
            raise PermanentCarrierError(str(exc), code="request", carrier=CODE) from None
        return self._sp(
            "getRates",
            request.reference,
            lambda: api.get_rates(
                client,
                order_id=request.order_id,
                ship_from=ship_from,
                package=package,
                business_id=self._business_id(site),
            ),
        )

    def _select(self, payload: Mapping[str, Any], request: ShipmentRequest) -> dict[str, Any]:
        try:
            return mapping.select_rate(
                payload,
                request.service,
                rate_choice=self.settings.rate_choice,
                allowed=self.settings.services,
            )
        except mapping.MalformedAnswer as exc:
            raise _malformed(exc) from None
        except mapping.MappingError as exc:
            raise PermanentCarrierError(
                f"order {request.order_id}: {exc}", code="no_rate", carrier=CODE
            ) from None

    def _clients_for(self, reference: str) -> list[SpApiClient]:
        """The accounts to search: the one we remember first, then the others."""
        known = self._known_for(reference)
        clients = list(self.amazon.values())
        if known is not None and known.account in self.amazon:
            clients.sort(key=lambda c: c.account != known.account)
        return clients

    def _locate(self, reference: str) -> tuple[SpApiClient, str]:
        """Account and site of the order behind ``reference`` (memory, else getOrder)."""
        known = self._known_for(reference)
        if known is not None and known.account in self.amazon:
            return self.amazon[known.account], known.site
        try:
            order_id, _ = mapping.parse_reference(reference)
        except mapping.MappingError as exc:
            raise PermanentCarrierError(str(exc), code="reference", carrier=CODE) from None
        for client in self.amazon.values():
            order = self._sp("getOrder", reference, lambda c=client: c.get_order(order_id, ()))
            if order is not None:
                return client, self._site_of(order)
        raise PermanentCarrierError(
            f"order {order_id} is not an order of any configured seller account", code="order", carrier=CODE
        )

    @staticmethod
    def _site_of(order: Mapping[str, Any]) -> str:
        marketplace = str((order.get("salesChannel") or {}).get("marketplaceId") or "")
        try:
            return site_for_marketplace(marketplace)
        except ValueError:
            raise PermanentCarrierError(
                f"order {order.get('orderId')}: unknown marketplace {marketplace!r}",
                code="site",
                carrier=CODE,
            ) from None

    def _track_one(self, number: str) -> TrackingInfo:
        with self._lock:
            reference = self._by_tracking.get(number)
            known = self._known.get(reference) if reference else None
        if known is not None and known.carrier_id and known.account in self.amazon:
            attempts = [(self.amazon[known.account], known.carrier_id, self._business_id(known.site))]
        else:
            carrier_id = next((cid for cid, p in self._patterns.items() if p.match(number)), None)
            if carrier_id is None:  # this parcel's trouble: its error fails it alone, not its batch
                return TrackingInfo(
                    tracking_number=number,
                    status=mapping.TrackingStatus.UNKNOWN,
                    error=f"tracking number {number} matches no carrier in tracking_patterns "
                    "(add its carrierId's format to carriers.amazon_shipping.tracking_patterns)",
                )
            attempts = [
                (client, carrier_id, self.settings.default_business_id) for client in self.amazon.values()
            ]
        refused = ""
        for client, carrier_id, business_id in attempts:
            try:
                payload = api.get_tracking(client, number, carrier_id, business_id=business_id)
            except NotFoundError:
                continue
            except InvalidInputError as exc:  # about this number's request: it fails alone, not its batch
                refused = str(self._carrier_error("getTracking", number, exc))
                continue
            except SpApiError as exc:
                raise self._carrier_error("getTracking", number, exc) from exc
            return tracking_or_error(number, _tracking_info, payload, number)
        return TrackingInfo(tracking_number=number, status=mapping.TrackingStatus.UNKNOWN, error=refused)

    def _remember(self, reference: str, known: _Known) -> None:
        limit = self.settings.label_cache_size
        with self._lock:
            if limit <= 0:
                known.label = None
            self._known[reference] = known
            self._known.move_to_end(reference)
            if known.tracking_number:
                self._by_tracking[known.tracking_number] = reference
            while len(self._known) > max(limit, 1) * 8:  # context is small; labels are trimmed below
                old_ref, old = self._known.popitem(last=False)
                self._by_tracking.pop(old.tracking_number or "", None)
            with_labels = [k for k in self._known.values() if k.label is not None]
            for extra in with_labels[: max(0, len(with_labels) - limit)]:
                extra.label = None

    def _known_for(self, reference: str) -> _Known | None:
        with self._lock:
            return self._known.get(reference)

    def _sp(self, operation: str, reference: str, call: Any, *, token_expired_ok: bool = False) -> Any:
        """Run one SP-API call; SP-API errors become carrier errors."""
        try:
            return call()
        except InvalidInputError as exc:
            if exc.code == "TOKEN_EXPIRED" and token_expired_ok:
                raise _TokenExpired() from exc
            raise self._carrier_error(operation, reference, exc) from exc
        except SpApiError as exc:
            raise self._carrier_error(operation, reference, exc) from exc

    @staticmethod
    def _carrier_error(operation: str, reference: str, exc: SpApiError) -> Exception:
        text = f"Amazon Buy Shipping {operation} ({reference}): {exc}"
        if isinstance(exc, InvalidInputError) and exc.code == "TOKEN_EXPIRED":
            return TransientCarrierError(text, code=exc.code, carrier=CODE)  # refused: nothing bought
        if isinstance(exc, TransientError):
            if operation == "purchaseShipment" and getattr(exc, "ambiguous", False):
                text += " -- the label may have been bought; look it up before buying again"
            return TransientCarrierError(text, code=exc.code or "transient", carrier=CODE)
        if isinstance(exc, AuthError):
            return PermanentCarrierError(
                text + " (check the seller account's authorization and its access to the Shipping API)",
                code=exc.code or "auth",
                carrier=CODE,
            )
        if isinstance(exc, (InvalidInputError, NotFoundError)):
            return PermanentCarrierError(text, code=exc.code or "invalid", carrier=CODE)
        return TransientCarrierError(text, code=exc.code or "error", carrier=CODE)


class _TokenExpired(Exception):
    """purchaseShipment said TOKEN_EXPIRED: rate again (once)."""


def _tracking_info(payload: Any, number: str) -> TrackingInfo:
    try:
        return mapping.tracking_info(payload, number)
    except mapping.MalformedAnswer as exc:
        raise _malformed(exc) from None


def _malformed(exc: mapping.MappingError) -> TransientCarrierError:
    """An answer of Amazon's the plugin cannot use: asked again later (a purchase made meanwhile
    is found again by its reference before anything is bought)."""
    return TransientCarrierError(f"Amazon Buy Shipping: {exc}", code="malformed", carrier=CODE)
