"""HTTP sessions for the daemon's many small calls to Amazon and the carriers.

``requests`` looks at the proxy environment on every request: ``get_environ_proxies`` walks all of
``os.environ`` twice per call (proxy settings, then ``no_proxy``). In a profile of the daemon that
was about a fifth of its CPU per order. A :class:`Session` here asks ``requests`` once per host and
settings, and reuses the answer: proxies, ``no_proxy``, ``REQUESTS_CA_BUNDLE`` still apply, as
they were when the process first called that host (a daemon's environment does not change).

The same goes for ``~/.netrc``: ``requests`` looks for it (two files) on every request without
credentials of its own, about a sixth of the client's CPU per call. Its answer for a host is read
once and reused; a ``.netrc`` edited while the daemon runs is read at its next start.

Answers' headers are read by :mod:`connector.httpheaders` (installed by the first session), not by
the ``email`` package's general parser the standard library hands them to.

A sandbox run's sessions (``loopback_only``) refuse every host off this machine
(connector/sandbox/loopback.py; the check is here, so that the daemon imports no sandbox code).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.auth import AuthBase
from requests.utils import get_auth_from_url, get_netrc_auth

from . import httpheaders

_MAX_ENTRIES = 256  # hosts x settings; beyond that, the environment is read per call as before


class Session(requests.Session):
    """A ``requests.Session`` that reads the environment's proxy and CA settings once per host."""

    def __init__(self, *, loopback_only: bool = False) -> None:
        super().__init__()
        httpheaders.install()
        self.loopback_only = loopback_only
        self._environment: dict[Any, dict[str, Any]] = {}
        self._netrc: dict[tuple[str, str], Any] = {}  # (scheme, host) -> its .netrc credentials

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        if self.trust_env and not request.auth and not self.auth:  # where requests reads .netrc
            parts = urlsplit(str(request.url))
            key = (parts.scheme, parts.netloc)
            found = self._netrc.get(key, _UNREAD)
            if found is _UNREAD:
                found = get_netrc_auth(str(request.url)) or _NO_CREDENTIALS
                if len(self._netrc) < _MAX_ENTRIES:
                    self._netrc[key] = found
            if found is _NO_CREDENTIALS:  # as requests then does: credentials in the URL, if any
                in_url = get_auth_from_url(str(request.url))
                found = in_url if any(in_url) else _NO_CREDENTIALS
            request.auth = found
        return super().prepare_request(request)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.loopback_only and not is_loopback(str(request.url)):  # a redirect elsewhere too
            raise NotLoopback(f"a sandbox run calls the loopback emulators only, not "
                              f"{urlsplit(str(request.url)).hostname}")
        return super().send(request, **kwargs)

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        parts = urlsplit(url if isinstance(url, str) else str(url))
        try:
            key = (parts.scheme, parts.netloc, _frozen(proxies), stream, verify, cert,
                   self.trust_env, _frozen(self.proxies), self.stream, self.verify, self.cert)
            hash(key)
        except TypeError:  # a setting that cannot be a key (e.g. a list): the usual way
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, dict(proxies) if proxies is not None else None,
                                                       stream, verify, cert)
            if len(self._environment) < _MAX_ENTRIES:
                self._environment[key] = found
        return {**found, "proxies": dict(found["proxies"])}


def _frozen(mapping: Any) -> Any:
    return None if mapping is None else frozenset(mapping.items())


def shown_url(url: str, *, path_shown: int | None = None) -> str:
    """``url`` as a listing or a message may show it: where it goes, without the credentials it may
    carry. Its user and password (which requests sends as Basic auth) and its query string (an API
    key, a token) become ``***``; a fragment, never sent, is left out. ``path_shown``: show only
    that many segments of the path, the rest as ``***`` (None: the whole path)."""
    parts = urlsplit(url)
    netloc = "***@" + parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    path = parts.path
    if path_shown is not None:
        segments = path.split("/")[1:]  # the path begins with "/"
        if len(segments) > path_shown and any(segments[path_shown:]):
            path = "/" + "/".join([*segments[:path_shown], "***"])
    return urlunsplit((parts.scheme, netloc, path, "***" if parts.query else "", ""))


def shown_webhook_url(url: str) -> str:
    """A webhook endpoint's URL as shown: :func:`shown_url` with only the path's first segment.
    Slack's, Discord's and Teams' incoming webhooks carry their secret in the path
    (``/services/T.../B.../<token>``), and the endpoint's name tells them apart anyway."""
    return shown_url(url, path_shown=1)


def is_loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def is_loopback_host(host: str) -> bool:
    import ipaddress  # (here: only a sandbox run asks)

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NotLoopback(requests.ConnectionError):
    """A sandbox run's call to a host off this machine, refused before anything was sent."""


class _NoCredentials(AuthBase):
    """A host ``.netrc`` has nothing for: adds nothing (and, being set, keeps ``requests`` from
    looking again)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_NO_CREDENTIALS = _NoCredentials()
_UNREAD = object()
