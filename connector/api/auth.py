"""Bearer tokens with scopes. No token, no access -- except ``/healthz``.

Scopes: ``read`` (GET), ``operate`` (change orders, items, shipments; includes read), ``pii``
(buyer addresses in answers; on top of read), ``admin`` (webhook replay; includes everything).

One token check for every door: :func:`token_for` (the ledger's ``authenticate``). The JSON API
(``/v1``) takes the token from ``Authorization: Bearer`` only; the status page (routes/status.py)
also from its own cookie, which the browser sends to ``/status`` paths only.
"""
from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from fastapi.security.utils import get_authorization_scheme_param

from ..ledger.base import unstorable_text
from ..ledger.tokens import ApiToken
from .problems import ApiProblem

_IMPLIED = {"admin": {"admin", "operate", "read", "pii"}, "operate": {"operate", "read"},
            "read": {"read"}, "pii": {"pii"}}
bearer = HTTPBearer(auto_error=False, description="an API token from `mfn-connector tokens create`")


def granted(token: ApiToken) -> set[str]:
    """Every scope the token's scopes amount to."""
    return set().union(*(_IMPLIED.get(s, set()) for s in token.scopes))


def missing_scopes(token: ApiToken, scopes: list[str] | tuple[str, ...]) -> list[str]:
    """The scopes of ``scopes`` the token does not amount to."""
    have = granted(token)
    return [s for s in scopes if s not in have]


def token_for(request: Request, secret: str) -> ApiToken | None:
    """The live token whose secret this is, else None: the one token check of the API and the
    status page."""
    if not secret:
        return None
    return request.app.state.rt.ledger.authenticate(secret)


def authenticated(request: Request, scheme: str, secret: str) -> ApiToken:
    """The live token of an ``Authorization`` header's scheme and secret (401 otherwise)."""
    if scheme.lower() != "bearer" or not secret:
        raise ApiProblem(401, "Unauthorized", "send an API token: Authorization: Bearer mfn_...",
                         headers={"WWW-Authenticate": "Bearer"})
    token = token_for(request, secret)
    if token is None:
        raise ApiProblem(401, "Unauthorized", "this token is unknown or was revoked",
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return token


def refused_before_body(request: Request) -> ApiProblem | None:
    """The 401 or 403 the route's token check would answer, else None: for an answer FastAPI gives
    before that check runs (a body that is not JSON), so that a caller learns first what it would
    learn of any other request."""
    scheme, secret = get_authorization_scheme_param(request.headers.get("Authorization"))
    try:
        _check(authenticated(request, scheme, secret), _route_scopes(request))
    except ApiProblem as problem:
        return problem
    return None


def authorized(request: Request, security_scopes: SecurityScopes,
               credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> ApiToken:
    """The request's token, which must hold every scope the route asks for (401/403 otherwise)."""
    scheme, secret = (credentials.scheme, credentials.credentials) if credentials else ("", "")
    return _check(authenticated(request, scheme, secret), security_scopes.scopes)


def _check(token: ApiToken, scopes: list[str] | tuple[str, ...]) -> ApiToken:
    missing = missing_scopes(token, scopes)
    if missing:
        raise ApiProblem(403, "Forbidden", f"this route needs the {', '.join(missing)} scope; the token has "
                         f"{', '.join(token.scopes)}", kind="insufficient-scope")
    return token


def _route_scopes(request: Request) -> tuple[str, ...]:
    """The scopes the matched route requires (its ``require(...)`` dependency)."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    for sub in getattr(dependant, "dependencies", ()):
        scopes = getattr(sub.call, "scopes", None)
        if scopes is not None:
            return scopes
    return ()


def require(*scopes: str) -> Callable[..., ApiToken]:
    """The dependency of a route that needs every one of ``scopes``: ``_token: ApiToken =
    Depends(require("read"))``. They show in the OpenAPI document (``security: [{"HTTPBearer":
    ["read"]}]``)."""

    def dependency(request: Request, token: ApiToken = Security(authorized, scopes=list(scopes))) -> ApiToken:
        storable_query(request)
        return token

    dependency.scopes = scopes  # type: ignore[attr-defined]  # for refused_before_body
    return dependency


def storable_query(request: Request) -> None:
    """422 naming the first query parameter whose text the ledger cannot take: a NUL (``%00``), which
    PostgreSQL's text refuses (a 500 there; on SQLite it matched nothing). Checked after the token,
    as everything about the request is."""
    for name, value in request.query_params.multi_items():
        problem = unstorable_text(value)
        if problem:
            raise ApiProblem(422, "Invalid request", f"check {name}", kind="invalid-request",
                             errors=[{"field": name, "message": f"is {problem}"}])


def may_see_pii(token: ApiToken) -> bool:
    return "pii" in granted(token)
