from __future__ import annotations

import json
import logging
import threading
import time
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs

import pytest
import requests
import responses

from connector.amazon.auth import LwaTokenProvider
from connector.amazon.errors import AuthError, TransientError
from connector.amazon.sites import LWA_TOKEN_URL

from .conftest import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeClock, LwaStub, make_tokens, raw_server


def lwa_calls(rsps: responses.RequestsMock) -> list[responses.Call]:
    return [c for c in rsps.calls if c.request.url == LWA_TOKEN_URL]


def test_token_is_fetched_with_the_refresh_token_grant_and_cached(
    rsps, lwa: LwaStub, clock: FakeClock
) -> None:
    tokens = make_tokens(clock=clock)
    assert tokens.token() == "Atza|token-1"
    assert tokens.token() == "Atza|token-1"
    assert len(lwa.issued) == 1
    assert lwa.forms[0] == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH_TOKEN],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    assert tokens.expires_at == pytest.approx(clock.now + 3600)


def test_token_is_refreshed_before_it_expires(rsps, lwa: LwaStub, clock: FakeClock) -> None:
    tokens = make_tokens(clock=clock, refresh_margin=300)
    assert tokens.token() == "Atza|token-1"
    clock.advance(3600 - 300 - 1)  # 301 s left: still good
    assert tokens.token() == "Atza|token-1"
    clock.advance(2)  # 299 s left: refresh early
    assert tokens.token() == "Atza|token-2"
    assert len(lwa.issued) == 2


def test_short_lived_token_is_refreshed_at_half_life_not_on_every_call(rsps, clock: FakeClock) -> None:
    lwa = LwaStub(rsps, expires_in=120)
    tokens = make_tokens(clock=clock, refresh_margin=300)
    tokens.token()
    clock.advance(59)
    tokens.token()
    assert len(lwa.issued) == 1
    clock.advance(2)
    tokens.token()
    assert len(lwa.issued) == 2


def test_invalidate_forces_a_refresh_but_not_of_a_newer_token(rsps, lwa: LwaStub, clock: FakeClock) -> None:
    tokens = make_tokens(clock=clock)
    stale = tokens.token()
    tokens.invalidate(stale)
    fresh = tokens.token()
    assert fresh == "Atza|token-2"
    tokens.invalidate(stale)  # another thread still holding the old token: keep the fresh one
    assert tokens.token() == fresh
    tokens.invalidate()
    assert tokens.token() == "Atza|token-3"


@pytest.mark.parametrize(
    "status, error", [(400, "invalid_grant"), (401, "invalid_client"), (400, "unauthorized_client")]
)
def test_lwa_refusal_is_an_auth_error_with_lwa_code_and_is_not_retried(rsps, status: int, error: str) -> None:
    rsps.add(
        responses.POST,
        LWA_TOKEN_URL,
        status=status,
        json={"error": error, "error_description": f"The request has an invalid parameter: {REFRESH_TOKEN}"},
    )
    tokens = make_tokens()
    with pytest.raises(AuthError) as info:
        tokens.token()
    assert info.value.code == error
    assert info.value.status == status
    assert error in str(info.value)
    assert REFRESH_TOKEN not in str(info.value) and CLIENT_SECRET not in str(info.value)
    assert len(lwa_calls(rsps)) == 1


def test_transient_lwa_failures_are_retried(rsps) -> None:
    rsps.add(responses.POST, LWA_TOKEN_URL, status=503, json={"error": "ServiceUnavailable"})
    rsps.add(responses.POST, LWA_TOKEN_URL, body=requests.ConnectionError("reset"))
    rsps.add(responses.POST, LWA_TOKEN_URL, json={"access_token": "Atza|late", "expires_in": 3600})
    assert make_tokens().token() == "Atza|late"
    assert len(lwa_calls(rsps)) == 3


