"""JSON Schema helpers shared by the configuration loader and typed plugin settings.

Messages never echo a value (a setting may be a secret): they name the field path and what is
wrong with it, e.g. ``carriers.yunexpress.timeout_seconds: must be > 0``.
"""
from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

Path = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """``("accounts", 0, "region")`` -> ``accounts[0].region``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(error: jsonschema.ValidationError) -> tuple[Path, str]:
    """A value-free message for a schema error, and the path it belongs to."""
    path = tuple(error.absolute_path)
    v, arg, schema = error.validator, error.validator_value, error.schema
    if v == "required":
        missing = [r for r in arg if r not in (error.instance or {})]
        return path, "missing required field " + ", ".join(repr(m) for m in missing)
    if v == "additionalProperties":  # (problems() gives each unknown key a line of its own)
        extra = sorted(set(error.instance) - set(schema.get("properties", {})))
        return path, "unknown field(s) " + ", ".join(repr(e) for e in extra)
    if v == "enum":
        return path, "must be one of " + ", ".join(str(a) for a in arg)
    if v == "const":
        return path, f"must be {arg!r}"
    if v == "type":
        kinds = arg if isinstance(arg, list) else [arg]
        return path, "must be " + " or ".join({"object": "a mapping", "array": "a list",
                                                 "string": "a string", "integer": "an integer",
                                                 "number": "a number", "boolean": "true or false",
                                                 "null": "null"}.get(k, k) for k in kinds)
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sym = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return path, f"must be {sym} {arg}"
    if v == "minItems":
        return path, f"must have at least {arg} item(s)"
    if v == "maxItems":
        return path, f"must have at most {arg} item(s)"
    if v == "minLength":
        return path, "must not be empty"
    if v == "uniqueItems":
        return path, "must not repeat items"
    if v in ("pattern", "format"):
        return path, "has the wrong format" + (f" (expected {schema['x-format']})"
                                               if "x-format" in schema else "")
    if v == "propertyNames":
        allowed = arg.get("enum") if isinstance(arg, dict) else None
        return path, ("unknown key(s); keys must be one of " + ", ".join(allowed) if allowed
                      else "has a key of the wrong format")
    if v in ("anyOf", "oneOf"):  # say what would do, not which combinator refused it
        forms = _forms(arg)
        if forms:
            return path, "has the wrong form (expected " + "; or ".join(forms) + ")"
        from jsonschema.exceptions import best_match

        best = best_match(error.context)
        if best is not None:
            return describe(best)
    return path, f"is invalid ({v})"


def _forms(branches: list[Any]) -> list[str]:
    """The stated form of each alternative, into nested ones: its ``x-format``, or the fields a
    mapping must have."""
    found: list[str] = []
    for branch in branches:
        if not isinstance(branch, dict):
            continue
        if "x-format" in branch:
            found.append(branch["x-format"])
        elif branch.get("type") == "object" and branch.get("required"):
            found.append("a mapping of " + ", ".join(branch["required"]))
        found += _forms(branch.get("anyOf", []) + branch.get("oneOf", []))
    return list(dict.fromkeys(found))


def problems(schema: dict[str, Any], data: Any) -> list[tuple[Path, str]]:
    """Every schema violation of ``data`` as (path, message), in path order."""
    import jsonschema  # loaded when a section is validated, not when a plugin is imported

    # formats checked too: a "date" of 2026-02-30 matches its pattern but is no date
    draft = jsonschema.Draft202012Validator
    validator = draft(schema, format_checker=draft.FORMAT_CHECKER)
    found = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    described: list[tuple[Path, str]] = []
    for error in found:
        described += _unknown_keys(error) if error.validator == "additionalProperties" else [describe(error)]
    return list(dict.fromkeys(described))  # one line per problem


def _unknown_keys(error: jsonschema.ValidationError) -> list[tuple[Path, str]]:
    """An unknown key at its own path (so at its own line), with the known key it may be a typo of:
    ``engnie`` reported at the mapping's first line, among many, was hard to find."""
    known = list(error.schema.get("properties", {}))
    found = []
    for key in sorted(set(error.instance) - set(known), key=str):
        near = difflib.get_close_matches(str(key), known, n=1)
        found.append(((*error.absolute_path, key), "unknown field" + (f" (did you mean {near[0]!r}?)"
                                                                       if near else "")))
    return found


def apply_defaults(schema: dict[str, Any], data: Any) -> Any:
    """Fill in ``default`` values of object properties, recursively (in place; returns ``data``)."""
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
    return data


def secret_paths(schema: dict[str, Any], prefix: Path = ()) -> list[Path]:
    """Paths of fields marked ``x-secret`` (for redacting a dump)."""
    out = []
    if schema.get("x-secret"):
        out.append(prefix)
    for key, sub in schema.get("properties", {}).items():
        out += secret_paths(sub, prefix + (key,))
    if isinstance(schema.get("items"), dict):
        out += secret_paths(schema["items"], prefix + ("*",))
    return out
