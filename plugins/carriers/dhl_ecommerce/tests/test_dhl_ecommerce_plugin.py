"""Registration through the hooks, and the settings schema the configuration loader validates with."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
from dhl_ecommerce_testkit import AMAZON_TRACKING_FORMAT
from mfn_carrier_dhl_ecommerce import mfn_register_carriers, mfn_register_sandbox_emulators
from mfn_carrier_dhl_ecommerce.client import DhlEcommerceCarrier
from mfn_carrier_dhl_ecommerce.sandbox import DhlEcommerceEmulator
from mfn_carrier_dhl_ecommerce.settings import EXAMPLE_RATE_CARD, DhlEcommerceSettings

from connector.kit import TRACKING_LEVELS, CarrierSpec, RateCard, Secret, SettingsError, packaged_rows
from connector.kit.testing import amazon_carrier_codes, amazon_sites, amazon_tracking_format

SCHEMA = DhlEcommerceSettings.SCHEMA


def example_rate_card_rows() -> list[dict]:
    return packaged_rows("mfn_carrier_dhl_ecommerce", EXAMPLE_RATE_CARD)


def _registered(hook) -> list:  # noqa: ANN001
    found: list = []
    hook(register=found.append)
    return found


def test_carrier_spec() -> None:
    [spec] = _registered(mfn_register_carriers)
    assert isinstance(spec, CarrierSpec)
    assert (spec.code, spec.amazon_carrier_code) == ("dhl_ecommerce", "DHL eCommerce")
    assert spec.site_carrier_codes == {}  # the same Amazon carrier code on every site
    assert spec.load_factory() is DhlEcommerceCarrier and spec.settings is DhlEcommerceSettings
    assert spec.settings_schema is SCHEMA
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
    assert spec.tracking_number_pattern == AMAZON_TRACKING_FORMAT == amazon_tracking_format("DHL eCommerce")
    # on every site with site rules (ZA has none: nothing is shipped there)
    assert all("DHL eCommerce" in amazon_carrier_codes(site) for site in amazon_sites() if site != "ZA")
    pattern = re.compile(spec.tracking_number_pattern)
    assert pattern.fullmatch("7027018415475994") and not pattern.fullmatch("70270")


def test_emulator_spec() -> None:
    [spec] = _registered(mfn_register_sandbox_emulators)
    assert (spec.name, spec.port_offset, spec.env_var) == ("dhl_ecommerce", 4, "MFN_SANDBOX_DHL_ECOMMERCE")
    assert isinstance(spec.factory({}), DhlEcommerceEmulator)


def test_schema_is_valid_and_marks_the_secret() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["password"]["x-secret"] is True
    assert SCHEMA["additionalProperties"] is False


def test_schema_accepts_the_sandbox_section_and_refuses_mistakes() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
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


def test_typed_settings_take_the_schema_defaults() -> None:
    defaults = DhlEcommerceSettings.from_section({"base_url": "http://h/"})
    for name, prop in SCHEMA["properties"].items():
        if "default" in prop:
            default = prop["default"]
            assert getattr(defaults, name) == (tuple(default) if isinstance(default, list) else default), name
    settings = DhlEcommerceSettings.from_section(
        {"base_url": "http://h/", "max_requests_per_second": None, "services": ["PPM"]}
    )
    assert (
        settings.root == "http://h"
        and settings.services == ("PPM",)
        and settings.max_requests_per_second is None
    )
    assert settings.timeouts == (5.0, 30.0) and settings.token_refresh_margin_seconds == 1800.0
    assert isinstance(settings.password, Secret) and "sandbox-password" not in repr(settings)
    assert settings.card.services() == ["PPM", "PKD", "PLT"]  # rate_card [] = the packaged example


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
        {"base_url": "http://h", "rate_card": [{**example_rate_card_rows()[0], "base": "1,5"}]},
    ],
)
def test_typed_settings_refuse_bad_sections(section) -> None:  # noqa: ANN001
    with pytest.raises(SettingsError, match="carriers.dhl_ecommerce"):
        DhlEcommerceSettings.from_section(section)


def test_the_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("| setting | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `(\w+)`(?: / `(\w+)`)? \|", table, re.M)
    documented = {name for row in rows for name in row if name}
    assert documented == set(SCHEMA["properties"])
