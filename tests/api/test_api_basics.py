"""The API's frame: health without a token, tokens and scopes, problems, the body cap."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def test_healthz_needs_no_token(api):
    a = api()
    r = a.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_revoked_token_is_refused(api):
    a = api()
    token, secret = a.rt.ledger.create_token("soon-gone", ["read"])
    headers = {"Authorization": f"Bearer {secret}"}
    assert a.client.get("/v1/shipments/no-such-key", headers=headers).status_code == 404
    assert a.rt.ledger.revoke_token(token.id)
    r = a.client.get("/v1/shipments/no-such-key", headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "revoked" in r.json()["detail"]


def test_tokens_are_stored_hashed(api):
    a = api()
    secret = a.tokens["admin"]
    conn = a.rt.ledger._conn()
    stored = [tuple(r) for r in conn.execute("SELECT * FROM api_tokens").fetchall()]
    assert stored and not any(secret in str(v) for row in stored for v in row)


def test_body_over_the_cap_is_refused_with_413(api):
    a = api({"api": {"max_body_bytes": 2048}})
    r = a.client.post("/v1/items/bulk", content=b"x" * 5000,
                      headers={**a.headers(), "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["title"] == "Request body too large"
    for path in ("/v1/shipments", "/v1/orders/111-0000001-0000001/hold"):  # JSON routes, no length sent
        chunked = a.client.post(path, content=iter([b'{"a": "' + b"x" * 1500, b"y" * 1500 + b'"}']),
                                headers={**a.headers("operate"), "Content-Type": "application/json"})
        assert chunked.status_code == 413, (path, chunked.status_code, chunked.text)
    small = a.client.post("/v1/orders/111-0000001-0000001/hold", content=iter([b'{"reason":', b' "manual"}']),
                          headers={**a.headers("operate"), "Content-Type": "application/json"})
    assert small.status_code == 404  # a chunked body under the cap reaches the route whole


def test_malformed_json_is_a_problem_naming_the_body(api):
    a = api()
    r = a.client.post("/v1/orders/111-0000001-0000001/hold", content=b'{"reason":',
                      headers={**a.headers("operate"), "Content-Type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    (error,) = r.json()["errors"]
    assert error["field"] == "body" and "JSON" in error["message"] and "at character 10" in error["message"]


def test_tokens_cli_creates_lists_and_revokes(world):
    from ..e2e.helpers import run_cli

    w = world({"sandbox": {"orders": 1}})
    made = run_cli(w, "tokens", "create", "erp-prod", "--scope", "operate", "--scope", "pii", "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)
    assert token["token"].startswith("mfn_") and token["scopes"] == ["operate", "pii"]
    listed = run_cli(w, "tokens", "list")
    assert token["id"] in listed.stdout and "live" in listed.stdout
    assert f"created {token['created_at'][:19]}" in listed.stdout  # as its --help says
    assert token["token"] not in listed.stdout + run_cli(w, "tokens", "list", "--json").stdout
    assert run_cli(w, "tokens", "revoke", token["id"]).returncode == 0
    assert "revoked" in run_cli(w, "tokens", "list").stdout
    again = run_cli(w, "tokens", "revoke", token["id"])
    assert again.returncode == 1 and f"no live token {token['id']}" in again.stderr
    bad = run_cli(w, "tokens", "create", "x", "--scope", "root")
    assert bad.returncode == 2 and "root" in bad.stderr


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer mfn_unknown"},
                                     {"Authorization": "Basic eDp5"}])
def test_a_body_that_is_not_json_from_a_caller_without_a_token_gets_401(api, headers):
    a = api()
    for method, path in (("post", "/v1/shipments"), ("post", "/v1/orders/111-0000000-0000001/hold"),
                         ("put", "/v1/items/MUG-01")):
        r = getattr(a.client, method)(path, content="{not json",
                                      headers={"Content-Type": "application/json", **headers})
        assert r.status_code == 401, (path, r.text)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_body_that_is_not_json_from_a_token_without_the_scope_gets_403(api):
    a = api()
    r = a.client.post("/v1/shipments", content="{not json",
                      headers={"Content-Type": "application/json", **a.headers("read")})
    assert r.status_code == 403 and "operate" in r.json()["detail"], r.text


def test_a_body_that_is_not_json_from_a_caller_with_a_token_gets_422_naming_the_body(api):
    a = api()
    r = a.client.post("/v1/shipments", content="{not json",
                      headers={"Content-Type": "application/json", **a.headers("operate")})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize("body", [b'{"reason": "\xff"}', b"[" * 100_000],
                         ids=["not-utf-8", "nested-too-deep"])
def test_a_body_json_cannot_decode_is_refused_as_one_that_is_not_json(api, body):
    """FastAPI answers a body its JSON decoder raises on with a 400 of its own, before the route's
    token check: the token check comes first, then a 422 naming the body, as for any body not JSON."""
    a = api()
    path, json_type = "/v1/orders/111-0000000-0000001/hold", {"Content-Type": "application/json"}
    assert a.client.post(path, content=body, headers=json_type).status_code == 401
    assert a.client.post(path, content=body, headers={**json_type, **a.headers("read")}).status_code == 403
    r = a.client.post(path, content=body, headers={**json_type, **a.headers("operate")})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
    (error,) = r.json()["errors"]
    assert error["field"] == "body" and error["message"].startswith("not readable JSON"), error
