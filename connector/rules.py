"""Site rules and the choice of a label, as pure functions (no I/O, no clock: ``now`` is passed in).

The flow for one order (the README's "How an order flows"; each rule and its source:
docs/site-rules.md), each step a function here:

1. :func:`requirements` -- what Amazon's site rules demand of this order: the tracking level
   (China-origin rule), whether Buy Shipping is allowed (value cap), the IOSS number (EU,
   consignment <= cap), the small-order VTR exclusion and returnless refund, with a note per
   decision.
2. :func:`carrier_rejections` -- before asking for quotes: carriers Amazon does not accept on the
   site, Buy Shipping where it is not allowed, direct labels for an order only Buy Shipping can
   ship (FBM Ship+), labels the ``ioss.missing`` policy does not allow, carriers that cannot pick
   up in the seller's city.
3. :func:`eligibility` -- per quote: every reason to reject it (empty list = eligible), so that a
   HELD order lists the reasons of every rejection.
4. :func:`price_candidate` -- the cost after :class:`Discount` rules, compared in one currency
   (:class:`connector.fx.RateTable`), minus the Buy Shipping premium the seller will pay for its
   protections.
5. :func:`choose_cheapest` -- the built-in choice policy; :func:`select` runs 3-5 for a list of
   quotes with any chooser (the ``mfn_choose_quote`` hook) and returns a :class:`Selection`.

Thresholds are :class:`SiteRules` data (the ``mfn-marketplace-amazon`` plugin registers them from
its ``sites.yaml``), patched by plugins (:class:`SiteRulesPatch`) and the ``site_rules:`` section
of the configuration (:func:`merge_rules`). Comparisons are exact: a value exactly at a cap is
"at most the cap"; "below" is strict.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from .amazon.sites import BUILTIN, IDENTITY_FIELDS, REGIONS, SiteTable
from .fx import FxError, RateTable
from .kit.carrier import TRACKING_LEVELS, CarrierSpec, ServiceSpec
from .model import CatalogItem, Money, Order, Parcel, Quote

TRACKING_RANK: dict[str, int] = {level: i for i, level in enumerate(TRACKING_LEVELS)}
"""``untracked`` < ``tracked`` < ``fully_tracked``."""

MIN_SCANS: dict[str, int] = {"untracked": 0, "tracked": 1, "fully_tracked": 2}
"""Carrier scans Amazon needs for the level (fully tracked: two, including delivery or an attempt)."""

EU_COUNTRIES: frozenset[str] = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"})
"""EU member states."""

IOSS_COUNTRIES: frozenset[str] = EU_COUNTRIES | {"MC"}
"""Where IOSS covers a consignment: the EU VAT area, which takes in Monaco as part of France (VAT
Directive 2006/112/EC, art. 7) and leaves out the territories in :data:`OUTSIDE_VAT_AREA`."""

OUTSIDE_VAT_AREA: dict[str, tuple[str, ...]] = {
    # Postcode prefixes of member states' territories outside the EU VAT area (art. 6): Amazon
    # writes their addresses with the member state's country code.
    "ES": ("35", "38", "51", "52"),  # Canary Islands, Ceuta, Melilla
    "FR": ("97",),  # overseas departments and collectivities (Réunion, Guadeloupe, Saint-Martin...)
    "DE": ("27498", "78266"),  # Heligoland, Büsingen
    "IT": ("22061", "23041"),  # Campione d'Italia, Livigno
    "FI": ("22",),  # Åland
    "GR": ("63086",),  # Mount Athos
}
"""Country -> postcode prefixes (digits only) of the places IOSS does not cover there."""

SHIP_PLUS = "FBM_SHIP_PLUS"
"""The order program of FBM Ship+: Amazon confirms these orders itself and refuses confirmShipment."""



class RulesError(ValueError):
    """Malformed or inconsistent site rules (the message names the site and the field)."""


class _CatalogLike(Protocol):
    def get(self, sku: str) -> CatalogItem | None: ...


# -- money in data -----------------------------------------------------------------------------


def parse_money(value: Any, *, where: str = "") -> Money | None:
    """``None``, a :class:`Money`, ``"150 EUR"`` or ``{amount: "150", currency: EUR}``."""
    if value is None or isinstance(value, Money):
        return value
    money = None
    try:
        if isinstance(value, str):
            amount, currency = value.split()
            money = Money(Decimal(amount), currency.upper())
        elif isinstance(value, Mapping):
            money = Money(Decimal(str(value["amount"])), str(value["currency"]).upper())
    except (ValueError, KeyError, InvalidOperation):
        pass
    if money is not None and money.amount.is_finite() and money.amount >= 0:  # NaN fails every comparison
        return money
    raise RulesError(f"{where or 'money'}: {value!r} is not an amount with a currency, e.g. \"150 EUR\"")


def format_money(money: Money) -> str:
    amount = money.amount
    if amount == amount.to_integral_value():
        amount = amount.quantize(Decimal(1))
    elif amount.as_tuple().exponent < -4:  # type: ignore[operator]
        amount = amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return f"{amount} {money.currency}"


def _versus(value: Money, threshold: Money, fx: RateTable) -> str:
    """``value`` for a note, with its conversion when the threshold is in another currency."""
    if value.currency == threshold.currency:
        return format_money(value)
    return f"{format_money(value)} (= {format_money(fx.convert(value, threshold.currency))})"


def _compare(value: Money, threshold: Money, fx: RateTable) -> int:
    """-1, 0, 1 as ``value`` is below, at or above ``threshold`` (exact, converted into its currency)."""
    amount = fx.convert(value, threshold.currency).amount
    return (amount > threshold.amount) - (amount < threshold.amount)


# -- site rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarrierCodeNote:
    """Where one entry of a site's ``carrier_codes`` comes from: ``source`` (a URL, or
    "configuration") and whether the spelling or the method list is ``unverified`` (a third-party
    copy, or public sources that disagree)."""

    source: str = ""
    unverified: bool = False


@dataclass(frozen=True)
class SiteRules:
    """The rules of one Amazon site (who the site is -- marketplace id, region, currency,
    country -- comes from the site table, :mod:`connector.amazon.sites`).

    Money thresholds are ``None`` when the rule does not apply on the site. ``carrier_codes``
    maps each CarrierCode Amazon accepts on the site (exact, case-sensitive) to the shipping
    methods accepted for it; an empty tuple accepts any method. Each value may be given as that
    list or as a mapping ``{methods: [...], source: "URL", unverified: true}``; the methods are
    stored in ``carrier_codes``, the rest in ``carrier_code_notes`` (code -> :class:`CarrierCodeNote`).
    ``tracked_below`` ``None`` means every order needs a fully tracked service. ``country`` is
    filled in from the site table by :func:`merge_rules`.
    """

    site: str
    country: str = ""
    buy_shipping: bool = False
    buy_shipping_cap: Money | None = None
    tracked_below: Money | None = None
    vtr_exclusion_below: Money | None = None
    returnless_refund_below: Money | None = None
    carrier_codes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    carrier_code_notes: Mapping[str, CarrierCodeNote] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        site = _site_key(self.site)
        object.__setattr__(self, "site", site)
        known = BUILTIN[site].country if site in BUILTIN else site
        object.__setattr__(self, "country", (self.country or known).upper())
        for name in MONEY_FIELDS:
            object.__setattr__(self, name, parse_money(getattr(self, name), where=f"site {site}: {name}"))
        codes: dict[str, tuple[str, ...]] = {}
        notes = dict(self.carrier_code_notes)
        for code, methods in dict(self.carrier_codes).items():
            code = str(code)
            if isinstance(methods, Mapping):
                unknown = sorted(set(methods) - {"methods", "source", "unverified"})
                if unknown:
                    raise RulesError(f"site {site}: carrier_codes.{code}: unknown key(s) "
                                     f"{', '.join(unknown)}; known: methods, source, unverified")
                notes[code] = CarrierCodeNote(str(methods.get("source") or ""),
                                              bool(methods.get("unverified")))
                methods = methods.get("methods", ())
            if isinstance(methods, str) or methods is None:
                raise RulesError(f"site {site}: carrier_codes.{code}: expected a list of shipping methods "
                                 "or a mapping {methods, source, unverified}")
            codes[code] = tuple(str(m) for m in methods)
        object.__setattr__(self, "carrier_codes", codes)
        object.__setattr__(self, "carrier_code_notes", {k: v for k, v in notes.items() if k in codes})

    def accepts(self, carrier_code: str | None, shipping_method: str = "") -> bool:
        """Amazon lists the carrier code here (and the method, when the site lists methods).

        An empty method list accepts any method, and so does a list marked unverified (a
        third-party copy): it counts for :meth:`exact_match` but never rejects a service."""
        if carrier_code is None or carrier_code not in self.carrier_codes:
            return False
        methods = self.carrier_codes[carrier_code]
        note = self.carrier_code_notes.get(carrier_code)
        return not methods or (note is not None and note.unverified) or shipping_method in methods

    def exact_match(self, carrier_code: str | None, shipping_method: str) -> bool:
        """Carrier code AND shipping method are in the site's list (the VTR small-order exclusion)."""
        return bool(carrier_code in self.carrier_codes and shipping_method
                    and shipping_method in self.carrier_codes[carrier_code])

    def unverified_carrier_codes(self) -> tuple[str, ...]:
        """The codes whose spelling or method list the site table marks UNVERIFIED."""
        return tuple(code for code in self.carrier_codes
                     if (note := self.carrier_code_notes.get(code)) is not None and note.unverified)

    @classmethod
    def from_mapping(cls, site: str, data: Mapping[str, Any], *, where: str = "") -> SiteRules:
        """A full SiteRules from data (the plugin's ``sites.yaml`` entry or a configuration block,
        ``where`` its path, e.g. ``site_rules.ZA``; a block's site-table fields, if any, are not
        rules and are skipped here)."""
        data = {k: v for k, v in data.items() if k not in IDENTITY_FIELDS}
        unknown = sorted(set(data) - set(FIELD_NAMES) - {"site"})
        if unknown:
            raise RulesError(f"site {site}: unknown field(s) {', '.join(unknown)}")
        missing = [k for k in REQUIRED_FIELDS if data.get(k) is None]
        if missing:
            raise RulesError(f"{where or f'site {site}'}: a new site needs {', '.join(missing)}")
        return cls(site=site, **{k: v for k, v in data.items() if k != "site"})


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SiteRules)
                                     if f.name not in ("site", "country", "carrier_code_notes"))
