"""Registration through the hooks, and the settings schema the configuration loader validates with."""
from __future__ import annotations

import re

import jsonschema
import pytest
from mfn_carrier_yunexpress import mfn_register_carriers, mfn_register_sandbox_emulators
from mfn_carrier_yunexpress.client import YunExpressCarrier
from mfn_carrier_yunexpress.sandbox import YunExpressEmulator
from mfn_carrier_yunexpress.settings import SCHEMA, YunExpressSettings

from connector.kit import TRACKING_LEVELS, CarrierContext, CarrierSpec, Secret, SettingsError


def _registered(hook) -> list:
    found: list = []
    hook(register=found.append)
    return found


def test_carrier_spec():
    [spec] = _registered(mfn_register_carriers)
    assert isinstance(spec, CarrierSpec)
    assert (spec.code, spec.label) == ("yunexpress", "YunExpress (云途)")
    assert spec.amazon_carrier_code == "Yun Express" and spec.carrier_code_for("DE") == "Yun Express"
    assert spec.load_factory() is YunExpressCarrier and spec.settings is YunExpressSettings
    assert spec.settings_schema is SCHEMA
    assert spec.batch_sizes == {"create": 10, "track": 1}
    assert "Shenzhen" in spec.pickup.cities
    assert set(spec.capabilities()) == set(YunExpressCarrier.OPERATIONS)
    assert {s.code: s.tracking_level for s in spec.services} == {
        "AYPZXR": "fully_tracked", "AYUZXR": "fully_tracked", "AYPZXU": "untracked", "THPHR": "tracked",
        "ZXR": "fully_tracked"}
    assert all(s.tracking_level in TRACKING_LEVELS and s.amazon_shipping_method for s in spec.services)
    pattern = re.compile(spec.tracking_number_pattern)  # the default source's: TrackingNumber
    assert pattern.match("YT2222222222222222") and pattern.match("D1234567") and not pattern.match("D1")


SECTION = {"base_url": "http://h", "customer_code": "C", "api_secret": "s"}


@pytest.mark.parametrize(("settings", "accepted", "refused"), [
    ({}, ["D1234567", "YT2222222222222222", "9400111899223344556677", "AB123456789GB"],
     ["D1", "D 1234567", "D1234567\n", "ＤＸ1234567"]),
    ({"tracking_number_source": "WayBillNumber"}, ["YT2222222222222222"], ["D1234567", "YT222"]),
    ({"tracking_number_pattern": r"^D\d{7}$"}, ["D1234567"], ["YT2222222222222222"]),
])
def test_the_tracking_number_pattern_follows_the_source_or_the_setting(settings, accepted, refused):
    """A last-mile TrackingNumber (the captured GetOrder's "D1234567") is no "YT" waybill: checked
    against the waybill's pattern, a label already paid for was held invalid_tracking_number."""
    [spec] = _registered(mfn_register_carriers)
    carrier = spec.build({**SECTION, **settings}, CarrierContext.default())
    assert [n for n in accepted if not spec.accepts_tracking_number(n, carrier)] == []
    assert [n for n in refused if spec.accepts_tracking_number(n, carrier)] == []
    assert carrier.tracking_number_pattern == spec.pattern_for(carrier)


def test_a_tracking_number_pattern_that_is_no_regex_is_refused():
    with pytest.raises(SettingsError, match="tracking_number_pattern"):
        YunExpressSettings.from_section({**SECTION, "tracking_number_pattern": "(YT"},
                                        where="carriers.yunexpress")


def test_emulator_spec():
    [spec] = _registered(mfn_register_sandbox_emulators)
    assert (spec.name, spec.port_offset, spec.env_var) == ("yunexpress", 1, "MFN_SANDBOX_YUNEXPRESS")
    assert isinstance(spec.factory({}), YunExpressEmulator)


def test_schema_is_valid_and_marks_the_secret():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["api_secret"]["x-secret"] is True
    assert SCHEMA["required"] == ["base_url", "customer_code", "api_secret"]


def test_schema_accepts_the_sandbox_section_and_refuses_mistakes():
    validator = jsonschema.Draft202012Validator(SCHEMA)
    section = {"base_url": "http://127.0.0.1:8701", "customer_code": "C88888", "api_secret": "sandbox-secret",
               "timeout_seconds": 2}
    assert list(validator.iter_errors(section)) == []
    for bad in ({**section, "api_secret": ""}, {**section, "timeout_seconds": 0},
                {**section, "api_secrte": "x"}, {**section, "tracking_number_source": "AgentNumber"},
                {**section, "services": []},
                {k: v for k, v in section.items() if k != "base_url"}):
        assert list(validator.iter_errors(bad)), bad


def test_typed_settings_take_the_schema_defaults():
    settings = YunExpressSettings.from_section({"base_url": "http://h/", "customer_code": "C",
                                                "api_secret": "s", "max_requests_per_second": None,
                                                "services": ["ZXR"]})
    for name, prop in SCHEMA["properties"].items():
        if "default" in prop and name != "services":
            default = prop["default"]
            assert getattr(settings, name) == (tuple(default) if isinstance(default, list) else default), name
    assert settings.api_root == "http://h/api" and settings.services == ("ZXR",)
    assert settings.timeouts == (5.0, 30.0) and settings.max_requests_per_second is None
    assert isinstance(settings.api_secret, Secret) and "'s'" not in repr(settings)


@pytest.mark.parametrize("section", [[], {"base_url": "http://h", "customer_code": "C", "api_secret": ""}])
def test_typed_settings_refuse_incomplete_sections(section):
    with pytest.raises(SettingsError, match="carriers.yunexpress"):
        YunExpressSettings.from_section(section, where="carriers.yunexpress")
