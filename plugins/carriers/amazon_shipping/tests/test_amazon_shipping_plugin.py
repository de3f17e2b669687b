"""Registration through the hook, the entry point, and the settings schema."""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points

import jsonschema
import pytest
from mfn_carrier_amazon_shipping import AMAZON_CARRIER_CODE, mfn_register_carriers
from mfn_carrier_amazon_shipping.client import AmazonShippingCarrier
from mfn_carrier_amazon_shipping.settings import (
    BUY_SHIPPING_SITES,
    SETTINGS_SCHEMA,
    AmazonShippingSettings,
    resolve_settings,
)

from connector.amazon.sites import SITES
from connector.carriers import TRACKING_LEVELS, CarrierSpec
from connector.sandbox import buy_shipping
from connector.sandbox.spapi import ACCEPTED_CARRIER_CODES


def test_carrier_spec():
    found: list = []
    mfn_register_carriers(register=found.append)
    [spec] = found
    assert isinstance(spec, CarrierSpec)
    assert (spec.code, spec.label, spec.factory) == (
        "amazon_shipping",
        "Amazon Buy Shipping",
        AmazonShippingCarrier,
    )
    assert spec.needs_amazon is True and spec.confirms_shipment is True
    assert set(spec.capabilities()) == set(AmazonShippingCarrier.OPERATIONS)
    assert spec.settings_schema is SETTINGS_SCHEMA
    # routable on the Buy Shipping sites only
    assert {s for s in SITES if spec.carrier_code_for(s) is not None} == set(BUY_SHIPPING_SITES)
    assert spec.amazon_carrier_code == AMAZON_CARRIER_CODE
    # never a real carrier code: a confirmShipment sent by mistake would be refused, not recorded
    assert all(AMAZON_CARRIER_CODE not in codes for codes in ACCEPTED_CARRIER_CODES.values())
    assert spec.service("cheapest") is not None
    assert all(s.tracking_level in TRACKING_LEVELS and s.amazon_shipping_method for s in spec.services)
    assert spec.tracking_number_pattern == ""


def test_services_are_those_the_sandbox_offers():
    found: list = []
    mfn_register_carriers(register=found.append)
    codes = {s.code for s in found[0].services} - {"cheapest"}
    assert codes == set(buy_shipping.SERVICES)
    for service in found[0].services:
        if service.code != "cheapest":
            assert service.name == buy_shipping.SERVICES[service.code].name
            assert service.max_weight_g == buy_shipping.SERVICES[service.code].max_weight_g
    assert set(BUY_SHIPPING_SITES) == set(buy_shipping.BUY_SHIPPING_SITES)


def test_entry_point():
    [ep] = [e for e in entry_points(group="mfn_connector") if e.name == "carrier_amazon_shipping"]
    assert ep.value == "mfn_carrier_amazon_shipping"


def test_schema_accepts_defaults_and_refuses_mistakes():
    jsonschema.Draft202012Validator.check_schema(SETTINGS_SCHEMA)
    validator = jsonschema.Draft202012Validator(SETTINGS_SCHEMA)
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
    ):
        assert list(validator.iter_errors(bad)), bad


def test_schema_defaults_are_the_settings_defaults():
    defaults = AmazonShippingSettings()
    for name, prop in SETTINGS_SCHEMA["properties"].items():
        if "default" in prop:
            value = getattr(defaults, name)
            expected = tuple(prop["default"]) if isinstance(prop["default"], list) else prop["default"]
            assert value == expected, name
    assert {f.name for f in dataclasses.fields(AmazonShippingSettings)} == set(SETTINGS_SCHEMA["properties"])


def test_resolve_settings():
    resolved = resolve_settings(
        {"business_ids": {"NL": "AmazonShipping_FR"}, "carrier_ids": {"Yun": "YUNEXPRESS"}, "label_dpi": 300}
    )
    assert (
        resolved.business_ids["NL"] == "AmazonShipping_FR"
        and resolved.business_ids["US"] == "AmazonShipping_US"
    )
    assert resolved.carrier_ids["Yun"] == "YUNEXPRESS" and resolved.carrier_ids["China Post"] == "CHINAPOST"
    assert resolved.label_dpi == 300 and resolve_settings(None) == AmazonShippingSettings()
    for bad in (
        [],
        {"nope": 1},
        {"rate_choice": "x"},
        {"business_ids": {"SE": "AmazonShipping_UK"}},
        {"services": []},
    ):
        with pytest.raises(ValueError, match="carriers.amazon_shipping"):
            resolve_settings(bad)  # type: ignore[arg-type]
