"""Deterministic seed orders for the SP-API emulator, in the exact Orders v2026-01-01 ``Order`` shape.

``seed_orders(seller, marketplaces, count, seed, now)`` always returns the same orders for the
same arguments. Orders are spread round-robin over the given sites; the special cases below are
deterministic fractions of ``count`` (at least one each when ``count`` allows; with ``count=60``
at least two each), shuffled over the orders:

==================  =====  ===================================================================
role                share  what the order looks like
==================  =====  ===================================================================
partial             5 %    PARTIALLY_SHIPPED, 2-3 lines, line 1 already in package ``"1"``
shipped             4 %    SHIPPED, every line in package ``"1"``
cancelled           4 %    CANCELLED (cancellationExecution by the buyer)
afn                 4 %    fulfilled by AMAZON (UNSHIPPED: a client must filter ``fulfilledBy``)
cancel_request      5 %    UNSHIPPED, one line with ``cancellation.cancellationRequest`` BUYER
unknown_sku         4 %    UNSHIPPED, one line with SKU ``DISCONTINUED-SKU-9``
incomplete_address  5 %    UNSHIPPED, ``name`` and ``addressLine1`` empty (city + postcode only)
non_latin           8 %    Japanese / Cyrillic (Bulgaria) address, or a non-Latin buyer name
==================  =====  ===================================================================

Every other order is UNSHIPPED and MERCHANT-fulfilled; about 30 % of them have 2-3 lines with
quantities above one. Order totals (``proceeds.grandTotal``, items + shipping) of most actionable
orders sit just below / at / just above the thresholds the site rules check (per site, in the
site's currency, most important first: US 5 / 800 / 25 USD, UK 5 / 135 GBP, CA 20 CAD, EU 150
EUR, MX 850 MXN = 50 USD at an assumed 17 MXN/USD, JP 1000 JPY, DE/FR/ES small-order VTR limits).
Orders delivered into the EU whose goods (without shipping) are worth at most 150 EUR carry
``iossNumber`` on every item, whatever the site.
Addresses include German umlauts, Polish and Czech diacritics, French/Spanish accents, Japanese
and Cyrillic. All names are synthetic ("Test Buyer 17", "テスト 太郎"); phone numbers are fictional.

``daily_orders(seller, marketplaces, count, seed, day, at)`` is the daily order stream of the
emulator's ``orders_per_day`` option: ``count`` new orders created (and last updated) at ``at``, the
end of simulated day ``day``, deterministic from the seed and the day. They are new: UNSHIPPED, with
no history (no partial, shipped or cancelled roles), a few AFN orders, buyer cancel requests,
unknown SKUs, incomplete and non-Latin addresses at small shares (:data:`DAILY_ROLES`), natural
prices, 30 % with several lines.

Neither marks an item as enrolled in Transparency: :func:`mark_transparency` adds the item-level
``programs: ["TRANSPARENCY"]`` to the items of listed SKUs (the emulator's ``transparency_skus``),
so every other order stays exactly as seeded.
"""
from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, Decimal
from typing import Any

from ..amazon.sites import BUILTIN, SiteTable

# Amazon's marketplace ids (site code -> marketplace id), as published at
# https://developer-docs.amazon.com/sp-api/docs/marketplace-ids
MARKETPLACE_IDS: dict[str, str] = {
    "US": "ATVPDKIKX0DER", "CA": "A2EUQ1WTGCTBG2", "MX": "A1AM78C64UM0Y8", "BR": "A2Q3Y263D00KWC",
    "UK": "A1F83G8C2ARO7P", "DE": "A1PA6795UKMFR9", "FR": "A13V1IB3VIYZZH", "IT": "APJ6JRA9NG5V4",
    "ES": "A1RKKUPIHCS9HS", "NL": "A1805IZSGTT6HS", "SE": "A2NODRKZP88ZB9", "PL": "A1C3SOZRARQ6R3",
    "BE": "AMEN7PMS3EDWL", "IE": "A28R8C7NBKEWEA", "TR": "A33AVAJ2PDY3EV", "AE": "A2VIGQ35RCS4UG",
    "SA": "A17E79C6D8DWNP", "EG": "ARBP9OOSHTCHU", "IN": "A21TJRUUN4KGV", "ZA": "AE08WJ6YKNBMC",
    "JP": "A1VC38T7YXB528", "AU": "A39IBJ37TRP1C6", "SG": "A19VAU5U5O7RUS",
}

