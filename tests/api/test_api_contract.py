"""The API against its own OpenAPI document: property tests (schemathesis) over every operation
-- no 5xx on any generated input, every response matching the schema -- and a walk over every
route refusing a missing, revoked or under-scoped token. The document kept in docs/ must be the
one the code serves."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from connector.api.app import create_app, openapi_document
from connector.engine.loop import Engine

pytestmark = [pytest.mark.e2e]

DOCS = Path(__file__).parents[2] / "docs" / "openapi.json"
SCOPES = ("read", "operate", "pii", "admin")


def test_the_openapi_document_in_docs_is_the_one_served():
    assert DOCS.read_text(encoding="utf-8") == openapi_document(), \
        "docs/openapi.json is stale: run `mfn-connector api openapi -o docs/openapi.json`"


@pytest.fixture(scope="module")
def served(request, tmp_path_factory):
    """One sandbox world and app for every generated case (module scope: schemathesis parametrises)."""
    import yaml

    from tests.conftest import SandboxWorld, deep_update  # noqa: F401 - the same world the fixtures build

    base = yaml.safe_load((Path(__file__).parents[2] / "config" / "sandbox.yaml").read_text())
    path = tmp_path_factory.mktemp("contract") / "config.yaml"
    repo = Path(__file__).parents[2]
    base.update({"state_dir": str(path.parent / "state"), "catalog": str(repo / "config" / base["catalog"]),
                 "sandbox": {**base["sandbox"], "orders": 4}})
    base["api"] = {"shipment_wait_seconds": 5}
    path.write_text(yaml.safe_dump(base, allow_unicode=True))
    world = SandboxWorld(path)
    rt = world.runtime()
    Engine(rt).run_until_quiet()  # real orders, packages, labels and events to be read and steered
    app = create_app(rt)
    token = rt.ledger.create_token("contract", ["admin"])[1]
    yield app, token, rt
    rt.close()
    world.close()


# Operations to generate for, by label (read from the code's own document, no server needed).
OPERATIONS = sorted(r.ok().label for r in
                    schemathesis.openapi.from_asgi("/openapi.json", create_app(None)).get_all_operations())


@pytest.mark.slow
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_5xx_and_every_response_matches_the_schema(label, served):
    app, token, _rt = served
    operation = schemathesis.openapi.from_asgi("/openapi.json", app).find_operation_by_label(label)

    @given(operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def generated(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                               checks=[not_a_server_error, response_schema_conformance])

    generated()


# -- auth: every route, every way of getting it wrong ---------------------------------------------------


def _routes(app) -> list[tuple[str, str, str | None]]:
    """(method, path with sample parameters, scope) of every operation the OpenAPI document lists."""
    out = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            scopes = [s for requirement in operation.get("security", [])
                      for s in requirement.get("HTTPBearer", [])]
            sample = path
            for param in operation.get("parameters", []):
                if param["in"] == "path":
                    sample = sample.replace("{" + param["name"] + "}", "1")
            out.append((method.upper(), sample, scopes[0] if scopes else None))
    return out


def test_every_route_declares_a_scope(served):
    app, _token, _rt = served
    routes = _routes(app)
    assert [r for r in routes if r[2] is None] == [("GET", "/healthz", None)]
    assert all(scope in SCOPES for _m, path, scope in routes if path.startswith("/v1")), routes


def test_every_route_refuses_a_missing_revoked_or_underscoped_token(served):
    from fastapi.testclient import TestClient

    app, _token, rt = served
    client = TestClient(app, raise_server_exceptions=False)
    revoked, revoked_secret = rt.ledger.create_token("gone", ["admin"])
    rt.ledger.revoke_token(revoked.id)
    weaker = {"read": "pii", "operate": "read", "pii": "read", "admin": "operate"}
    tokens = {scope: rt.ledger.create_token(f"only-{scope}", [scope])[1] for scope in SCOPES}
    for method, path, scope in _routes(app):
        if scope is None:
            continue
        for label, headers, status in (
                ("no token", {}, 401),
                ("not a bearer", {"Authorization": "Basic dXNlcjpwYXNz"}, 401),
                ("unknown token", {"Authorization": "Bearer mfn_not-a-token"}, 401),
                ("revoked token", {"Authorization": f"Bearer {revoked_secret}"}, 401),
                (f"a {weaker[scope]} token", {"Authorization": f"Bearer {tokens[weaker[scope]]}"}, 403)):
            r = client.request(method, path, headers=headers, json={})
            assert r.status_code == status, (method, path, label, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/healthz").status_code == 200


def test_a_problem_names_the_field(served):
    from fastapi.testclient import TestClient

    app, token, _rt = served
    client = TestClient(app, raise_server_exceptions=False)
    r = client.post("/v1/shipments", headers={"Authorization": f"Bearer {token}"},
                    json={"idempotency_key": "x", "channel": "shopify"})
    assert r.status_code == 422
    body = r.json()
    assert body["status"] == 422 and body["type"].startswith("https://")
    assert {"order_id", "site", "ship_to", "items"} <= {e["field"] for e in body["errors"]}
    json.dumps(body)
