"""Errors as ``application/problem+json`` (RFC 9457), each naming the field it is about.

Every error the API answers has ``type``, ``title``, ``status`` and ``detail``; a bad request also
has ``errors``: ``[{"field": "ship_to.postal_code", "message": "..."}]`` (the field as a dotted
path into the body, or the query parameter's name). A 5xx never carries the exception's text.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..ledger.base import CorruptRecordError

log = logging.getLogger("connector.api")

MEDIA_TYPE = "application/problem+json"
UNPARSED_BODY = "There was an error parsing the body"  # FastAPI's 400 for a body its JSON decoder raised on
TYPE_BASE = "https://github.com/mfn-connector/mfn-connector/blob/main/docs/erp-integration.md#"


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDocument(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []


class ApiProblem(Exception):
    """Raise to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str, *, kind: str = "",
                 errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.errors = errors or []
        self.headers = headers or {}


def problem_response(status: int, title: str, detail: str, *, kind: str = "",
                     errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + (kind or title.lower().replace(" ", "-")), "title": title,
                            "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def documented(text: str) -> dict[str, Any]:
    """The OpenAPI entry of a problem answer a route gives, described by ``text``."""
    return {"model": ProblemDocument, "content": {MEDIA_TYPE: {}}, "description": text}


# Documented on every route: what the problem answers look like.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: documented(text)
    for status, text in ((401, "No token, or a token revoked or unknown"),
                         (403, "The token lacks the scope this route needs"),
                         (413, "The request body is larger than api.max_body_bytes"),
                         (422, "The request names a field that is missing or wrong"))
}


def _error(e: dict[str, Any]) -> dict[str, str]:
    """One validation error as the problem lists it: the field's dotted path and what is wrong."""
    loc, message = tuple(e.get("loc", ())), str(e.get("msg", "is invalid"))
    if e.get("type") == "json_invalid":  # its loc ends in a character offset, not a field
        return {"field": "body", "message": f"{message} (at character {loc[-1] if loc else '?'})"}
    return {"field": _field(loc), "message": message}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI, refused_before_body: Callable[[Request], ApiProblem | None]) -> None:
    """The handlers; ``refused_before_body(request)`` is the 401 or 403 the route's token check
    would answer, else None."""
    @app.exception_handler(ApiProblem)
    async def _problem(_request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, kind=exc.kind, errors=exc.errors,
                                headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A body that is not JSON is refused before the route's dependencies run, its token
        # check among them: a caller without a token or scope hears that first, as for any other error.
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            refused = refused_before_body(request)
            if refused is not None:
                return await _problem(request, refused)
        errors = [_error(e) for e in exc.errors()]
        names = ", ".join(dict.fromkeys(e["field"] for e in errors))
        return problem_response(422, "Invalid request", f"check {names}", kind="invalid-request",
                                errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == UNPARSED_BODY:
            # A body FastAPI could not decode as JSON (not UTF-8, nested too deep): not JSON either, so
            # answered as one that is not JSON, the token check first.
            refused = refused_before_body(request)
            if refused is not None:
                return await _problem(request, refused)
            cause = exc.__cause__
            reason = "nested too deep" if isinstance(cause, RecursionError) else str(cause)[:200]
            return problem_response(422, "Invalid request", "check body", kind="invalid-request",
                                    errors=[{"field": "body", "message": f"not readable JSON: {reason}"}])
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        return problem_response(exc.status_code, title, str(exc.detail),
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(CorruptRecordError)
    async def _unreadable(request: Request, exc: CorruptRecordError) -> JSONResponse:
        # The rows named, not the exception's text (what failed to parse: the log has it)
        log.error("API %s %s: %s", request.method, request.url.path, exc)
        row = f"order {exc.order_id}" + (f", package {exc.package_id}," if exc.package_id is not None else "")
        return problem_response(500, "Ledger inconsistent",
                                f"{row} stored in the ledger cannot be read (a hand edit or a restore "
                                "gone wrong? the daemon's log says what is wrong): restore the row from a "
                                "backup; the daemon holds the order ledger_inconsistent when it drives it",
                                kind="ledger-inconsistent")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("API %s %s failed: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return problem_response(500, "Internal error", "the server failed; the log has the details",
                                kind="internal-error")
