"""Amazon sites as data: site code -> marketplace id, SP-API region, currency, destination country.

Marketplace ids from spapi.md §1.3; regions and hosts from spapi.md §1.2. The site code is the
connector's own short name (``UK``, not ``GB``); ``country`` is the ISO 3166 code of the site.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Site:
    code: str
    marketplace_id: str
    region: str  # na | eu | fe
    currency: str  # ISO 4217
    country: str  # ISO 3166-1 alpha-2


_SITES = (
    # North America
    Site("US", "ATVPDKIKX0DER", "na", "USD", "US"),
    Site("CA", "A2EUQ1WTGCTBG2", "na", "CAD", "CA"),
    Site("MX", "A1AM78C64UM0Y8", "na", "MXN", "MX"),
    Site("BR", "A2Q3Y263D00KWC", "na", "BRL", "BR"),
    # Europe (the EU endpoint also serves the Middle East, Turkey, India and South Africa)
    Site("UK", "A1F83G8C2ARO7P", "eu", "GBP", "GB"),
    Site("DE", "A1PA6795UKMFR9", "eu", "EUR", "DE"),
    Site("FR", "A13V1IB3VIYZZH", "eu", "EUR", "FR"),
    Site("IT", "APJ6JRA9NG5V4", "eu", "EUR", "IT"),
    Site("ES", "A1RKKUPIHCS9HS", "eu", "EUR", "ES"),
    Site("NL", "A1805IZSGTT6HS", "eu", "EUR", "NL"),
    Site("SE", "A2NODRKZP88ZB9", "eu", "SEK", "SE"),
    Site("PL", "A1C3SOZRARQ6R3", "eu", "PLN", "PL"),
    Site("BE", "AMEN7PMS3EDWL", "eu", "EUR", "BE"),
    Site("IE", "A28R8C7NBKEWEA", "eu", "EUR", "IE"),
    Site("TR", "A33AVAJ2PDY3EV", "eu", "TRY", "TR"),
    Site("AE", "A2VIGQ35RCS4UG", "eu", "AED", "AE"),
    Site("SA", "A17E79C6D8DWNP", "eu", "SAR", "SA"),
    Site("EG", "ARBP9OOSHTCHU", "eu", "EGP", "EG"),
    Site("IN", "A21TJRUUN4KGV", "eu", "INR", "IN"),
    Site("ZA", "AE08WJ6YKNBMC", "eu", "ZAR", "ZA"),
    # Far East
    Site("JP", "A1VC38T7YXB528", "fe", "JPY", "JP"),
    Site("AU", "A39IBJ37TRP1C6", "fe", "AUD", "AU"),
    Site("SG", "A19VAU5U5O7RUS", "fe", "SGD", "SG"),
)

SITES: dict[str, Site] = {s.code: s for s in _SITES}
_BY_MARKETPLACE: dict[str, Site] = {s.marketplace_id: s for s in _SITES}

REGION_HOSTS: dict[str, str] = {
    "na": "https://sellingpartnerapi-na.amazon.com",
    "eu": "https://sellingpartnerapi-eu.amazon.com",
    "fe": "https://sellingpartnerapi-fe.amazon.com",
}
# Amazon's static sandbox (canned request/response pairs); not the connector's own emulator.
SANDBOX_REGION_HOSTS: dict[str, str] = {
    region: host.replace("https://", "https://sandbox.") for region, host in REGION_HOSTS.items()
}

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"


def get_site(code: str) -> Site:
    """The :class:`Site` for a site code (``"UK"``; ``"GB"`` is accepted as an alias)."""
    key = code.strip().upper()
    if key == "GB":
        key = "UK"
    try:
        return SITES[key]
    except KeyError:
        raise ValueError(f"unknown Amazon site {code!r}; known: {', '.join(SITES)}") from None


def site_for_marketplace(mid: str) -> str:
    """Site code (``"DE"``) for a marketplace id (``"A1PA6795UKMFR9"``); ValueError if unknown."""
    found = _BY_MARKETPLACE.get(mid)
    if found is None:
        raise ValueError(f"unknown Amazon marketplace id {mid!r}")
    return found.code


def marketplace_id(site: str) -> str:
    return get_site(site).marketplace_id


def region(site: str) -> str:
    return get_site(site).region


def currency(site: str) -> str:
    return get_site(site).currency


def endpoint_for_site(site: str) -> str:
    """The production SP-API host serving a site."""
    return REGION_HOSTS[get_site(site).region]
