"""Exceptions raised by the SP-API client, and the mapping from an HTTP answer to one of them.

Hierarchy::

    SpApiError                      anything Amazon (or LWA) refused or we could not complete
      TransientError                5xx, timeouts, resets, unparsable bodies; .ambiguous
        ThrottledError              429: not processed, safe to retry later
      InvalidInputError             400: HOLD the order with Amazon's message
        AlreadyShippedError         400 "already shipped / PackageToUpdateNotFound": verify, not fail
      AuthError                     401/403 after the one refresh-and-retry; LWA refusals
      NotFoundError                 404

A wait for quota or a retry back-off that a stop request ends raises
:class:`~connector.ratelimit.QuotaWaitInterrupted` (re-exported here), which is *not* an
SpApiError: nothing was sent, nothing failed.

Messages carry the operation, HTTP status, Amazon's error code/message and the request id;
never a token, a request body or an address.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..ratelimit import QuotaWaitInterrupted  # noqa: F401 - re-exported: what a stopped wait raises

_MAX_MESSAGE = 500


class SpApiError(Exception):
    """An SP-API (or LWA) call failed. ``str(error)`` is safe to log."""

    def __init__(self, message: str, *, status: int | None, code: str = "", request_id: str = "",
                 operation: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.operation = operation

    def __str__(self) -> str:
        head = self.operation or "SP-API"
        if self.status is not None:
            head += f": HTTP {self.status}"
        if self.code:
            head += f" {self.code}"
        text = f"{head}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class TransientError(SpApiError):
    """Worth retrying later: 5xx, timeout, connection reset or refused, unparsable answer.

    ``ambiguous`` is True when a *write* may have taken effect although we got no answer (a
    confirmShipment that timed out after sending, or answered 5xx): do not resend blindly, read
    the order back first. Reads are never ambiguous; nor is a request that was never sent.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str = "", request_id: str = "",
                 operation: str = "", ambiguous: bool = False) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id, operation=operation)
        self.ambiguous = ambiguous


class ThrottledError(TransientError):
    """429 QuotaExceeded after the client's own retries: Amazon did not process the request."""

    def __init__(self, message: str, *, status: int | None = 429, code: str = "", request_id: str = "",
                 operation: str = "") -> None:
        super().__init__(message, status=status, code=code, request_id=request_id, operation=operation,
                         ambiguous=False)


class InvalidInputError(SpApiError):
    """400: Amazon rejected the request; ``message`` is Amazon's explanation (hold the order)."""


class AlreadyShippedError(InvalidInputError):
    """400 saying the order/package is already shipped or fulfilled: verify instead of failing."""


class AuthError(SpApiError):
    """Authentication or authorization failed for good (LWA refusal, 401/403 after one refresh,
    a missing role). ``code`` is the LWA ``error`` (``invalid_grant``, ``invalid_client``) or
    Amazon's error code."""


class NotFoundError(SpApiError):
    """404: no such order (or path)."""


# "PackageToUpdateNotFound", "order already fulfilled", "has already been shipped",
# "Shipment already confirmed", ... matched on a normalised, lower-case, space-separated text.
_ALREADY_SHIPPED = (
    re.compile(r"\bpackage to update not found\b"),
    re.compile(r"\balready(?: \w+){0,2} (?:shipped|fulfilled|confirmed)\b"),
)


def _normalise(text: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)  # PackageToUpdateNotFound -> words
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def looks_already_shipped(*texts: str) -> bool:
    """True when any error code/message/details says the order or package was already shipped."""
    return any(p.search(_normalise(t)) for t in texts if t for p in _ALREADY_SHIPPED)


def error_entries(body: Any) -> list[dict[str, str]]:
    """The ``errors`` of an SP-API error body, leniently: ``{"errors": [...]}``, a bare list, or a
    single ``{"code", "message"}`` / LWA ``{"error", "error_description"}`` object."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        items: Iterable[Any] = body["errors"]
    elif isinstance(body, list):
        items = body
    elif isinstance(body, dict):
        items = [body]
    else:
        items = []
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        code = item.get("code") or item.get("error") or ""
        message = item.get("message") or item.get("error_description") or ""
        details = item.get("details") or ""
        if code or message or details:
            out.append({"code": str(code), "message": str(message), "details": str(details)})
    return out


def _describe(entries: list[dict[str, str]], status: int) -> str:
    parts = []
    for e in entries:
        text = e["message"] or e["code"]
        if e["details"] and e["details"] != e["message"]:
            text += f" ({e['details']})"
        parts.append(text)
    message = "; ".join(p for p in parts if p) or f"HTTP {status} without an error message"
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def error_from_response(status: int, body: Any, *, operation: str, request_id: str = "",
                        write: bool = False) -> SpApiError:
    """Map a non-2xx answer (status and parsed JSON body, or None) to the matching exception.

    ``write``: the operation has side effects, so a 5xx is ambiguous (it may have taken effect).

    401/403 map to :class:`AuthError`; the client decides before calling this whether a
    refresh-and-retry is due (see :func:`is_expired_token`).
    """
    entries = error_entries(body)
    code = entries[0]["code"] if entries else ""
    message = _describe(entries, status)
    kw: dict[str, Any] = {"status": status, "code": code, "request_id": request_id, "operation": operation}
    if status == 400:
        texts = [t for e in entries for t in (e["code"], e["message"], e["details"])]
        if looks_already_shipped(*texts):
            return AlreadyShippedError(message, **kw)
        return InvalidInputError(message, **kw)
    if status in (401, 403):
        return AuthError(message, **kw)
    if status == 404:
        return NotFoundError(message, **kw)
    if status == 429:
        return ThrottledError(message, **kw)
    if status >= 500:
        return TransientError(message, ambiguous=write, **kw)
    return SpApiError(message, **kw)


def is_expired_token(status: int, body: Any) -> bool:
    """A 401, or a 403 whose error text mentions an expired (access) token: refresh and retry once."""
    if status == 401:
        return True
    if status != 403:
        return False
    texts = " ".join(" ".join(e.values()) for e in error_entries(body)).lower()
    return "expired" in texts
