"""Amazon's published SP-API models (vendored Swagger 2.0) as JSON Schema validators.

The emulator checks every request it accepts and every response it returns against the same
models Amazon publishes (https://github.com/amzn/selling-partner-api-models), so the sandbox
cannot drift into a private dialect. The core vendors the Orders models it serves
(``spapi_models/``); an emulator extension that serves another API registers that API's model
with :func:`register_model`.

* Operations are found by ``operationId`` across the loaded models. The first model that declares
  an id wins (``orders_2026-01-01`` before ``ordersV0``, so ``getOrder`` is the v2026 one; the
  core models before registered ones); qualify it as ``"ordersV0:getOrder"`` to reach another
  model's operation.
* Swagger definitions become one JSON Schema resource per model (``urn:spapi-model:<model>``), so
  ``$ref: "#/definitions/X"`` resolves through a :mod:`referencing` registry. Compiled validators
  are cached.
* Most instances are valid, and :mod:`jsonschema`'s reference resolution made the check the
  emulators' largest cost (over half their CPU in a benchmark run, ~1.5 ms a body). So each
  instance is checked first by the same schema compiled (``jsonschema_rs``: same draft, same
  formats, ~70 times faster), which only says yes or no; :mod:`jsonschema` walks the instance
  only when it says no, to name every problem. A test compares the two over mutated instances.
* ``format: date-time`` / ``date`` are checked leniently (ISO 8601 shape, any offset, optional
  fraction); other formats are not checked.
* Responses are validated strictly: an object property the model does not declare is reported
  (Swagger allows extra properties, but in the emulator's own answers an undeclared field is a
  typo). Requests are validated as the model says, extra body fields allowed.
"""
from __future__ import annotations

import copy
import json
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema_rs
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

MODELS_DIR = Path(__file__).with_name("spapi_models")
MODEL_FILES = ("orders_2026-01-01.json", "ordersV0.json")
"""The core's models (the Orders APIs), in lookup order."""

_models: list[Path] = [MODELS_DIR / filename for filename in MODEL_FILES]
_models_lock = threading.Lock()

_URN = "urn:spapi-model:"
_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_MAX_PROBLEMS = 25

_ISO_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
               float: "number", type(None): "null"}


# -- loading -----------------------------------------------------------------------------------


class _Operation:
    """One operation of one model: where it lives and what it declares."""

    def __init__(self, model: str, operation_id: str, method: str, path: str,
                 parameters: list[dict[str, Any]], responses: dict[str, Any]) -> None:
        self.model = model
        self.operation_id = operation_id
        self.key = f"{model}:{operation_id}"
        self.method = method.upper()
        self.path = path
        self.parameters = parameters
        self.responses = responses

    def params_in(self, location: str) -> list[dict[str, Any]]:
        return [p for p in self.parameters if p.get("in") == location]

    @property
    def body_param(self) -> dict[str, Any] | None:
        found = self.params_in("body")
        return found[0] if found else None


