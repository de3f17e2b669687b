"""The HTTP transport every carrier client talks through (karrio's ``request`` / ``process_error``).

One :class:`Transport` per configured carrier does what would otherwise be written in every
plugin:

* paces calls with a token bucket when the carrier has a rate limit (``max_requests_per_second``);
* sends with the configured (connect, read) timeouts and TLS verification;
* writes ONE log line per call on the plugin's logger: operation, our reference, the carrier's
  request id, duration and outcome -- never a body, a query string, an address or a secret;
* classifies every failure as a :class:`~connector.kit.carrier.CarrierError` the engine
  understands, with a message that never echoes what the carrier sent:

  ================================================  ===============================================
  what happened                                     error
  ================================================  ===============================================
  timeout, connection reset/refused, broken stream  transient (``timeout`` / ``network``): the call
                                                    may have taken effect
  HTTP 401 / 403                                    permanent credentials error (``auth``), a
                                                    :class:`~connector.kit.carrier.CredentialsRefusedError`
  HTTP 408, 425, 429, 5xx                           transient (``http_<status>``)
  any other HTTP 4xx                                permanent (``http_<status>``) with a hint
  a 2xx whose body is not JSON (``send_json``)      transient (``malformed``), or the credentials
                                                    error when the text says authentication failed
                                                    (code ``auth``, read from words: not a
                                                    ``CredentialsRefusedError``)
  ================================================  ===============================================

The exceptions of ``requests`` quote full URLs (signed query strings, tokens): they are never
chained or echoed.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests

from ..httpsession import shown_url
from ..ratelimit import TokenBucket
from .carrier import (
    CREDENTIALS_REFUSED,
    CarrierError,
    PermanentCarrierError,
    TransientCarrierError,
    unmistakable,
)

if TYPE_CHECKING:
    from .settings import HttpSettings

TRANSIENT_STATUSES = frozenset({408, 425, 429})
_SNIFF_BYTES = 300  # how much of a non-JSON answer is checked for an authentication failure


class Transport:
    """HTTP for one carrier account. ``name`` is the carrier as people write it ("YunExpress").

    Carrier-specific knowledge comes in as small callables:

    * ``credentials_error(detail) -> CarrierError`` -- what a refused credential raises (default:
      a PermanentCarrierError naming the carrier, code ``auth``; for HTTP 401/403 it is made a
      CredentialsRefusedError, the answer leaving no doubt);
    * ``is_auth_failure(text) -> bool`` -- whether a non-JSON answer says authentication failed;
    * ``error_detail(decoded_json) -> str`` -- the carrier's own message in a 4xx answer;
    * ``request_id(response, decoded_json) -> str`` -- the carrier's request id for the log line.
    """

    def __init__(self, *, carrier: str, name: str, session: requests.Session | None = None,
                 timeouts: tuple[float, float] = (5.0, 30.0), verify_tls: bool = True,
                 requests_per_second: float | None = None, burst: int = 1,
                 credentials_error: Callable[[str], CarrierError] | None = None,
                 is_auth_failure: Callable[[str], bool] | None = None,
                 error_detail: Callable[[Any], str] | None = None,
                 request_id: Callable[[requests.Response, Any], str] | None = None,
                 hint: str = "check base_url", logger: logging.Logger | None = None) -> None:
        self.carrier = carrier
        self.name = name
        self.session = session if session is not None else requests.Session()
        self.timeouts = timeouts
        self.verify_tls = verify_tls
        self.bucket = TokenBucket(requests_per_second, max(1, burst)) if requests_per_second else None
        self._credentials_error = credentials_error or self._default_credentials_error
        self._is_auth_failure = is_auth_failure or (lambda text: False)
        self._error_detail = error_detail or (lambda decoded: "")
        self._request_id = request_id or (lambda response, decoded: "")
        self.hint = hint
        self.log = logger or logging.getLogger(f"connector.carrier.{carrier}")

    @classmethod
    def for_settings(cls, settings: HttpSettings, *, carrier: str, name: str,
                     session: requests.Session | None = None, **options: Any) -> Transport:
        """A transport with the timeouts, TLS check and pacing of the plugin's settings (calls
        spaced evenly at ``max_requests_per_second``, no burst)."""
        return cls(carrier=carrier, name=name, session=session, timeouts=settings.timeouts,
                   verify_tls=settings.verify_tls, requests_per_second=settings.max_requests_per_second,
                   **options)

    # -- calls --------------------------------------------------------------------------------

    def send(self, op: str, method: str, url: str, *, reference: str = "",
             credentials_error: Callable[[str], CarrierError] | None = None,
             **request: Any) -> requests.Response:
        """One request; raises for network failures, refused credentials and transient statuses.

        Other 4xx answers are returned (see :meth:`refuse`) so that a carrier whose errors come
        as a document can read them; ``request`` goes to ``requests.Session.request``.
        """
        response, started = self._exchange(op, method, url, reference, request)
        self._log(op, reference, started, f"HTTP {response.status_code}", self._request_id(response, None))
        self._raise_for_transport(response, op, credentials_error)
        return response

    def send_json(self, op: str, method: str, url: str, *, reference: str = "",
                  credentials_error: Callable[[str], CarrierError] | None = None, hint: str | None = None,
                  **request: Any) -> Any:
        """:meth:`send`, then any other 4xx refused, then the body decoded as JSON."""
        response, started = self._exchange(op, method, url, reference, request)
        decoded, problem = decode_json(response.content)
        self._log(op, reference, started, f"HTTP {response.status_code}",
                  self._request_id(response, decoded))
        self._raise_for_transport(response, op, credentials_error)
        if response.status_code >= 400:
            self.refuse(response, op, hint=hint, decoded=decoded)
        if problem is not None:
            raise self.malformed(response, op, problem, credentials_error)
        return decoded

    def decode(self, response: requests.Response, op: str,
               credentials_error: Callable[[str], CarrierError] | None = None) -> Any:
        """The JSON body of ``response`` or the classified error for it."""
        decoded, problem = decode_json(response.content)
        if problem is not None:
            raise self.malformed(response, op, problem, credentials_error)
        return decoded

    # -- errors -------------------------------------------------------------------------------

    def refuse(self, response: requests.Response, op: str, *, hint: str | None = None,
               decoded: Any = None) -> None:
        """Raise the PermanentCarrierError for a 4xx answer (with the carrier's message)."""
        status = response.status_code
        if decoded is None:
            decoded, _ = decode_json(response.content)
        detail = self._error_detail(decoded) if decoded is not None else ""
        hint = self.hint if hint is None else hint
        raise PermanentCarrierError(
            f"{self.name} {op}: HTTP {status}{': ' + detail if detail else ''}"
            + (f" ({hint})" if hint else ""), code=f"http_{status}", carrier=self.carrier)

    def malformed(self, response: requests.Response, op: str, problem: str,
                  credentials_error: Callable[[str], CarrierError] | None = None) -> CarrierError:
        """The error for an answer that should be JSON and is not."""
        text = response.content[:_SNIFF_BYTES].decode("utf-8", "replace").strip()
        if text and not text.startswith(("{", "[")) and self._is_auth_failure(text):
            return (credentials_error or self._credentials_error)(f"non-JSON answer to {op}")
        return TransientCarrierError(
            f"{self.name} {op}: answer is not valid JSON (HTTP {response.status_code}, "
            f"{len(response.content)} bytes; {problem}); the call may have taken effect",
            code="malformed", carrier=self.carrier)

    def _default_credentials_error(self, detail: str) -> CarrierError:
        return PermanentCarrierError(f"{self.name} rejected the credentials (check carriers.{self.carrier})"
                                     + (f": {detail}" if detail else ""), code=CREDENTIALS_REFUSED,
                                     carrier=self.carrier)

    # -- internals ----------------------------------------------------------------------------

    def _exchange(self, op: str, method: str, url: str, reference: str,
                  request: dict[str, Any]) -> tuple[requests.Response, float]:
        """The response and when the request left (after pacing)."""
        if self.bucket is not None:
            self.bucket.acquire()
        started = time.monotonic()
        request.setdefault("timeout", self.timeouts)
        request.setdefault("verify", self.verify_tls)
        try:
            return self.session.request(method, url, **request), started
        except requests.Timeout as exc:
            self._log(op, reference, started, f"timeout ({type(exc).__name__})")
            raise TransientCarrierError(
                f"{self.name} {op}: no answer within {self.timeouts[1]:g}s ({type(exc).__name__}); "
                "the call may have taken effect", code="timeout", carrier=self.carrier) from None
        except requests.RequestException as exc:
            self._log(op, reference, started, f"network error ({type(exc).__name__})")
            raise TransientCarrierError(
                f"{self.name} {op}: {type(exc).__name__} talking to {shown_url(url)}; the call may "
                "have taken effect", code="network", carrier=self.carrier) from None

    def _raise_for_transport(self, response: requests.Response, op: str,
                             credentials_error: Callable[[str], CarrierError] | None) -> None:
        status = response.status_code
        if status in (401, 403):
            raise unmistakable((credentials_error or self._credentials_error)(f"HTTP {status} on {op}"))
        if status in TRANSIENT_STATUSES or status >= 500:
            raise TransientCarrierError(f"{self.name} {op}: HTTP {status}", code=f"http_{status}",
                                        carrier=self.carrier)

    def _log(self, op: str, reference: str, started: float, outcome: str, request_id: str = "") -> None:
        self.log.info("%s %s ref=%s request_id=%s %.0fms %s", self.carrier, op, reference or "-",
                      request_id or "-", (time.monotonic() - started) * 1000, outcome)


def decode_json(content: bytes) -> tuple[Any, str | None]:
    """The JSON body and ``None``, or ``None`` and what is wrong with it (without echoing it)."""
    try:
        return json.loads(content.decode("utf-8-sig")), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 at byte {exc.start}"
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at char {exc.pos}"