MONEY_FIELDS: tuple[str, ...] = ("buy_shipping_cap", "tracked_below", "vtr_exclusion_below",
                                 "returnless_refund_below")
REQUIRED_FIELDS: tuple[str, ...] = ("carrier_codes",)


def _site_key(site: str) -> str:
    key = str(site).strip().upper()
    if key == "GB":
        key = "UK"
    if not (len(key) == 2 and key.isalpha()):
        raise RulesError(f"site {site!r}: expected a two-letter site code such as US or DE")
    return key


class SiteRulesPatch:
    """A partial override of one site's rules: ``SiteRulesPatch("DE", vtr_exclusion_below="25 EUR")``.

    Every field replaces the site's value, except ``carrier_codes``, which merges code by code
    (a code mapped to ``None`` is removed), so a plugin can add one carrier without restating the
    list. A code given again replaces its methods and its note: a plain list is noted as coming
    from the patch (``source`` "configuration" when the patch is a ``site_rules`` block).
    """

    __slots__ = ("site", "source", "fields")

    def __init__(self, site: str, source: str = "", **changes: Any) -> None:
        self.site = _site_key(site)
        self.source = source
        changes = {k: v for k, v in changes.items() if k not in IDENTITY_FIELDS}
        unknown = sorted(set(changes) - set(FIELD_NAMES))
        if unknown:
            raise RulesError(f"site {self.site}: unknown site rule field(s) {', '.join(unknown)}; "
                             f"known: {', '.join(FIELD_NAMES)}")
        for name in MONEY_FIELDS:
            if name in changes:
                changes[name] = parse_money(changes[name], where=f"site {self.site}: {name}")
        self.fields: dict[str, Any] = changes

    def apply(self, rules: SiteRules) -> SiteRules:
        changes = dict(self.fields)
        if "carrier_codes" in changes:
            merged: dict[str, Any] = dict(rules.carrier_codes)
            notes = dict(rules.carrier_code_notes)
            for code, methods in (changes["carrier_codes"] or {}).items():
                notes.pop(code, None)
                if methods is None:
                    merged.pop(code, None)
                    continue
                merged[code] = methods
                if self.source and not isinstance(methods, Mapping):
                    notes[code] = CarrierCodeNote(self.source)
            changes["carrier_codes"] = merged
            changes["carrier_code_notes"] = notes
        return replace(rules, **changes)

    def __repr__(self) -> str:
        return f"SiteRulesPatch({self.site!r}, {', '.join(f'{k}={v!r}' for k, v in self.fields.items())})"


def merge_rules(full: Iterable[SiteRules], patches: Iterable[SiteRulesPatch] = (),
                config_overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                sites: SiteTable = BUILTIN) -> dict[str, SiteRules]:
    """The effective rules per site: registered sites, then plugin patches (in order), then config.

    A site registered twice, a patch for a site nobody registered, or rules for a site the site
    table does not know (``sites``: Amazon's plus those the configuration adds) is an error
    naming it. A configuration block for a site without rules adds them when it is complete (see
    ``REQUIRED_FIELDS``). Each site's ``country`` comes from the table.
    """
    merged: dict[str, SiteRules] = {}
    for rules in full:
        if rules.site in merged:
            raise RulesError(f"site {rules.site} is registered twice; override it with a SiteRulesPatch")
        merged[rules.site] = rules
    for patch in patches:
        if patch.site not in merged:
            raise RulesError(f"site rules patch for unknown site {patch.site}; register the site with a "
                             f"full SiteRules first (known: {', '.join(sorted(merged))})")
        merged[patch.site] = patch.apply(merged[patch.site])
    for site, data in (config_overrides or {}).items():
        key = _site_key(site)
        if not isinstance(data, Mapping):
            raise RulesError(f"site_rules.{site}: expected a mapping of rule fields")
        if key in merged:
            merged[key] = SiteRulesPatch(key, "configuration", **data).apply(merged[key])
        else:
            merged[key] = SiteRules.from_mapping(key, data, where=f"site_rules.{site}")
    for key, rules in merged.items():
        if key not in sites:
            raise RulesError(f"site rules for {key}, which is not in the site table; add "
                             f"{', '.join(IDENTITY_FIELDS)} under site_rules.{key}")
        merged[key] = replace(rules, country=sites[key].country)
    return merged