def register_model(path: str | Path) -> str:
    """Add a Swagger 2.0 model file (an SP-API model as Amazon publishes it) to the validators and
    return its model name (the file name without ``.json``). Its operations come after those of
    the models already loaded. Registering the same file again does nothing; another file with
    the name of a loaded model is refused (ValueError)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ValueError(f"no SP-API model at {path}")
    with _models_lock:
        name = _model_name(path)
        for known in _models:
            if _model_name(known) == name:
                if known.resolve() == path:
                    return name
                raise ValueError(f"an SP-API model named {name!r} is already loaded (from {known})")
        _models.append(path)
        _operations.cache_clear()
        _registry.cache_clear()
        _validator.cache_clear()
        _compiled_registry.cache_clear()
        _compiled.cache_clear()
    return name


def models() -> list[str]:
    """Names of the loaded models, in lookup order."""
    return [_model_name(path) for path in _models]


@cache
def _load_model(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _model_name(path: Path) -> str:
    return path.name[: -len(".json")] if path.name.endswith(".json") else path.name


@cache
def _operations() -> dict[str, _Operation]:
    table: dict[str, _Operation] = {}
    for path in list(_models):
        model = _model_name(path)
        doc = _load_model(path)
        for path, item in doc.get("paths", {}).items():
            shared = item.get("parameters", [])
            for method in _HTTP_METHODS:
                op = item.get(method)
                if not isinstance(op, dict) or "operationId" not in op:
                    continue
                own = op.get("parameters", [])
                own_keys = {(p.get("name"), p.get("in")) for p in own}
                params = [p for p in shared if (p.get("name"), p.get("in")) not in own_keys] + own
                operation = _Operation(model, op["operationId"], method, path, params,
                                       op.get("responses", {}))
                table.setdefault(operation.key, operation)  # first (method) wins on duplicates
                table.setdefault(operation.operation_id, operation)  # first model wins
    return table


def _operation(operation_id: str) -> _Operation:
    try:
        return _operations()[operation_id]
    except KeyError:
        known = sorted(k for k in _operations() if ":" not in k)
        raise KeyError(f"unknown SP-API operation {operation_id!r}; known: {', '.join(known)}") from None


# -- Swagger 2 -> JSON Schema ------------------------------------------------------------------


def _convert(node: Any, *, strict: bool) -> Any:
    """A Swagger 2 schema object as a draft-4 JSON Schema (``x-nullable``; strict objects)."""
    if isinstance(node, list):
        return [_convert(x, strict=strict) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "definitions", "patternProperties"):
            out[key] = {k: _convert(v, strict=strict) for k, v in value.items()}
        elif key in ("example", "examples", "x-docgen-enum-table-extension", "description"):
            continue
        else:
            out[key] = _convert(value, strict=strict)
    if out.get("x-nullable") is True and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if strict and "properties" in out and "additionalProperties" not in out and "$ref" not in out:
        out["additionalProperties"] = False
    return out


def _operation_schemas(op: _Operation, *, strict: bool) -> dict[str, Any]:
    body = op.body_param
    return {
        "body": _convert(body["schema"], strict=strict) if body and "schema" in body else {},
        "responses": {status: _convert(resp["schema"], strict=strict)
                      for status, resp in op.responses.items()
                      if isinstance(resp, dict) and "schema" in resp},
    }


@cache
def _registry(strict: bool) -> Registry:
    registry: Registry = Registry()
    by_model: dict[str, dict[str, Any]] = {}
    for op in _operations().values():
        if op.key not in by_model.setdefault(op.model, {}):
            by_model[op.model][op.key] = op
    for path in list(_models):
        model = _model_name(path)
        doc = _load_model(path)
        contents = {
            "definitions": _convert(doc.get("definitions", {}), strict=strict),
            "operations": {op.operation_id: _operation_schemas(op, strict=strict)
                           for op in by_model.get(model, {}).values()},
        }
        registry = registry.with_resource(_URN + model, Resource(contents=contents, specification=DRAFT4))
    return registry


def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_ISO_DATE_TIME.match(value))


def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(_ISO_DATE.match(value))


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date-time")(_is_date_time)
_FORMATS.checks("date")(_is_date)


@cache
def _validator(model: str, pointer: str, strict: bool) -> Draft4Validator:
    schema = {"$ref": f"{_URN}{model}#{pointer}"}
    return Draft4Validator(schema, registry=_registry(strict), format_checker=_FORMATS)


@cache
def _compiled_registry(strict: bool) -> jsonschema_rs.Registry:
    """The same resources as :func:`_registry`, for the compiled validators."""
    registry = _registry(strict)
    resources = [(_URN + _model_name(path), registry.contents(_URN + _model_name(path))) for path in _models]
    return jsonschema_rs.Registry(resources, draft=jsonschema_rs.Draft4)


@cache
def _compiled(model: str, pointer: str, strict: bool) -> jsonschema_rs.Draft4Validator:
    """:func:`_validator`'s schema compiled: the yes-or-no check every instance goes through."""
    return jsonschema_rs.Draft4Validator(
        {"$ref": f"{_URN}{model}#{pointer}"}, registry=_compiled_registry(strict),
        formats={"date-time": _is_date_time, "date": _is_date}, validate_formats=True)


def _pointer(*parts: str) -> str:
    return "".join("/" + quote(p.replace("~", "~0").replace("/", "~1"), safe="~") for p in parts)


# -- error formatting --------------------------------------------------------------------------


def _where(prefix: str, path: Any) -> str:
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _describe(error: ValidationError, prefix: str) -> str:
    where = _where(prefix, error.absolute_path)
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return (f"{where}: invalid type: expected {expected}, got {_json_type(error.instance)} "
                f"({json.dumps(error.instance, ensure_ascii=False)[:60]})")
    if error.validator == "required":
        missing = [r for r in error.validator_value if isinstance(error.instance, dict)
                   and r not in error.instance]
        names = ", ".join(f"{where}.{m}" if where != "(root)" else m for m in missing)
        return f"missing required field(s): {names}"
    if error.validator == "additionalProperties":
        allowed = set((error.schema or {}).get("properties", {}))
        instance = error.instance if isinstance(error.instance, dict) else {}
        extra = sorted(k for k in instance if k not in allowed)
        return f"{where}: field(s) not declared by the model: {', '.join(extra)}"
    if error.validator == "enum":
        return (f"{where}: {json.dumps(error.instance, ensure_ascii=False)} is not one of "
                f"{', '.join(map(str, error.validator_value))}")
    if error.validator == "format":
        value = json.dumps(error.instance, ensure_ascii=False)
        return f"{where}: {value} is not a valid {error.validator_value}"
    return f"{where}: {error.message}"


