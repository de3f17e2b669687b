"""Registration through the hooks, and the settings schema the configuration loader validates with."""
from __future__ import annotations

import re

import jsonschema
import pytest
from mfn_carrier_chinapost import mfn_register_carriers, mfn_register_sandbox_emulators
from mfn_carrier_chinapost.client import ChinaPostCarrier
from mfn_carrier_chinapost.s10 import make_s10
from mfn_carrier_chinapost.sandbox import ChinaPostEmulator
from mfn_carrier_chinapost.settings import EXAMPLE_RATE_CARD, SCHEMA, ChinaPostSettings

from connector.kit import RATE_CARD_SCHEMA, TRACKING_LEVELS, CarrierSpec, Secret, SettingsError, packaged_rows
from connector.kit.testing import amazon_carrier_codes, amazon_sites, amazon_tracking_format

# Amazon's carrier code for China Post and the tracking-number format Amazon checks it against
# (UPU S10 posted in China): the values the SP-API emulator uses.
AMAZON_CARRIER_CODE = "China Post"
AMAZON_TRACKING_FORMAT = r"^[A-Z]{2}\d{9}CN$"


def _registered(hook) -> list:
    found: list = []
    hook(register=found.append)
    return found


def test_carrier_spec():
    [spec] = _registered(mfn_register_carriers)
    assert isinstance(spec, CarrierSpec)
    assert spec.code == "chinapost" and spec.amazon_carrier_code == "China Post"
    assert spec.load_factory() is ChinaPostCarrier and spec.settings is ChinaPostSettings
    assert spec.settings_schema is SCHEMA
    assert set(spec.capabilities()) == set(ChinaPostCarrier.OPERATIONS)
    assert {s.code: s.tracking_level for s in spec.services} == {
        "EUB": "tracked", "REGISTERED": "tracked", "EMS": "fully_tracked"}
    assert all(s.tracking_level in TRACKING_LEVELS and s.amazon_shipping_method and s.max_weight_g
               for s in spec.services)


def test_amazon_accepts_the_carrier_code_and_the_numbers_on_every_site():
    [spec] = _registered(mfn_register_carriers)
    assert spec.site_carrier_codes == {}  # no site overrides: the same code everywhere
    for site in amazon_sites():
        assert spec.carrier_code_for(site) == AMAZON_CARRIER_CODE, site
        if amazon_carrier_codes(site):  # a site without site rules (ZA) ships nothing
            assert spec.carrier_code_for(site) in amazon_carrier_codes(site), site
    assert amazon_tracking_format(AMAZON_CARRIER_CODE) == AMAZON_TRACKING_FORMAT
    amazon = re.compile(AMAZON_TRACKING_FORMAT)
    ours = re.compile(spec.tracking_number_pattern)
    for number in (make_s10("LX", 1), make_s10("RR", 12345678), make_s10("EE", 99_999_999)):
        assert amazon.match(number) and ours.match(number)
    assert not ours.match("EE473124829US") and not ours.match("YT2222222222222222")


def test_emulator_spec():
    [spec] = _registered(mfn_register_sandbox_emulators)
    assert (spec.name, spec.port_offset, spec.env_var) == ("chinapost", 2, "MFN_SANDBOX_CHINAPOST")
    assert isinstance(spec.factory({}), ChinaPostEmulator)
    with pytest.raises(ValueError, match="duplicate_mode"):
        spec.factory({"duplicate_mode": "sometimes"})


def test_schema_is_valid_and_marks_the_secrets():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    secrets = {k for k, v in SCHEMA["properties"].items() if v.get("x-secret")}
    assert secrets == {"key", "tracking_token"}
    assert SCHEMA["required"] == ["base_url", "ec_company_id", "key"]
    assert SCHEMA["additionalProperties"] is False


def test_schema_accepts_the_sandbox_section_and_refuses_mistakes():
    validator = jsonschema.Draft202012Validator(SCHEMA)
    section = {"base_url": "http://127.0.0.1:8702", "ec_company_id": "SANDBOX-ECID", "key": "sandbox-key",
               "tracking_token": "sandbox-token", "timeout_seconds": 2,
               "rate_card": [{"service": "EUB", "countries": "US,CA", "max_weight_g": 2000, "base": "20",
                              "per_kg": 96, "currency": "CNY", "transit_days": 12}]}
    assert list(validator.iter_errors(section)) == []
    for bad in ({**section, "key": ""}, {**section, "timeout_seconds": 0}, {**section, "kye": "x"},
                {**section, "digest_encoding": "md5"}, {**section, "services": []},
                {**section, "services": ["SAL"]}, {**section, "biz_product_codes": {"SAL": "9"}},
                {**section, "rate_card": [{"service": "EUB", "countries": "usa"}]},
                {**section, "tracking_language": "fr"},
                {k: v for k, v in section.items() if k != "ec_company_id"}):
        assert list(validator.iter_errors(bad)), bad


def test_packaged_example_rate_card_is_valid():
    rows = packaged_rows("mfn_carrier_chinapost", EXAMPLE_RATE_CARD)
    assert rows and list(jsonschema.Draft202012Validator(RATE_CARD_SCHEMA).iter_errors(rows)) == []
    assert {r["service"] for r in rows} == {"EUB", "REGISTERED", "EMS"}


def test_typed_settings_take_the_schema_defaults():
    settings = ChinaPostSettings.from_section({"base_url": "http://h/a/", "ec_company_id": "E", "key": "k",
                                               "biz_product_codes": {"EMS": "019"}, "services": ["EMS"]})
    for name, prop in SCHEMA["properties"].items():
        if "default" in prop and name not in ("services", "biz_product_codes"):
            default = prop["default"]
            assert getattr(settings, name) == (tuple(default) if isinstance(default, list) else default), name
    assert settings.api_root == "http://h/a" and settings.tracking_root == "http://h/a"
    assert settings.biz_product_codes == {"EUB": "001", "REGISTERED": "002", "EMS": "019"}
    assert settings.services == ("EMS",)
    assert settings.effective_sender_no == "E" and settings.timeouts == (5.0, 30.0)
    assert list(settings.rate_card) == packaged_rows("mfn_carrier_chinapost", EXAMPLE_RATE_CARD)
    assert isinstance(settings.key, Secret) and "'k'" not in repr(settings)
    assert settings.tracking_token is None and settings.sender_no is None


@pytest.mark.parametrize("section", [None, [], {"base_url": "http://h", "ec_company_id": "E", "key": " "}])
def test_typed_settings_refuse_incomplete_sections(section):
    with pytest.raises(SettingsError, match="carriers.chinapost"):
        ChinaPostSettings.from_section(section, where="carriers.chinapost")
