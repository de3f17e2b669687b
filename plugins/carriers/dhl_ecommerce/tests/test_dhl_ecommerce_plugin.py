"""Registration through the hooks, and the settings schema the configuration loader validates with."""

from __future__ import annotations

import dataclasses
import re

import jsonschema
import pytest
from mfn_carrier_dhl_ecommerce import mfn_register_carriers, mfn_register_sandbox_emulators
from mfn_carrier_dhl_ecommerce.client import DhlEcommerceCarrier
from mfn_carrier_dhl_ecommerce.sandbox import DhlEcommerceEmulator
from mfn_carrier_dhl_ecommerce.settings import (
    SETTINGS_SCHEMA,
    DhlEcommerceSettings,
    example_rate_card_rows,
    resolve_settings,
)

from connector.carriers import TRACKING_LEVELS, CarrierSpec
from connector.ratecard import RateCard
from connector.sandbox.spapi import ACCEPTED_CARRIER_CODES, TRACKING_FORMATS


def _registered(hook) -> list:  # noqa: ANN001
    found: list = []
    hook(register=found.append)
    return found


def test_carrier_spec() -> None:
    [spec] = _registered(mfn_register_carriers)
    assert isinstance(spec, CarrierSpec)
    assert (spec.code, spec.amazon_carrier_code) == ("dhl_ecommerce", "DHL eCommerce")
    assert all("DHL eCommerce" in codes for codes in ACCEPTED_CARRIER_CODES.values())
    assert spec.factory is DhlEcommerceCarrier and spec.settings_schema is SETTINGS_SCHEMA
    assert spec.batch_sizes["track"] == 100
    assert set(spec.capabilities()) == set(DhlEcommerceCarrier.OPERATIONS)
    levels = {s.code: s.tracking_level for s in spec.services}
    assert levels == {
        "PPM": "fully_tracked",
        "PKD": "tracked",
        "PLT": "fully_tracked",
        "PPS": "fully_tracked",
        "PKM": "tracked",
        "PLE": "fully_tracked",
        "PLD": "fully_tracked",
        "PKW": "tracked",
        "PKG": "untracked",
    }
    for service in spec.services:
        assert service.tracking_level in TRACKING_LEVELS and service.amazon_shipping_method
        assert service.max_weight_g in (2000, 20000)
    assert spec.tracking_number_pattern == TRACKING_FORMATS["DHL eCommerce"]
    pattern = re.compile(spec.tracking_number_pattern)
    assert pattern.fullmatch("7027018415475994") and not pattern.fullmatch("70270")


def test_emulator_spec() -> None:
    [spec] = _registered(mfn_register_sandbox_emulators)
    assert (spec.name, spec.port_offset, spec.env_var) == ("dhl_ecommerce", 4, "MFN_SANDBOX_DHL_ECOMMERCE")
    assert isinstance(spec.factory({}), DhlEcommerceEmulator)


def test_schema_is_valid_and_marks_the_secret() -> None:
    jsonschema.Draft202012Validator.check_schema(SETTINGS_SCHEMA)
    assert SETTINGS_SCHEMA["properties"]["password"]["x-secret"] is True
    assert SETTINGS_SCHEMA["additionalProperties"] is False


def test_schema_accepts_the_sandbox_section_and_refuses_mistakes() -> None:
    validator = jsonschema.Draft202012Validator(SETTINGS_SCHEMA)
    section = {
        "base_url": "http://127.0.0.1:8704",
        "client_id": "sandbox-client",
        "password": "sandbox-password",
        "pickup_account_id": "5999999",
        "sold_to_account_id": "5999999",
        "shipment_id_prefix": "CNMFN",
        "timeout_seconds": 2,
        "ioss_field": "shipmentContents.iossNumber",
        "rate_card": example_rate_card_rows(),
    }
    assert list(validator.iter_errors(section)) == []
    for bad in (
        {**section, "password": ""},
        {**section, "timeout_seconds": 0},
        {**section, "pasword": "x"},
        {**section, "handover_method": 3},
        {**section, "shipment_id_prefix": "CN MFN"},
        {**section, "ioss_field": "remarks; drop"},
        {**section, "tracking_batch_size": 101},
        {**section, "incoterm": "EXW"},
        {**section, "rate_card": [{"service": "PPM"}]},
        {k: v for k, v in section.items() if k != "base_url"},
    ):
        assert list(validator.iter_errors(bad)), bad


def test_schema_defaults_are_the_settings_defaults() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(DhlEcommerceSettings)}
    for name, prop in SETTINGS_SCHEMA["properties"].items():
        if "default" in prop:
            default = prop["default"]
            assert fields[name] == (tuple(default) if isinstance(default, list) else default), name
    resolved = resolve_settings(
        {"base_url": "http://h/", "max_requests_per_second": None, "services": ["PPM"]}
    )
    assert (
        resolved.root == "http://h"
        and resolved.services == ("PPM",)
        and resolved.max_requests_per_second is None
    )
    assert resolved.timeouts == (5.0, 30.0) and resolved.token_refresh_margin_seconds == 1800.0
    assert "sandbox-password" not in repr(resolved)


def test_the_example_rate_card_loads_and_prices_the_default_services() -> None:
    card = RateCard.from_rows(example_rate_card_rows())
    assert card.services() == ["PPM", "PKD", "PLT"]


@pytest.mark.parametrize(
    "section",
    [
        None,
        [],
        {"base_url": " "},
        {"base_url": "http://h", "shipment_id_prefix": "A B"},
        {"base_url": "http://h", "ioss_field": "x.y"},
        {"base_url": "http://h", "tracking_batch_size": 0},
        {"base_url": "http://h", "nope": 1},
    ],
)
def test_resolve_settings_refuses_bad_sections(section) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="carriers.dhl_ecommerce"):
        resolve_settings(section)
