"""The test kit for carrier plugins: the contract suite, shared fixtures and sample data.

A carrier author subclasses :class:`CarrierContract` in a test module and supplies two fixtures,
``carrier`` and ``emulator``::

    import pytest
    from connector.kit.testing import CarrierContract, connect
    from mfn_carrier_acmepost.client import AcmePostCarrier
    from mfn_carrier_acmepost.sandbox import AcmePostEmulator
    from mfn_carrier_acmepost.settings import AcmePostSettings

    @pytest.fixture
    def emulator(mfn_emulator):
        return mfn_emulator(AcmePostEmulator({"seed": 1}))

    @pytest.fixture
    def carrier(emulator):
        # SHORT read timeout: the contract makes the emulator answer late on purpose.
        return connect(AcmePostCarrier, AcmePostSettings,
                       {"base_url": emulator.url, "api_key": "sandbox-key", "timeout_seconds": 1.0})

    class TestAcmePostContract(CarrierContract):
        carrier_code = "acmepost"

* ``carrier`` -- a configured :class:`~connector.kit.carrier.Carrier` pointing at the emulator, with
  a read timeout well below :attr:`CarrierContract.fault_timeout_seconds` (1 s is a good value: a
  busy CI machine can take half a second to answer);
* ``emulator`` -- the running emulator: anything with a ``url`` attribute, usually the
  ``EmulatorServer`` that :func:`mfn_emulator` returns. A fresh one per test is the simplest; a
  shared one works too, since every test uses references of its own.

The emulator follows the sandbox conventions (``connector.kit.sandbox``): the framework answers
``POST /_sandbox/faults`` and ``POST /_sandbox/clock``, and the emulator's ``sandbox_state()``
reports ``{"labels": {reference: {"created": n, ...}}}`` -- how many labels it issued under each
customer reference. That count is how the contract checks "never two labels for one package" from
the carrier's side.

The contract needs the plugin installed (``pip install -e .``): the carrier's ``CarrierSpec`` is
taken from the entry point, exactly as the daemon finds it.

Besides the contract, plugin tests share: :data:`BUYER` and :data:`SELLER` (synthetic addresses),
:func:`sample_request`, :func:`connect` (a carrier from settings), :func:`sandbox_control`,
:func:`set_faults`, :func:`advance_clock` and :func:`sandbox_state` (the emulator control
endpoints), and the ``mfn_emulator`` fixture.

This module is registered as a pytest plugin (``pytest11``), so it is imported by every pytest
run in an environment with mfn-connector: it defines no autouse fixtures and imports nothing heavy
at import time.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import json
import random
import re
import time
import typing
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from ..model import (
    Address,
    CustomsLine,
    Money,
    Parcel,
    Quote,
    Shipment,
    ShipmentRequest,
    TrackingEvent,
    TrackingInfo,
    TrackingStatus,
)
from .carrier import (
    TRACKING_LEVELS,
    Carrier,
    CarrierContext,
    CarrierSpec,
    DuplicateReferenceError,
    PermanentCarrierError,
    TransientCarrierError,
)

if TYPE_CHECKING:
    from ..plugins import PluginReport
    from .settings import CarrierSettings

__all__ = ["BUYER", "SELLER", "CarrierContract", "REQUIRED_OPERATIONS", "advance_clock",
           "amazon_carrier_codes", "amazon_sites", "amazon_tracking_format", "connect",
           "find_registered_carrier", "sample_request", "sandbox_control", "sandbox_state", "set_faults"]

REQUIRED_OPERATIONS = ("create_shipment", "get_label", "find_by_reference", "track", "cancel")
"""Operations every carrier implements; ``quote`` is optional (rate cards cover carriers without)."""

# connector.sandbox.framework.FAULT_KINDS; not imported, to keep this pytest plugin's import light.
_FAULT_KINDS = ("error_5xx", "timeout", "reset", "malformed")
_NO_FAULTS = dict.fromkeys(_FAULT_KINDS, 0.0)
_SECRET_NAMES = re.compile(r"(secret|password|token|api_?key|private_?key|key)$", re.IGNORECASE)

BUYER = Address(name="Jane Q. Buyer", line1="1200 Pine Street", line2="Apt 4B", city="Seattle", state="WA",
                postal_code="98101", country_code="US", phone="+1 206 555 0142",
                email="jane.buyer@example.com")
"""A complete, synthetic US buyer address."""
SELLER = Address(name="Li Wei", company="Shenzhen Demo Trading Co., Ltd.", line1="8 Keji South Road",
                 line2="Nanshan", city="Shenzhen", state="Guangdong", postal_code="518057", country_code="CN",
                 phone="+86 755 0000 0000", district="Nanshan")
"""A synthetic seller warehouse in Shenzhen."""


def sample_request(reference: str = "111-0000001-0000001-1", *, service: str = "", ship_to: Address = BUYER,
                   ship_from: Address = SELLER, site: str = "US", weight_g: int = 250, ioss_number: str = "",
                   has_battery: bool = False, currency: str = "USD", **fields: Any) -> ShipmentRequest:
    """A complete request for a 250 g parcel of two phone cases (customs value 9.00 USD).

    ``reference`` is shaped like the engine's (``<Amazon order id>-<package>``); the order id is
    taken from it. Any other :class:`ShipmentRequest` field can be given by keyword.
    """
    parcel = Parcel(
        weight_g=weight_g, length_cm=Decimal("20.5"), width_cm=Decimal("15"), height_cm=Decimal("3"),
        contents=(CustomsLine(sku="CASE-BLK", name_en="Phone case", name_cn="手机壳", hs_code="392690",
                              quantity=2, unit_value=Money(Decimal("4.50"), currency), unit_weight_g=100),),
        has_battery=has_battery)
    order_id = reference.rpartition("-")[0]
    if not re.fullmatch(r"\d{3}-\d{7}-\d{7}", order_id):
        order_id = "111-0000001-0000001"
    return ShipmentRequest(**{"reference": reference, "order_id": order_id, "site": site, "service": service,
                              "ship_from": ship_from, "ship_to": ship_to, "parcel": parcel,
                              "ioss_number": ioss_number, **fields})


def connect(carrier_class: Callable[..., Carrier], settings_class: type[CarrierSettings],
            section: Mapping[str, Any], *, context: CarrierContext | None = None) -> Carrier:
    """The carrier the daemon would build from the YAML ``section``: typed settings (schema
    validated, defaults applied), then the factory with a fresh HTTP session."""
    settings = settings_class.from_section(section)
    return carrier_class(settings, context or CarrierContext.default())


def sandbox_control(url: Any, path: str, payload: dict[str, Any] | None = None) -> Any:
    """Call ``/_sandbox/<path>`` of the emulator at ``url`` (an ``EmulatorServer`` or its URL):
    GET without ``payload``, POST with it. Loopback, so no proxy."""
    base = str(getattr(url, "url", url)).rstrip("/")
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{base}/_sandbox/{path}", data=data,
                                     headers={"Content-Type": "application/json"},
                                     method="GET" if data is None else "POST")
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(request, timeout=10) as response:
        return json.loads(response.read().decode("utf-8"))


def sandbox_state(url: Any) -> dict[str, Any]:
    """``GET /_sandbox/state``: what the emulator issued and accepted."""
    return sandbox_control(url, "state")


def set_faults(url: Any, rates: Mapping[str, float]) -> Any:
    """``POST /_sandbox/faults``, e.g. ``{"malformed": 1.0}``; kinds not named are turned off."""
    return sandbox_control(url, "faults", {**_NO_FAULTS, **rates})


def advance_clock(url: Any, seconds: float) -> Any:
    """``POST /_sandbox/clock``: move the emulator's simulated time forward."""
    return sandbox_control(url, "clock", {"advance_seconds": seconds})


