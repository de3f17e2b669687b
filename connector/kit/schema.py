"""JSON Schema helpers shared by the configuration loader and typed plugin settings.

Messages never echo a value (a setting may be a secret): they name the field path and what is
wrong with it, e.g. ``carriers.yunexpress.timeout_seconds: must be > 0``.

Two rules hold for every schema checked here, the core's sections and a plugin's settings alike
(:func:`problems`), so no schema has to say them:

* a number is finite: YAML reads ``.inf``, ``-.inf`` and ``.nan`` as floats, which pass every
  ``minimum`` and then overflow the date and timer arithmetic that uses them;
* a duration -- a setting named ``*_seconds``, ``*_minutes``, ``*_hours`` or ``*_days``, in that
  unit -- is at most :data:`MAX_DURATION_SECONDS` (ten years), unless its schema says less.
"""
from __future__ import annotations

import copy
import datetime
import difflib
import functools
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

Path = tuple[str | int, ...]

MAX_DURATION_SECONDS = 10 * 365 * 86_400
"""The longest duration any setting may give: ten years (315360000 seconds, 5256000 minutes, 87600
hours, 3650 days). Longer is a typo, and far longer no date can hold (``now + delay`` overflows)."""

DURATION_UNITS: dict[str, int] = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86_400}
"""The last word of a duration setting's name, and that unit in seconds."""

NOT_FINITE = "must be a finite number, not .inf or .nan"
WRITTEN_WITH_A_POINT = ("must be a whole number written without a point (is 1.000 1, or 1000 with a point "
                        "between thousands?)")


def duration_maximum(name: str | int) -> int | None:
    """The largest value of setting ``name`` if it is a duration (``retry_delay_max_seconds``:
    315360000; ``max_days``: 3650), else None."""
    unit = DURATION_UNITS.get(str(name).rpartition("_")[2])
    return MAX_DURATION_SECONDS // unit if unit else None


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


class UnshownKey(str):
    """An unknown key that may hold a value: ``{client_secret:s3cret}`` (no space after the colon)
    is one key to YAML. It finds its line as the key it is, and :func:`format_path` leaves it out."""

    __slots__ = ()


def format_path(path: Sequence[str | int]) -> str:
    """``("accounts", 0, "region")`` -> ``accounts[0].region``."""
    out = ""
    for part in path:
        if isinstance(part, UnshownKey):
            continue
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
        if "number" in kinds and _not_finite(error.instance):
            return path, NOT_FINITE
        if kinds == ["integer"] and isinstance(error.instance, float) and error.instance.is_integer():
            return path, WRITTEN_WITH_A_POINT
        return path, "must be " + " or ".join({"object": "a mapping", "array": "a list",
                                                 "string": "a string", "integer": "an integer",
                                                 "number": "a number", "boolean": "true or false",
                                                 "null": "null"}.get(k, k) for k in kinds)
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sym = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return path, f"must be {sym} {arg}"
    if v == "x-duration":
        return path, f"must be <= {arg} (ten years)"
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
    """Every schema violation of ``data`` as (path, message), in path order; with the module's two
    rules for every schema: numbers are finite, durations at most :data:`MAX_DURATION_SECONDS`."""
    return [] if surely_no_problems(schema, data) else _described_problems(schema, data)


def _described_problems(schema: dict[str, Any], data: Any) -> list[tuple[Path, str]]:
    validator_class = _validator_class()
    # formats checked too: a "date" of 2026-02-30 matches its pattern but is no date
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    described: list[tuple[Path, str]] = []
    for error in validator.iter_errors(data):
        described += _unknown_keys(error) if error.validator == "additionalProperties" else [describe(error)]
    said = {path for path, _ in described}
    for path in _non_finite_paths(data):  # where no schema says "number": a free-form mapping
        if not any(path[:n] in said for n in range(len(path) + 1)):
            described.append((path, NOT_FINITE))
    described.sort(key=lambda problem: list(map(str, problem[0])))
    return list(dict.fromkeys(described))  # one line per problem


