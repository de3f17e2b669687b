"""YAML configuration: load, interpolate ``${VAR}`` / ``${VAR:-default}``, validate, apply defaults,
and hand out typed settings.

Errors name the file, the line and the field path (``config/x.yaml:12: accounts[0].region: must
be one of na, eu, fe``) and never echo a value, so secrets cannot leak into a terminal or a log.
Relative paths in the file are resolved against the file's own directory.

Each section the core reads is a typed, frozen settings class (the same mechanism as a carrier
plugin's settings, :mod:`connector.kit.settings`); its JSON Schema is part of :data:`SCHEMA`, so
defaults and checks have one source.
"""
from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .amazon.sites import BUILTIN, IDENTITY_FIELDS, REGIONS, SiteTable
from .api.settings import ApiSettings
from .fx import FX_SCHEMA
from .kit.schema import apply_defaults, format_path, problems
from .kit.settings import Secret, Settings
from .model import Address
from .ratelimit import CORE_OPERATIONS
from .rules import (
    IOSS_SCHEMA,
    SELECTION_SCHEMA,
    SITE_RULES_CONFIG_SCHEMA,
    ChoicePolicy,
    IossPolicy,
    RulesError,
)
from .webhooks import WebhookSettings

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
_BARE_VAR = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")  # $NAME, as a shell reads it: not read here


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def read_text(path: Path, what: str, *, encoding: str = "utf-8") -> str:
    """The text of a configuration file, or a ConfigError naming the file (and, for bytes that are
    not UTF-8 -- a file saved as GBK, say -- the line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem(str(path), None, "", f"cannot read {what}: {exc.strerror}")]) from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        why = (f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8 (from a "
               "spreadsheet: CSV UTF-8)")
        raise ConfigError([Problem(str(path), line, "", why)]) from None


def unprintable(file: str, text: str, exc: yaml.reader.ReaderError, what: str) -> ConfigError:
    """The ConfigError for a character YAML refuses to read (PyYAML's ReaderError, not a syntax
    error: it has no mark), at its line; the character is named by its code, the text around it not."""
    line = text.count("\n", 0, exc.position) + 1
    hint = " (a file saved as UTF-16? save it as UTF-8)" if exc.character == 0 else ": remove it"
    return ConfigError([Problem(file, line, "", f"{what} holds a control character (U+{exc.character:04X}) "
                                                f"YAML does not allow{hint}")])


MAX_NESTING = 64
"""How deep a value of a configuration or catalog file may nest: no setting needs more than a few
levels, and PyYAML composes (as the loader builds) each level with a call of its own, so a few
hundred overflowed Python's stack, a RecursionError."""


MAX_VALUES = 250_000
"""How many values a configuration may stand for, aliases expanded: a real one holds a few thousand
(tens of thousands with a large rate card written inline), while a few anchors each repeating the
one before stand for billions (built for minutes, until memory ran out)."""


def too_deep(what: str) -> str:
    return f"{what} nests values more than {MAX_NESTING} levels deep (no setting needs that many)"


def compose(file: str, text: str, what: str) -> yaml.Node | None:
    """``yaml.compose(text)``; nesting deep enough to overflow Python's stack is a ConfigError at
    the line PyYAML was reading (its syntax and reader errors are the caller's to word)."""
    loader = yaml.SafeLoader(text)
    try:
        return loader.get_single_node()
    except RecursionError:
        raise ConfigError([Problem(file, loader.get_mark().line + 1, "", too_deep(what))]) from None
    finally:
        loader.dispose()


# -- typed sections (their schemas make up SCHEMA) ----------------------------------------------

_SECRET = {"type": "string", "minLength": 1, "x-secret": True}
_URL = {"type": "string", "pattern": r"^(https?://.*)?$", "x-format": "an http(s) URL", "default": ""}


def _section(properties: dict[str, Any], *, required: tuple[str, ...] = (), default: bool = True,
             description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    if default:
        schema["default"] = {}
    if description:
        schema["description"] = description
    return schema


@dataclass(frozen=True, kw_only=True)
class LedgerSettings(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "url": {"type": "string", "pattern": r"^((sqlite|postgresql)://.*)?$", "default": "",
                "x-format": "sqlite:///path/to/ledger.db or postgresql://user@host:5432/database"},
        "pii_key_file": {"type": "string", "default": ""},
        "create_pii_key": {"type": "boolean", "default": False},
        "pii_retention_days": {"type": "integer", "minimum": 0, "default": 30},
        "max_transit_days": {"type": "integer", "minimum": 1, "default": 60},
    })
    url: Secret  # a PostgreSQL URL may hold its password: '***' in a repr
    pii_key_file: str
    create_pii_key: bool
    pii_retention_days: int
    max_transit_days: int


@dataclass(frozen=True, kw_only=True)
class Account(Settings):
    """One seller account in one SP-API region (the unit of Amazon's quotas)."""

    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "name": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]*$",
                 "x-format": "lower-case letters, digits, - and _"},
        "region": {"type": "string", "enum": list(REGIONS)},
        "marketplaces": {"type": "array", "minItems": 1, "uniqueItems": True,
                         "items": {"type": "string", "pattern": r"^[A-Z]{2}$",
                                   "x-format": "a site code, e.g. US"}},
        "endpoint": _URL,
        "lwa_token_url": _URL,
        "refresh_token": _SECRET,
        "client_id": {"type": "string", "minLength": 1},
        "client_secret": _SECRET,
        "client_secret_rotated_at": {"type": "string", "pattern": r"^(\d{4}-\d{2}-\d{2})?$",
                                     "x-format": "YYYY-MM-DD", "default": "",
                                     "if": {"minLength": 1},  # "" is "not said"; else a real date
                                     "then": {"format": "date", "x-format": "a real date, YYYY-MM-DD"}},
        "ioss_number": {"type": "string", "pattern": r"^(IM\d{10})?$", "default": "",
                        "x-format": "IM and 10 digits, e.g. IM1560000001",
                        "description": "the seller's own IOSS number, sent for EU consignments within the "
                                       "IOSS cap when Amazon sends none"},
        "orders_owner": {"type": "string", "enum": ["connector", "erp"], "default": "connector",
                         "description": "who ships this account's Amazon orders: the connector (it polls "
                                        "and confirms them) or an ERP (it submits them through the API; "
                                        "the connector never polls nor confirms on its own)"},
    }, required=("name", "region", "marketplaces", "refresh_token", "client_id", "client_secret"),
        default=False)
    name: str
    region: str
    marketplaces: tuple[str, ...]
    endpoint: str
    lwa_token_url: str
    refresh_token: Secret
    client_id: str
    client_secret: Secret
    client_secret_rotated_at: str
    ioss_number: str
    orders_owner: str

    @property
    def rotated_at(self) -> date | None:
        return date.fromisoformat(self.client_secret_rotated_at) if self.client_secret_rotated_at else None