_MONEY_SCHEMA = {
    "anyOf": [
        {"type": "null"},
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)? [A-Z]{3}$",
         "x-format": "amount and currency, e.g. 150 EUR"},
        {"type": "object", "additionalProperties": False, "required": ["amount", "currency"],
         "properties": {"amount": {"type": ["string", "number"], "minimum": 0,
                                   "pattern": r"^[0-9]+(\.[0-9]+)?$", "x-format": "an amount, e.g. 12.50"},
                        "currency": {"type": "string", "pattern": r"^[A-Z]{3}$"}}},
    ]
}
_METHODS = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}
_CARRIER_CODE = {  # the accepted shipping methods, alone or with their source
    "anyOf": [
        _METHODS,
        {"type": "object", "additionalProperties": False, "required": ["methods"],
         "properties": {"methods": _METHODS, "source": {"type": "string"},
                        "unverified": {"type": "boolean"}}},
    ]
}


def _site_schema(*, patch: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "buy_shipping": {"type": "boolean"},
        "carrier_codes": {"type": "object", "propertyNames": {"minLength": 1},
                          "additionalProperties": {"anyOf": [_CARRIER_CODE, {"type": "null"}]} if patch
                          else _CARRIER_CODE},
    }
    props.update({name: _MONEY_SCHEMA for name in MONEY_FIELDS})
    if patch:  # a configuration block may add a site to the site table
        props.update({
            "marketplace_id": {"type": "string", "pattern": r"^[A-Z0-9]{9,16}$"},
            "region": {"enum": list(REGIONS)},
            "currency": {"type": "string", "pattern": r"^[A-Z]{3}$"},
            "country": {"type": "string", "pattern": r"^[A-Z]{2}$"},
        })
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if not patch:
        schema["required"] = [*REQUIRED_FIELDS, "buy_shipping", *MONEY_FIELDS]
    return schema


SITE_RULES_SCHEMA: dict[str, Any] = _site_schema(patch=False)
"""JSON Schema of one complete site (a ``sites.yaml`` entry)."""

SITE_RULES_CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Per-site overrides of the site rules (site code -> fields); a block for a new site "
                   "adds it to the site table (marketplace_id, region, currency, country) with its rules",
    "propertyNames": {"pattern": r"^[A-Z]{2}$"},
    "additionalProperties": _site_schema(patch=True),
}
"""JSON Schema of the ``site_rules:`` configuration section (for connector/config.py)."""

SITES_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "sites"],
    "properties": {
        "version": {"const": 1},
        "as_of": {"type": "string"},
        "carrier_lists": {"type": "object",  # YAML anchors the sites refer to
                          "additionalProperties": {"type": "object", "additionalProperties": _CARRIER_CODE}},
        "sources": {"type": "object", "additionalProperties": {"type": "string"}},  # YAML anchors too
        "sites": {"type": "object", "propertyNames": {"pattern": r"^[A-Z]{2}$"},
                  "additionalProperties": SITE_RULES_SCHEMA},
    },
}
"""JSON Schema of a marketplace plugin's site rules data file."""


# -- requirements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirements:
    """What the site rules demand of one order (one package), with a note per decision."""

    order_id: str
    site: str
    tracking_level: str  # untracked | tracked | fully_tracked
    min_scans: int
    buy_shipping_allowed: bool
    ioss_number: str  # "" = do not send one
    declared_value: Money  # the parcel's customs value (catalog), in the catalog's currency
    parcel: Parcel
    destination_country: str
    order_value: Money | None  # items + shipping (Amazon's order total), None when Amazon sent none
    goods_value: Money | None  # items only: the consignment's intrinsic value for IOSS
    ship_by: datetime | None = None
    deliver_by: datetime | None = None
    vtr_excluded_if_exact: bool = False
    returnless_refund: bool = False
    skus: tuple[str, ...] = ()
    battery_skus: tuple[str, ...] = ()
    buy_shipping_reason: str = ""  # why Buy Shipping is not allowed ("" when it is)
    ioss_source: str = ""  # amazon | seller | "" (no number sent)
    ioss_missing: str = ""  # IossPolicy.missing when an EU consignment within the cap has no number
    direct_label_reason: str = ""  # why only a label that confirms itself may ship it ("" when any may)
    notes: tuple[str, ...] = ()


def order_value(order: Order, fx: RateTable) -> Money | None:
    """Items + shipping: Amazon's order total (``proceeds.grandTotal``); ``None`` when it sent none.

    The item prices alone are not the order value (shipping is part of it); :func:`requirements`
    uses them only as a lower bound, each rule saying so in its note.
    """
    return order.total


def goods_value(order: Order, fx: RateTable) -> Money | None:
    """The items' prices (shipped and still to ship), without shipping; ``None`` if one is missing."""
    if not order.items or any(i.unit_price is None for i in order.items):
        return None
    total: Money | None = None
    for item in order.items:
        assert item.unit_price is not None
        line = item.unit_price * (item.quantity + item.quantity_shipped)
        total = line if total is None else total + fx.convert(line, total.currency)
    return total


def site_rules_for(order: Order, rules: SiteRules | Mapping[str, SiteRules]) -> SiteRules:
    if isinstance(rules, SiteRules):
        if rules.site != _site_key(order.site):
            raise RulesError(f"order {order.order_id} is on site {order.site}, "
                             f"the rules are for {rules.site}")
        return rules
    try:
        return rules[_site_key(order.site)]
    except KeyError:
        raise RulesError(f"order {order.order_id}: no site rules for site {order.site} (known: "
                         f"{', '.join(sorted(rules))}); add them under site_rules in the "
                         "configuration") from None


@dataclass(frozen=True)
class IossPolicy:
    """The ``ioss:`` configuration section: IOSS follows the destination country, not the site.

    An EU-bound consignment whose goods are worth at most ``cap`` carries Amazon's per-item IOSS
    number, else the seller's own (``accounts[].ioss_number``). With neither, ``missing`` decides:
    ``buy_shipping`` (only Buy Shipping labels, which Amazon files under its own number; held
    ``ioss_missing`` when there is none), ``hold`` (held ``ioss_missing``) or ``ship`` (direct
    labels allowed, with a warning: the buyer may be asked for VAT again or the parcel stopped).
    """

    cap: Money = field(default_factory=lambda: Money(Decimal(150), "EUR"))
    missing: str = "buy_shipping"
    countries: frozenset[str] = IOSS_COUNTRIES

    def __post_init__(self) -> None:
        if self.missing not in IOSS_MISSING_POLICIES:
            raise RulesError(f"ioss.missing must be one of {', '.join(IOSS_MISSING_POLICIES)}, "
                             f"got {self.missing!r}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> IossPolicy:
        section = section or {}
        cap = parse_money(section.get("cap"), where="ioss.cap") or cls().cap
        return cls(cap=cap, missing=str(section.get("missing", "buy_shipping")))


IOSS_MISSING_POLICIES = ("buy_shipping", "hold", "ship")
IOSS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "IOSS for consignments delivered into the EU (whatever the Amazon site)",
    "properties": {
        "cap": {**_MONEY_SCHEMA, "default": "150 EUR",
                "description": "consignments whose goods are worth at most this carry an IOSS number"},
        "missing": {"enum": list(IOSS_MISSING_POLICIES), "default": "buy_shipping",
                    "description": "an EU consignment within the cap with no IOSS number (none from Amazon, "
                                   "none of the seller's own): buy_shipping = only Buy Shipping labels, "
                                   "hold = hold the order (ioss_missing), ship = ship direct with a warning"},
    },
}
"""JSON Schema of the ``ioss:`` configuration section (for connector/config.py)."""


