"""Login with Amazon (LWA): exchange the seller's refresh token for 1-hour access tokens.

One :class:`LwaTokenProvider` per seller account, shared by every thread of that account. It
refreshes ``refresh_margin`` seconds before expiry (under a lock, so one refresh at a time),
retries LWA's transient failures, and maps LWA's refusals to :class:`AuthError` with LWA's
``error`` code. A failed refresh is remembered: until its back-off has passed (``failure_backoff``
seconds, doubling per failure up to ``failure_backoff_max``), every caller gets the same error at
once instead of asking LWA again -- while LWA is unreachable or refuses, an account asks it a few
times an hour, not once per order. Retry waits end on a stop request (``stop``,
:class:`~connector.ratelimit.QuotaWaitInterrupted`), and no login starts after one. It also
watches the LWA client secret's 180-day rotation deadline (docs/amazon-sp-api.md#lwa-tokens).

Nothing here logs or puts into an exception a token, the refresh token or the client secret.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from .. import clock as daemon_clock
from ..ratelimit import QuotaWaitInterrupted, StopSignal, pause, stop_requested
from .errors import AuthError, SpApiError, TransientError
from .server_clock import ServerClock

log = logging.getLogger("connector.amazon.auth")

LWA_OPERATION = "lwaToken"  # the "operation" name on errors raised here
DEFAULT_EXPIRES_IN = 3600
# no answer, or one cut off mid-body (an IncompleteRead is a ChunkedEncodingError, no ConnectionError):
# transient, for LWA as for the SP-API calls (client.py)
NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                  requests.exceptions.ContentDecodingError)


class LwaTokenProvider:
    """Thread-safe access-token cache for one (refresh token, LWA app) pair.

    ``client_secret_rotated_at``: the day the LWA client secret was created/rotated; the secret
    must be rotated every ``rotation_days`` (180) days. Within ``rotation_warn_days`` (30) of the
    deadline a WARNING is logged (at most once a day), past it an ERROR.
    """

    def __init__(self, token_url: str, refresh_token: str, client_id: str, client_secret: str, *,
                 session: requests.Session, refresh_margin: float = 300,
                 clock: Callable[[], float] = daemon_clock.timestamp,
                 client_secret_rotated_at: date | None = None,
                 rotation_days: int = 180, rotation_warn_days: int = 30,
                 timeout: tuple[float, float] = (5, 30), attempts: int = 3,
                 backoff_base: float = 0.5, backoff_max: float = 10.0, failure_backoff: float = 5.0,
                 failure_backoff_max: float = 300.0, stop: StopSignal = None) -> None:
        for name, value in (("token_url", token_url), ("refresh_token", refresh_token),
                            ("client_id", client_id), ("client_secret", client_secret)):
            if not value:
                raise ValueError(f"LWA {name} is empty")
        self.token_url = token_url
        self._refresh_token = refresh_token
        self.client_id = client_id
        self._client_secret = client_secret
        self.session = session
        self.refresh_margin = refresh_margin
        self._clock = clock
        self.client_secret_rotated_at = client_secret_rotated_at
        self.rotation_days = rotation_days
        self.rotation_warn_days = rotation_warn_days
        self.timeout = timeout
        self.attempts = attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.failure_backoff = failure_backoff
        self.failure_backoff_max = failure_backoff_max
        self.stop = stop
        # Amazon's time, for the purge (engine/host_clock.py): LWA's answer carries it too, a
        # refusal's included, so an account whose login is refused still shows the host's clock
        self.server_clock: ServerClock | None = None
        self._lock = threading.Lock()
        self._failure: SpApiError | None = None  # the last failed refresh, until _retry_at
        self._failures = 0
        self._retry_at = 0.0
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._rotation_logged_on: date | None = None
        self.check_secret_rotation()

    def __repr__(self) -> str:  # never show secrets
        return f"LwaTokenProvider(token_url={self.token_url!r}, client_id={self.client_id!r})"

    # -- access tokens -----------------------------------------------------------------------

    def token(self) -> str:
        """A valid access token, refreshed first when less than ``refresh_margin`` seconds remain."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._refresh_or_remember()
            assert self._token is not None
            return self._token

    @property
    def failing(self) -> bool:
        """Whether the last refresh failed and its back-off is still running."""
        with self._lock:
            return self._failure is not None and self._clock() < self._retry_at

    def _refresh_or_remember(self) -> None:
        now = self._clock()
        if self._failure is not None and now < self._retry_at:
            raise self._remembered(now)
        if stop_requested(self.stop):  # (callers queued behind a login a stop cut short) none more:
            raise QuotaWaitInterrupted("an LWA login")  # each could hang for a whole timeout
        try:
            self._refresh()
        except SpApiError as exc:
            self._failures += 1
            backoff = min(self.failure_backoff_max, self.failure_backoff * 2 ** (self._failures - 1))
            self._failure, self._retry_at = exc, self._clock() + backoff
            log.warning("LWA login failed (%d in a row); asking again in %.0f s, not before: %s",
                        self._failures, backoff, type(exc).__name__)
            raise
        self._failure, self._failures = None, 0

    def _remembered(self, now: float) -> SpApiError:
        """The remembered failure, as a fresh exception saying when LWA is asked again."""
        exc = self._failure
        assert exc is not None
        message = (f"{exc.message} (remembered: {self._failures} failed login(s) in a row; "
                   f"LWA is asked again in {max(0.0, self._retry_at - now):.0f} s)")
        kind = AuthError if isinstance(exc, AuthError) else TransientError
        return kind(message, status=exc.status, code=exc.code, operation=LWA_OPERATION)

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token so the next :meth:`token` refreshes (after a 401/expired 403).

        With ``token``: only if that is still the cached one, so a thread holding a stale token
        does not throw away the fresh token another thread just fetched.
        """
        with self._lock:
            if token is None or token == self._token:
                self._token = None
                self._expires_at = self._refresh_at = 0.0

    @property
    def expires_at(self) -> float | None:
        """When the cached token expires (``clock`` time), or None when none is cached."""
        with self._lock:
            return self._expires_at if self._token is not None else None

    def _refresh(self) -> None:
        self.check_secret_rotation()
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_random_exponential(multiplier=self.backoff_base, max=self.backoff_max),
            retry=retry_if_exception_type(TransientError),
            sleep=lambda seconds: pause(seconds, self.stop, what="a retry of the LWA login"),
            reraise=True,
        )
        token, expires_in, started = retrying(self._request_token)
        self._token = token
        self._expires_at = started + expires_in
        # refresh early; a token shorter-lived than twice the margin is refreshed at half-life
        self._refresh_at = self._expires_at - min(self.refresh_margin, expires_in / 2)

    def _request_token(self) -> tuple[str, float, float]:
        started = self._clock()
        t0 = time.monotonic()
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token,
                "client_id": self.client_id, "client_secret": self._client_secret}
        try:
            resp = self.session.post(self.token_url, data=form, timeout=self.timeout,
                                     headers={"accept": "application/json"}, allow_redirects=False)
        except NETWORK_ERRORS as exc:
            log.warning("LWA token request failed: %s", type(exc).__name__)
            raise TransientError(f"LWA token endpoint unreachable ({type(exc).__name__})",
                                 operation=LWA_OPERATION) from None
        duration_ms = int((time.monotonic() - t0) * 1000)
        if self.server_clock is not None:
            self.server_clock.saw(resp.headers.get("Date"))
        body = _json_or_none(resp)
        if resp.status_code == 200:
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                log.warning("LWA token answer unusable: status=200 duration_ms=%d", duration_ms)
                raise TransientError("LWA answered 200 without an access_token", status=200,
                                     operation=LWA_OPERATION)
            expires_in = _positive_number(body.get("expires_in")) or DEFAULT_EXPIRES_IN
            log.info("LWA access token refreshed: expires_in=%ss duration_ms=%d", int(expires_in),
                     duration_ms)
            return token, expires_in, started
        log.warning("LWA token request refused: status=%s duration_ms=%d", resp.status_code, duration_ms)
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TransientError(f"LWA token endpoint answered HTTP {resp.status_code}",
                                 status=resp.status_code, operation=LWA_OPERATION)
        code, description = "", ""
        if isinstance(body, dict):
            code = str(body.get("error") or "")
            description = self._scrub(str(body.get("error_description") or ""))[:300]
        message = f"LWA refused the refresh token: {code or 'HTTP ' + str(resp.status_code)}"
        if description:
            message += f" ({description})"
        days_left = self.secret_rotation_days_left()
        if code == "invalid_client" and days_left is not None and days_left <= 0:
            message += "; the LWA client secret passed its rotation deadline, rotate it"
        raise AuthError(message, status=resp.status_code, code=code, operation=LWA_OPERATION)

    def _scrub(self, text: str) -> str:
        for secret in (self._refresh_token, self._client_secret):
            text = text.replace(secret, "***")
        return text

    # -- client secret rotation ----------------------------------------------------------------

    def _today(self) -> date:
        return datetime.fromtimestamp(self._clock(), timezone.utc).date()

    def secret_rotation_deadline(self) -> date | None:
        if self.client_secret_rotated_at is None:
            return None
        return self.client_secret_rotated_at + timedelta(days=self.rotation_days)

    def secret_rotation_days_left(self) -> int | None:
        """Days until the client secret must be rotated (negative: overdue); None if unknown."""
        deadline = self.secret_rotation_deadline()
        return None if deadline is None else (deadline - self._today()).days

    def check_secret_rotation(self) -> int | None:
        """Log the rotation warning/error if due (at most once a day); return the days left."""
        days_left = self.secret_rotation_days_left()
        if days_left is None or days_left > self.rotation_warn_days:
            return days_left
        today = self._today()
        if self._rotation_logged_on == today:
            return days_left
        self._rotation_logged_on = today
        deadline = self.secret_rotation_deadline()
        if days_left <= 0:
            log.error("LWA client secret of app %s passed its %d-day rotation deadline on %s; SP-API calls "
                      "fail until it is rotated", self.client_id, self.rotation_days, deadline)
        else:
            log.warning("LWA client secret of app %s must be rotated within %d day(s), by %s",
                        self.client_id, days_left, deadline)
        return days_left


def _json_or_none(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _positive_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