@dataclass(frozen=True, kw_only=True)
class Quota(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "rate": {"type": "number", "exclusiveMinimum": 0}, "burst": {"type": "integer", "minimum": 1}},
        required=("rate", "burst"), default=False)
    rate: float
    burst: int


@dataclass(frozen=True, kw_only=True)
class FeedsSettings(Settings):
    """Shipment confirmation in bulk through the Feeds API (engine/feeds.py, docs/feeds.md)."""

    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "mode": {"type": "string", "enum": ["auto", "always", "never"], "default": "auto",
                 "description": "auto: feeds when confirmShipment cannot clear the backlog before ship-by"},
        "ship_by_margin_seconds": {"type": "number", "minimum": 0, "default": 7200,
                                   "description": "time kept in hand before the earliest ship-by"},
        "min_backlog": {"type": "integer", "minimum": 1, "default": 50,
                        "description": "auto: fewer confirmations waiting than this never go by feed"},
        "max_rows": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 5000,
                     "description": "document lines per feed (one per order item of a package)"},
        "batch_wait_seconds": {"type": "number", "minimum": 0, "default": 60,
                               "description": "a feed short of max_rows waits this long for more packages"},
        "max_open_feeds": {"type": "integer", "minimum": 1, "default": 5,
                           "description": "feeds in flight per account"},
        "poll_seconds": {"type": "number", "minimum": 0, "default": 30,
                         "description": "getFeed for an open feed at most this often"},
        "max_submit_attempts": {"type": "integer", "minimum": 1, "default": 5},
        "max_read_attempts": {"type": "integer", "minimum": 1, "default": 10,
                              "description": "failed reads of a submitted feed's status or report before "
                                             "its packages are read back from the orders instead"},
        "max_processing_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 28800,
                                   "description": "a feed Amazon has not finished processing this long after "
                                                  "its createFeed is given up: cancelled if still IN_QUEUE "
                                                  "(its packages go to confirmShipment), else its packages "
                                                  "are read back from the orders"},
        "pause_after_give_up_seconds": {"type": "number", "minimum": 0, "default": 900,
                                        "description": "after a feed is given up, the account starts no "
                                                       "feed this long: confirmShipment confirms"},
        "first_record_number": {"type": "integer", "minimum": 1, "default": 1,
                                "description": "the report's original-record-number of the first data line "
                                               "(0 is the whole file's)"},
        "retry_error_codes": {"type": "array", "items": {"type": "string"}, "default": [],
                              "description": "report error codes that are transient: the row is tried again"},
    })
    mode: str
    ship_by_margin_seconds: float
    min_backlog: int
    max_rows: int
    batch_wait_seconds: float
    max_open_feeds: int
    poll_seconds: float
    max_submit_attempts: int
    max_read_attempts: int
    max_processing_seconds: float
    pause_after_give_up_seconds: float
    first_record_number: int
    retry_error_codes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class AmazonSettings(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "quotas": {"type": "object", "default": {}, "additionalProperties": Quota.SCHEMA,
                   "description": "per SP-API operation: {rate, burst} over Amazon's published defaults"},
        # 1, not 1.0: a whole float is judged by jsonschema, not the compiled check (kit.schema)
        "pacing": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1},
        "poll_overlap_minutes": {"type": "number", "minimum": 0, "default": 10},
        "search_lag_seconds": {"type": "number", "minimum": 0, "default": 120,
                               "description": "how old a change must be before searchOrders shows it"},
        "initial_lookback_days": {"type": "number", "exclusiveMinimum": 0, "default": 7},
        "connect_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5},
        "read_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30},
        "max_attempts": {"type": "integer", "minimum": 1, "default": 5},
        "backoff_base_seconds": {"type": "number", "minimum": 0, "default": 1},
        "feeds": FeedsSettings.SCHEMA,
        "transparency_codes": {"enum": ["required", "optional"], "default": "required",
                               "description": "a Transparency item's package: held until its codes are "
                                              "given (required), or confirmed without them (optional)"},
    })
    quotas: dict[str, Quota]
    pacing: float
    poll_overlap_minutes: float
    search_lag_seconds: float
    initial_lookback_days: float
    connect_timeout_seconds: float
    read_timeout_seconds: float
    max_attempts: int
    backoff_base_seconds: float
    feeds: FeedsSettings
    transparency_codes: str


@dataclass(frozen=True, kw_only=True)
class EngineSettings(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "workers": {"type": "integer", "minimum": 1, "maximum": 64, "default": 4},
        "poll_interval_seconds": {"type": "number", "minimum": 1, "default": 180},
        "retry_delay_seconds": {"type": "number", "minimum": 0, "default": 30},
        "retry_delay_max_seconds": {"type": "number", "minimum": 0, "default": 900},
        "max_attempts": {"type": "integer", "minimum": 1, "default": 12},
        "carrier_attempts": {"type": "integer", "minimum": 1, "default": 3},
        "tracking_number_wait_hours": {"type": "number", "exclusiveMinimum": 0, "default": 24,
                                       "description": "a bought label whose carrier assigns the tracking "
                                                      "number later, or whose file cannot be written: "
                                                      "how long to keep trying before holding"},
        "verify_attempts": {"type": "integer", "minimum": 1, "default": 6},
        "verify_grace_seconds": {"type": "number", "minimum": 0, "default": 300},
        "quote_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 20},
        "lease_seconds": {"type": "number", "minimum": 3, "default": 30,
                          "description": "PostgreSQL ledger: a dead worker's accounts move after this long"},
    })
    workers: int
    poll_interval_seconds: float
    retry_delay_seconds: float
    retry_delay_max_seconds: float
    max_attempts: int
    carrier_attempts: int
    tracking_number_wait_hours: float
    verify_attempts: int
    verify_grace_seconds: float
    quote_timeout_seconds: float
    lease_seconds: float

    @property
    def verify_grace(self) -> timedelta | None:
        """How long a confirmed package's order rests before its verify step (None: no grace)."""
        return timedelta(seconds=self.verify_grace_seconds) if self.verify_grace_seconds else None