# The SKUs of config/catalog.sandbox.csv (hard-coded: the emulator must not depend on that file),
# with a plausible selling price in USD.
_PRODUCTS: tuple[tuple[str, str, Decimal], ...] = (
    ("PHONE-CASE-01", "Silicone phone case", Decimal("6.99")),
    ("USB-CABLE-1M", "USB-C charging cable 1m", Decimal("5.49")),
    ("EARBUDS-BT5", "Bluetooth earbuds", Decimal("24.99")),
    ("LED-STRIP-5M", "LED light strip 5m", Decimal("13.99")),
    ("YOGA-MAT-6MM", "Yoga mat 6mm", Decimal("19.99")),
    ("SOCKS-5PK", "Cotton socks 5 pairs", Decimal("8.99")),
    ("KEYCHAIN-MINI", "Metal keychain", Decimal("2.49")),
    ("WATCH-BAND-22", "Silicone watch band 22mm", Decimal("4.99")),
    ("POWERBANK-10K", "Power bank 10000mAh", Decimal("22.99")),
    ("DRESS-SUMMER-M", "Summer dress size M", Decimal("29.99")),
    ("CAMERA-LENS-KIT", "Phone camera lens kit", Decimal("35.99")),
    ("DESK-LAMP-LED", "LED desk lamp", Decimal("42.99")),
)
SEED_SKUS: tuple[str, ...] = tuple(p[0] for p in _PRODUCTS)
UNKNOWN_SKU = "DISCONTINUED-SKU-9"
IOSS_NUMBER = "IM2760000742"
MXN_PER_USD_ASSUMED = Decimal("17")
# The item-level program of an item enrolled in Transparency (OrderItem.programs in Orders v2026-01-01)
TRANSPARENCY_PROGRAM = "TRANSPARENCY"

ROLES: tuple[tuple[str, float], ...] = (
    ("partial", 0.05), ("shipped", 0.04), ("cancelled", 0.04), ("afn", 0.04),
    ("cancel_request", 0.05), ("unknown_sku", 0.04), ("incomplete_address", 0.05),
    ("non_latin", 0.08),
)
DAILY_ROLES: tuple[tuple[str, float], ...] = (
    ("afn", 0.04), ("cancel_request", 0.03), ("unknown_sku", 0.02), ("incomplete_address", 0.03),
    ("non_latin", 0.08),
)
_MULTI_ITEM_SHARE = 0.3
_THRESHOLD_SHARE = 0.75
_EU_COUNTRIES = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO "
                          "SE SI SK".split())

# An address: (addressLine1, addressLine2, city, stateOrRegion, postalCode, countryCode, name style)
_Addr = tuple[str, str, str, str, str, str, str]

