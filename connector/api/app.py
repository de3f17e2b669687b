"""The FastAPI application: routes under ``/v1``, problems, the body cap, ``/healthz``.

The OpenAPI document is produced from this code (``/openapi.json``); a copy is kept in
``docs/openapi.json`` and a test fails when the two differ (``mfn-connector api openapi`` writes it).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from . import problems
from .auth import refused_before_body
from .routes import events, items, labels, ops, orders, shipments, status
from .settings import ApiSettings

if TYPE_CHECKING:
    from ..engine.runtime import Runtime

DESCRIPTION = """\
Orders, packages, labels, the item master and ERP-submitted shipments of an mfn-connector daemon.
Every route but `/healthz`, `/readyz` and this document (`/openapi.json`) needs
`Authorization: Bearer <token>` (`mfn-connector tokens create`).
Errors are `application/problem+json` (RFC 9457) naming the field.
"""


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes with 413, whether or not Content-Length is sent.

    The body is read here, up to the limit, before the route sees it: a route's own parser would
    turn an error raised while it reads into its own 400."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: the route hears it
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem_response(413, "Request body too large",
                                             f"the body is over {self.limit} bytes (api.max_body_bytes)",
                                             kind="body-too-large")
        await response(scope, receive, send)


class PlainPath:
    """Refuse a path with a control character (a decoded ``%0A``...) with 404. Routes match with
    ``$``, which also matches before a final newline: ``PUT /v1/items/MUG%0A`` would upsert MUG."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(ord(ch) < 32 or ord(ch) == 127 for ch in scope.get("path", "")):
            response = problems.problem_response(404, "Not found", "the path holds a control character")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``messages`` first, then whatever the client sends next (a disconnect)."""
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()
    return replayed


def create_app(rt: Runtime | None) -> FastAPI:
    """The application serving ``rt`` (None: for the OpenAPI document only)."""
    settings = rt.config.api if rt is not None else ApiSettings.from_section({}, where="api")
    app = FastAPI(title="mfn-connector", version=__version__, description=DESCRIPTION,
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None)
    app.state.rt = rt
    problems.install(app, refused_before_body)
    for module in (orders, shipments, items, events, labels):
        app.include_router(module.router, prefix="/v1", responses=problems.PROBLEM_RESPONSES)
    app.include_router(ops.router)  # /metrics, /readyz
    app.include_router(status.router)  # the operator's status page (HTML)

    @app.get("/healthz", tags=["health"], summary="Alive (no token needed)")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(PlainPath)
    # The status page's headers wrap the whole stack, Starlette's error middleware too, so that every
    # answer under /status has them: the 404 and 413 above and a 500 as well as its pages.
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: status.SecurityHeaders(build())
    return app


def openapi_document() -> str:
    """The OpenAPI document as served, as stable text (sorted keys, a final newline)."""
    return json.dumps(create_app(None).openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