def requirements(order: Order, catalog: _CatalogLike | None, rules: SiteRules | Mapping[str, SiteRules],
                 fx: RateTable, *, parcel: Parcel, ioss: IossPolicy | None = None,
                 seller_ioss: str = "") -> Requirements:
    """The requirements of ``order`` shipped as ``parcel`` under its site's rules.

    ``ioss`` is the IOSS policy, ``seller_ioss`` the seller's own IOSS number for the order's
    account (used when Amazon sent none). Raises :class:`RulesError` (unknown site) or
    :class:`connector.fx.FxError` (a currency the table lacks): the engine holds the order with
    that message.
    """
    site = site_rules_for(order, rules)
    notes: list[str] = []
    value = order_value(order, fx)
    goods = goods_value(order, fx)
    if value is None:
        items = format_money(goods) if goods is not None else "unknown (an item has no price)"
        notes.append(f"order value: Amazon sent no order total; the item prices, {items}, leave out "
                     "shipping, so a rule that needs the value below a threshold takes its strict side")
    destination = (order.ship_to.country_code if order.ship_to and order.ship_to.country_code
                   else site.country).upper()

    # China-origin tracking rule: below the threshold (items + shipping) a tracked service is enough.
    threshold = site.tracked_below
    if threshold is not None and value is not None and _compare(value, threshold, fx) < 0:
        level = "tracked"
        notes.append(f"tracking: order value {_versus(value, threshold, fx)} is below "
                     f"{format_money(threshold)}: a tracked service with >= 1 scan is enough")
    else:
        level = "fully_tracked"
        why = (f"{site.site} has no low-value exception" if threshold is None else
               f"order value {_versus(value, threshold, fx)} is not below {format_money(threshold)}"
               if value is not None else
               f"no order total to show it is below {format_money(threshold)}")
        notes.append(f"tracking: {why}: fully tracked (>= 2 scans incl. delivery or an attempt)")

    # Buy Shipping: offered on the site, and the order at most the cap.
    bs_reason = ""
    cap = site.buy_shipping_cap
    if not site.buy_shipping:
        bs_reason = f"Amazon does not offer Buy Shipping on {site.site}"
    elif cap is not None:
        if value is None and goods is not None and _compare(goods, cap, fx) > 0:
            bs_reason = (f"item prices {_versus(goods, cap, fx)} alone are above the Buy Shipping cap "
                         f"{format_money(cap)} on {site.site}")
        elif value is None:
            bs_reason = f"no order total: cannot show it is within the Buy Shipping cap {format_money(cap)}"
        elif _compare(value, cap, fx) > 0:
            bs_reason = (f"order value {_versus(value, cap, fx)} is above the Buy Shipping "
                         f"cap {format_money(cap)} on {site.site}")
        else:
            notes.append(f"Buy Shipping: order value {_versus(value, cap, fx)} is within "
                         f"the cap {format_money(cap)}")
    if bs_reason:
        notes.append(f"Buy Shipping: not allowed: {bs_reason}")
    elif cap is None:
        notes.append(f"Buy Shipping: allowed (no value cap on {site.site})")

    # FBM Ship+: Amazon answers confirmShipment with a 400 for these orders (it confirms them
    # itself), so a label bought from a carrier directly could be paid for and never confirmed.
    direct_reason = ""
    if any(p.upper() == SHIP_PLUS for p in order.programs):
        direct_reason = ("an FBM Ship+ order: Amazon refuses confirmShipment for it, so only a Buy Shipping "
                         "label (which Amazon confirms itself) can ship it")
        notes.append(f"Ship+: {direct_reason}")

    ioss_number, ioss_source, ioss_missing = _ioss(order, destination, goods, ioss or IossPolicy(),
                                                   seller_ioss, fx, notes)

    vtr_limit, vtr_excluded = site.vtr_exclusion_below, False
    if vtr_limit is not None and value is not None and _compare(value, vtr_limit, fx) < 0:
        vtr_excluded = True
        notes.append(f"VTR: order value {_versus(value, vtr_limit, fx)} is below {format_money(vtr_limit)}: "
                     "excluded from VTR only if the carrier code and shipping method match Amazon's list "
                     "exactly")
    refund_limit, returnless = site.returnless_refund_below, False
    if refund_limit is not None and value is not None and _compare(value, refund_limit, fx) < 0:
        returnless = True
        notes.append(f"returns: order value {_versus(value, refund_limit, fx)} is below "
                     f"{format_money(refund_limit)}: Amazon refunds a return request without the return "
                     "(return address in China)")

    skus = tuple(dict.fromkeys(i.sku for i in order.items if i.quantity > 0))
    battery_skus = tuple(s for s in skus if catalog is not None and (c := catalog.get(s)) is not None
                         and c.has_battery)
    return Requirements(
        order_id=order.order_id, site=site.site, tracking_level=level, min_scans=MIN_SCANS[level],
        buy_shipping_allowed=not bs_reason, ioss_number=ioss_number, declared_value=parcel.declared_value,
        parcel=parcel, destination_country=destination, order_value=value, goods_value=goods,
        ship_by=order.ship_by, deliver_by=order.deliver_by, vtr_excluded_if_exact=vtr_excluded,
        returnless_refund=returnless, skus=skus, battery_skus=battery_skus, buy_shipping_reason=bs_reason,
        ioss_source=ioss_source, ioss_missing=ioss_missing, direct_label_reason=direct_reason,
        notes=tuple(notes))


def _ioss(order: Order, destination: str, goods: Money | None, policy: IossPolicy, seller: str,
          fx: RateTable, notes: list[str]) -> tuple[str, str, str]:
    """(number, source, missing-policy) for the consignment; the IOSS rule is the destination's."""
    numbers = list(dict.fromkeys(i.ioss_number for i in order.items if i.ioss_number))
    amazon = numbers[0] if numbers else ""
    if len(numbers) > 1:
        notes.append(f"IOSS: the items carry {len(numbers)} different IOSS numbers; the first is used")
    if destination not in policy.countries:
        if amazon:
            notes.append(f"IOSS: destination {destination} is outside the EU; Amazon's IOSS number is "
                         "not sent")
        return "", "", ""
    postcode = re.sub(r"\D", "", order.ship_to.postal_code) if order.ship_to else ""
    if postcode and postcode.startswith(OUTSIDE_VAT_AREA.get(destination, ())):
        # e.g. the Canary Islands: import VAT there is not the EU's, so no IOSS number applies
        notes.append(f"IOSS: the postcode puts the consignment to {destination} outside the EU VAT area "
                     "(VAT Directive art. 6): no IOSS number")
        return "", "", ""
    cap = policy.cap
    if amazon:
        # Amazon sends the number only when it collected the VAT under IOSS: it has judged the
        # consignment, on values net of VAT, which the buyer's prices here are not. Not passing it
        # on would charge the buyer VAT twice, so the cap is not applied to Amazon's number.
        value = _versus(goods, cap, fx) if goods is not None else "of unknown value"
        notes.append(f"IOSS: Amazon collected the VAT under IOSS (goods {value} to {destination}): "
                     "Amazon's IOSS number goes to the carrier's customs data")
        return amazon, "amazon", ""
    if goods is not None and _compare(goods, cap, fx) > 0:
        notes.append(f"IOSS: goods {_versus(goods, cap, fx)} to {destination} are above {format_money(cap)}: "
                     "no IOSS number (import VAT is due at the border)")
        return "", "", ""
    within = (f"goods {_versus(goods, cap, fx)} to {destination} are within {format_money(cap)}"
              if goods is not None else f"goods value to {destination} unknown (an item has no price)")
    if seller:
        notes.append(f"IOSS: {within}; Amazon sent no IOSS number: the seller's own number "
                     f"(accounts[].ioss_number of account {order.account or '?'}) is sent")
        return seller, "seller", ""
    action = {"buy_shipping": "only Buy Shipping labels, which Amazon files under its own number",
              "hold": "the order is held (ioss_missing)",
              "ship": "shipped direct without one: the buyer may be charged VAT again or the parcel stopped"}
    notes.append(f"IOSS: {within} but there is no IOSS number (none from Amazon, none of the seller's own); "
                 f"ioss.missing: {policy.missing}: {action[policy.missing]}")
    return "", "", policy.missing