def _flatten(errors: Any) -> list[ValidationError]:
    out: list[ValidationError] = []
    for error in errors:
        if error.context and error.validator in ("anyOf", "oneOf"):
            out.extend(_flatten(error.context))
        else:
            out.append(error)
    return out


def _schema_problems(model: str, pointer: str, strict: bool, instance: Any, prefix: str) -> list[str]:
    if _compiled(model, pointer, strict).is_valid(instance):
        return []
    errors = sorted(_flatten(_validator(model, pointer, strict).iter_errors(instance)),
                    key=lambda e: [str(p) for p in e.absolute_path])
    problems: list[str] = []
    for error in errors:
        text = _describe(error, prefix)
        if text not in problems:
            problems.append(text)
    return problems[:_MAX_PROBLEMS]


# -- parameters --------------------------------------------------------------------------------


def _split(values: list[str], param: dict[str, Any]) -> list[str]:
    """Array query values: repeated (``multi``) and/or comma separated (``csv``, the default)."""
    sep = {"ssv": " ", "tsv": "\t", "pipes": "|"}.get(param.get("collectionFormat", "csv"), ",")
    out: list[str] = []
    for value in values:
        out.extend(v for v in value.split(sep) if v != "")
    return out


def _check_scalar(name: str, raw: str, spec: dict[str, Any]) -> list[str]:
    kind = spec.get("type", "string")
    value: Any = raw
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d+", raw.strip()):
            return [f"{name}: invalid type: expected integer, got {raw!r}"]
        value = int(raw)
    elif kind == "number":
        try:
            value = float(raw)
        except ValueError:
            return [f"{name}: invalid type: expected number, got {raw!r}"]
    elif kind == "boolean":
        if raw not in ("true", "false"):
            return [f"{name}: invalid type: expected boolean (true|false), got {raw!r}"]
        value = raw == "true"
    problems: list[str] = []
    if "enum" in spec and value not in spec["enum"]:
        problems.append(f"{name}: {raw!r} is not one of {', '.join(map(str, spec['enum']))}")
    if "minimum" in spec and isinstance(value, (int, float)) and value < spec["minimum"]:
        problems.append(f"{name}: {value} is less than the minimum of {spec['minimum']}")
    if "maximum" in spec and isinstance(value, (int, float)) and value > spec["maximum"]:
        problems.append(f"{name}: {value} is greater than the maximum of {spec['maximum']}")
    if isinstance(value, str):
        if "minLength" in spec and len(value) < spec["minLength"]:
            problems.append(f"{name}: shorter than {spec['minLength']} characters")
        if "maxLength" in spec and len(value) > spec["maxLength"]:
            problems.append(f"{name}: longer than {spec['maxLength']} characters")
        if "pattern" in spec and not re.search(spec["pattern"], value):
            problems.append(f"{name}: {raw!r} does not match {spec['pattern']}")
        if spec.get("format") == "date-time" and not _is_date_time(value):
            problems.append(f"{name}: {raw!r} is not an ISO 8601 date-time")
        if spec.get("format") == "date" and not _is_date(value):
            problems.append(f"{name}: {raw!r} is not an ISO 8601 date")
    return problems


def _check_param(param: dict[str, Any], values: list[str]) -> list[str]:
    name = param["name"]
    if param.get("type") != "array":
        if len(values) > 1:
            return [f"{name}: given {len(values)} times, expected once"]
        return _check_scalar(name, values[0], param)
    items = _split(values, param)
    problems: list[str] = []
    if "maxItems" in param and len(items) > param["maxItems"]:
        problems.append(f"{name}: {len(items)} values, at most {param['maxItems']} allowed")
    if "minItems" in param and len(items) < param["minItems"]:
        problems.append(f"{name}: {len(items)} values, at least {param['minItems']} required")
    if param.get("uniqueItems") and len(set(items)) != len(items):
        problems.append(f"{name}: values must be unique")
    for item in items:
        problems.extend(_check_scalar(name, item, param.get("items", {})))
    return problems


