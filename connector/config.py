"""YAML configuration: load, interpolate ``${VAR}`` / ``${VAR:-default}``, validate, apply defaults.

Errors name the file, the line and the field path (``config/x.yaml:12: accounts[0].region: must
be one of na, eu, fe``) and never echo a value, so secrets cannot leak into a terminal or a log.
Relative paths in the file are resolved against the file's own directory.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .amazon.sites import SITES
from .fx import FX_SCHEMA
from .rules import SELECTION_SCHEMA, SITE_RULES_CONFIG_SCHEMA

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


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


# -- schema -----------------------------------------------------------------------------------

_SECRET = {"type": "string", "minLength": 1, "x-secret": True}
_ADDRESS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "line1", "city", "country_code", "phone"],
    "properties": {k: {"type": "string"} for k in (
        "name", "company", "line1", "line2", "line3", "city", "district", "state", "postal_code",
        "country_code", "phone", "email")},
}
_ROUTE = {"type": "string", "pattern": r"^[a-z0-9_]+:([A-Za-z0-9_-]+|\*)$",
          "x-format": "carrier:service or carrier:*, e.g. yunexpress:AYPZXR"}
_QUOTA = {"type": "object", "additionalProperties": False, "required": ["rate", "burst"],
          "properties": {"rate": {"type": "number", "exclusiveMinimum": 0},
                         "burst": {"type": "integer", "minimum": 1}}}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["catalog", "ship_from", "accounts"],
    "properties": {
        "state_dir": {"type": "string", "default": ".mfn"},
        "labels_dir": {"type": "string"},
        "catalog": {"type": "string", "minLength": 1},
        "ledger": {
            "type": "object", "additionalProperties": False, "default": {},
            "properties": {
                "url": {"type": "string", "pattern": r"^(sqlite|postgresql)://"},
                "pii_key_file": {"type": "string"},
                "create_pii_key": {"type": "boolean", "default": False},
                "pii_retention_days": {"type": "integer", "minimum": 0, "default": 30},
                "max_transit_days": {"type": "integer", "minimum": 1, "default": 60},
            },
        },
        "ship_from": _ADDRESS,
        "accounts": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object", "additionalProperties": False,
                "required": ["name", "region", "marketplaces", "refresh_token", "client_id",
                             "client_secret"],
                "properties": {
                    "name": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]*$",
                             "x-format": "lower-case letters, digits, - and _"},
                    "region": {"type": "string", "enum": ["na", "eu", "fe"]},
                    "marketplaces": {"type": "array", "minItems": 1, "uniqueItems": True,
                                     "items": {"type": "string", "enum": sorted(SITES)}},
                    "endpoint": {"type": "string", "pattern": r"^https?://"},
                    "lwa_token_url": {"type": "string", "pattern": r"^https?://"},
                    "refresh_token": _SECRET,
                    "client_id": {"type": "string", "minLength": 1},
                    "client_secret": _SECRET,
                    "client_secret_rotated_at": {"type": "string", "format": "date",
                                                 "pattern": r"^\d{4}-\d{2}-\d{2}$",
                                                 "x-format": "YYYY-MM-DD"},
                },
            },
        },
        "carriers": {"type": "object", "default": {}},
        "routing": {
            "type": "object", "additionalProperties": False, "default": {},
            "properties": {
                "default": {"type": "array", "minItems": 1, "items": _ROUTE},
                "sites": {"type": "object", "default": {},
                          "propertyNames": {"enum": sorted(SITES)},
                          "additionalProperties": {"type": "array", "minItems": 1, "items": _ROUTE}},
            },
        },
        "amazon": {
            "type": "object", "additionalProperties": False, "default": {},
            "properties": {
                "quotas": {"type": "object", "default": {}, "additionalProperties": _QUOTA},
                "pacing": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.9},
                "poll_overlap_minutes": {"type": "number", "minimum": 0, "default": 10},
                "initial_lookback_days": {"type": "number", "exclusiveMinimum": 0, "default": 7},
                "connect_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5},
                "read_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30},
                "max_attempts": {"type": "integer", "minimum": 1, "default": 5},
                "backoff_base_seconds": {"type": "number", "minimum": 0, "default": 1},
            },
        },
        "engine": {
            "type": "object", "additionalProperties": False, "default": {},
            "properties": {
                "workers": {"type": "integer", "minimum": 1, "maximum": 64, "default": 4},
                "poll_interval_seconds": {"type": "number", "minimum": 1, "default": 180},
                "retry_delay_seconds": {"type": "number", "minimum": 0, "default": 30},
                "retry_delay_max_seconds": {"type": "number", "minimum": 0, "default": 900},
                "max_attempts": {"type": "integer", "minimum": 1, "default": 12},
                "carrier_attempts": {"type": "integer", "minimum": 1, "default": 3},
                "verify_attempts": {"type": "integer", "minimum": 1, "default": 6},
                "verify_grace_seconds": {"type": "number", "minimum": 0, "default": 300},
                "quote_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 20},
            },
        },
        "plugins": {
            "type": "object", "additionalProperties": False, "default": {},
            "properties": {"allow": {"type": "array", "items": {"type": "string"}},
                           "deny": {"type": "array", "items": {"type": "string"}, "default": []}},
        },
        "logging": {
            "type": "object", "additionalProperties": False, "default": {},
            "properties": {"level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"], "default": "INFO"},
                           "format": {"enum": ["text", "json"], "default": "text"}},
        },
        "fx": FX_SCHEMA,
        "site_rules": SITE_RULES_CONFIG_SCHEMA,
        "selection": SELECTION_SCHEMA,
        "sandbox": {
            "type": "object", "additionalProperties": False, "default": {},
            "properties": {
                "base_port": {"type": "integer", "minimum": 1024, "maximum": 65000, "default": 8700},
                "seed": {"type": "integer", "default": 7},
                "orders": {"type": "integer", "minimum": 0, "default": 60},
                "faults": {"type": ["number", "object"], "default": 0},
                "timeout_seconds": {"type": "number", "minimum": 0, "default": 3},
                "emulators": {"type": "object", "default": {},
                              "additionalProperties": {"type": "object"}},
            },
        },
    },
}


# -- loading with line numbers ------------------------------------------------------------------


class _Located:
    """Builds plain Python data from a YAML node tree, remembering each path's line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[tuple, int] = {}
        self.problems: list[Problem] = []
        self._scalar = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: tuple = ()) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self._scalar.construct_object(key_node))
                if key in out:
                    self.problems.append(Problem(self.file, key_node.start_mark.line + 1,
                                                _fmt(path + (key,)), "appears twice"))
                out[key] = self.build(value_node, path + (key,))
                self.lines[path + (key,)] = key_node.start_mark.line + 1  # where `key:` is written
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        value = self._scalar.construct_object(node)
        if isinstance(value, str) and "${" in value:
            value = self._interpolate(value, node, path)
        if isinstance(value, date) and not isinstance(value, str):
            value = value.isoformat()
        return value

    def _interpolate(self, text: str, node: yaml.ScalarNode, path: tuple) -> Any:
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            self.problems.append(Problem(self.file, node.start_mark.line + 1, _fmt(path),
                                         f"environment variable {name} is not set"))
            return ""

        result = _VAR.sub(sub, text)
        if node.style is None:  # plain scalar: resolve the type of the substituted text
            try:
                return yaml.safe_load(result) if result.strip() else ""
            except yaml.YAMLError:
                return result
        return result