def surely_no_problems(schema: Any, data: Any) -> bool:
    """Whether the compiled check (``jsonschema_rs``) passes ``data`` where it judges as
    ``jsonschema`` does: every command validates its configuration at its start, and
    ``jsonschema``'s import alone costs ~90 ms of it. What this does not pass, ``jsonschema`` judges
    and names. The compiled check judges patterns, dates and regexes with Python's own functions;
    data it could judge otherwise (a float the module's own rules judge, an over-long duration, a
    tuple) and schemas with a keyword it could judge otherwise go to ``jsonschema`` whole
    (``tests/kit/test_schema_fast_path.py`` compares the two over mutated settings)."""
    if _python_must_judge(data) or _python_only(schema):
        return False
    import jsonschema_rs

    try:
        validator = jsonschema_rs.validator_for(schema, validate_formats=True, offline=True,
                                                formats={"date": _is_date, "regex": _compiles},
                                                keywords={"pattern": _PythonPattern})
        return validator.is_valid(data)
    except Exception:  # noqa: BLE001 - a value JSON has no word for (a date, an int key), a bad schema
        return False


class _PythonPattern:
    r"""``pattern`` as validation reads it: Python's ``re`` (``$`` before a final newline, ``\s`` of
    str.isspace, ...), not the compiled check's dialect."""

    def __init__(self, _parent: Any, value: str, _path: Any) -> None:
        self.regex = re.compile(value)

    def validate(self, instance: Any) -> None:
        if isinstance(instance, str) and not self.regex.search(instance):
            raise ValueError("does not match")


def _is_date(value: str) -> bool:
    """A "date" as ``jsonschema`` judges it (the compiled check takes year 0, which no date holds)."""
    try:
        return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII)
                    and datetime.date.fromisoformat(value))
    except ValueError:
        return False


def _python_must_judge(data: Any) -> bool:
    """Whether ``data`` holds what only ``jsonschema`` judges as this module does: a non-finite
    float (no "number"), a whole float (1.000 is no "integer" here; the compiled check takes it
    for one), a tuple (no "array" to jsonschema, a list to the compiled check), a duration past
    its maximum (the ``x-duration`` rule of :func:`_validator_class`)."""
    if isinstance(data, float):
        return not math.isfinite(data) or data.is_integer()
    if isinstance(data, tuple):
        return True
    if isinstance(data, dict):
        return any(_python_must_judge(value) or _too_long(key, value) for key, value in data.items())
    if isinstance(data, list):
        return any(map(_python_must_judge, data))
    return False


def _too_long(name: Any, value: Any) -> bool:
    limit = duration_maximum(name)
    return (limit is not None and isinstance(value, (int, float)) and not isinstance(value, bool)
            and value > limit)


# Keywords the compiled check may judge otherwise: a float's multipleOf, patterns matched against
# property names by its own regex dialect, any format but the two given Python's checks.
_PYTHON_ONLY = frozenset({"multipleOf", "patternProperties"})
_OWN_FORMATS = frozenset({"date", "regex"})
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "dependentSchemas"})  # name -> schema
_VALUES = frozenset({"enum", "const", "default", "examples", "required"})  # data, not schemas


def _python_only(schema: Any) -> bool:
    """Whether ``schema`` holds a keyword the compiled check may judge otherwise (a walk of a few
    hundred nodes at most: tens of microseconds, not worth a cache)."""
    if isinstance(schema, list):
        return any(map(_python_only, schema))
    if not isinstance(schema, dict):
        return False
    if schema.get("$schema", _DRAFT_2020_12) != _DRAFT_2020_12:  # (jsonschema reads every one as 2020-12)
        return True
    for key, value in schema.items():
        if key in _PYTHON_ONLY or (key == "format" and value not in _OWN_FORMATS):
            return True
        if key in _VALUES:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            if any(map(_python_only, value.values())):
                return True
        elif _python_only(value):
            return True
    return False


def schema_error(schema: Any) -> str:
    """Why ``schema`` is not a JSON Schema :func:`problems` can check data against; "" when it is."""
    if _surely_valid(schema):
        return ""
    import jsonschema

    try:
        _validator_class().check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"{format_path(tuple(exc.absolute_path)) or 'the schema'}: {exc.message}"
    return ""