_ADDRESSES: dict[str, tuple[_Addr, ...]] = {
    "US": (("100 Test Street", "Apt 4", "Seattle", "WA", "98101", "US", "en"),
           ("42 Sample Avenue", "", "Austin", "TX", "73301", "US", "en"),
           ("7 Example Road", "", "Springfield", "IL", "62701", "US", "en"),
           ("1 Demo Boulevard", "Suite 200", "Miami", "FL", "33101", "US", "en")),
    "CA": (("12 Test Road", "", "Toronto", "ON", "M5V 2T6", "CA", "en"),
           ("88 rue de l'Essai", "App. 3", "Montréal", "QC", "H2X 1Y4", "CA", "fr"),
           ("5 Sample Street", "", "Vancouver", "BC", "V6B 1A1", "CA", "en")),
    "MX": (("Calle Prueba 123", "Col. Centro", "Ciudad de México", "CDMX", "06000", "MX", "es"),
           ("Avenida Ejemplo 45", "", "Querétaro", "QRO", "76000", "MX", "es"),
           ("Calle Muñoz 9", "", "Guadalajara", "JAL", "44100", "MX", "es")),
    "BR": (("Rua Teste, 100", "Apto 12", "São Paulo", "SP", "01234-567", "BR", "pt"),),
    "UK": (("10 Test Lane", "", "London", "", "EC1A 1BB", "GB", "en"),
           ("22 Sample Road", "Flat 2", "Manchester", "Greater Manchester", "M1 1AE", "GB", "en"),
           ("3 Example Close", "", "Cardiff", "", "CF10 1AA", "GB", "en")),
    "DE": (("Teststraße 12", "", "München", "Bayern", "80331", "DE", "de"),
           ("Prüfweg 3", "2. OG", "Köln", "Nordrhein-Westfalen", "50667", "DE", "de"),
           ("ul. Testowa 5", "m. 12", "Łódź", "łódzkie", "90-001", "PL", "pl"),
           ("Musterallee 7", "", "Düsseldorf", "", "40213", "DE", "de"),
           ("Zkušební 7", "", "České Budějovice", "", "370 01", "CZ", "cs"),
           ("Probegasse 5", "Top 4", "Wien", "", "1010", "AT", "de")),
    "FR": (("12 rue de l'Essai", "", "Orléans", "", "45000", "FR", "fr"),
           ("3 avenue du Test", "Bât. B", "Besançon", "", "25000", "FR", "fr"),
           ("8 place Exemple", "", "Nîmes", "", "30000", "FR", "fr")),
    "IT": (("Via Prova 10", "", "Forlì", "FC", "47121", "IT", "it"),
           ("Corso Esempio 5", "Scala B", "Milano", "MI", "20121", "IT", "it")),
    "ES": (("Calle de la Prueba 4", "2º B", "A Coruña", "A Coruña", "15001", "ES", "es"),
           ("Avenida Ejemplo 9", "", "Málaga", "Málaga", "29001", "ES", "es")),
    "NL": (("Teststraat 1", "", "Amsterdam", "", "1011 AB", "NL", "en"),
           ("Voorbeeldweg 22", "", "Den Haag", "", "2511 AA", "NL", "en")),
    "SE": (("Testgatan 3", "", "Göteborg", "", "411 05", "SE", "en"),),
    "PL": (("ul. Próbna 8", "m. 4", "Kraków", "małopolskie", "31-001", "PL", "pl"),
           ("ul. Testowa 15", "", "Gdańsk", "pomorskie", "80-001", "PL", "pl")),
    "BE": (("Rue de l'Essai 4", "", "Liège", "", "4000", "BE", "fr"),),
    "IE": (("1 Test Street", "", "Dublin", "Co. Dublin", "D02 X285", "IE", "en"),),
    "TR": (("Deneme Sokak No:5", "Daire 3", "İstanbul", "İstanbul", "34430", "TR", "en"),),
    "AE": (("Test Street 1", "Villa 2", "Dubai", "Dubai", "00000", "AE", "en"),),
    "SA": (("Test Road 4", "", "Riyadh", "Riyadh", "12211", "SA", "en"),),
    "EG": (("1 Test Street", "", "Cairo", "Cairo", "11511", "EG", "en"),),
    "IN": (("12 Test Nagar", "Sector 5", "Bengaluru", "Karnataka", "560001", "IN", "en"),),
    "ZA": (("1 Test Road", "", "Cape Town", "Western Cape", "8001", "ZA", "en"),),
    "JP": (("丸の内1-1-1", "テストビル 5F", "千代田区", "東京都", "100-0005", "JP", "ja"),
           ("梅田3-1-1", "サンプルマンション 101", "大阪市北区", "大阪府", "530-0001", "JP", "ja"),
           ("栄2-2-2", "", "名古屋市中区", "愛知県", "460-0008", "JP", "ja")),
    "AU": (("1 Test Street", "Unit 3", "Sydney", "NSW", "2000", "AU", "en"),),
    "SG": (("1 Test Road", "#05-01", "Singapore", "", "049483", "SG", "en"),),
}
_CYRILLIC_ADDRESSES: tuple[_Addr, ...] = (
    ("ул. Тестова 1", "ет. 3", "София", "София-град", "1000", "BG", "bg"),
    ("бул. Примерен 15", "", "Пловдив", "Пловдив", "4000", "BG", "bg"),
)
_JA_NAMES = ("テスト 太郎", "テスト 花子", "試験 一郎")
_NAMES = {
    "en": "Test Buyer {n}", "de": "Test Käufer {n}", "pl": "Testowy Kupujący {n}",
    "cs": "Testovací Kupující {n}", "fr": "Client Testé {n}", "es": "Comprador Prueba {n}",
    "it": "Acquirente Prova {n}", "pt": "Comprador Teste {n}", "bg": "Тест Купувач {n}",
    "ru": "Тестовый Покупатель {n}", "zh": "测试买家 {n}",
}
_PHONES = {"US": "+1 206 555 01{n:02d}", "CA": "+1 416 555 01{n:02d}", "GB": "+44 20 7946 0{n:03d}",
           "JP": "+81 3 0000 0{n:03d}"}


@dataclass(frozen=True)
class _Profile:
    """How orders of one site look in the seed (who the site is comes from the site table)."""

    code: str
    marketplace_name: str
    tld: str
    per_usd: Decimal  # units of the site currency per USD (only to make prices plausible)
    decimals: int
    thresholds: tuple[tuple[Decimal, Decimal], ...]  # (threshold, "just below/above" step)
    id_prefixes: tuple[str, ...]