@dataclass(frozen=True, kw_only=True)
class TrackingSettings(Settings):
    """Following parcels after the confirmation (engine/track.py, docs/tracking.md)."""

    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "first_scan_days": {"type": "number", "exclusiveMinimum": 0, "default": 7,
                            "description": "no carrier scan this long after handover: LOST"},
        "stalled_days": {"type": "number", "exclusiveMinimum": 0, "default": 15,
                         "description": "no new scan this long in transit: LOST"},
        "cadence": {"type": "array", "minItems": 1, "default": [
                        {"until_days": 3, "every_hours": 6}, {"until_days": 14, "every_hours": 12},
                        {"until_days": 45, "every_hours": 24}],
                    "items": {"type": "object", "additionalProperties": False,
                              "required": ["until_days", "every_hours"],
                              "properties": {"until_days": {"type": "number", "exclusiveMinimum": 0},
                                             "every_hours": {"type": "number", "exclusiveMinimum": 0}}},
                    "description": "how often a parcel is polled by its age (days since handover); "
                                   "older parcels every 48 hours"},
        "max_days": {"type": "number", "exclusiveMinimum": 0, "default": 60,
                     "description": "stop polling a parcel this long after handover"},
        "retry_minutes": {"type": "number", "exclusiveMinimum": 0, "default": 30,
                          "description": "when a carrier's tracking call fails, ask again after"},
        "batch_size": {"type": "integer", "minimum": 1, "default": 20,
                       "description": "numbers per tracking call for a carrier that declares no batch size"},
        "per_pass": {"type": "integer", "minimum": 1, "default": 500,
                     "description": "parcels polled per pass at most"},
        "pass_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 120,
                         "description": "a tracking pass starts no new carrier call after this long (the "
                                        "parcels left stay due and go first next pass)"},
    })
    first_scan_days: float
    stalled_days: float
    cadence: tuple[dict[str, float], ...]
    max_days: float
    retry_minutes: float
    batch_size: int
    per_pass: int
    pass_seconds: float

    def interval_hours(self, age_days: float) -> float:
        for step in self.cadence:
            if age_days < step["until_days"]:
                return float(step["every_hours"])
        return 48.0


@dataclass(frozen=True, kw_only=True)
class AlertSettings(Settings):
    """When the daemon raises an alert (mfn_alert hook and the log; docs/tracking.md)."""

    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "vtr_threshold": {"type": "number", "minimum": 0, "maximum": 100, "default": 96,
                          "description": "alert when a site and category's valid-tracking rate (percent), "
                                         "projected or as it stands, falls below; Amazon's bar is 95"},
        "service_vtr_threshold": {"type": "number", "minimum": 0, "maximum": 100, "default": 95,
                                  "description": "alert when a carrier service's valid-tracking rate "
                                                 "falls below"},
        "min_packages": {"type": "integer", "minimum": 1, "default": 10,
                         "description": "packages a rate needs before it can raise an alert"},
        "window_days": {"type": "number", "exclusiveMinimum": 0, "default": 30,
                        "description": "the window Amazon counts the valid-tracking rate over"},
        "ship_by_warning_hours": {"type": "number", "minimum": 0, "default": 12,
                                  "description": "alert when an order is not confirmed this close to "
                                                 "ship-by"},
    })
    vtr_threshold: float
    service_vtr_threshold: float
    min_packages: int
    window_days: float
    ship_by_warning_hours: float


_ROUTE = {"type": "string", "pattern": r"^[a-z0-9_]+:([A-Za-z0-9_-]+|\*)$",
          "x-format": "carrier:service or carrier:*, e.g. yunexpress:AYPZXR"}
_ROUTES = {"type": "array", "minItems": 1, "items": _ROUTE}


@dataclass(frozen=True, kw_only=True)
class RoutingSettings(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "default": {"type": "array", "items": _ROUTE, "default": []},
        "sites": {"type": "object", "default": {}, "propertyNames": {"pattern": r"^[A-Z]{2}$"},
                  "additionalProperties": _ROUTES},
    })
    default: tuple[str, ...]
    sites: dict[str, tuple[str, ...]]

    def routes(self, site: str) -> tuple[str, ...]:
        """``carrier:service`` routes for a site (empty: every configured carrier)."""
        return self.sites.get(site) or self.default


@dataclass(frozen=True, kw_only=True)
class PluginsSettings(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "allow": {"type": ["array", "null"], "items": {"type": "string"}, "default": None},
        "deny": {"type": "array", "items": {"type": "string"}, "default": []},
    })
    allow: tuple[str, ...] | None
    deny: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class LoggingSettings(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"], "default": "INFO"},
        "format": {"enum": ["text", "json"], "default": "text"},
    })
    level: str
    format: str


# connector.sandbox.framework.FAULT_KINDS; not imported, to keep every command's start light
SANDBOX_FAULT_KINDS = ("error_5xx", "timeout", "reset", "malformed")
_RATE = {"type": "number", "minimum": 0, "maximum": 1}


@dataclass(frozen=True, kw_only=True)
class SandboxSettings(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "base_port": {"type": "integer", "minimum": 1024, "maximum": 65000, "default": 8700},
        "seed": {"type": "integer", "default": 7},
        "orders": {"type": "integer", "minimum": 0, "default": 60},
        # the emulators refuse another kind (a ValueError when they start): refused here, at its line
        "faults": {"if": {"type": "object"},
                   "then": {"type": "object", "additionalProperties": False,
                            "properties": dict.fromkeys(SANDBOX_FAULT_KINDS, _RATE)},
                   "else": _RATE, "default": 0,
                   "description": "one rate spread over the kinds, or a rate per kind"},
        "timeout_seconds": {"type": "number", "minimum": 0, "default": 3},
        "emulators": {"type": "object", "default": {}, "additionalProperties": {"type": "object"}},
    })
    base_port: int
    seed: int
    orders: int
    faults: Any
    timeout_seconds: float
    emulators: dict[str, dict[str, Any]]


