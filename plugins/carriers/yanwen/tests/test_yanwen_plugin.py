"""Registration through the hooks, Amazon's codes per site, and the settings schema."""
from __future__ import annotations

import copy
import dataclasses
import re

import jsonschema
import pytest
from mfn_carrier_yanwen import mfn_register_carriers, mfn_register_sandbox_emulators
from mfn_carrier_yanwen.client import YanwenCarrier
from mfn_carrier_yanwen.sandbox import YanwenEmulator
from mfn_carrier_yanwen.settings import (
    DEFAULT_RATE_CARD,
    SETTINGS_SCHEMA,
    YanwenSettings,
    resolve_settings,
)

from connector.carriers import TRACKING_LEVELS, CarrierSpec
from connector.config import apply_defaults, secret_paths
from connector.plugins import load_plugins
from connector.ratecard import RATE_CARD_SCHEMA
from connector.sandbox.spapi import ACCEPTED_CARRIER_CODES, TRACKING_FORMATS


def _registered(hook) -> list:
    found: list = []
    hook(register=found.append)
    return found


def test_carrier_spec():
    [spec] = _registered(mfn_register_carriers)
    assert isinstance(spec, CarrierSpec)
    assert (spec.code, spec.label) == ("yanwen", "Yanwen (燕文)")
    assert spec.factory is YanwenCarrier and spec.settings_schema is SETTINGS_SCHEMA
    assert spec.batch_sizes == {"create": 1, "track": 30, "lookup": 50}
    assert "Shenzhen" in spec.pickup_cities
    assert set(spec.capabilities()) == set(YanwenCarrier.OPERATIONS)
    assert {s.code: s.tracking_level for s in spec.services} == {
        "481": "fully_tracked", "482": "fully_tracked", "464": "tracked", "466": "untracked"}
    assert all(s.tracking_level in TRACKING_LEVELS and s.amazon_shipping_method for s in spec.services)


def test_found_through_its_entry_point():
    host = load_plugins()
    report = host.reports["carrier_yanwen"]
    assert report.status == "loaded" and report.distribution == "mfn-carrier-yanwen"
    assert "yanwen" in host.carriers() and "yanwen" in host.emulators()


def test_amazon_carrier_code_per_site_matches_the_spapi_table():
    [spec] = _registered(mfn_register_carriers)
    for site, accepted in ACCEPTED_CARRIER_CODES.items():
        code = spec.carrier_code_for(site)
        assert code in accepted, (site, code)
    assert spec.carrier_code_for("US") == "Yanwen" and spec.carrier_code_for("JP") == "Yanwen"
    assert spec.carrier_code_for("DE") == "YANWEN" and spec.carrier_code_for("UK") == "YANWEN"


def test_tracking_pattern_is_no_looser_than_amazons():
    [spec] = _registered(mfn_register_carriers)
    ours = re.compile(spec.tracking_number_pattern)
    emulator = YanwenEmulator({"seed": 7})
    issued = [emulator._numbers(seq, prefix)[0] for seq in (1, 42, 999_999) for prefix in ("UG", "YW")]
    samples = issued + ["LX123456785CN", "YW1234567890", "UG123456785YP"]
    for number in samples:
        assert ours.fullmatch(number), number
        for code in ("Yanwen", "YANWEN"):
            assert re.match(TRACKING_FORMATS[code], number), (code, number)
    for bad in ("YT2222222222222222", "UG12345YP", "ug123456785yp", "1234567890123", "YW12"):
        assert not ours.fullmatch(bad), bad


def test_emulator_spec():
    [spec] = _registered(mfn_register_sandbox_emulators)
    assert (spec.name, spec.port_offset, spec.env_var) == ("yanwen", 3, "MFN_SANDBOX_YANWEN")
    emulator = spec.factory({})
    assert isinstance(emulator, YanwenEmulator)
    assert emulator.accepted_credentials == {"100000": "sandbox-token"}
    section = {"user_id": "7", "api_token": "t", "customer_number": "C"}
    configured = spec.factory({"carrier_settings": section})
    assert configured.accepted_credentials == {"7": "t"} and configured.customer_numbers == {"7", "C"}
    with pytest.raises(ValueError, match="duplicate_mode"):
        spec.factory({"duplicate_mode": "maybe"})


def test_schema_is_valid_and_marks_the_secret():
    jsonschema.Draft202012Validator.check_schema(SETTINGS_SCHEMA)
    assert secret_paths(SETTINGS_SCHEMA) == [("api_token",)]
    assert SETTINGS_SCHEMA["required"] == ["base_url", "user_id", "api_token"]
    assert SETTINGS_SCHEMA["additionalProperties"] is False
    assert SETTINGS_SCHEMA["properties"]["rate_card"]["items"] == RATE_CARD_SCHEMA["items"]


def test_schema_accepts_a_sandbox_section_and_refuses_mistakes():
    validator = jsonschema.Draft202012Validator(SETTINGS_SCHEMA)
    section = {"base_url": "http://127.0.0.1:8703", "user_id": "100000", "api_token": "sandbox-token",
               "timeout_seconds": 2}
    assert list(validator.iter_errors(section)) == []
    for bad in ({**section, "api_token": ""}, {**section, "timeout_seconds": 0},
                {**section, "api_tokn": "x"}, {**section, "quote_source": "guess"},
                {**section, "services": []}, {**section, "track_batch_size": 31},
                {**section, "timestamp_unit": "s"}, {**section, "user_id": "1 2"},
                {**section, "rate_card": [{"service": "481", "countries": "usa", "max_weight_g": 1,
                                           "base": 1, "per_kg": 1, "currency": "CNY"}]},
                {k: v for k, v in section.items() if k != "base_url"}):
        assert list(validator.iter_errors(bad)), bad


def test_schema_defaults_are_the_settings_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(YanwenSettings)}
    for name, prop in SETTINGS_SCHEMA["properties"].items():
        if "default" in prop:
            default = prop["default"]
            assert fields[name] == (tuple(default) if isinstance(default, list) else default), name
    assert fields["rate_card"] == DEFAULT_RATE_CARD


def test_the_loaders_defaults_resolve():
    """What the configuration loader hands the factory: the section with the schema's defaults."""
    section = apply_defaults(SETTINGS_SCHEMA, {"base_url": "http://127.0.0.1:8703", "user_id": "100000",
                                               "api_token": "sandbox-token"})
    settings = resolve_settings(copy.deepcopy(section))
    assert settings.quote_source == "rate_card" and settings.rate_card == DEFAULT_RATE_CARD
    assert settings.tracking_url == "http://127.0.0.1:8703/api/tracking"
    assert settings.tracking_authorization == "100000" and settings.max_requests_per_second is None
    assert settings.timeouts == (5.0, 30.0) and settings.cancelled_statuses == (5,)
    assert YanwenCarrier(section).quote  # the factory takes it as is


@pytest.mark.parametrize("section", [None, [], {"base_url": "http://h", "user_id": "1", "api_token": " "}])
def test_resolve_settings_refuses_incomplete_sections(section):
    with pytest.raises(ValueError, match="carriers.yanwen"):
        resolve_settings(section)