# -- quotes and eligibility --------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteOption:
    """One priced way to ship: a carrier service's quote with the facts eligibility needs.

    ``carrier`` is the carrier plugin's code (``yunexpress``), ``service`` its service code.
    ``handling_fee`` is the fixed per-parcel part of ``price`` when the quote breaks it down
    (rate cards: ``base``); the weight charge is the rest. ``spec``/``service_spec`` are the
    registered CarrierSpec / ServiceSpec (not part of equality).
    """

    carrier: str
    service: str
    price: Money
    tracking_level: str = ""
    transit_days: int | None = None
    promised_delivery: datetime | None = None
    is_buy_shipping: bool = False
    handling_fee: Money | None = None
    chargeable_weight_g: int | None = None
    spec: CarrierSpec | None = field(default=None, compare=False, repr=False)
    service_spec: ServiceSpec | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.carrier, self.service)

    @property
    def label(self) -> str:
        return f"{self.carrier}:{self.service}"

    @classmethod
    def from_quote(cls, quote: Quote, spec: CarrierSpec | None) -> QuoteOption:
        """The option for a carrier's :class:`Quote` (reads ``promised_delivery`` and
        ``handling_fee`` from the quote when it has them)."""
        service = spec.service(quote.service) if spec is not None else None
        return cls(carrier=quote.carrier, service=quote.service, price=quote.price,
                   tracking_level=quote.tracking_level, transit_days=quote.transit_days,
                   promised_delivery=getattr(quote, "promised_delivery", None),
                   is_buy_shipping=bool(spec is not None and spec.confirms_shipment),
                   handling_fee=getattr(quote, "handling_fee", None),
                   chargeable_weight_g=getattr(quote, "chargeable_weight_g", None), spec=spec,
                   service_spec=service)


def tracking_level_of(option: QuoteOption, service: ServiceSpec | None = None) -> str:
    """The lower of the quote's and the service's tracking level; unknown counts as untracked."""
    service = service or option.service_spec
    known = [lvl for lvl in (option.tracking_level, service.tracking_level if service else "") if lvl]
    if not known or any(lvl not in TRACKING_RANK for lvl in known):
        return "untracked"
    return min(known, key=TRACKING_RANK.__getitem__)


def promised_delivery(option: QuoteOption, now: datetime) -> datetime | None:
    if option.promised_delivery is not None:
        return option.promised_delivery
    if option.transit_days is not None:
        return now + timedelta(days=option.transit_days)
    return None


PICKUP_UNKNOWN_POLICIES = ("assume_pickup", "drop_off", "refuse")


def amazon_carrier_code(spec: CarrierSpec, rules: SiteRules | None, site: str) -> str | None:
    """The carrier code to send Amazon for ``spec`` on ``site``: the plugin's code, spelt as the
    site's carrier list spells it when the two differ only in case, spaces, hyphens or
    underscores. The list is what
    Seller Central accepts (an operator corrects it under ``site_rules``), and Amazon may match the
    code exactly; ``None`` when the plugin has no code for the site."""
    code = spec.carrier_code_for(site)
    if code is None or rules is None or code in rules.carrier_codes:
        return code
    folded = _folded(code)
    return next((listed for listed in rules.carrier_codes if _folded(listed) == folded), code)


def _folded(code: str) -> str:
    return re.sub(r"[\s_-]", "", code).casefold()


def carrier_rejections(req: Requirements, spec: CarrierSpec, rules: SiteRules, *, ship_from_city: str = "",
                       ship_from_province: str = "", drop_off: bool = False,
                       pickup_unknown: str = "drop_off") -> list[str]:
    """Reasons not to ask ``spec`` for a quote at all (the carrier-level part of eligibility)."""
    reasons = []
    if spec.confirms_shipment:  # Amazon Buy Shipping: Amazon integrates the carriers it sells
        if not req.buy_shipping_allowed:
            reasons.append(req.buy_shipping_reason
                           or f"Buy Shipping is not allowed for this order on {req.site}")
    else:
        if req.direct_label_reason:
            reasons.append(req.direct_label_reason)
        code = amazon_carrier_code(spec, rules, rules.site)
        if code is None:
            reasons.append(f"Amazon does not accept {spec.label} on {rules.site}")
        elif code not in rules.carrier_codes:
            reasons.append(f"carrier code {code!r} is not in Amazon's list for {rules.site} "
                           "(tracking from a carrier Amazon does not integrate is invalid; "
                           "no silent 'Other')")
    # Like Ship+, a carrier-level rule: no quote of this carrier could be allowed, so it is not
    # asked (a carrier that failed to answer must not keep the order waiting instead of held).
    if req.ioss_missing == "hold" or (req.ioss_missing == "buy_shipping" and not spec.confirms_shipment):
        reasons.append(f"IOSS: no IOSS number for this EU consignment and ioss.missing is {req.ioss_missing}"
                       + (": no direct label" if req.ioss_missing == "buy_shipping" else ""))
    if not drop_off:
        covered = spec.pickup.covers(ship_from_city, ship_from_province)
        where = (", ".join(p for p in (ship_from_city, ship_from_province) if p)
                 or "the (unknown) ship-from city")
        if covered is False:
            reasons.append(f"{spec.label} does not pick up in {where} ({spec.pickup.describe()}; set "
                           "selection.drop_off to hand parcels in)")
        elif covered is None and spec.pickup.kind == "unknown" and pickup_unknown == "refuse":
            reasons.append(f"{spec.label}: pickup coverage unknown for {where} and selection.pickup_unknown "
                           "is refuse")
    return reasons


def pickup_note(spec: CarrierSpec, *, drop_off: bool, pickup_unknown: str) -> str:
    """How the parcel reaches the carrier, for ``quote`` ("" when nothing needs saying)."""
    if drop_off:
        return "handover: drop-off (selection.drop_off)"
    if spec.pickup.kind != "unknown":
        return ""
    if pickup_unknown == "assume_pickup":
        return "handover: pickup coverage unknown; assumed (selection.pickup_unknown: assume_pickup)"
    return "handover: pickup coverage unknown: hand the parcel in (selection.pickup_unknown: drop_off)"


