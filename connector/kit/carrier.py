"""The carrier contract every carrier plugin implements (karrio's proxy/mapper split).

A plugin registers a :class:`CarrierSpec`; the engine builds one :class:`Carrier` per configured
carrier through ``spec.factory(settings, context)``: ``settings`` is the plugin's typed settings
object (``spec.settings.from_section(...)``), ``context`` a :class:`CarrierContext` with what the
daemon shares (an HTTP session, the seller accounts' SP-API clients). Carriers do I/O and mapping
only: retries, idempotency claims and state live in the engine. Errors are classified so the
engine knows whether a retry is safe:

* :class:`TransientCarrierError` -- the call may or may not have taken effect (timeout, 5xx,
  reset, malformed answer). The engine looks the reference up before trying again.
* :class:`PermanentCarrierError` -- the carrier refused; retrying the same request is pointless.
  The order is held with the carrier's message.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..model import Quote, Shipment, ShipmentRequest, TrackingInfo
from ..ratelimit import checked_defaults
from .schema import schema_error
from .settings import CarrierSettings

if TYPE_CHECKING:
    import requests


CREDENTIALS_REFUSED = "auth"
"""The ``code`` of a carrier error raised because the carrier refused the configured credentials:
no order can be served until a person fixes them, so the engine alerts instead of refusing the
order (see :attr:`CarrierError.credentials_refused`)."""


class CarrierError(Exception):
    """Base for carrier failures. ``code`` is the carrier's own error code when it gave one, or
    :data:`CREDENTIALS_REFUSED` when the carrier refused the configured credentials."""

    def __init__(self, message: str, *, code: str = "", carrier: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.carrier = carrier

    @property
    def credentials_refused(self) -> bool:
        return self.code == CREDENTIALS_REFUSED


class TransientCarrierError(CarrierError):
    """Outcome unknown or temporary: safe to retry only after a reference lookup."""


class PermanentCarrierError(CarrierError):
    """The carrier rejected the request; retrying it unchanged will not help."""


class CredentialsRefusedError(PermanentCarrierError):
    """The carrier refused the configured credentials unmistakably -- HTTP 401/403, or its own
    documented code for it -- before it acted on the request: nothing was created. Buying gives
    the label claim back on this one only (the order waits for the fix under the same reference);
    a credentials refusal read from a message's words (``code`` :data:`CREDENTIALS_REFUSED` on a
    plain :class:`PermanentCarrierError`) is treated as any refusal there."""

    def __init__(self, message: str, *, carrier: str = "") -> None:
        super().__init__(message, code=CREDENTIALS_REFUSED, carrier=carrier)


def unmistakable(error: CarrierError) -> CarrierError:
    """``error`` as a :class:`CredentialsRefusedError` when it is a credentials refusal, for a
    signal that leaves no doubt (HTTP 401/403); any other error as it is."""
    if not error.credentials_refused or isinstance(error, CredentialsRefusedError):
        return error
    return CredentialsRefusedError(str(error), carrier=error.carrier)


class DuplicateReferenceError(PermanentCarrierError):
    """The carrier already holds a shipment for this reference (look it up, do not buy again)."""


class NotSupported(NotImplementedError):
    """Raised by the default implementation of an optional carrier operation."""


TRACKING_LEVELS = ("untracked", "tracked", "fully_tracked")


@dataclass(frozen=True)
class ServiceSpec:
    """One product a carrier sells.

    ``tracking_level`` is one of ``untracked`` / ``tracked`` (at least one scan) /
    ``fully_tracked`` (scans through delivery). ``amazon_shipping_method`` is what
    confirmShipment's ``shippingMethod`` carries. The limits (weight, size, battery,
    destinations) make the engine skip the service for parcels that break them.
    """

    code: str
    name: str
    tracking_level: str = "tracked"
    amazon_shipping_method: str = ""
    max_weight_g: int | None = None
    allows_battery: bool = False  # a service that does not say it takes batteries gets none
    max_length_cm: Decimal | None = None  # longest side
    max_dimensions_sum_cm: Decimal | None = None  # length + width + height
    destinations: tuple[str, ...] = ()  # ISO countries served; empty = any


PICKUP_KINDS = ("listed", "by_quote", "unknown")


@dataclass(frozen=True)
class PickupCoverage:
    """Where a carrier collects parcels from the seller, as data.

    * ``listed`` -- it picks up in ``cities`` and anywhere in ``provinces`` (names compared
      case-insensitively with the ship-from address's ``city`` and ``state``);
    * ``by_quote`` -- the carrier is asked with the ship-from address and only quotes what it can
      collect there (Amazon Buy Shipping): its answer stands;
    * ``unknown`` -- nobody has captured the coverage: ``selection.pickup_unknown`` decides
      (assume pickup, require drop-off, or refuse).

    ``source`` says where the data comes from (a URL or "example data").
    """

    kind: str = "unknown"
    cities: tuple[str, ...] = ()
    provinces: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PICKUP_KINDS:
            raise ValueError(f"pickup kind must be one of {', '.join(PICKUP_KINDS)}, got {self.kind!r}")
        if self.kind == "listed" and not (self.cities or self.provinces):
            raise ValueError("a listed pickup coverage needs cities or provinces")

    @classmethod
    def listed(cls, cities: tuple[str, ...] = (), provinces: tuple[str, ...] = (), *,
               source: str = "") -> PickupCoverage:
        return cls("listed", tuple(cities), tuple(provinces), source)

    def covers(self, city: str, province: str = "") -> bool | None:
        """Whether the carrier collects in ``city``/``province``; ``None`` when not known here."""
        if self.kind != "listed":
            return None
        return (city.strip().casefold() in {c.casefold() for c in self.cities}
                or province.strip().casefold() in {p.casefold() for p in self.provinces if p})

    def describe(self) -> str:
        if self.kind == "by_quote":
            return "pickup decided by the carrier's quote for the ship-from address"
        if self.kind == "unknown":
            return "pickup coverage unknown"
        parts = [", ".join(self.cities)] if self.cities else []
        if self.provinces:
            parts.append("anywhere in " + ", ".join(self.provinces))
        return "pickup in " + "; ".join(parts)


@dataclass(frozen=True)
class CarrierContext:
    """What the daemon hands every carrier factory besides its settings.

    * ``http`` -- a ``requests.Session`` of the carrier's own (connection pooling; tests pass
      one wired to ``responses``);
    * ``amazon`` -- seller account name -> ``connector.amazon.client.SpApiClient``, for carriers
      that are Amazon APIs themselves (Buy Shipping). Most carriers ignore it.
    """

    http: requests.Session
    amazon: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def default(cls) -> CarrierContext:
        import requests

        return cls(http=requests.Session())


@dataclass(frozen=True)
class CarrierSpec:
    """What a carrier plugin registers through ``mfn_register_carriers``.

    * ``code`` -- the carrier's key in configuration (``carriers.<code>``) and in the ledger.
    * ``settings`` -- the plugin's :class:`~connector.kit.settings.CarrierSettings` subclass; its
      JSON Schema validates ``carriers.<code>`` in the YAML, and the engine builds the typed
      object from the section (defaults applied) before calling the factory.
    * ``factory(settings, context: CarrierContext) -> Carrier`` -- usually the Carrier class, or
      its import path ``"package.module:ClassName"``, imported only when a carrier is built or its
      capabilities are asked for (so a command that only reads the configuration does not import
      the plugin's HTTP client).
    * ``amazon_carrier_code`` -- the CarrierCode Amazon lists for this carrier; ``site_carrier_codes``
      overrides it per site (Amazon's lists differ by marketplace, e.g. ``Yanwen`` vs ``YANWEN``).
      A site that maps to ``None`` does not accept the carrier: the order is held, never sent as
      a silent ``Other``. Empty for a carrier whose labels confirm themselves.
    * ``confirms_shipment`` -- labels bought here confirm the shipment on Amazon by themselves
      (Amazon Buy Shipping): the engine never sends confirmShipment for them, and verifies them
      by reading the order back like any other.
    * ``spapi_quotas`` -- operationId -> (rate per second, burst), Amazon's published quota of each
      SP-API operation the carrier calls through the seller accounts' clients (an Amazon API
      itself): the daemon gives them to the rate limiter as defaults, and ``amazon.quotas`` may
      set these operations' quotas besides the core's (any other name is refused as a misspelling).
    """

    code: str
    label: str
    factory: Callable[..., Carrier] | str
    settings: type[CarrierSettings] = CarrierSettings
    amazon_carrier_code: str = ""
    services: tuple[ServiceSpec, ...] = ()
    site_carrier_codes: dict[str, str | None] = field(default_factory=dict)
    pickup: PickupCoverage = field(default_factory=PickupCoverage)
    batch_sizes: dict[str, int] = field(default_factory=dict)
    tracking_number_pattern: str = ""  # regex Amazon checks tracking numbers against
    confirms_shipment: bool = False
    spapi_quotas: dict[str, tuple[float, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked here, in the plugin's registration hook, so that the loader reports that plugin
        # as failed instead of every command failing later on a spec of the wrong shape.
        if not isinstance(self.code, str) or not self.code:
            raise TypeError(f"CarrierSpec.code must be a non-empty string, got {self.code!r}")
        if not (isinstance(self.settings, type) and issubclass(self.settings, CarrierSettings)):
            raise TypeError(f"CarrierSpec {self.code}: settings must be a CarrierSettings subclass, "
                            f"got {self.settings!r}")
        problem = schema_error(self.settings.SCHEMA)  # else every command reading the configuration fails
        if problem:
            raise TypeError(f"CarrierSpec {self.code}: its settings' SCHEMA is not a valid JSON Schema: "
                            f"{problem}")
        if not all(isinstance(s, ServiceSpec) for s in self.services):
            raise TypeError(f"CarrierSpec {self.code}: services must be ServiceSpec objects")
        try:
            checked_defaults(self.spapi_quotas)
        except (AttributeError, ValueError) as exc:  # AttributeError: not a mapping
            raise TypeError(f"CarrierSpec {self.code}: spapi_quotas must map operations to (rate, burst): "
                            f"{exc}") from None

    @property
    def settings_schema(self) -> dict[str, Any]:
        return self.settings.SCHEMA

    def carrier_code_for(self, site: str) -> str | None:
        return self.site_carrier_codes.get(site, self.amazon_carrier_code or None)

    def pattern_for(self, carrier: Carrier | None = None) -> str:
        """The tracking-number pattern of ``carrier``, one configured carrier of this spec: its own
        :attr:`Carrier.tracking_number_pattern` when its settings decide which number it returns,
        else :attr:`tracking_number_pattern`."""
        own = getattr(carrier, "tracking_number_pattern", None)
        return own if isinstance(own, str) else self.tracking_number_pattern

    def accepts_tracking_number(self, number: str, carrier: Carrier | None = None) -> bool:
        """Whether ``number`` has the form Amazon checks for this carrier (any, with no pattern),
        by the pattern of ``carrier`` when given (:meth:`pattern_for`). ASCII only: ``\\d`` would
        also match Arabic-Indic or full-width digits, which Amazon refuses."""
        pattern = self.pattern_for(carrier)
        return not pattern or re.fullmatch(pattern, number, re.ASCII) is not None

    def service(self, code: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.code == code), None)

    def build(self, section: Mapping[str, Any] | None, context: CarrierContext) -> Carrier:
        """The configured carrier: typed settings from ``section``, then the factory."""
        factory = self.load_factory()
        return factory(self.settings.from_section(section, where=f"carriers.{self.code}"), context)

    def load_factory(self) -> Callable[..., Carrier]:
        """The factory itself, imported now when the plugin gave its import path."""
        if not isinstance(self.factory, str):
            return self.factory
        module, _, name = self.factory.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except Exception as exc:  # noqa: BLE001 - whatever the plugin's module raises as it is imported
            raise ImportError(f"carrier {self.code}: cannot import its factory {self.factory!r}: "
                              f"{exc}") from exc

    def capabilities(self) -> list[str]:
        """Operations this carrier implements (derived from what its class overrides)."""
        factory = self.load_factory()
        cls = getattr(factory, "__func__", factory)
        if not isinstance(cls, type) or not issubclass(cls, Carrier):
            return []
        return [op for op in Carrier.OPERATIONS if getattr(cls, op) is not getattr(Carrier, op)]


class Carrier:
    """Base class for a configured carrier client. Override what the carrier supports."""

    OPERATIONS = ("quote", "create_shipment", "get_label", "cancel", "track", "find_by_reference")

    code: str = ""
    #: The regex Amazon checks this configured carrier's tracking numbers against, when its settings
    #: decide which of the carrier's numbers it returns (e.g. a waybill or a last-mile number);
    #: ``None``: the spec's :attr:`CarrierSpec.tracking_number_pattern`.
    tracking_number_pattern: str | None = None
    #: After a call to buy a label lost its answer, may a lookup by reference that finds nothing
    #: be taken as "nothing was bought", and the label bought again? ``False`` where whether the
    #: carrier's lookup shows a label just bought is not known: the engine then holds the order
    #: ``label_uncertain`` for a person instead (China Post's and Yanwen's ``empty_lookup: hold``
    #: setting; their default, ``buy``, re-sends under the same reference, which they refuse if taken).
    trusts_empty_lookup: bool = True
    #: Does :meth:`quote` ask the carrier (a rate API), rather than price from data such as a rate
    #: card? Only a call the carrier answered ends an alert that it refused the credentials: a
    #: card's quote, which asks no one, leaves it open until a label is bought.
    quote_calls_carrier: bool = True
    #: The most numbers one tracking request of this configured carrier takes, when a setting makes
    #: it fewer than the spec's ``batch_sizes["track"]`` (Yanwen's ``track_batch_size``, DHL
    #: eCommerce's ``tracking_batch_size``); ``None``: the spec's. The engine hands :meth:`track`
    #: no more at once, so one request that fails costs its own parcels, not those of the others.
    track_batch_size: int | None = None

    def quote(self, request: ShipmentRequest) -> list[Quote]:
        raise NotSupported(f"{self.code}: quote")

    def create_shipment(self, request: ShipmentRequest) -> Shipment:
        """Create the shipment (buy the label) under ``request.reference``.

        Must be safe to call again with the same reference: either the carrier deduplicates, or
        the plugin raises :class:`DuplicateReferenceError`, or it looks the reference up itself.
        ``tracking_number`` may be ``None`` when the carrier assigns it later.
        """
        raise NotSupported(f"{self.code}: create_shipment")

    def get_label(self, shipment: Shipment) -> bytes:
        """The label document (PDF bytes). Freely retryable: it never buys anything."""
        raise NotSupported(f"{self.code}: get_label")

    def cancel(self, shipment: Shipment) -> bool:
        """Cancel (void) the label; ``True`` once it is cancelled, **also when it was cancelled
        before** (a person in the carrier's portal, or this call before a crash): the engine asks
        to cancel whenever the lookup by reference does not show the label cancelled, since a
        lookup may lag behind a label just bought. A refusal (the parcel is scanned) raises
        :class:`PermanentCarrierError`; ``False`` is a refusal without a reason."""
        raise NotSupported(f"{self.code}: cancel")

    def track(self, tracking_numbers: Iterable[str]) -> list[TrackingInfo]:
        raise NotSupported(f"{self.code}: track")

    def find_by_reference(self, reference: str) -> Shipment | None:
        """Look up the shipment created under our reference; ``None`` if the carrier has none.

        The engine calls this after a crash or an ambiguous failure, before buying again, and to
        pick up a tracking number the carrier assigned later.
        """
        raise NotSupported(f"{self.code}: find_by_reference")

    def close_manifest(self, shipments: Sequence[Shipment], *, reference: str) -> str | None:
        """Optional: close these shipments at the carrier for today's handover (its manifest,
        close-out or collection-form call); returns the carrier's reference for it, or ``None``
        when it answers none. ``reference`` is stable across re-runs of the same handover: send it
        as the call's idempotency key where the carrier has one.

        The default raises :class:`NotSupported`: the carrier has no handover call, and the engine
        makes the handover list alone (connector/engine/handover.py). A plugin README says which
        call it uses, or that there is none. Not part of ``OPERATIONS``: no carrier must have it.
        """
        raise NotSupported(f"{self.code}: close_manifest")
