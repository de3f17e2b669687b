"""Checking a plugin's settings schema: the compiled check first, ``jsonschema`` for the verdict
and the message whenever the compiled one does not pass a schema."""
from __future__ import annotations

import jsonschema
import pytest

from connector.kit.schema import _surely_valid, schema_error
from connector.plugins import load_plugins

SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "string", "pattern": r"^\d+$"}}},
    {"type": "object", "patternProperties": {"^[A-Z]{2}$": {"type": "string"}}},
    {"type": "strng"},
    {"type": "string", "minLength": "1"},
    {"type": "string", "pattern": "["},
    # valid for the compiled check's regex dialect, not for Python's re, which validation uses
    {"type": "string", "pattern": r"\p{L}+"},
    {"type": "object", "patternProperties": {"(": {}}},
    {"properties": {"deep": {"anyOf": [{"type": "string", "pattern": "a{"}, {"pattern": "(?<"}]}}},
    # another draft's $schema: judged as 2020-12 by jsonschema, never fetched
    {"$schema": "http://example.invalid/schema", "type": "strng"},
    {"type": {"string"}},  # no JSON: a set
]


def _jsonschema_accepts(schema) -> bool:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError:
        return False
    return True


@pytest.mark.parametrize("schema", SCHEMAS, ids=repr)
def test_the_verdict_is_jsonschemas(schema):
    assert (schema_error(schema) == "") == _jsonschema_accepts(schema)


@pytest.mark.parametrize("schema", [s for s in SCHEMAS if not _jsonschema_accepts(s)], ids=repr)
def test_what_jsonschema_refuses_the_compiled_check_does_not_pass(schema):
    assert not _surely_valid(schema)


def test_every_built_in_carriers_schema_takes_the_compiled_check():
    # else every command's start pays jsonschema's check again, 20-40 ms per carrier
    specs = load_plugins().carriers()
    assert {"yunexpress", "chinapost", "yanwen", "dhl_ecommerce", "amazon_shipping"} <= set(specs)
    assert [code for code, spec in specs.items() if not _surely_valid(spec.settings_schema)] == []
