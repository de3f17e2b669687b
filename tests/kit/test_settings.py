"""connector.kit.settings: one JSON Schema gives validation, defaults and a typed, frozen object."""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pytest

from connector.kit import HttpSettings, Secret, SettingsError, settings_schema


@dataclasses.dataclass(frozen=True, kw_only=True)
class DemoSettings(HttpSettings):
    SCHEMA: ClassVar[dict[str, Any]] = settings_schema(
        "carriers.demo", required=["base_url", "api_key"],
        properties={
            "base_url": {"type": "string", "pattern": "^https?://"},
            "api_key": {"type": "string", "minLength": 1, "x-secret": True},
            "services": {"type": "array", "items": {"type": "string"}, "default": ["A", "B"]},
            "codes": {"type": "object", "additionalProperties": {"type": "string"}, "default": {"X": "1"}},
            "offset_hours": {"type": "number", "default": 8},
            "batch": {"type": "integer", "minimum": 1, "default": 30},
        })

    base_url: str
    api_key: Secret
    services: tuple[str, ...]
    codes: dict[str, str]
    offset_hours: float
    batch: int

    def __post_init__(self) -> None:
        if "B" in self.services and self.batch > 50:
            raise ValueError("service B takes batches of at most 50")


def test_defaults_types_and_secret():
    settings = DemoSettings.from_section({"base_url": "http://h", "api_key": "k3y", "batch": 5})
    assert settings.services == ("A", "B") and settings.codes == {"X": "1"}
    assert settings.offset_hours == 8.0 and isinstance(settings.offset_hours, float)
    assert settings.batch == 5 and settings.timeouts == (5.0, 30.0) and settings.verify_tls is True
    assert settings.max_requests_per_second is None
    assert settings.api_key == "k3y" and isinstance(settings.api_key, Secret)
    assert "k3y" not in repr(settings) and "'***'" in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.batch = 6  # type: ignore[misc]


def test_errors_name_every_field_and_never_a_value():
    with pytest.raises(SettingsError) as caught:
        DemoSettings.from_section({"base_url": "ftp://h", "api_key": "", "batch": 0, "typo": "s3cret"},
                                  where="carriers.demo")
    message = str(caught.value)
    for expected in ("carriers.demo.base_url: has the wrong format",
                     "carriers.demo.api_key: must not be empty", "carriers.demo.batch: must be >= 1",
                     "carriers.demo.typo: unknown field"):
        assert expected in message
    assert "s3cret" not in message and "ftp://h" not in message


@pytest.mark.parametrize("key", ["api_key:s3cret", "api_key=s3cret", "api_key s3cret"])
def test_a_value_glued_to_its_field_name_is_not_echoed_as_an_unknown_field(key):
    """`{api_key:s3cret}` (no space after the colon, in a flow mapping) is one key to YAML: the
    unknown-field message quoted it, secret and all."""
    with pytest.raises(SettingsError) as caught:
        DemoSettings.from_section({"base_url": "http://h", key: None}, where="carriers.demo")
    message = str(caught.value)
    assert "s3cret" not in message, message
    assert "carriers.demo: missing required field 'api_key'" in message
    assert "unknown field" in message and "did you mean 'api_key'?" in message


def test_post_init_checks_become_settings_errors():
    with pytest.raises(SettingsError, match="carriers.demo: service B takes batches of at most 50"):
        DemoSettings.from_section({"base_url": "http://h", "api_key": "k", "batch": 60},
                                  where="carriers.demo")


def test_not_a_mapping_and_an_instance():
    with pytest.raises(SettingsError, match="expected a mapping"):
        DemoSettings.from_section(["x"])
    settings = DemoSettings.from_section({"base_url": "http://h", "api_key": "k"})
    assert DemoSettings.from_section(settings) is settings


def test_a_field_without_a_default_anywhere_is_a_plugin_bug():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Broken(HttpSettings):
        SCHEMA: ClassVar[dict[str, Any]] = settings_schema("carriers.broken", properties={
            "region": {"type": "string"}})
        region: str

    with pytest.raises(TypeError, match="Broken.region: not required and without a default"):
        Broken.from_section({})


NOT_FINITE = "must be a finite number, not .inf or .nan"


@pytest.mark.parametrize("settings, said", [
    ({"timeout_seconds": float("inf")}, f"timeout_seconds: {NOT_FINITE}"),
    ({"offset_hours": float("nan")}, f"offset_hours: {NOT_FINITE}"),
    ({"max_requests_per_second": float("inf")}, f"max_requests_per_second: {NOT_FINITE}"),  # or null
    ({"connect_timeout_seconds": 10**23}, "connect_timeout_seconds: must be <= 315360000 (ten years)"),
    ({"offset_hours": 87601}, "offset_hours: must be <= 87600 (ten years)")])
def test_a_plugins_numbers_are_finite_and_its_durations_at_most_ten_years(settings, said):
    with pytest.raises(SettingsError) as info:
        DemoSettings.from_section({"base_url": "http://h", "api_key": "k3y", **settings},
                                  where="carriers.demo")
    assert str(info.value) == f"carriers.demo.{said}"