def eligibility(req: Requirements, option: QuoteOption, *, spec: CarrierSpec | None = None,
                service: ServiceSpec | None = None, rules: SiteRules, ship_from_city: str = "",
                ship_from_province: str = "", drop_off: bool | None = None,
                policy: ChoicePolicy | None = None, now: datetime) -> list[str]:
    """Every reason ``option`` cannot ship the order; an empty list means eligible.

    ``spec``/``service`` default to the option's own. Limits a ServiceSpec may declare and that
    are read with defaults: ``max_weight_g`` (None = no limit), ``max_length_cm`` (longest side),
    ``max_dimensions_sum_cm`` (length + width + height), ``allows_battery`` (missing = False: a
    service that does not say it takes batteries does not get them), ``destinations`` (ISO
    countries; empty or missing = any, also read from the CarrierSpec).

    ``policy`` (the ``selection:`` settings) decides pickup coverage nobody has captured and
    whether Amazon's Buy Shipping offers are re-checked against the project's tracking table
    (by default Amazon's answer stands: it offers only services its rules allow for the order).
    """
    policy = policy or ChoicePolicy()
    drop_off = policy.drop_off if drop_off is None else drop_off
    spec = spec or option.spec
    if spec is None:
        return [f"carrier {option.carrier} is not installed"]
    service = service or option.service_spec or spec.service(option.service)
    reasons = carrier_rejections(req, spec, rules, ship_from_city=ship_from_city,
                                 ship_from_province=ship_from_province, drop_off=drop_off,
                                 pickup_unknown=policy.pickup_unknown)
    if service is None and spec.services:
        return [*reasons, f"{spec.label} has no service {option.service}"]
    method = service.amazon_shipping_method if service else ""
    code = amazon_carrier_code(spec, rules, rules.site)
    if not spec.confirms_shipment and code in rules.carrier_codes and not rules.accepts(code, method):
        reasons.append(f"shipping method {method!r} is not in Amazon's list for {code!r} on {rules.site} "
                       f"({', '.join(rules.carrier_codes[code])})")

    level = tracking_level_of(option, service)
    trusted = spec.confirms_shipment and policy.buy_shipping_tracking == "trust"
    if TRACKING_RANK[level] < TRACKING_RANK[req.tracking_level] and not trusted:
        reasons.append(f"tracking level {level} is below the required {req.tracking_level}")

    promised = promised_delivery(option, now)
    if req.deliver_by is not None and promised is not None and promised > req.deliver_by:
        reasons.append(f"promised delivery {promised:%Y-%m-%d} is after the deliver-by date "
                       f"{req.deliver_by:%Y-%m-%d}")

    parcel = req.parcel
    max_weight = getattr(service, "max_weight_g", None)
    if max_weight is not None and parcel.weight_g > max_weight:
        reasons.append(f"parcel weight {parcel.weight_g} g is above the service's maximum {max_weight} g")
    dims = sorted((Decimal(parcel.length_cm), Decimal(parcel.width_cm), Decimal(parcel.height_cm)))
    max_length = getattr(service, "max_length_cm", None)
    if max_length is not None and dims[-1] > Decimal(str(max_length)):
        reasons.append(f"parcel's longest side {dims[-1]} cm is above the service's maximum {max_length} cm")
    max_sum = getattr(service, "max_dimensions_sum_cm", None)
    if max_sum is not None and sum(dims) > Decimal(str(max_sum)):
        reasons.append(f"parcel length + width + height {sum(dims)} cm is above the service's maximum "
                       f"{max_sum} cm")
    if parcel.has_battery and not getattr(service, "allows_battery", False):
        which = f" (SKU {', '.join(req.battery_skus)})" if req.battery_skus else ""
        reasons.append(f"the parcel contains a battery{which}; the service does not declare "
                       "it takes batteries")
    destinations = tuple(getattr(service, "destinations", ()) or getattr(spec, "destinations", ()) or ())
    if destinations and req.destination_country not in destinations:
        reasons.append(f"the service does not deliver to {req.destination_country}")
    return reasons


