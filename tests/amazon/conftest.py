"""Shared fixtures for the SP-API client tests: a fake clock, an LWA stub, a client factory."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs

import pytest
import requests
import responses

from connector.amazon.auth import LwaTokenProvider
from connector.amazon.client import SpApiClient
from connector.amazon.sites import LWA_TOKEN_URL, REGION_HOSTS
from connector.ratelimit import RateLimiter

ENDPOINT = REGION_HOSTS["na"]
REFRESH_TOKEN = "Atzr|refresh-token-SECRET"
CLIENT_ID = "amzn1.application-oa2-client.test"
CLIENT_SECRET = "client-secret-SECRET"


class FakeClock:
    """A clock whose sleep() advances time instantly; records every sleep."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LwaStub:
    """Answers the LWA token endpoint with access tokens "Atza|token-1", "Atza|token-2", ..."""

    def __init__(self, rsps: responses.RequestsMock, expires_in: int = 3600) -> None:
        self.issued: list[str] = []
        self.forms: list[dict[str, list[str]]] = []
        self.expires_in = expires_in
        rsps.add_callback(responses.POST, LWA_TOKEN_URL, callback=self._answer)

    def _answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = request.body if isinstance(request.body, str) else (request.body or b"").decode()
        self.forms.append(parse_qs(body))
        token = f"Atza|token-{len(self.issued) + 1}"
        self.issued.append(token)
        return (
            200,
            {},
            json.dumps({"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}),
        )


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lwa(rsps: responses.RequestsMock) -> LwaStub:
    return LwaStub(rsps)


def make_tokens(session: requests.Session | None = None, **kw) -> LwaTokenProvider:
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("backoff_max", 0.002)
    return LwaTokenProvider(
        LWA_TOKEN_URL, REFRESH_TOKEN, CLIENT_ID, CLIENT_SECRET, session=session or requests.Session(), **kw
    )


@pytest.fixture
def make_client(lwa: LwaStub, clock: FakeClock) -> Callable[..., SpApiClient]:
    """SpApiClient on a fake-clock limiter (bucket waits cost no real time) and tiny back-off."""

    def factory(*, account: str = "acme-eu", limiter: RateLimiter | None = None, **kw) -> SpApiClient:
        session = requests.Session()
        kw.setdefault("backoff_base", 0.001)
        kw.setdefault("backoff_max", 0.002)
        return SpApiClient(
            account=account,
            endpoint=ENDPOINT,
            tokens=make_tokens(session),
            limiter=limiter or RateLimiter(clock=clock, sleep=clock.sleep),
            session=session,
            **kw,
        )

    return factory


def api_calls(rsps: responses.RequestsMock) -> list[responses.Call]:
    """The calls that went to SP-API (not to LWA)."""
    return [c for c in rsps.calls if c.request.url.startswith(ENDPOINT)]


@contextmanager
def raw_server(answer: Callable[[socket.socket, int], None]) -> Iterator[tuple[str, list[int]]]:
    """A loopback HTTP server at the socket level: it reads each request, then ``answer(conn, n)``
    (n: which request, from 1) writes what it likes and the connection is closed. Yields its base
    URL and the requests' count so far."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    hits: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            hits.append(1)
            answer(conn, len(hits))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", hits
    finally:
        server.close()
