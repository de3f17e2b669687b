"""The SP-API surface for a plugin whose carrier is an Amazon API itself.

Every carrier factory receives a :class:`~connector.kit.carrier.CarrierContext`; its ``amazon``
maps each configured seller account's name to that account's :class:`SpApiClient`. A carrier that
is an SP-API (a label service Amazon sells, say) calls its operations through
:meth:`SpApiClient.call` and gets what the core's own calls get -- pacing, access tokens, the
retry policy, one log line per request::

    from connector.kit.amazon import NotFoundError, SpApiClient, site_for_marketplace

    client.limiter.add_defaults({"getWidgets": (5.0, 10)})   # its operations' default quotas
    body = client.call("getWidgets", "GET", "/widgets/v1/widgets", params={...}, idempotent=True)

* :class:`SpApiClient` -- ``call(operation, method, path, *, params, json, headers, idempotent)``,
  ``get_order(order_id, included_data)``, ``account``, ``limiter`` (the :class:`RateLimiter`
  every account shares; ``add_defaults``: configured quotas always win; a carrier declares the
  same table in ``CarrierSpec.spapi_quotas``, the names ``amazon.quotas`` may set);
* the errors it raises: :class:`SpApiError` and its subclasses :class:`TransientError`
  (``ambiguous`` when a non-idempotent call may have taken effect), :class:`ThrottledError`,
  :class:`InvalidInputError`, :class:`AlreadyShippedError`, :class:`AuthError`,
  :class:`NotFoundError`;
* sites: :data:`SITES` (Amazon's site table: code -> marketplace id, region, currency, country),
  :func:`site_for_marketplace` (marketplace id -> site code), :func:`marketplace_id`,
  :func:`get_site`; :data:`REGION_HOSTS` (region -> SP-API host) and :data:`LWA_TOKEN_URL`;
* time: :func:`parse_api_time` (Amazon's ISO 8601 date-times), :func:`ship_date_iso`;
* :func:`connect_account` -- one seller account's client wired as the daemon wires it, for a
  plugin's tests and scripts (against canned HTTP, the emulator, or Amazon).

For a plugin's emulator and tests only: :class:`SpApiEmulator`, the SP-API emulator, whose public
extension API (``call``, ``order_for``, ``put_package``, ``substore``, ``add_models``...) is how
an emulator registered with ``EmulatorSpec(mount_on="spapi")`` serves its routes on it.

Importing this module is cheap: the client (and ``requests``) and the emulator are loaded when a
plugin first asks for them.

Amazon's documentation: https://developer-docs.amazon.com/sp-api/ ; the API models:
https://github.com/amzn/selling-partner-api-models .
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..amazon.errors import (
    AlreadyShippedError,
    AuthError,
    InvalidInputError,
    NotFoundError,
    SpApiError,
    ThrottledError,
    TransientError,
)
from ..amazon.mapping import parse_api_time, ship_date_iso
from ..amazon.sites import LWA_TOKEN_URL, REGION_HOSTS, SITES, get_site, marketplace_id, site_for_marketplace
from ..ratelimit import RateLimiter

if TYPE_CHECKING:
    import requests

    from ..amazon.client import SpApiClient
    from ..sandbox.spapi import SpApiEmulator

__all__ = [
    "LWA_TOKEN_URL", "REGION_HOSTS", "SITES", "AlreadyShippedError", "AuthError", "InvalidInputError",
    "NotFoundError", "RateLimiter", "SpApiClient", "SpApiEmulator", "SpApiError", "ThrottledError",
    "TransientError", "connect_account", "get_site", "marketplace_id", "parse_api_time", "ship_date_iso",
    "site_for_marketplace",
]


def connect_account(*, account: str, endpoint: str, refresh_token: str, client_id: str, client_secret: str,
                    token_url: str = LWA_TOKEN_URL, session: requests.Session | None = None,
                    limiter: RateLimiter | None = None, timeout: tuple[float, float] = (5, 30),
                    max_attempts: int = 5, backoff_base: float = 1.0,
                    backoff_max: float = 30.0) -> SpApiClient:
    """The :class:`SpApiClient` of one seller account: an LWA token provider for its refresh token
    (``token_url``: Amazon's, or an emulator's ``/auth/o2/token``) and ``limiter`` (default: a
    fresh rate limiter with the core's quotas). ``endpoint`` is a region host
    (:data:`REGION_HOSTS`) or an emulator's URL; ``session`` carries the SP-API requests (the
    token provider has its own). The back-off settings apply to both."""
    import requests

    from ..amazon.auth import LwaTokenProvider
    from ..amazon.client import SpApiClient

    tokens = LwaTokenProvider(token_url, refresh_token, client_id, client_secret, session=requests.Session(),
                              backoff_base=backoff_base, backoff_max=backoff_max)
    return SpApiClient(account=account, endpoint=endpoint, tokens=tokens,
                       limiter=limiter if limiter is not None else RateLimiter(), session=session,
                       timeout=timeout, max_attempts=max_attempts, backoff_base=backoff_base,
                       backoff_max=backoff_max)


def __getattr__(name: str) -> Any:  # the client pulls in requests, the emulator the sandbox
    if name == "SpApiClient":
        from ..amazon.client import SpApiClient

        return SpApiClient
    if name == "SpApiEmulator":
        from ..sandbox.spapi import SpApiEmulator

        return SpApiEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