def test_an_answer_cut_off_mid_body_is_a_transient_failure_and_retried() -> None:
    """The connection drops after LWA's headers: requests raises ChunkedEncodingError (an
    IncompleteRead), which is no ConnectionError. It is a transient failure like the others."""
    full = b'{"access_token": "Atza|whole", "expires_in": 3600}'

    def first_cut_off(conn, n: int) -> None:
        if n == 1:  # 200 bytes announced, 12 sent
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b'Content-Length: 200\r\n\r\n{"access_tok')
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(full), full))

    with raw_server(first_cut_off) as (base, hits):
        tokens = LwaTokenProvider(f"{base}/auth/o2/token", REFRESH_TOKEN, CLIENT_ID, CLIENT_SECRET,
                                  session=requests.Session(), backoff_base=0.001, backoff_max=0.002)
        assert tokens.token() == "Atza|whole"
        assert len(hits) == 2


def test_transient_lwa_failures_give_up_after_three_attempts(rsps) -> None:
    rsps.add(responses.POST, LWA_TOKEN_URL, status=500, body="oops")
    rsps.add(responses.POST, LWA_TOKEN_URL, status=200, body='{"access_tok')  # truncated JSON
    rsps.add(responses.POST, LWA_TOKEN_URL, body=requests.ReadTimeout("slow"))
    rsps.add(responses.POST, LWA_TOKEN_URL, json={"access_token": "Atza|never", "expires_in": 3600})
    with pytest.raises(TransientError) as info:
        make_tokens().token()
    assert info.value.ambiguous is False
    assert len(lwa_calls(rsps)) == 3


