"""Registration through the hooks, Amazon's codes per site, and the settings schema."""
from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import jsonschema
import pytest
from mfn_carrier_yanwen import mfn_register_carriers, mfn_register_sandbox_emulators
from mfn_carrier_yanwen.client import YanwenCarrier
from mfn_carrier_yanwen.sandbox import YanwenEmulator
from mfn_carrier_yanwen.settings import EXAMPLE_RATE_CARD, SCHEMA, YanwenSettings

from connector.kit import (
    RATE_CARD_SCHEMA,
    TRACKING_LEVELS,
    CarrierContext,
    CarrierSpec,
    RateCard,
    Secret,
    SettingsError,
)
from connector.kit.schema import apply_defaults, secret_paths
from connector.kit.testing import (
    amazon_carrier_codes,
    amazon_sites,
    amazon_tracking_format,
    find_registered_carrier,
)

# What Amazon's site table (the mfn-marketplace-amazon plugin's sites.yaml, which the SP-API
# emulator's confirmShipment enforces) lists for Yanwen: "YANWEN" on the EU-region sites except IN,
# "Yanwen" on IN (Amazon IN's FAQ) and the NA/FE sites; and the emulator's tracking-number format
# for both spellings. Written out here so a change to either side shows up as a diff.
AMAZON_SITES = ("US", "CA", "MX", "BR", "UK", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR",
                "AE", "SA", "EG", "IN", "ZA", "JP", "AU", "SG")
AMAZON_EU_REGION_SITES = frozenset({"UK", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR", "AE",
                                    "SA", "EG", "IN", "ZA"})
AMAZON_TRACKING_FORMATS = {"Yanwen": r"^(UG|LX|YW|VR)?[A-Z0-9]{10,20}$",
                           "YANWEN": r"^(UG|LX|YW|VR)?[A-Z0-9]{10,20}$"}


def _registered(hook) -> list:
    found: list = []
    hook(register=found.append)
    return found


def test_carrier_spec():
    [spec] = _registered(mfn_register_carriers)
    assert isinstance(spec, CarrierSpec)
    assert (spec.code, spec.label) == ("yanwen", "Yanwen (燕文)")
    assert spec.load_factory() is YanwenCarrier and spec.settings is YanwenSettings
    assert spec.settings_schema is SCHEMA
    assert spec.batch_sizes == {"create": 1, "track": 30, "lookup": 50}
    assert "Shenzhen" in spec.pickup.cities
    assert set(spec.capabilities()) == set(YanwenCarrier.OPERATIONS)
    assert {s.code: s.tracking_level for s in spec.services} == {
        "481": "fully_tracked", "482": "fully_tracked", "464": "tracked", "466": "untracked"}
    assert all(s.tracking_level in TRACKING_LEVELS and s.amazon_shipping_method for s in spec.services)


def test_found_through_its_entry_point():
    spec, report = find_registered_carrier("yanwen")
    assert report.name == "carrier_yanwen" and spec.load_factory() is YanwenCarrier
    assert report.status == "loaded" and report.distribution == "mfn-carrier-yanwen"
    assert "carrier:yanwen" in report.registered and "mfn_register_sandbox_emulators" in report.hooks


def test_amazon_carrier_code_per_site_matches_the_site_table():
    [spec] = _registered(mfn_register_carriers)
    assert set(AMAZON_SITES) == set(amazon_sites())
    for site in AMAZON_SITES:
        code = spec.carrier_code_for(site)
        assert code == ("YANWEN" if site in AMAZON_EU_REGION_SITES - {"IN"} else "Yanwen"), (site, code)
        if site != "ZA":  # ZA has no site rules: nothing is shipped there
            assert code in amazon_carrier_codes(site), (site, code)
            assert {"Yanwen", "YANWEN"} & amazon_carrier_codes(site) == {code}, site
    for code, pattern in AMAZON_TRACKING_FORMATS.items():
        assert amazon_tracking_format(code) == pattern, code
    assert spec.carrier_code_for("US") == "Yanwen" and spec.carrier_code_for("JP") == "Yanwen"
    assert spec.carrier_code_for("DE") == "YANWEN" and spec.carrier_code_for("UK") == "YANWEN"
    assert spec.carrier_code_for("IN") == "Yanwen"  # Amazon IN's FAQ spelling


