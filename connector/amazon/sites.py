"""The Amazon site table: site code -> marketplace id, SP-API region, currency, country.

THE one list of Amazon sites: configuration validation, the site rules, the order mapping, the
SP-API emulator and its seed orders all read it. Marketplace ids and regional hosts are Amazon's
published values (docs/amazon-sp-api.md#regions-and-marketplaces). The site code is the
connector's own short name (``UK``, not ``GB``); ``country`` is the ISO 3166 code of the site's home country.

:data:`BUILTIN` holds Amazon's sites. A site Amazon opens later is added from the configuration:
a ``site_rules`` block that names a new code with its ``marketplace_id``, ``region``,
``currency`` and ``country`` extends the table (:meth:`SiteTable.extended`), and from then on it
is polled, ruled and shipped like any other.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any


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

IDENTITY_FIELDS = ("marketplace_id", "region", "currency", "country")
"""What a ``site_rules`` block needs to add a site to the table."""
REGIONS = ("na", "eu", "fe")


class SiteTable(Mapping[str, Site]):
    """Sites by code (``GB`` is read as ``UK``), and by marketplace id."""

    def __init__(self, sites: Iterable[Site]) -> None:
        self._sites: dict[str, Site] = {}
        self._by_marketplace: dict[str, Site] = {}
        for site in sites:
            if site.code in self._sites or site.marketplace_id in self._by_marketplace:
                raise ValueError(f"site {site.code} ({site.marketplace_id}) is in the site table twice")
            if site.region not in REGIONS:
                raise ValueError(f"site {site.code}: region must be one of {', '.join(REGIONS)}")
            self._sites[site.code] = site
            self._by_marketplace[site.marketplace_id] = site

    def __getitem__(self, code: str) -> Site:
        return self._sites[_key(code)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sites)

    def __len__(self) -> int:
        return len(self._sites)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and _key(code) in self._sites

    def get_site(self, code: str) -> Site:
        """The :class:`Site` for a code; ValueError naming the known ones."""
        try:
            return self[code]
        except KeyError:
            raise ValueError(f"unknown Amazon site {code!r}; known: {', '.join(self._sites)}") from None

    def for_marketplace(self, marketplace_id: str) -> Site:
        """The site of a marketplace id; ValueError if the table has none."""
        site = self._by_marketplace.get(marketplace_id)
        if site is None:
            raise ValueError(f"unknown Amazon marketplace id {marketplace_id!r}")
        return site

    def extended(self, site_rules: Mapping[str, Mapping[str, Any]] | None) -> SiteTable:
        """This table plus every site a ``site_rules`` configuration section defines (a block for
        a code the table lacks, with the :data:`IDENTITY_FIELDS`). Identity fields on a known
        site are refused: Amazon's marketplace ids do not change per seller."""
        added = []
        for code, block in (site_rules or {}).items():
            given = [f for f in IDENTITY_FIELDS if (block or {}).get(f) is not None]
            if code in self:
                if given:
                    raise ValueError(f"site_rules.{code}: {', '.join(given)} of a known Amazon site cannot "
                                     "be changed")
                continue
            missing = [f for f in IDENTITY_FIELDS if f not in given]
            if missing:
                raise ValueError(f"site_rules.{code}: a new site needs {', '.join(missing)}")
            added.append(Site(_key(code), str(block["marketplace_id"]), str(block["region"]),
                              str(block["currency"]).upper(), str(block["country"]).upper()))
        return SiteTable([*self._sites.values(), *added]) if added else self


def _key(code: str) -> str:
    key = str(code).strip().upper()
    return "UK" if key == "GB" else key


BUILTIN = SiteTable(_SITES)
"""Amazon's own sites."""
SITES = BUILTIN

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
    """The built-in :class:`Site` for a code (``"UK"``; ``"GB"`` is accepted as an alias)."""
    return BUILTIN.get_site(code)


def site_for_marketplace(mid: str) -> str:
    """Built-in site code (``"DE"``) for a marketplace id (``"A1PA6795UKMFR9"``); ValueError if unknown."""
    return BUILTIN.for_marketplace(mid).code


def marketplace_id(site: str) -> str:
    return get_site(site).marketplace_id


def endpoint_for_site(site: str) -> str:
    """The production SP-API host serving a built-in site."""
    return REGION_HOSTS[get_site(site).region]
