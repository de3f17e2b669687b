"""Bearer tokens with scopes. No token, no access -- except ``/healthz``.

Scopes: ``read`` (GET), ``operate`` (change orders, items, shipments; includes read), ``pii``
(buyer addresses in answers; on top of read), ``admin`` (webhook replay; includes everything).
"""
from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from ..ledger.tokens import ApiToken
from .problems import ApiProblem

_IMPLIED = {"admin": {"admin", "operate", "read", "pii"}, "operate": {"operate", "read"},
            "read": {"read"}, "pii": {"pii"}}
bearer = HTTPBearer(auto_error=False, description="an API token from `mfn-connector tokens create`")


def granted(token: ApiToken) -> set[str]:
    """Every scope the token's scopes amount to."""
    return set().union(*(_IMPLIED.get(s, set()) for s in token.scopes))


def authorized(request: Request, security_scopes: SecurityScopes,
               credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> ApiToken:
    """The request's token, which must hold every scope the route asks for (401/403 otherwise)."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiProblem(401, "Unauthorized", "send an API token: Authorization: Bearer mfn_...",
                         headers={"WWW-Authenticate": "Bearer"})
    token = request.app.state.rt.ledger.authenticate(credentials.credentials)
    if token is None:
        raise ApiProblem(401, "Unauthorized", "this token is unknown or was revoked",
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    missing = [s for s in security_scopes.scopes if s not in granted(token)]
    if missing:
        raise ApiProblem(403, "Forbidden", f"this route needs the {', '.join(missing)} scope; the token has "
                         f"{', '.join(token.scopes)}", kind="insufficient-scope")
    return token


def require(scope: str) -> Callable[..., ApiToken]:
    """The dependency of a route that needs ``scope``: ``_token: ApiToken = Depends(require("read"))``.
    The scope shows in the OpenAPI document (``security: [{"HTTPBearer": ["read"]}]``)."""

    def dependency(token: ApiToken = Security(authorized, scopes=[scope])) -> ApiToken:
        return token

    return dependency


def may_see_pii(token: ApiToken) -> bool:
    return "pii" in granted(token)
