"""HTTP sessions for the daemon's many small calls to Amazon and the carriers.

``requests`` looks at the proxy environment on every request: ``get_environ_proxies`` walks all of
``os.environ`` twice per call (proxy settings, then ``no_proxy``). In a profile of the daemon that
was about a fifth of its CPU per order. A :class:`Session` here asks ``requests`` once per host and
settings, and reuses the answer: proxies, ``no_proxy``, ``REQUESTS_CA_BUNDLE`` still apply, as
they were when the process first called that host (a daemon's environment does not change).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

_MAX_ENTRIES = 256  # hosts x settings; beyond that, the environment is read per call as before


class Session(requests.Session):
    """A ``requests.Session`` that reads the environment's proxy and CA settings once per host."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[Any, dict[str, Any]] = {}

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