def _fmt(path: tuple | list) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line(lines: dict[tuple, int], path: tuple) -> int | None:
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path)


def _message(error: jsonschema.ValidationError) -> tuple[tuple, str]:
    """A value-free message for a schema error, and the path it belongs to."""
    path = tuple(error.absolute_path)
    v, arg, schema = error.validator, error.validator_value, error.schema
    if v == "required":
        missing = [r for r in arg if r not in (error.instance or {})]
        return path, "missing required field " + ", ".join(repr(m) for m in missing)
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(schema.get("properties", {})))
        return path, "unknown field(s) " + ", ".join(repr(e) for e in extra)
    if v == "enum":
        return path, "must be one of " + ", ".join(str(a) for a in arg)
    if v == "type":
        kinds = arg if isinstance(arg, list) else [arg]
        return path, "must be " + " or ".join({"object": "a mapping", "array": "a list",
                                                 "string": "a string", "integer": "an integer",
                                                 "number": "a number", "boolean": "true or false"}
                                                .get(k, k) for k in kinds)
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sym = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return path, f"must be {sym} {arg}"
    if v == "minItems":
        return path, f"must have at least {arg} item(s)"
    if v == "minLength":
        return path, "must not be empty"
    if v == "uniqueItems":
        return path, "must not repeat items"
    if v in ("pattern", "format"):
        return path, "has the wrong format" + (f" (expected {schema['x-format']})"
                                               if "x-format" in schema else "")
    if v == "propertyNames":
        return path, f"unknown key(s); keys must be one of {', '.join(arg.get('enum', []))}"
    return path, f"is invalid ({v})"