def amazon_sites() -> tuple[str, ...]:
    """Every Amazon site code of the site table."""
    from ..amazon.sites import BUILTIN

    return tuple(BUILTIN)


def amazon_carrier_codes(site: str) -> frozenset[str]:
    """The carrierCode values confirmShipment accepts on ``site``: the site rules' ``carrier_codes``
    of the installed plugins, which the SP-API emulator enforces (a carrier's code must be one of
    them, or the sandbox refuses its confirmations). Empty for a site without rules."""
    from ..sandbox.spapi import site_carrier_codes

    return site_carrier_codes().get(site, frozenset())


def amazon_tracking_format(carrier_code: str) -> str:
    """The tracking-number pattern the SP-API emulator's confirmShipment checks for a carrierCode."""
    from ..sandbox.spapi import LENIENT_TRACKING_FORMAT, TRACKING_FORMATS

    return TRACKING_FORMATS.get(carrier_code, LENIENT_TRACKING_FORMAT)


@pytest.fixture
def mfn_emulator() -> Iterator[Callable[[Any], Any]]:
    """``mfn_emulator(emulator)`` serves an Emulator instance on a free loopback port and returns
    its running ``EmulatorServer`` (``.url``); every server is stopped when the test ends.

    For a carrier plugin's own tests, e.g. ``server = mfn_emulator(AcmeEmulator({"seed": 7}))``, then
    ``connect(AcmeCarrier, AcmeSettings, {"base_url": server.url, ...})``.
    """
    from ..sandbox.framework import EmulatorServer

    servers: list[Any] = []

    def serve(emulator: Any) -> Any:
        server = EmulatorServer(emulator, port=0).start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.stop()


