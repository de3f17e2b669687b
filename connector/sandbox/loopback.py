"""Sandbox runs (``demo``, ``sandbox simulate``) talk to the loopback emulators and nothing else.

Both start the emulators and then run the real daemon on the configuration they were given. A
configuration that still names Amazon, a carrier or an ERP elsewhere (a production file passed by
mistake) would buy real labels, confirm invented shipments or send invented events, signed with
the real secret. So the run is refused before it starts, naming every such setting
(:func:`refuse_remote_endpoints`), and the daemon's HTTP sessions refuse any other host as a
last guard (:class:`connector.httpsession.Session` with ``loopback_only``): a carrier plugin's
default address, which the configuration does not show, is caught there.
"""
from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..httpsession import is_loopback, is_loopback_host, shown_url, shown_webhook_url

if TYPE_CHECKING:
    from ..config import Config


def remote_endpoints(config: Config) -> list[str]:
    """``setting = address`` for every address the configuration names off this machine: the
    accounts' SP-API and login addresses (none set means Amazon's own), the carriers' addresses,
    the webhook endpoints and a PostgreSQL ledger's server (by its host alone: never a password; the
    others without the credentials a URL may carry)."""
    urls = [(f"accounts[{i}].{key}", getattr(a, key) or "(Amazon's own)")
            for i, a in enumerate(config.accounts) for key in ("endpoint", "lwa_token_url")]
    urls += [(f"carriers.{code}.{key}", value) for code, section in config.carriers.items()
             for key, value in section.items() if isinstance(value, str) and "://" in value]
    remote = [f"{where} = {shown_url(url)}" for where, url in urls if not is_loopback(url)]
    remote += [f"webhooks.endpoints[{i}].url = {shown_webhook_url(e.url)}"
               for i, e in enumerate(config.webhooks.endpoints) if not is_loopback(e.url)]
    if config.ledger_url.startswith("postgresql"):
        host = urlsplit(config.ledger_url).hostname  # none: libpq's local socket
        if host and not is_loopback_host(host):
            remote.append(f"ledger.url = a PostgreSQL server at {host}")
    return remote


class RemoteEndpoints(ValueError):
    """A sandbox run's configuration names addresses off this machine."""


def refuse_remote_endpoints(config: Config, run: str) -> None:
    """RemoteEndpoints naming each remote address, for ``run`` ("the demo", "the simulation")."""
    remote = remote_endpoints(config)
    if remote:
        raise RemoteEndpoints(f"{run} runs against the loopback emulators only; these settings are not "
                              "loopback: " + "; ".join(remote))
