"""Typed settings built from a plugin's JSON Schema: one schema, one frozen dataclass, no hand checks.

A carrier plugin declares its ``carriers.<code>`` section once, as a JSON Schema, and a frozen
dataclass whose fields are the schema's properties::

    @dataclass(frozen=True, kw_only=True)
    class AcmeSettings(HttpSettings):
        SCHEMA: ClassVar[dict] = settings_schema(
            "carriers.acmepost", required=["base_url", "api_key"],
            properties={"base_url": URL, "api_key": {"type": "string", "minLength": 1, "x-secret": True},
                        "services": {"type": "array", "items": {"type": "string"}, "default": ["STD"]}})
        base_url: str
        api_key: Secret
        services: tuple[str, ...]

``AcmeSettings.from_section(section, where="carriers.acmepost")`` validates the section against
the schema (errors name the field path and never echo a value), applies the schema's defaults and
converts each value to its field's type (lists to tuples, numbers to float, ``x-secret`` strings
to :class:`Secret`). Defaults live in the schema only: a field that is neither required nor
defaulted there is a bug in the plugin and fails loudly. ``__post_init__`` may check what a JSON
Schema cannot express and raise ``ValueError``.
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar, Union

from .schema import apply_defaults, format_path, problems

S = TypeVar("S", bound="Settings")


class SettingsError(ValueError):
    """A settings section that does not validate; the message names every bad field."""


class Secret(str):
    """A secret setting: a plain ``str`` to the code that uses it, ``'***'`` in every repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


URL: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": "^https?://",
                       "x-format": "an http(s) URL"}
"""Schema of a URL setting."""

HTTP_PROPERTIES: dict[str, dict[str, Any]] = {
    "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30,
                        "description": "read timeout of every call"},
    "connect_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5},
    "verify_tls": {"type": "boolean", "default": True,
                   "description": "check the server's TLS certificate"},
    "max_requests_per_second": {
        "type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
        "description": "pace calls client-side at this rate (null: no pacing)"},
}
"""The settings every HTTP carrier has (:class:`HttpSettings`)."""


def settings_schema(title: str, *, properties: Mapping[str, dict[str, Any]], required: list[str] = (),
                    description: str = "", http: bool = True) -> dict[str, Any]:
    """A closed object schema for ``carriers.<code>``; ``http`` adds :data:`HTTP_PROPERTIES`."""
    props = {**(copy.deepcopy(HTTP_PROPERTIES) if http else {}), **properties}
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
                              "type": "object", "additionalProperties": False, "properties": props}
    if description:
        schema["description"] = description
    if required:
        schema["required"] = list(required)
    return schema


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Typed settings of one configuration section (the core's own sections use it too); see the
    module docstring."""

    SCHEMA: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    @classmethod
    def from_section(cls: type[S], section: Mapping[str, Any] | S | None, *, where: str = "") -> S:
        if isinstance(section, cls):
            return section
        where = where or str(cls.SCHEMA.get("title") or cls.__name__)
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise SettingsError(f"{where}: expected a mapping of settings")
        data = copy.deepcopy(dict(section))
        found = problems(cls.SCHEMA, data)
        if found:
            raise SettingsError("\n".join(f"{format_path((where, *path))}: {message}"
                                          for path, message in found))
        apply_defaults(cls.SCHEMA, data)
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.name in data:
                values[f.name] = _coerce(data[f.name], hints[f.name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise TypeError(f"{cls.__name__}.{f.name}: not required and without a default in "
                                f"{cls.__name__}.SCHEMA (a bug in the plugin)")
        try:
            return cls(**values)
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from None


@dataclasses.dataclass(frozen=True, kw_only=True)
class CarrierSettings(Settings):
    """Base of a carrier plugin's ``carriers.<code>`` settings."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class HttpSettings(CarrierSettings):
    """The settings :data:`HTTP_PROPERTIES` describes, read by ``Transport.for_settings``."""

    timeout_seconds: float
    connect_timeout_seconds: float
    verify_tls: bool
    max_requests_per_second: float | None

    @property
    def timeouts(self) -> tuple[float, float]:
        """``(connect, read)`` as ``requests`` takes them."""
        return (self.connect_timeout_seconds, self.timeout_seconds)


def _coerce(value: Any, kind: Any) -> Any:
    """``value`` (as JSON Schema validated it) converted to the annotation ``kind``."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)))
    if origin is tuple:
        item = args[0] if args else Any
        return tuple(_coerce(v, item) for v in value)
    if origin is list:
        return [_coerce(v, args[0] if args else Any) for v in value]
    if origin in (dict, Mapping) or kind in (dict, Mapping):
        item = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, item) for k, v in value.items()}
    if isinstance(kind, type) and issubclass(kind, Settings):
        return kind.from_section(value)
    if kind is Secret:
        return Secret(value)
    if kind is float:
        return float(value)
    if kind is int and not isinstance(value, bool):
        return int(value)
    if kind is str:
        return str(value)
    return copy.deepcopy(value)