def find_registered_carrier(code: str) -> tuple[CarrierSpec, PluginReport]:
    """The ``CarrierSpec`` registered under ``code`` by an installed plugin, and that plugin's
    load report (``connector.plugins.PluginReport``); fails the test with the loader's findings
    when no installed plugin registers it. Plugins are loaded once per test session."""
    host = _plugin_host()
    spec = host.carriers().get(code)
    owner = next((r for r in host.reports.values() if f"carrier:{code}" in r.registered), None)
    if spec is None or owner is None:
        problems = [f"  {r.name} ({r.distribution} {r.version}): {r.status}: {r.error}"
                    for r in host.reports.values() if r.status == "failed"]
        pytest.fail(
            f"no installed plugin registers carrier {code!r} through the 'mfn_connector' entry point "
            f"group (registered: {', '.join(sorted(host.carriers())) or 'none'}). Install the plugin "
            f"(pip install -e .) and check `mfn-connector plugins`."
            + ("\nplugins that failed to load:\n" + "\n".join(problems) if problems else ""),
            pytrace=False)
    return spec, owner


@functools.lru_cache(maxsize=1)
def _plugin_host() -> Any:
    from ..plugins import load_plugins

    return load_plugins(strict=False)


class CarrierContract:
    """Contract tests for one carrier plugin; subclass it as ``Test<Name>Contract``.

    Set :attr:`carrier_code` and provide the ``carrier`` and ``emulator`` fixtures (see the module
    docstring). Override the other class attributes when the defaults do not suit the carrier, and
    use the helpers (:meth:`make_request`, :meth:`set_faults`, :meth:`labels_created`, ...) in
    extra tests of your own.
    """

    #: The carrier's code as registered in its ``CarrierSpec`` (``carriers.<code>`` in the YAML).
    carrier_code: ClassVar[str] = ""
    #: The Amazon site the sample order comes from (its carrier code must be accepted there).
    site: ClassVar[str] = "US"
    #: The service to ship with; ``None`` takes the first service of the ``CarrierSpec``.
    service: ClassVar[str | None] = None
    #: Where the sample parcel goes: a complete, synthetic address on the site.
    destination: ClassVar[Address] = Address(
        name="Jordan Sample", line1="1600 Example Avenue", line2="Suite 200", city="Seattle",
        state="WA", postal_code="98101", country_code="US", phone="+1 206 555 0100",
        email="jordan.sample@example.com")
    #: The seller's warehouse in China.
    ship_from: ClassVar[Address] = Address(
        name="Li Wei", company="Shenzhen Sample Trading Co., Ltd.", line1="8 Keji South Road",
        line2="Nanshan", city="Shenzhen", state="Guangdong", postal_code="518057", country_code="CN",
        phone="+86 755 0000 0000")
    #: What is in the parcel (customs lines; the parcel weight is their sum).
    sku_lines: ClassVar[tuple[CustomsLine, ...]] = (
        CustomsLine(sku="CONTRACT-CASE", name_en="Phone case", name_cn="手机壳", hs_code="392690",
                    quantity=2, unit_value=Money(Decimal("4.50"), "USD"), unit_weight_g=120),
    )
    #: Box size in centimetres (length, width, height).
    parcel_size_cm: ClassVar[tuple[Decimal, Decimal, Decimal]] = (Decimal("20"), Decimal("15"),
                                                                   Decimal("4"))
    #: How late a ``timeout`` fault answers; must exceed the ``carrier`` fixture's read timeout.
    fault_timeout_seconds: ClassVar[float] = 2.0
    #: How far the tracking test moves the emulator's clock.
    clock_advance_seconds: ClassVar[float] = 3 * 86400
    #: ``find_by_reference`` calls allowed until a late tracking number shows up, and the pause
    #: between them (carriers such as YunExpress assign some numbers after creation).
    tracking_number_attempts: ClassVar[int] = 6
    tracking_number_wait_seconds: ClassVar[float] = 0.1

    _emulator_url: str
    _spec: CarrierSpec

    # -- fixtures (names prefixed so they never collide with the author's) -----------------

    @pytest.fixture
    def contract_spec(self) -> CarrierSpec:
        """The carrier's spec, as the daemon finds it: through the installed entry point."""
        if not self.carrier_code:
            pytest.fail(f"{type(self).__name__}: set carrier_code", pytrace=False)
        return find_registered_carrier(self.carrier_code)[0]

    @pytest.fixture(autouse=True)
    def _contract_emulator(self, contract_spec: CarrierSpec, emulator: Any) -> Iterator[None]:
        """Remember the spec and the emulator's URL for the helpers; always clear faults after."""
        self._spec = contract_spec
        url = getattr(emulator, "url", emulator)
        if not isinstance(url, str) or not url.startswith("http"):
            pytest.fail("the `emulator` fixture must give the running emulator (an EmulatorServer "
                        f"or anything with a .url), got {emulator!r}", pytrace=False)
        self._emulator_url = url.rstrip("/")
        try:
            yield
        finally:
            self.set_faults(_NO_FAULTS)

    # -- helpers --------------------------------------------------------------------------

    def new_reference(self) -> str:
        """A fresh idempotency key shaped like the engine's: ``<Amazon order id>-<package>``."""
        return f"{self._order_id()}-1"

    @staticmethod
    def _order_id() -> str:
        rng = random.SystemRandom()
        return f"{rng.randrange(100, 1000)}-{rng.randrange(10**7):07d}-{rng.randrange(10**7):07d}"

    def make_request(self, reference: str | None = None, **overrides: Any) -> ShipmentRequest:
        """A complete request for the sample parcel; keyword arguments replace fields."""
        reference = reference or self.new_reference()
        length, width, height = self.parcel_size_cm
        parcel = Parcel(weight_g=sum(line.unit_weight_g * line.quantity for line in self.sku_lines),
                        length_cm=length, width_cm=width, height_cm=height, contents=self.sku_lines)
        order_id, _, _ = reference.rpartition("-")
        if not re.fullmatch(r"\d{3}-\d{7}-\d{7}", order_id):
            order_id = self._order_id()
        request = ShipmentRequest(reference=reference, order_id=order_id, site=self.site,
                                  service=self._service(), ship_from=self.ship_from,
                                  ship_to=self.destination, parcel=parcel)
        return dataclasses.replace(request, **overrides) if overrides else request

    def _service(self) -> str:
        if self.service:
            return self.service
        spec = self._spec
        if not spec.services:
            pytest.fail(f"carrier {self.carrier_code!r} registers no services; set `service`",
                        pytrace=False)
        return spec.services[0].code

    def emulator_state(self) -> dict[str, Any]:
        """``GET /_sandbox/state``: what the emulator issued and accepted."""
        return sandbox_state(self._emulator_url)

    def set_faults(self, rates: dict[str, float]) -> None:
        """``POST /_sandbox/faults``, e.g. ``{"malformed": 1.0}``; kinds not named are turned
        off. Faults are cleared after every contract test."""
        set_faults(self._emulator_url, rates)

    def clear_faults(self) -> None:
        self.set_faults(_NO_FAULTS)

    def advance_clock(self, seconds: float) -> None:
        """``POST /_sandbox/clock``: move the emulator's simulated time forward."""
        advance_clock(self._emulator_url, seconds)

    def labels_created(self, reference: str) -> int:
        """How many labels the emulator issued under ``reference`` (0 when none)."""
        labels = self.emulator_state().get("labels")
        if not isinstance(labels, dict):
            pytest.fail("the emulator's sandbox_state() must report {'labels': {reference: "
                        "{'created': n}}} (the sandbox state convention)", pytrace=False)
        entry = labels.get(reference) or {}
        return int(entry.get("created", 0))

    def tracking_number_of(self, carrier: Carrier, shipment: Shipment) -> str:
        """The shipment's tracking number: from ``create_shipment`` or, when the carrier assigns it
        later, from ``find_by_reference`` (asked up to :attr:`tracking_number_attempts` times)."""
        number = shipment.tracking_number
        for _ in range(self.tracking_number_attempts):
            if number:
                return number
            time.sleep(self.tracking_number_wait_seconds)
            found = carrier.find_by_reference(shipment.reference)
            number = found.tracking_number if found else None
        if not number:
            pytest.fail(f"no tracking number for {shipment.reference} after "
                        f"{self.tracking_number_attempts} find_by_reference calls", pytrace=False)
        return number

    def create(self, carrier: Carrier, reference: str | None = None) -> Shipment:
        """Create a shipment for a fresh (or the given) reference, with faults off."""
        return carrier.create_shipment(self.make_request(reference))

    # -- the spec --------------------------------------------------------------------------

    def test_spec_is_registered_through_an_entry_point(self) -> None:
        spec, report = find_registered_carrier(self.carrier_code)
        assert report.status == "loaded", report.error
        assert report.distribution and report.version, \
            f"plugin {report.name} is not reported with its distribution and version"
        assert spec.code == self.carrier_code and spec.label.strip()
        assert "mfn_register_sandbox_emulators" in report.hooks, \
            f"plugin {report.name} registers no sandbox emulator (mfn_register_sandbox_emulators)"

    def test_spec_names_amazon_codes_services_and_settings(self, contract_spec: CarrierSpec) -> None:
        spec = contract_spec
        if not spec.confirms_shipment:  # a self-confirming label is never confirmed with a code
            assert spec.amazon_carrier_code.strip(), "amazon_carrier_code must be Amazon's CarrierCode"
            assert spec.carrier_code_for(self.site), f"{spec.code} does not ship from site {self.site}"
        for site, code in {"*": spec.amazon_carrier_code or None, **spec.site_carrier_codes}.items():
            assert code is None or (code.strip() and code != "Other"), \
                (f"site {site}: carrier code {code!r}; use Amazon's listed code, or None where "
                 "Amazon does not accept the carrier (never a silent 'Other')")
        assert spec.services, "register at least one ServiceSpec"
        codes = [s.code for s in spec.services]
        assert len(codes) == len(set(codes)), f"duplicate service codes: {codes}"
        for service in spec.services:
            assert service.code.strip() and service.name.strip(), service
            assert service.tracking_level in TRACKING_LEVELS, \
                f"service {service.code}: tracking_level {service.tracking_level!r} not in {TRACKING_LEVELS}"
        if spec.tracking_number_pattern:
            re.compile(spec.tracking_number_pattern)
        self._check_settings(spec.settings)

    @staticmethod
    def _check_settings(settings: type[CarrierSettings]) -> None:
        from jsonschema.validators import validator_for

        from .settings import CarrierSettings, Secret

        assert isinstance(settings, type) and issubclass(settings, CarrierSettings), \
            "CarrierSpec.settings must be a CarrierSettings subclass (connector.kit)"
        schema = settings.SCHEMA
        fields = {f.name: f for f in dataclasses.fields(settings) if f.init}
        properties = schema.get("properties") or {}
        only_fields = sorted(set(fields) - set(properties))
        only_properties = sorted(set(properties) - set(fields))
        assert not only_fields and not only_properties, (
            f"{settings.__name__}: fields and SCHEMA properties differ: only fields {only_fields}, "
            f"only properties {only_properties}")
        hints = typing.get_type_hints(settings)
        plain = [name for name, prop in properties.items() if prop.get("x-secret") and Secret not in
                 (hints[name], *typing.get_args(hints[name]))]
        assert not plain, f"{settings.__name__}: type x-secret settings as Secret: {plain}"

        assert isinstance(schema, dict) and schema.get("type") == "object", \
            "settings_schema must be a JSON Schema for an object (the carriers.<code> section)"
        validator_for(schema).check_schema(schema)
        properties = schema.get("properties") or {}
        assert properties, "settings_schema lists no properties: document the carrier's settings"
        unmarked = [name for name, prop in properties.items()
                    if _SECRET_NAMES.search(name) and not prop.get("x-secret")]
        assert not unmarked, f"mark secret settings with \"x-secret\": true: {unmarked}"

    def test_amazon_accepts_the_carrier_code_where_it_ships(self, contract_spec: CarrierSpec) -> None:
        """On every site the carrier ships from, its carrier code is one confirmShipment takes
        (as the SP-API emulator enforces it); a site it does not serve maps to None. Sites without
        site rules (no orders are shipped there) are skipped; with none installed for any of them,
        the test is, naming the plugin that has them."""
        if contract_spec.confirms_shipment:
            pytest.skip(f"{contract_spec.code}'s labels confirm themselves: no carrier code is sent")
        codes = {site: contract_spec.carrier_code_for(site) for site in amazon_sites()}
        accepted = {site: amazon_carrier_codes(site) for site, code in codes.items() if code is not None}
        if not any(accepted.values()):
            pytest.skip("no installed plugin gives Amazon's site rules for the sites "
                        f"{contract_spec.code} ships to, so its carrier codes cannot be checked: install "
                        "mfn-marketplace-amazon (plugins/marketplaces/amazon in mfn-connector's source)")
        refused = {site: codes[site] for site, listed in accepted.items()
                   if listed and codes[site] not in listed}
        assert not refused, f"Amazon does not accept these carrier codes: {refused}"

    def test_capabilities_include_the_required_operations(self, contract_spec: CarrierSpec,
                                                          carrier: Carrier) -> None:
        assert isinstance(carrier, Carrier), "the `carrier` fixture must give a Carrier instance"
        assert carrier.code == contract_spec.code
        capabilities = contract_spec.capabilities()
        missing = [op for op in REQUIRED_OPERATIONS if op not in capabilities]
        assert not missing, (f"missing operations {missing} (capabilities: {capabilities}); the "
                             "factory must be your Carrier subclass, overriding each of them")

    # -- operations -----------------------------------------------------------------------

    def test_quote_returns_positive_prices(self, contract_spec: CarrierSpec, carrier: Carrier) -> None:
        if "quote" not in contract_spec.capabilities():
            pytest.skip(f"{contract_spec.code} has no quote operation (optional: a rate card can "
                        "price it)")
        request = self.make_request()
        quotes = carrier.quote(request)
        assert quotes, f"no quote for service {request.service} to {self.destination.country_code}"
        for quote in quotes:
            assert isinstance(quote, Quote), quote
            assert quote.carrier == contract_spec.code, quote
            assert isinstance(quote.price, Money) and quote.price.amount > 0, quote
        assert request.service in {q.service for q in quotes}, \
            f"no quote for the requested service {request.service}: {quotes}"

    def test_create_returns_a_shipment_with_a_valid_tracking_number(
            self, contract_spec: CarrierSpec, carrier: Carrier) -> None:
        request = self.make_request()
        shipment = carrier.create_shipment(request)
        assert isinstance(shipment, Shipment), shipment
        assert shipment.carrier == contract_spec.code and shipment.reference == request.reference
        assert shipment.carrier_shipment_id, "carrier_shipment_id must be the carrier's own id"
        number = self.tracking_number_of(carrier, shipment)
        pattern = contract_spec.pattern_for(carrier)  # the configured carrier's, or the spec's
        if pattern:
            assert re.fullmatch(pattern, number), f"tracking number {number!r} does not match {pattern!r}"
        if not contract_spec.confirms_shipment:  # Amazon must take the number in confirmShipment
            code = contract_spec.carrier_code_for(self.site)
            assert re.match(amazon_tracking_format(code), number), \
                f"Amazon refuses tracking number {number!r} for carrier code {code!r}"
        assert self.labels_created(request.reference) == 1

    def test_emulator_holds_the_service_to_its_declared_limits(self, carrier: Carrier) -> None:
        """The emulator refuses a parcel one gram over the service's ``max_weight_g`` and a
        destination outside its ``destinations`` -- from the same ServiceSpec data the rules use,
        so a limit cannot differ between the daemon and its sandbox -- and buys nothing."""
        service = self._spec.service(self._service())
        if service is None or service.max_weight_g is None:
            pytest.skip("the service declares no weight limit")
        request = self.make_request()
        heavy = dataclasses.replace(request.parcel, weight_g=service.max_weight_g + 1)
        with pytest.raises(PermanentCarrierError):
            carrier.create_shipment(dataclasses.replace(request, parcel=heavy))
        assert self.labels_created(request.reference) == 0
        at_limit = self.make_request()
        carrier.create_shipment(dataclasses.replace(
            at_limit, parcel=dataclasses.replace(at_limit.parcel, weight_g=service.max_weight_g)))
        assert self.labels_created(at_limit.reference) == 1
        # Buy Shipping ships to the address on Amazon's order, not to the request's ship_to
        if service.destinations and "KP" not in service.destinations and not self._spec.confirms_shipment:
            unserved = self.make_request(ship_to=dataclasses.replace(self.destination, country_code="KP"))
            with pytest.raises(PermanentCarrierError):
                carrier.create_shipment(unserved)
            assert self.labels_created(unserved.reference) == 0

    def test_get_label_returns_a_pdf(self, carrier: Carrier) -> None:
        from pypdf import PdfReader

        shipment = self.create(carrier)
        self.tracking_number_of(carrier, shipment)
        data = carrier.get_label(shipment)
        assert isinstance(data, bytes) and data.startswith(b"%PDF-"), data[:20]
        assert len(PdfReader(io.BytesIO(data)).pages) >= 1

    def test_find_by_reference(self, carrier: Carrier) -> None:
        shipment = self.create(carrier)
        found = carrier.find_by_reference(shipment.reference)
        assert isinstance(found, Shipment), found
        assert (found.reference, found.carrier_shipment_id) == (shipment.reference,
                                                                 shipment.carrier_shipment_id)
        assert carrier.find_by_reference(self.new_reference()) is None

    def test_duplicate_create_yields_the_same_shipment(self, carrier: Carrier) -> None:
        request = self.make_request()
        first = carrier.create_shipment(request)
        again = self._create_again(carrier, request)
        assert again.carrier_shipment_id == first.carrier_shipment_id
        assert self.labels_created(request.reference) == 1

    def _create_again(self, carrier: Carrier, request: ShipmentRequest) -> Shipment:
        """A repeated create: the same shipment back, or DuplicateReferenceError and then
        ``find_by_reference`` finds it (what the engine does)."""
        try:
            return carrier.create_shipment(request)
        except DuplicateReferenceError:
            found = carrier.find_by_reference(request.reference)
            assert found is not None, \
                f"DuplicateReferenceError for {request.reference}, but find_by_reference finds nothing"
            return found

    @pytest.mark.parametrize("fault", ["timeout", "reset"])
    def test_ambiguous_failure_then_reconcile(self, carrier: Carrier, fault: str) -> None:
        request = self.make_request()
        self.set_faults({fault: 1.0, "timeout_seconds": self.fault_timeout_seconds})
        try:
            carrier.create_shipment(request)
        except TransientCarrierError:
            pass
        except Exception as exc:  # noqa: BLE001 - the type is the assertion
            pytest.fail(f"a {fault} on create_shipment raised {type(exc).__name__}: {exc}; it must "
                        "raise TransientCarrierError (the outcome is unknown)", pytrace=False)
        else:
            pytest.fail(f"create_shipment returned although the emulator's answer was a {fault}; is "
                        f"the `carrier` read timeout below {self.fault_timeout_seconds}s?",
                        pytrace=False)
        self.clear_faults()
        assert self.labels_created(request.reference) == 1, "the emulator should have made the label"
        found = carrier.find_by_reference(request.reference)
        assert found is not None and found.reference == request.reference, \
            "find_by_reference must find the label the ambiguous call bought"
        again = self._create_again(carrier, request)
        assert again.carrier_shipment_id == found.carrier_shipment_id
        assert self.labels_created(request.reference) == 1, "a second label was bought"

    def test_server_error_is_transient_and_buys_nothing(self, carrier: Carrier) -> None:
        request = self.make_request()
        self.set_faults({"error_5xx": 1.0})
        with pytest.raises(TransientCarrierError):
            carrier.create_shipment(request)
        self.clear_faults()
        assert self.labels_created(request.reference) == 0
        assert carrier.find_by_reference(request.reference) is None

    @pytest.mark.parametrize("operation", ["quote", "create_shipment", "find_by_reference",
                                           "get_label", "track", "cancel"])
    def test_malformed_answer_is_transient(self, contract_spec: CarrierSpec, carrier: Carrier,
                                           operation: str) -> None:
        if operation not in contract_spec.capabilities():
            pytest.skip(f"{contract_spec.code} has no {operation} operation")
        call = self._operation(carrier, operation)
        garbled = self._faults_injected("malformed")
        self.set_faults({"malformed": 1.0})
        try:
            call()
        except TransientCarrierError:
            return
        except Exception as exc:  # noqa: BLE001 - the type is the assertion
            pytest.fail(f"{operation} on a malformed answer raised {type(exc).__name__}: {exc}; it "
                        "must raise TransientCarrierError", pytrace=False)
        if self._faults_injected("malformed") == garbled:
            pytest.skip(f"{operation} sent no request to the emulator (e.g. quotes from a rate card)")
        pytest.fail(f"{operation} returned normally from a malformed (truncated) answer",
                    pytrace=False)

    def _faults_injected(self, kind: str) -> int:
        return int(self.emulator_state().get("faults_injected", {}).get(kind, 0))

    def _operation(self, carrier: Carrier, operation: str) -> Callable[[], Any]:
        """The call to make for ``operation``, prepared with faults off."""
        request = self.make_request()
        if operation in ("quote", "create_shipment"):
            return lambda: getattr(carrier, operation)(request)
        shipment = carrier.create_shipment(request)
        number = self.tracking_number_of(carrier, shipment)
        shipment = dataclasses.replace(shipment, tracking_number=number)
        return {"find_by_reference": lambda: carrier.find_by_reference(request.reference),
                "get_label": lambda: carrier.get_label(shipment),
                "track": lambda: carrier.track([number]),
                "cancel": lambda: carrier.cancel(shipment)}[operation]

    def test_cancel_a_fresh_label(self, carrier: Carrier) -> None:
        shipment = self.create(carrier)
        self.tracking_number_of(carrier, shipment)
        assert carrier.cancel(shipment) is True
        found = carrier.find_by_reference(shipment.reference)
        assert found is None or found.status == "cancelled", \
            f"after cancel, find_by_reference must return None or a cancelled shipment: {found}"
        # The engine cancels again after a crash behind the first call, and whenever the lookup
        # does not show a label cancelled (it may lag): a label cancelled before is done.
        assert carrier.cancel(shipment) is True, "cancelling a label cancelled before must answer True"

    def test_track_after_the_clock_moves(self, carrier: Carrier) -> None:
        shipment = self.create(carrier)
        number = self.tracking_number_of(carrier, shipment)
        self.advance_clock(self.clock_advance_seconds)
        infos = carrier.track([number])
        assert all(isinstance(i, TrackingInfo) for i in infos), infos
        info = next((i for i in infos if i.tracking_number == number), None)
        assert info is not None, f"track([{number!r}]) returned no TrackingInfo for it: {infos}"
        assert isinstance(info.status, TrackingStatus)
        assert info.events, f"no tracking event {self.clock_advance_seconds / 86400:g} days after creation"
        for event in info.events:
            assert isinstance(event, TrackingEvent) and isinstance(event.status, TrackingStatus)
            assert event.time.tzinfo is not None, f"event time must be timezone-aware: {event}"