# -- public API --------------------------------------------------------------------------------


def validate_request(operation_id: str, *, path_params: dict[str, str] | None = None,
                     query: dict[str, list[str]] | None = None, body: Any = None) -> list[str]:
    """Problems with a request to ``operation_id`` (empty list = valid), each naming the parameter.

    ``query`` is a parsed query string (``{"marketplaceIds": ["A,B"]}`` or repeated values);
    ``body`` is the decoded JSON body or ``None`` when there is none. Header parameters are not
    checked. Query parameters the model does not declare are reported.
    """
    op = _operation(operation_id)
    path_params = path_params or {}
    query = query or {}
    problems: list[str] = []
    for param in op.params_in("path"):
        value = path_params.get(param["name"])
        if value is None or value == "":
            problems.append(f"missing required path parameter {param['name']}")
        else:
            problems.extend(_check_scalar(param["name"], str(value), param))
    declared = {p["name"] for p in op.params_in("query")}
    for name in query:
        if name not in declared:
            problems.append(f"{name}: unknown query parameter for {op.operation_id}")
    for param in op.params_in("query"):
        values = query.get(param["name"])
        if not values or all(v == "" for v in values):
            if param.get("required"):
                problems.append(f"missing required query parameter {param['name']}")
            continue
        problems.extend(_check_param(param, values))
    body_param = op.body_param
    if body_param is None:
        if body is not None:
            problems.append(f"{op.operation_id} takes no request body")
    elif body is None:
        if body_param.get("required"):
            problems.append("missing required request body")
    else:
        problems.extend(_schema_problems(
            op.model, _pointer("operations", op.operation_id, "body"), False, body, "body"))
    return problems


def validate_response(operation_id: str, status: int, body: Any) -> list[str]:
    """Problems with a response body for ``status`` (empty list = valid).

    The body is checked against the schema the model declares for that status (``default`` when
    the status is not listed); a status without a schema (e.g. 204) must have no body (``None``,
    ``""`` or ``b""``).
    """
    op = _operation(operation_id)
    key = str(status)
    if key not in op.responses:
        if "default" not in op.responses:
            return [f"status {status} is not declared for {op.operation_id} "
                    f"(declared: {', '.join(op.responses)})"]
        key = "default"
    declared = op.responses[key]
    if "schema" not in declared:
        if body in (None, "", b""):
            return []
        return [f"status {status} of {op.operation_id} declares no body, got {_json_type(body)}"]
    if body is None:
        return [f"status {status} of {op.operation_id} requires a body"]
    return _schema_problems(
        op.model, _pointer("operations", op.operation_id, "responses", key), True, body, "")


def static_sandbox_pairs(operation_id: str) -> list[dict]:
    """The model's ``x-amzn-api-sandbox.static`` request/response pairs for ``operation_id``.

    Each entry: ``operation_id``, ``model``, ``status`` (int), ``parameters`` (name -> value, as
    in the model), the same split for replay as ``path_params`` (name -> str), ``query``
    (name -> list[str]) and ``body`` (decoded JSON or None), and ``response`` (the body; None
    when the status declares no body, e.g. 204).
    """
    op = _operation(operation_id)
    by_name = {p["name"]: p for p in op.parameters}
    body_param = op.body_param
    pairs: list[dict] = []
    for status, declared in op.responses.items():
        if not isinstance(declared, dict):
            continue
        for entry in declared.get("x-amzn-api-sandbox", {}).get("static", []):
            raw = {name: spec.get("value") for name, spec in
                   entry.get("request", {}).get("parameters", {}).items()}
            path_params: dict[str, str] = {}
            query: dict[str, list[str]] = {}
            body: Any = None
            for name, value in raw.items():
                param = by_name.get(name)
                location = param.get("in") if param else ("body" if body_param else "query")
                if location == "body" or (name == "body" and body_param):
                    body = copy.deepcopy(value)
                elif location == "path":
                    path_params[name] = str(value)
                elif location == "query":
                    values = value if isinstance(value, list) else [value]
                    query[name] = [json.dumps(v) if isinstance(v, bool) else str(v) for v in values]
            response = copy.deepcopy(entry.get("response"))
            if "schema" not in declared and not response:
                response = None
            pairs.append({"operation_id": op.operation_id, "model": op.model,
                          "status": int(status) if status.isdigit() else status,
                          "parameters": copy.deepcopy(raw), "path_params": path_params,
                          "query": query, "body": body, "response": response})
    return pairs
