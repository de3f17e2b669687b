"""The SP-API client: Orders v2026-01-01 reads and v0 confirmShipment, for one seller account.

Every request goes through :meth:`SpApiClient.call`, which is public: a plugin calls any other
SP-API operation through it and gets the same behaviour as the core's own calls. It

* takes a token from the (account, operation) bucket of the :class:`~connector.ratelimit.RateLimiter`
  (paced at Amazon's bucket; the rate in ``x-amzn-RateLimit-Limit``, when Amazon sends it,
  replaces the published default unless the configuration sets one). An operation needs a quota
  there: the core's Orders operations have defaults, a plugin adds those of its own operations
  with ``client.limiter.add_defaults(...)`` (configuration wins);
* sends ``x-amz-access-token`` from the :class:`~connector.amazon.auth.LwaTokenProvider`;
* on a 401, or a 403 whose message says the token expired, invalidates the token and resends
  ONCE; a second refusal is :class:`AuthError`;
* on 429 empties (and, when it repeats, pauses) the bucket and sends the same call again at the
  head of the bucket's queue -- the call keeps its turn -- up to ``max_attempts`` 429s;
* on 5xx / read timeout / connection reset / unparsable JSON retries with jitter only when the
  caller says the call is ``idempotent`` (it changes nothing on Amazon's side, so asking again is
  harmless: searchOrders, getOrder, a rate quote...). Otherwise (confirmShipment, a purchase) the
  outcome is unknown, so it raises ``TransientError(ambiguous=True)`` at once and the caller
  reads the result back. A connection that was refused or timed out while connecting never
  carried the request, so it is retried either way;
* ends every wait -- for a token, or a retry back-off -- with
  :class:`~connector.ratelimit.QuotaWaitInterrupted` when the limiter's ``stop`` is requested;
  nothing is sent then;
* tells its ``login_watch`` (when set: the daemon's alerts, engine/logins.py) of a login LWA
  refused (an :class:`AuthError` of operation ``lwaToken``: the refresh token revoked, the client
  credentials refused) and of every call that succeeded after it, so the account's
  ``amazon_credentials_refused`` alert is raised and cleared whichever caller made the call;
* logs one INFO line per HTTP request on logger ``connector.amazon``: account, operation, HTTP
  status (or the network failure), duration, ``x-amzn-RequestId``, attempt. Never the token, a
  body, a query or an address.

Amazon's SP-API documentation: https://developer-docs.amazon.com/sp-api/ ; the operation models:
https://github.com/amzn/selling-partner-api-models .
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import quote

import requests
import urllib3.exceptions
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .. import __version__, metrics
from ..ratelimit import RateLimiter, TokenBucket
from .auth import LWA_OPERATION, NETWORK_ERRORS, LwaTokenProvider
from .errors import (
    AuthError,
    NotFoundError,
    ThrottledError,
    TransientError,
    error_from_response,
    is_expired_token,
)
from .mapping import confirm_shipment_body, parse_api_time
from .server_clock import ServerClock

log = logging.getLogger("connector.amazon")
_ORDER_IN_PATH = re.compile(r"/orders/([0-9]{3}-[0-9]{7}-[0-9]{7})")

SEARCH_ORDERS_PATH = "/orders/2026-01-01/orders"
GET_ORDER_PATH = "/orders/2026-01-01/orders/{orderId}"
CONFIRM_SHIPMENT_PATH = "/orders/v0/orders/{orderId}/shipmentConfirmation"

DEFAULT_STATUSES: tuple[str, ...] = ("UNSHIPPED", "PARTIALLY_SHIPPED")
DEFAULT_INCLUDED_DATA: tuple[str, ...] = ("RECIPIENT", "FULFILLMENT", "PROCEEDS", "PACKAGES")
VERIFY_INCLUDED_DATA: tuple[str, ...] = ("FULFILLMENT", "PACKAGES")


class OrderSearch(Iterator[dict[str, Any]]):
    """Iterator over the raw order dicts of a searchOrders query, fetching pages lazily.

    After exhaustion ``last_updated_before`` / ``created_before`` hold the upper bound Amazon
    applied (from the last page that carried one; use it as the next watermark), ``pages`` the
    number of pages fetched and ``exhausted`` is True. A failure while paging raises from
    ``next()`` and leaves ``exhausted`` False, so the caller must not advance its watermark.
    """

    def __init__(self, pages: Iterator[dict[str, Any]]) -> None:
        self._pages = pages
        self._current: Iterator[Any] = iter(())
        self.pages = 0
        self.exhausted = False
        self.last_updated_before: datetime | None = None
        self.created_before: datetime | None = None

    def __next__(self) -> dict[str, Any]:
        while True:
            for order in self._current:
                return order
            try:
                page = next(self._pages)
            except StopIteration:
                self.exhausted = True
                raise
            self.pages += 1
            self.last_updated_before = _maybe_time(page.get("lastUpdatedBefore")) or self.last_updated_before
            self.created_before = _maybe_time(page.get("createdBefore")) or self.created_before
            self._current = iter(page["orders"])


class LoginWatch(Protocol):
    """Hears how an account's logins go (:attr:`SpApiClient.login_watch`). Its calls must be
    cheap (one per SP-API call) and never change the call's outcome: what they raise is logged
    and dropped."""

    def refused(self, account: str, error: AuthError) -> None:
        """LWA refused the account's login (``error.code``: ``invalid_grant``, ``invalid_client``...)."""

    def accepted(self, account: str) -> None:
        """A call of the account succeeded: its login works."""


