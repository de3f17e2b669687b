"""connector.kit.ratecard: what carrier plugins with a rate card share in their settings, and the
tracking levels their quotes carry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jsonschema
import pytest

from connector.kit.carrier import ServiceSpec
from connector.kit.ratecard import (
    RATE_CARD_SCHEMA,
    RateCard,
    RateCardSettings,
    rate_card_setting,
    services_setting,
    tracking_levels,
)
from connector.kit.settings import HttpSettings, SettingsError, settings_schema

ROW = {"service": "STD", "countries": "*", "max_weight_g": 2000, "base": "5", "per_kg": "10",
       "currency": "USD"}
CSV = "service,countries,max_weight_g,base,per_kg,currency,transit_days\nECO,*,2000,1,2,USD,20\n"


@dataclass(frozen=True, kw_only=True)
class CardSettings(HttpSettings, RateCardSettings):
    SCHEMA: ClassVar[dict[str, Any]] = settings_schema(
        "carriers.test", properties={"services": services_setting(["STD"], "to quote"),
                                     "rate_card": rate_card_setting([ROW], "the card")})
    services: tuple[str, ...]


def test_tracking_levels_of_the_services():
    services = (ServiceSpec("A", "a", "untracked"), ServiceSpec("B", "b", "fully_tracked"),
                ServiceSpec("C", "c"))
    assert tracking_levels(services) == {"A": "untracked", "B": "fully_tracked", "C": "tracked"}
    assert tracking_levels(()) == {}


def test_services_setting():
    free = services_setting(("X", "Y"), "to quote")
    assert free == {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True,
                    "minItems": 1, "default": ["X", "Y"], "description": "to quote"}
    known = jsonschema.Draft202012Validator(services_setting(["X"], "to quote", codes=("X", "Y")))
    assert not list(known.iter_errors(["Y"]))
    for bad in ([], ["X", "X"], ["Z"]):
        assert list(known.iter_errors(bad)), bad


def test_rate_card_setting_is_the_rate_card_schema_with_its_default():
    rows = (dict(ROW),)
    schema = rate_card_setting(rows, "the card")
    assert schema == {**RATE_CARD_SCHEMA, "default": [ROW], "description": "the card"}
    assert schema["default"][0] is not rows[0]  # a copy: the schema never aliases the plugin's data
    schema["items"]["properties"]["service"]["minLength"] = 5
    assert RATE_CARD_SCHEMA["items"]["properties"]["service"]["minLength"] == 1


def test_settings_hold_the_card_built_from_the_rows():
    settings = CardSettings.from_section({})
    assert isinstance(settings.card, RateCard) and settings.card.services() == ["STD"]
    assert settings.rate_card == (ROW,) and "per_kg" not in repr(settings)
    assert CardSettings.from_section({"rate_card": []}).card.rows == []


def test_a_row_that_prices_nothing_is_refused_with_the_settings():
    with pytest.raises(SettingsError, match=r"carriers\.test: rate_card: rate card row 1"):
        CardSettings.from_section({"rate_card": [{**ROW, "base": "cheap"}]})


def test_an_empty_card_stands_for_the_packaged_one(tmp_path, monkeypatch):
    package = tmp_path / "mfn_test_card_pkg"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "card.csv").write_text(CSV)
    monkeypatch.syspath_prepend(str(tmp_path))

    @dataclass(frozen=True, kw_only=True)
    class PackagedSettings(CardSettings):
        PACKAGED_RATE_CARD: ClassVar[tuple[str, str] | None] = ("mfn_test_card_pkg", "data/card.csv")

    assert PackagedSettings.from_section({"rate_card": []}).card.services() == ["ECO"]
    assert PackagedSettings.from_section({}).card.services() == ["STD"]  # configured rows win