@dataclass(frozen=True)
class _Site:
    """A site of the table with its seed profile."""

    code: str
    marketplace_id: str
    currency: str
    country: str
    profile: _Profile

    def __getattr__(self, name: str) -> Any:
        return getattr(self.profile, name)


def _t(*pairs: tuple[str, str]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(v), Decimal(s)) for v, s in pairs)


_C, _E = "0.01", "1"
_PROFILES: dict[str, _Profile] = {s.code: s for s in (
    _Profile("US", "Amazon.com", "com", Decimal("1"), 2,
          _t(("5", _C), ("800", _C), ("25", _C)), ("111", "112", "113", "114")),
    _Profile("CA", "Amazon.ca", "ca", Decimal("1.37"), 2, _t(("20", _C)), ("701", "702")),
    _Profile("MX", "Amazon.com.mx", "com.mx", MXN_PER_USD_ASSUMED, 2, _t(("850", "50")), ("701", "702")),
    _Profile("BR", "Amazon.com.br", "com.br", Decimal("5.5"), 2, (), ("701",)),
    _Profile("UK", "Amazon.co.uk", "co.uk", Decimal("0.79"), 2,
          _t(("5", _C), ("135", _C)), ("202", "203", "204", "205", "206")),
    _Profile("DE", "Amazon.de", "de", Decimal("0.92"), 2,
          _t(("150", _C), ("20", _C)), ("302", "303", "304", "305", "306")),
    _Profile("FR", "Amazon.fr", "fr", Decimal("0.92"), 2,
          _t(("150", _C), ("10", _C)), ("402", "403", "404", "405")),
    _Profile("IT", "Amazon.it", "it", Decimal("0.92"), 2, _t(("150", _C)), ("403", "404", "405", "406")),
    _Profile("ES", "Amazon.es", "es", Decimal("0.92"), 2,
          _t(("150", _C), ("15", _C)), ("404", "405", "406", "407")),
    _Profile("NL", "Amazon.nl", "nl", Decimal("0.92"), 2, _t(("150", _C)), ("402", "407")),
    _Profile("SE", "Amazon.se", "se", Decimal("10.5"), 2, (), ("402", "403")),
    _Profile("PL", "Amazon.pl", "pl", Decimal("4.0"), 2, (), ("402", "405")),
    _Profile("BE", "Amazon.com.be", "com.be", Decimal("0.92"), 2, _t(("150", _C)), ("402", "406")),
    _Profile("IE", "Amazon.ie", "ie", Decimal("0.92"), 2, _t(("150", _C)), ("402", "403")),
    _Profile("TR", "Amazon.com.tr", "com.tr", Decimal("40"), 2, (), ("028",)),
    _Profile("AE", "Amazon.ae", "ae", Decimal("3.67"), 2, (), ("405", "406")),
    _Profile("SA", "Amazon.sa", "sa", Decimal("3.75"), 2, (), ("405", "406")),
    _Profile("EG", "Amazon.eg", "eg", Decimal("49"), 2, (), ("405",)),
    _Profile("IN", "Amazon.in", "in", Decimal("84"), 2, (), ("402", "403", "404", "405", "406", "407")),
    _Profile("ZA", "Amazon.co.za", "co.za", Decimal("18"), 2, (), ("405",)),
    _Profile("JP", "Amazon.co.jp", "co.jp", Decimal("150"), 0, _t(("1000", _E)), ("249", "250", "503")),
    _Profile("AU", "Amazon.com.au", "com.au", Decimal("1.5"), 2, (), ("249", "250")),
    _Profile("SG", "Amazon.sg", "sg", Decimal("1.35"), 2, (), ("249", "250")),
)}
_EUR_PER_USD = Decimal("0.92")


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(minor: int, site: _Site) -> dict[str, str]:
    amount = Decimal(minor).scaleb(-site.decimals)
    return {"amount": f"{amount:.{site.decimals}f}", "currencyCode": site.currency}


def _site(value: str, sites: SiteTable) -> _Site:
    """A site of the table (by code or marketplace id) with its seed profile; a site the seed has
    no profile for (one the configuration added) gets plain orders in its currency and country."""
    key = value.strip()
    try:
        site = sites[key] if key in sites else sites.for_marketplace(key)
    except ValueError:
        raise ValueError(f"unknown Amazon site or marketplace id {value!r}; known sites: "
                         f"{', '.join(sites)}") from None
    profile = _PROFILES.get(site.code) or _Profile(
        site.code, f"Amazon {site.code}", site.code.lower(), Decimal("1"), 0 if site.currency == "JPY" else 2,
        (), ("405",))
    return _Site(site.code, site.marketplace_id, site.currency, site.country, profile)