_ADDRESS_FIELDS = ("name", "company", "line1", "line2", "line3", "city", "district", "state", "postal_code",
                   "country_code", "phone", "email")
_ADDRESS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "line1", "city", "country_code", "phone"],
    "properties": {**{k: {"type": "string"} for k in _ADDRESS_FIELDS},
                   "country_code": {"type": "string", "pattern": "^[A-Z]{2}$",
                                    "x-format": "a two-letter ISO 3166 code, e.g. CN"}},
}
_NAME = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]*$",
         "x-format": "lower-case letters, digits, - and _"}
_WAREHOUSE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["warehouse", *_ADDRESS["required"]],
    "properties": {"warehouse": _NAME, **_ADDRESS["properties"]},
    "description": "a named warehouse: `warehouse` (its id) and its address fields",
}
_SHIP_FROM = {
    # One address (one warehouse, named "main"), or a list of named warehouses (the first is the
    # default). if/then/else rather than oneOf: errors stay those of the branch that applies.
    "if": {"type": "array"},
    "then": {"type": "array", "minItems": 1, "items": _WAREHOUSE},
    "else": _ADDRESS,
}
DEFAULT_WAREHOUSE = "main"
"""The name of the one warehouse of a ``ship_from`` written as a single address."""


@dataclass(frozen=True)
class Warehouse:
    """A place parcels ship from: its id (``ship_from[].warehouse``) and its address."""

    name: str
    address: Address

    @property
    def city(self) -> str:
        return self.address.city

    @property
    def province(self) -> str:
        return self.address.state

    def describe(self) -> str:
        """``yiwu (Yiwu, Zhejiang)``."""
        where = ", ".join(p for p in (self.address.city, self.address.state) if p)
        return f"{self.name} ({where})" if where else self.name


@dataclass(frozen=True, kw_only=True)
class WarehouseRule(Settings):
    """One rule of ``warehouse_routing``: the orders of these SKUs, sites or accounts (exactly one
    of the three) ship from ``warehouse``. Precedence across rules: SKU, then site, then account,
    then the first warehouse under ``ship_from``."""

    SCHEMA: ClassVar[dict[str, Any]] = _section({
        "warehouse": _NAME,
        "skus": {"type": "array", "minItems": 1, "uniqueItems": True,
                 "items": {"type": "string", "minLength": 1}, "default": [],
                 "description": "seller SKUs stocked in this warehouse"},
        "sites": {"type": "array", "minItems": 1, "uniqueItems": True,
                  "items": {"type": "string", "pattern": r"^[A-Z]{2}$", "x-format": "a site code, e.g. DE"},
                  "default": [], "description": "Amazon sites whose orders ship from this warehouse"},
        "accounts": {"type": "array", "minItems": 1, "uniqueItems": True, "items": _NAME, "default": [],
                     "description": "seller accounts whose orders ship from this warehouse"},
    }, required=("warehouse",), default=False)
    warehouse: str
    skus: tuple[str, ...]
    sites: tuple[str, ...]
    accounts: tuple[str, ...]

    KINDS: ClassVar[tuple[str, ...]] = ("skus", "sites", "accounts")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["catalog", "ship_from", "accounts"],
    "properties": {
        "state_dir": {"type": "string", "default": ".mfn"},
        "labels_dir": {"type": "string"},
        "catalog": {"type": "string", "minLength": 1},
        "ledger": LedgerSettings.SCHEMA,
        "ship_from": _SHIP_FROM,
        "warehouse_routing": {"type": "array", "default": [], "items": WarehouseRule.SCHEMA,
                              "description": "which warehouse an order ships from, by SKU, site or "
                                             "account (default: the first under ship_from)"},
        "accounts": {"type": "array", "minItems": 1, "items": Account.SCHEMA},
        "carriers": {"type": "object", "default": {}},
        "routing": RoutingSettings.SCHEMA,
        "amazon": AmazonSettings.SCHEMA,
        "engine": EngineSettings.SCHEMA,
        "tracking": TrackingSettings.SCHEMA,
        "alerts": AlertSettings.SCHEMA,
        "plugins": PluginsSettings.SCHEMA,
        "logging": LoggingSettings.SCHEMA,
        "fx": FX_SCHEMA,
        "site_rules": SITE_RULES_CONFIG_SCHEMA,
        "selection": SELECTION_SCHEMA,
        "ioss": IOSS_SCHEMA,
        "webhooks": WebhookSettings.SCHEMA,
        "api": ApiSettings.SCHEMA,
        "sandbox": SandboxSettings.SCHEMA,
    },
}
"""The whole file. Carrier sections are validated against their plugins' schemas."""


# -- loading with line numbers ------------------------------------------------------------------


