"""connector.httpsession: the environment's proxy and CA settings read once per host, the same
answer requests gives."""
from __future__ import annotations

import pytest
import requests

from connector import httpsession
from connector.httpsession import shown_webhook_url

URLS = ["https://sellingpartnerapi-na.amazon.com/orders/v0/orders?x=1", "https://api.internal.example/x",
        "http://localhost:8080/y", "https://sellingpartnerapi-na.amazon.com/orders/v0/orders/1"]


@pytest.fixture(autouse=True)
def proxy_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("proxies, verify", [({}, True), ({}, False), ({"https": "http://other:1"}, None)])
def test_the_same_settings_as_requests(url, proxies, verify) -> None:
    plain = requests.Session().merge_environment_settings(url, dict(proxies), None, verify, None)
    session = httpsession.Session()
    assert session.merge_environment_settings(url, dict(proxies), None, verify, None) == plain
    assert session.merge_environment_settings(url, dict(proxies), None, verify, None) == plain  # cached


def test_the_environment_is_read_once_per_host(monkeypatch) -> None:
    calls = []
    real = requests.sessions.get_environ_proxies
    monkeypatch.setattr(requests.sessions, "get_environ_proxies",
                        lambda url, no_proxy=None: calls.append(url) or real(url, no_proxy=no_proxy))
    session = httpsession.Session()
    for url in URLS * 3:
        settings = session.merge_environment_settings(url, {}, None, True, None)
        settings["proxies"]["https"] = "changed by a caller"  # never leaks into the next answer
    assert len(calls) == 3  # two paths on one host share the answer
    assert session.merge_environment_settings(URLS[0], {}, None, True, None)["proxies"]["https"] == \
        "http://proxy.example:3128"
    session.verify = False  # a setting changed later is part of the key
    assert session.merge_environment_settings(URLS[0], {}, None, True, None)["verify"] is not False
    assert len(calls) == 4


def _authorization(session: requests.Session, url: str, **kwargs) -> str | None:
    return session.prepare_request(requests.Request("GET", url, **kwargs)).headers.get("Authorization")


def test_netrc_credentials_as_requests_finds_them_read_once_per_host(tmp_path, monkeypatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.carrier.example login acct password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    session, plain = httpsession.Session(), requests.Session()
    for url in ("https://api.carrier.example/v1/labels", "https://api.other.example/v1"):
        assert _authorization(session, url) == _authorization(plain, url)
    assert _authorization(session, "https://api.carrier.example/v1/labels", auth=("me", "pw")) == \
        _authorization(plain, "https://api.carrier.example/v1/labels", auth=("me", "pw"))  # its own wins
    assert _authorization(session, "https://api.carrier.example/v1/labels").startswith("Basic ")
    assert _authorization(session, "https://api.other.example/v1") is None

    netrc.write_text("machine api.other.example login late password added\n")  # read at the next start
    assert _authorization(session, "https://api.other.example/v2") is None
    assert _authorization(session, "https://api.carrier.example/v2").startswith("Basic ")
    assert _authorization(httpsession.Session(), "https://api.other.example/v2").startswith("Basic ")
    for url in ("https://user:s%40cret@hooks.erp.example/in", "https://user:pw@api.carrier.example/v1"):
        assert _authorization(session, url) == _authorization(plain, url)  # in the URL, when .netrc has none
    assert _authorization(session, "https://user:s%40cret@hooks.erp.example/in") is not None
    session.trust_env = False  # as requests: no .netrc at all
    assert _authorization(session, "https://api.carrier.example/v1/labels") is None


def test_a_sandbox_runs_sessions_refuse_every_host_off_this_machine() -> None:
    import responses

    guarded = httpsession.Session(loopback_only=True)
    with responses.RequestsMock() as mocked:
        mocked.get("http://127.0.0.1:8701/ok", json={"ok": True})
        mocked.get("http://localhost:8702/ok", json={"ok": True})
        assert guarded.get("http://127.0.0.1:8701/ok").json() == {"ok": True}
        assert guarded.get("http://localhost:8702/ok").json() == {"ok": True}
        for url in ("https://sellingpartnerapi-na.amazon.com/orders", "http://10.0.0.5/x", "http://[::2]/"):
            with pytest.raises(httpsession.NotLoopback, match="loopback emulators only"):
                guarded.get(url)
        assert len(mocked.calls) == 2  # nothing else was sent
    assert issubclass(httpsession.NotLoopback, requests.ConnectionError)  # a failed call, to its caller


@pytest.mark.parametrize("url, shown", [
    ("https://erp.example.com", "https://erp.example.com"),
    ("https://erp.example.com/", "https://erp.example.com/"),
    ("https://erp.example.com/hooks", "https://erp.example.com/hooks"),
    ("https://erp.example.com/hooks/", "https://erp.example.com/hooks/"),
    ("https://discord.com/api/webhooks/123/tok", "https://discord.com/api/***"),
])
def test_a_webhook_url_is_shown_to_its_path_s_first_segment(url, shown):
    assert shown_webhook_url(url) == shown