def _asin(sku: str) -> str:
    rnd = random.Random("asin:" + sku)
    return "B0" + "".join(rnd.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8))


def _role_plan(count: int, rng: random.Random) -> list[str]:
    roles: list[str] = []
    for role, share in ROLES:
        roles += [role] * max(1, round(count * share))
    roles = roles[:count]
    roles += ["normal"] * (count - len(roles))
    rng.shuffle(roles)
    return roles


def _line_quantities(n_lines: int, multi: bool, rng: random.Random) -> list[int]:
    if not multi:
        return [rng.choice((1, 1, 1, 2))]
    qtys = [rng.randint(1, 3) for _ in range(n_lines)]
    if max(qtys) < 2:
        qtys[rng.randrange(n_lines)] = rng.randint(2, 4)
    return qtys


def _unit_minor(price_usd: Decimal, site: _Site) -> int:
    local = price_usd * site.per_usd
    if site.decimals == 0:  # JPY: 1,980-style prices
        return int((local / 10).to_integral_value(ROUND_CEILING) * 10 - 20) or 10
    return max(1, int((local.to_integral_value(ROUND_CEILING) - Decimal("0.01")).scaleb(site.decimals)))


def _allocate(target: int, weights: list[int], qtys: list[int]) -> list[tuple[int, int]]:
    """Split ``target`` minor units over lines: (unit price, shipping) each, summing exactly."""
    total_weight = sum(w * q for w, q in zip(weights, qtys, strict=True))
    out: list[tuple[int, int]] = []
    used = 0
    for i, (w, q) in enumerate(zip(weights, qtys, strict=True)):
        if i < len(qtys) - 1:
            share = target * w * q // total_weight
            unit = max(1, share // q)
            out.append((unit, 0))
            used += unit * q
        else:
            rest = target - used
            unit = max(1, rest // q)
            out.append((unit, rest - unit * q))
    return out


class _Builder:
    def __init__(self, seller: str, seed: int | str, now: datetime) -> None:
        self.rng = random.Random(f"mfn-sandbox-seed:{seed}:{seller}")
        self.now = now
        self.seen_ids: set[str] = set()
        self.non_latin_seen = 0
        self.address_cursor: dict[str, int] = {}

    def order_id(self, site: _Site) -> str:
        while True:
            oid = (f"{self.rng.choice(site.id_prefixes)}-{self.rng.randrange(10**7):07d}-"
                   f"{self.rng.randrange(10**7):07d}")
            if oid not in self.seen_ids:
                self.seen_ids.add(oid)
                return oid

    def item_id(self) -> str:
        while True:
            iid = f"{self.rng.randrange(10**13, 10**14)}"
            if iid not in self.seen_ids:
                self.seen_ids.add(iid)
                return iid

    def address(self, site: _Site, role: str, n: int) -> tuple[dict[str, str], str]:
        """(deliveryAddress, buyer name)."""
        pool = _ADDRESSES.get(site.code) or (
            ("1 Test Street", "", "Test City", "", "1000", site.country, "en"),)
        name_style_override = None
        if role == "non_latin":
            k = self.non_latin_seen
            self.non_latin_seen += 1
            if site.code == "JP":
                addr = pool[k % len(pool)]
            elif site.code in ("DE", "FR", "IT", "ES", "NL", "BE", "IE", "SE", "PL"):
                addr = _CYRILLIC_ADDRESSES[k % len(_CYRILLIC_ADDRESSES)]
            else:  # a buyer who typed the name in another script; the street stays Latin
                addr = pool[k % len(pool)]
                name_style_override = ("ru", "zh", "ja")[k % 3]
        else:
            cursor = self.address_cursor.get(site.code, 0)
            self.address_cursor[site.code] = cursor + 1
            addr = pool[cursor % len(pool)]
        line1, line2, city, state, postal, country, style = addr
        style = name_style_override or style
        name = _JA_NAMES[n % len(_JA_NAMES)] if style == "ja" else _NAMES[style].format(n=n)
        delivery: dict[str, str] = {"name": name, "addressLine1": line1}
        if line2:
            delivery["addressLine2"] = line2
        delivery["city"] = city
        if state:
            delivery["stateOrRegion"] = state
        delivery["postalCode"] = postal
        delivery["countryCode"] = country
        phone = _PHONES.get(country)
        if phone:
            delivery["phone"] = phone.format(n=n % 100)
        delivery["addressType"] = "RESIDENTIAL"
        if role == "incomplete_address":  # Amazon sometimes sends only city + postcode
            delivery["name"] = ""
            delivery["addressLine1"] = ""
            delivery.pop("addressLine2", None)
            delivery.pop("phone", None)
        return delivery, name

    def tracking(self) -> tuple[str, str]:
        if self.rng.random() < 0.5:
            return "Yun Express", "YT" + "".join(str(self.rng.randrange(10)) for _ in range(16))
        prefix = self.rng.choice(("LA", "LB", "RB", "UA"))
        return "China Post", f"{prefix}{self.rng.randrange(10**9):09d}CN"

    def build(self, n: int, site: _Site, role: str, multi: bool, target: int | None) -> dict[str, Any]:
        rng = self.rng
        order_id = self.order_id(site)
        updated = self.now - timedelta(seconds=rng.randint(300, 3 * 86400 - 3600))
        created = updated - timedelta(seconds=rng.randint(3600 if role in ("partial", "shipped") else 0,
                                                          12 * 3600))
        if role == "partial":
            multi = True
        n_lines = rng.randint(2, 3) if multi else 1
        products = rng.sample(_PRODUCTS, n_lines)
        qtys = _line_quantities(n_lines, multi, rng)
        natural = [_unit_minor(p[2], site) for p in products]
        if target is not None:
            natural_total = sum(u * q for u, q in zip(natural, qtys, strict=True))
            if target > 4 * natural_total:  # big orders: more units, not absurd unit prices
                factor = min(50, target // (2 * natural_total))
                qtys = [q * factor for q in qtys]
            while 10 * sum(qtys) > target and max(qtys) > 1:  # tiny orders: sensible unit prices
                qtys[qtys.index(max(qtys))] -= 1
            prices = _allocate(target, natural, qtys)
            if any(ship < 0 for _, ship in prices):  # a cheap last line: split evenly instead
                prices = _allocate(target, [1] * n_lines, qtys)
        else:
            shipping = _unit_minor(Decimal("3.99"), site) if rng.random() < 0.25 else 0
            prices = [(u, shipping if i == n_lines - 1 else 0) for i, u in enumerate(natural)]
        grand = sum(u * q + s for (u, s), q in zip(prices, qtys, strict=True))
        delivery, name = self.address(site, role, n)
        # Amazon collects the VAT (and sends its IOSS number) for a consignment delivered into the EU
        # whose goods -- without shipping -- are worth at most 150 EUR, whichever Amazon site sold it.
        goods = sum(u * q for (u, _), q in zip(prices, qtys, strict=True))
        eu_value = Decimal(goods).scaleb(-site.decimals) / site.per_usd * _EUR_PER_USD
        ioss = delivery["countryCode"] in _EU_COUNTRIES and eu_value <= Decimal("150")

        items: list[dict[str, Any]] = []
        for i, ((sku, title, _), qty, (unit, ship)) in enumerate(zip(products, qtys, prices, strict=True)):
            if role == "unknown_sku" and i == 0:
                sku, title = UNKNOWN_SKU, "Discontinued item (no longer in the catalog)"
            item_breakdown = [{"type": "ITEM", "subtotal": _money(unit * qty, site)}]
            if ship:
                item_breakdown.append({"type": "SHIPPING", "subtotal": _money(ship, site)})
            fulfilled = 0
            if role == "shipped" or (role == "partial" and i == 0):
                fulfilled = qty
            item: dict[str, Any] = {
                "orderItemId": self.item_id(),
                "quantityOrdered": qty,
                "product": {
                    "asin": _asin(sku), "title": title, "sellerSku": sku,
                    "condition": {"conditionType": "NEW", "conditionSubtype": "NEW", "conditionNote": ""},
                    "price": {"unitPrice": _money(unit, site)},
                },
                "proceeds": {"proceedsTotal": _money(unit * qty + ship, site), "breakdowns": item_breakdown},
                "fulfillment": {"quantityFulfilled": fulfilled,
                                "quantityUnfulfilled": 0 if role == "cancelled" else qty - fulfilled},
            }
            if ioss:
                item["fulfillment"]["shipping"] = {"internationalShipping": {"iossNumber": IOSS_NUMBER}}
                item["tax"] = {"taxCalculationBreakdowns": [{"reportingScheme": "IOSS"}],
                               "taxCollections": [{"model": "MARKETPLACE_FACILITATOR",
                                                   "responsibleParty": "Amazon Services Europe S.a.r.L."}]}
            if role == "cancel_request" and i == 0:
                item["cancellation"] = {"cancellationRequest": {"requester": "BUYER",
                                                                "cancelReason": "Order placed by mistake"}}
            if role == "cancelled":
                item["cancellation"] = {"cancellationExecution": {"cancelledBy": "BUYER",
                                                                  "cancelReason": "Order placed by mistake"}}
            items.append(item)

        status = {"partial": "PARTIALLY_SHIPPED", "shipped": "SHIPPED", "cancelled": "CANCELLED"}.get(
            role, "UNSHIPPED")
        ship_by = (self.now + timedelta(days=rng.randint(1, 3))).replace(hour=23, minute=59, second=59)
        item_total = sum(u * q for (u, _), q in zip(prices, qtys, strict=True))
        ship_total = sum(s for _, s in prices)
        breakdowns = [{"type": "ITEM", "subtotal": _money(item_total, site)}]
        if ship_total:
            breakdowns.append({"type": "SHIPPING", "subtotal": _money(ship_total, site)})
        n_email = f"{n:03d}-{rng.randrange(16**6):06x}"
        order: dict[str, Any] = {
            "orderId": order_id,
            "createdTime": _iso(created),
            "lastUpdatedTime": _iso(updated),
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": site.marketplace_id,
                             "marketplaceName": site.marketplace_name},
            "buyer": {"buyerName": name if role != "incomplete_address" else f"Test Buyer {n}",
                      "buyerEmail": f"test-buyer-{n_email}@marketplace.amazon.{site.tld}"},
            "recipient": {"deliveryAddress": delivery},
            "proceeds": {"grandTotal": _money(grand, site), "breakdowns": breakdowns},
            "fulfillment": {
                "fulfillmentStatus": status,
                "fulfilledBy": "AMAZON" if role == "afn" else "MERCHANT",
                "fulfillmentServiceLevel": "EXPEDITED" if rng.random() < 0.15 else "STANDARD",
                "shipByWindow": {"earliestDateTime": _iso(created), "latestDateTime": _iso(ship_by)},
                "deliverByWindow": {
                    "earliestDateTime": _iso(ship_by + timedelta(days=rng.randint(3, 6))),
                    "latestDateTime": _iso(ship_by + timedelta(days=rng.randint(10, 20)))},
            },
            "orderItems": items,
        }
        if role in ("partial", "shipped"):
            carrier, tracking = self.tracking()
            ship_time = created + (updated - created) / 2
            shipped_items = items if role == "shipped" else items[:1]
            order["packages"] = [{
                "packageReferenceId": "1",
                "createdTime": _iso(ship_time),
                "packageStatus": {"status": "SHIPPED"},
                "carrier": carrier,
                "shipTime": _iso(ship_time),
                "trackingNumber": tracking,
                "packageItems": [{"orderItemId": it["orderItemId"], "quantity": it["quantityOrdered"]}
                                 for it in shipped_items],
            }]
        return order


def seed_orders(seller: str, marketplaces: list[str], count: int, seed: int, now: datetime, *,
                sites: SiteTable = BUILTIN) -> list[dict]:
    """``count`` deterministic v2026-01-01 ``Order`` dicts for ``seller`` over ``marketplaces``.

    ``marketplaces`` are site codes of ``sites`` (``"US"``, ``"UK"``...; marketplace ids are
    accepted too).
    The result depends only on the arguments (``seller`` is mixed into the seed, so two sellers
    get different order ids) and is sorted by ``lastUpdatedTime``, then ``orderId``.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    table = sites
    sites = [_site(m, table) for m in marketplaces]
    if not sites:
        if count:
            raise ValueError("seed_orders needs at least one marketplace")
        return []
    now = now.astimezone(timezone.utc).replace(microsecond=0) if now.tzinfo else now.replace(
        tzinfo=timezone.utc, microsecond=0)
    builder = _Builder(seller, seed, now)
    rng = builder.rng
    roles = _role_plan(count, rng)
    normal = [i for i, r in enumerate(roles) if r == "normal"]
    multi = set(rng.sample(normal, round(len(normal) * _MULTI_ITEM_SHARE)))

    # threshold totals: per site, the first orders that can be shipped get the (below, at, above)
    # combinations of the site's thresholds, most important threshold first
    targets: dict[int, int] = {}
    by_site: dict[str, list[int]] = {}
    for i in range(count):
        if roles[i] not in ("partial", "shipped", "cancelled", "afn"):
            by_site.setdefault(sites[i % len(sites)].code, []).append(i)
    for code, indexes in by_site.items():
        site = _site(code, table)
        combos = [int((value + k * step).scaleb(site.decimals)) for value, step in site.thresholds
                  for k in (-1, 0, 1)]
        n_thr = min(len(combos), math.ceil(len(indexes) * _THRESHOLD_SHARE))
        for i, target in zip(indexes[:n_thr], combos[:n_thr], strict=True):
            targets[i] = target

    orders = [builder.build(i + 1, sites[i % len(sites)], roles[i], i in multi, targets.get(i))
              for i in range(count)]
    orders.sort(key=lambda o: (o["lastUpdatedTime"], o["orderId"]))
    return orders


def daily_orders(seller: str, marketplaces: list[str], count: int, seed: int, day: int, at: datetime, *,
                 sites: SiteTable = BUILTIN) -> list[dict]:
    """``count`` new v2026-01-01 ``Order`` dicts of ``seller`` created at ``at``, simulated day
    ``day`` of the order stream (see the module docstring); the same for the same arguments.
    Sites take turns over the days and orders; buyer names are numbered by day."""
    if count < 0:
        raise ValueError("count must be >= 0")
    table = sites
    site_list = [_site(m, table) for m in marketplaces]
    if not site_list or not count:
        return []
    at = at.astimezone(timezone.utc).replace(microsecond=0) if at.tzinfo else at.replace(
        tzinfo=timezone.utc, microsecond=0)
    builder = _Builder(seller, f"{seed}:day:{day}", at)
    rng = builder.rng
    orders = []
    for i in range(count):
        roll, role = rng.random(), "normal"
        for name, share in DAILY_ROLES:
            if roll < share:
                role = name
                break
            roll -= share
        multi = rng.random() < _MULTI_ITEM_SHARE
        n = day * count + i + 1
        order = builder.build(n, site_list[n % len(site_list)], role, multi, None)
        order["createdTime"] = order["lastUpdatedTime"] = _iso(at)  # new: created right now
        order["fulfillment"]["shipByWindow"]["earliestDateTime"] = _iso(at)
        orders.append(order)
    orders.sort(key=lambda o: o["orderId"])
    return orders


def mark_transparency(order: dict[str, Any], skus: Iterable[str]) -> bool:
    """Add the item-level program ``TRANSPARENCY`` to every item of ``order`` whose ``sellerSku``
    is in ``skus`` (the emulator's ``transparency_skus``); nothing else changes. True when an item
    was marked (marking again is a no-op)."""
    listed = set(skus)
    changed = False
    for item in order.get("orderItems", []):
        programs = item.get("programs") or []
        if item.get("product", {}).get("sellerSku") in listed and TRANSPARENCY_PROGRAM not in programs:
            item["programs"] = [*programs, TRANSPARENCY_PROGRAM]
            changed = True
    return changed


def order_features(order: dict[str, Any]) -> set[str]:
    """The special cases an order shows (for tests and the demo's summary), derived from its data."""
    found: set[str] = set()
    status = order.get("fulfillment", {}).get("fulfillmentStatus")
    found.update({"PARTIALLY_SHIPPED": {"partial"}, "SHIPPED": {"shipped"},
                  "CANCELLED": {"cancelled"}}.get(status, set()))
    if order.get("fulfillment", {}).get("fulfilledBy") == "AMAZON":
        found.add("afn")
    items = order.get("orderItems", [])
    if any(it.get("cancellation", {}).get("cancellationRequest", {}).get("requester") == "BUYER"
           for it in items):
        found.add("cancel_request")
    if any(it.get("product", {}).get("sellerSku") not in SEED_SKUS for it in items):
        found.add("unknown_sku")
    address = order.get("recipient", {}).get("deliveryAddress", {})
    if not address.get("name") or not address.get("addressLine1"):
        found.add("incomplete_address")
    text = " ".join(str(v) for v in address.values())
    if any(ord(ch) >= 0x0400 and not 0x2000 <= ord(ch) < 0x2100 for ch in text):
        found.add("non_latin")
    if len(items) > 1:
        found.add("multi_item")
    if any(it.get("fulfillment", {}).get("shipping", {}).get("internationalShipping", {}).get("iossNumber")
           for it in items):
        found.add("ioss")
    if any(TRANSPARENCY_PROGRAM in (it.get("programs") or ()) for it in items):
        found.add("transparency")
    return found