class _Located:
    """Builds plain Python data from a YAML node tree, remembering each path's line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[tuple, int] = {}
        self.problems: list[Problem] = []
        self.substituted: dict[tuple, str] = {}  # path -> a plain scalar's text after ${VAR} substitution
        self.typed: dict[tuple, str] = {}  # path -> what YAML read a plain scalar as, when not text
        self._scalar = yaml.SafeLoader("")
        self._written: dict[int, int] = {}  # id(mapping node) -> how many pairs it has, merge keys aside
        self._open: set[int] = set()  # id() of the nodes being built, from the root to this one
        self._too_deep = self.gave_up = False  # said already (gave_up: MAX_VALUES were built)
        self._built = 0  # values built, each alias's once for each time it is used

    def build(self, node: yaml.Node, path: tuple = ()) -> Any:
        if not path:
            self._count_written(node)
        self._built += 1
        if self._built > MAX_VALUES:  # `&x1 [*x0, *x0, ...]`, `&x2 [*x1, *x1, ...]`, ...
            if not self.gave_up:  # once: what is left is not built, each value would say it again
                self.gave_up = True
                self.problems.append(Problem(self.file, _line(self.lines, path), _shown(path),
                                             f"the configuration stands for more than {MAX_VALUES} values "
                                             "(aliases repeated inside aliases?)"))
            return None
        if len(path) > MAX_NESTING:  # through aliases too: `&a1 [*a0]`, `&a2 [*a1]`, ...
            if not self._too_deep:  # once: the levels below, and their siblings, would say it again
                self._too_deep = True
                self.problems.append(Problem(self.file, node.start_mark.line + 1, _shown(path),
                                             too_deep("the configuration")))
            return None
        if id(node) in self._open:  # `a: &s {b: *s}`: built on, it would recurse without end
            # at the line of its key (the node's own is its anchor's)
            line = self.lines.get(path, node.start_mark.line + 1)
            self.problems.append(Problem(self.file, line, format_path(path),
                                         "holds itself (an alias inside its own anchor)"))
            return None
        self.lines[path] = node.start_mark.line + 1
        self._open.add(id(node))
        try:
            return self._build(node, path)
        finally:
            self._open.discard(id(node))

    def _build(self, node: yaml.Node, path: tuple) -> Any:
        if isinstance(node, yaml.MappingNode):
            written = self._written[id(node)]
            try:  # `<<: *anchor` (merge keys), as yaml.safe_load reads them: merged pairs first
                self._scalar.flatten_mapping(node)
            except yaml.MarkedYAMLError as exc:
                self._unreadable(node, path, f"cannot merge: {exc.problem}")
                return None
            merged = len(node.value) - written  # keys written here override merged ones
            out: dict[str, Any] = {}
            written_here: set[str] = set()
            for index, (key_node, value_node) in enumerate(node.value):
                key = str(self._construct(key_node, path))
                if index >= merged:
                    if key in written_here:
                        self.problems.append(Problem(self.file, key_node.start_mark.line + 1,
                                                    format_path(path + (key,)), "appears twice"))
                    written_here.add(key)
                self.lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, path + (key,))
                self.lines[path + (key,)] = key_node.start_mark.line + 1  # where `key:` is written
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        value = self._construct(node, path)
        if isinstance(value, str) and "${" in value:
            value = self._interpolate(value, node, path)
        elif isinstance(value, str) and _BARE_VAR.fullmatch(value.strip()):
            self._unreadable(node, path, _BARE_REFERENCE)  # it would be sent as the secret, or be the path
            return ""
        elif isinstance(value, bool | int | float) and node.style is None:  # 518057, NO: not text to YAML
            self.typed[path] = "true or false" if isinstance(value, bool) else "a number"
        if isinstance(value, date) and not isinstance(value, str):
            value = value.isoformat()
        return value

    def _count_written(self, root: yaml.Node) -> None:
        """Each mapping's own pairs, counted before any is merged: merging rewrites a mapping in place
        (its merged pairs first), and one met again through an alias would take them for its own."""
        todo, seen = [root], set()
        while todo:
            node = todo.pop()
            if id(node) in seen:  # an alias: the node it names, walked already
                continue
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                self._written[id(node)] = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
                todo += [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                todo += node.value

    def _construct(self, node: yaml.Node, path: tuple) -> Any:
        """A scalar's value; a tag YAML's safe loader does not know (``!vault``), or a value its
        tag cannot take (``!!int four``), is a problem at its line (the value is never echoed)."""
        try:
            return self._scalar.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, AttributeError):
            standard = (node.tag or "").removeprefix("tag:yaml.org,2002:")
            if standard == "timestamp" and node.style is None and self._implicit(node):  # no tag written
                self._unreadable(node, path, "is not a real date (YYYY-MM-DD; a value that only looks "
                                             "like one goes in quotes)")
            elif standard in _YAML_TYPES:  # !!int four: YAML's own type is safe to name (!!Hq7... is not)
                self._unreadable(node, path, f"a value tagged !!{standard} cannot be read: write it without "
                                             "the tag")
            else:  # !vault, or a secret that starts with "!": its text is never echoed
                self._unreadable(node, path, _TAG_READ)
            return None

    def _implicit(self, node: yaml.ScalarNode) -> bool:
        """Whether a plain scalar's tag is the one YAML gives its text (2026-02-30), not one written."""
        return self._scalar.resolve(yaml.ScalarNode, node.value, (True, False)) == node.tag

    def _unreadable(self, node: yaml.Node, path: tuple, message: str) -> None:
        self.problems.append(Problem(self.file, node.start_mark.line + 1, format_path(path), message))

    def _interpolate(self, text: str, node: yaml.ScalarNode, path: tuple) -> Any:
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if os.environ.get(name):
                return os.environ[name]
            if default is not None:  # unset or empty, as a shell reads ${NAME:-default}
                return default
            # an empty one too: `ledger.url: ""` is a new SQLite ledger, `state_dir: ""` the file's folder
            why = (f"is empty (write ${{{name}:-}} where empty is meant)" if name in os.environ
                   else "is not set")
            self.problems.append(Problem(self.file, node.start_mark.line + 1, format_path(path),
                                         f"environment variable {name} {why}"))
            return ""

        if "${" in _VAR.sub("", text):  # kept as written, it would be sent as the secret
            self._unreadable(node, path, _NOT_A_REFERENCE)
            return ""
        result = _VAR.sub(sub, text)
        if node.style is None and result.strip():
            # A plain scalar takes the type its text implies (`workers: ${WORKERS}` is a number), as a
            # scalar only: a variable's " #" or ": " starts no comment and makes no mapping (a secret's
            # text is kept whole), and where a string belongs its text stays (_validate)
            result = self.substituted[path] = result.strip()
            plain = yaml.ScalarNode(self._scalar.resolve(yaml.ScalarNode, result, (True, False)), result)
            try:
                value = self._scalar.construct_object(plain)
            except (yaml.YAMLError, ValueError):
                return result
            return result if isinstance(value, str) else value
        return result


# Its text is not shown either: a secret may be a $ and letters
_BARE_REFERENCE = ("is a $ and a name, which is not read from the environment: write ${NAME} or "
                   "${NAME:-default}; a value that really is such text comes from a variable (its value is "
                   "taken as it is)")

# Its text is not shown: the value may be a secret that holds "${"
_NOT_A_REFERENCE = ("holds a ${ that starts no environment variable reference: write ${NAME} or "
                    "${NAME:-default}, NAME of letters, digits and _ (not starting with a digit); a "
                    "value that really holds ${ comes from a variable (its value is taken as it is)")