# -- overrides ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """Per-site / per-SKU rule: ``force`` (only matching options may ship) or ``forbid``.

    ``site``/``sku`` ``None`` match any order; an SKU override applies when the order contains the
    SKU. ``service`` ``None`` matches every service of ``carrier``. Several applicable ``force``
    rules allow the union of what they name.
    """

    action: str  # force | forbid
    carrier: str
    service: str | None = None
    site: str | None = None
    sku: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("force", "forbid"):
            raise RulesError(f"override action must be force or forbid, got {self.action!r}")
        if self.site is not None:
            object.__setattr__(self, "site", _site_key(self.site))

    def applies(self, req: Requirements) -> bool:
        return (self.site is None or self.site == req.site) and (self.sku is None or self.sku in req.skus)

    def matches(self, option: QuoteOption) -> bool:
        return option.carrier == self.carrier and (self.service is None or option.service == self.service)

    def describe(self) -> str:
        scope = " and ".join(s for s in (f"site {self.site}" if self.site else "",
                                         f"SKU {self.sku}" if self.sku else "") if s) or "every order"
        return f"{scope} {self.action}s {self.carrier}{':' + self.service if self.service else ''}"


def override_rejections(req: Requirements, option: QuoteOption, overrides: Sequence[Override]) -> list[str]:
    applicable = [o for o in overrides if o.applies(req)]
    reasons = [f"forbidden: {o.describe()}" for o in applicable if o.action == "forbid" and o.matches(option)]
    forced = [o for o in applicable if o.action == "force"]
    if forced and not any(o.matches(option) for o in forced):
        reasons.append("not forced: " + "; ".join(o.describe() for o in forced))
    return reasons


# -- discounts and cost ------------------------------------------------------------------------

DISCOUNT_KINDS = ("percent", "per_kg", "handling_percent")
DISCOUNT_CHANNELS = ("direct", "buy_shipping")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Discount:
    """A carrier promotion or contract discount on one sales channel, active from ``valid_from``
    to ``valid_until`` (dates in UTC, both inclusive; ``None`` = open-ended).

    ``channel`` is where the offer is made: ``direct`` (labels bought from ``carrier`` itself;
    ``services`` its service codes) or ``buy_shipping`` (the carrier's offer on Amazon Buy
    Shipping, Amazon's online channel; ``carrier`` names who grants it and ``services`` the Buy
    Shipping service ids it applies to, required). An empty ``services`` on ``direct`` means every
    service of the carrier.

    ``value`` is a percentage (``5`` = 5 %) of: the whole price (``percent``), the weight charge
    (``per_kg``: the price minus the quote's handling fee, i.e. the per-kilogram part) or the
    handling fee (``handling_percent``). A quote that does not break out its handling fee gets no
    ``per_kg`` or ``handling_percent`` discount: the part it applies to is unknown, and ``quote``
    says so.
    """

    carrier: str
    kind: str
    value: Decimal
    services: tuple[str, ...] = ()
    valid_from: date | None = None
    valid_until: date | None = None
    sites: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    name: str = ""
    channel: str = "direct"

    def __post_init__(self) -> None:
        who = self.name or self.carrier
        if self.kind not in DISCOUNT_KINDS:
            raise RulesError(f"discount {who}: kind must be one of {', '.join(DISCOUNT_KINDS)}, "
                             f"got {self.kind!r}")
        if self.channel not in DISCOUNT_CHANNELS:
            raise RulesError(f"discount {who}: channel must be one of {', '.join(DISCOUNT_CHANNELS)}, "
                             f"got {self.channel!r}")
        value = Decimal(str(self.value))
        if not (0 <= value <= 100):
            raise RulesError(f"discount {who}: value is a percentage 0..100, got {value}")
        if isinstance(self.services, str):
            object.__setattr__(self, "services", (self.services,))
        if self.channel == "buy_shipping" and not self.services:
            raise RulesError(f"discount {who}: a buy_shipping discount names the Buy Shipping services "
                             "it applies to (services)")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "services", tuple(self.services))
        object.__setattr__(self, "sites", tuple(_site_key(s) for s in self.sites))
        object.__setattr__(self, "skus", tuple(self.skus))

    @property
    def label(self) -> str:
        return self.name or f"{self.carrier} {self.kind} {self.value}% ({self.channel})"

    def active(self, now: datetime) -> bool:
        return not self.window_note(now)

    def window_note(self, now: datetime) -> str:
        """Why the discount is outside its window today ("" when it is inside)."""
        today = now.astimezone(timezone.utc).date()
        if self.valid_from is not None and today < self.valid_from:
            return f"starts on {self.valid_from.isoformat()}"
        if self.valid_until is not None and today > self.valid_until:
            return f"ended on {self.valid_until.isoformat()}"
        return ""

    def matches(self, option: QuoteOption, req: Requirements) -> bool:
        """The discount is for this option's channel, carrier, service, site and SKUs (any date)."""
        if self.channel == "buy_shipping":
            if not option.is_buy_shipping:
                return False
        elif option.is_buy_shipping or option.carrier != self.carrier:
            return False
        return ((not self.services or option.service in self.services)
                and (not self.sites or req.site in self.sites)
                and (not self.skus or any(s in req.skus for s in self.skus)))

    def applies(self, option: QuoteOption, req: Requirements, now: datetime) -> bool:
        return self.matches(option, req) and self.active(now)

    def amount_off(self, option: QuoteOption) -> Money | None:
        """What this discount takes off ``option``'s price; ``None`` when the part is unknown."""
        price, fee = option.price, option.handling_fee
        if fee is not None and fee.currency != price.currency:
            fee = None
        if self.kind == "percent":
            part = price.amount
        elif fee is None:
            return None
        elif self.kind == "handling_percent":
            part = fee.amount
        else:
            part = price.amount - fee.amount
        return Money(max(part, Decimal(0)) * self.value / 100, price.currency)


def discount_lines(option: QuoteOption, discounts: Sequence[Discount], req: Requirements,
                   now: datetime) -> list[tuple[Discount, Money | None]]:
    """The discounts that apply to ``option`` now, each with its amount (``None``: unknown part)."""
    return [(d, d.amount_off(option)) for d in discounts if d.applies(option, req, now)]


def discount_notes(option: QuoteOption, discounts: Sequence[Discount], req: Requirements,
                   now: datetime) -> list[str]:
    """One line per discount meant for ``option``: what it took off, or why it did nothing."""
    notes = []
    for d in discounts:
        if not d.matches(option, req):
            continue
        window = d.window_note(now)
        amount = None if window else d.amount_off(option)
        if window:
            notes.append(f"discount {d.label}: {window}: not applied")
        elif amount is None:
            notes.append(f"discount {d.label}: not applied: the quote does not break out its handling fee")
        else:
            notes.append(f"discount {d.label}: -{format_money(amount)}{_part_of(d, option)}")
    return notes


def _part_of(d: Discount, option: QuoteOption) -> str:
    if d.kind == "percent":
        return ""
    fee = option.handling_fee
    assert fee is not None
    if d.kind == "handling_percent":
        return f" ({d.value}% of the handling fee {format_money(fee)})"
    weight = option.price.amount - fee.amount
    kg = (f" for {Decimal(option.chargeable_weight_g) / 1000} kg chargeable"
          if option.chargeable_weight_g else "")
    return f" ({d.value}% of the weight charge {format_money(Money(weight, fee.currency))}{kg})"


def apply_discounts(option: QuoteOption, discounts: Sequence[Discount], req: Requirements,
                    now: datetime) -> Money:
    """``option``'s price after every applicable discount (each on the undiscounted part, summed),
    rounded half-up to the cent and never below zero."""
    off = sum((m.amount for _, m in discount_lines(option, discounts, req, now) if m is not None), Decimal(0))
    cost = max(option.price.amount - off, Decimal(0)).quantize(_CENT, rounding=ROUND_HALF_UP)
    return Money(cost, option.price.currency)


@dataclass(frozen=True)
class Candidate:
    """An eligible option with its cost: ``cost`` after discounts in the quote's currency,
    ``comparable`` in the fx base currency minus the Buy Shipping premium (what the choice compares)."""

    option: QuoteOption
    cost: Money
    comparable: Money
    notes: tuple[str, ...] = ()


def price_candidate(option: QuoteOption, *, req: Requirements, fx: RateTable, now: datetime,
                    discounts: Sequence[Discount] = (), buy_shipping_premium: Money | None = None,
                    rules: SiteRules | None = None) -> Candidate:
    notes = discount_notes(option, discounts, req, now)
    cost = apply_discounts(option, discounts, req, now)
    comparable = fx.to_base(cost)
    if option.is_buy_shipping and buy_shipping_premium is not None:
        comparable -= fx.to_base(buy_shipping_premium)
        notes.append(f"Buy Shipping premium {format_money(buy_shipping_premium)} taken off for comparison")
    if (req.vtr_excluded_if_exact and rules is not None and option.spec is not None
            and not option.is_buy_shipping):
        method = option.service_spec.amazon_shipping_method if option.service_spec else ""
        exact = rules.exact_match(amazon_carrier_code(option.spec, rules, rules.site), method)
        notes.append("VTR: carrier code and method match Amazon's list exactly: excluded from VTR" if exact
                     else "VTR: no exact carrier code + method match: the order counts toward VTR")
    return Candidate(option, cost, Money(comparable, fx.base), tuple(notes))


def _sort_key(c: Candidate) -> tuple[Any, ...]:
    days = c.option.transit_days
    return (c.comparable.amount, -TRACKING_RANK[tracking_level_of(c.option)],
            days if days is not None else 10**6, not c.option.is_buy_shipping, c.option.carrier,
            c.option.service, c.cost.currency, c.cost.amount)


def choose_cheapest(candidates: Sequence[Candidate], *, req: Requirements | None = None,
                    overrides: Sequence[Override] = ()) -> Candidate | None:
    """The built-in choice: the lowest ``comparable`` cost (after discounts, in the fx base
    currency, Buy Shipping premium deducted). ``None`` when nothing is left.

    Ties break deterministically, whatever the input order: higher tracking level, then fewer
    transit days (unknown last), then Buy Shipping before a direct label, then carrier code and
    service code alphabetically. With ``req``, ``overrides`` drop forbidden / not-forced options
    first (:func:`select` already does this and records why).
    """
    if req is not None and overrides:
        candidates = [c for c in candidates if not override_rejections(req, c.option, overrides)]
    return min(candidates, key=_sort_key, default=None)


# -- selection ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    carrier: str
    service: str
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        where = f"{self.carrier}:{self.service}" if self.service else self.carrier
        return f"{where}: {'; '.join(self.reasons)}"


@dataclass(frozen=True)
class ChoicePolicy:
    """The seller's selection settings (the ``selection:`` configuration section)."""

    discounts: tuple[Discount, ...] = ()
    overrides: tuple[Override, ...] = ()
    buy_shipping_premium: Mapping[str, Money] = field(default_factory=dict)  # site or "*" -> premium
    drop_off: bool = False
    pickup_unknown: str = "drop_off"  # assume_pickup | drop_off | refuse
    buy_shipping_tracking: str = "trust"  # trust | check (Amazon's offers against our tracking table)

    def __post_init__(self) -> None:
        if self.pickup_unknown not in PICKUP_UNKNOWN_POLICIES:
            raise RulesError(f"selection.pickup_unknown must be one of {', '.join(PICKUP_UNKNOWN_POLICIES)}")
        if self.buy_shipping_tracking not in ("trust", "check"):
            raise RulesError("selection.buy_shipping_tracking must be trust or check")

    def premium_for(self, site: str) -> Money | None:
        return self.buy_shipping_premium.get(_site_key(site), self.buy_shipping_premium.get("*"))

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> ChoicePolicy:
        section = section or {}
        premium_raw = section.get("buy_shipping_premium")
        premium: dict[str, Money] = {}
        if isinstance(premium_raw, Mapping):
            for site, value in premium_raw.items():
                key = "*" if site in ("*", "default") else _site_key(site)
                money = parse_money(value, where=f"selection.buy_shipping_premium.{site}")
                if money is not None:
                    premium[key] = money
        elif premium_raw is not None:
            premium["*"] = parse_money(premium_raw, where="selection.buy_shipping_premium")  # type: ignore[assignment]
        discounts = []
        for i, d in enumerate(section.get("discounts") or ()):
            try:
                discounts.append(Discount(
                    carrier=d["carrier"], kind=d["kind"], value=Decimal(str(d["value"])),
                    services=tuple(d.get("services") or ()), name=str(d.get("name") or ""),
                    channel=str(d.get("channel", "direct")),
                    valid_from=_date(d.get("valid_from")), valid_until=_date(d.get("valid_until")),
                    sites=tuple(d.get("sites") or ()), skus=tuple(d.get("skus") or ())))
            except (KeyError, ValueError, InvalidOperation) as exc:
                raise RulesError(f"selection.discounts[{i}]: {exc}") from None
        overrides = []
        for i, o in enumerate(section.get("overrides") or ()):
            try:
                overrides.append(Override(action=o["action"], carrier=o["carrier"], service=o.get("service"),
                                          site=o.get("site"), sku=o.get("sku")))
            except (KeyError, ValueError) as exc:
                raise RulesError(f"selection.overrides[{i}]: {exc}") from None
        return cls(tuple(discounts), tuple(overrides), premium, bool(section.get("drop_off", False)),
                   str(section.get("pickup_unknown", "drop_off")),
                   str(section.get("buy_shipping_tracking", "trust")))


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


_DATE = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$",
         "x-format": "a real date, YYYY-MM-DD"}
SELECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "drop_off": {"type": "boolean", "default": False,
                     "description": "the seller hands parcels in, so carriers' pickup cities do not matter"},
        "pickup_unknown": {"enum": list(PICKUP_UNKNOWN_POLICIES), "default": "drop_off",
                           "description": "a carrier whose pickup coverage is unknown: assume_pickup = treat "
                                          "it as collecting here, drop_off = eligible, the parcel is handed "
                                          "in, refuse = not eligible"},
        "buy_shipping_tracking": {
            "enum": ["trust", "check"], "default": "trust",
            "description": "trust = Amazon's Buy Shipping offers meet its tracking rules for the order; "
                           "check = also apply the project's tracking table to them"},
        "buy_shipping_premium": {
            "anyOf": [_MONEY_SCHEMA, {"type": "object",
                                      "propertyNames": {"pattern": r"^([A-Z]{2}|\*|default)$"},
                                      "additionalProperties": _MONEY_SCHEMA}],
            "description": "what the seller pays at most on top for Buy Shipping's protections, e.g. "
                           "\"1.00 USD\" or per site {default: \"1 USD\", UK: \"0.80 GBP\"}"},
        "discounts": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["carrier", "kind", "value"],
            "properties": {
                "name": {"type": "string"}, "carrier": {"type": "string", "minLength": 1},
                "channel": {"enum": list(DISCOUNT_CHANNELS), "default": "direct",
                            "description": "direct = labels bought from the carrier; buy_shipping = the "
                                           "carrier's offer on Amazon Buy Shipping (services required)"},
                "services": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "kind": {"enum": list(DISCOUNT_KINDS)},
                "value": {"type": ["string", "number"], "minimum": 0, "maximum": 100,
                          "pattern": r"^\s*\+?(\d+(\.\d*)?|\.\d+)\s*$",
                          "x-format": "a percentage, e.g. 5 or 2.5"},
                "valid_from": _DATE, "valid_until": _DATE,
                "sites": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Z]{2}$"}},
                "skus": {"type": "array", "items": {"type": "string", "minLength": 1}}}}},
        "overrides": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["action", "carrier"],
            "properties": {
                "action": {"enum": ["force", "forbid"]}, "carrier": {"type": "string", "minLength": 1},
                "service": {"type": "string"}, "site": {"type": "string", "pattern": r"^[A-Z]{2}$"},
                "sku": {"type": "string", "minLength": 1}}}},
    },
}
"""JSON Schema of the ``selection:`` configuration section (for connector/config.py)."""


@dataclass(frozen=True)
class Selection:
    """The outcome for one order: the chosen candidate (or ``None`` -> HELD) and why."""

    requirements: Requirements
    chosen: Candidate | None
    candidates: tuple[Candidate, ...]  # every eligible option, cheapest first
    rejections: tuple[Rejection, ...]

    def held_message(self) -> str:
        """Every rejection's reasons, for the HELD order (no PII)."""
        if not self.rejections and not self.candidates:
            return "no carrier service offered a quote"
        parts = [str(r) for r in self.rejections]
        if self.candidates and self.chosen is None:
            parts.append("the choice policy chose none of the eligible options")
        return "; ".join(parts)


Chooser = Callable[[list[Candidate]], "Candidate | QuoteOption | None"]


def _policy_notes(req: Requirements, option: QuoteOption, policy: ChoicePolicy) -> tuple[str, ...]:
    """What the selection settings decided for an eligible option (for ``quote``)."""
    notes = []
    if option.spec is not None:
        note = pickup_note(option.spec, drop_off=policy.drop_off, pickup_unknown=policy.pickup_unknown)
        if note:
            notes.append(note)
    level = tracking_level_of(option)
    if option.is_buy_shipping and TRACKING_RANK[level] < TRACKING_RANK[req.tracking_level]:
        notes.append(f"tracking: our table says {level}, below {req.tracking_level}, but Amazon offered "
                     "this Buy Shipping service for the order: its answer stands "
                     "(selection.buy_shipping_tracking)")
    if req.ioss_missing == "ship" and not option.is_buy_shipping:
        notes.append("IOSS: shipped direct without an IOSS number (ioss.missing: ship)")
    return tuple(notes)


def select(req: Requirements, options: Sequence[QuoteOption], *, rules: SiteRules, fx: RateTable,
           now: datetime, policy: ChoicePolicy | None = None, ship_from_city: str = "",
           ship_from_province: str = "", choose: Chooser | None = None,
           failures: Sequence[Rejection] = ()) -> Selection:
    """Eligibility, overrides, cost and choice for the quotes of one order.

    ``choose`` receives the eligible candidates cheapest first (the ``mfn_choose_quote`` hook);
    the default is :func:`choose_cheapest`. An answer that is not one of them is ignored (the
    order is held rather than shipped on an ineligible label). ``failures`` (carriers that did
    not quote, carriers rejected before quoting) are kept in the rejections.
    """
    policy = policy or ChoicePolicy()
    rejections = list(failures)
    candidates = []
    for option in options:
        reasons = eligibility(req, option, rules=rules, ship_from_city=ship_from_city,
                              ship_from_province=ship_from_province, policy=policy, now=now)
        reasons += override_rejections(req, option, policy.overrides)
        if not reasons:
            try:
                candidate = price_candidate(option, req=req, fx=fx, now=now, discounts=policy.discounts,
                                            buy_shipping_premium=policy.premium_for(req.site), rules=rules)
                notes = candidate.notes + _policy_notes(req, option, policy)
                candidates.append(replace(candidate, notes=notes))
                continue
            except FxError as exc:  # a quote in a currency the table lacks cannot be compared
                reasons = [str(exc)]
        rejections.append(Rejection(option.carrier, option.service, tuple(reasons)))
    candidates.sort(key=_sort_key)
    answer = (choose or choose_cheapest)(list(candidates)) if candidates else None
    chosen = None
    if isinstance(answer, Candidate):
        chosen = answer if answer in candidates else None
    elif isinstance(answer, QuoteOption):
        chosen = next((c for c in candidates if c.option == answer), None)
    if answer is not None and chosen is None:
        rejections.append(Rejection(getattr(answer, "carrier", "?"), getattr(answer, "service", ""),
                                    ("the choice policy picked an option that is not eligible; ignored",)))
    return Selection(req, chosen, tuple(candidates), tuple(rejections))