def test_concurrent_callers_share_one_refresh(rsps, lwa: LwaStub) -> None:
    tokens = make_tokens()
    got: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        got.append(tokens.token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert got == ["Atza|token-1"] * 8
    assert len(lwa.issued) == 1


def test_no_login_starts_after_a_stop_request(rsps) -> None:
    """A stop arrives while one thread's LWA login hangs (LWA unreachable) and others wait for it:
    none of them starts a login of its own afterwards, each would cost up to a timeout and the
    daemon must exit within seconds. They end as a quota wait does at a stop: nothing was sent."""
    from connector.ratelimit import QuotaWaitInterrupted

    stop = threading.Event()
    started = threading.Event()

    def hangs_until_the_stop(request):
        started.set()
        time.sleep(0.3)  # the other callers queue for this login meanwhile
        stop.set()  # SIGTERM
        raise requests.ReadTimeout("LWA did not answer")

    rsps.add_callback(responses.POST, LWA_TOKEN_URL, callback=hangs_until_the_stop)
    tokens = make_tokens(stop=stop)
    outcomes: list[str] = []

    def caller() -> None:
        try:
            tokens.token()
            outcomes.append("token")
        except QuotaWaitInterrupted:
            outcomes.append("stopped")
        except TransientError:
            outcomes.append("failed")

    threads = [threading.Thread(target=caller) for _ in range(4)]
    threads[0].start()
    assert started.wait(5)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(lwa_calls(rsps)) == 1
    assert outcomes == ["stopped"] * 4


def _rotated_days_ago(clock: FakeClock, days: int) -> date:
    today = datetime.fromtimestamp(clock.now, timezone.utc).date()
    return today - timedelta(days=days)


def test_no_rotation_warning_while_the_secret_is_young(rsps, clock: FakeClock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="connector.amazon")
    tokens = make_tokens(clock=clock, client_secret_rotated_at=_rotated_days_ago(clock, 100))
    assert tokens.secret_rotation_days_left() == 80
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_rotation_warning_within_30_days_once_a_day(rsps, lwa: LwaStub, clock: FakeClock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="connector.amazon")
    tokens = make_tokens(clock=clock, client_secret_rotated_at=_rotated_days_ago(clock, 160))
    tokens.token()
    clock.advance(3600)
    tokens.token()  # a refresh on the same day: no second warning
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "20 day(s)" in warnings[0].getMessage()
    clock.advance(86400)
    tokens.token()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_rotation_overdue_is_an_error(rsps, clock: FakeClock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="connector.amazon")
    tokens = make_tokens(clock=clock, client_secret_rotated_at=_rotated_days_ago(clock, 181))
    assert tokens.secret_rotation_days_left() == -1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "rotation deadline" in errors[0].getMessage()


def test_invalid_client_after_the_deadline_says_to_rotate(rsps, clock: FakeClock) -> None:
    rsps.add(responses.POST, LWA_TOKEN_URL, status=401, json={"error": "invalid_client"})
    tokens = make_tokens(clock=clock, client_secret_rotated_at=_rotated_days_ago(clock, 200))
    with pytest.raises(AuthError, match="rotate it"):
        tokens.token()


def test_tokens_and_secrets_never_reach_the_logs(rsps, lwa: LwaStub, clock: FakeClock, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = make_tokens(clock=clock, client_secret_rotated_at=_rotated_days_ago(clock, 175))
    tokens.token()
    tokens.invalidate()
    tokens.token()
    text = caplog.text + repr(tokens)
    assert "LWA access token refreshed" in text
    for secret in ["Atza|token-1", "Atza|token-2", REFRESH_TOKEN, CLIENT_SECRET]:
        assert secret not in text


def test_empty_credentials_are_refused() -> None:
    with pytest.raises(ValueError, match="client_secret"):
        LwaTokenProvider(LWA_TOKEN_URL, REFRESH_TOKEN, CLIENT_ID, "", session=requests.Session())


def test_lwa_answer_without_expiry_defaults_to_an_hour(rsps, clock: FakeClock) -> None:
    rsps.add(responses.POST, LWA_TOKEN_URL, body=json.dumps({"access_token": "Atza|x"}))
    tokens = make_tokens(clock=clock)
    tokens.token()
    assert tokens.expires_at == pytest.approx(clock.now + 3600)
    assert parse_qs(rsps.calls[0].request.body)["grant_type"] == ["refresh_token"]


# -- a failed login is remembered per account --------------------------------------------------------


def test_a_failed_login_is_remembered_and_retried_after_a_back_off(rsps, clock: FakeClock) -> None:
    rsps.add(responses.POST, LWA_TOKEN_URL, body=requests.ConnectionError("unreachable"))
    tokens = make_tokens(clock=clock, attempts=1, failure_backoff=5, failure_backoff_max=40)
    with pytest.raises(TransientError):
        tokens.token()
    assert len(lwa_calls(rsps)) == 1 and tokens.failing
    for _ in range(50):  # one call per order: none of them asks LWA again during the back-off
        with pytest.raises(TransientError, match="remembered: 1 failed login"):
            tokens.token()
    assert len(lwa_calls(rsps)) == 1
    clock.advance(5)
    with pytest.raises(TransientError):
        tokens.token()  # asked again: still unreachable, the back-off doubles
    assert len(lwa_calls(rsps)) == 2
    clock.advance(9)
    with pytest.raises(TransientError, match="asked again in 1 s"):
        tokens.token()
    assert len(lwa_calls(rsps)) == 2
    rsps.replace(responses.POST, LWA_TOKEN_URL, json={"access_token": "Atza|back", "expires_in": 3600})
    clock.advance(1)
    assert tokens.token() == "Atza|back" and not tokens.failing
    assert len(lwa_calls(rsps)) == 3


def test_a_refused_login_is_remembered_as_an_auth_error(rsps, clock: FakeClock) -> None:
    rsps.add(responses.POST, LWA_TOKEN_URL, status=400,
             json={"error": "invalid_grant", "error_description": "The refresh token is revoked"})
    tokens = make_tokens(clock=clock)
    for _ in range(3):
        with pytest.raises(AuthError) as info:
            tokens.token()
        assert info.value.code == "invalid_grant" and info.value.operation == "lwaToken"
    assert len(lwa_calls(rsps)) == 1
    assert REFRESH_TOKEN not in str(info.value)


def test_the_back_off_is_capped(rsps, clock: FakeClock) -> None:
    rsps.add(responses.POST, LWA_TOKEN_URL, status=503, json={"error": "ServiceUnavailable"})
    tokens = make_tokens(clock=clock, attempts=1, failure_backoff=5, failure_backoff_max=30)
    for _ in range(6):  # 5, 10, 20, 30, 30, 30 s
        with pytest.raises(TransientError):
            tokens.token()
        clock.advance(30)
    assert len(lwa_calls(rsps)) == 6