def _shown(path: tuple) -> str:
    """A path cut to its first parts: one that is too deep or too long to build would fill a screen."""
    return format_path(path[:4]) + ("..." if len(path) > 4 else "")


def _line(lines: dict[tuple, int], path: tuple) -> int | None:
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path)


def _syntax_problem(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's words for a syntax error, except where they quote a name the file gave: an unquoted
    value starting with * or & is read as an alias or anchor, and its name may be a secret."""
    problem = exc.problem or "the file cannot be read"
    if "alias" in problem or "anchor" in problem:
        return ("a value starting with * or & is read by YAML as an alias or an anchor (its text is not "
                "shown here, it may be a secret): put the value in quotes")
    if "tag" in problem:
        return _TAG_READ
    return problem


# One message for an unquoted value starting with "!", whichever part of PyYAML stumbles on it.
_TAG_READ = ("a value starting with ! is read by YAML as a tag (its text is not shown here, it may be a "
             "secret): put the value in quotes (only YAML's standard types are read)")


# YAML's own types (tag:yaml.org,2002:...), which an error may name: any other !! tag is the file's text
_YAML_TYPES = frozenset({"str", "int", "float", "bool", "null", "timestamp", "binary", "seq", "map", "set",
                         "omap", "pairs", "merge", "value", "yaml"})


def _validate(schema: dict[str, Any], data: Any, located: _Located, prefix: tuple = ()) -> None:
    unreadable = {p.path for p in located.problems}  # said already (a value YAML could not read)
    found = problems(schema, data)
    # A variable's digits (an account number, an all-digit password) where a string belongs are that
    # string: the variable's text, as written, not the number YAML reads in it
    retyped = [path for path, message in found
               if "a string" in message and prefix + path in located.substituted]
    for path in retyped:
        *parents, last = path
        container = data
        for part in parents:
            container = container[part]
        container[last] = located.substituted[prefix + path]
    if retyped:
        found = problems(schema, data)
    for path, message in found:
        full = prefix + path
        if message == "must be a string" and full in located.typed:  # the operator wrote text, as they see it
            message += f" (YAML reads the value, unquoted, as {located.typed[full]}: put it in quotes)"
        if format_path(full) not in unreadable:
            located.problems.append(Problem(located.file, _line(located.lines, full), format_path(full),
                                            message))


# -- the loaded configuration ----------------------------------------------------------------


@dataclass
class Config:
    """A validated configuration file: typed sections, plus ``data`` (the raw, defaulted tree,
    for the sections plugins own: ``carriers``, ``site_rules``, ``fx``, ``selection``)."""

    path: Path
    data: dict[str, Any] = field(repr=False)  # the secrets as written, not yet Secret
    lines: dict[tuple, int] = field(default_factory=dict, repr=False)
    sites: SiteTable = field(default_factory=lambda: BUILTIN)

    def __post_init__(self) -> None:
        self.ledger = LedgerSettings.from_section(self.data["ledger"], where="ledger")
        self.accounts = tuple(Account.from_section(a, where=f"accounts[{i}]")
                              for i, a in enumerate(self.data["accounts"]))
        self.amazon = AmazonSettings.from_section(self.data["amazon"], where="amazon")
        self.engine = EngineSettings.from_section(self.data["engine"], where="engine")
        self.tracking = TrackingSettings.from_section(self.data["tracking"], where="tracking")
        self.alerts = AlertSettings.from_section(self.data["alerts"], where="alerts")
        self.routing = RoutingSettings.from_section(self.data["routing"], where="routing")
        self.plugins = PluginsSettings.from_section(self.data["plugins"], where="plugins")
        self.logging = LoggingSettings.from_section(self.data["logging"], where="logging")
        self.sandbox = SandboxSettings.from_section(self.data["sandbox"], where="sandbox")
        self.warehouses = _warehouses(self.data["ship_from"])
        self.warehouse_routing = tuple(WarehouseRule.from_section(r, where=f"warehouse_routing[{i}]")
                                       for i, r in enumerate(self.data["warehouse_routing"]))
        self.ioss = IossPolicy.from_config(self.data.get("ioss"))
        self.webhooks = WebhookSettings.from_section(self.data["webhooks"], where="webhooks")
        self.api = ApiSettings.from_section(self.data["api"], where="api")

    def account(self, name: str) -> Account | None:
        return next((a for a in self.accounts if a.name == name), None)

    @property
    def default_warehouse(self) -> Warehouse:
        """The first warehouse under ``ship_from`` (``main`` when it is a single address)."""
        return self.warehouses[0]

    @property
    def ship_from(self) -> Address:
        """The default warehouse's address (the engine ships each order from its own warehouse:
        ``connector.engine.warehouses``)."""
        return self.default_warehouse.address

    def warehouse(self, name: str) -> Warehouse | None:
        return next((w for w in self.warehouses if w.name == name), None)

    @property
    def carriers(self) -> dict[str, dict[str, Any]]:
        """``carriers.<code>`` sections (validated against each plugin's schema)."""
        return self.data["carriers"]

    def resolve(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.path.parent / p).resolve()

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.data["state_dir"])

    @property
    def labels_dir(self) -> Path:
        return self.resolve(self.data["labels_dir"]) if self.data.get("labels_dir") \
            else self.state_dir / "labels"

    @property
    def ledger_url(self) -> str:
        url = self.ledger.url
        if not url:
            return f"sqlite:///{self.state_dir / 'ledger.db'}"
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            return f"sqlite:///{self.resolve(url[len('sqlite:///'):])}"
        return str(url)  # the store's messages show a SQLite path (and a PostgreSQL URL without its password)

    @property
    def pii_key_file(self) -> Path:
        key = self.ledger.pii_key_file
        return self.resolve(key) if key else self.state_dir / "pii.key"

    @property
    def catalog_path(self) -> Path:
        return self.resolve(self.data["catalog"])

    def line_of(self, *path: str | int) -> int | None:
        return _line(self.lines, tuple(path))