def _surely_valid(schema: Any) -> bool:
    """Whether the compiled metaschema check (``jsonschema_rs``) passes ``schema`` and its regexes
    compile in Python: ~0.1 ms where ``jsonschema``'s own check takes 20-40 ms, for every carrier
    at every command's start. What this does not pass, ``jsonschema`` judges, and names the problem.
    A schema naming another ``$schema`` goes there too: the compiled check would follow (fetch)
    it, and :func:`problems` reads every schema as 2020-12 whatever it names."""
    import jsonschema_rs

    if isinstance(schema, dict) and schema.get("$schema", _DRAFT_2020_12) != _DRAFT_2020_12:
        return False
    try:
        valid = jsonschema_rs.meta.is_valid(schema)
    except ValueError:  # a key or value JSON has no word for (a set, an int key)
        return False
    return valid and _regexes_compile(schema)


_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _regexes_compile(node: Any) -> bool:
    """Whether every ``pattern`` and ``patternProperties`` key under ``node`` compiles with
    Python's ``re``, which validation uses: the meta-schema's one format ``jsonschema`` checks
    ("regex"), and one the compiled check leaves alone (it would judge by its own dialect)."""
    if isinstance(node, list):
        return all(_regexes_compile(item) for item in node)
    if not isinstance(node, dict):
        return True
    for key, value in node.items():
        if key == "pattern" and isinstance(value, str) and not _compiles(value):
            return False
        if key == "patternProperties" and isinstance(value, dict) and not all(map(_compiles, value)):
            return False
        if not _regexes_compile(value):
            return False
    return True


def _compiles(pattern: Any) -> bool:
    try:
        re.compile(pattern)
    except (re.error, TypeError):
        return False
    return True


@functools.cache
def _validator_class() -> Any:
    """Draft 2020-12, but a non-finite float is no "number" (so the bounds, which skip what is not a
    number, say nothing more of it), a float is no "integer" (1.000), and a duration property has a
    maximum (``x-duration``)."""
    import jsonschema  # loaded when a section is validated, not when a plugin is imported

    draft = jsonschema.Draft202012Validator
    checker = draft.TYPE_CHECKER.redefine_many({
        "number": lambda _, value: draft.TYPE_CHECKER.is_type(value, "number") and not _not_finite(value),
        # YAML reads 1.000 as 1.0, which 2020-12 counts an integer: where a point separates thousands
        # it meant 1000, so a whole number written with a point is not guessed at
        "integer": lambda _, value: (draft.TYPE_CHECKER.is_type(value, "integer")
                                     and not isinstance(value, float)),
    })
    original = draft.VALIDATORS["properties"]

    def properties(validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]):
        yield from original(validator, properties, instance, schema)
        if not validator.is_type(instance, "object"):
            return
        for name, sub in properties.items():
            limit, value = duration_maximum(name), instance.get(name)
            if limit is None or not validator.is_type(value, "number") or value <= limit:
                continue
            own = sub.get("maximum") if isinstance(sub, dict) else None
            if isinstance(own, (int, float)) and own <= limit:
                continue  # its own, lower, maximum says so already
            yield jsonschema.ValidationError(f"more than {limit}", validator="x-duration",
                                             validator_value=limit, instance=value, schema=sub,
                                             path=[name], schema_path=[name])

    return jsonschema.validators.extend(draft, {"properties": properties}, type_checker=checker)


def _non_finite_paths(data: Any, path: Path = ()) -> list[Path]:
    if _not_finite(data):
        return [path]
    if isinstance(data, dict):
        return [p for key, value in data.items() for p in _non_finite_paths(value, (*path, key))]
    if isinstance(data, (list, tuple)):
        return [p for i, value in enumerate(data) for p in _non_finite_paths(value, (*path, i))]
    return []


def _unknown_keys(error: jsonschema.ValidationError) -> list[tuple[Path, str]]:
    """An unknown key at its own path (so at its own line), with the known key it may be a typo of:
    ``engnie`` reported at the mapping's first line, among many, was hard to find."""
    known = list(error.schema.get("properties", {}))
    found = []
    for key in sorted(set(error.instance) - set(known), key=str):
        name, glued = re.match(r"([^\s:=]*)([\s:=])?", str(key)).groups()
        near = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {near[0]!r}?" if near else ""
        if glued:  # a field name and its value, which may be a secret: the key is not shown
            key = UnshownKey(key)
            hint = "a field written with its value, not shown here: a space goes after the ':'" + (
                f"; {hint}" if hint else "")
        found.append(((*error.absolute_path, key), "unknown field" + (f" ({hint})" if hint else "")))
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
