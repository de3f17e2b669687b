"""Registration through the hooks and the entry point, and the typed settings."""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points

import jsonschema
import pytest
from mfn_carrier_amazon_shipping import mfn_register_carriers, mfn_register_sandbox_emulators, sandbox_data
from mfn_carrier_amazon_shipping.api import BUSINESS_IDS
from mfn_carrier_amazon_shipping.client import AmazonShippingCarrier
from mfn_carrier_amazon_shipping.sandbox import BuyShippingEmulator
from mfn_carrier_amazon_shipping.settings import (
    DEFAULT_CARRIER_IDS,
    DEFAULT_TRACKING_PATTERNS,
    SCHEMA,
    SERVICE_IDS,
    AmazonShippingSettings,
)

from connector.kit import TRACKING_LEVELS, CarrierSpec, SettingsError
from connector.kit.amazon import SpApiEmulator, get_site


def _registered(hook) -> list:
    found: list = []
    hook(register=found.append)
    return found


def test_carrier_spec():
    [spec] = _registered(mfn_register_carriers)
    assert isinstance(spec, CarrierSpec)
    assert (spec.code, spec.label, spec.load_factory()) == (
        "amazon_shipping",
        "Amazon Buy Shipping",
        AmazonShippingCarrier,
    )
    assert spec.settings is AmazonShippingSettings and spec.settings_schema is SCHEMA
    assert spec.confirms_shipment is True
    assert set(spec.capabilities()) == set(AmazonShippingCarrier.OPERATIONS)
    # A label that confirms itself is never confirmed with a carrier code, so the spec names none;
    # which sites Buy Shipping may ship from is the site rules' call (``confirms_shipment``).
    assert spec.amazon_carrier_code == "" and spec.site_carrier_codes == {}
    assert all(spec.carrier_code_for(site) is None for site in ("US", "UK", "DE", "JP", "SE"))
    assert spec.service("cheapest") is not None
    assert all(s.tracking_level in TRACKING_LEVELS and s.amazon_shipping_method for s in spec.services)
    assert spec.tracking_number_pattern == ""


def test_emulator_spec_mounts_on_the_spapi_emulator():
    [spec] = _registered(mfn_register_sandbox_emulators)
    assert (spec.name, spec.mount_on) == ("amazon_shipping", "spapi")
    assert (spec.port_offset, spec.env_var) == (None, "")  # no server of its own
    host = SpApiEmulator({"orders_per_seller": 5})
    extension = spec.factory(host, {})
    assert isinstance(extension, BuyShippingEmulator) and host.extensions == [extension]
    served = {name for _, _, _, name in host.routes()}
    assert {"getRates", "purchaseShipment", "getShipmentDocuments", "getTracking", "cancelShipment"} <= served
    assert host.quotas["purchaseShipment"] == {"rate": 80.0, "burst": 100.0}
    state = host.state()
    assert (state["labels"], state["buy_shipping"], state["buy_shipping_rate_requests"]) == ({}, {}, 0)
    with pytest.raises(ValueError, match="package_ids"):
        spec.factory(SpApiEmulator({"orders_per_seller": 5}), {"package_ids": "random"})


def test_services_are_those_the_sandbox_offers():
    [spec] = _registered(mfn_register_carriers)
    codes = {s.code for s in spec.services} - {"cheapest"}
    assert codes == set(sandbox_data.SERVICES)
    for service in spec.services:
        if service.code != "cheapest":
            assert service.name == sandbox_data.SERVICES[service.code].name
            assert service.max_weight_g == sandbox_data.SERVICES[service.code].max_weight_g
    # every site the emulator sells Buy Shipping on has a business id the carrier can send
    assert set(sandbox_data.BUY_SHIPPING_SITES) <= set(AmazonShippingSettings.from_section({}).business_ids)
    assert all(get_site(site) for site in sandbox_data.BUY_SHIPPING_SITES)


def test_entry_point():
    [ep] = [e for e in entry_points(group="mfn_connector") if e.name == "carrier_amazon_shipping"]
    assert ep.value == "mfn_carrier_amazon_shipping"


def test_schema_accepts_defaults_and_refuses_mistakes():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    good = {
        "business_ids": {"DE": "AmazonShipping_FR"},
        "rate_choice": "cheapest",
        "label_size": {"width": 10, "length": 15, "unit": "CENTIMETER"},
        "services": ["DHLEC_PKD"],
    }
    assert list(validator.iter_errors({})) == [] and list(validator.iter_errors(good)) == []
    for bad in (
        {"business_ids": {"SE": "AmazonShipping_UK"}},
        {"business_ids": {"DE": "AmazonShipping_DE"}},
        {"rate_choice": "fastest"},
        {"label_format": "ZPL"},
        {"services": []},
        {"unknown": 1},
        {"label_size": {"width": 4, "length": 6}},
        {"timeout_seconds": 5},  # no HTTP settings of its own: the SP-API clients carry them
    ):
        assert list(validator.iter_errors(bad)), bad


def test_schema_defaults_are_the_settings_defaults():
    defaults = AmazonShippingSettings.from_section({})
    assert {f.name for f in dataclasses.fields(AmazonShippingSettings)} == set(SCHEMA["properties"])
    assert defaults.business_ids == BUSINESS_IDS
    assert defaults.carrier_ids == DEFAULT_CARRIER_IDS
    assert defaults.tracking_patterns == DEFAULT_TRACKING_PATTERNS
    assert defaults.services == SERVICE_IDS
    assert (defaults.default_business_id, defaults.rate_choice, defaults.label_format) == (
        "AmazonShipping_US", "service", "PDF")
    assert defaults.label_size == {"width": 4, "length": 6, "unit": "INCH"}
    assert defaults.label_dpi is None and defaults.reconcile_by_tracking is True
    assert defaults.label_cache_size == 256


def test_settings_from_a_section():
    resolved = AmazonShippingSettings.from_section(
        {"business_ids": {"NL": "AmazonShipping_FR"}, "carrier_ids": {"Yun": "YUNEXPRESS"}, "label_dpi": 300}
    )
    assert (
        resolved.business_ids["NL"] == "AmazonShipping_FR"
        and resolved.business_ids["US"] == "AmazonShipping_US"
    )
    assert resolved.carrier_ids["Yun"] == "YUNEXPRESS" and resolved.carrier_ids["China Post"] == "CHINAPOST"
    assert resolved.label_dpi == 300
    assert AmazonShippingSettings.from_section(None) == AmazonShippingSettings.from_section({})
    for bad in (
        [],
        {"nope": 1},
        {"rate_choice": "x"},
        {"business_ids": {"SE": "AmazonShipping_UK"}},
        {"services": []},
        {"tracking_patterns": {"YUNEXPRESS": "(unclosed"}},  # checked after the schema
        {"carrier_ids": {"Acme Post": "ACME"}},  # a carrierId track() could not recognise
    ):
        with pytest.raises(SettingsError, match="carriers.amazon_shipping"):
            AmazonShippingSettings.from_section(bad)  # type: ignore[arg-type]
