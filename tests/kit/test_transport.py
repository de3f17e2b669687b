"""connector.kit.http.Transport: every failure classified, one log line per call, nothing leaked."""
from __future__ import annotations

import logging
import time

import pytest
import requests
import responses

from connector.kit import CredentialsRefusedError, PermanentCarrierError, TransientCarrierError, Transport

URL = "http://carrier.example.test/api/op"
SECRET = "s3cret-sign"


def make(**options) -> Transport:
    return Transport(carrier="demo", name="Demo Post", **options)


@responses.activate
def test_json_answer_and_the_log_line(caplog):
    responses.post(URL, json={"ok": True, "RequestId": "r-42"})
    transport = make(request_id=lambda response, decoded: decoded["RequestId"])
    with caplog.at_level(logging.INFO, logger="connector.carrier.demo"):
        assert transport.send_json("create", "POST", URL, reference="111-1", json={"name": "Buyer"}) == \
            {"ok": True, "RequestId": "r-42"}
    [record] = caplog.records
    line = record.getMessage()
    assert line.startswith("demo create ref=111-1 request_id=r-42 ") and line.endswith("ms HTTP 200")
    assert "Buyer" not in line


@pytest.mark.parametrize("error, code", [(requests.ConnectTimeout(f"{URL}?sign={SECRET}"), "timeout"),
                                         (requests.ReadTimeout(f"{URL}?sign={SECRET}"), "timeout"),
                                         (requests.ConnectionError(f"reset {URL}?sign={SECRET}"), "network")])
@responses.activate
def test_network_failures_are_transient_and_never_echo_the_url(error, code):
    responses.post(URL, body=error)
    with pytest.raises(TransientCarrierError) as caught:
        make().send_json("create", "POST", URL, params={"sign": SECRET})
    assert caught.value.code == code and caught.value.carrier == "demo"
    assert "may have taken effect" in str(caught.value)
    assert SECRET not in str(caught.value) and caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503])
@responses.activate
def test_transient_statuses(status):
    responses.get(URL, status=status, json={"message": "busy"})
    with pytest.raises(TransientCarrierError) as caught:
        make().send("track", "GET", URL)
    assert caught.value.code == f"http_{status}"


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_refused_credentials_are_permanent(status):
    responses.get(URL, status=status, body="Unauthorized")
    refused = r"Demo Post rejected the credentials \(check carriers.demo\)"
    with pytest.raises(CredentialsRefusedError, match=refused) as caught:  # no doubt: nothing was done
        make().send_json("track", "GET", URL)
    assert caught.value.code == "auth"


@responses.activate
def test_a_plugins_credentials_error_for_401_is_made_unmistakable():
    responses.post(URL, status=401)
    own = PermanentCarrierError("Demo Post refused the signature", code="auth", carrier="demo")
    with pytest.raises(CredentialsRefusedError, match="refused the signature") as caught:
        make(credentials_error=lambda detail: own).send_json("create", "POST", URL)
    assert caught.value.carrier == "demo"


@responses.activate
def test_a_custom_credentials_error_per_call():
    responses.get(URL, status=401)
    special = PermanentCarrierError("tracking token refused", code="tracking_auth")
    with pytest.raises(PermanentCarrierError, match="tracking token refused"):
        make().send("track", "GET", URL, credentials_error=lambda detail: special)


@responses.activate
def test_other_client_errors_are_permanent_with_the_carriers_message_and_a_hint():
    responses.post(URL, status=404, json={"message": "no such endpoint"})
    transport = make(error_detail=lambda decoded: decoded.get("message", ""))
    with pytest.raises(PermanentCarrierError) as caught:
        transport.send_json("create", "POST", URL)
    assert str(caught.value) == "Demo Post create: HTTP 404: no such endpoint (check base_url)"
    assert caught.value.code == "http_404"
    responses.post(URL, status=400, body="<html>bad</html>")
    with pytest.raises(PermanentCarrierError, match=r"HTTP 400 \(check tracking_url\)$"):
        transport.send_json("create", "POST", URL, hint="check tracking_url")


@responses.activate
def test_send_returns_other_client_errors_for_the_plugin_to_read():
    responses.get(URL, status=404, body=b"%PDF-")
    assert make().send("label", "GET", URL).status_code == 404


@responses.activate
def test_malformed_json_is_transient_and_not_echoed():
    responses.post(URL, body=b'{"Code": "0000", "Item": {"Name": "Buyer Name"')
    with pytest.raises(TransientCarrierError) as caught:
        make().send_json("create", "POST", URL)
    assert caught.value.code == "malformed" and "Buyer Name" not in str(caught.value)
    assert "HTTP 200" in str(caught.value) and "may have taken effect" in str(caught.value)


@responses.activate
def test_a_non_json_authentication_failure_is_the_credentials_error():
    responses.post(URL, body=b"Authentication failed: bad signature")
    transport = make(is_auth_failure=lambda text: "authentication failed" in text.lower())
    with pytest.raises(PermanentCarrierError) as caught:
        transport.send_json("create", "POST", URL)
    assert caught.value.code == "auth" and "non-JSON answer to create" in str(caught.value)
    assert not isinstance(caught.value, CredentialsRefusedError)  # read from words: the call may have worked


@responses.activate
def test_timeouts_and_tls_come_from_the_transport_and_pacing_spaces_calls(monkeypatch):
    seen = []
    session = requests.Session()
    original = session.request

    def spy(*args, **kwargs):
        seen.append((kwargs["timeout"], kwargs["verify"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(session, "request", spy)
    responses.get(URL, json={})
    transport = make(session=session, timeouts=(2, 7), verify_tls=False, requests_per_second=20)
    started = time.monotonic()
    for _ in range(4):
        transport.send_json("track", "GET", URL)
    assert time.monotonic() - started >= 0.14  # 4 calls at 20/s: 3 gaps of 50 ms
    assert seen == [((2, 7), False)] * 4