def _warehouses(section: dict[str, Any] | list[dict[str, Any]]) -> tuple[Warehouse, ...]:
    if isinstance(section, dict):
        return (Warehouse(DEFAULT_WAREHOUSE, Address.from_dict(section)),)
    # Address.from_dict keeps only its own fields: "warehouse" is the id, not part of the address
    return tuple(Warehouse(w["warehouse"], Address.from_dict(w)) for w in section)


def load_config(path: str | os.PathLike[str], *, carrier_schemas: dict[str, dict] | None = None,
                carrier_services: dict[str, set[str]] | None = None,
                carrier_operations: set[str] | None = None) -> Config:
    """Load and validate a configuration file; raise ConfigError listing every problem.

    ``carrier_schemas`` maps carrier code -> JSON Schema of its settings (from the plugins);
    when given, ``carriers.<code>`` sections are validated and unknown carriers reported.
    ``carrier_services``: the service codes of each carrier that declares them; a route or an
    override naming another is reported. ``carrier_operations``: the SP-API operations the
    carrier plugins call; with ``carrier_schemas``, a quota under ``amazon.quotas`` for an
    operation neither they nor the core call is reported.
    """
    path = Path(path)
    file = str(path)
    text = read_text(path, "the configuration")
    located = _Located(file)
    try:
        node = compose(file, text, "the configuration")
    except yaml.MarkedYAMLError as exc:
        if (exc.context == "while scanning a quoted scalar" and exc.context_mark
                and (exc.problem or "").startswith("found unexpected")):  # end of stream, or a ---
            # read to the end of the file (a quoted value may span lines): said where the quote opens
            raise ConfigError([Problem(file, exc.context_mark.line + 1, "", "YAML syntax error: a quote "
                                       "opened on this line is never closed")]) from None
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise ConfigError([Problem(file, line, "", f"YAML syntax error: {_syntax_problem(exc)}")]) from None
    except yaml.reader.ReaderError as exc:  # valid UTF-8, but a character YAML does not take
        raise unprintable(file, text, exc, "the configuration") from None
    if node is None:
        raise ConfigError([Problem(file, 1, "", "the file is empty")])
    data = located.build(node)
    if located.gave_up:  # every value after the limit is missing: the schema's words would be noise
        raise ConfigError(located.problems)
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, 1, "", "the top level must be a mapping")])
    _validate(SCHEMA, data, located)
    sites = BUILTIN
    if not located.problems:
        apply_defaults(SCHEMA, data)
        sites = _site_table(data, located)
        _check_cross_references(data, located, carrier_schemas, sites, carrier_services or {},
                                carrier_operations or set())
    if located.problems:
        raise ConfigError(located.problems)
    return Config(path.resolve(), data, located.lines, sites)


def _site_table(data: dict[str, Any], located: _Located) -> SiteTable:
    """Amazon's sites plus those the ``site_rules`` section adds."""
    try:
        return BUILTIN.extended(data.get("site_rules"))
    except ValueError as exc:  # the message starts with the field path
        located.problems.append(Problem(located.file, _line(located.lines, ("site_rules",)), "", str(exc)))
        return BUILTIN


def _check_rotated_at(day: str, add: Callable[[str], None]) -> None:
    """A rotation day in the future (a year typo) would put the rotation warning past the secret's
    real deadline. Tomorrow is taken: the host's clock, or the operator's, may be a day ahead."""
    if day and date.fromisoformat(day) > datetime.now(timezone.utc).date() + timedelta(days=1):
        add(f"{day} is in the future: the day the secret was made or rotated (a wrong year would put "
            "the rotation warning past its real deadline)")


def _check_cross_references(data: dict[str, Any], located: _Located, carrier_schemas: dict[str, dict] | None,
                            sites: SiteTable, carrier_services: dict[str, set[str]],
                            carrier_operations: set[str]) -> None:
    def add(path: tuple, message: str) -> None:
        located.problems.append(Problem(located.file, _line(located.lines, path), format_path(path), message))

    names = [a["name"] for a in data["accounts"]]
    for i, name in enumerate(names):
        if names.index(name) != i:
            add(("accounts", i, "name"), "repeats another account's name")
    # an endpoint's name keys its event cursor: two of one name would share one, and one gets nothing
    endpoints = [e.get("name") for e in (data.get("webhooks") or {}).get("endpoints") or ()
                 if isinstance(e, dict)]
    for i, name in enumerate(endpoints):
        if endpoints.index(name) != i:
            add(("webhooks", "endpoints", i, "name"), "repeats another endpoint's name")
    _check_subscriptions(data["webhooks"]["endpoints"], add)
    for i, account in enumerate(data["accounts"]):
        region = account["region"]
        _check_rotated_at(account.get("client_secret_rotated_at") or "", lambda m, i=i: add(
            ("accounts", i, "client_secret_rotated_at"), m))
        for j, site in enumerate(account["marketplaces"]):
            if site not in sites:
                add(("accounts", i, "marketplaces", j),
                    f"unknown Amazon site {site} (known: {', '.join(sites)}; a new site needs "
                    f"{', '.join(IDENTITY_FIELDS)} under site_rules.{site})")
            elif sites[site].code != site:  # GB: the site's rules, the orders' site, are UK
                add(("accounts", i, "marketplaces", j),
                    f"the site is written {sites[site].code} here, not {site}")
            elif sites[site].region != region:
                add(("accounts", i, "marketplaces", j),
                    f"site {site} is in region {sites[site].region}, not {region}")
    for site in data["routing"]["sites"]:
        if site not in sites:
            add(("routing", "sites", site), f"unknown Amazon site {site}")
        elif sites[site].code != site:  # GB: routes are looked up under the order's site, UK
            add(("routing", "sites", site), f"the site is written {sites[site].code} here, not {site}")
    for i, override in _overrides(data):
        if override.get("site") and override["site"] not in sites:
            add(("selection", "overrides", i, "site"), f"unknown Amazon site {override['site']}")
    _check_warehouses(data, sites, add)
    _check_cadence(data["tracking"]["cadence"], add)
    for i, discount in enumerate((data.get("selection") or {}).get("discounts") or ()):  # as run builds it
        try:
            ChoicePolicy.from_config({"discounts": [discount]})
        except RulesError as exc:
            add(("selection", "discounts", i), str(exc).split(": ", 1)[-1])
    if carrier_schemas is None:
        return
    for code, settings in data["carriers"].items():
        if code not in carrier_schemas:
            installed = ", ".join(sorted(carrier_schemas)) or "none"
            add(("carriers", code),
                f"no installed plugin provides carrier {code!r} (installed: {installed}; a plugin that "
                "failed to load, or is turned off by MFN_CONNECTOR_DISABLED_PLUGINS or plugins.deny, "
                "counts as not installed: 'mfn-connector plugins' says which; to run without the "
                "carrier, remove this section and the routes naming it)")
            continue
        if settings is None:
            settings = data["carriers"][code] = {}
        _validate(carrier_schemas[code], settings, located, ("carriers", code))
        apply_defaults(carrier_schemas[code], settings)
    _check_quotas(data, carrier_operations, add)
    routes = [(("routing", "default", i), r) for i, r in enumerate(data["routing"].get("default", []))]
    for site, lst in data["routing"]["sites"].items():
        routes += [(("routing", "sites", site, i), r) for i, r in enumerate(lst)]
    # A forced carrier that is not configured would hold every order it applies to.
    for i, o in _overrides(data):
        routes.append((("selection", "overrides", i, "carrier"),
                       o["carrier"] + (f":{o['service']}" if o.get("service") else "")))
    for path, route in routes:
        carrier, _, service = route.partition(":")
        known = carrier_services.get(carrier)
        if carrier not in data["carriers"]:
            add(path, f"carrier {carrier!r} is not configured under carriers")
        elif known and service not in ("", "*", *known):  # all its orders would fit no service
            add(path, f"carrier {carrier!r} has no service {service!r} (its services: "
                      f"{', '.join(sorted(known))})")