def apply_defaults(schema: dict[str, Any], data: Any) -> Any:
    if not isinstance(data, dict) or schema.get("type") != "object":
        return data
    for key, sub in schema.get("properties", {}).items():
        if key not in data and "default" in sub:
            data[key] = copy.deepcopy(sub["default"])
        if key in data:
            data[key] = apply_defaults(sub, data[key])
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in data:
            if key not in schema.get("properties", {}):
                data[key] = apply_defaults(extra, data[key])
    if isinstance(schema.get("items"), dict):
        pass
    return data


def _validate(schema: dict[str, Any], data: Any, located: _Located, prefix: tuple = ()) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path, message = _message(error)
        full = prefix + path
        located.problems.append(Problem(located.file, _line(located.lines, full), _fmt(full), message))


# -- the loaded configuration ----------------------------------------------------------------


@dataclass
class Config:
    path: Path
    data: dict[str, Any]
    lines: dict[tuple, int] = field(default_factory=dict, repr=False)

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
        url = self.data["ledger"].get("url")
        if not url:
            return f"sqlite:///{self.state_dir / 'ledger.db'}"
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            return f"sqlite:///{self.resolve(url[len('sqlite:///'):])}"
        return url

    @property
    def pii_key_file(self) -> Path:
        key = self.data["ledger"].get("pii_key_file")
        return self.resolve(key) if key else self.state_dir / "pii.key"

    @property
    def catalog_path(self) -> Path:
        return self.resolve(self.data["catalog"])

    def section(self, *keys: str) -> Any:
        node: Any = self.data
        for k in keys:
            node = node.get(k, {}) if isinstance(node, dict) else {}
        return node

    def line_of(self, *path: str | int) -> int | None:
        return _line(self.lines, tuple(path))


def load_config(path: str | os.PathLike[str], *, carrier_schemas: dict[str, dict] | None = None) -> Config:
    """Load and validate a configuration file; raise ConfigError listing every problem.

    ``carrier_schemas`` maps carrier code -> JSON Schema of its settings (from the plugins);
    when given, ``carriers.<code>`` sections are validated and unknown carriers reported.
    """
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    located = _Located(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise ConfigError([Problem(file, line, "", f"YAML syntax error: {exc.problem}")]) from None
    if node is None:
        raise ConfigError([Problem(file, 1, "", "the file is empty")])
    data = located.build(node)
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, 1, "", "the top level must be a mapping")])
    _validate(SCHEMA, data, located)
    if not located.problems:
        apply_defaults(SCHEMA, data)
        _check_cross_references(data, located, carrier_schemas)
    if located.problems:
        raise ConfigError(located.problems)
    return Config(path.resolve(), data, located.lines)


def _check_cross_references(data: dict[str, Any], located: _Located,
                            carrier_schemas: dict[str, dict] | None) -> None:
    def add(path: tuple, message: str) -> None:
        located.problems.append(Problem(located.file, _line(located.lines, path), _fmt(path), message))

    names = [a["name"] for a in data["accounts"]]
    for i, name in enumerate(names):
        if names.index(name) != i:
            add(("accounts", i, "name"), "repeats another account's name")
    for i, account in enumerate(data["accounts"]):
        region = account["region"]
        for j, site in enumerate(account["marketplaces"]):
            if SITES[site].region != region:
                add(("accounts", i, "marketplaces", j),
                    f"site {site} is in region {SITES[site].region}, not {region}")
    if carrier_schemas is None:
        return
    for code, settings in data["carriers"].items():
        if code not in carrier_schemas:
            installed = ", ".join(sorted(carrier_schemas)) or "none"
            add(("carriers", code), f"no installed plugin provides carrier {code!r} (installed: {installed})")
            continue
        if settings is None:
            settings = data["carriers"][code] = {}
        _validate(carrier_schemas[code], settings, located, ("carriers", code))
        apply_defaults(carrier_schemas[code], settings)
    routes = [(("routing", "default", i), r) for i, r in enumerate(data["routing"].get("default", []))]
    for site, lst in data["routing"]["sites"].items():
        routes += [(("routing", "sites", site, i), r) for i, r in enumerate(lst)]
    for path, route in routes:
        carrier = route.split(":", 1)[0]
        if carrier not in data["carriers"]:
            add(path, f"carrier {carrier!r} is not configured under carriers")


def secret_paths(schema: dict[str, Any], prefix: tuple = ()) -> list[tuple]:
    """Paths of fields marked ``x-secret`` (for redacting a config dump)."""
    out = []
    if schema.get("x-secret"):
        out.append(prefix)
    for key, sub in schema.get("properties", {}).items():
        out += secret_paths(sub, prefix + (key,))
    if isinstance(schema.get("items"), dict):
        out += secret_paths(schema["items"], prefix + ("*",))
    return out


def client_secret_rotated_at(account: dict[str, Any]) -> date | None:
    value = account.get("client_secret_rotated_at")
    return date.fromisoformat(value) if value else None
