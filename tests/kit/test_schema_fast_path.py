"""Validating settings: the compiled check (``jsonschema_rs``) passes data first, and ``jsonschema``
names the problems of whatever it does not pass. The compiled check must pass nothing ``jsonschema``
would refuse: compared here over the shipped configurations, site rules and every built-in carrier's
settings, each mutated a few hundred ways (seeded, so a failure repeats)."""
from __future__ import annotations

import copy
import random
from importlib import resources
from pathlib import Path

import pytest
import yaml

from connector import config as config_module
from connector.configured import load_config_with_plugins
from connector.kit import schema as kit_schema
from connector.kit.schema import MAX_DURATION_SECONDS, problems, surely_no_problems
from connector.rules import SITES_FILE_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
MUTATIONS = 400

# values a typo, a wrong unit or a bad paste puts where a setting belongs
ODD_VALUES = [None, True, False, 0, -1, 1, 2.5, -0.5, 5.0, 10**12, MAX_DURATION_SECONDS + 1, float("nan"),
              "", " ", "x", "12", "2026-12-07", "2026-02-30", "12/07/2026", "a\n", "US", "us", "CN",
              "https://example.invalid/x", "${MISSING}", "0x10", "1e3", "\u00a0", "\u0661\u0662",
              "0000-02-29", "x\n", "a\x1cb", "\U0001f600", "(?<n>x)", (1, 2),
              [], ["x"], [1, 1], {}, {"unknown_key": 1}, {"": None}]


def _validated(name: str) -> list[tuple[str, dict, object]]:
    """What the loader validates of ``config/<name>``: each schema with its data, variables put in."""
    seen = []
    validate = config_module._validate

    def recording(schema, data, located, prefix=()):
        seen.append((".".join(map(str, prefix)) or name, schema, copy.deepcopy(data)))
        validate(schema, data, located, prefix)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config_module, "_validate", recording)
        for var in ("LWA_CLIENT_ID", "LWA_CLIENT_SECRET", "BRAND_A_NA_REFRESH_TOKEN",
                    "BRAND_A_EU_REFRESH_TOKEN", "BRAND_B_FE_REFRESH_TOKEN", "BRAND_A_IOSS_NUMBER",
                    "YUNEXPRESS_CUSTOMER_CODE", "YUNEXPRESS_API_SECRET"):
            patch.setenv(var, "IM1234567890" if var.endswith("IOSS_NUMBER") else "placeholder-value")
        load_config_with_plugins(str(ROOT / "config" / name))
    return seen


def _cases() -> list[tuple[str, dict, object]]:
    sites = yaml.safe_load(resources.files("mfn_marketplace_amazon").joinpath("sites.yaml")
                           .read_text(encoding="utf-8"))
    return [*_validated("sandbox.yaml"), *_validated("production.example.yaml"),
            ("sites.yaml", SITES_FILE_SCHEMA, sites)]


def _paths(data, path=()):
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, (*path, i))


def _mutated(data, rng: random.Random):
    """``data`` with one to three changes: a value replaced, a key dropped or an unknown one added."""
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(list(_paths(data)))
        if not path:
            continue
        *parents, last = path
        container = data
        for part in parents:
            container = container[part]
        roll = rng.random()
        if roll < 0.75:
            container[last] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif roll < 0.9 and isinstance(container, dict):
            del container[last]
        elif isinstance(container, dict):
            container[f"{last}_typo"] = container[last]
    return data


@pytest.mark.parametrize("name,schema,data", _cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_compiled_check_passes_nothing_jsonschema_refuses(name, schema, data):
    assert kit_schema._described_problems(schema, data) == [], f"{name} as shipped is valid"
    rng = random.Random(f"fast-path {name}")
    passed = refused = 0
    for _ in range(MUTATIONS):
        mutated = _mutated(data, rng)
        found = kit_schema._described_problems(schema, mutated)
        if surely_no_problems(schema, mutated):
            passed += 1
            assert found == [], f"{name}: the compiled check passed {mutated!r}"
        refused += bool(found)
    if data:  # neither side vacuous: both valid and invalid mutations were compared
        assert passed >= MUTATIONS // 20 and refused >= MUTATIONS // 4, (passed, refused)


def test_problems_names_what_the_compiled_check_does_not_pass():
    schema = {"type": "object", "properties": {"as_of": {"type": "string", "format": "date"},
                                               "retry_seconds": {"type": "number"},
                                               "rate": {"type": "number"}}}
    assert problems(schema, {"as_of": "2026-12-07", "retry_seconds": 30, "rate": 0.5}) == []
    assert problems(schema, {"as_of": "2026-02-30"}) == [(("as_of",), "has the wrong format")]
    assert [path for path, _ in problems(schema, {"retry_seconds": MAX_DURATION_SECONDS + 1})] == [
        ("retry_seconds",)]
    assert [path for path, _ in problems(schema, {"rate": float("inf")})] == [("rate",)]


# Where the compiled check, left to itself, judges otherwise than jsonschema; each with data both pass.
DIALECTS = {
    # its "date" takes year 0 (client_secret_rotated_at: '0000-02-29' passed, and the start then
    # stopped with a ValueError where the date was read)
    "year-0-date": ({"type": "string", "format": "date"}, "0000-02-29", "2026-12-07"),
    "ecmascript-regex": ({"type": "string", "format": "regex"}, "(?<name>x)", "^x$"),
    "float-multiple-of": ({"type": "number", "multipleOf": 0.01}, 0.07, None),
    "tuple-as-array": ({"type": "array"}, (1, 2), [1, 2]),
    "dollar-before-newline": ({"not": {"type": "string", "pattern": "^x$"}}, "x\n", "y"),
    "pattern-properties-dialect": ({"type": "object", "patternProperties": {"^x$": {"type": "integer"}}},
                                   {"x\n": "a"}, None),
    "python-whitespace": ({"type": "string", "pattern": r"^\S+$"}, "a\x1cb", "ab"),
    "property-names-dialect": ({"type": "object", "propertyNames": {"not": {"pattern": "^x$"}}},
                               {"x\n": 1}, {"y": 1}),
}


@pytest.mark.parametrize("schema,refused,passed", DIALECTS.values(), ids=DIALECTS)
def test_where_the_compiled_check_judges_otherwise_jsonschema_judges(schema, refused, passed):
    assert kit_schema._described_problems(schema, refused) != []
    assert not surely_no_problems(schema, refused)
    if passed is not None:  # (a schema the compiled check never judges)
        assert kit_schema._described_problems(schema, passed) == []
        assert surely_no_problems(schema, passed)