@dataclass
class _CallState:
    requests_sent: int = 0
    throttled: int = 0
    auth_retried: bool = False
    headers: Mapping[str, str] | None = None  # extra request headers of this call


class SpApiClient:
    """SP-API calls for one seller account against one regional endpoint.

    Thread-safe as long as the session is (a plain ``requests.Session`` is, for this use).
    """

    def __init__(self, *, account: str, endpoint: str, tokens: LwaTokenProvider, limiter: RateLimiter,
                 session: requests.Session | None = None, timeout: tuple[float, float] = (5, 30),
                 max_attempts: int = 5, backoff_base: float = 1.0, backoff_max: float = 30.0) -> None:
        if not account:
            raise ValueError("account is empty")
        if not endpoint.startswith(("https://", "http://")):
            raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.account = account
        self.endpoint = endpoint.rstrip("/")
        self.tokens = tokens
        self.limiter = limiter
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.user_agent = f"mfn-connector/{__version__}"
        self.login_watch: LoginWatch | None = None  # the daemon's alerts (engine/logins.py)
        # Called before each request waits for quota and for Amazon's answer: the daemon gives
        # back the thread's ledger connection meanwhile (SqlLedger.release_connection).
        self.before_waiting: Callable[[], None] | None = None
        self.server_clock: ServerClock | None = None  # Amazon's time, for the purge (engine/loop.py)

    def __repr__(self) -> str:
        return f"SpApiClient(account={self.account!r}, endpoint={self.endpoint!r})"

    # -- searchOrders --------------------------------------------------------------------------

    def search_orders(self, *, marketplace_ids: Sequence[str], last_updated_after: datetime | None = None,
                      last_updated_before: datetime | None = None, created_after: datetime | None = None,
                      created_before: datetime | None = None, statuses: Sequence[str] = DEFAULT_STATUSES,
                      included_data: Sequence[str] = DEFAULT_INCLUDED_DATA, page_size: int = 100,
                      ) -> OrderSearch:
        """MFN orders (``fulfilledBy=MERCHANT``) matching the filters, as raw v2026-01-01 order dicts.

        Exactly one time axis: ``last_updated_after`` (+ optional ``last_updated_before``; the
        normal watermark poll) or ``created_after`` (+ optional ``created_before``). Pages are
        followed through ``pagination.nextToken`` -> ``paginationToken`` with the same filters.
        Returns an :class:`OrderSearch` (an iterator of order dicts; see it for
        ``last_updated_before``). Arguments are validated here, before any request.
        """
        return OrderSearch(self.search_orders_pages(
            marketplace_ids=marketplace_ids, last_updated_after=last_updated_after,
            last_updated_before=last_updated_before, created_after=created_after,
            created_before=created_before, statuses=statuses, included_data=included_data,
            page_size=page_size))

    def search_orders_pages(
        self, *, marketplace_ids: Sequence[str], last_updated_after: datetime | None = None,
        last_updated_before: datetime | None = None, created_after: datetime | None = None,
        created_before: datetime | None = None, statuses: Sequence[str] = DEFAULT_STATUSES,
        included_data: Sequence[str] = DEFAULT_INCLUDED_DATA, page_size: int = 100,
        pagination_token: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Like :meth:`search_orders` but yields each raw response page (``orders``,
        ``pagination``, ``lastUpdatedBefore``...), fetched lazily. ``pagination_token`` resumes
        a query from a token of an earlier page (tokens expire after 24 h)."""
        params = _search_params(marketplace_ids=marketplace_ids, last_updated_after=last_updated_after,
                                last_updated_before=last_updated_before, created_after=created_after,
                                created_before=created_before, statuses=statuses,
                                included_data=included_data, page_size=page_size)
        return self._search_pages(params, pagination_token)

    def _search_pages(self, params: dict[str, str], token: str | None) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        while True:
            page_params = dict(params)
            if token:
                page_params["paginationToken"] = token
            page = self.call("searchOrders", "GET", SEARCH_ORDERS_PATH, params=page_params, idempotent=True)
            if not isinstance(page.get("orders"), list):
                raise TransientError("searchOrders answered without an orders list", status=200,
                                     operation="searchOrders")
            yield page
            pagination = page.get("pagination")
            next_token = pagination.get("nextToken") if isinstance(pagination, dict) else None
            if not next_token:
                return
            if next_token in seen or next_token == token:
                # Sellers have reported Amazon returning the same page again (e.g.
                # https://github.com/amzn/selling-partner-api-models/issues/2297): stop rather
                # than loop, and fail so the caller keeps its watermark.
                raise TransientError("searchOrders returned a pagination token it had already returned",
                                     status=200, operation="searchOrders")
            seen.add(next_token)
            token = next_token

    # -- getOrder --------------------------------------------------------------------------------

    def get_order(self, order_id: str, included_data: Sequence[str] = VERIFY_INCLUDED_DATA,
                  ) -> dict[str, Any] | None:
        """The raw v2026-01-01 ``order`` object, or None when Amazon does not know the order
        (404, or a 200 without an ``order``)."""
        if not order_id or not order_id.strip():
            raise ValueError("get_order: order_id is empty")
        params = {"includedData": _csv("included_data", included_data)} if included_data else None
        try:
            body = self.call("getOrder", "GET", GET_ORDER_PATH.format(orderId=quote(order_id, safe="")),
                             params=params, idempotent=True)
        except NotFoundError:
            return None
        order = body.get("order")
        return order if isinstance(order, dict) else None

    # -- confirmShipment -------------------------------------------------------------------------

    def confirm_shipment(self, order_id: str, *, marketplace_id: str, package_reference_id: str,
                         carrier_code: str, tracking_number: str, ship_date: datetime,
                         items: Sequence[tuple[str, int]], carrier_name: str | None = None,
                         shipping_method: str | None = None, ship_from_supply_source_id: str | None = None,
                         transparency_codes: Mapping[str, Sequence[str]] | None = None) -> None:
        """Confirm one package of an order (v0 ``POST .../shipmentConfirmation``); None on 204.

        Idempotent per ``package_reference_id`` on Amazon's side (re-sending edits the package),
        but a 204 is not proof: read the order back. Raises ValueError for a request Amazon would
        reject (see :func:`~connector.amazon.mapping.confirm_shipment_body`), InvalidInputError /
        AlreadyShippedError on 400, TransientError(ambiguous=True) when the outcome is unknown.
        """
        if not order_id or not order_id.strip():
            raise ValueError("confirm_shipment: order_id is empty")
        body = confirm_shipment_body(
            order_id, marketplace_id=marketplace_id, package_reference_id=package_reference_id,
            carrier_code=carrier_code, tracking_number=tracking_number, ship_date=ship_date, items=items,
            carrier_name=carrier_name, shipping_method=shipping_method,
            ship_from_supply_source_id=ship_from_supply_source_id, transparency_codes=transparency_codes)
        self.call("confirmShipment", "POST", CONFIRM_SHIPMENT_PATH.format(orderId=quote(order_id, safe="")),
                  json=body)

    # -- the core --------------------------------------------------------------------------------

    def call(self, operation: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None, headers: Mapping[str, str] | None = None, idempotent: bool = False) -> Any:
        """One logical SP-API call with throttling, auth refresh and the retry policy above.

        * ``operation`` -- Amazon's operationId (``"getOrder"``); it names the rate-limit bucket
          (the limiter must know a quota for it) and the log line;
        * ``method``, ``path`` -- e.g. ``"GET"``, ``"/orders/2026-01-01/orders/123-..."`` (path
          parameters already quoted), sent to the account's endpoint;
        * ``params`` -- the query; ``json`` -- the request body;
        * ``headers`` -- sent with every request of the call (e.g. an API's business or
          idempotency-key header); they cannot replace the access token;
        * ``idempotent`` -- True when the call changes nothing on Amazon's side, so a 5xx, a lost
          answer or an unreadable one is retried; False (the default) makes such a failure raise
          ``TransientError(ambiguous=True)`` at once: it may have taken effect.

        Returns the parsed JSON body (an idempotent call must answer a JSON object), or None for
        an empty 2xx answer. Raises the :mod:`connector.amazon.errors` classes.
        """
        write = not idempotent
        bucket = self.limiter.bucket(self.account, operation)
        state = _CallState(headers=headers)

        def retry_safe(exc: BaseException) -> bool:
            # Only failures of this call's own HTTP request; LWA errors (operation "lwaToken")
            # were already retried by the token provider.
            # A 429 was already sent again in _attempt, at the head of the queue.
            return (isinstance(exc, TransientError) and not isinstance(exc, ThrottledError)
                    and not exc.ambiguous and exc.operation == operation)

        def before_sleep(retry_state: RetryCallState) -> None:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
            log.info("spapi retry account=%s operation=%s after=%s wait_s=%.2f", self.account, operation,
                     type(exc).__name__, wait)

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_random_exponential(multiplier=self.backoff_base, max=self.backoff_max),
            retry=retry_if_exception(retry_safe),
            before_sleep=before_sleep,
            sleep=lambda seconds: self.limiter.pause(seconds, f"a retry of {operation}"),
            reraise=True,
        )
        try:
            answer = retrying(self._attempt, operation, method, path, params, json, bucket, write, state)
        except AuthError as exc:
            if exc.operation == LWA_OPERATION:  # the login, not this call, was refused
                self._tell_login("refused", exc)
            raise
        self._tell_login("accepted")
        return answer

    def _waiting(self) -> None:
        if self.before_waiting is not None:
            self.before_waiting()

    def _tell_login(self, what: str, *args: Any) -> None:
        watch = self.login_watch
        if watch is None:
            return
        try:
            getattr(watch, what)(self.account, *args)
        except Exception:  # noqa: BLE001 - an alert that could not be written never fails the call
            log.exception("account %s: the login watch failed on a login %s", self.account, what)

    def _attempt(self, operation: str, method: str, path: str, params: Mapping[str, Any] | None, json: Any,
                 bucket: TokenBucket, write: bool, state: _CallState) -> Any:
        while True:
            token, resp, body, malformed = self._send(operation, method, path, params, json, bucket, write,
                                                      state)
            status = resp.status_code
            request_id = resp.headers.get("x-amzn-RequestId", "")
            self._learn_rate(operation, resp)
            if 200 <= status < 300:
                if malformed or (not write and not isinstance(body, dict)):
                    raise TransientError(f"HTTP {status} with an unparsable or unexpected body",
                                         status=status, request_id=request_id, operation=operation,
                                         ambiguous=write)
                return body
            if is_expired_token(status, body) and not state.auth_retried:
                state.auth_retried = True
                self.tokens.invalidate(token)
                continue
            error = error_from_response(status, None if malformed else body, operation=operation,
                                        request_id=request_id, write=write)
            if isinstance(error, ThrottledError):
                state.throttled += 1
                bucket.penalize(self._penalty_seconds(state.throttled, resp, bucket))
                if state.throttled < self.max_attempts:  # not processed: same call, same turn
                    log.info("spapi throttled account=%s operation=%s throttled=%d; sent again first",
                             self.account, operation, state.throttled)
                    continue
            raise error

    def _send(self, operation: str, method: str, path: str, params: Mapping[str, Any] | None, json: Any,
              bucket: TokenBucket, write: bool, state: _CallState,
              ) -> tuple[str, requests.Response, Any, bool]:
        self._waiting()  # for quota
        bucket.acquire(front=state.throttled > 0)
        token = self.tokens.token()
        state.requests_sent += 1
        headers = {
            "x-amz-access-token": token,
            "user-agent": self.user_agent,
            "content-type": "application/json",
            "accept": "application/json",
        }
        for name, value in (state.headers or {}).items():
            if name.lower() != "x-amz-access-token":
                headers[name] = value
        self._waiting()  # for the answer (the token taken may have saved the buckets' state)
        started = time.monotonic()
        try:
            resp = self.session.request(method, self.endpoint + path, params=params, json=json,
                                        headers=headers, timeout=self.timeout, allow_redirects=False)
        except NETWORK_ERRORS as exc:
            never_sent = _never_sent(exc)
            kind = _network_failure_kind(exc, never_sent)
            self._log(operation, kind, started, "", state.requests_sent, path)
            raise TransientError(f"no answer: {kind}", operation=operation,
                                 ambiguous=write and not never_sent) from exc
        if self.server_clock is not None:
            self.server_clock.saw(resp.headers.get("Date"))
        body: Any = None
        malformed = False
        if resp.content and resp.status_code != 204:
            try:
                body = resp.json()
            except ValueError:
                malformed = True
        self._log(operation, str(resp.status_code), started, resp.headers.get("x-amzn-RequestId", ""),
                  state.requests_sent, path)
        return token, resp, body, malformed

    def _log(self, operation: str, status: str, started: float, request_id: str, attempt: int,
             path: str) -> None:
        duration_ms = int((time.monotonic() - started) * 1000)
        metrics.spapi_request(self.account, operation, status, duration_ms / 1000)
        found = _ORDER_IN_PATH.search(path)  # a call about one order names it: grep finds its whole story
        order = f" order={found.group(1)}" if found else ""
        log.info("spapi account=%s%s operation=%s status=%s duration_ms=%d request_id=%s attempt=%d",
                 self.account, order, operation, status, duration_ms, request_id or "-", attempt,
                 extra={"spapi_account": self.account, "spapi_operation": operation, "http_status": status,
                        "duration_ms": duration_ms, "request_id": request_id, "attempt": attempt,
                        **({"order_id": found.group(1)} if found else {})})

    def _penalty_seconds(self, throttled: int, resp: requests.Response, bucket: TokenBucket) -> float:
        """How long the bucket hands out nothing after the ``throttled``-th 429 of one call.

        A 429 says Amazon's bucket is empty: emptying ours (``penalize``) already makes the call
        wait for the next token at the rate, as Amazon's bucket refills. A ``Retry-After`` is
        honoured. Only a 429 that repeats (the bucket we mirror is not the one Amazon applies:
        another application on the same quota, a lowered plan) adds an exponential back-off on
        top of that refill."""
        seconds = 0.0
        if throttled > 1:
            seconds = min(self.backoff_max, 1 / bucket.rate + self.backoff_base * 2 ** (throttled - 2))
        retry_after = resp.headers.get("Retry-After", "")
        try:
            seconds = max(seconds, min(float(retry_after), self.backoff_max))
        except ValueError:
            pass
        return seconds

    def _learn_rate(self, operation: str, resp: requests.Response) -> None:
        """Pace to the rate Amazon reports for this operation and seller (best-effort header)."""
        value = resp.headers.get("x-amzn-RateLimit-Limit")
        if not value:
            return
        try:
            rate = float(value)
        except ValueError:
            log.debug("unreadable x-amzn-RateLimit-Limit %r for %s", value[:40], operation)
            return
        self.limiter.learn_rate(self.account, operation, rate)


# -- helpers ---------------------------------------------------------------------------------------


def _never_sent(exc: BaseException) -> bool:
    """True when the failure happened while connecting, so the request never left this host."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or isinstance(exc, requests.exceptions.SSLError):
        return False
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                                ConnectionRefusedError)):
            return True
        if isinstance(current, urllib3.exceptions.MaxRetryError):
            todo.append(current.reason)
        if isinstance(current, BaseException):
            todo.extend(a for a in current.args if isinstance(a, BaseException))
            todo.extend((current.__cause__, current.__context__))
    return False


