"""connector.httpsession: the environment's proxy and CA settings read once per host, the same
answer requests gives."""
from __future__ import annotations

import pytest
import requests

from connector import httpsession

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
