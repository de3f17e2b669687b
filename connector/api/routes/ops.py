"""Routes for operations, outside ``/v1`` and left out of the OpenAPI document (they are for
Prometheus and a load balancer, not for an ERP):

* ``GET /metrics`` -- the Prometheus text exposition (:mod:`connector.metrics`). It needs a token
  with the ``read`` scope, unless ``api.metrics_public`` is set and the client connects from a
  loopback address (a Prometheus on the same host);
* ``GET /readyz`` -- no token: 200 when the ledger answers a query and every account the daemon
  polls had a successful order poll within ``api.ready_poll_max_age_seconds``, else 503; the JSON
  body names what is not ready (account names and ages only). ``/healthz`` (app.py) only says
  the process is alive.
"""
from __future__ import annotations

import ipaddress
import threading

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, SecurityScopes

from ... import metrics
from ...model import utcnow
from ..auth import authorized, bearer

router = APIRouter()

_collector_lock = threading.Lock()
_NO_STORE = {"Cache-Control": "no-store"}


def _from_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_access(request: Request,
                   credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
    """The ``read`` scope, or nothing at all for a loopback client when ``api.metrics_public``."""
    if request.app.state.rt.config.api.metrics_public and _from_loopback(request):
        return
    authorized(request, SecurityScopes(scopes=["read"]), credentials)


def _collector(request: Request) -> metrics.LedgerCollector:
    """One collector per app, so its cached valid-tracking rate outlives a scrape."""
    state = request.app.state
    with _collector_lock:
        found = getattr(state, "ledger_metrics", None)
        if found is None:
            found = state.ledger_metrics = metrics.LedgerCollector(state.rt)
        return found


@router.get("/metrics", include_in_schema=False, dependencies=[Security(metrics_access)])
def prometheus_metrics(request: Request) -> Response:
    return Response(metrics.exposition(_collector(request)), media_type=metrics.CONTENT_TYPE,
                    headers=_NO_STORE)


@router.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> JSONResponse:
    rt = request.app.state.rt
    now = utcnow()
    state = metrics.readiness(rt, now)
    return JSONResponse(state.to_dict(now), status_code=200 if state.ready else 503, headers=_NO_STORE)