def test_tracking_pattern_is_no_looser_than_amazons():
    [spec] = _registered(mfn_register_carriers)
    ours = re.compile(spec.tracking_number_pattern)
    emulator = YanwenEmulator({"seed": 7})
    issued = [emulator._numbers(seq, prefix)[0] for seq in (1, 42, 999_999) for prefix in ("UG", "YW")]
    samples = issued + ["LX123456785CN", "YW1234567890", "UG123456785YP"]
    for number in samples:
        assert ours.fullmatch(number), number
        for code in ("Yanwen", "YANWEN"):
            assert re.match(AMAZON_TRACKING_FORMATS[code], number), (code, number)
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
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert secret_paths(SCHEMA) == [("api_token",)]
    assert SCHEMA["required"] == ["base_url", "user_id", "api_token"]
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["properties"]["rate_card"]["items"] == RATE_CARD_SCHEMA["items"]


def test_schema_accepts_a_sandbox_section_and_refuses_mistakes():
    validator = jsonschema.Draft202012Validator(SCHEMA)
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


def test_typed_settings_take_the_schema_defaults():
    fields = [f for f in dataclasses.fields(YanwenSettings) if f.init]
    assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING for f in fields)
    settings = YanwenSettings.from_section({"base_url": "http://h/", "user_id": "1", "api_token": "tok-9f2"})
    for name, prop in SCHEMA["properties"].items():
        if "default" in prop:
            default = prop["default"]
            assert getattr(settings, name) == (tuple(default) if isinstance(default, list) else default), name
    assert settings.rate_card == EXAMPLE_RATE_CARD and isinstance(settings.card, RateCard)
    assert isinstance(settings.api_token, Secret) and "tok-9f2" not in repr(settings)


def test_the_loaders_defaults_resolve():
    """What the configuration loader hands the factory: the section with the schema's defaults."""
    section = apply_defaults(SCHEMA, {"base_url": "http://127.0.0.1:8703", "user_id": "100000",
                                      "api_token": "sandbox-token"})
    [spec] = _registered(mfn_register_carriers)
    carrier = spec.build(copy.deepcopy(section), CarrierContext.default())  # as the daemon builds it
    settings = carrier.settings
    assert settings.quote_source == "rate_card" and settings.rate_card == EXAMPLE_RATE_CARD
    assert settings.tracking_url == "http://127.0.0.1:8703/api/tracking"
    assert settings.tracking_authorization == "100000" and settings.max_requests_per_second is None
    assert settings.timeouts == (5.0, 30.0) and settings.cancelled_statuses == (5,)
    assert isinstance(carrier, YanwenCarrier) and carrier.quote  # the factory takes it as is


@pytest.mark.parametrize("section", [None, [], {"base_url": "http://h", "user_id": "1", "api_token": " "}])
def test_typed_settings_refuse_incomplete_sections(section):
    with pytest.raises(SettingsError, match="carriers.yanwen"):
        YanwenSettings.from_section(section, where="carriers.yanwen")


def test_readme_documents_every_setting_with_its_default():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `(\w+)` \| ([^|]*) \|", section, re.M)}
    assert sorted(rows) == sorted(SCHEMA["properties"])
    for name, prop in SCHEMA["properties"].items():
        documented, default = rows[name].replace("`", ""), prop.get("default")
        if name in SCHEMA["required"]:
            expected = "required"
        elif name == "rate_card":
            expected = "example rows"
        elif isinstance(default, (bool, list)) or default is None or default == "":
            expected = json.dumps(default, ensure_ascii=False)
        elif isinstance(default, str):
            expected = default
        else:
            expected = str(default)
        assert documented.startswith(expected), (name, documented, expected)
