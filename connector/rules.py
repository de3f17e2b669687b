"""Site rules and the choice of a label, as pure functions (no I/O, no clock: ``now`` is passed in).

The flow for one order (the README's "How an order flows"; each rule and its source:
docs/site-rules.md), each step a function here:

1. :func:`requirements` -- what Amazon's site rules demand of this order: the tracking level
   (China-origin rule), whether Buy Shipping is allowed (value cap), the IOSS number (EU,
   consignment <= cap), the small-order VTR exclusion and returnless refund, with a note per
   decision.
2. :func:`carrier_rejections` -- before asking for quotes: carriers Amazon does not accept on the
   site, Buy Shipping where it is not allowed, carriers that cannot pick up in the seller's city.
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
"""EU member states: IOSS covers consignments delivered to these countries only."""



class RulesError(ValueError):
    """Malformed or inconsistent site rules (the message names the site and the field)."""


class _CatalogLike(Protocol):
    def get(self, sku: str) -> CatalogItem | None: ...


# -- money in data -----------------------------------------------------------------------------


def parse_money(value: Any, *, where: str = "") -> Money | None:
    """``None``, a :class:`Money`, ``"150 EUR"`` or ``{amount: "150", currency: EUR}``."""
    if value is None or isinstance(value, Money):
        return value
    try:
        if isinstance(value, str):
            amount, currency = value.split()
            return Money(Decimal(amount), currency.upper())
        if isinstance(value, Mapping):
            return Money(Decimal(str(value["amount"])), str(value["currency"]).upper())
    except (ValueError, KeyError, InvalidOperation):
        pass
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
class SiteRules:
    """The rules of one Amazon site (who the site is -- marketplace id, region, currency,
    country -- comes from the site table, :mod:`connector.amazon.sites`).

    Money thresholds are ``None`` when the rule does not apply on the site. ``carrier_codes``
    maps each CarrierCode Amazon accepts on the site (exact, case-sensitive) to the shipping
    methods accepted for it; an empty tuple accepts any method. ``tracked_below`` ``None`` means
    every order needs a fully tracked service. ``country`` is filled in from the site table by
    :func:`merge_rules`.
    """

    site: str
    country: str = ""
    buy_shipping: bool = False
    buy_shipping_cap: Money | None = None
    tracked_below: Money | None = None
    ioss_cap: Money | None = None
    vtr_exclusion_below: Money | None = None
    returnless_refund_below: Money | None = None
    carrier_codes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        site = _site_key(self.site)
        object.__setattr__(self, "site", site)
        known = BUILTIN[site].country if site in BUILTIN else site
        object.__setattr__(self, "country", (self.country or known).upper())
        for name in MONEY_FIELDS:
            object.__setattr__(self, name, parse_money(getattr(self, name), where=f"site {site}: {name}"))
        codes = {}
        for code, methods in dict(self.carrier_codes).items():
            if isinstance(methods, str) or methods is None:
                raise RulesError(f"site {site}: carrier_codes.{code}: expected a list of shipping methods")
            codes[str(code)] = tuple(str(m) for m in methods)
        object.__setattr__(self, "carrier_codes", codes)

    def accepts(self, carrier_code: str | None, shipping_method: str = "") -> bool:
        """Amazon lists the carrier code here (and the method, when the site lists methods)."""
        if carrier_code is None or carrier_code not in self.carrier_codes:
            return False
        methods = self.carrier_codes[carrier_code]
        return not methods or shipping_method in methods

    def exact_match(self, carrier_code: str | None, shipping_method: str) -> bool:
        """Carrier code AND shipping method are in the site's list (the VTR small-order exclusion)."""
        return bool(carrier_code in self.carrier_codes and shipping_method
                    and shipping_method in self.carrier_codes[carrier_code])

    def to_mapping(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Money):
                value = f"{value.amount} {value.currency}"
            elif f.name == "carrier_codes":
                value = {k: list(v) for k, v in value.items()}
            data[f.name] = value
        return data

    @classmethod
    def from_mapping(cls, site: str, data: Mapping[str, Any]) -> SiteRules:
        """A full SiteRules from data (the plugin's ``sites.yaml`` entry or a configuration block;
        a block's site-table fields, if any, are not rules and are skipped here)."""
        data = {k: v for k, v in data.items() if k not in IDENTITY_FIELDS}
        unknown = sorted(set(data) - set(FIELD_NAMES) - {"site"})
        if unknown:
            raise RulesError(f"site {site}: unknown field(s) {', '.join(unknown)}")
        missing = [k for k in REQUIRED_FIELDS if data.get(k) is None]
        if missing:
            raise RulesError(f"site {site}: a new site needs {', '.join(missing)}")
        return cls(site=site, **{k: v for k, v in data.items() if k != "site"})


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SiteRules) if f.name not in ("site", "country"))
MONEY_FIELDS: tuple[str, ...] = ("buy_shipping_cap", "tracked_below", "ioss_cap", "vtr_exclusion_below",
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
    list.
    """

    __slots__ = ("site", "fields")

    def __init__(self, site: str, **changes: Any) -> None:
        self.site = _site_key(site)
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
            merged = dict(rules.carrier_codes)
            for code, methods in (changes["carrier_codes"] or {}).items():
                if methods is None:
                    merged.pop(code, None)
                else:
                    merged[code] = methods
            changes["carrier_codes"] = merged
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
            merged[key] = SiteRulesPatch(key, **data).apply(merged[key])
        else:
            merged[key] = SiteRules.from_mapping(key, data)
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
         "properties": {"amount": {"type": ["string", "number"]},
                        "currency": {"type": "string", "pattern": r"^[A-Z]{3}$"}}},
    ]
}
_METHODS = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}


def _site_schema(*, patch: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "buy_shipping": {"type": "boolean"},
        "carrier_codes": {"type": "object", "propertyNames": {"minLength": 1},
                          "additionalProperties": {"anyOf": [_METHODS, {"type": "null"}]} if patch
                          else _METHODS},
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
        "carrier_lists": {"type": "object"},  # YAML anchors the sites refer to
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
    order_value: Money | None  # items + shipping (proceeds grand total), None when unknown
    goods_value: Money | None  # items only: the consignment's intrinsic value for IOSS
    ship_by: datetime | None = None
    deliver_by: datetime | None = None
    vtr_excluded_if_exact: bool = False
    returnless_refund: bool = False
    skus: tuple[str, ...] = ()
    battery_skus: tuple[str, ...] = ()
    buy_shipping_reason: str = ""  # why Buy Shipping is not allowed ("" when it is)
    notes: tuple[str, ...] = ()


def order_value(order: Order, fx: RateTable) -> Money | None:
    """Items + shipping: ``proceeds.grandTotal`` when Amazon sent it, else the items' prices.

    ``None`` when neither is known (an item without a price makes the sum unknowable).
    """
    return order.total if order.total is not None else goods_value(order, fx)


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


def requirements(order: Order, catalog: _CatalogLike | None, rules: SiteRules | Mapping[str, SiteRules],
                 fx: RateTable, *, parcel: Parcel) -> Requirements:
    """The requirements of ``order`` shipped as ``parcel`` under its site's rules.

    Raises :class:`RulesError` (unknown site) or :class:`connector.fx.FxError` (a currency the
    table lacks): the engine holds the order with that message.
    """
    site = site_rules_for(order, rules)
    notes: list[str] = []
    value = order_value(order, fx)
    goods = goods_value(order, fx)
    if value is None:
        notes.append("order value unknown (no grand total, an item without a price): every value rule "
                     "takes its strict side")
    destination = (order.ship_to.country_code if order.ship_to and order.ship_to.country_code
                   else site.country).upper()

    # China-origin tracking rule: below the threshold a tracked service (>= 1 scan) is enough.
    threshold = site.tracked_below
    if threshold is not None and value is not None and _compare(value, threshold, fx) < 0:
        level = "tracked"
        notes.append(f"tracking: order value {_versus(value, threshold, fx)} is below "
                     f"{format_money(threshold)}: a tracked service with >= 1 scan is enough")
    else:
        level = "fully_tracked"
        why = (f"{site.site} has no low-value exception" if threshold is None else
               f"order value unknown (threshold {format_money(threshold)})" if value is None else
               f"order value {_versus(value, threshold, fx)} is not below {format_money(threshold)}")
        notes.append(f"tracking: {why}: fully tracked (>= 2 scans incl. delivery or an attempt)")

    # Buy Shipping: offered on the site, and the order at most the cap.
    bs_reason = ""
    if not site.buy_shipping:
        bs_reason = f"Amazon does not offer Buy Shipping on {site.site}"
    elif site.buy_shipping_cap is not None:
        if value is None:
            bs_reason = (f"order value unknown: cannot show it is within the Buy Shipping cap "
                         f"{format_money(site.buy_shipping_cap)}")
        elif _compare(value, site.buy_shipping_cap, fx) > 0:
            bs_reason = (f"order value {_versus(value, site.buy_shipping_cap, fx)} is above the Buy Shipping "
                         f"cap {format_money(site.buy_shipping_cap)} on {site.site}")
        else:
            notes.append(f"Buy Shipping: order value {_versus(value, site.buy_shipping_cap, fx)} is within "
                         f"the cap {format_money(site.buy_shipping_cap)}")
    if bs_reason:
        notes.append(f"Buy Shipping: not allowed: {bs_reason}")
    elif site.buy_shipping_cap is None:
        notes.append(f"Buy Shipping: allowed (no value cap on {site.site})")

    ioss = _ioss(order, site, destination, goods if goods is not None else value, fx, notes)

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
        buy_shipping_allowed=not bs_reason, ioss_number=ioss, declared_value=parcel.declared_value,
        parcel=parcel, destination_country=destination, order_value=value, goods_value=goods,
        ship_by=order.ship_by, deliver_by=order.deliver_by, vtr_excluded_if_exact=vtr_excluded,
        returnless_refund=returnless, skus=skus, battery_skus=battery_skus, buy_shipping_reason=bs_reason,
        notes=tuple(notes))


def _ioss(order: Order, site: SiteRules, destination: str, consignment: Money | None, fx: RateTable,
          notes: list[str]) -> str:
    numbers = list(dict.fromkeys(i.ioss_number for i in order.items if i.ioss_number))
    amazon = numbers[0] if numbers else ""
    if len(numbers) > 1:
        notes.append(f"IOSS: the items carry {len(numbers)} different IOSS numbers; the first is used")
    if site.ioss_cap is None:
        if amazon:
            notes.append(f"IOSS: {site.site} has no IOSS rule; Amazon's IOSS number is not sent")
        return ""
    if destination not in EU_COUNTRIES:
        notes.append(f"IOSS: destination {destination} is outside the EU; no IOSS number is sent")
        return ""
    if consignment is None:
        if amazon:
            notes.append("IOSS: consignment value unknown; Amazon's IOSS number is sent "
                         "(Amazon collected the VAT)")
        return amazon
    if _compare(consignment, site.ioss_cap, fx) > 0:
        notes.append(f"IOSS: consignment {_versus(consignment, site.ioss_cap, fx)} is above "
                     f"{format_money(site.ioss_cap)}: no IOSS number (import VAT is due at the border)")
        return ""
    if not amazon:
        notes.append(f"IOSS: consignment {_versus(consignment, site.ioss_cap, fx)} is within "
                     f"{format_money(site.ioss_cap)} but Amazon sent no IOSS number for the order")
        return ""
    notes.append(f"IOSS: consignment {_versus(consignment, site.ioss_cap, fx)} is within "
                 f"{format_money(site.ioss_cap)}: Amazon's IOSS number goes to the carrier's customs data")
    return amazon


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
                   handling_fee=getattr(quote, "handling_fee", None), spec=spec, service_spec=service)


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


def carrier_rejections(req: Requirements, spec: CarrierSpec, rules: SiteRules, *, ship_from_city: str = "",
                       drop_off: bool = False) -> list[str]:
    """Reasons not to ask ``spec`` for a quote at all (the carrier-level part of eligibility)."""
    reasons = []
    if spec.confirms_shipment:  # Amazon Buy Shipping: Amazon integrates the carriers it sells
        if not req.buy_shipping_allowed:
            reasons.append(req.buy_shipping_reason
                           or f"Buy Shipping is not allowed for this order on {req.site}")
    else:
        code = spec.carrier_code_for(rules.site)
        if code is None:
            reasons.append(f"Amazon does not accept {spec.label} on {rules.site}")
        elif code not in rules.carrier_codes:
            reasons.append(f"carrier code {code!r} is not in Amazon's list for {rules.site} "
                           "(tracking from a carrier Amazon does not integrate is invalid; "
                           "no silent 'Other')")
    if spec.pickup_cities and not drop_off:
        city = ship_from_city.strip().casefold()
        if city not in {c.casefold() for c in spec.pickup_cities}:
            where = ship_from_city or "the (unknown) ship-from city"
            reasons.append(f"{spec.label} does not pick up in {where} (pickup in "
                           f"{', '.join(spec.pickup_cities)}; set drop_off to hand parcels in)")
    return reasons


def eligibility(req: Requirements, option: QuoteOption, *, spec: CarrierSpec | None = None,
                service: ServiceSpec | None = None, rules: SiteRules, ship_from_city: str = "",
                drop_off: bool = False, now: datetime) -> list[str]:
    """Every reason ``option`` cannot ship the order; an empty list means eligible.

    ``spec``/``service`` default to the option's own. Limits a ServiceSpec may declare and that
    are read with defaults: ``max_weight_g`` (None = no limit), ``max_length_cm`` (longest side),
    ``max_dimensions_sum_cm`` (length + width + height), ``allows_battery`` (missing = False: a
    service that does not say it takes batteries does not get them), ``destinations`` (ISO
    countries; empty or missing = any, also read from the CarrierSpec).
    """
    spec = spec or option.spec
    if spec is None:
        return [f"carrier {option.carrier} is not installed"]
    service = service or option.service_spec or spec.service(option.service)
    reasons = carrier_rejections(req, spec, rules, ship_from_city=ship_from_city, drop_off=drop_off)
    if service is None and spec.services:
        return [*reasons, f"{spec.label} has no service {option.service}"]
    method = service.amazon_shipping_method if service else ""
    code = spec.carrier_code_for(rules.site)
    if not spec.confirms_shipment and code in rules.carrier_codes and not rules.accepts(code, method):
        reasons.append(f"shipping method {method!r} is not in Amazon's list for {code!r} on {rules.site} "
                       f"({', '.join(rules.carrier_codes[code])})")

    level = tracking_level_of(option, service)
    if TRACKING_RANK[level] < TRACKING_RANK[req.tracking_level]:
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
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Discount:
    """A carrier promotion or contract discount, active from ``valid_from`` to ``valid_until``
    (dates in UTC, both inclusive; ``None`` = open-ended).

    ``value`` is a percentage (``5`` = 5 %) of: the whole price (``percent``), the weight charge
    (``per_kg``: the price minus the quote's handling fee) or the handling fee
    (``handling_percent``). A quote that does not break out its handling fee gets no ``per_kg``
    or ``handling_percent`` discount: the part it applies to is unknown.
    """

    carrier: str
    kind: str
    value: Decimal
    service: str | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    sites: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in DISCOUNT_KINDS:
            raise RulesError(f"discount {self.name or self.carrier}: kind must be one of "
                             f"{', '.join(DISCOUNT_KINDS)}, got {self.kind!r}")
        value = Decimal(str(self.value))
        if not (0 <= value <= 100):
            raise RulesError(f"discount {self.name or self.carrier}: value is a percentage 0..100, "
                             f"got {value}")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "sites", tuple(_site_key(s) for s in self.sites))
        object.__setattr__(self, "skus", tuple(self.skus))

    def active(self, now: datetime) -> bool:
        today = now.astimezone(timezone.utc).date()
        return ((self.valid_from is None or self.valid_from <= today)
                and (self.valid_until is None or today <= self.valid_until))

    def applies(self, option: QuoteOption, req: Requirements, now: datetime) -> bool:
        return (option.carrier == self.carrier and (self.service is None or option.service == self.service)
                and (not self.sites or req.site in self.sites)
                and (not self.skus or any(s in req.skus for s in self.skus)) and self.active(now))

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
    notes = []
    for d, amount in discount_lines(option, discounts, req, now):
        label = d.name or f"{d.carrier} {d.kind} {d.value}%"
        notes.append(f"discount {label}: -{format_money(amount)}" if amount is not None else
                     f"discount {label} not applied: the quote does not break out its handling fee")
    cost = apply_discounts(option, discounts, req, now)
    comparable = fx.to_base(cost)
    if option.is_buy_shipping and buy_shipping_premium is not None:
        comparable -= fx.to_base(buy_shipping_premium)
        notes.append(f"Buy Shipping premium {format_money(buy_shipping_premium)} taken off for comparison")
    if (req.vtr_excluded_if_exact and rules is not None and option.spec is not None
            and not option.is_buy_shipping):
        method = option.service_spec.amazon_shipping_method if option.service_spec else ""
        exact = rules.exact_match(option.spec.carrier_code_for(rules.site), method)
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
                    service=d.get("service"), name=str(d.get("name") or ""),
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
        return cls(tuple(discounts), tuple(overrides), premium, bool(section.get("drop_off", False)))


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


_DATE = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
SELECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "drop_off": {"type": "boolean", "default": False,
                     "description": "the seller hands parcels in, so carriers' pickup cities do not matter"},
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
                "service": {"type": "string"}, "kind": {"enum": list(DISCOUNT_KINDS)},
                "value": {"type": ["string", "number"]}, "valid_from": _DATE, "valid_until": _DATE,
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


def select(req: Requirements, options: Sequence[QuoteOption], *, rules: SiteRules, fx: RateTable,
           now: datetime, policy: ChoicePolicy | None = None, ship_from_city: str = "",
           choose: Chooser | None = None, failures: Sequence[Rejection] = ()) -> Selection:
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
                              drop_off=policy.drop_off, now=now)
        reasons += override_rejections(req, option, policy.overrides)
        if not reasons:
            try:
                candidates.append(price_candidate(option, req=req, fx=fx, now=now, discounts=policy.discounts,
                                                  buy_shipping_premium=policy.premium_for(req.site),
                                                  rules=rules))
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
