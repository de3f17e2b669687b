"""Currency conversion from a rate table held in configuration (the ``fx:`` section).

Site rules compare an order's value with caps in another currency (the MX Buy Shipping cap is
50 USD for an order in MXN; the IOSS cap is 150 EUR for an order in SEK) and the selection
policy compares quotes in CNY with Buy Shipping rates in the site's currency. All of it goes
through one :class:`RateTable`: ``rates[C]`` is the value of one unit of ``C`` in the table's
``base`` currency, so ``{"USD": 1, "EUR": "1.08", "MXN": "0.0588235"}`` reads "1 EUR = 1.08 USD".

Conversions are exact Decimal arithmetic, never rounded: a threshold test must not move a value
across a cap by rounding. Round for display only.

:data:`DEFAULT_RATES` is EXAMPLE data with a date, not a market feed: override it in the
configuration with the rates your business books at::

    fx:
      base: USD            # optional; a different base replaces the default table entirely
      as_of: 2026-11-01    # optional, shown in notes
      rates: {EUR: "1.08", MXN: "0.0588235"}
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from .model import Money

# ISO 4217 codes of the currencies in use (List One of the maintenance agency, SIX, as published in
# 2025: https://www.six-group.com/en/products-services/financial-information/data-standards.html,
# list-one.xml). Left out: the fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW), precious
# metals (XAG, XAU, XPD, XPT), bond-market units (XBA..XBD), XDR, XSU, XUA, and XTS (testing) and
# XXX (no currency): none is money a customs value can be declared in. ANG and BGN stay while
# they are being replaced (by XCG; by EUR).
ISO_4217: frozenset[str] = frozenset("""
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
    SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED
    VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())
"""The currencies a value may be declared in (the catalog's ``declared_currency``)."""


class FxError(ValueError):
    """A currency the table cannot convert (named in the message), or a malformed table."""


@dataclass(frozen=True)
class RateTable:
    base: str
    rates: Mapping[str, Decimal] = field(default_factory=dict)
    as_of: date | None = None
    note: str = ""

    def __post_init__(self) -> None:
        base = self.base.upper()
        parsed: dict[str, Decimal] = {}
        for code, raw in self.rates.items():
            cur = str(code).upper()
            if len(cur) != 3 or not cur.isalpha():
                raise FxError(f"fx.rates: {code!r} is not an ISO 4217 currency code")
            try:
                value = raw if isinstance(raw, Decimal) else Decimal(str(raw))
            except InvalidOperation:
                raise FxError(f"fx.rates.{cur}: {raw!r} is not a number") from None
            if not value.is_finite() or value <= 0:
                raise FxError(f"fx.rates.{cur}: must be a positive number, got {raw!r}")
            parsed[cur] = value
        if base in parsed and parsed[base] != 1:
            raise FxError(f"fx.rates.{base}: the base currency's rate must be 1, got {parsed[base]}")
        parsed[base] = Decimal(1)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "rates", parsed)

    def rate(self, currency: str) -> Decimal:
        """Value of one unit of ``currency`` in the base currency."""
        try:
            return self.rates[currency.upper()]
        except KeyError:
            raise FxError(f"no exchange rate for {currency.upper()} in the fx table (base {self.base}; "
                          f"known: {', '.join(sorted(self.rates))}); add it under fx.rates in the "
                          "configuration") from None

    def convert(self, money: Money, currency: str) -> Money:
        """``money`` in ``currency``, exact (unrounded). Same currency: returned unchanged."""
        target = currency.upper()
        if money.currency == target:
            return money
        amount = money.amount * self.rate(money.currency)
        if target != self.base:
            amount = amount / self.rate(target)
        return Money(amount, target)

    def to_base(self, money: Money) -> Decimal:
        return self.convert(money, self.base).amount

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, *,
                    default: RateTable | None = None) -> RateTable:
        """The table for an ``fx:`` configuration section, over ``default`` (:data:`DEFAULT_RATES`).

        Rates given in the section replace the default's for the same currency; a section whose
        ``base`` differs from the default's replaces the whole table (its rates must be complete).
        """
        default = DEFAULT_RATES if default is None else default
        if not section:
            return default
        if not isinstance(section, Mapping):
            raise FxError("fx: expected a mapping with base / as_of / rates")
        unknown = sorted(set(section) - {"base", "as_of", "rates", "note"})
        if unknown:
            raise FxError(f"fx: unknown key(s) {', '.join(unknown)}")
        base = str(section.get("base") or default.base).upper()
        rates = section.get("rates") or {}
        if not isinstance(rates, Mapping):
            raise FxError("fx.rates: expected a mapping of currency -> value in the base currency")
        as_of = section.get("as_of")
        if isinstance(as_of, str):
            try:
                as_of = date.fromisoformat(as_of)
            except ValueError:
                raise FxError(f"fx.as_of: {as_of!r} is not a date (YYYY-MM-DD)") from None
        note = str(section.get("note") or "from configuration")
        if base != default.base:
            return cls(base, dict(rates), as_of, note)
        return cls(base, {**default.rates, **rates}, as_of or default.as_of, note)


FX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Exchange rates: fx.rates.C is the value of one unit of C in fx.base (default USD). "
                   "Merged over the built-in example table.",
    "properties": {
        "base": {"type": "string", "pattern": r"^[A-Z]{3}$"},
        "as_of": {"type": "string", "format": "date"},
        "note": {"type": "string"},
        "rates": {
            "type": "object",
            "propertyNames": {"pattern": r"^[A-Z]{3}$"},
            "additionalProperties": {"type": ["string", "number"]},
        },
    },
}
"""JSON Schema of the ``fx:`` configuration section (for connector/config.py)."""

# EXAMPLE rates, not a market feed (1 unit = x USD, rounded, dated). Replace them in the ``fx:``
# section with the rates your books use. MXN follows the seed's assumption of 17 MXN per USD
# (connector/sandbox/seed.py: 850 MXN = 50 USD, the MX Buy Shipping cap).
DEFAULT_RATES = RateTable(
    base="USD",
    as_of=date(2026, 11, 1),
    note="EXAMPLE rates shipped with mfn-connector; override them under fx: in the configuration",
    rates={
        "USD": "1", "EUR": "1.08", "GBP": "1.27", "CAD": "0.73", "MXN": "0.0588235",
        "BRL": "0.18", "SEK": "0.095", "PLN": "0.25", "TRY": "0.029", "AED": "0.2723",
        "SAR": "0.2667", "EGP": "0.0205", "INR": "0.012", "JPY": "0.0067", "AUD": "0.66",
        "SGD": "0.74", "ZAR": "0.055", "CNY": "0.14", "HKD": "0.128",
    },
)