def _network_failure_kind(exc: BaseException, never_sent: bool) -> str:
    if never_sent:
        return "connect-timeout" if isinstance(exc, requests.ConnectTimeout) else "connect-failed"
    if isinstance(exc, requests.Timeout):
        return "read-timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection-error"
    return "incomplete-body"


def _query_time(name: str, value: datetime) -> str:
    """ISO 8601 UTC to the second (``2024-12-25T00:00:00Z``): floors, so a window only widens."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got a naive datetime")
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _csv(name: str, values: Sequence[str]) -> str:
    if isinstance(values, str):
        values = [values]
    items = [str(v).strip() for v in values]
    if not items or any(not v or "," in v for v in items):
        raise ValueError(f"{name} must be a non-empty list of values without commas, got {list(values)!r}")
    return ",".join(items)


def _search_params(*, marketplace_ids: Sequence[str], last_updated_after: datetime | None,
                   last_updated_before: datetime | None, created_after: datetime | None,
                   created_before: datetime | None, statuses: Sequence[str], included_data: Sequence[str],
                   page_size: int) -> dict[str, str]:
    if (last_updated_after is None) == (created_after is None):
        raise ValueError("searchOrders needs exactly one of last_updated_after and created_after")
    if created_after is not None and last_updated_before is not None:
        raise ValueError("searchOrders: last_updated_before cannot be combined with created_after")
    if last_updated_after is not None and created_before is not None:
        raise ValueError("searchOrders: created_before cannot be combined with last_updated_after")
    ids = [marketplace_ids] if isinstance(marketplace_ids, str) else list(marketplace_ids)
    if not 1 <= len(ids) <= 50:
        raise ValueError(f"searchOrders takes 1 to 50 marketplace ids, got {len(ids)}")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 100:
        raise ValueError(f"page_size must be an integer from 1 to 100, got {page_size!r}")
    params: dict[str, str] = {"marketplaceIds": _csv("marketplace_ids", ids)}
    for name, after, before in (("lastUpdated", last_updated_after, last_updated_before),
                                ("created", created_after, created_before)):
        if after is None:
            continue
        params[f"{name}After"] = _query_time(f"{name}_after", after)
        if before is not None:
            params[f"{name}Before"] = _query_time(f"{name}_before", before)
            if before < after:
                raise ValueError(f"searchOrders: {name}Before is earlier than {name}After")
    params["fulfilledBy"] = "MERCHANT"
    if statuses:
        params["fulfillmentStatuses"] = _csv("statuses", statuses)
    if included_data:
        params["includedData"] = _csv("included_data", included_data)
    params["maxResultsPerPage"] = str(page_size)
    return params


def _maybe_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_api_time(value)
    except ValueError:
        log.warning("searchOrders returned an unparsable time bound %r", value[:40])
        return None


__all__ = [
    "DEFAULT_INCLUDED_DATA", "DEFAULT_STATUSES", "LoginWatch", "OrderSearch", "SpApiClient",
    "VERIFY_INCLUDED_DATA",
]