def _check_quotas(data: dict[str, Any], carrier_operations: set[str],
                  add: Callable[[tuple, str], None]) -> None:
    """A quota for an operation nothing calls sets nothing: a misspelling the operator would
    believe in."""
    known = sorted({*CORE_OPERATIONS, *carrier_operations})
    for operation in data["amazon"]["quotas"]:
        if operation not in known:
            near = difflib.get_close_matches(operation, known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            add(("amazon", "quotas", operation),
                f"sets nothing: no SP-API operation {operation!r} is called ({hint}known: "
                f"{', '.join(known)}; a carrier plugin's operations count when the plugin is installed)")


def _check_subscriptions(endpoints: list[dict[str, Any]], add: Callable[[tuple, str], None]) -> None:
    """Each of an endpoint's ``events`` matches some event type: a misspelt one (order.shiped,
    packages.*) would be taken and the endpoint sent nothing. ``alert.<kind>`` takes any kind (a
    plugin's own, too)."""
    from .engine.alerts import AlertKind
    from .events import EVENT_TYPES, matches

    known = [t for t in EVENT_TYPES if t != "alert.*"]
    types = known + [f"alert.{kind.value}" for kind in AlertKind]
    for i, endpoint in enumerate(endpoints):
        for j, pattern in enumerate(endpoint.get("events", ())):  # (no default applied in a list)
            if not pattern.startswith("alert.") and not any(matches(t, [pattern]) for t in types):
                add(("webhooks", "endpoints", i, "events", j),
                    f"matches no event type (known: {', '.join(known)}, alert.<kind>; globs such as "
                    "package.* and * take several)")


def _check_cadence(cadence: list[dict[str, Any]], add: Callable[[tuple, str], None]) -> None:
    """Each step of tracking.cadence ends later than the one before: a parcel's age takes the first
    step it is younger than (TrackingSettings.interval_hours), so a step out of order never would."""
    latest = None
    for i, step in enumerate(cadence):
        if latest is not None and step["until_days"] <= latest:
            add(("tracking", "cadence", i, "until_days"),
                f"must be more than an earlier step's {latest:g} days (steps go youngest first: this one "
                "would never apply)")
        latest = step["until_days"] if latest is None else max(latest, step["until_days"])


_SELECTOR = {"skus": "SKU", "sites": "site", "accounts": "account"}


def _overrides(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """selection.overrides entries the schema let through, with their index."""
    entries = (data.get("selection") or {}).get("overrides") or ()
    return [(i, o) for i, o in enumerate(entries)
            if isinstance(o, dict) and isinstance(o.get("carrier"), str)]


def _check_warehouses(data: dict[str, Any], sites: SiteTable, add: Callable[[tuple, str], None]) -> None:
    """Warehouse names are unique; every rule names a known warehouse and exactly one kind of
    selector; no SKU, site or account is routed twice (which rule would win is not guessed)."""
    ship_from = data["ship_from"]
    names = [w["warehouse"] for w in ship_from] if isinstance(ship_from, list) else [DEFAULT_WAREHOUSE]
    for i, name in enumerate(names):
        if names.index(name) != i:
            add(("ship_from", i, "warehouse"), f"repeats another warehouse's name ({name!r})")
    accounts = {a["name"] for a in data["accounts"]}
    seen: dict[tuple[str, str], int] = {}
    for i, rule in enumerate(data["warehouse_routing"]):
        if rule["warehouse"] not in names:
            known = ", ".join(dict.fromkeys(names))
            add(("warehouse_routing", i, "warehouse"),
                f"no warehouse {rule['warehouse']!r} under ship_from (known: {known})")
        kinds = [k for k in WarehouseRule.KINDS if rule.get(k)]
        if len(kinds) != 1:
            add(("warehouse_routing", i), "needs exactly one of skus, sites, accounts"
                + (f" (has {', '.join(kinds)}: write one rule for each)" if kinds else ""))
        for kind in kinds:
            for j, value in enumerate(rule[kind]):
                path = ("warehouse_routing", i, kind, j)
                if kind == "sites" and value not in sites:
                    add(path, f"unknown Amazon site {value}")
                elif kind == "sites" and sites[value].code != value:  # GB: matched against UK
                    add(path, f"the site is written {sites[value].code} here, not {value}")
                elif kind == "accounts" and value not in accounts:
                    add(path, f"no account {value!r} under accounts (known: {', '.join(sorted(accounts))})")
                first = seen.setdefault((kind, value), i)
                if first != i:
                    add(path, f"{_SELECTOR[kind]} {value} is already routed by warehouse_routing[{first}]")
